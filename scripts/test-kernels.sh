#!/usr/bin/env bash
# Kernel matrix: runs the real-kernel test binaries (crates/tapio-agent/tests/
# kernel_*.rs, the same ones `cargo test` runs on the host) inside QEMU on
# the distributions' own kernel packages (Debian's, and Ubuntu's for the LTS
# lines Debian never shipped), one VM per kernel, and prints one line per
# kernel x test. Fails on any failed, missing or unreported test.
#
# Usage: scripts/test-kernels.sh [--arch arm64] [SERIES...]   (default: every
#        line of scripts/kernels/kernels.list, or kernels-arm64.list with
#        --arch arm64; see docs/kernels.md)
# Env:   TAPIO_MATRIX_FILTER=substring  run only tests whose name contains it
#                                       (`a|b`: either; arm64 defaults to the
#                                       five tests of ARM64_TESTS below)
#        TAPIO_MATRIX_JOBS=N            VMs at once (default 2)
#        TAPIO_MATRIX_TIMEOUT=SECONDS   per VM (default 1500)
#
# Each VM boots the kernel (TCG: nested KVM hangs here) with an initramfs of
# busybox, the test binaries, the agent, the eBPF objects and the host tools
# the tests call; its /init runs each test alone and reports on a second
# serial port. Results come only from that port: a test is passed only when
# its own `TAPIO-RESULT ... 0` line is there and the report is complete.
set -euo pipefail
# The whole script is one function, parsed before it runs, and exits on the
# line that calls it: editing this file during a run cannot change the run
# (bash reads a script as it goes: without the exit, it would go on reading
# at the old offset of an edited file when main returns).
main() {
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
kdir=$root/scripts/kernels
work=$root/target/kernels
mkdir -p "$work"
jobs=${TAPIO_MATRIX_JOBS:-2}
vm_timeout=${TAPIO_MATRIX_TIMEOUT:-1500}
arch=amd64
if [ "${1:-}" = --arch ]; then
  arch=${2:?test-kernels: --arch needs amd64 or arm64}
  shift 2
fi
# arm64 runs under TCG at about a third of x86's speed: by default only the
# checks issue 17 names (refused x40 exact, SIGSEGV/ABRT/KILL, OOM under
# cgroup v2, block I/O error) run there.
ARM64_TESTS='reduced_kernel_btf_relocates_every_object|refused_loopback_connects_are_counted_exactly_once_each|fatal_signals_in_a_limited_memcg|oom_victim_in_a_64mib_memcg|eio_slow_and_normal_reads'
case $arch in
  amd64) klist=$kdir/kernels.list filter=${TAPIO_MATRIX_FILTER:-} ;;
  arm64) klist=$kdir/kernels-arm64.list filter=${TAPIO_MATRIX_FILTER:-$ARM64_TESTS} ;;
  *) echo "test-kernels: unknown --arch $arch (amd64 or arm64)" >&2; exit 2 ;;
esac

if [ $# -gt 0 ]; then
  series=("$@")
else
  mapfile -t series < <(awk '!/^#/ && NF {print $1}' "$klist")
fi

# --- what the host needs -------------------------------------------------
need=()
command -v qemu-system-x86_64 >/dev/null || need+=(qemu-system-x86)
if [ "$arch" = arm64 ]; then
  command -v qemu-system-aarch64 >/dev/null || need+=(qemu-system-arm)
  command -v aarch64-linux-gnu-gcc >/dev/null || need+=(gcc-aarch64-linux-gnu libc6-dev-arm64-cross)
fi
[ -x /bin/busybox ] && file -b /bin/busybox | grep -q static || need+=(busybox-static)
command -v cpio >/dev/null || need+=(cpio)
command -v file >/dev/null || need+=(file)
command -v xz >/dev/null || need+=(xz-utils)
command -v zstd >/dev/null || need+=(zstd)
if [ ${#need[@]} -gt 0 ]; then
  echo "test-kernels: installing ${need[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq "${need[@]}" >/dev/null
fi
scripts/install-deps.sh

# --- build: eBPF objects, agent, test binaries, FUSE helper --------------
# Builds the agent and the kernel_* test binaries with the example helpers
# they run (crates/tapio-agent/examples) for CARGO_ARGS (target, profile);
# sets agent_bin, bins and helpers. ARTIFACTS keeps the list of what was built.
build_tests() { # ARTIFACTS AGENT_DIR CARGO_ARGS...
  local artifacts=$1 out=$2
  shift 2
  cargo build -q -p tapio-agent --bin tapio-agent "$@"
  agent_bin=$out/tapio-agent
  # Examples as plain programs (`cargo build`; `cargo test --examples` would
  # build them as test harnesses), at the path the tests look for them.
  { cargo test -q -p tapio-agent --no-run --message-format=json "$@" "${test_targets[@]}" &&
    cargo build -q -p tapio-agent --examples --message-format=json "$@"; } 2>/dev/null |
    python3 -c '
import json, sys
for line in sys.stdin:
    try:
        m = json.loads(line)
    except ValueError:
        continue
    t = m.get("target", {})
    if m.get("reason") != "compiler-artifact" or not m.get("executable"):
        continue
    if t.get("name", "").startswith("kernel_"):
        print("test", m["executable"])
    elif "example" in t.get("kind", []):
        print("example", m["executable"])
' > "$artifacts"
  mapfile -t bins < <(awk '$1 == "test" {print $2}' "$artifacts")
  mapfile -t helpers < <(awk '$1 == "example" {print $2}' "$artifacts")
  [ ${#bins[@]} -gt 0 ] || { echo "test-kernels: no kernel_* test binaries built ($*)" >&2; exit 1; }
}

runner=()
tdir=${CARGO_TARGET_DIR:-$root/target}
if [ "$arch" = arm64 ]; then
  # shellcheck source=kernels/arm64.sh
  . "$kdir/arm64.sh"
else
  scripts/build-ebpf.sh target/bpf >/dev/null
  test_targets=(--test 'kernel_*')
  build_tests "$work/artifacts.txt" "$tdir/debug"
  fuse_bin=$work/tapio_fuse_disk
  cc -O2 -Wall -o "$fuse_bin" crates/tapio-agent/tests/fuse/tapio_fuse_disk.c $(pkg-config --cflags --libs fuse3)
  bpf_dir=$root/target/bpf
fi

# arm64's lists and initramfs sit beside amd64's, not over them.
sfx=
[ "$arch" = amd64 ] || sfx=-$arch
list=$work/tests$sfx.list
: > "$list"
for b in "${bins[@]}"; do
  "${runner[@]}" "$b" --list --format terse 2>/dev/null | sed -n 's/: test$//p' | while read -r t; do
    IFS='|' read -r -a alts <<<"$filter"
    [ ${#alts[@]} -gt 0 ] || alts=("")
    for a in "${alts[@]}"; do
      case $t in *"$a"*) echo "$b $t" >> "$list"; break ;; esac
    done
  done
done
ntests=$(wc -l < "$list")
[ "$ntests" -gt 0 ] || { echo "test-kernels: no test matches \`$filter\`" >&2; exit 1; }

envf=$work/tests$sfx.env
cat > "$envf" <<ENV
export CI=true
export TAPIO_EBPF_DIR=$bpf_dir
export TAPIO_FUSE_BIN=$fuse_bin
export TAPIO_IN_VM=1
export TAPIO_TEST_TIME_SCALE=3
export RUST_BACKTRACE=1
ENV
# Directories the tests resolve at run time (CARGO_MANIFEST_DIR/../..).
mkdir -p "$work/empty"
common=$work/common$sfx.cpio
scripts/kernels/initramfs.sh common "$common" "$list" "$envf" \
  "${bins[@]}" "${helpers[@]}" "$agent_bin" "$fuse_bin" "$bpf_dir"
# The workspace layout the tests canonicalize.
stage=$(mktemp -d)
mkdir -p "$stage$root/crates/tapio-agent/tests/fuse"
cp crates/tapio-agent/tests/fuse/tapio_fuse_disk.c "$stage$root/crates/tapio-agent/tests/fuse/"
(cd "$stage" && find . -print0 | sort -z | cpio --null -o -H newc --quiet) >> "$common"
rm -rf "$stage"

# --- one VM per kernel ----------------------------------------------------
run_vm() { # SERIES
  local s=$1 kd vmlinuz out
  kd=$("$kdir/fetch.sh" "$s")
  vmlinuz=$(echo "$kd"/boot/vmlinuz-*)
  out=$work/run-$s
  rm -rf "$out"
  mkdir -p "$out"
  "$kdir/initramfs.sh" modules "$out/modules.cpio" "$kd"
  cat "$common" "$out/modules.cpio" > "$out/initrd"
  local t0=$SECONDS
  if [ "$arch" = arm64 ]; then
    run_arm64_vm "$vmlinuz" "$out"
  else
  timeout --foreground -k 10 "$vm_timeout" qemu-system-x86_64 \
    -accel tcg -cpu max -smp 1 -m 2048 -no-reboot -display none -monitor none \
    -kernel "$vmlinuz" -initrd "$out/initrd" \
    -append "console=ttyS0 panic=-1 oops=panic quiet loglevel=4 cgroup_no_v1=all" \
    -serial "file:$out/console.log" -serial "file:$out/results.log" \
    >"$out/qemu.log" 2>&1 || echo "qemu exit $?" >> "$out/qemu.log"
  fi
  echo $((SECONDS - t0)) > "$out/wall"
  rm -f "$out/initrd"
}

# Kernels first, one at a time (one apt cache), then the VMs in parallel.
for s in "${series[@]}"; do
  "$kdir/fetch.sh" "$s" >/dev/null
done
pids=()
for s in "${series[@]}"; do
  while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do wait -n || true; done
  echo "test-kernels: booting $s ($ntests tests)" >&2
  run_vm "$s" &
  pids+=($!)
done
for p in "${pids[@]}"; do wait "$p" || true; done

# --- report ----------------------------------------------------------------
fail=0
printf '\n%-22s %-18s %-78s %s\n' kernel binary test result
for s in "${series[@]}"; do
  out=$work/run-$s
  res=$out/results.txt
  tr -d '\r' < "$out/results.log" > "$res" 2>/dev/null || true
  rel=$(awk '$1 == "TAPIO-BEGIN" {print $2}' "$res" 2>/dev/null || true)
  rel=${rel:-$s?}
  if ! grep -q "^TAPIO-BEGIN" "$res" 2>/dev/null; then
    echo "$s: the VM never reported (see $out/console.log):" >&2
    tail -n 30 "$out/console.log" >&2 || true
    fail=1
    continue
  fi
  if grep "^TAPIO-MODULE-FAILED\|^TAPIO-NO-BTF" "$res" >&2; then fail=1; fi
  i=0
  while read -r b t; do
    i=$((i + 1))
    line=$(awk -v n="$i" '$1 == "TAPIO-RESULT" && $2 == n' "$res")
    name=$(basename "$b" | sed 's/-[0-9a-f]*$//')
    if [ -z "$line" ]; then
      result="NOT RUN"
      fail=1
    else
      read -r _ _ rc st en _ <<<"$line"
      secs=$(awk -v a="$st" -v b="$en" 'BEGIN {printf "%.1f", b - a}')
      if [ "$rc" = 0 ]; then result="ok (${secs} s)"; else result="FAILED rc=$rc (${secs} s)"; fail=1; fi
    fi
    printf '%-22s %-18s %-78s %s\n' "$rel" "$name" "$t" "$result"
  done < "$list"
  grep -q "^TAPIO-END $ntests\$" "$res" || { echo "$s: report incomplete (no TAPIO-END $ntests)" >&2; fail=1; }
  echo "$rel: VM wall time $(cat "$out/wall") s" >&2
done
if [ "$fail" != 0 ]; then
  for s in "${series[@]}"; do
    out=$work/run-$s
    [ -f "$out/console.log" ] || continue
    awk '/^=== TEST /{buf=""; hdr=$0} {buf=buf $0 "\n"} /^=== END .* rc=[1-9]/{print hdr; printf "%s", buf}' \
      "$out/console.log" | tail -n 200 | sed "s/^/[$s] /" >&2
  done
  echo "test-kernels: FAILED (logs in $work/run-*/console.log)" >&2
  exit 1
fi
if [ "$arch" = arm64 ]; then
  echo "test-kernels: arm64: ${#series[@]} kernels x $ntests tests passed"
else
echo "test-kernels: ${#series[@]} kernels x $ntests tests passed"
fi
}
main "$@"; exit
