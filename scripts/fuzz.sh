#!/usr/bin/env bash
# Bounded fuzz runs of every input Tapio parses (issue 16): seeded,
# structure-aware mutation of valid inputs (crates/tapio-fuzz), stable Rust.
#
# Usage: scripts/fuzz.sh [SECONDS] [TARGET...]
#   SECONDS   budget per target (default: TAPIO_FUZZ_SECS, else 3)
#   TARGET    run only these (names below); default all
# Env: TAPIO_FUZZ_SECS    seconds per target
#      TAPIO_FUZZ_INPUTS  also stop each target after this many inputs
#      TAPIO_FUZZ_SEED    replay a run (each target prints its seed)
#      TAPIO_FUZZ_LOG     directory for per-target logs (default /tmp/tapio-fuzz)
#      CARGO_TARGET_DIR   as usual
# Builds with the `fuzz` profile (optimised, overflow checks and debug
# assertions on). Each target runs in its own process, so the peak RSS it
# prints (VmHWM) is its own. A panic saves the input to
# /tmp/tapio-fuzz-<target>.crash and fails the run; the other targets still
# run. Exit status: 0 when every target ran without a panic, 1 otherwise,
# 2 on a usage error. The last lines are one row per target and the totals.
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

# name | cargo test selection | exact test name
targets=(
  "route_hello|-p tapio-controller --test fuzz_routes|fuzz_route_hello"
  "route_heartbeat|-p tapio-controller --test fuzz_routes|fuzz_route_heartbeat"
  "route_events|-p tapio-controller --test fuzz_routes|fuzz_route_events"
  "route_heads|-p tapio-controller --test fuzz_routes|fuzz_route_heads"
  "cli_occurrence_file|-p tapio-cli --bin tapio|store::fuzz::fuzz_occurrence_file"
  "cli_status_file|-p tapio-cli --bin tapio|store::fuzz::fuzz_status_file"
  "mcp_lines|-p tapio-cli --bin tapio|mcp::fuzz::fuzz_mcp_lines"
  "http_response|-p tapio-agent --lib|http::fuzz::fuzz_http_response"
  "endpoint_url|-p tapio-agent --lib|http::fuzz::fuzz_endpoint_parse"
  "settings_toml|-p tapio-agent --test fuzz_settings|fuzz_settings_toml"
  "compiled_config|-p tapio-agent --test fuzz_compiled_config|fuzz_compiled_config"
  "profile_yaml|-p tapio-profile --test fuzz_profile|fuzz_validate_never_panics"
)

secs=${TAPIO_FUZZ_SECS:-3}
if [[ $# -gt 0 && $1 =~ ^[0-9]+$ ]]; then
  secs=$1
  shift
fi
export TAPIO_FUZZ_SECS=$secs
want=("$@")
for w in "${want[@]}"; do
  found=false
  for t in "${targets[@]}"; do [[ ${t%%|*} == "$w" ]] && found=true; done
  if ! $found; then
    echo "fuzz.sh: unknown target \`$w\` (known: $(printf '%s ' "${targets[@]%%|*}"))" >&2
    exit 2
  fi
done
log=${TAPIO_FUZZ_LOG:-/tmp/tapio-fuzz}
mkdir -p "$log"

selected=()
for t in "${targets[@]}"; do
  name=${t%%|*}
  if [[ ${#want[@]} -eq 0 ]] || printf '%s\n' "${want[@]}" | grep -qx "$name"; then
    selected+=("$t")
  fi
done

echo "fuzz.sh: ${#selected[@]} targets, ${secs} s each${TAPIO_FUZZ_INPUTS:+, at most $TAPIO_FUZZ_INPUTS inputs each}; building (profile fuzz)"
# One build of every test binary first, so the budgets are spent fuzzing.
for pkg in tapio-controller tapio-cli tapio-agent tapio-profile; do
  if ! cargo test --profile fuzz -p "$pkg" --no-run -q 2> "$log/build-$pkg.log"; then
    cat "$log/build-$pkg.log" >&2
    echo "fuzz.sh: FAIL building $pkg" >&2
    exit 1
  fi
done

failed=()
rows=()
total=0
for t in "${selected[@]}"; do
  IFS='|' read -r name sel test <<< "$t"
  # shellcheck disable=SC2086
  cargo test --profile fuzz -q $sel -- --exact "$test" --nocapture --test-threads 1 > "$log/$name.log" 2>&1
  rc=$?
  line=$(grep -E "^fuzz $name: [0-9]+ inputs" "$log/$name.log" | tail -1)
  if [[ $rc -ne 0 || -z $line ]]; then
    failed+=("$name")
    echo "fuzz.sh: FAIL $name (log: $log/$name.log)" >&2
    grep -E "panicked|TAPIO_FUZZ_SEED" "$log/$name.log" | head -5 >&2
    rows+=("$(printf '%-20s FAILED (see %s)' "$name" "$log/$name.log")")
    continue
  fi
  echo "$line"
  n=$(sed -E 's/^fuzz [^:]+: ([0-9]+) inputs in ([0-9.]+) s \(([0-9]+) inputs\/s\).*/\1/' <<< "$line")
  s=$(sed -E 's/^fuzz [^:]+: ([0-9]+) inputs in ([0-9.]+) s.*/\2/' <<< "$line")
  rate=$(sed -E 's/.*\(([0-9]+) inputs\/s\).*/\1/' <<< "$line")
  peak=$(sed -E 's/.*peak ([0-9-]+) KiB.*/\1/' <<< "$line")
  total=$((total + n))
  rows+=("$(printf '%-20s %12d inputs %8.1f s %9d inputs/s  peak RSS %7s KiB  0 panics' "$name" "$n" "$s" "$rate" "$peak")")
done
echo
printf '%s\n' "${rows[@]}"
if [[ ${#failed[@]} -gt 0 ]]; then
  echo "fuzz.sh: ${#failed[@]} of ${#selected[@]} targets FAILED: ${failed[*]}"
  exit 1
fi
echo "fuzz.sh: ${#selected[@]} targets, $total inputs, 0 panics"
