#!/usr/bin/env bash
# Builds the kernel-matrix initramfs in two parts that the kernel unpacks
# one after the other:
#   common: busybox, the test binaries, the agent, the eBPF objects, the
#           host tools the tests call (ip, nft, tc, losetup, bpftool, ...)
#           with their shared libraries, at the paths the tests expect;
#   modules <series>: the kernel's own modules the tests need (and their
#           dependencies), decompressed, with the order to load them in.
#
# Usage: initramfs.sh common OUT.cpio TESTS.list ENV_FILE FILE...
#        initramfs.sh modules OUT.cpio KERNEL_DIR
# Env (other architectures, see scripts/kernels/arm64-root.sh):
#   TAPIO_TOOLS_ROOT=DIR   take busybox, the tools and their libraries from
#                          this unpacked root (copied whole) instead of the
#                          host, and copy FILEs without ldd (cross binaries);
#   TAPIO_EARLY_MODULES    modules loaded before the report port opens (its
#                          driver), listed in /modules.early.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)

# Modules the real-kernel tests need; dependencies are added from modules.dep.
WANTED_MODULES=(veth nf_tables nft_counter nft_ct nft_reject nft_reject_inet nft_reject_ipv4
  nft_reject_ipv6 sch_tbf loop fuse)
# Host tools the tests run, copied with their libraries.
TOOLS=(ip nft tc losetup bpftool fusermount3 setsid dash)

copy_with_libs() { # FILE STAGE
  local f=$1 stage=$2 lib
  mkdir -p "$stage$(dirname "$f")"
  cp -L "$f" "$stage$f"
  case $(file -b "$stage$f") in
    *"debug_info"*) strip --strip-debug "$stage$f" ;;
  esac
  # shellcheck disable=SC2016
  for lib in $(ldd "$f" 2>/dev/null | awk '/=> \//{print $3} /^\t\/[^ ]*ld-linux/{print $1}'); do
    [ -e "$stage$lib" ] && continue
    mkdir -p "$stage$(dirname "$lib")"
    cp -L "$lib" "$stage$lib"
  done
}

pack() { # STAGE OUT
  (cd "$1" && find . -print0 | sort -z | cpio --null -o -H newc --quiet) > "$2.tmp"
  mv "$2.tmp" "$2"
}

mode=${1:?usage}
shift
case $mode in
common)
  out=$1 list=$2 envf=$3
  shift 3
  stage=$(mktemp -d)
  trap 'rm -rf "$stage"' EXIT
  troot=${TAPIO_TOOLS_ROOT:-}
  [ -z "$troot" ] || cp -a "$troot/." "$stage/"
  mkdir -p "$stage"/{bin,sbin,usr/bin,usr/sbin,usr/local/bin,lib64,etc,dev}
  [ -n "$troot" ] || cp /bin/busybox "$stage/bin/busybox"
  cp "$here/init" "$stage/init"
  chmod 755 "$stage/init"
  cp "$list" "$stage/tests.list"
  cp "$envf" "$stage/tests.env"
  for t in "${TOOLS[@]}"; do
    if [ -n "$troot" ]; then
      p=
      for d in usr/sbin usr/bin sbin bin; do
        [ -e "$troot/$d/$t" ] && { p=/$d/$t; break; }
      done
      [ -n "$p" ] || { echo "initramfs.sh: tool \`$t\` missing from $troot" >&2; exit 1; }
      ln -sf "$p" "$stage/usr/local/bin/$t"
      continue
    fi
    p=$(command -v "$t") || { echo "initramfs.sh: host tool \`$t\` missing" >&2; exit 1; }
    copy_with_libs "$(readlink -f "$p")" "$stage"
    ln -sf "$(readlink -f "$p")" "$stage/usr/local/bin/$t"
  done
  for f in "$@"; do
    if [ -d "$f" ]; then
      mkdir -p "$stage$f"
      cp -a "$f/." "$stage$f/"
    elif [ -n "$troot" ]; then
      mkdir -p "$stage$(dirname "$f")" && cp -L "$f" "$stage$f"
    else
      copy_with_libs "$f" "$stage"
    fi
  done
  # busybox sh runs its own applets before PATH (its `ip` has no netns):
  # the tests' `sh -c` gets dash, which finds the real tools first.
  if [ -n "$troot" ]; then
    ln -sf /usr/bin/dash "$stage/usr/local/bin/sh"
  else
    ln -sf "$(readlink -f "$(command -v dash)")" "$stage/usr/local/bin/sh"
  fi
  echo "root:x:0:0:root:/root:/bin/sh" > "$stage/etc/passwd"
  echo "root:x:0:" > "$stage/etc/group"
  mkdir -p "$stage/etc/iproute2"
  pack "$stage" "$out"
  ;;
modules)
  out=$1 kdir=$2
  mdir=$(echo "$kdir"/lib/modules/*/)
  stage=$(mktemp -d)
  trap 'rm -rf "$stage"' EXIT
  mkdir -p "$stage/modules"
  # name -> path, and path -> deps, from modules.dep.
  declare -A path_of deps_of
  while IFS= read -r line; do
    m=${line%%:*}
    n=$(basename "$m"); n=${n%%.ko*}; n=${n//-/_}
    path_of[$n]=$m
    deps_of[$m]=${line#*:}
  done < "$mdir/modules.dep"
  declare -A seen
  order=()
  visit() {
    local m=$1 d
    [ -n "${seen[$m]:-}" ] && return
    seen[$m]=1
    for d in ${deps_of[$m]}; do visit "$d"; done
    order+=("$m")
  }
  : > "$stage/modules.order"
  if [ -n "${TAPIO_EARLY_MODULES:-}" ]; then
    for n in $TAPIO_EARLY_MODULES; do
      [ -n "${path_of[$n]:-}" ] && visit "${path_of[$n]}"
    done
    for m in "${order[@]}"; do
      b=$(basename "$m"); echo "${b%.ko*}.ko" >> "$stage/modules.early"
    done
    touch "$stage/modules.early"
  fi
  for n in "${WANTED_MODULES[@]}"; do
    # Built into this kernel (modules.builtin) or absent: nothing to load.
    [ -n "${path_of[$n]:-}" ] && visit "${path_of[$n]}"
  done
  for m in "${order[@]}"; do
    b=$(basename "$m")
    case $b in
      *.ko.xz) xz -dc "$mdir/$m" > "$stage/modules/${b%.xz}"; b=${b%.xz} ;;
      *.ko.zst) zstd -qdc "$mdir/$m" > "$stage/modules/${b%.zst}"; b=${b%.zst} ;;
      *.ko.gz) gzip -dc "$mdir/$m" > "$stage/modules/${b%.gz}"; b=${b%.gz} ;;
      *) cp "$mdir/$m" "$stage/modules/$b" ;;
    esac
    echo "$b" >> "$stage/modules.order"
  done
  pack "$stage" "$out"
  ;;
*) echo "initramfs.sh: unknown mode $mode" >&2; exit 2 ;;
esac
