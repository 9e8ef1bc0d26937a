#!/usr/bin/env bash
# Shipping checks (issue 17), one command, as root: static builds of every
# binary for both arches, the FROM-scratch images (built
# with podman for amd64 and arm64, unpacked and run under chroot) and the
# reproducibility of the release tarballs. scripts/test.sh runs it as one
# step, after the arm64 kernel matrix (scripts/test-kernels.sh --arch arm64);
# then scripts/verify-lean.sh checks the budgets of every target on the builds
# this leaves behind.
set -euo pipefail
cd "$(dirname "$0")/.."
t=$SECONDS
run() { printf '\n=== %s ===\n' "$1"; shift; local s=$SECONDS; "$@"; echo "--- took $((SECONDS - s)) s"; }
run "static builds: x86_64 and aarch64 musl" scripts/build-cross.sh
run "images: podman build amd64+arm64" scripts/build-images.sh
run "images: unpack and run under chroot" scripts/test-images.sh
run "release tarballs: reproducible" scripts/test-release.sh
echo "test-shipping: all passed in $((SECONDS - t)) s"
