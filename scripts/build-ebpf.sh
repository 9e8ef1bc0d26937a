#!/usr/bin/env bash
# Builds every ebpf/<observer>.c into OUT_DIR (default target/bpf/) with clang.
# Installs clang, bpftool and libbpf headers when they are missing (Debian).
# Usage: scripts/build-ebpf.sh [--arch x86|arm64] [OUT_DIR]
#   --arch  target architecture (default: the host's). Another architecture's
#           objects are built from that architecture's vmlinux.h, made from
#           the BTF of a Debian kernel of it (scripts/kernels/fetch.sh, the
#           newest series of scripts/kernels/kernels-arm64.list): struct
#           layouts and __TARGET_ARCH_* differ per architecture.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
want=
if [ "${1:-}" = --arch ]; then
  want=${2:?build-ebpf: --arch needs x86 or arm64}
  shift 2
fi
out=${1:-$root/target/bpf}
mkdir -p "$out"
out=$(cd "$out" && pwd)

need=()
command -v clang >/dev/null || need+=(clang)
command -v llvm-strip >/dev/null || need+=(llvm)
command -v bpftool >/dev/null || need+=(bpftool)
[ -f /usr/include/bpf/bpf_helpers.h ] || need+=(libbpf-dev)
[ -f /usr/include/linux/types.h ] || need+=(linux-libc-dev)
if [ ${#need[@]} -gt 0 ]; then
  echo "build-ebpf: installing ${need[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq "${need[@]}" >/dev/null
fi

case "$(uname -m)" in
  x86_64) arch=x86 ;;
  aarch64) arch=arm64 ;;
  *) echo "build-ebpf: unsupported architecture $(uname -m)" >&2; exit 1 ;;
esac
host_arch=$arch
case ${want:-$arch} in
  x86 | arm64) arch=${want:-$arch} ;;
  *) echo "build-ebpf: unsupported --arch $want (x86 or arm64)" >&2; exit 2 ;;
esac

# vmlinux.h from the running kernel's BTF; CO-RE relocations make the objects
# portable to other kernels with BTF.
inc=$root/target/bpf-include
[ "$arch" = "$host_arch" ] || inc=$root/target/bpf-include-$arch
mkdir -p "$inc"
if [ ! -s "$inc/vmlinux.h" ] && [ "$arch" != "$host_arch" ]; then
  [ "$arch" = arm64 ] || { echo "build-ebpf: no BTF source for $arch on a $host_arch host" >&2; exit 1; }
  series=$(awk '!/^#/ && NF {s = $1} END {print s}' "$root/scripts/kernels/kernels-arm64.list")
  kd=$("$root/scripts/kernels/fetch.sh" "$series")
  python3 "$root/scripts/kernels/extract-btf.py" "$(echo "$kd"/boot/vmlinuz-*)" "$inc/vmlinux.btf"
  bpftool btf dump file "$inc/vmlinux.btf" format c > "$inc/vmlinux.h.tmp"
  mv "$inc/vmlinux.h.tmp" "$inc/vmlinux.h"
  echo "build-ebpf: $inc/vmlinux.h from $(cat "$kd/.package")" >&2
elif [ ! -s "$inc/vmlinux.h" ]; then
  [ -r /sys/kernel/btf/vmlinux ] || { echo "build-ebpf: /sys/kernel/btf/vmlinux missing: kernel without BTF" >&2; exit 1; }
  bpftool btf dump file /sys/kernel/btf/vmlinux format c > "$inc/vmlinux.h.tmp"
  mv "$inc/vmlinux.h.tmp" "$inc/vmlinux.h"
fi
multiarch=$(gcc -print-multiarch 2>/dev/null || echo "$(uname -m)-linux-gnu")
# linux/types.h's <asm/types.h> is the same on every architecture; the host's
# multiarch directory is used for either.

for src in "$root"/ebpf/*_monitor.c; do
  name=$(basename "$src" .c)
  # -fdebug-prefix-map: the source paths in .BTF.ext line info do not depend
  # on where the tree is (reproducible release artefacts).
  clang -O2 -g -target bpf -D__TARGET_ARCH_$arch -Wall -Werror -fdebug-prefix-map="$root=/tapio" \
    -I "$inc" -I "$root/ebpf" -I "/usr/include/$multiarch" \
    -c "$src" -o "$out/$name.o.tmp"
  # Keeps .BTF/.BTF.ext (CO-RE needs them), drops DWARF: ~16x smaller.
  llvm-strip -g "$out/$name.o.tmp"
  mv "$out/$name.o.tmp" "$out/$name.o"
  echo "build-ebpf: $out/$name.o ($(stat -c %s "$out/$name.o") bytes)"
done
