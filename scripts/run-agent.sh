#!/usr/bin/env bash
# One command to run the agent on this machine with the built-in
# production-default profile and the stdout sink: installs what the build
# needs, builds the eBPF objects and the agent, and starts it (as root).
# Extra arguments are passed to tapio-agent (e.g. --sink file: occurrences and
# the status file go to /var/lib/tapio/occurrences, the agent's default and
# where `tapio status` looks).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
[ "$(id -u)" = 0 ] || { echo "run-agent: run as root (the agent needs CAP_BPF, CAP_PERFMON, CAP_NET_ADMIN)" >&2; exit 1; }
scripts/install-deps.sh
scripts/build-ebpf.sh target/bpf
cargo build --release -p tapio-agent
args=("$@")
[ ${#args[@]} -gt 0 ] || args=(--sink stdout)
exec target/release/tapio-agent --ebpf-dir target/bpf "${args[@]}"
