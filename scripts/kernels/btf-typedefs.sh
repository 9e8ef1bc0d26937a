#!/usr/bin/env bash
# Prints the prototypes of the tracepoints Tapio's programs attach to, as
# each kernel's own BTF has them (its btf_trace_<name> typedefs): what the
# CO-RE checks in ebpf/core_fixes.bpf.h have to tell apart. A kernel whose
# line differs from the others' needs a look before it joins the matrix.
#
# Usage: scripts/kernels/btf-typedefs.sh [SERIES...]   (default: every line of
#        scripts/kernels/kernels.list, then the host's /sys/kernel/btf/vmlinux)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
TRACEPOINTS=(tcp_retransmit_skb mark_victim sched_process_exit block_rq_complete
  tcp_receive_reset inet_sock_set_state)
command -v bpftool >/dev/null || { echo "btf-typedefs.sh: needs bpftool (scripts/install-deps.sh)" >&2; exit 1; }
host=
if [ $# -gt 0 ]; then
  series=("$@")
else
  mapfile -t series < <(awk '!/^#/ && NF {print $1}' "$here/kernels.list")
  host=1
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
show() { # NAME BTF_FILE
  bpftool btf dump file "$2" format c > "$tmp/h"
  # The number of types: the last id of the raw dump.
  echo "== $1 ($(bpftool btf dump file "$2" | awk -F'[][]' '/^\[/ {n = $2} END {print n}') types)"
  for t in "${TRACEPOINTS[@]}"; do
    grep -E "^typedef void \(\*btf_trace_$t\)\(" "$tmp/h" || echo "(no btf_trace_$t)"
  done
}
for s in "${series[@]}"; do
  kd=$("$here/fetch.sh" "$s")
  python3 "$here/extract-btf.py" "$(echo "$kd"/boot/vmlinuz-*)" "$tmp/btf" 2>/dev/null
  show "$s $(basename "$(echo "$kd"/lib/modules/*)")" "$tmp/btf"
done
[ -z "$host" ] || show "host $(uname -r)" /sys/kernel/btf/vmlinux
