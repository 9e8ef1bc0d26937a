#!/usr/bin/env bash
# Container images, FROM scratch (deploy/image/Containerfile): tapio-agent (with
# its eBPF objects at /opt/tapio/ebpf), tapio-controller and tapio, each for
# amd64 and arm64 from the static musl builds, built offline with
# `podman build --arch` (COPY only: no emulation needed), joined per image in a
# multi-arch manifest list and written as an OCI archive (an OCI image layout
# in a tar: index.json -> one manifest per arch).
#
# Usage: scripts/build-images.sh [OUT_DIR]     (default target/images)
# Env:   TAPIO_IMAGE_PREFIX  image name prefix (default
#                            registry.example.invalid/tapio, the manifests' one)
#        SOURCE_DATE_EPOCH   image and layer timestamps (default: last commit)
# Output: OUT_DIR/<image>-<version>.oci.tar and OUT_DIR/images.txt (one line:
#         name:tag archive); podman's own store stays under OUT_DIR/storage.
# Pushing: docs/deploy.md.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
tdir=${CARGO_TARGET_DIR:-$root/target}
out=${1:-$root/target/images}
mkdir -p "$out"
out=$(cd "$out" && pwd)
prefix=${TAPIO_IMAGE_PREFIX:-registry.example.invalid/tapio}
version=$(awk -F'"' '/^version = / {print $2; exit}' Cargo.toml)
revision=$(git rev-parse HEAD 2>/dev/null || echo unknown)
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || echo 0)}
created=$(date -u -d "@$SOURCE_DATE_EPOCH" +%Y-%m-%dT%H:%M:%SZ)

command -v podman >/dev/null || {
  echo "build-images: installing podman" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null && apt-get install -y -qq podman >/dev/null
}

# --- context: static binaries and eBPF objects per arch --------------------
scripts/build-cross.sh x86_64-unknown-linux-musl aarch64-unknown-linux-musl >/dev/null
ctx=$out/context
rm -rf "$ctx"
mkdir -p "$ctx"
cp LICENSE deploy/image/Containerfile "$ctx/"
for a in amd64:x86_64:x86 arm64:aarch64:arm64; do
  IFS=: read -r arch cpu barch <<<"$a"
  mkdir -p "$ctx/bin/$arch"
  for b in tapio-agent tapio-controller tapio; do
    install -m 0755 "$tdir/$cpu-unknown-linux-musl/release/$b" "$ctx/bin/$arch/$b"
  done
  scripts/build-ebpf.sh --arch "$barch" "$ctx/bpf/$arch" >/dev/null
  chmod 0644 "$ctx/bpf/$arch"/*.o
done
# Fixed mtimes in the context: COPY keeps them in the layers.
find "$ctx" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +

# --- build, manifest lists, archives ----------------------------------------
store=$out/storage
rm -rf "$store" "$out/run"
pm=(podman --root "$store" --runroot "$out/run" --storage-driver vfs)
: > "$out/images.txt"
for target in agent:tapio-agent controller:tapio-controller cli:tapio; do
  stage=${target%%:*} image=${target#*:}
  name=$prefix/$image:$version
  "${pm[@]}" manifest create "$name" >/dev/null
  for arch in amd64 arm64; do
    "${pm[@]}" build -q --arch "$arch" --os linux --target "$stage" --timestamp "$SOURCE_DATE_EPOCH" \
      --build-arg "VERSION=$version" --build-arg "REVISION=$revision" --build-arg "CREATED=$created" \
      -f "$ctx/Containerfile" -t "$name-$arch" "$ctx" >/dev/null \
      || { echo "build-images: podman build $image for $arch failed" >&2; exit 1; }
    "${pm[@]}" manifest add "$name" "containers-storage:$name-$arch" >/dev/null
  done
  archive=$out/$image-$version.oci.tar
  rm -f "$archive"
  "${pm[@]}" manifest push -q --all "$name" "oci-archive:$archive:$name" >/dev/null \
    || { echo "build-images: writing $archive failed" >&2; exit 1; }
  echo "$name $archive" >> "$out/images.txt"
  echo "build-images: $name (amd64, arm64) -> $archive ($(stat -c %s "$archive") bytes)"
done
rm -rf "$out/run"
