#!/usr/bin/env bash
# Fetches one distribution kernel with the ordinary Debian package client
# (a private sources list and state under target/, so the host's apt is
# untouched), unpacks it and caches the result under target/kernels/<series>/.
#
# Usage: scripts/kernels/fetch.sh SERIES
#   SERIES is a line of scripts/kernels/kernels.list ("5.10", "5.15", ...)
#   or of scripts/kernels/kernels-arm64.list ("arm64-6.1", ...: arm64 packages,
#   fetched through an [arch=arm64] sources entry).
# Prints the unpacked directory (holding boot/vmlinuz-* and lib/modules/*).
#
# Suites are Debian's unless the column starts with `ubuntu:` (Ubuntu's own
# kernels, from the Ubuntu archive, checked against Ubuntu's archive keyring).
# Ubuntu splits a kernel into an image package (vmlinuz only) and the
# linux-modules-* package it depends on: that comes along (the tests' modules
# are all there, none only in linux-modules-extra).
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
distro=debian
case $suites in ubuntu:*) distro=ubuntu suites=${suites#ubuntu:} ;; esac

cache=$root/target/kernels
apt_dir=$cache/apt
out=$cache/$series
if [ -f "$out/.done" ]; then
  echo "$out"
  exit 0
fi
mkdir -p "$apt_dir/lists/partial" "$apt_dir/cache/archives/partial" "$apt_dir/debs"

# apt options for a private state NAME reading sources list FILE. Paths are
# absolute: apt resolves relative Dir:: entries under the host's /var.
apt_opts() { # NAME FILE
  opts=(-o "Dir::Etc::SourceList=$2" -o Dir::Etc::SourceParts=/dev/null
        -o "Dir::State::Lists=$apt_dir/lists.$1" -o "Dir::Cache=$apt_dir/cache"
        -o Dir::State::Status=/dev/null -o Debug::NoLocking=1 -o APT::Sandbox::User=root
        -o "APT::Architecture=$arch" -o "APT::Architectures=$arch")
  mkdir -p "$apt_dir/lists.$1/partial"
}

debian_keyring=/usr/share/keyrings/debian-archive-keyring.gpg
[ -f "$debian_keyring" ] || {
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debian-archive-keyring >/dev/null
}
keyring=$debian_keyring
if [ "$distro" = ubuntu ]; then
  # Debian ships Ubuntu's archive keys (package ubuntu-keyring, trixie on):
  # fetched through Debian's signed archive and unpacked here, not installed.
  keyring=$apt_dir/ubuntu-keyring/usr/share/keyrings/ubuntu-archive-keyring.gpg
  if [ ! -f "$keyring" ]; then
    echo "deb [arch=$arch signed-by=$debian_keyring] http://deb.debian.org/debian trixie main" > "$apt_dir/sources.list.keyring"
    apt_opts keyring "$apt_dir/sources.list.keyring"
    apt-get "${opts[@]}" -qq update >&2
    kr_tmp=$(mktemp -d)
    (cd "$kr_tmp" && apt-get "${opts[@]}" -qq download ubuntu-keyring >/dev/null) ||
      { echo "fetch.sh: cannot download ubuntu-keyring from Debian trixie" >&2; exit 1; }
    rm -rf "$apt_dir/ubuntu-keyring"
    dpkg-deb -x "$kr_tmp"/ubuntu-keyring_*.deb "$apt_dir/ubuntu-keyring"
    rm -rf "$kr_tmp"
    [ -f "$keyring" ] || { echo "fetch.sh: ubuntu-keyring has no ubuntu-archive-keyring.gpg" >&2; exit 1; }
  fi
fi

src=$apt_dir/sources.list
# Per series: fetches of different series may run at once.
: > "$src.$series.tmp"
for s in $(tr ',' ' ' <<<"$suites"); do
  if [ "$distro" = ubuntu ]; then
    # The main archive serves -security too; kernels are all in main.
    base=http://archive.ubuntu.com/ubuntu
  else
    base=http://deb.debian.org/debian
    case $s in *-security) base=http://deb.debian.org/debian-security ;; esac
  fi
  echo "deb [arch=$arch signed-by=$keyring] $base $s main" >> "$src.$series.tmp"
done
mv "$src.$series.tmp" "$src.$series"
apt_opts "$series" "$src.$series"
apt-get "${opts[@]}" -qq update >&2
# Candidates, newest ABI first.
mapfile -t cands < <(apt-cache "${opts[@]}" search --names-only "$pattern" | awk '{print $1}' | sort -V -r)
[ ${#cands[@]} -gt 0 ] || { echo "fetch.sh: no package matches \`$pattern\` in $suites" >&2; exit 1; }

# The packages that make up kernel package P: P and the linux-modules-* it
# depends on (Ubuntu; Debian's image packages hold their modules).
parts_of() { # P
  echo "$1"
  apt-cache "${opts[@]}" depends "$1" 2>/dev/null |
    awk '$1 == "Depends:" && $2 ~ /^linux-modules-/ {print $2}' | sort -u
}

debs=()
for p in "${cands[@]}"; do
  mapfile -t parts < <(parts_of "$p")
  if (cd "$apt_dir/debs" && apt-get "${opts[@]}" -qq download "${parts[@]}" >/dev/null 2>&1); then
    for q in "${parts[@]}"; do
      debs+=("$(ls -t "$apt_dir/debs/${q}_"*.deb | head -1)")
    done
    break
  fi
  echo "fetch.sh: ${parts[*]} not downloadable, trying an older one" >&2
done
[ ${#debs[@]} -gt 0 ] || { echo "fetch.sh: no downloadable package for series $series" >&2; exit 1; }
rm -rf "$out"
mkdir -p "$out"
for d in "${debs[@]}"; do dpkg-deb -x "$d" "$out"; done
# trixie ships modules under usr/lib/modules.
if [ -d "$out/usr/lib/modules" ] && [ ! -e "$out/lib/modules" ]; then
  mkdir -p "$out/lib" && ln -s ../usr/lib/modules "$out/lib/modules"
fi
# The package leaves modules.dep to its postinst: make it here.
mods=("$out"/lib/modules/*)
[ ${#mods[@]} -eq 1 ] || { echo "fetch.sh: expected one kernel release in $out/lib/modules, found ${#mods[@]}" >&2; exit 1; }
release=$(basename "${mods[0]}")
depmod -b "$out" "$release"
for d in "${debs[@]}"; do basename "$d"; done > "$out/.package"
rm -f "${debs[@]}"
touch "$out/.done"
echo "$out"
