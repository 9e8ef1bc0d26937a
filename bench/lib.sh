# shellcheck shell=bash
# Shared helpers of the Tapio benchmarks (bench/*.sh, scripts/bench.sh).
# Source it; it defines functions and these variables:
#   ROOT       repository root
#   TARGET     cargo target dir (CARGO_TARGET_DIR, default $ROOT/target)
#   BPF_DIR    eBPF objects (TAPIO_EBPF_DIR, default $TARGET/bpf)
#   AGENT      tapio-agent release binary
#   GEN        bench/gen.c, built
#   WORK       a scratch directory removed on exit
#   RESULTS    TSV file results are appended to (BENCH_RESULTS, default $WORK/results.tsv)
# Everything a benchmark changes on the machine (bpf_stats, tracefs mount,
# loop devices, processes it started) is undone by the EXIT trap.

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
BPF_DIR=${TAPIO_EBPF_DIR:-$TARGET/bpf}
AGENT=$TARGET/release/tapio-agent
GEN=$TARGET/bench-gen
# The bench-only BPF program, outside the agent's object dir (verify-lean
# budgets every object found there).
PRODUCER=$TARGET/bench-ring_producer.o
WORK=$(mktemp -d /tmp/tapio-bench.XXXXXX)
RESULTS=${BENCH_RESULTS:-$WORK/results.tsv}

_cleanup_cmds=()
# Registers a command for the EXIT trap; they run last-registered first.
on_exit() { _cleanup_cmds+=("$*"); }
_run_cleanup() {
  local i
  for ((i = ${#_cleanup_cmds[@]} - 1; i >= 0; i--)); do
    eval "${_cleanup_cmds[$i]}" || true
  done
  rm -rf "$WORK"
}
trap _run_cleanup EXIT
trap 'exit 130' INT TERM

die() { echo "bench: $*" >&2; exit 1; }

need_root() { [ "$(id -u)" = 0 ] || die "run as root (BPF, loop devices, tracefs)"; }

# Builds the eBPF objects, the release agent, the generator and the ring
# producer, unless BENCH_NO_BUILD=1 (then they must exist).
build_all() {
  if [ "${BENCH_NO_BUILD:-0}" != 1 ]; then
    "$ROOT/scripts/build-ebpf.sh" "$BPF_DIR" >/dev/null
    (cd "$ROOT" && CARGO_TARGET_DIR=$TARGET cargo build -q --release -p tapio-agent)
    gcc -O2 -Wall -Wextra -o "$GEN" "$ROOT/bench/gen.c"
    clang -O2 -g -target bpf -D__TARGET_ARCH_x86 -Wall -Werror \
      -I "$ROOT/target/bpf-include" -I "$ROOT/ebpf" -I "/usr/include/$(gcc -print-multiarch)" \
      -c "$ROOT/bench/ring_producer.bpf.c" -o "$PRODUCER"
  fi
  [ -x "$AGENT" ] || die "$AGENT missing"
  [ -x "$GEN" ] || die "$GEN missing"
}

# Installs the peer tools (Debian libbpf-tools) when missing.
need_peers() {
  command -v tcpstates >/dev/null && command -v biolatency >/dev/null \
    && command -v exitsnoop >/dev/null && return
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq libbpf-tools >/dev/null
}

# kernel.bpf_stats_enabled=1 for the run; restored on exit.
stats_on() {
  local old
  old=$(cat /proc/sys/kernel/bpf_stats_enabled)
  on_exit "sysctl -q kernel.bpf_stats_enabled=$old"
  sysctl -q kernel.bpf_stats_enabled=1
}

# Mounts tracefs when it is not (libbpf-tools attach classic tracepoints
# through it; Tapio does not need it); unmounted on exit if we mounted it.
tracefs_on() {
  [ -e /sys/kernel/tracing/events ] && return
  mount -t tracefs nodev /sys/kernel/tracing
  on_exit "umount /sys/kernel/tracing"
}

# Prints the 1-minute load average.
load1() { cut -d' ' -f1 /proc/loadavg; }

# Waits until the 1-minute load average is below $1 (default 1.0) or $2
# seconds (default 0 = do not wait) have passed; prints the load seen.
wait_quiet() {
  local max=${1:-1.0} limit=${2:-0} t=0
  while [ "$t" -lt "$limit" ] && ! awk -v l="$(load1)" -v m="$max" 'BEGIN{exit !(l < m)}'; do
    sleep 10; t=$((t + 10))
  done
  load1
}

# A free loopback port (nothing listens on it: connects are refused).
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# Starts the agent on the built-in production-default profile (or the TOML
# in $AGENT_TOML) with the file sink into $WORK/occ; sets AGENT_PID. Extra
# args go to the agent.
agent_start() {
  mkdir -p "$WORK/occ"
  # Empty unless AGENT_TOML is set: the built-in production default,
  # whatever /etc/tapio holds.
  printf '%s\n' "${AGENT_TOML:-}" >"$WORK/tapio.toml"
  "$AGENT" --config "$WORK/tapio.toml" --ebpf-dir "$BPF_DIR" --sink file --data-dir "$WORK/occ" "$@" \
    >"$WORK/agent.out" 2>"$WORK/agent.log" &
  AGENT_PID=$!
  on_exit "agent_stop"
  local _
  for _ in $(seq 150); do grep -qs "config applied" "$WORK/agent.log" && return; sleep 0.1; done
  cat "$WORK/agent.log" >&2
  die "agent did not apply its config"
}
agent_stop() {
  [ -n "${AGENT_PID:-}" ] || return 0
  kill -TERM "$AGENT_PID" 2>/dev/null && wait "$AGENT_PID" 2>/dev/null
  AGENT_PID=
}

# Starts a peer tool with output to $WORK/<name>.out; sets PEER_PID once
# its programs are attached (it owns at least $2 programs, default 1).
peer_start() {
  local name=$1 want=${2:-1}; shift 2
  "$@" >"$WORK/$name.out" 2>"$WORK/$name.err" &
  PEER_PID=$!
  on_exit "kill -TERM $PEER_PID 2>/dev/null; wait $PEER_PID 2>/dev/null"
  local _
  for _ in $(seq 100); do
    [ "$(prog_stats "$PEER_PID" | wc -l)" -ge "$want" ] && sleep 0.2 && return
    kill -0 "$PEER_PID" 2>/dev/null || break
    sleep 0.1
  done
  cat "$WORK/$name.err" >&2
  die "$name did not attach"
}
peer_stop() {
  { kill -TERM "$PEER_PID" 2>/dev/null && wait "$PEER_PID" 2>/dev/null; } || true
  PEER_PID=
}

# "name run_time_ns run_cnt" of every BPF program process $1 holds open.
# Read from /proc/<pid>/fdinfo (bpf-prog fds carry prog_id, run_time_ns,
# run_cnt): bpftool's pid column needs a BPF iterator this kernel refuses.
prog_stats() {
  bpftool prog show -j | python3 -c '
import json, os, sys
pid = sys.argv[1]
names = {p["id"]: p.get("name", "?") for p in json.load(sys.stdin)}
seen = set()
for fd in os.listdir(f"/proc/{pid}/fd"):
    try:
        if os.readlink(f"/proc/{pid}/fd/{fd}") != "anon_inode:bpf-prog":
            continue
        info = dict(l.split(":", 1) for l in open(f"/proc/{pid}/fdinfo/{fd}") if ":" in l)
    except OSError:
        continue
    pid_ = int(info.get("prog_id", "0"))
    if pid_ in seen:
        continue
    seen.add(pid_)
    print(names.get(pid_, "?"), int(info.get("run_time_ns", "0")), int(info.get("run_cnt", "0")))
' "$1"
}

# ns per run of the named programs between snapshot files $1 and $2,
# "name:ns:runs" per program, then "sum:<ns per event>:<events>" where an
# event is one run of the first program (e.g. issue+complete per I/O).
prog_delta() {
  python3 - "$@" <<'PY'
import sys
def load(p):
    d = {}
    for l in open(p):
        f = l.split()
        if len(f) == 3:
            t, c = d.get(f[0], (0, 0))
            d[f[0]] = (t + int(f[1]), c + int(f[2]))
    return d
a, b = load(sys.argv[1]), load(sys.argv[2])
total, events = 0, None
for n in sys.argv[3:]:
    dt = b.get(n, (0, 0))[0] - a.get(n, (0, 0))[0]
    dc = b.get(n, (0, 0))[1] - a.get(n, (0, 0))[1]
    if events is None:
        events = dc
    total += dt
    print(f"{n}:{dt / dc if dc else 0:.1f}:{dc}")
print(f"sum:{total / events if events else 0:.1f}:{events or 0}")
PY
}

# "cpu_ns rss_kb hwm_kb" of process $1: CPU time on core summed over its
# threads (/proc/<pid>/task/*/schedstat, ns resolution; /proc/<pid>/stat
# utime+stime only counts 10 ms ticks), VmRSS and VmHWM.
proc_sample() {
  local ns
  ns=$(cat /proc/"$1"/task/*/schedstat 2>/dev/null | awk '{s += $1} END {printf "%d", s}')
  echo "$ns $(awk '/^VmRSS/{r=$2} /^VmHWM/{h=$2} END{print r, h}' "/proc/$1/status")"
}

# CPU % of one core between two proc_sample lines over $3 seconds.
cpu_pct() {
  python3 -c "import sys; a,b,s=int(sys.argv[1]),int(sys.argv[2]),float(sys.argv[3]); print(f'{(b-a)/1e9/s*100:.3f}')" \
    "${1%% *}" "${2%% *}" "$3"
}

# The agent's status-file counters, after it rewrote the file (it does every
# 5 s, and on exit): waits for a write newer than now unless $1 is
# "nowait", then prints "name value" lines.
agent_counters() {
  local f=$WORK/occ/.tapio-status.json since _
  since=$(date +%s)
  [ "${1:-}" = nowait ] && since=0
  for _ in $(seq 70); do
    [ -f "$f" ] && [ "$(stat -c %Y "$f")" -gt "$since" ] && break
    sleep 0.1
  done
  python3 -c '
import json, sys
for k, v in json.load(open(sys.argv[1]))["counters"].items():
    print(k, v)
' "$f"
}

# Sum of the counters in file $1 whose names start with $2.
counter_sum() { awk -v p="$2" 'index($1, p) == 1 {s += $2} END {print s + 0}' "$1"; }

# Creates a loop device with direct I/O over a 256 MiB file; sets LOOPDEV.
loop_start() {
  dd if=/dev/zero of="$WORK/backing" bs=1M count=256 status=none
  LOOPDEV=$(losetup --find --show --direct-io=on "$WORK/backing")
  on_exit "losetup -d $LOOPDEV"
}

# Runs the generator: gen MODE RATE COUNT SECONDS JOBS [ARG]; prints its line.
gen() { "$GEN" "$@"; }
# Field $2 (events, seconds, rate, errors) of a generator line $1.
gen_field() { tr ' ' '\n' <<<"$1" | sed -n "s/^$2=//p"; }

# Appends a result row: section metric tapio peer unit goal met note.
# Fields may not contain tabs.
result() {
  local IFS=$'\t'
  echo "$*	load=$(load1)" >>"$RESULTS"
}

# ratio a/b with one decimal, "-" when either is missing or zero.
ratio() { python3 -c "import sys; a,b=sys.argv[1],sys.argv[2]; print('-' if a in ('','-') or b in ('','-') or float(b)==0 else f'{float(a)/float(b):.2f}')" "$1" "$2"; }
