#!/usr/bin/env bash
# Measures, on this machine, the network observer under a storm of N refused
# loopback connects (default 20000): BPF cost per hook (kernel.bpf_stats,
# run_time_ns / run_cnt), the storm's accounting (sum of folded counts +
# lost in the kernel = N) and the agent's release binary size.
# Not a test: prints numbers. Needs root.
set -euo pipefail
N=${1:-20000}
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
EBPF_DIR=${EBPF_DIR:-target/bpf}
[ "$EBPF_DIR" != target/bpf ] || scripts/build-ebpf.sh target/bpf >/dev/null
AGENT=${TAPIO_AGENT_BIN:-target/release/tapio-agent}
[ -n "${TAPIO_AGENT_BIN:-}" ] || cargo build --quiet --release -p tapio-agent
work=$(mktemp -d)
trap 'kill "$agent" 2>/dev/null || true; sysctl -q kernel.bpf_stats_enabled=0; rm -rf "$work"' EXIT
sysctl -q kernel.bpf_stats_enabled=1

"$AGENT" --ebpf-dir "$EBPF_DIR" --sink stdout --sink file --data-dir "$work/occ" \
  >"$work/out.jsonl" 2>"$work/err.log" &
agent=$!
for _ in $(seq 100); do grep -q "config applied" "$work/err.log" && break; sleep 0.1; done

stats() { # name -> "run_time_ns run_cnt" of this agent's program (id from its log)
  local id
  id=$(grep "program attached" "$work/err.log" | grep "program=$1 " | sed -n 's/.*id=\([0-9]*\).*/\1/p' | head -1)
  [ -n "$id" ] || { echo "0 0"; return; }
  bpftool prog show id "$id" -j | python3 -c "
import json,sys
p=json.load(sys.stdin); print(p.get('run_time_ns',0), p.get('run_cnt',0))"
}
progs="inet_sock_set_state tcp_receive_reset tcp_retransmit_skb rtt_sockops tcp_probe"
declare -A before
for p in $progs; do before[$p]=$(stats $p); done

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
start=$(date +%s.%N)
python3 - "$port" "$N" <<'PY'
import socket, sys
port, n = int(sys.argv[1]), int(sys.argv[2])
refused = 0
for _ in range(n):
    s = socket.socket()
    if s.connect_ex(("127.0.0.1", port)) == 111:
        refused += 1
    s.close()
assert refused == n, f"only {refused} of {n} refused"
PY
end=$(date +%s.%N)

echo "== BPF cost per hook under $N refused loopback connects (bpf_stats) =="
printf "%-22s %12s %14s %10s\n" program run_cnt run_time_ns ns/call
for p in $progs; do
  read -r t0 c0 <<<"${before[$p]}"; read -r t1 c1 <<<"$(stats $p)"
  dc=$((c1-c0)); dt=$((t1-t0))
  printf "%-22s %12d %14d %10s\n" "$p" "$dc" "$dt" "$([ $dc -gt 0 ] && echo $((dt/dc)) || echo -)"
done
sleep 1
kill -TERM "$agent"; wait "$agent"
python3 - "$work" "$port" "$N" <<'PY'
import json, sys, os
work, port, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
occ = [json.loads(l) for l in open(os.path.join(work, "out.jsonl"))]
mine = [o for o in occ if o["type"] == "kernel.network.connection_refused" and o["data"]["dst_port"] == port]
counted = sum(o["data"].get("count", 1) for o in mine)
st = json.load(open(os.path.join(work, "occ", ".tapio-status.json")))
lost = st["counters"]['tapio_lost_events_total{observer="network"}']
drops = sum(v for k, v in st["counters"].items() if k.startswith("tapio_sink_drops_total"))
print(f"== accounting == connects={n} occurrences={len(mine)} folded_count_sum={counted} kernel_lost={lost} sink_drops={drops}")
print(f"folded counts + lost = {counted + lost} (expected {n}): {'OK' if counted + lost == n else 'MISMATCH'}")
PY
echo "storm duration: $(python3 -c "print(round($end-$start,2))") s"
echo "tapio-agent release size: $(stat -c %s "$AGENT") bytes"
