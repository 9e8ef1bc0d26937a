#!/usr/bin/env bash
# Release artefacts: one tarball per architecture (amd64, arm64) with the
# static (musl) tapio-agent, tapio-controller and tapio, the eBPF objects of
# that architecture, the systemd unit, the Kubernetes manifests, LICENSE and
# README.md; and SHA256SUMS over them. Reproducible: binaries built with
# remapped paths (scripts/build-cross.sh), eBPF objects with a mapped source
# prefix, files in name order with owner 0:0, fixed modes and mtime
# SOURCE_DATE_EPOCH (default: the last commit's time), gzip without name or
# time. scripts/test-release.sh builds it twice and compares the sums.
#
# Usage: scripts/release.sh [OUT_DIR]      (default target/release-artefacts)
# Output: OUT_DIR/tapio-<version>-linux-<arch>.tar.gz, OUT_DIR/SHA256SUMS
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
tdir=${CARGO_TARGET_DIR:-$root/target}
out=${1:-$root/target/release-artefacts}
mkdir -p "$out"
out=$(cd "$out" && pwd)
version=$(awk -F'"' '/^version = / {print $2; exit}' Cargo.toml)
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || echo 0)}

scripts/build-cross.sh x86_64-unknown-linux-musl aarch64-unknown-linux-musl >/dev/null
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
rm -f "$out"/tapio-*.tar.gz "$out/SHA256SUMS"
for a in amd64:x86_64:x86 arm64:aarch64:arm64; do
  IFS=: read -r arch cpu barch <<<"$a"
  name=tapio-$version-linux-$arch
  d=$work/$name
  mkdir -p "$d/bin" "$d/systemd" "$d/kubernetes"
  for b in tapio-agent tapio-controller tapio; do
    install -m 0755 "$tdir/$cpu-unknown-linux-musl/release/$b" "$d/bin/$b"
  done
  scripts/build-ebpf.sh --arch "$barch" "$d/ebpf" >/dev/null
  install -m 0644 deploy/systemd/tapio-agent.service "$d/systemd/"
  install -m 0644 deploy/kubernetes/*.yaml "$d/kubernetes/"
  install -m 0644 LICENSE README.md "$d/"
  chmod 0644 "$d/ebpf"/*.o
  chmod 0755 "$d" "$d"/*/
  tar -C "$work" --sort=name --format=posix \
    --pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime \
    --mtime="@$SOURCE_DATE_EPOCH" --owner=0 --group=0 --numeric-owner \
    -cf - "$name" | gzip -n -9 > "$out/$name.tar.gz"
done
(cd "$out" && sha256sum tapio-*.tar.gz > SHA256SUMS)
cat "$out/SHA256SUMS"
