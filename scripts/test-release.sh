#!/usr/bin/env bash
# Reproducibility test of scripts/release.sh: two runs must give identical
# SHA256SUMS. The first runs in this tree with its cargo cache; the second in
# a copy of the tree at another path with an empty target dir, so every
# binary and eBPF object is rebuilt from scratch (a cached second run would
# only prove the packaging). On a difference it names the files that differ.
#
# Usage: scripts/test-release.sh        Env: CARGO_TARGET_DIR as for release.sh
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct)}
work=$(mktemp -d /tmp/tapio-release-test.XXXXXX)
trap 'rm -rf "$work"' EXIT
t0=$SECONDS
scripts/release.sh "$work/one" >/dev/null
echo "test-release: run 1 (this tree, cached build): $((SECONDS - t0)) s"
# The tree as git sees it (tracked and untracked, not ignored) at another path.
mkdir -p "$work/src"
git ls-files -z -co --exclude-standard | xargs -0 cp --parents -a -t "$work/src"
# vmlinux.h is an input (the build host's BTF; for arm64, the Debian kernel's):
# the same for both runs, or a kernel update between them would differ.
mkdir -p "$work/src/target"
for d in target/bpf-include target/bpf-include-arm64; do
  [ -d "$d" ] && cp -a "$d" "$work/src/target/"
done
t0=$SECONDS
(cd "$work/src" && CARGO_TARGET_DIR=$work/target scripts/release.sh "$work/two" >/dev/null)
echo "test-release: run 2 (copy at $work/src, empty target dir): $((SECONDS - t0)) s"
cat "$work/one/SHA256SUMS"
if ! cmp -s "$work/one/SHA256SUMS" "$work/two/SHA256SUMS"; then
  diff "$work/one/SHA256SUMS" "$work/two/SHA256SUMS" >&2 || true
  for f in "$work"/one/*.tar.gz; do
    b=$(basename "$f")
    mkdir -p "$work/x1/$b" "$work/x2/$b"
    tar -C "$work/x1/$b" -xzf "$f"
    tar -C "$work/x2/$b" -xzf "$work/two/$b"
    diff -rq "$work/x1/$b" "$work/x2/$b" >&2 || true
    tar -tvzf "$f" > "$work/l1" && tar -tvzf "$work/two/$b" > "$work/l2"
    diff "$work/l1" "$work/l2" >&2 || true
  done
  echo "test-release: FAILED: the two runs differ" >&2
  exit 1
fi
echo "test-release: reproducible: both runs give the same SHA256SUMS"
