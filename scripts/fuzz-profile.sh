#!/usr/bin/env bash
# Bounded fuzz run of the Evidence Profile parser/validator (tapio-profile).
# Usage: scripts/fuzz-profile.sh [SECONDS]   (default 30; TAPIO_FUZZ_SEED replays a run)
# Exit status is cargo test's: non-zero on any panic, with the seed printed.
set -euo pipefail
cd "$(dirname "$0")/.."
export TAPIO_FUZZ_SECS="${1:-${TAPIO_FUZZ_SECS:-30}}"
exec cargo test --release -p tapio-profile --test fuzz_profile -- --nocapture
