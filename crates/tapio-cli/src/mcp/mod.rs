//! Read-only MCP server: JSON-RPC 2.0 over stdio, one message per line.
//!
//! Lifecycle per the MCP specification: `initialize` negotiates the protocol
//! version (the client's when supported, else the newest here), the
//! `notifications/initialized` notification is accepted, `ping` answers
//! `{}`. Tools are listed with JSON Schemas and called with `tools/call`.
//! Protocol errors are JSON-RPC errors (-32700 parse, -32600 invalid request,
//! -32601 unknown method, -32602 invalid params, unknown tool or invalid
//! arguments); failures while running a tool (no data directory, no such
//! occurrence) are tool results with `isError: true`.
//!
//! ## Design constraints
//! - A message is at most [`MAX_MESSAGE_BYTES`] (its newline aside). A longer
//!   line is never buffered whole: the first `MAX_MESSAGE_BYTES + 1` bytes
//!   show it is too long, the rest is read and dropped piece by piece up to
//!   the next newline, and it is answered with one -32600 error (`id`
//!   null); the next line is served as usual.
//! - The server only reads files directly inside the data directory given at
//!   start; no tool takes a path, and ids are checked to be canonical ULIDs
//!   before they become file names. Nothing is written but stdout.
//! - Requests are answered in order, one at a time; batches (JSON arrays) are
//!   answered with an array, notifications inside them get no entry.

mod tools;

use std::io::{self, BufRead, Write};
use std::path::Path;

use serde_json::{json, Map, Value};

/// Protocol versions spoken, newest first.
pub const PROTOCOL_VERSIONS: [&str; 3] = ["2025-06-18", "2025-03-26", "2024-11-05"];
/// Longest message accepted, in bytes.
pub const MAX_MESSAGE_BYTES: usize = 1 << 20;

/// JSON-RPC error codes.
const PARSE_ERROR: i64 = -32700;
const INVALID_REQUEST: i64 = -32600;
const METHOD_NOT_FOUND: i64 = -32601;
const INVALID_PARAMS: i64 = -32602;

/// A JSON-RPC error to send back.
#[derive(Debug)]
pub struct RpcError {
    code: i64,
    message: String,
}

impl RpcError {
    fn new(code: i64, message: impl Into<String>) -> Self {
        RpcError {
            code,
            message: message.into(),
        }
    }

    /// -32602 with `message`.
    pub fn params(message: impl Into<String>) -> Self {
        RpcError::new(INVALID_PARAMS, message)
    }
}

/// Server state: the data directory and the negotiated version.
struct Server<'a> {
    tools: tools::Tools<'a>,
    version: &'static str,
}

/// Serves MCP on `input`/`output` until `input` closes.
///
/// # Errors
/// When reading stdin or writing stdout fails.
pub fn serve(data_dir: &Path, mut input: impl BufRead, mut output: impl Write) -> io::Result<()> {
    let mut server = Server {
        tools: tools::Tools::new(data_dir),
        version: PROTOCOL_VERSIONS[0],
    };
    let mut line = Vec::with_capacity(4096);
    loop {
        line.clear();
        let n = io::Read::take(&mut input, MAX_MESSAGE_BYTES as u64 + 1)
            .read_until(b'\n', &mut line)?;
        if n == 0 {
            return Ok(());
        }
        let reply = if line.last() != Some(&b'\n') && line.len() > MAX_MESSAGE_BYTES {
            discard_line(&mut input)?;
            Some(error_reply(
                Value::Null,
                &RpcError::new(
                    INVALID_REQUEST,
                    format!("message longer than the {MAX_MESSAGE_BYTES}-byte limit; discarded"),
                ),
            ))
        } else if line.iter().all(u8::is_ascii_whitespace) {
            None
        } else {
            server.handle_line(&line)
        };
        if let Some(reply) = reply {
            serde_json::to_writer(&mut output, &reply)?;
            output.write_all(b"\n")?;
            output.flush()?;
        }
    }
}

/// Reads and drops input up to and including the next newline (or the end),
/// holding no more than the reader's buffer at a time.
fn discard_line(input: &mut impl BufRead) -> io::Result<()> {
    loop {
        let buf = match input.fill_buf() {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if buf.is_empty() {
            return Ok(());
        }
        if let Some(i) = buf.iter().position(|&b| b == b'\n') {
            input.consume(i + 1);
            return Ok(());
        }
        let n = buf.len();
        input.consume(n);
    }
}

fn error_reply(id: Value, e: &RpcError) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "error": {"code": e.code, "message": e.message}})
}

impl Server<'_> {
    fn handle_line(&mut self, line: &[u8]) -> Option<Value> {
        let msg: Value = match serde_json::from_slice(line) {
            Ok(v) => v,
            Err(e) => {
                return Some(error_reply(
                    Value::Null,
                    &RpcError::new(PARSE_ERROR, format!("parse error: {e}")),
                ))
            }
        };
        match msg {
            Value::Array(batch) if batch.is_empty() => Some(error_reply(
                Value::Null,
                &RpcError::new(INVALID_REQUEST, "empty batch"),
            )),
            Value::Array(batch) => {
                let replies: Vec<Value> = batch
                    .into_iter()
                    .filter_map(|m| self.handle_message(m))
                    .collect();
                (!replies.is_empty()).then_some(Value::Array(replies))
            }
            other => self.handle_message(other),
        }
    }

    fn handle_message(&mut self, msg: Value) -> Option<Value> {
        let Value::Object(mut obj) = msg else {
            return Some(error_reply(
                Value::Null,
                &RpcError::new(INVALID_REQUEST, "a message must be a JSON object"),
            ));
        };
        let id = obj.remove("id");
        let valid_id = match &id {
            None => true,
            Some(Value::String(_)) => true,
            Some(Value::Number(n)) => n.is_i64() || n.is_u64(),
            Some(_) => false,
        };
        let reply_id = if valid_id {
            id.clone().unwrap_or(Value::Null)
        } else {
            Value::Null
        };
        if obj.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
            return Some(error_reply(
                reply_id,
                &RpcError::new(INVALID_REQUEST, "`jsonrpc` must be \"2.0\""),
            ));
        }
        let Some(Value::String(method)) = obj.remove("method") else {
            if id.is_some() && (obj.contains_key("result") || obj.contains_key("error")) {
                // A response to a request we never send: nothing to do.
                return None;
            }
            return Some(error_reply(
                reply_id,
                &RpcError::new(INVALID_REQUEST, "`method` must be a string"),
            ));
        };
        if !valid_id {
            return Some(error_reply(
                Value::Null,
                &RpcError::new(INVALID_REQUEST, "`id` must be a string or an integer"),
            ));
        }
        let params = match obj.remove("params") {
            None | Some(Value::Null) => Ok(Map::new()),
            Some(Value::Object(m)) => Ok(m),
            Some(_) => Err(RpcError::params("`params` must be an object")),
        };
        let Some(id) = id else {
            // Notifications (initialized, cancelled, ...) need no answer and get none.
            return None;
        };
        let result = params.and_then(|p| self.dispatch(&method, p));
        Some(match result {
            Ok(result) => json!({"jsonrpc": "2.0", "id": id, "result": result}),
            Err(e) => error_reply(id, &e),
        })
    }

    fn dispatch(&mut self, method: &str, params: Map<String, Value>) -> Result<Value, RpcError> {
        match method {
            "initialize" => self.initialize(&params),
            "ping" => Ok(json!({})),
            "tools/list" => Ok(json!({"tools": self.tools.list(self.version)})),
            "tools/call" => {
                let name = params
                    .get("name")
                    .and_then(Value::as_str)
                    .ok_or_else(|| RpcError::params("`name` must be a string"))?;
                let args = match params.get("arguments") {
                    None | Some(Value::Null) => Map::new(),
                    Some(Value::Object(a)) => a.clone(),
                    Some(_) => return Err(RpcError::params("`arguments` must be an object")),
                };
                self.tools.call(name, &args, self.version)
            }
            _ => Err(RpcError::new(
                METHOD_NOT_FOUND,
                format!("method not found: `{method}`"),
            )),
        }
    }

    fn initialize(&mut self, params: &Map<String, Value>) -> Result<Value, RpcError> {
        let asked = params
            .get("protocolVersion")
            .and_then(Value::as_str)
            .ok_or_else(|| RpcError::params("`protocolVersion` must be a string"))?;
        self.version = PROTOCOL_VERSIONS
            .into_iter()
            .find(|v| *v == asked)
            .unwrap_or(PROTOCOL_VERSIONS[0]);
        let mut info = json!({"name": "tapio", "version": env!("CARGO_PKG_VERSION")});
        if self.version >= "2025-06-18" {
            info["title"] = "Tapio node kernel evidence".into();
        }
        Ok(json!({
            "protocolVersion": self.version,
            "capabilities": {"tools": {"listChanged": false}},
            "serverInfo": info,
            "instructions": "Read-only access to the kernel anomaly occurrences Tapio recorded on this node \
                (network, container, storage, node observers). Start with node_health, then recent_anomalies \
                or count_by_type for a window. Facts only: no tool infers a root cause.",
        }))
    }
}

#[cfg(test)]
mod fuzz;

#[cfg(test)]
mod tests {
    use super::*;

    fn roundtrip(input: &str) -> Vec<Value> {
        let mut out = Vec::new();
        serve(
            Path::new("/nonexistent-tapio-test"),
            input.as_bytes(),
            &mut out,
        )
        .unwrap();
        String::from_utf8(out)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    #[test]
    fn negotiates_supported_versions_and_falls_back_to_the_newest() {
        for (asked, got) in [
            ("2024-11-05", "2024-11-05"),
            ("2025-03-26", "2025-03-26"),
            ("2099-01-01", "2025-06-18"),
        ] {
            let r = roundtrip(&format!(
                r#"{{"jsonrpc":"2.0","id":1,"method":"initialize","params":{{"protocolVersion":"{asked}","capabilities":{{}},"clientInfo":{{"name":"t","version":"0"}}}}}}"#
            ));
            assert_eq!(r[0]["result"]["protocolVersion"], got);
        }
    }

    #[test]
    fn protocol_errors_use_json_rpc_codes() {
        let r = roundtrip(concat!(
            "{not json\n",
            "[]\n",
            r#"{"jsonrpc":"2.0","id":2,"method":"nope"}"#,
            "\n",
            r#"{"jsonrpc":"2.0","id":3,"method":"initialize","params":{}}"#,
            "\n",
            r#"{"jsonrpc":"2.0","id":4,"method":"tools/call","params":{"name":"nope"}}"#,
            "\n",
            r#"{"jsonrpc":"1.0","id":5,"method":"ping"}"#,
            "\n",
            r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
            "\n",
            r#"{"jsonrpc":"2.0","id":6,"method":"ping"}"#,
            "\n",
        ));
        let codes: Vec<i64> = r
            .iter()
            .map(|v| v["error"]["code"].as_i64().unwrap_or(0))
            .collect();
        assert_eq!(codes, [-32700, -32600, -32601, -32602, -32602, -32600, 0]);
        assert_eq!(r[6], json!({"jsonrpc": "2.0", "id": 6, "result": {}}));
    }

    #[test]
    fn batches_answer_requests_only() {
        let r = roundtrip(
            r#"[{"jsonrpc":"2.0","id":1,"method":"ping"},{"jsonrpc":"2.0","method":"notifications/initialized"}]"#,
        );
        assert_eq!(r[0], json!([{"jsonrpc": "2.0", "id": 1, "result": {}}]));
    }

    /// A reader that yields `n` bytes of `fill` without a newline, then
    /// `rest`.
    struct Endless {
        left: usize,
        rest: std::io::Cursor<Vec<u8>>,
    }

    impl io::Read for Endless {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.left == 0 {
                return self.rest.read(buf);
            }
            let n = buf.len().min(self.left);
            buf[..n].fill(b'x');
            self.left -= n;
            Ok(n)
        }
    }

    /// An oversized line was discarded with an unbounded `read_until` (a
    /// 1 GiB line without a newline was buffered whole).
    #[test]
    fn an_oversized_line_is_discarded_in_bounded_memory_and_the_next_is_served() {
        let input = io::BufReader::with_capacity(
            8192,
            Endless {
                left: 64 * MAX_MESSAGE_BYTES,
                rest: std::io::Cursor::new(
                    b"\n{\"jsonrpc\":\"2.0\",\"id\":7,\"method\":\"ping\"}\n".to_vec(),
                ),
            },
        );
        let mut out = Vec::new();
        serve(Path::new("/nonexistent-tapio-test"), input, &mut out).unwrap();
        let lines: Vec<Value> = String::from_utf8(out)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(
            lines,
            [
                json!({"jsonrpc": "2.0", "id": null, "error": {"code": -32600,
                    "message": "message longer than the 1048576-byte limit; discarded"}}),
                json!({"jsonrpc": "2.0", "id": 7, "result": {}}),
            ]
        );
    }

    /// A message of exactly the limit plus its newline counted as oversized,
    /// and the following line was swallowed as its "rest".
    #[test]
    fn a_message_of_exactly_the_limit_is_served_and_the_next_line_too() {
        let head = r#"{"jsonrpc":"2.0","id":1,"method":"ping","params":{"pad":""#;
        let tail = r#""}}"#;
        let pad = MAX_MESSAGE_BYTES - head.len() - tail.len();
        let exact = format!("{head}{}{tail}\n", "p".repeat(pad));
        assert_eq!(exact.len(), MAX_MESSAGE_BYTES + 1);
        let over = format!("{head}{}{tail}\n", "p".repeat(pad + 1));
        let input = format!(
            "{exact}{over}{}\n",
            r#"{"jsonrpc":"2.0","id":3,"method":"ping"}"#
        );
        let r = roundtrip(&input);
        assert_eq!(r.len(), 3, "{r:?}");
        assert_eq!(r[0], json!({"jsonrpc": "2.0", "id": 1, "result": {}}));
        assert_eq!(r[1]["error"]["code"], -32600);
        assert_eq!(r[2], json!({"jsonrpc": "2.0", "id": 3, "result": {}}));
    }
}
