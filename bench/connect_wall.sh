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
port=$(free_port)
lport=$(free_port)
echo "connect_wall: $REPS rounds x $N connects per mode, generator on CPU $cpu, load $(load1)"

# One run of the generator: seconds per event, in ns.
per_event() { # mode args...
  local out n secs
  out=$(taskset -c "$cpu" "$GEN" "$@")
  n=$(gen_field "$out" events); secs=$(gen_field "$out" seconds)
  [ "$(gen_field "$out" errors)" = 0 ] || die "generator errors: $out"
  python3 -c "print(round($secs * 1e9 / $n))"
}

: >"$WORK/wall.tsv"
for r in $(seq "$REPS"); do
  for mode in off tapio tcpstates; do
    case $mode in
      tapio) agent_start ;;
      tcpstates) peer_start tcpstates 1 tcpstates ;;
    esac
    tool=
    case $mode in tapio) tool=$AGENT_PID ;; tcpstates) tool=$PEER_PID ;; esac
    for kind in refused accepted; do
      if [ $kind = refused ]; then args=(connect 0 "$N" 0 1 "$port") n=$N
      else args=(accept 0 "$((N / 5))" 0 1 "$lport") n=$((N / 5)); fi
      c0=0 c1=0
      [ -z "$tool" ] || c0=$(proc_sample "$tool" | cut -d' ' -f1)
      ns=$(per_event "${args[@]}")
      # The tool's last records are drained on its next tick.
      [ -z "$tool" ] || { sleep 0.3; c1=$(proc_sample "$tool" | cut -d' ' -f1); }
      printf '%s\t%s\t%s\t%s\n' "$mode" $kind "$ns" $(((c1 - c0) / n)) >>"$WORK/wall.tsv"
    done
    case $mode in
      tapio) agent_stop ;;
      tcpstates) peer_stop ;;
    esac
  done
  echo "round $r/$REPS done (load $(load1))"
done

python3 - "$WORK/wall.tsv" <<'PY'
import statistics, sys
rows = [l.split("\t") for l in open(sys.argv[1]).read().split("\n") if l]
data = {}
cpu = {}
for mode, kind, ns, tool_ns in rows:
    data.setdefault((mode, kind), []).append(int(ns))
    cpu.setdefault((mode, kind), []).append(int(tool_ns))
print()
print("| connect | mode | median ns per connect | spread (min-max) | over off, ns | the tool's own CPU, ns per connect (median) |")
print("|---|---|---:|---:|---:|---:|")
for kind in ("refused", "accepted"):
    off = statistics.median(data[("off", kind)])
    for mode in ("off", "tapio", "tcpstates"):
        v = data[(mode, kind)]
        m = statistics.median(v)
        delta = "-" if mode == "off" else f"{m - off:+.0f}"
        own = "-" if mode == "off" else f"{statistics.median(cpu[(mode, kind)]):.0f}"
        print(f"| {kind} | {mode} | {m:.0f} | {min(v)}-{max(v)} | {delta} | {own} |")
PY

# Rows for scripts/bench.sh's summary.
python3 - "$WORK/wall.tsv" >"$WORK/wall.rows" <<'PY'
import statistics, sys
rows = [l.split("\t") for l in open(sys.argv[1]).read().split("\n") if l]
med = lambda mode, kind, i: statistics.median(int(r[i]) for r in rows if r[0] == mode and r[1] == kind)
for kind in ("refused", "accepted"):
    off = med("off", kind, 2)
    print(kind, round(off), round(med("tapio", kind, 2) - off), round(med("tcpstates", kind, 2) - off),
          round(med("tapio", kind, 3)), round(med("tcpstates", kind, 3)))
PY
while read -r kind off t p tc pc; do
  what="refused connect"
  [ "$kind" = refused ] || what="successful connection (accepted, both ends closed)"
  result "connects, wall clock" "$what: generator time over nothing attached" "$t" "$p" "ns per connect" - - \
    "medians of $REPS rounds x $N; nothing attached $off ns; bpf_stats off"
  result "connects, wall clock" "$what: the tool's own CPU" "$tc" "$pc" "ns per connect" - - \
    "agent drain + fold + file sink / tcpstates printing, on any CPU"
done <"$WORK/wall.rows"
