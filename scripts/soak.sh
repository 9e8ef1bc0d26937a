#!/usr/bin/env bash
# Soak (not in CI): the real agent and the real controller for DURATION under
# mixed faults and a simulated fleet; one table row per sample with RSS, open
# fds and threads of both processes and the event counts; exact accounting
# and flatness checks at the end; exit 1 when a check fails.
#
# Usage: scripts/soak.sh [DURATION]      DURATION: 90s, 30m, 2h or seconds (default 30m)
#
# Faults, all at once for the whole run:
# - refused loopback connects at SOAK_CONNECT_RATE/s (4), each to a fresh closed
#   port, and a child process killed by SIGSEGV every SOAK_SEGV_EVERY s (10):
#   real kernel facts for the agent's network and container observers;
# - the controller, every SOAK_FAULT_EVERY s (120), alternately paused
#   (SIGSTOP for SOAK_STOP_SECS, 20) and killed -9 then restarted after
#   SOAK_DOWN_SECS (5) on the same port: the agent's controller sink retries
#   and drops (counted);
# - SOAK_AGENTS (1000) simulated agents (controller-load bench, `--target`
#   mode) each on its own keep-alive connection to 127.0.0.1: hello, then
#   heartbeats and batches of SOAK_FLEET_BATCH (5) occurrences with a pause
#   of SOAK_FLEET_INTERVAL_MS (500) between requests; they reconnect and say
#   hello again after every pause and restart.
#
# Checks at the end (after the agent's clean SIGTERM):
# - per sink (controller, file): occurrences the agent produced = delivered +
#   dropped by reason (from its final status file);
# - the file sink holds exactly what it delivered (files = delivered{file});
# - the controller received (trace log of the real agent's events over every
#   controller incarnation, distinct occurrence ids) R with
#   delivered{controller} <= R <= delivered + write_failed + shutdown_in_flight
#   drops (a batch whose answer was lost to a pause or kill may have arrived)
#   and every received id is one of the file sink's (when the file sink
#   dropped nothing);
# - every refused connect the soak made is in the file sink with its exact
#   port (when nothing was lost in the ring buffers or dropped by the sink);
# - RSS, fds and threads are flat: for each process, the median of the last
#   third of the samples <= the median of the first third + tolerance:
#   RSS max(SOAK_RSS_TOL_PCT % (15), 4 MiB), fds max(10 %, 8), threads +2.
#
# Env: SOAK_INTERVAL sample period in s (60), CARGO_TARGET_DIR (target/),
# TAPIO_EBPF_DIR ($CARGO_TARGET_DIR/bpf), SOAK_NO_BUILD=1 uses the binaries
# already built, SOAK_KEEP=1 keeps the work directory (/tmp/tapio-soak.*).
# Runs as root (the agent loads eBPF programs).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

dur_arg=${1:-30m}
case "$dur_arg" in
  *h) duration=$((${dur_arg%h} * 3600)) ;;
  *m) duration=$((${dur_arg%m} * 60)) ;;
  *s) duration=${dur_arg%s} ;;
  *[!0-9]* | '') echo "usage: $0 [DURATION]   e.g. 90s, 30m, 2h" >&2; exit 2 ;;
  *) duration=$dur_arg ;;
esac
[ "$duration" -ge 30 ] || { echo "soak: duration must be at least 30s" >&2; exit 2; }

interval=${SOAK_INTERVAL:-60}
agents=${SOAK_AGENTS:-1000}
fleet_interval=${SOAK_FLEET_INTERVAL_MS:-500}
fleet_batch=${SOAK_FLEET_BATCH:-5}
connect_rate=${SOAK_CONNECT_RATE:-4}
segv_every=${SOAK_SEGV_EVERY:-10}
fault_every=${SOAK_FAULT_EVERY:-120}
stop_secs=${SOAK_STOP_SECS:-20}
down_secs=${SOAK_DOWN_SECS:-5}
rss_tol=${SOAK_RSS_TOL_PCT:-15}

target=${CARGO_TARGET_DIR:-$root/target}
bpf=${TAPIO_EBPF_DIR:-$target/bpf}
work=$(mktemp -d /tmp/tapio-soak.XXXXXX)
data=$work/occ
ctl_pid="" agent_pid="" fleet_pid="" gen_pid=""

say() { printf 'soak: %s\n' "$*"; }
die() { printf 'soak: FAIL %s\n' "$*" >&2; exit 1; }
cleanup() {
  for p in "$gen_pid" "$fleet_pid" "$agent_pid"; do [ -n "$p" ] && kill -9 "$p" 2>/dev/null; done
  [ -n "$ctl_pid" ] && kill -CONT "$ctl_pid" 2>/dev/null && kill -9 "$ctl_pid" 2>/dev/null
  wait 2>/dev/null || true
  if [ "${SOAK_KEEP:-0}" = 1 ]; then say "work directory kept: $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

[ "$(id -u)" = 0 ] || die "must run as root (the agent loads eBPF programs)"
for t in curl jq python3; do command -v $t >/dev/null || die "needs $t"; done

if [ "${SOAK_NO_BUILD:-0}" != 1 ]; then
  say "building eBPF objects, release agent and controller, the fleet (controller-load bench)"
  scripts/build-ebpf.sh "$bpf" >/dev/null
  cargo build -q --release -p tapio-agent -p tapio-controller
fi
agent_bin=$target/release/tapio-agent
ctl_bin=$target/release/tapio-controller
if [ "${SOAK_NO_BUILD:-0}" != 1 ] || [ ! -x "$target/soak-fleet" ]; then
  fleet_src=$(cargo bench -p tapio-controller --bench controller-load --no-run 2>&1 |
    sed -n 's/.*Executable .*(\(.*controller_load-[0-9a-f]*\)).*/\1/p' | tail -1)
  [ -x "$fleet_src" ] || die "controller-load bench binary not found"
  cp "$fleet_src" "$target/soak-fleet"
fi
fleet_bin=$target/soak-fleet

port=$(python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])')
url=http://127.0.0.1:$port
incarnation=0

# The controller logs every accepted occurrence at trace level; the fleet's
# lines are filtered out before they reach the disk, the real agent's stay,
# appended over every incarnation.
start_controller() {
  incarnation=$((incarnation + 1))
  TAPIO_LOG=trace "$ctl_bin" --listen "127.0.0.1:$port" --config-poll-secs 5 \
    --max-connections $((agents + 500)) --max-agents $((agents + 100)) \
    2> >(grep --line-buffered -v -F 'agent_id=fleet-' >>"$work/controller.log") &
  ctl_pid=$!
  for _ in $(seq 200); do
    curl -sf --max-time 1 "$url/healthz" >/dev/null && return 0
    sleep 0.1
  done
  die "controller did not answer /healthz"
}
# Totals of one incarnation, taken before each kill (for the report only).
ctl_totals() {
  curl -sf --max-time 5 "$url/v1/status" |
    jq -c '{agents: (.agents | length), hellos: .totals.hellos, batches: .totals.batches, events: .totals.events, gaps: .totals.sequence_gaps, refused: .totals.connections_refused}' 2>/dev/null || echo '{}'
}

start_controller
say "controller pid $ctl_pid on $url (log: $work/controller.log)"
printf '[drain]\ntick_ms = 50\n[file]\nmax_files = 10000000\nmax_age_secs = 864000\n' >"$work/tapio.toml"
"$agent_bin" --config "$work/tapio.toml" --ebpf-dir "$bpf" --data-dir "$data" \
  --sink controller --sink file --controller-endpoint "$url" --heartbeat-interval 5 \
  >>"$work/agent.log" 2>&1 &
agent_pid=$!
say "agent pid $agent_pid"
for _ in $(seq 300); do [ -f "$data/.tapio-status.json" ] && break; sleep 0.1; done
[ -f "$data/.tapio-status.json" ] || die "agent wrote no status file ($(tail -3 "$work/agent.log"))"
kill -0 "$agent_pid" 2>/dev/null || die "agent exited: $(tail -3 "$work/agent.log")"

# Kernel faults: refused loopback connects (ports logged) and SIGSEGV'd children.
python3 - "$duration" "$connect_rate" "$segv_every" "$work/gen" <<'PY' &
import os, signal, socket, sys, time
dur, rate, segv_every, out = float(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
end = time.monotonic() + dur
ports = open(out + ".ports", "w", buffering=1)
refused = segv = 0
next_segv = time.monotonic() + segv_every
while time.monotonic() < end:
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close()
    c = socket.socket()
    try:
        c.connect(("127.0.0.1", p))
    except ConnectionRefusedError:
        refused += 1; ports.write(f"{p}\n")
    except OSError:
        pass
    finally:
        c.close()
    if segv_every > 0 and time.monotonic() >= next_segv:
        next_segv += segv_every
        pid = os.fork()
        if pid == 0:
            os.kill(os.getpid(), signal.SIGSEGV); os._exit(0)
        _, st = os.waitpid(pid, 0)
        if os.WIFSIGNALED(st) and os.WTERMSIG(st) == signal.SIGSEGV:
            segv += 1
    with open(out + ".counts.tmp", "w") as f:
        f.write(f"{refused} {segv}\n")
    os.replace(out + ".counts.tmp", out + ".counts")
    time.sleep(1.0 / rate)
PY
gen_pid=$!

"$fleet_bin" --target "127.0.0.1:$port" --agents "$agents" --secs "$duration" \
  --interval-ms "$fleet_interval" --batch "$fleet_batch" --report-secs 5 >"$work/fleet.log" 2>&1 &
fleet_pid=$!
say "fleet pid $fleet_pid: $agents simulated agents, ${fleet_interval} ms pause, batches of $fleet_batch"
say "duration ${duration}s, a sample every ${interval}s, a controller fault every ${fault_every}s"

# --- sampling -------------------------------------------------------------
proc_stats() { # PID -> "rss_MiB fds threads" (or "- - -")
  local p=$1 rss thr
  if [ -n "$p" ] && [ -r "/proc/$p/status" ]; then
    rss=$(awk '/^VmRSS/{print $2}' "/proc/$p/status")
    thr=$(awk '/^Threads/{print $2}' "/proc/$p/status")
    printf '%s %s %s' "$(awk -v k="$rss" 'BEGIN{printf "%.1f", k/1024}')" "$(ls "/proc/$p/fd" 2>/dev/null | wc -l)" "$thr"
  else
    printf -- '- - -'
  fi
}
agent_counts() { # produced delivered_ctl dropped_ctl delivered_file dropped_file
  jq -r '.counters as $c
    | def s(p): [$c | to_entries[] | select(.key | startswith(p)) | .value] | add // 0;
    "\(s("tapio_anomalies_total")) \(s("tapio_sink_delivered_total{sink=\"controller\""))"
    + " \(s("tapio_sink_drops_total{sink=\"controller\""))"
    + " \(s("tapio_sink_delivered_total{sink=\"file\""))"
    + " \(s("tapio_sink_drops_total{sink=\"file\""))"' "$data/.tapio-status.json" 2>/dev/null || echo "? ? ? ? ?"
}
received() { grep -c 'tapio_controller::events' "$work/controller.log" 2>/dev/null || true; }
fleet_counts() { # requests events errors
  tail -1 "$work/fleet.log" 2>/dev/null | sed -n 's/.*requests=\([0-9]*\) events=\([0-9]*\) errors=\([0-9]*\).*/\1 \2 \3/p'
}

hdr=$(printf '%6s | %8s %5s %4s | %8s %5s %4s %3s | %8s %8s %6s %8s %6s %8s | %9s %9s %7s | %s' \
  t_s a_rss_MiB a_fd a_thr c_rss_MiB c_fd c_thr inc produced deliv_c drop_c deliv_f drop_f recv_c \
  fleet_req fleet_ev fleet_er ctl_state)
echo "$hdr" | tee "$work/table"
: >"$work/samples"
sample() {
  local t=$1 a c fc
  a=$(proc_stats "$agent_pid"); c=$(proc_stats "$ctl_pid"); fc=$(fleet_counts)
  [ -n "$fc" ] || fc="0 0 0"
  read -r ar af at <<<"$a"; read -r cr cf ct <<<"$c"
  read -r pr dc xc df xf <<<"$(agent_counts)"
  read -r fq fe fx <<<"$fc"
  printf '%6s | %8s %5s %4s | %8s %5s %4s %3s | %8s %8s %6s %8s %6s %8s | %9s %9s %7s | %s\n' \
    "$t" "$ar" "$af" "$at" "$cr" "$cf" "$ct" "$incarnation" "$pr" "$dc" "$xc" "$df" "$xf" "$(received)" \
    "$fq" "$fe" "$fx" "$ctl_state" | tee -a "$work/table"
  echo "$t $ar $af $at $cr $cf $ct" >>"$work/samples"
}

start=$SECONDS
ctl_state=running
stopped_at=0 down_at=0 next_fault=$fault_every next_sample=$interval fault_n=0
pauses=0 kills=0
: >"$work/incarnations"
while :; do
  now=$((SECONDS - start))
  [ "$now" -ge "$duration" ] && break
  kill -0 "$agent_pid" 2>/dev/null || die "agent died: $(tail -5 "$work/agent.log")"
  if [ "$ctl_state" = stopped ] && [ $((now - stopped_at)) -ge "$stop_secs" ]; then
    kill -CONT "$ctl_pid"; ctl_state=running
  elif [ "$ctl_state" = down ] && [ $((now - down_at)) -ge "$down_secs" ]; then
    start_controller; ctl_state=running
  elif [ "$ctl_state" = running ] && [ "$now" -ge "$next_fault" ] &&
    [ $((duration - now)) -gt $((stop_secs + down_secs + 30)) ]; then
    fault_n=$((fault_n + 1)); next_fault=$((next_fault + fault_every))
    if [ $((fault_n % 2)) = 1 ]; then
      kill -STOP "$ctl_pid"; ctl_state=stopped; stopped_at=$now; pauses=$((pauses + 1))
    else
      echo "$incarnation $(ctl_totals)" >>"$work/incarnations"
      kill -9 "$ctl_pid"; wait "$ctl_pid" 2>/dev/null || true
      ctl_state=down; down_at=$now; kills=$((kills + 1))
    fi
  fi
  if [ "$now" -ge "$next_sample" ]; then
    sample "$now"; next_sample=$((next_sample + interval))
  fi
  sleep 1
done
[ "$ctl_state" = stopped ] && kill -CONT "$ctl_pid" && ctl_state=running
[ "$ctl_state" = down ] && start_controller && ctl_state=running
sample "$((SECONDS - start))"
echo "$incarnation $(ctl_totals)" >>"$work/incarnations"

# --- stop and account ------------------------------------------------------
wait "$gen_pid" 2>/dev/null || true; gen_pid=""
say "waiting for the fleet to finish its last requests"
for _ in $(seq 30); do kill -0 "$fleet_pid" 2>/dev/null || break; sleep 1; done
kill -9 "$fleet_pid" 2>/dev/null || true; wait "$fleet_pid" 2>/dev/null || true; fleet_pid=""
sleep 6 # the agent delivers what it holds while the controller is up
kill -TERM "$agent_pid"
rc=0; wait "$agent_pid" || rc=$?; agent_pid=""
sleep 1
kill -TERM "$ctl_pid" 2>/dev/null || true; wait "$ctl_pid" 2>/dev/null || true; ctl_pid=""
sleep 1 # the log filter drains

echo
say "table: $work/table; controller faults: $pauses pauses of ${stop_secs}s, $kills kills (+${down_secs}s down); incarnations:"
cat "$work/incarnations"
say "fleet: $(tail -1 "$work/fleet.log")"
say "kernel faults made: refused connects, SIGSEGV children = $(cat "$work/gen.counts" 2>/dev/null)"

python3 - "$work" "$data" "$rc" "$rss_tol" <<'PY'
import glob, json, os, re, statistics, sys
work, data, rc, rss_tol = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
fails = []
def check(ok, what):
    print(f"soak: {'OK  ' if ok else 'FAIL'} {what}")
    if not ok: fails.append(what)

check(rc == 0, f"agent stopped cleanly on SIGTERM (exit {rc})")
st = json.load(open(os.path.join(data, ".tapio-status.json")))
c = st["counters"]
def s(prefix): return sum(v for k, v in c.items() if k.startswith(prefix))
produced = s("tapio_anomalies_total")
facts = {k: v for k, v in c.items() if k.startswith("tapio_facts_total")}
lost = s("tapio_lost_events_total")
print(f"soak: agent produced {produced} occurrences; ring-buffer lost {lost}; "
      + ", ".join(f"{k[len('tapio_anomalies_total'):]}={v}" for k, v in c.items() if k.startswith("tapio_anomalies_total") and v))
deliv = {}
drops = {}
for sink in ("controller", "file"):
    d = s(f'tapio_sink_delivered_total{{sink="{sink}"')
    by = {re.search(r'reason="([^"]+)"', k).group(1): v for k, v in c.items()
          if k.startswith(f'tapio_sink_drops_total{{sink="{sink}"') and v}
    deliv[sink], drops[sink] = d, by
    check(produced == d + sum(by.values()),
          f"{sink} sink: produced {produced} = delivered {d} + dropped {sum(by.values())} {by}")
print("soak: controller send failures: " + json.dumps({k.split('call="')[1][:-2]: v for k, v in c.items()
      if k.startswith("tapio_controller_send_failures_total")}))

files = {}
for p in glob.glob(os.path.join(data, "*.json")):
    try:
        o = json.load(open(p))
    except Exception as e:
        fails.append(f"unreadable occurrence file {p}: {e}"); continue
    files[o["id"]] = o
check(len(files) == deliv["file"], f"file sink holds {len(files)} occurrence files = delivered {deliv['file']}")

recv, lines = set(), 0
for line in open(os.path.join(work, "controller.log"), errors="replace"):
    if "tapio_controller::events" not in line: continue
    m = re.search(r'[{,]"id":"([0-9A-Z]{26})"', line.split(" occurrence=", 1)[-1])
    if m:
        lines += 1; recv.add(m.group(1))
doubt_max = drops["controller"].get("write_failed", 0) + drops["controller"].get("shutdown_in_flight", 0)
check(deliv["controller"] <= len(recv) <= deliv["controller"] + doubt_max,
      f"controller received {len(recv)} distinct occurrences ({lines} trace lines, {lines - len(recv)} re-sent) "
      f"= delivered {deliv['controller']} + {len(recv) - deliv['controller']} in doubt (<= {doubt_max} dropped after being sent)")
if not drops["file"]:
    extra = recv - files.keys()
    check(not extra, f"every occurrence the controller received is in the file sink ({len(extra)} not)")

ports = [int(x) for x in open(os.path.join(work, "gen.ports"))] if os.path.exists(os.path.join(work, "gen.ports")) else []
seen = {o["data"].get("dst_port") for o in files.values()
        if o.get("type") == "kernel.network.connection_refused" and o["data"].get("dst_addr") == "127.0.0.1"}
missing = [p for p in ports if p not in seen]
if lost == 0 and not drops["file"]:
    check(not missing, f"all {len(ports)} refused connects the soak made are in the file sink with their port ({len(missing)} missing)")
else:
    print(f"soak: INFO {len(missing)} of {len(ports)} refused connects not in the file sink (lost {lost}, file drops {drops['file']})")
refused_facts = sum(v for k, v in facts.items() if "connection_refused" in k)
check(refused_facts >= len(ports), f"agent counted {refused_facts} refused-connect facts >= {len(ports)} made by the soak")

all_rows = [l.split() for l in open(os.path.join(work, "samples"))]
for name, base in (("agent", 1), ("controller", 4)):
    # Samples where the process was not there (the controller killed) do not count.
    rows = [r for r in all_rows if "-" not in r[base:base + 3]]
    n = len(rows)
    if n < 3:
        check(False, f"{name}: only {n} samples, too few for a flatness check")
        continue
    k = max(1, n // 3)
    first, last = rows[:k], rows[-k:]
    def med(rs, i): return statistics.median(float(r[i]) for r in rs)
    for what, i, tol in (("RSS MiB", base, lambda m: max(m * rss_tol / 100, 4.0)),
                         ("fds", base + 1, lambda m: max(m * 0.10, 8)),
                         ("threads", base + 2, lambda m: 2)):
        a, b = med(first, i), med(last, i)
        check(b <= a + tol(a), f"{name} {what} flat: last-third median {b:g} <= first-third median {a:g} + {tol(a):g} "
              f"(min {min(float(r[i]) for r in rows):g}, max {max(float(r[i]) for r in rows):g}, {n} samples)")
print(f"soak: {'PASS' if not fails else 'FAIL (' + str(len(fails)) + ')'}")
sys.exit(1 if fails else 0)
PY
