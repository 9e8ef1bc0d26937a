#!/usr/bin/env bash
# Shipping checks (issue 17), one command, as root: cross and static builds
# of every binary, the arm64 kernel matrix, the FROM-scratch images (built
# with podman for amd64 and arm64, unpacked and run under chroot) and the
# reproducibility of the release tarballs. Not yet part of scripts/test.sh:
# on a 2-core machine they add roughly 45 minutes to a first run (9 release
# builds, aarch64 test binaries, a from-scratch release build).
set -euo pipefail
cd "$(dirname "$0")/.."
t=$SECONDS
run() { printf '\n=== %s ===\n' "$1"; shift; local s=$SECONDS; "$@"; echo "--- took $((SECONDS - s)) s"; }
run "cross builds: aarch64 glibc, x86_64 and aarch64 musl (static)" scripts/build-cross.sh
run "kernel matrix arm64 (Debian arm64 6.1, 6.12)" scripts/test-kernels.sh --arch arm64
run "images: podman build amd64+arm64" scripts/build-images.sh
run "images: unpack and run under chroot" scripts/test-images.sh
run "release tarballs: reproducible" scripts/test-release.sh
run "budgets for every target" scripts/verify-lean.sh --skip-tests
echo "test-shipping: all passed in $((SECONDS - t)) s"
