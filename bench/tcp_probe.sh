#!/usr/bin/env bash
# The RTT hook proven harmless (issue 15): Tapio's RTT sampling under bulk
# TCP, and what the whole agent costs that transfer, for the three hooks the
# agent can choose (observers/network/rtt_hook.rs):
#   - iter: `rtt_iter`, the default where owners live in socket storage: an
#     iterator over the owned sockets that the agent runs once per sample
#     interval; no segment runs it (its calls are visits of owned sockets);
#   - sockops: `rtt_sockops` on the cgroup v2 root (`[network] rtt_hook =
#     "sock_ops"`, the default on 5.10); it runs per RTT measurement of the
#     sockets Tapio saw connect (here the iperf3 client's) and never per
#     segment of any other socket (the iperf3 server's accepted socket);
#   - tcp_probe: the fallback (named in the agent's settings:
#     `[network] rtt_hook = "tcp_probe"`), on every received segment of
#     every socket; and its floor, a copy of network_monitor.o whose
#     tcp_probe returns at once (what any program on this hook costs here,
#     bpf_stats included), so what Tapio's work adds is tcp_probe - floor.
# For each: kernel ns per call (bpf_stats run_time_ns/run_cnt) and calls per
# run; iperf3 throughput of a bulk loopback transfer and of a transfer over a
# veth pair between two network namespaces, agent off vs attached, REPS runs
# each, interleaved (off, sockops, tcp_probe, floor, off, ...) so a drifting
# load hits all alike; medians and the loss of the medians; the hook's share
# of the CPU (calls x ns per call over the transfer time), an upper bound of
# the throughput a CPU-bound transfer can lose to it that, unlike the iperf3
# medians, does not drown in the noise of a shared machine.
# The agent runs the production-default profile (RTT sampling on, 1 s per
# socket); it starts before each attached run, so the client socket is one
# it saw connect.
# Appends rows to $BENCH_RESULTS (see bench/lib.sh).
# Usage: bench/tcp_probe.sh [REPS=5] [SECONDS=4]
set -euo pipefail
# shellcheck source=bench/lib.sh
source "$(dirname "$0")/lib.sh"
reps=${1:-5} secs=${2:-4}
need_root
build_all
if ! command -v iperf3 >/dev/null; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq iperf3 >/dev/null
fi
stats_on

# The floor object: tcp_probe returns before doing anything.
mkdir -p "$WORK/floor/src" "$WORK/floor/bpf"
cp "$BPF_DIR"/*.o "$WORK/floor/bpf/"
cp "$ROOT"/ebpf/* "$WORK/floor/src/"
python3 - "$WORK/floor/src/network_monitor.c" <<'PY'
import sys
p = sys.argv[1]
s = open(p).read()
head = "int BPF_PROG(tcp_probe, struct sock *sk, const struct sk_buff *skb)\n{\n"
assert head in s, "tcp_probe signature changed: update bench/tcp_probe.sh"
open(p, "w").write(s.replace(head, head + "\treturn 0;\n"))
PY
clang -O2 -g -target bpf -D__TARGET_ARCH_x86 -Wall -Wno-unused-function -Wno-unused-variable \
  -Wno-unreachable-code -I "$ROOT/target/bpf-include" -I "$WORK/floor/src" \
  -I "/usr/include/$(gcc -print-multiarch)" \
  -c "$WORK/floor/src/network_monitor.c" -o "$WORK/floor/bpf/network_monitor.o"

# veth pair between two namespaces, 10.215.0.1 <-> 10.215.0.2.
ns_a=tapio-bp-a-$$ ns_b=tapio-bp-b-$$
ip netns add "$ns_a"; on_exit "ip netns del $ns_a"
ip netns add "$ns_b"; on_exit "ip netns del $ns_b"
ip link add bpa type veth peer name bpb
ip link set bpa netns "$ns_a"; ip link set bpb netns "$ns_b"
ip -n "$ns_a" addr add 10.215.0.1/24 dev bpa; ip -n "$ns_a" link set bpa up; ip -n "$ns_a" link set lo up
ip -n "$ns_b" addr add 10.215.0.2/24 dev bpb; ip -n "$ns_b" link set bpb up; ip -n "$ns_b" link set lo up

port=$(free_port)
iperf3 -s -p "$port" -B 127.0.0.1 >/dev/null 2>&1 &
srv_lo=$!; on_exit "kill $srv_lo 2>/dev/null"
ip netns exec "$ns_b" iperf3 -s -p "$port" -B 10.215.0.2 >/dev/null 2>&1 &
srv_veth=$!; on_exit "kill $srv_veth 2>/dev/null"
sleep 0.5

# One transfer: $1 = lo|veth; prints the receiver's bits per second.
xfer() {
  local json
  case $1 in
    lo) json=$(iperf3 -c 127.0.0.1 -p "$port" -t "$secs" -J) ;;
    veth) json=$(ip netns exec "$ns_a" iperf3 -c 10.215.0.2 -p "$port" -t "$secs" -J) ;;
  esac
  python3 -c 'import json, sys; print(int(json.load(sys.stdin)["end"]["sum_received"]["bits_per_second"]))' <<<"$json"
}

# The log line of each hook's choice, by program.
declare -A chosen=([rtt_iter]="an iterator" [rtt_sockops]="sock_ops" [tcp_probe]="tcp_probe")

# One attached transfer: $1 path, $2 object directory, $3 tag, $4 program,
# $5 agent TOML; appends "path tag ns calls" to probe.tsv and sets BPS (bits
# per second). Not in a subshell: the agent it starts must be stopped by
# this shell.
attached() {
  local d ns cnt main_dir=$BPF_DIR
  BPF_DIR=$2 AGENT_TOML=$5
  agent_start
  BPF_DIR=$main_dir AGENT_TOML=
  grep -q "rtt samples from ${chosen[$4]}" "$WORK/agent.log" \
    || die "$3: the agent did not choose $4: $(grep 'rtt samples' "$WORK/agent.log")"
  sleep 1
  prog_stats "$AGENT_PID" >"$WORK/t0"
  BPS=$(xfer "$1")
  prog_stats "$AGENT_PID" >"$WORK/t1"
  agent_stop
  d=$(prog_delta "$WORK/t0" "$WORK/t1" "$4" | grep "^$4:")
  IFS=: read -r _ ns cnt <<<"$d"
  printf '%s\t%s\t%s\t%s\n' "$1" "$3" "$ns" "$cnt" >>"$WORK/probe.tsv"
}

# The other hooks, as the agent's settings name them.
probe_toml=$'[network]\nrtt_hook = "tcp_probe"'
sockops_toml=$'[network]\nrtt_hook = "sock_ops"'

declare -A runs
: >"$WORK/probe.tsv"
for i in $(seq "$reps"); do
  for path in lo veth; do
    runs[$path-off]+="$(xfer "$path") "
    attached "$path" "$BPF_DIR" iter rtt_iter ""
    runs[$path-iter]+="$BPS "
    attached "$path" "$BPF_DIR" sockops rtt_sockops "$sockops_toml"
    runs[$path-sockops]+="$BPS "
    attached "$path" "$BPF_DIR" tcp_probe tcp_probe "$probe_toml"
    runs[$path-tcp_probe]+="$BPS "
    attached "$path" "$WORK/floor/bpf" floor tcp_probe "$probe_toml"
    runs[$path-floor]+="$BPS "
    echo "rep $i $path: off $(awk '{print $NF}' <<<"${runs[$path-off]}") iter $(awk '{print $NF}' <<<"${runs[$path-iter]}") sockops $(awk '{print $NF}' <<<"${runs[$path-sockops]}") tcp_probe $(awk '{print $NF}' <<<"${runs[$path-tcp_probe]}") bit/s; $(grep "^$path" "$WORK/probe.tsv" | tail -4 | awk '{printf "%s %s ns x %s; ", $2, $3, $4}')"
  done
done

# Median ns/call and mean calls per run of tag $2 on path $1.
med_calls() {
  python3 - "$WORK/probe.tsv" "$1" "$2" <<'PY'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1]) if l.startswith(sys.argv[2] + "\t") and l.split()[1] == sys.argv[3]]
print(f"{statistics.median(float(r[2]) for r in rows):.1f}", sum(int(r[3]) for r in rows) // len(rows))
PY
}
# Median Gbit/s of agent-off runs and of runs of tag $2 on path $1, and the
# loss in % of the medians.
loss() {
  python3 - "${runs[$1-off]}" "${runs[$1-$2]}" <<'PY'
import statistics, sys
off = statistics.median(int(x) for x in sys.argv[1].split())
on = statistics.median(int(x) for x in sys.argv[2].split())
print(f"{off / 1e9:.2f}", f"{on / 1e9:.2f}", f"{(off - on) / off * 100:.2f}")
PY
}
yes_if() { awk -v v="$1" -v m="$2" 'BEGIN{print (v <= m) ? "yes" : "no"}'; }

for path in lo veth; do
  label=loopback; [ "$path" = veth ] && label="veth (netns pair)"
  read -r floor_ns _ < <(med_calls "$path" floor)
  for tag in iter sockops tcp_probe; do
    read -r ns calls < <(med_calls "$path" "$tag")
    share=$(python3 -c "print(f'{$ns * $calls / ($secs * 1e9) * 100:.2f}')")
    read -r off on lost < <(loss "$path" "$tag")
    case $tag in
      iter) what="rtt_iter (default hook)" extra="no per-segment calls: a call is one visit of an owned socket (the iperf3 client's control and data connections) per pass, one pass per 1 s sample interval; ns/call is per visit, not per segment" ;;
      sockops) what="rtt_sockops (sock_ops hook)" extra="runs per RTT measurement of the iperf3 client (seen connecting), never per segment of the accepted socket" ;;
      tcp_probe) what="tcp_probe (fallback hook)" extra="floor (tcp_probe returning at once, same runs) $floor_ns ns, so Tapio's work $(python3 -c "print(round($ns - $floor_ns, 1))") ns" ;;
    esac
    result kernel "$what, bulk $label" "$ns" - "ns/call" "<= 60" "$(yes_if "$ns" 60)" \
      "median of $reps runs of iperf3 -t $secs; ~$calls calls per run = ${share} % of one core; $extra"
    result agent "$what, bulk $label: throughput loss" "$lost" - "%" "<= 1" "$(yes_if "$lost" 1)" \
      "iperf3 median Gbit/s: agent off $off, attached $on ($reps runs each, interleaved); off: ${runs[$path-off]% }; on: ${runs[$path-$tag]% }"
    result kernel "$what, bulk $label: CPU share" "$share" - "% of a core" "<= 1" "$(yes_if "$share" 1)" \
      "calls x ns/call over the ${secs} s transfer: the most a CPU-bound transfer can lose to the hook"
    echo "$label: $what ${ns} ns/call, ~$calls calls/run = ${share} % of a core; throughput off ${off} Gbit/s, on ${on} Gbit/s, loss ${lost} %"
  done
  echo "$label: tcp_probe floor ${floor_ns} ns/call"
done

# A connection older than the agent, as every socket from before its start
# and every accepted socket is (no owner): calls of each hook during a
# SECONDS window of a bulk loopback transfer that began before the agent.
# tcp_probe still runs on each of its segments; rtt_sockops and rtt_iter
# never do.
older() { # $1 tag, $2 program, $3 agent TOML; prints "calls ns"
  local cli d
  iperf3 -c 127.0.0.1 -p "$port" -t $((secs + 8)) >/dev/null 2>&1 &
  cli=$!
  sleep 0.5
  AGENT_TOML=$3
  agent_start
  AGENT_TOML=
  sleep 0.5
  prog_stats "$AGENT_PID" >"$WORK/o0"
  sleep "$secs"
  prog_stats "$AGENT_PID" >"$WORK/o1"
  agent_stop
  wait "$cli" || true
  d=$(prog_delta "$WORK/o0" "$WORK/o1" "$2" | grep "^$2:")
  IFS=: read -r _ ns cnt <<<"$d"
  echo "$cnt $ns"
}
for tag in iter sockops tcp_probe; do
  case $tag in
    iter) prog=rtt_iter toml= ;;
    sockops) prog=rtt_sockops toml=$sockops_toml ;;
    tcp_probe) prog=tcp_probe toml=$probe_toml ;;
  esac
  read -r calls ns < <(older "$tag" "$prog" "$toml")
  result kernel "$prog, bulk loopback on a connection older than the agent: calls" "$calls" - \
    "calls in ${secs} s" - - "the socket has no owner (as every accepted socket): ${ns} ns/call"
  echo "loopback, connection older than the agent: $prog $calls calls in ${secs} s (${ns} ns/call)"
done

# The iterator's own cost: what a pass costs against the number of owned
# connections, idle (no ACK since the last sample: skipped after a few reads)
# and active (one byte each per 200 ms, so each is sampled every interval).
# N connections to a loopback listener opened after the agent started (so
# it owns them); the agent's CPU (all threads, schedstat) and rtt_iter's
# calls and ns over a WINDOW of 10 passes. Prints "calls ns cpu%".
held() { # $1 connections, $2 idle|active
  local p ready
  p=$(free_port)
  python3 - "$p" "$1" "$2" >"$WORK/held.out" 2>&1 <<'PY' &
import resource, socket, sys, threading, time
port, n, mode = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 2 * n + 256), hard))
srv = socket.socket()
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("127.0.0.1", port))
srv.listen(4096)
accepted = []
threading.Thread(target=lambda: [accepted.append(srv.accept()[0]) for _ in range(n)], daemon=True).start()
conns = [socket.create_connection(("127.0.0.1", port)) for _ in range(n)]
while len(accepted) < n:
    time.sleep(0.05)
print("ready", flush=True)
while True:
    time.sleep(0.2)
    if mode == "active":
        for c in conns:
            c.send(b"x")
PY
  ready=$!
  on_exit "kill $ready 2>/dev/null"
  for _ in $(seq 600); do grep -qs ready "$WORK/held.out" && break; sleep 0.1; done
  grep -qs ready "$WORK/held.out" || die "held connections: $(cat "$WORK/held.out")"
  sleep 2.5
  local a b s0 s1 d calls ns
  prog_stats "$AGENT_PID" >"$WORK/h0"; s0=$(proc_sample "$AGENT_PID")
  sleep 10
  prog_stats "$AGENT_PID" >"$WORK/h1"; s1=$(proc_sample "$AGENT_PID")
  kill "$ready" 2>/dev/null; wait "$ready" 2>/dev/null || true
  d=$(prog_delta "$WORK/h0" "$WORK/h1" rtt_iter | grep "^rtt_iter:")
  IFS=: read -r _ ns calls <<<"$d"
  echo "$calls $ns $(cpu_pct "$s0" "$s1" 10)"
}
agent_start
grep -q "rtt samples from an iterator" "$WORK/agent.log" || die "the agent did not choose rtt_iter"
# 9,000 connections: 18,000 descriptors, under the 20,000 a process may hold here.
for spec in "1000 idle" "9000 idle" "1000 active"; do
  read -r n mode <<<"$spec"
  read -r calls ns cpu < <(held "$n" "$mode")
  result kernel "rtt_iter pass, $n owned $mode connections" "$ns" - "ns/visit" - - \
    "$calls visits in 10 s (one pass per 1 s interval); agent CPU $cpu % of a core over the window (all its work, drains included)"
  echo "rtt_iter: $n owned $mode connections: $calls visits in 10 s at $ns ns each; agent CPU $cpu %"
done
agent_stop
