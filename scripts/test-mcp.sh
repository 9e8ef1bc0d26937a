#!/usr/bin/env bash
# MCP conformance test: the official MCP Python SDK client (PyPI `mcp`) against
# `tapio mcp`, plus raw JSON-RPC error cases. Self-contained: builds the binary
# and installs the SDK into a private virtualenv when it is missing.
#
# Env: CARGO_TARGET_DIR (default <repo>/target), TAPIO_BIN (skip the build and
# test this binary), MCP_VENV (default $CARGO_TARGET_DIR/mcp-venv).
# Exit status: 0 when every check passed, 1 otherwise. The last line of output
# is "N passed, M failed".
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
target=${CARGO_TARGET_DIR:-$root/target}
venv=${MCP_VENV:-$target/mcp-venv}
# The SDK's 1.x client API; 1.10 is the first with 2025-06-18 structured tool output.
sdk_spec='mcp>=1.10,<2'

fail() {
    echo "test-mcp: $*" >&2
    echo "0 passed, 1 failed"
    exit 1
}

if [[ -z "${TAPIO_BIN:-}" ]]; then
    echo "test-mcp: building tapio" >&2
    (cd "$root" && cargo build --quiet -p tapio-cli --bin tapio) || fail "cargo build failed"
    TAPIO_BIN=$target/debug/tapio
fi
[[ -x "$TAPIO_BIN" ]] || fail "no tapio binary at $TAPIO_BIN"

py=$venv/bin/python
if ! "$py" -c 'import mcp.client.stdio' 2>/dev/null; then
    echo "test-mcp: installing the MCP Python SDK ($sdk_spec) into $venv" >&2
    if python3 -m venv "$venv"; then
        "$py" -m pip install --quiet --disable-pip-version-check "$sdk_spec" \
            || fail "pip install $sdk_spec failed"
    else
        # No venv module (Debian without python3-venv): install for this user instead.
        echo "test-mcp: python3 -m venv failed; installing with pip --user" >&2
        py=python3
        "$py" -m pip install --quiet --disable-pip-version-check --user "$sdk_spec" \
            || "$py" -m pip install --quiet --disable-pip-version-check --user --break-system-packages "$sdk_spec" \
            || fail "pip install $sdk_spec failed"
    fi
fi
echo "test-mcp: mcp SDK $("$py" -c 'import importlib.metadata as m; print(m.version("mcp"))')" >&2

exec "$py" "$root/tests/mcp/test_mcp.py" "$TAPIO_BIN"
