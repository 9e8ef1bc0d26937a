#!/usr/bin/env bash
# Runs every Tapio benchmark and prints one summary table (issue 9):
#   1. userspace hot path (cargo bench --bench hot_path), including the
#      drain of a real BPF ring buffer fed by a synthetic producer; the
#      attribution bench (--bench attribution); the agent's peak RSS
#      (VmHWM) during start-up;
#   2. bench/storms.sh: idle agent, then Tapio and the libbpf-tools peer
#      attached at once under a connect, block I/O and fork/exit storm;
#   2b. bench/connect_wall.sh: a connect's cost by the generator's wall
#      clock (bpf_stats off) with nothing, Tapio or tcpstates attached;
#   3. bench/scaling.sh: cost against event rate and map pressure;
#   4. bench/tcp_probe.sh: the three RTT hooks (the iterator, the default
#      on 5.11+; sock_ops; the tcp_probe fallback) under bulk loopback and
#      veth transfers (iperf3), agent attached vs not, and the iterator's
#      pass cost against 1,000 and 9,000 owned connections.
# Not part of the test suite. Root only; about 15 minutes once built (most
# of it bench/tcp_probe.sh).
# Environment:
#   CARGO_TARGET_DIR   build here (default target/)
#   BENCH_WAIT_QUIET   wait up to this many seconds for the 1-minute load
#                      average to fall below 1.0 before measuring (default 0)
#   BENCH_IDLE         idle seconds (default 60)
#   BENCH_OUT          also copy the raw result rows (TSV) here
#   BENCH_PROBE_REPS   iperf3 runs per path and mode (default 5)
#   BENCH_WALL_REPS    rounds of bench/connect_wall.sh (default 7)
set -euo pipefail
# shellcheck source=bench/lib.sh
source "$(dirname "$0")/../bench/lib.sh"
need_root
need_peers
build_all
# Build the bench binary now: compiling while waiting for quiet, or inside
# the measurement, would load the machine being measured.
(cd "$ROOT" && CARGO_TARGET_DIR=$TARGET cargo bench -q -p tapio-agent --bench hot_path --bench attribution --no-run 2>/dev/null)
export BENCH_RESULTS=$RESULTS BENCH_NO_BUILD=1 CARGO_TARGET_DIR=$TARGET
: >"$RESULTS"
echo "bench: load average before measuring: $(wait_quiet 1.0 "${BENCH_WAIT_QUIET:-0}")"
started=$(date +%s)

# --- 1. userspace hot path -------------------------------------------------
echo "== hot path (cargo bench -p tapio-agent --bench hot_path)"
(cd "$ROOT" && TAPIO_BENCH_PRODUCER=$PRODUCER \
  cargo bench -q -p tapio-agent --bench hot_path 2>/dev/null) | tee "$WORK/hot.txt"
# case records rec/s-wall rec/s-cpu ns/rec note...
while read -r name records wall cpu ns note; do
  case $name in
    network/distinct|network/storm|ring/drain+pipeline) goal=">= 1000000"
      met=$(awk -v v="$cpu" 'BEGIN{print (v >= 1000000) ? "yes" : "no"}') ;;
    *) goal=- met=- ;;
  esac
  result "hot path" "$name" "$cpu" - "records/s per core" "$goal" "$met" \
    "$ns ns/record CPU, $wall records/s wall; $note"
done < <(awk '$2 ~ /^[0-9]+$/' "$WORK/hot.txt")

# --- 1b. attribution on the drain path (issue 14) ----------------------------
echo "== attribution (cargo bench -p tapio-agent --bench attribution)"
(cd "$ROOT" && cargo bench -q -p tapio-agent --bench attribution 2>/dev/null) | tee "$WORK/attr.txt"
# case median rounds...: the cost of a cached lookup per emitted occurrence.
python3 - "$WORK/attr.txt" >"$WORK/attr.row" <<'PY'
import sys
m = {l.split()[0]: float(l.split()[1]) for l in open(sys.argv[1]) if l.split()[1:2] and l.split()[1].replace('.', '', 1).isdigit()}
print(f"{m['distinct+attr'] - m['distinct']:.0f}\t{m['distinct']:.0f}\t{m['distinct+attr']:.0f}\t{m['annotate-only']:.0f}"
      f"\t{m['drain+attr'] - m['drain']:.0f}\t{m['drain']:.0f}\t{m['drain+attr']:.0f}")
PY
IFS=$'\t' read -r attr_gap attr_off attr_on attr_only drain_gap drain_off drain_on <"$WORK/attr.row"
result "hot path" "attribution, cached, per distinct occurrence" "$attr_gap" - "ns/record" - - \
  "median ns/record CPU: distinct $attr_off, distinct+attr $attr_on; annotate alone $attr_only"
result "hot path" "attribution, cached, on the drain path (no serialization)" "$drain_gap" - "ns/record" - - \
  "median ns/record CPU: drain $drain_off, drain+attr $drain_on"

# --- 1c. start-up peak RSS (issue 15) -----------------------------------------
# Not timed: the agent's VmHWM once it has loaded every object and applied
# its config (kernel BTF parsed and dropped), and its VmRSS then.
echo "== start-up peak RSS (VmHWM after loading)"
agent_start
read -r _ up_rss up_hwm <<<"$(proc_sample "$AGENT_PID")"
agent_stop
echo "start-up: VmHWM ${up_hwm} kB, VmRSS ${up_rss} kB"
result agent "peak RSS during start-up" "$(python3 -c "print(round($up_hwm/1024,1))")" - MB "<= 20" \
  "$(awk -v v="$up_hwm" 'BEGIN{print (v <= 20480) ? "yes" : "no"}')" "VmHWM after loading; VmRSS then ${up_rss} kB"

# --- 2 and 3 ------------------------------------------------------------------
"$ROOT/bench/storms.sh" "${BENCH_IDLE:-60}"
"$ROOT/bench/connect_wall.sh" "${BENCH_WALL_REPS:-7}"
"$ROOT/bench/scaling.sh"
"$ROOT/bench/tcp_probe.sh" "${BENCH_PROBE_REPS:-5}"

[ -z "${BENCH_OUT:-}" ] || cp "$RESULTS" "$BENCH_OUT"
echo
echo "== summary ($(($(date +%s) - started)) s; load = 1-minute load average when the row was taken)"
python3 - "$RESULTS" <<'PY'
import sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1]) if l.strip()]
head = ["section", "metric", "tapio", "peer", "tapio/peer", "unit", "goal", "met", "load"]
out = [head]
for r in rows:
    sec, metric, tapio, peer, unit, goal, met = r[:7]
    load = r[-1].removeprefix("load=")
    try:
        ratio = f"{float(tapio) / float(peer):.2f}" if peer not in ("-", "") and float(peer) else "-"
    except ValueError:
        ratio = "-"
    out.append([sec, metric, tapio, peer, ratio, unit, goal, met, load])
w = [max(len(r[i]) for r in out) for i in range(len(head))]
for r in out:
    print("  ".join(c.ljust(w[i]) for i, c in enumerate(r)).rstrip())
print()
print("notes:")
for r in rows:
    if len(r) > 8 and r[7] not in ("", "-"):
        print(f"  {r[0]} / {r[1]}: {r[7]}")
PY
