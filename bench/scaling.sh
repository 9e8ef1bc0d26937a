#!/usr/bin/env bash
# How Tapio's costs grow (agent alone, production-default profile):
#  1. with event rate: refused connects, O_DIRECT reads on a loop device and
#     fork/exits, each paced at 1k, 10k and 100k events/s for SECONDS
#     (a rate the machine cannot reach runs flat out; the achieved rate is
#     reported): kernel ns per event (bpf_stats), agent CPU and agent CPU
#     time per event;
#  2. with map pressure: the connect storm with 0 and HOLD established
#     loopback connections open (each client socket carries Tapio's
#     socket-local storage), and the read storm with the `inflight` hash
#     (8192 slots) pre-filled to 0, 4096 and 8192 entries by bpftool with
#     keys no request can have, so the table really is that full.
# Appends rows to $BENCH_RESULTS (see bench/lib.sh).
# Usage: bench/scaling.sh [SECONDS=3] [HOLD=9000]
set -euo pipefail
# shellcheck source=bench/lib.sh
source "$(dirname "$0")/lib.sh"
secs=${1:-3} hold=${2:-9000}
# Two fds per held connection (client + accepted); the hard limit may not
# be raisable here (no CAP_SYS_RESOURCE), so stay under it.
fdmax=$(ulimit -Hn)
[ "$fdmax" = unlimited ] || [ $((hold * 2 + 100)) -le "$fdmax" ] || hold=$(((fdmax - 100) / 2))
need_root
build_all
stats_on
loop_start
agent_start
sleep 1

# One paced run: $1 label, $2 Tapio programs (first = the event), then the
# generator arguments. Sets RUN_NS (kernel ns/event) and RUN_RUNS.
run() {
  local label=$1 progs=$2
  shift 2
  local a0 a1 out g span
  prog_stats "$AGENT_PID" >"$WORK/t0"; a0=$(proc_sample "$AGENT_PID")
  g=$(date +%s.%N)
  out=$(gen "$@")
  sleep 0.2 # the agent drains on a 100 ms tick
  span=$(python3 -c "import time; print(round(time.time() - $g, 3))")
  prog_stats "$AGENT_PID" >"$WORK/t1"; a1=$(proc_sample "$AGENT_PID")
  local n rate d
  n=$(gen_field "$out" events); rate=$(gen_field "$out" rate)
  # shellcheck disable=SC2086
  d=$(prog_delta "$WORK/t0" "$WORK/t1" $progs | sed -n 's/^sum://p')
  RUN_NS=${d%%:*} RUN_RUNS=${d##*:}
  local acpu aper
  acpu=$(cpu_pct "$a0" "$a1" "$span")
  aper=$(python3 -c "print(round(($(echo "$a1" | cut -d' ' -f1) - $(echo "$a0" | cut -d' ' -f1)) / max($n, 1)))")
  echo "$label: $out -> kernel ${RUN_NS} ns/event, agent ${acpu}% (${aper} ns/event)"
  result scaling "$label" "$RUN_NS" - "ns/event" - - \
    "achieved $rate/s ($n events); agent CPU ${acpu}% of a core, ${aper} ns/event"
}

port=$(free_port)
for rate in 1000 10000 100000; do
  jobs=1; [ "$rate" -gt 10000 ] && jobs=2
  run "connect @ ${rate}/s" "inet_sock_set_state tcp_receive_reset" connect "$rate" 0 "$secs" "$jobs" "$port"
done
for rate in 1000 10000 100000; do
  run "block I/O @ ${rate}/s" "block_rq_issue block_rq_complete" io "$rate" 0 "$secs" 4 "$LOOPDEV"
done
for rate in 1000 10000 100000; do
  jobs=1; [ "$rate" -gt 10000 ] && jobs=2
  run "fork/exit @ ${rate}/s" sched_process_exit fork "$rate" 0 "$secs" "$jobs"
done

# --- map pressure: tracked sockets ---------------------------------------
run "connect storm, 0 sockets held" "inet_sock_set_state tcp_receive_reset" connect 0 20000 0 1 "$port"
hport=$(free_port)
prog_stats "$AGENT_PID" >"$WORK/h0"
coproc HOLD { ulimit -n "$fdmax"; exec "$GEN" hold "$hold" "$hport"; }
on_exit "kill ${HOLD_PID} 2>/dev/null"
read -r held <&"${HOLD[0]}"
prog_stats "$AGENT_PID" >"$WORK/h1"
d=$(prog_delta "$WORK/h0" "$WORK/h1" inet_sock_set_state | sed -n 's/^sum://p')
echo "opening $held connections: ${d%%:*} ns per inet_sock_set_state run (${d##*:} runs)"
result scaling "successful connects (open $hold)" "${d%%:*}" - "ns/state change" - - \
  "${d##*:} runs of inet_sock_set_state while opening $hold loopback connections (4 per connection: client CLOSE->SYN_SENT captures the owner, SYN_SENT->ESTABLISHED, and two server-side ones the filter drops at once)"
run "connect storm, $hold sockets held" "inet_sock_set_state tcp_receive_reset" connect 0 20000 0 1 "$port"
kill "$HOLD_PID" 2>/dev/null || true

# --- map pressure: in-flight I/Os ------------------------------------------
# The agent's `inflight` map id, from its map fds.
map_id=$(bpftool map show -j | python3 -c '
import json, os, sys
pid = sys.argv[1]
ids = set()
for fd in os.listdir(f"/proc/{pid}/fd"):
    try:
        if os.readlink(f"/proc/{pid}/fd/{fd}") == "anon_inode:bpf-map":
            for l in open(f"/proc/{pid}/fdinfo/{fd}"):
                if l.startswith("map_id:"):
                    ids.add(int(l.split()[1]))
    except OSError:
        pass
for m in json.load(sys.stdin):
    if m["id"] in ids and m.get("name") == "inflight":
        print(m["id"], m["max_entries"])
' "$AGENT_PID")
read -r map_id max <<<"$map_id"
[ -n "$map_id" ] || die "agent map inflight not found"
filled=0
for want in 0 $((max / 2)) "$max"; do
  python3 -c '
import sys
mid, lo, hi = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
zero = " ".join(["00"] * 16)
for k in range(lo + 1, hi + 1):
    key = " ".join(f"{b:02x}" for b in k.to_bytes(8, "little"))
    print(f"map update id {mid} key hex {key} value hex {zero}")
' "$map_id" "$filled" "$want" >"$WORK/fill"
  # The last few may be refused (E2BIG) when real requests hold slots:
  # the table is then as full as it gets.
  [ ! -s "$WORK/fill" ] || bpftool batch file "$WORK/fill" >/dev/null 2>&1 || true
  filled=$want
  agent_counters >"$WORK/m0"
  run "block I/O, inflight map $want/$max full" "block_rq_issue block_rq_complete" io 0 0 "$secs" 4 "$LOOPDEV"
  agent_counters >"$WORK/m1"
  full=$(( $(counter_sum "$WORK/m1" 'tapio_correlation_drops_total{observer="storage",reason="inflight_table_full"}') \
    - $(counter_sum "$WORK/m0" 'tapio_correlation_drops_total{observer="storage",reason="inflight_table_full"}') ))
  miss=$(( $(counter_sum "$WORK/m1" 'tapio_correlation_drops_total{observer="storage",reason="missing_issue"}') \
    - $(counter_sum "$WORK/m0" 'tapio_correlation_drops_total{observer="storage",reason="missing_issue"}') ))
  echo "   correlation drops: inflight_table_full=$full missing_issue=$miss"
  result scaling "  correlation drops at $want/$max" "$full" - "issues not tracked" - - \
    "inflight_table_full=$full missing_issue=$miss (counted, never emitted)"
done
agent_stop

# --- the filter alone --------------------------------------------------------
# Same connect storm with every network fact off (observer enabled): each
# run of inet_sock_set_state only checks the states and the config.
(cd "$ROOT" && TAPIO_BENCH_PRINT_CONFIG=quiet-network \
  cargo bench -q -p tapio-agent --bench hot_path 2>/dev/null) >"$WORK/quiet.json"
AGENT_TOML="compiled_config = \"$WORK/quiet.json\"" agent_start
sleep 1
run "connect storm, network facts off (filter only)" inet_sock_set_state connect 0 20000 0 1 "$port"
agent_stop
