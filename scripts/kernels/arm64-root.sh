#!/usr/bin/env bash
# Unpacks an arm64 root for the kernel-matrix initramfs (TAPIO_TOOLS_ROOT of
# initramfs.sh): busybox-static, dash, the tools the tests call and their
# libraries, all Debian arm64 packages of the host's own release. Arm64 ldd
# cannot run here, so the package set is the host's: the packages that own
# the host's tools and the libraries ldd finds for them (the same names on
# every architecture), plus libc6 and the FUSE library of the test helper.
# Fetched with apt-get download through a private [arch=arm64] sources list
# (the host's apt is untouched) and unpacked with dpkg-deb -x.
#
# Usage: scripts/kernels/arm64-root.sh OUT_DIR     (cached: OUT_DIR/.done)
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
out=${1:?usage: arm64-root.sh OUT_DIR}
[ -f "$out/.done" ] && exit 0
TOOLS=(ip nft tc losetup bpftool fusermount3 setsid dash)
owner() { # PATH -> package (merged /usr: try both spellings)
  local p=$1 alt
  alt=${p#/usr}
  [ "$alt" = "$p" ] && alt=/usr$p
  { dpkg -S "$p" 2>/dev/null || dpkg -S "$alt" 2>/dev/null; } | head -1 | cut -d: -f1
}
declare -A pkgs=([busybox-static]=1 [dash]=1 [libc6]=1 [libgcc-s1]=1 [libfuse3-3]=1)
for t in "${TOOLS[@]}"; do
  p=$(command -v "$t") || { echo "arm64-root: host tool \`$t\` missing (install it first)" >&2; exit 1; }
  for f in "$(readlink -f "$p")" $(ldd "$(readlink -f "$p")" | awk '/=> \//{print $3}'); do
    f=$(readlink -f "$f")
    o=$(owner "$f")
    [ -n "$o" ] || { echo "arm64-root: no package owns $f" >&2; exit 1; }
    pkgs[$o]=1
  done
done

apt_dir=$root/target/kernels/apt
mkdir -p "$apt_dir/lists.arm64-root/partial" "$apt_dir/cache/archives/partial" "$apt_dir/debs-arm64"
. /etc/os-release
src=$apt_dir/sources.list.arm64-root
{
  echo "deb [arch=arm64 signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian $VERSION_CODENAME main"
  echo "deb [arch=arm64 signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian-security $VERSION_CODENAME-security main"
} > "$src"
opts=(-o "Dir::Etc::SourceList=$src" -o Dir::Etc::SourceParts=/dev/null
      -o "Dir::State::Lists=$apt_dir/lists.arm64-root" -o "Dir::Cache=$apt_dir/cache"
      -o Dir::State::Status=/dev/null -o Debug::NoLocking=1 -o APT::Sandbox::User=root
      -o APT::Architecture=arm64 -o APT::Architectures=arm64)
apt-get "${opts[@]}" -qq update >&2
debs=$apt_dir/debs-arm64
rm -f "$debs"/*.deb
(cd "$debs" && apt-get "${opts[@]}" -qq download "${!pkgs[@]}" >/dev/null) \
  || { echo "arm64-root: apt-get download failed for: ${!pkgs[*]}" >&2; exit 1; }
rm -rf "$out"
mkdir -p "$out"
for d in "$debs"/*.deb; do dpkg-deb -x "$d" "$out"; done
rm -rf "$out"/usr/share/{doc,man,info,locale,lintian,bash-completion,zsh} "$out"/etc/init.d
# Merged /usr, as on the host: /bin, /sbin and /lib are links into /usr.
for d in bin sbin lib; do
  if [ -d "$out/$d" ] && [ ! -L "$out/$d" ]; then
    mkdir -p "$out/usr/$d" && cp -a "$out/$d/." "$out/usr/$d/" && rm -rf "${out:?}/$d"
  fi
  ln -sfn "usr/$d" "$out/$d"
done
# Only the tools stay executable: the packages' other programs (util-linux's
# mount among them, without its libraries) would shadow busybox's applets.
keep=" ${TOOLS[*]} busybox dash "
for d in usr/bin usr/sbin; do
  for f in "$out/$d"/*; do
    [ -e "$f" ] || [ -L "$f" ] || continue
    case $keep in *" $(basename "$f") "*) ;; *) rm -f "$f" ;; esac
  done
done
[ -x "$out/usr/bin/busybox" ] || { echo "arm64-root: busybox missing from the unpacked root" >&2; exit 1; }
echo "${!pkgs[*]}" | tr ' ' '\n' | sort > "$out/.packages"
touch "$out/.done"
