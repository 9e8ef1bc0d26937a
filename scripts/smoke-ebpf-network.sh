#!/usr/bin/env bash
# Smoke test (seed, H5): build the eBPF objects and the agent, load the real
# network observer, connect to a closed localhost port, and check that the
# agent records a connection_refused occurrence with that exact port.
# Needs root. Exit 0 on success, 1 on failure.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
[ "$(id -u)" = 0 ] || { echo "smoke-ebpf-network: needs root (CAP_BPF, CAP_PERFMON, CAP_NET_ADMIN)" >&2; exit 1; }

scripts/build-ebpf.sh target/bpf >/dev/null
cargo build --quiet -p tapio-agent
work=$(mktemp -d)
trap 'kill "$agent" 2>/dev/null || true; rm -rf "$work"' EXIT

target/debug/tapio-agent --ebpf-dir target/bpf --sink stdout --sink file --data-dir "$work/occ" \
  >"$work/out.jsonl" 2>"$work/err.log" &
agent=$!
for _ in $(seq 100); do grep -q "config applied" "$work/err.log" && break; sleep 0.1; done
grep -q "config applied" "$work/err.log" || { echo "FAIL: agent did not start"; cat "$work/err.log"; exit 1; }

# A port nothing listens on: bind an ephemeral one and release it.
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
python3 -c "import socket,sys; s=socket.socket(); r=s.connect_ex(('127.0.0.1',$port)); sys.exit(0 if r==111 else 1)" \
  || { echo "FAIL: port $port was not closed"; exit 1; }

found=""
for _ in $(seq 50); do
  if grep -q "\"dst_port\":$port[,}]" "$work/out.jsonl"; then found=yes; break; fi
  sleep 0.1
done
kill -TERM "$agent"; wait "$agent" || { echo "FAIL: agent exited non-zero on SIGTERM"; exit 1; }
[ -n "$found" ] || { echo "FAIL: no occurrence for port $port"; cat "$work/out.jsonl" "$work/err.log"; exit 1; }
line=$(grep "\"dst_port\":$port[,}]" "$work/out.jsonl" | head -1)
echo "$line" | grep -q '"type":"kernel.network.connection_refused"' || { echo "FAIL: wrong type: $line"; exit 1; }
ls "$work/occ"/*.json >/dev/null 2>&1 || { echo "FAIL: file sink wrote nothing"; exit 1; }
echo "smoke-ebpf-network: OK: connection_refused for 127.0.0.1:$port"
echo "$line"
