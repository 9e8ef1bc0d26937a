#!/usr/bin/env bash
# Release builds for the shipping targets: tapio-agent, tapio-controller and
# tapio, each built on its own (`-p`, so no feature unification grows the
# agent), for each target. Paths are remapped (--remap-path-prefix: the
# workspace to /tapio, the cargo registry to /cargo, the target dir to
# /target) so the binaries do not depend on where the tree or the cache is:
# with SOURCE_DATE_EPOCH this is what makes scripts/release.sh reproducible.
# Installs the Rust targets and the Debian aarch64 cross toolchain (its gcc is
# the linker, .cargo/config.toml) when missing.
#
# Usage: scripts/build-cross.sh [TRIPLE...]
#   default: x86_64-unknown-linux-musl aarch64-unknown-linux-musl, the static
#            builds the images and release tarballs ship (x86_64-unknown-linux-gnu
#            is the host build, scripts/verify-lean.sh; aarch64-unknown-linux-gnu
#            builds when named, for hosts that want glibc)
# Output: <target dir>/<TRIPLE>/release/{tapio-agent,tapio-controller,tapio};
#         one line per binary on stdout: TRIPLE BINARY BYTES
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
tdir=${CARGO_TARGET_DIR:-$root/target}
if [ $# -gt 0 ]; then
  triples=("$@")
else
  triples=(x86_64-unknown-linux-musl aarch64-unknown-linux-musl)
fi
installed=$(rustup target list --installed 2>/dev/null || true)
for t in "${triples[@]}"; do
  case $t in
    x86_64-unknown-linux-gnu | x86_64-unknown-linux-musl | aarch64-unknown-linux-gnu | aarch64-unknown-linux-musl) ;;
    *) echo "build-cross: unsupported target $t" >&2; exit 2 ;;
  esac
  grep -qx "$t" <<<"$installed" || rustup target add "$t" >&2
  if [[ $t == aarch64-* ]] && ! command -v aarch64-linux-gnu-gcc >/dev/null; then
    echo "build-cross: installing gcc-aarch64-linux-gnu" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null
    apt-get install -y -qq gcc-aarch64-linux-gnu libc6-dev-arm64-cross >/dev/null
  fi
done
registry=${CARGO_HOME:-$HOME/.cargo}/registry/src
remap="['--remap-path-prefix=$root=/tapio', '--remap-path-prefix=$registry=/cargo/registry', '--remap-path-prefix=$tdir=/target']"
for t in "${triples[@]}"; do
  for pb in tapio-agent:tapio-agent tapio-controller:tapio-controller tapio-cli:tapio; do
    pkg=${pb%%:*} bin=${pb#*:}
    # --config arrays are appended to .cargo/config.toml's rustflags.
    cargo build -q --release --locked -p "$pkg" --bin "$bin" --target "$t" \
      --config "target.$t.rustflags=$remap" \
      || { echo "build-cross: cargo build -p $pkg --target $t failed" >&2; exit 1; }
    echo "$t $bin $(stat -c %s "$tdir/$t/release/$bin")"
  done
done
