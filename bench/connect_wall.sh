#!/usr/bin/env bash
# What a connect costs the process that makes it, by the wall clock, with
# nothing attached, with Tapio's agent (built-in default), and with the
# libbpf-tools peer `tcpstates`: the generator's own time per refused
# connect and per successful loopback connection (accepted, both ends
# closed), pinned to one CPU so the hooks' softirq work lands on it too.
# `kernel.bpf_stats_enabled` is 0 throughout: unlike the per-program
# figures of bench/storms.sh, these carry no cost of the measurement (the
# ~50 ns per program run that bpf_stats' clock reads add here).
#
# Usage: sudo bench/connect_wall.sh [REPS=7] [N=50000]
#   Modes run round-robin REPS times (off, tapio, tcpstates, off, ...), so
#   a drift in the machine's speed falls on all three alike; the table
#   gives each mode's median, the spread, and the median's difference from
#   "off" in ns per connect, and the tool's own CPU time per connect (its
#   threads on any CPU: the agent's drain, folding and sinks; tcpstates'
#   printing), which is not in the generator's time unless the scheduler
#   put the tool on the generator's CPU. Not a test: prints numbers.
set -euo pipefail
# shellcheck source=bench/lib.sh
source "$(dirname "$0")/lib.sh"
REPS=${1:-7}
N=${2:-50000}
need_root
need_peers
build_all
tracefs_on
old_stats=$(cat /proc/sys/kernel/bpf_stats_enabled)
on_exit "sysctl -q kernel.bpf_stats_enabled=$old_stats"
sysctl -q kernel.bpf_stats_enabled=0
cpu=$(($(nproc) - 1))
# The generator runs in a network namespace of its own, where closed
# connections skip TIME_WAIT (tcp_max_tw_buckets=0): tens of thousands of
# TIME_WAIT sockets from earlier runs would make every later connect search
# longer for a free local port, so each run would be slower than the one
# before it, whatever is attached.
wallns=tapio-wall-$$
ip netns add "$wallns"
on_exit "ip netns del $wallns"
ip -n "$wallns" link set lo up
ip netns exec "$wallns" sysctl -q net.ipv4.tcp_max_tw_buckets=0
port=7801
lport=7811
echo "connect_wall: $REPS rounds x $N connects per mode, generator on CPU $cpu, load $(load1)"

# One run of the generator: seconds per event, in ns.
per_event() { # gen args...
  local out n secs
  out=$(ip netns exec "$wallns" taskset -c "$cpu" "$GEN" "$@")
  n=$(gen_field "$out" events); secs=$(gen_field "$out" seconds)
  [ "$(gen_field "$out" errors)" = 0 ] || die "generator errors: $out"
  python3 -c "print(round($secs * 1e9 / $n))"
}

: >"$WORK/wall.tsv"
for r in $(seq "$REPS"); do
  for mode in off tapio tcpstates; do
    tool=
    case $mode in
      tapio) agent_start; tool=$AGENT_PID ;;
      tcpstates) peer_start tcpstates 1 tcpstates; tool=$PEER_PID ;;
    esac
    for kind in refused accepted; do
      if [ $kind = refused ]; then args=(connect 0 "$N" 0 1 "$port") n=$N
      else args=(accept 0 "$((N / 5))" 0 1 "$lport") n=$((N / 5)); fi
      c0=0 c1=0
      [ -z "$tool" ] || c0=$(proc_sample "$tool" | cut -d' ' -f1)
      ns=$(per_event "${args[@]}")
      # The tool's last records are drained on its next tick.
      [ -z "$tool" ] || { sleep 0.3; c1=$(proc_sample "$tool" | cut -d' ' -f1); }
      printf '%s\t%s\t%s\t%s\t%s\n' "$r" "$mode" $kind "$ns" $(((c1 - c0) / n)) >>"$WORK/wall.tsv"
    done
    case $mode in
      tapio) agent_stop ;;
      tcpstates) peer_stop ;;
    esac
  done
  echo "round $r/$REPS done (load $(load1))"
done

# The difference from "off" is taken within each round (the runs of a
# round are seconds apart, so a slower or faster spell of the host falls
# on both), then its median over rounds, with the quartiles.
python3 - "$WORK/wall.tsv" "$WORK/wall.rows" <<'PY'
import statistics, sys
rows = [l.split("\t") for l in open(sys.argv[1]).read().split("\n") if l]
ns = {(r, m, k): int(v) for r, m, k, v, _ in rows}
own = {(r, m, k): int(c) for r, m, k, _, c in rows}
rounds = sorted({r for r, *_ in rows}, key=int)
q = lambda v: statistics.quantiles(v, n=4) if len(v) > 1 else [v[0]] * 3
print()
print("| connect | mode | median ns per connect | spread (min-max) | over off in the same round, median (quartiles) | the tool's own CPU, ns per connect |")
print("|---|---|---:|---:|---:|---:|")
out = open(sys.argv[2], "w")
for kind in ("refused", "accepted"):
    med = {}
    for mode in ("off", "tapio", "tcpstates"):
        v = [ns[(r, mode, kind)] for r in rounds]
        d = [ns[(r, mode, kind)] - ns[(r, "off", kind)] for r in rounds]
        c = statistics.median(own[(r, mode, kind)] for r in rounds)
        med[mode] = (statistics.median(d), c)
        over = "-" if mode == "off" else f"{statistics.median(d):+.0f} ({q(d)[0]:+.0f} to {q(d)[2]:+.0f})"
        print(f"| {kind} | {mode} | {statistics.median(v):.0f} | {min(v)}-{max(v)} | {over} | {'-' if mode == 'off' else f'{c:.0f}'} |")
    off = statistics.median(ns[(r, "off", kind)] for r in rounds)
    print(kind, round(off), round(med["tapio"][0]), round(med["tcpstates"][0]),
          round(med["tapio"][1]), round(med["tcpstates"][1]), file=out)
PY
while read -r kind off t p tc pc; do
  what="refused connect"
  [ "$kind" = refused ] || what="successful connection (accepted, both ends closed)"
  result "connects, wall clock" "$what: generator time over nothing attached" "$t" "$p" "ns per connect" - - \
    "median over $REPS rounds of the difference within a round, $N refused / $((N / 5)) accepted each; nothing attached $off ns; bpf_stats off"
  result "connects, wall clock" "$what: the tool's own CPU" "$tc" "$pc" "ns per connect" - - \
    "agent drain + fold + file sink / tcpstates printing, on any CPU"
done <"$WORK/wall.rows"
