#!/usr/bin/env bash
# Measures the in-kernel cost of the storage and container observers with
# BPF run-time statistics (kernel.bpf_stats_enabled): average ns per run of
# block_rq_issue + block_rq_complete under sustained direct I/O on a loop
# device, and of sched_process_exit under a fork/exit storm (clean exits,
# then abnormal ones, which take the record path). Prints numbers; not a
# test. Root only; restores bpf_stats_enabled and removes what it made.
# Usage: scripts/measure-bpf-cost-storage-container.sh [IOS] [FORKS]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
ios=${1:-200000}
forks=${2:-5000}
target=${CARGO_TARGET_DIR:-$root/target}
bpf=${TAPIO_EBPF_DIR:-$target/bpf}
work=$(mktemp -d /tmp/tapio-bpfcost.XXXXXX)
agent_pid= loopdev= backing= old_stats=$(cat /proc/sys/kernel/bpf_stats_enabled)

cleanup() {
  [ -n "$agent_pid" ] && kill "$agent_pid" 2>/dev/null && wait "$agent_pid" 2>/dev/null || true
  [ -n "$loopdev" ] && losetup -d "$loopdev" 2>/dev/null || true
  sysctl -q kernel.bpf_stats_enabled="$old_stats" || true
  rm -rf "$work"
  [ -n "$backing" ] && rm -f "$backing" || true
}
trap cleanup EXIT

"$root/scripts/build-ebpf.sh" "$bpf" >/dev/null
(cd "$root" && cargo build -q -p tapio-agent)
python3 - "$work/compiled.json" <<'PY'
import json, sys
cfg = {
  "profile": "bpf-cost", "fold_window_ms": 10000,
  "network": {"enabled": False, "connect_failures": False, "retransmits": False, "rtt": False,
              "retransmit_threshold": 20, "retransmit_window_ms": 10000, "rtt_sample_interval_ms": 0,
              "rtt_ratio_permille": 3000, "rtt_floor_us": 10000, "rtt_min_samples": 5,
              "rtt_report_interval_ms": 30000},
  "container": {"enabled": True, "oom_kill": True, "abnormal_exit": True,
                "fatal_signals": [4, 6, 7, 8, 9, 11, 31], "exit_codes": []},
  "storage": {"enabled": True, "io_errors": True, "latency": True,
              "latency_warning_us": 100000, "latency_critical_us": 1000000},
  "node": {"enabled": False, "window_ms": 10000, "cpu_stall_permille": 0,
           "memory_pressure_permille": 0, "ipc_min_permille": 0},
}
json.dump(cfg, open(sys.argv[1], "w"))
PY
printf 'compiled_config = "%s"\n' "$work/compiled.json" > "$work/tapio.toml"
"$target/debug/tapio-agent" --config "$work/tapio.toml" --ebpf-dir "$bpf" --sink stdout \
  >"$work/out.jsonl" 2>"$work/agent.log" &
agent_pid=$!
for _ in $(seq 100); do grep -q "config applied" "$work/agent.log" && break; sleep 0.1; done
grep -q "config applied" "$work/agent.log" || { cat "$work/agent.log" >&2; exit 1; }
sysctl -q kernel.bpf_stats_enabled=1

# name run_time_ns run_cnt of the newest program of each name (this agent's:
# it loaded last).
snap() {
  bpftool prog show -j | python3 -c '
import json, sys
newest = {}
for p in json.load(sys.stdin):
    if p.get("id", 0) > newest.get(p.get("name"), {}).get("id", -1):
        newest[p.get("name")] = p
for name, p in newest.items():
    print(name, p.get("run_time_ns", 0), p.get("run_cnt", 0))
'
}
# Prints avg ns per run of each named program between two snapshots.
report() {
  python3 -c '
import sys
a = {l.split()[0]: list(map(int, l.split()[1:])) for l in open(sys.argv[1]) if l.strip()}
b = {l.split()[0]: list(map(int, l.split()[1:])) for l in open(sys.argv[2]) if l.strip()}
total = 0.0
for name in sys.argv[4:]:
    dt = b[name][0] - a[name][0]; dn = b[name][1] - a[name][1]
    avg = dt / dn if dn else float("nan")
    total += avg if dn else 0
    print(f"  {name:22s} runs={dn:9d} avg={avg:8.1f} ns")
print(f"  {sys.argv[3]:22s} {total:.1f} ns")
' "$@"
}

# Storage: a loop device with direct I/O over a tmpfs file (CPU-bound, so
# the programs run as often as the block layer can go), read with O_DIRECT.
backing=$(mktemp /dev/shm/tapio-bpfcost.XXXXXX)
dd if=/dev/zero of="$backing" bs=1M count=64 status=none
loopdev=$(losetup --find --show --direct-io=on "$backing")
dd if="$loopdev" of=/dev/null bs=4k count=1000 iflag=direct status=none
snap > "$work/s0"
t0=$(date +%s.%N)
# 64 MiB = 16384 blocks per pass; each reader loops over the device.
readers=()
for _ in 1 2 3 4; do
  (left=$((ios / 4)); while [ "$left" -gt 0 ]; do
     n=$((left < 16384 ? left : 16384))
     dd if="$loopdev" of=/dev/null bs=4k count=$n iflag=direct status=none
     left=$((left - n))
   done) &
  readers+=($!)
done
wait "${readers[@]}"
t1=$(date +%s.%N)
snap > "$work/s1"
echo "storage: $ios direct 4 KiB reads on $loopdev (4 readers) in $(python3 -c "print(round($t1-$t0,2))") s"
report "$work/s0" "$work/s1" "issue+complete per I/O" block_rq_issue block_rq_complete

# Container: clean exits (the hot path) then abnormal ones (record path).
snap > "$work/c0"
sh -c "i=0; while [ \$i -lt $forks ]; do /bin/true; i=\$((i+1)); done"
snap > "$work/c1"
echo "container: fork/exec/exit storm of $forks clean exits"
report "$work/c0" "$work/c1" "per exit" sched_process_exit
n=$((forks / 5))
sh -c "i=0; while [ \$i -lt $n ]; do sh -c 'kill -SEGV \$\$' 2>/dev/null; i=\$((i+1)); done" 2>/dev/null || true
snap > "$work/c2"
echo "container: $n SIGSEGV deaths (each reported; plus their clean sh parents' exits)"
report "$work/c1" "$work/c2" "per exit" sched_process_exit
echo "records printed: $(wc -l < "$work/out.jsonl")"
