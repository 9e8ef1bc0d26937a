#!/usr/bin/env bash
# Agent/controller smoke test (H5), run in CI as root. Exits non-zero on the
# first failed check and prints every check it passed.
#
# Builds tapio-agent, tapio-controller and the eBPF objects, starts the
# controller and an agent in controller mode (`--sink controller --sink
# file`), and verifies: hello, heartbeat, applied-hash convergence, delivery
# of a refused loopback connect (exact port) through /v1/status and the
# controller's trace log; a 20 s controller SIGSTOP (the agent keeps
# draining, the file sink keeps writing, failures and drops are counted in
# the agent's status file, nothing blocks); controller kill -9 and restart
# (the agent re-registers and converges again); agent restart (new session,
# sequence restarts at 1 without gaps).
#
# Env: CARGO_TARGET_DIR (default target/), SMOKE_PROFILE=debug|release
# (default debug), TAPIO_EBPF_DIR (default $CARGO_TARGET_DIR/bpf),
# SMOKE_KEEP=1 keeps the work directory.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
target=${CARGO_TARGET_DIR:-$root/target}
profile=${SMOKE_PROFILE:-debug}
bpf=${TAPIO_EBPF_DIR:-$target/bpf}
work=$(mktemp -d /tmp/tapio-smoke-ac.XXXXXX)
data=$work/occ
ctl_pid=""
agent_pid=""

say() { printf 'smoke: %s\n' "$*"; }
ok() { printf 'smoke: OK   %s\n' "$*"; }
fail() {
  printf 'smoke: FAIL %s\n' "$*" >&2
  echo "--- controller log (tail) ---" >&2; tail -n 30 "$work/controller.log" >&2 || true
  echo "--- agent log (tail) ---" >&2; tail -n 30 "$work/agent.log" >&2 || true
  exit 1
}
cleanup() {
  [ -n "$ctl_pid" ] && kill -CONT "$ctl_pid" 2>/dev/null && kill -9 "$ctl_pid" 2>/dev/null
  [ -n "$agent_pid" ] && kill -9 "$agent_pid" 2>/dev/null
  wait 2>/dev/null || true
  if [ "${SMOKE_KEEP:-0}" = 1 ]; then say "work directory kept: $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT

[ "$(id -u)" = 0 ] || fail "must run as root (loads eBPF programs)"
for t in curl jq python3; do command -v $t >/dev/null || fail "needs $t"; done

say "building eBPF objects into $bpf"
scripts/build-ebpf.sh "$bpf" >/dev/null
say "building tapio-agent and tapio-controller ($profile)"
flag=(); [ "$profile" = release ] && flag=(--release)
cargo build -q "${flag[@]}" -p tapio-agent -p tapio-controller
agent_bin=$target/$profile/tapio-agent
ctl_bin=$target/$profile/tapio-controller

free_port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
port=$(free_port)
url=http://127.0.0.1:$port

start_controller() {
  "$ctl_bin" --listen "127.0.0.1:$port" --config-poll-secs 2 --log-level trace \
    >>"$work/controller.log" 2>&1 &
  ctl_pid=$!
  for _ in $(seq 100); do
    curl -sf "$url/healthz" >/dev/null && return 0
    sleep 0.1
  done
  fail "controller did not answer /healthz"
}

start_agent() {
  printf '[drain]\ntick_ms = 50\n' >"$work/tapio.toml"
  "$agent_bin" --config "$work/tapio.toml" --ebpf-dir "$bpf" --data-dir "$data" \
    --sink controller --sink file --controller-endpoint "$url" --heartbeat-interval 5 \
    >>"$work/agent.log" 2>&1 &
  agent_pid=$!
}

status() { curl -sf --max-time 5 "$url/v1/status"; }
# agent_field JQ: the JQ expression applied to our (only) agent.
agent_field() { status | jq -r ".agents[0] | $1"; }
# wait_for SECONDS DESCRIPTION COMMAND...: polls until COMMAND succeeds.
wait_for() {
  local secs=$1 what=$2; shift 2
  local end=$((SECONDS + secs))
  while [ $SECONDS -lt $end ]; do
    if "$@" >/dev/null 2>&1; then ok "$what"; return 0; fi
    sleep 0.5
  done
  fail "$what (not within ${secs}s)"
}
agent_status() { cat "$data/.tapio-status.json"; }
counter() { agent_status | jq -r --arg k "$1" '.counters[$k] // 0'; }
refuse() { # one refused loopback connect to port $1
  if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then fail "port $1 unexpectedly open"; fi
}
file_has_port() { grep -l "\"dst_port\":$1[,}]" "$data"/*.json >/dev/null 2>&1; }
trace_has_port() { grep 'tapio_controller::events' "$work/controller.log" | grep -q "\"dst_port\":$1[,}]"; }
delivered_port() { trace_has_port "$1" && [ "$(agent_field .events)" -ge 1 ]; }

# --- start ---------------------------------------------------------------
start_controller
say "controller pid $ctl_pid on $url"
start_agent
say "agent pid $agent_pid"

wait_for 20 "hello: agent registered" sh -c "[ \"\$(curl -sf $url/v1/status | jq -r '.agents | length')\" = 1 ]"
agent_id=$(agent_field .agent_id)
session1=$(agent_field .session)
ok "agent_id=$agent_id session=$session1 hellos=$(agent_field .hellos)"
wait_for 20 "heartbeat received" sh -c "curl -sf $url/v1/status | jq -e '.agents[0].last_heartbeat_age_ms != null'"
want=$(status | jq -r .config.hash)
conv() { [ "$(agent_field .applied_hash)" = "$want" ] && [ "$(agent_field .converged)" = true ]; }
wait_for 30 "applied hash converged to $want" conv
wait_for 15 "agent status file reports the same hash" sh -c "jq -e --arg h '$want' '.config_hash == \$h' '$data/.tapio-status.json'"

p1=$(free_port)
refuse "$p1"
wait_for 20 "refused connect to 127.0.0.1:$p1 delivered (/v1/status events and trace log)" delivered_port "$p1"
grep 'tapio_controller::events' "$work/controller.log" | grep "\"dst_port\":$p1[,}]" | head -1 |
  grep -q '"type":"kernel.network.connection_refused"' || fail "trace line for port $p1 is not a connection_refused"
ok "trace log line is kernel.network.connection_refused with dst_port $p1"
file_has_port "$p1" || fail "file sink has no occurrence for port $p1"
ok "file sink wrote the occurrence for port $p1"

# --- controller outage: SIGSTOP for 20 s ---------------------------------
fail_hb0=$(counter 'tapio_controller_send_failures_total{call="heartbeat"}')
fail_ev0=$(counter 'tapio_controller_send_failures_total{call="events"}')
drops0=$(counter 'tapio_sink_drops_total{sink="controller",reason="write_failed"}')
files0=$(ls "$data"/*.json | wc -l)
upd0=$(agent_status | jq -r .updated_at)
say "SIGSTOP controller for 20 s"
kill -STOP "$ctl_pid"
stop_start=$SECONDS
ports=()
while [ $((SECONDS - stop_start)) -lt 20 ]; do
  p=$(free_port); refuse "$p"; ports+=("$p")
  sleep 2
done
for p in "${ports[@]}"; do file_has_port "$p" || fail "file sink missed port $p during the outage"; done
ok "file sink kept writing during the outage: ${#ports[@]} new refused connects, each on its own port, all on disk"
files1=$(ls "$data"/*.json | wc -l)
[ "$files1" -gt "$files0" ] || fail "no new occurrence files during the outage"
ok "occurrence files $files0 -> $files1"
kill -0 "$agent_pid" || fail "agent died during the outage"
sleep 5.5 # one more status-file period
upd1=$(agent_status | jq -r .updated_at)
[ "$upd1" != "$upd0" ] || fail "agent status file not updated during the outage (blocked?)"
ok "agent status file kept updating ($upd0 -> $upd1)"
fail_hb1=$(counter 'tapio_controller_send_failures_total{call="heartbeat"}')
fail_ev1=$(counter 'tapio_controller_send_failures_total{call="events"}')
drops1=$(counter 'tapio_sink_drops_total{sink="controller",reason="write_failed"}')
[ "$fail_hb1" -gt "$fail_hb0" ] || fail "heartbeat failures not counted ($fail_hb0 -> $fail_hb1)"
ok "heartbeat send failures counted: $fail_hb0 -> $fail_hb1"
[ "$fail_ev1" -gt "$fail_ev0" ] || fail "event send failures not counted ($fail_ev0 -> $fail_ev1)"
ok "event send failures counted: $fail_ev0 -> $fail_ev1"
[ "$drops1" -gt "$drops0" ] || fail "controller sink drops not counted ($drops0 -> $drops1)"
ok "controller sink drops counted (write_failed): $drops0 -> $drops1"
kill -CONT "$ctl_pid"
say "SIGCONT controller"
wait_for 20 "controller answers again after SIGCONT" sh -c "curl -sf --max-time 2 $url/healthz"
p2=$(free_port); refuse "$p2"
wait_for 30 "delivery resumed after the outage (port $p2)" delivered_port "$p2"

# --- controller kill -9 and restart ---------------------------------------
say "kill -9 controller and restart it"
kill -9 "$ctl_pid"; wait "$ctl_pid" 2>/dev/null || true
: >"$work/controller.log"
start_controller
say "controller restarted, pid $ctl_pid"
wait_for 30 "agent re-registered with the restarted controller" sh -c "[ \"\$(curl -sf $url/v1/status | jq -r '.agents | length')\" = 1 ]"
[ "$(agent_field .agent_id)" = "$agent_id" ] || fail "re-registered under another id"
wait_for 30 "converged again after the controller restart" conv
p3=$(free_port); refuse "$p3"
wait_for 30 "delivery to the restarted controller (port $p3)" delivered_port "$p3"
[ "$(agent_field .sequence_regressions)" = 0 ] || fail "sequence regressions after re-registration"
ok "sequence restarted in the new session: last_sequence=$(agent_field .last_sequence), regressions=0"

# --- agent restart ----------------------------------------------------------
say "restarting the agent (SIGTERM)"
kill -TERM "$agent_pid"
rc=0; wait "$agent_pid" || rc=$?
[ "$rc" = 0 ] || fail "agent exited $rc on SIGTERM"
ok "agent stopped cleanly (exit 0)"
session2=$(agent_field .session)
start_agent
say "agent restarted, pid $agent_pid"
newsess() { [ "$(agent_field .session)" != "$session2" ] && [ "$(agent_field .hellos)" = 2 ]; }
wait_for 30 "new registration (session changed, hellos=2, same agent_id)" newsess
[ "$(agent_field .agent_id)" = "$agent_id" ] || fail "restarted agent uses another id"
wait_for 30 "restarted agent converged" conv
p4=$(free_port); refuse "$p4"
wait_for 30 "delivery from the restarted agent (port $p4)" delivered_port "$p4"
seq=$(agent_field .last_sequence); gaps=$(agent_field .sequence_gaps); regr=$(agent_field .sequence_regressions)
[ "$gaps" = 0 ] && [ "$regr" = 0 ] && [ "$seq" -ge 1 ] || fail "sequence after agent restart: last=$seq gaps=$gaps regressions=$regr"
ok "sequence handled across the agent restart: new session starts at 1 (last_sequence=$seq, gaps=0, regressions=0)"
status | jq -c '{convergence, totals: (.totals | {hellos, heartbeats, batches, events, sequence_gaps, sequence_regressions})}'
say "all checks passed"
