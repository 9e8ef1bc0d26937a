#!/usr/bin/env bash
# Dependency boundaries (H2), checked on the resolved graph with `cargo tree`:
# - tapio-agent (default features and --features otlp): no Kubernetes client,
#   no HTTP server framework, no gRPC, no YAML crate, no tapio-profile;
# - tapio-cli: no tapio-profile, no YAML crate;
# - tapio-wire: no HTTP, Kubernetes or gRPC crate.
# Only normal (shipped) dependencies count: dev- and build-dependencies never
# reach the binary. Snapshots of every tree go to $LEAN_DIR (default
# /tmp/tapio-lean) as deps-<crate>[-<features>].txt.
#
# Usage: scripts/check-deps.sh [--self-test]
# Exit status: 0 when every boundary holds, 1 otherwise (each violation is
# printed with the path that pulls the crate in).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out=${LEAN_DIR:-/tmp/tapio-lean}
mkdir -p "$out"

k8s="kube kube-client kube-runtime kube-core k8s-openapi"
http_server="hyper hyper-util axum axum-core actix-web actix-http actix-server warp tower-http tiny_http rouille poem salvo rocket tide gotham"
http_any="$http_server h2 http http-body http-body-util reqwest ureq isahc surf attohttpc"
grpc="tonic tonic-build tonic-prost grpcio grpc"
yaml="serde_yaml serde_yml yaml-rust yaml-rust2 saphyr saphyr-parser unsafe-libyaml libyaml"

# violations LIST_FILE FORBIDDEN... : prints the forbidden crates in LIST_FILE.
violations() {
  local list=$1
  shift
  local c
  for c in "$@"; do
    if grep -qx "$c" "$list"; then echo "$c"; fi
  done
}

if [[ "${1:-}" == --self-test ]]; then
  t=$(mktemp)
  printf '%s\n' tokio hyper serde tapio-profile httparse > "$t"
  got=$(violations "$t" $http_server tapio-profile | tr '\n' ' ')
  rm -f "$t"
  [[ "$got" == "hyper tapio-profile " ]] || { echo "check-deps self-test: got '$got'" >&2; exit 1; }
  echo "check-deps: self-test passed"
  exit 0
fi

cd "$root"
fail=0
# check CRATE TAG "CARGO TREE ARGS" FORBIDDEN...
check() {
  local crate=$1 tag=$2 args=$3
  shift 3
  local snap=$out/deps-$tag.txt names=$out/deps-$tag.names
  # shellcheck disable=SC2086
  cargo tree -q -p "$crate" $args -e normal --locked > "$snap"
  # shellcheck disable=SC2086
  cargo tree -q -p "$crate" $args -e normal --locked --prefix none -f '{p}' \
    | awk '{print $1}' | sort -u > "$names"
  local bad
  bad=$(violations "$names" "$@")
  if [[ -n "$bad" ]]; then
    fail=1
    local c
    for c in $bad; do
      echo "check-deps: FAIL $tag depends on \`$c\`; pulled in by:" >&2
      # shellcheck disable=SC2086
      cargo tree -q -p "$crate" $args -e normal --locked -i "$c" 2>&1 | sed 's/^/    /' >&2
    done
  else
    echo "check-deps: ok   $tag ($(wc -l < "$names") crates, snapshot $snap)"
  fi
}

check tapio-agent tapio-agent "" $k8s $http_server $grpc $yaml tapio-profile
check tapio-agent tapio-agent-otlp "--features otlp" $k8s $http_server $grpc $yaml tapio-profile
check tapio-cli tapio-cli "" tapio-profile $yaml
check tapio-wire tapio-wire "" $http_any $k8s $grpc
exit $fail
