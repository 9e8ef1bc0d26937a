#!/usr/bin/env python3
"""MCP conformance test for `tapio mcp`.

Part 1 drives the server with the official MCP Python SDK client (PyPI `mcp`):
initialize, list tools, call every tool against a fixture directory and check
the structured results (the SDK validates them against each tool's
outputSchema). Part 2 speaks raw JSON-RPC over the server's stdio for what an
SDK client never sends: bad JSON, unknown methods, bad params, old protocol
versions, batches.

Usage: test_mcp.py /path/to/tapio
Prints one line per check and a final "N passed, M failed"; exits 1 on any
failure.
"""

import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
from datetime import timedelta

from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.shared.exceptions import McpError

TAPIO = os.path.abspath(sys.argv[1]) if len(sys.argv) > 1 else "tapio"

# The clock the server judges ages against (TAPIO_NOW): 2026-04-03T14:30:00Z.
NOW = "2026-04-03T14:30:00Z"
NOW_MS = 1_775_226_600_000
MIN = 60_000
CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

results = {"passed": 0, "failed": 0}


def check(name, cond, detail=""):
    if cond:
        results["passed"] += 1
        print(f"ok   {name}")
    else:
        results["failed"] += 1
        print(f"FAIL {name} {detail}")


def ulid(ms, rand):
    v = (ms << 80) | rand
    return "".join(CROCKFORD[(v >> (5 * (25 - i))) & 31] for i in range(26))


def rfc3339(ms):
    import datetime

    t = datetime.datetime.fromtimestamp(ms / 1000, tz=datetime.timezone.utc)
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


def put(d, ms, rand, kind, severity, code, data):
    oid = ulid(ms, rand)
    doc = {
        "id": oid,
        "timestamp": rfc3339(ms),
        "source": "tapio",
        "type": kind,
        "protocol_version": "1.0",
        "severity": severity,
        "outcome": "failure",
        "error": {"code": code, "message": "fixture"},
        "data": {"config_generation": 1, "timestamp_ns": ms * 1_000_000, **data},
    }
    with open(os.path.join(d, oid + ".json"), "w") as f:
        json.dump(doc, f)
    return oid


def make_fixture():
    d = tempfile.mkdtemp(prefix="tapio-mcp-")
    ids = {
        "refused": put(d, NOW_MS - 2 * MIN, 1, "kernel.network.connection_refused", "warning",
                       "CONNECTION_REFUSED", {"pid": 1234, "comm": "curl", "dst_port": 8080}),
        "spike": put(d, NOW_MS - 10 * MIN, 2, "kernel.network.retransmit_spike", "warning",
                     "RETRANSMIT_SPIKE", {"daddr": "10.0.0.9", "count": 5}),
        "oom": put(d, NOW_MS - 3 * MIN, 3, "kernel.container.oom_kill", "critical", "OOM_KILL",
                   {"pid": 4321, "comm": "stress"}),
        "io": put(d, NOW_MS - 120 * MIN, 4, "kernel.storage.io_error", "critical", "IO_ERROR",
                  {"dev": "8:16", "errno": -5}),
    }
    # Unusable files: counted, never fatal.
    with open(os.path.join(d, ulid(NOW_MS - MIN, 10) + ".json"), "w") as f:
        f.write('{"id": "01')
    with open(os.path.join(d, ulid(NOW_MS - MIN, 11) + ".json"), "w") as f:
        f.write('{"hello": "world"}')
    # A symlink leading out of the data directory must never be followed.
    ids["link"] = ulid(NOW_MS - MIN, 12)
    os.symlink("/etc/hostname", os.path.join(d, ids["link"] + ".json"))
    status = {
        "agent_version": "0.1.0", "pid": 4242, "started_at": rfc3339(NOW_MS - 3600_000),
        "updated_at": rfc3339(NOW_MS - 5000), "config_generation": 3, "config_hash": "abc123",
        "observers": [
            {"name": "network", "state": "running"},
            {"name": "container", "state": "running"},
            {"name": "storage", "state": "running"},
            {"name": "node", "state": "unavailable", "reason": "no hardware PMU"},
        ],
        "counters": {},
    }
    with open(os.path.join(d, ".tapio-status.json"), "w") as f:
        json.dump(status, f)
    return d, ids


def structured(res):
    return res.structuredContent or {}


async def sdk_checks(data_dir, ids):
    params = StdioServerParameters(command=TAPIO, args=["--data-dir", data_dir, "mcp"],
                                   env={"TAPIO_NOW": NOW, "PATH": os.environ.get("PATH", "")})
    async with stdio_client(params) as (read, write):
        async with ClientSession(read, write, read_timeout_seconds=timedelta(seconds=20)) as s:
            init = await s.initialize()
            check("initialize negotiates a version the SDK supports",
                  init.protocolVersion in ("2025-06-18", "2025-03-26", "2024-11-05"), init.protocolVersion)
            check("initialize names the server", init.serverInfo.name == "tapio", init.serverInfo)
            check("initialize declares the tools capability", init.capabilities.tools is not None)

            await s.send_ping()
            check("ping answers", True)

            tools = (await s.list_tools()).tools
            names = sorted(t.name for t in tools)
            check("tools/list lists the four tools",
                  names == ["count_by_type", "get_occurrence", "node_health", "recent_anomalies"], names)
            check("every tool has an object inputSchema and an outputSchema",
                  all(t.inputSchema.get("type") == "object" and t.outputSchema for t in tools))
            check("every tool is annotated read-only",
                  all(t.annotations and t.annotations.readOnlyHint for t in tools))

            r = await s.call_tool("recent_anomalies", {})
            sc = structured(r)
            check("recent_anomalies: default 1h window finds 3 occurrences, 7 facts",
                  not r.isError and sc.get("matched_occurrences") == 3 and sc.get("matched_facts") == 7, sc)
            check("recent_anomalies: newest first",
                  [o["id"] for o in sc.get("occurrences", [])] == [ids["refused"], ids["oom"], ids["spike"]], sc)
            check("recent_anomalies: unusable files are counted",
                  sc.get("files", {}).get("files_skipped") == 3
                  and sc["files"].get("corrupt") == 0 and sc["files"].get("half_written") == 1
                  and sc["files"].get("foreign") == 1 and sc["files"].get("irregular") == 1, sc.get("files"))
            check("recent_anomalies: readable text content",
                  r.content and r.content[0].type == "text"
                  and "kernel.network.connection_refused" in r.content[0].text, r.content)

            r = await s.call_tool("recent_anomalies", {"since": "5m", "severity": "critical"})
            sc = structured(r)
            check("recent_anomalies: since + severity filter",
                  [o["id"] for o in sc.get("occurrences", [])] == [ids["oom"]]
                  and sc["occurrences"][0]["data"]["pid"] == 4321, sc)

            r = await s.call_tool("recent_anomalies", {"observer": "network", "limit": 1})
            sc = structured(r)
            check("recent_anomalies: observer filter and limit keep the newest",
                  sc.get("returned") == 1 and sc.get("truncated") is True and sc.get("matched_occurrences") == 2
                  and sc["occurrences"][0]["id"] == ids["refused"], sc)

            r = await s.call_tool("recent_anomalies", {"type": "kernel.network.retransmit_spike", "since": "24h"})
            sc = structured(r)
            check("recent_anomalies: type filter; a folded occurrence counts data.count",
                  sc.get("matched_occurrences") == 1 and sc.get("matched_facts") == 5, sc)

            r = await s.call_tool("recent_anomalies", {"since": "2026-04-03T12:00:00Z", "observer": "storage"})
            sc = structured(r)
            check("recent_anomalies: RFC 3339 since",
                  [o["id"] for o in sc.get("occurrences", [])] == [ids["io"]], sc)

            r = await s.call_tool("node_health", {})
            sc = structured(r)
            verdicts = {o["observer"]: (o["verdict"], o["rule"]) for o in sc.get("observers", [])}
            check("node_health: verdict and rule per observer", verdicts == {
                "network": ("degraded", "warning_15m"),
                "container": ("critical", "critical_5m"),
                "storage": ("healthy", "quiet_15m"),
                "node": ("unavailable", "agent_unavailable"),
            }, verdicts)
            net = next((o for o in sc.get("observers", []) if o["observer"] == "network"), {})
            check("node_health: per-minute picture of the last hour",
                  len(net.get("per_minute", [])) == 60 and net["per_minute"][49] == 5
                  and net["per_minute"][57] == 1 and net.get("last_hour") == 6, net)

            r = await s.call_tool("node_health", {"observer": "node"})
            sc = structured(r)
            check("node_health: one observer",
                  [o["observer"] for o in sc.get("observers", [])] == ["node"]
                  and sc["observers"][0]["detail"] == "agent reports unavailable: no hardware PMU", sc)

            r = await s.call_tool("count_by_type", {"since": "24h"})
            sc = structured(r)
            counts = {t["type"]: t["facts"] for t in sc.get("types", [])}
            check("count_by_type: facts per type over the window", counts == {
                "kernel.network.retransmit_spike": 5,
                "kernel.network.connection_refused": 1,
                "kernel.container.oom_kill": 1,
                "kernel.storage.io_error": 1,
            } and sc.get("total_facts") == 8 and sc.get("total_occurrences") == 4, sc)
            check("count_by_type: busiest type first",
                  sc.get("types", [{}])[0].get("type") == "kernel.network.retransmit_spike", sc)

            r = await s.call_tool("count_by_type", {"since": "1h", "observer": "container"})
            sc = structured(r)
            check("count_by_type: observer filter",
                  [(t["type"], t["by_severity"]["critical"]) for t in sc.get("types", [])]
                  == [("kernel.container.oom_kill", 1)], sc)

            r = await s.call_tool("get_occurrence", {"id": ids["oom"]})
            sc = structured(r)
            check("get_occurrence: the whole document",
                  not r.isError and sc.get("occurrence", {}).get("id") == ids["oom"]
                  and sc["occurrence"]["error"]["code"] == "OOM_KILL", sc)

            r = await s.call_tool("get_occurrence", {"id": ulid(NOW_MS, 999)})
            check("get_occurrence: unknown id is a tool error",
                  r.isError and "no occurrence with id" in r.content[0].text, r)

            r = await s.call_tool("get_occurrence", {"id": ids["link"]})
            check("get_occurrence: a symlink out of the data dir is not followed",
                  r.isError and "/etc" not in json.dumps(r.model_dump()), r)

            for name, args, what in [
                ("recent_anomalies", {"limit": 0}, "limit below 1"),
                ("recent_anomalies", {"since": "yesterday"}, "malformed since"),
                ("recent_anomalies", {"observer": "dns"}, "unknown observer"),
                ("recent_anomalies", {"path": "/etc"}, "unknown argument"),
                ("get_occurrence", {"id": "../../etc/passwd"}, "id that is not a ULID"),
                ("no_such_tool", {}, "unknown tool"),
            ]:
                try:
                    await s.call_tool(name, args)
                    check(f"invalid params ({what}) -> -32602", False, "no error")
                except McpError as e:
                    check(f"invalid params ({what}) -> -32602", e.error.code == -32602, e.error)


async def sdk_missing_dir_checks():
    missing = os.path.join(tempfile.gettempdir(), "tapio-mcp-does-not-exist")
    params = StdioServerParameters(command=TAPIO, args=["--data-dir", missing, "mcp"],
                                   env={"PATH": os.environ.get("PATH", "")})
    async with stdio_client(params) as (read, write):
        async with ClientSession(read, write, read_timeout_seconds=timedelta(seconds=20)) as s:
            await s.initialize()
            r = await s.call_tool("node_health", {})
            check("missing data dir is a tool execution error (isError), not a crash",
                  r.isError and "no data directory" in r.content[0].text, r)


def raw_session(data_dir, lines):
    """Sends raw lines to `tapio mcp`, closes stdin, returns the parsed replies and exit code."""
    p = subprocess.run([TAPIO, "--data-dir", data_dir, "mcp"], input="".join(l + "\n" for l in lines),
                       capture_output=True, text=True, timeout=30, env={**os.environ, "TAPIO_NOW": NOW})
    return [json.loads(l) for l in p.stdout.splitlines() if l.strip()], p.returncode


def init_msg(i, version):
    return json.dumps({"jsonrpc": "2.0", "id": i, "method": "initialize",
                       "params": {"protocolVersion": version, "capabilities": {},
                                  "clientInfo": {"name": "raw", "version": "0"}}})


def raw_checks(data_dir):
    replies, code = raw_session(data_dir, [
        "{this is not json",
        json.dumps({"jsonrpc": "2.0", "id": 1, "method": "no/such/method"}),
        json.dumps({"jsonrpc": "2.0", "id": 2, "method": "initialize", "params": {"protocolVersion": 5}}),
        json.dumps({"jsonrpc": "2.0", "id": 3, "method": "tools/call",
                    "params": {"name": "recent_anomalies", "arguments": "x"}}),
        json.dumps({"jsonrpc": "2.0", "id": 4}),
        json.dumps({"jsonrpc": "1.0", "id": 5, "method": "ping"}),
        json.dumps({"jsonrpc": "2.0", "id": None, "method": "ping"}),
        json.dumps({"jsonrpc": "2.0", "id": 6, "method": "ping", "params": [1, 2]}),
        "[]",
        json.dumps({"jsonrpc": "2.0", "method": "notifications/initialized"}),
        json.dumps({"jsonrpc": "2.0", "id": "last", "method": "ping"}),
    ])
    got = [(r.get("id"), r.get("error", {}).get("code")) for r in replies]
    check("raw: bad JSON -> -32700 with id null", got[:1] == [(None, -32700)], got)
    check("raw: unknown method -> -32601", got[1:2] == [(1, -32601)], got)
    check("raw: bad initialize params -> -32602", got[2:3] == [(2, -32602)], got)
    check("raw: non-object tool arguments -> -32602", got[3:4] == [(3, -32602)], got)
    check("raw: request without method -> -32600", got[4:5] == [(4, -32600)], got)
    check("raw: wrong jsonrpc version -> -32600", got[5:6] == [(5, -32600)], got)
    check("raw: null id -> -32600", got[6:7] == [(None, -32600)], got)
    check("raw: positional params -> -32602", got[7:8] == [(6, -32602)], got)
    check("raw: empty batch -> -32600", got[8:9] == [(None, -32600)], got)
    check("raw: notification gets no reply; next request still answered",
          got[9:] == [("last", None)] and replies[-1].get("result") == {}, got)
    check("raw: every reply is JSON-RPC 2.0", all(r.get("jsonrpc") == "2.0" for r in replies), replies)
    check("raw: server exits 0 when stdin closes", code == 0, code)

    for asked, expect in [("2024-11-05", "2024-11-05"), ("2025-03-26", "2025-03-26"),
                          ("2025-06-18", "2025-06-18"), ("2999-01-01", "2025-06-18")]:
        replies, _ = raw_session(data_dir, [init_msg(1, asked)])
        check(f"raw: initialize {asked} -> {expect}",
              replies and replies[0].get("result", {}).get("protocolVersion") == expect, replies)

    replies, _ = raw_session(data_dir, [
        init_msg(1, "2024-11-05"),
        json.dumps({"jsonrpc": "2.0", "method": "notifications/initialized"}),
        json.dumps({"jsonrpc": "2.0", "id": 2, "method": "tools/list"}),
        json.dumps({"jsonrpc": "2.0", "id": 3, "method": "tools/call",
                    "params": {"name": "count_by_type", "arguments": {"since": "24h"}}}),
    ])
    tools = replies[1]["result"]["tools"] if len(replies) > 1 else []
    check("raw: 2024-11-05 tools carry no outputSchema/annotations",
          tools and all("outputSchema" not in t and "annotations" not in t for t in tools), tools)
    res = replies[2]["result"] if len(replies) > 2 else {}
    check("raw: 2024-11-05 results carry the data as text, no structuredContent",
          "structuredContent" not in res and len(res.get("content", [])) == 2
          and json.loads(res["content"][1]["text"])["total_facts"] == 8, res)

    replies, _ = raw_session(data_dir, [json.dumps([
        {"jsonrpc": "2.0", "id": 1, "method": "ping"},
        {"jsonrpc": "2.0", "method": "notifications/initialized"},
        {"jsonrpc": "2.0", "id": 2, "method": "nope"},
    ])])
    check("raw: batch answered as an array, notifications omitted",
          len(replies) == 1 and [(r["id"], "error" in r) for r in replies[0]] == [(1, False), (2, True)], replies)


def main():
    data_dir, ids = make_fixture()
    try:
        asyncio.run(sdk_checks(data_dir, ids))
        asyncio.run(sdk_missing_dir_checks())
        raw_checks(data_dir)
    except Exception as e:  # a crash of the harness or server is a failure, not a skip
        import traceback

        traceback.print_exc()
        check("harness ran to completion", False, repr(e))
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)
    print(f"{results['passed']} passed, {results['failed']} failed")
    return 1 if results["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
