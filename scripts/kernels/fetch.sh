#!/usr/bin/env bash
# Fetches one Debian kernel package with the ordinary Debian package client
# (a private sources list and state under target/, so the host's apt is
# untouched), unpacks it and caches the result under target/kernels/<series>/.
#
# Usage: scripts/kernels/fetch.sh SERIES
#   SERIES is a line of scripts/kernels/kernels.list ("5.10", "6.1", "6.12")
#   or of scripts/kernels/kernels-arm64.list ("arm64-6.1", ...: arm64 packages,
#   fetched through an [arch=arm64] sources entry).
# Prints the unpacked directory (holding boot/vmlinuz-* and lib/modules/*).
#
# The newest package of the series that the archive still serves is taken;
# older ABIs are tried in turn when a download is refused (the security
# archive drops superseded packages).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
series=${1:?usage: fetch.sh SERIES}
list=$root/scripts/kernels/kernels.list
arch=amd64
line=$(awk -v s="$series" '$1 == s' "$list")
if [ -z "$line" ]; then
  list=$root/scripts/kernels/kernels-arm64.list
  arch=arm64
  line=$(awk -v s="$series" '$1 == s' "$list")
fi
[ -n "$line" ] || { echo "fetch.sh: series \`$series\` not in scripts/kernels/kernels{,-arm64}.list" >&2; exit 2; }
read -r _ suites pattern <<<"$line"

cache=$root/target/kernels
apt_dir=$cache/apt
out=$cache/$series
if [ -f "$out/.done" ]; then
  echo "$out"
  exit 0
fi
mkdir -p "$apt_dir/lists/partial" "$apt_dir/cache/archives/partial" "$apt_dir/debs"
src=$apt_dir/sources.list
# Per series: fetches of different series may run at once.
: > "$src.$series.tmp"
for s in $(tr ',' ' ' <<<"$suites"); do
  base=http://deb.debian.org/debian
  case $s in *-security) base=http://deb.debian.org/debian-security ;; esac
  echo "deb [arch=$arch signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $base $s main" >> "$src.$series.tmp"
done
mv "$src.$series.tmp" "$src.$series"
opts=(-o "Dir::Etc::SourceList=$src.$series" -o Dir::Etc::SourceParts=/dev/null
      -o "Dir::State::Lists=$apt_dir/lists.$series" -o "Dir::Cache=$apt_dir/cache"
      -o Dir::State::Status=/dev/null -o Debug::NoLocking=1 -o APT::Sandbox::User=root
      -o "APT::Architecture=$arch" -o "APT::Architectures=$arch")
mkdir -p "$apt_dir/lists.$series/partial"
[ -f /usr/share/keyrings/debian-archive-keyring.gpg ] || {
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debian-archive-keyring >/dev/null
}
apt-get "${opts[@]}" -qq update >&2
# Candidates, newest ABI first.
mapfile -t cands < <(apt-cache "${opts[@]}" search --names-only "$pattern" | awk '{print $1}' | sort -V -r)
[ ${#cands[@]} -gt 0 ] || { echo "fetch.sh: no package matches \`$pattern\` in $suites" >&2; exit 1; }
deb=
for p in "${cands[@]}"; do
  if (cd "$apt_dir/debs" && apt-get "${opts[@]}" -qq download "$p" >/dev/null 2>&1); then
    deb=$(ls -t "$apt_dir/debs/${p}_"*.deb | head -1)
    break
  fi
  echo "fetch.sh: $p not downloadable, trying an older one" >&2
done
[ -n "$deb" ] || { echo "fetch.sh: no downloadable package for series $series" >&2; exit 1; }
rm -rf "$out"
mkdir -p "$out"
dpkg-deb -x "$deb" "$out"
# trixie ships modules under usr/lib/modules.
if [ -d "$out/usr/lib/modules" ] && [ ! -e "$out/lib/modules" ]; then
  mkdir -p "$out/lib" && ln -s ../usr/lib/modules "$out/lib/modules"
fi
# The package leaves modules.dep to its postinst: make it here.
release=$(basename "$(echo "$out"/lib/modules/*)")
depmod -b "$out" "$release"
basename "$deb" > "$out/.package"
rm -f "$deb"
touch "$out/.done"
echo "$out"
