#!/usr/bin/env bash
# Bounded fuzz run of the Evidence Profile parser/validator (tapio-profile);
# kept for its callers: the same as `scripts/fuzz.sh SECONDS profile_yaml`.
# Usage: scripts/fuzz-profile.sh [SECONDS]   (default 30; TAPIO_FUZZ_SEED replays a run)
# Exit status: non-zero on any panic, with the seed printed.
set -euo pipefail
cd "$(dirname "$0")/.."
exec scripts/fuzz.sh "${1:-${TAPIO_FUZZ_SECS:-30}}" profile_yaml
