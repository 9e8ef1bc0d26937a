#!/usr/bin/env bash
# Installs the system packages Tapio's build and tests need on a fresh
# Debian machine (idempotent: installs only what is missing).
set -euo pipefail
pkgs=(clang llvm libbpf-dev bpftool linux-libc-dev nftables iproute2 fuse3 libfuse3-dev pkg-config util-linux kmod)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "install-deps: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq "${missing[@]}" >/dev/null
fi
command -v cargo >/dev/null || { echo "install-deps: cargo (Rust toolchain) not found" >&2; exit 1; }
