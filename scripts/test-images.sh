#!/usr/bin/env bash
# Image test (issue 17): unpacks each platform of each OCI archive that
# scripts/build-images.sh wrote, checks its config (architecture, user,
# entrypoint, OCI labels) and files (a static binary of that architecture; the
# agent's eBPF objects at the manifests' --ebpf-dir), and runs its entrypoint
# under chroot: `--version` for all; for the agent also the preflight (no /sys
# in the root: exit 3 naming the missing BTF) and, on amd64, a real start with
# the host's /proc and /sys bound in (its eBPF objects load, SIGTERM stops it
# with exit 0). arm64 runs under qemu-aarch64 user mode copied into the root
# (no real start there: not tried through qemu-user's syscall translation). Also checks that
# deploy/kubernetes names exactly the images that were built.
#
# Usage: scripts/test-images.sh [IMAGES_DIR]   (default target/images; root)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
dir=${1:-$root/target/images}
[ "$(id -u)" = 0 ] || { echo "test-images: needs root (chroot, mounts)" >&2; exit 1; }
[ -s "$dir/images.txt" ] || { echo "test-images: $dir/images.txt missing: run scripts/build-images.sh" >&2; exit 1; }
command -v qemu-aarch64-static >/dev/null || {
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq qemu-user-static >/dev/null
}
version=$(awk -F'"' '/^version = / {print $2; exit}' Cargo.toml)
work=$(mktemp -d)
mounts=()
# Never rm -rf through a mount still bound into a root (the host's /sys).
mounted_under() { grep -q " $1/" /proc/mounts; }
cleanup() {
  local m
  for m in "${mounts[@]}"; do umount -l "$m" 2>/dev/null || true; done
  if mounted_under "$work"; then
    echo "test-images: mounts left under $work, not removing it" >&2
  else
    rm -rf "$work"
  fi
}
trap cleanup EXIT
passed=0 failed=0
ok() { echo "test-images: ok   $*"; passed=$((passed + 1)); }
bad() { echo "test-images: FAIL $*" >&2; failed=$((failed + 1)); }
check() { # DESCRIPTION CMD...
  local d=$1
  shift
  if "$@"; then ok "$d"; else bad "$d"; fi
}

while read -r name archive; do
  image=${name##*/}
  image=${image%%:*}
  case $image in
    tapio-agent) bin=tapio-agent user=0:0 ;;
    tapio-controller) bin=tapio-controller user=65532:65532 ;;
    tapio) bin=tapio user=65532:65532 ;;
    *) bad "unknown image $name"; continue ;;
  esac
  for arch in amd64 arm64; do
    r=$work/$image-$arch
    cfg=$(python3 scripts/oci-unpack.py "$archive" "$arch" "$r") || { bad "$name $arch: unpack"; continue; }
    q() { python3 -c 'import json,sys; c=json.loads(sys.argv[1]); print(eval(sys.argv[2]))' "$cfg" "$1"; }
    check "$name $arch: manifest list has amd64 and arm64" \
      test "$(q 'sorted(p["architecture"] for p in c["platforms"])')" = "['amd64', 'arm64']"
    check "$name $arch: config architecture $arch" test "$(q 'c["architecture"]')" = "$arch"
    check "$name $arch: user $user" test "$(q 'c["config"].get("User")')" = "$user"
    check "$name $arch: entrypoint /usr/bin/$bin" test "$(q 'c["config"].get("Entrypoint")')" = "['/usr/bin/$bin']"
    for l in title version revision created licenses source description; do
      [ -n "$(q "c['config'].get('Labels', {}).get('org.opencontainers.image.$l', '')")" ] \
        || bad "$name $arch: label org.opencontainers.image.$l missing"
    done
    check "$name $arch: label version $version" \
      test "$(q "c['config']['Labels']['org.opencontainers.image.version']")" = "$version"
    want_elf="x86-64"
    [ "$arch" = arm64 ] && want_elf="ARM aarch64"
    desc=$(file -b "$r/usr/bin/$bin")
    check "$name $arch: /usr/bin/$bin is a static $want_elf binary" \
      bash -c '[[ $1 == *"$2"* && $1 == *"static"* ]]' _ "$desc" "$want_elf"
    check "$name $arch: only /usr/bin/$bin is executable (no shell, no libc)" \
      test "$(find "$r" -type f -perm -u+x | wc -l)" = 1
    emu=()
    if [ "$arch" = arm64 ]; then
      cp "$(command -v qemu-aarch64-static)" "$r/qemu-aarch64-static"
      emu=(/qemu-aarch64-static)
    fi
    said=$(chroot --userspec="$user" "$r" "${emu[@]}" "/usr/bin/$bin" --version 2>&1) || true
    check "$name $arch: chroot --version says \`$bin $version\` (said: $said)" test "$said" = "$bin $version"
    if [ "$image" = tapio-agent ]; then
      n=$(ls "$r/opt/tapio/ebpf/"*.o 2>/dev/null | wc -l)
      check "$name $arch: 4 eBPF objects in /opt/tapio/ebpf" test "$n" = 4
      # Preflight: /proc (the kernel release) but no /sys (no BTF).
      mkdir -p "$r/proc"
      mount -t proc proc "$r/proc" && mounts+=("$r/proc")
      rc=0
      said=$(chroot "$r" "${emu[@]}" /usr/bin/tapio-agent --ebpf-dir=/opt/tapio/ebpf \
        --data-dir=/var/lib/tapio/occurrences --sink=stdout 2>&1 </dev/null) || rc=$?
      umount "$r/proc"
      check "$name $arch: preflight without /sys exits 3 naming the BTF (rc=$rc: $said)" \
        bash -c '[ "$1" = 3 ] && [[ $2 == *"kernel BTF missing"* ]]' _ "$rc" "$said"
      if [ "$arch" = amd64 ]; then
        mkdir -p "$r/proc" "$r/sys"
        mount -t proc proc "$r/proc" && mounts+=("$r/proc")
        mount --rbind /sys "$r/sys" && mounts+=("$r/sys")
        rc=0
        timeout --preserve-status -s TERM 8 chroot "$r" /usr/bin/tapio-agent --ebpf-dir=/opt/tapio/ebpf \
          --data-dir=/var/lib/tapio/occurrences --sink=stdout >"$work/agent.out" 2>"$work/agent.err" </dev/null || rc=$?
        umount -l "$r/sys" "$r/proc"
        running=$(grep -c "observer running" "$work/agent.err" || true)
        check "$name amd64: starts under chroot on this kernel, $running observers running, SIGTERM exit 0 (rc=$rc)" \
          bash -c '[ "$1" = 0 ] && [ "$2" -ge 3 ]' _ "$rc" "$running"
        [ "$rc" = 0 ] && [ "$running" -ge 3 ] || sed 's/^/  agent: /' "$work/agent.err" | tail -20 >&2
      fi
    fi
    mounted_under "$r" || rm -rf "$r"
  done
done < "$dir/images.txt"

# The manifests pull what was built.
prefix=$(awk 'NR == 1 {n = $1; sub("/[^/]*$", "", n); print n}' "$dir/images.txt")
for img in tapio-agent tapio-controller; do
  ref="$prefix/$img:$version"
  check "deploy/kubernetes refers to $ref" grep -rqx " *image: $ref" deploy/kubernetes/
done
echo "test-images: $passed passed, $failed failed"
[ "$failed" = 0 ]
