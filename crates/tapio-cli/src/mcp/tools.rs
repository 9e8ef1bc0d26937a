//! MCP tools: recent anomalies, node health, counts by type, one occurrence
//! by id. Every tool reads the data directory only; none takes a path.

use std::path::Path;

use serde::Serialize;
use serde_json::{json, Map, Value};
use tapio_common::time::format_rfc3339_millis;
use tapio_common::{Observer, Severity};

use super::RpcError;
use crate::query::{observer_of, Filter};
use crate::render::Style;
use crate::report;
use crate::store::{DataDir, StoreError};
use crate::window::{now_ns, since_ns};

/// Tool definitions: names, descriptions, input and output JSON Schemas.
const DEFINITIONS: &str = include_str!("tools.json");
/// Default and largest `limit` of `recent_anomalies`.
const DEFAULT_LIMIT: u64 = 50;
const MAX_LIMIT: u64 = 1000;

/// The tools over one data directory.
pub struct Tools<'a> {
    data_dir: &'a Path,
    defs: Vec<Value>,
}

/// A tool failure reported as an `isError` result.
struct ToolError(String);

impl From<StoreError> for ToolError {
    fn from(e: StoreError) -> Self {
        let hint = match e {
            StoreError::Missing { .. } => {
                ": the agent writes occurrences there when run with --sink=file"
            }
            _ => "",
        };
        let mut msg = e.to_string();
        if let Some(src) = std::error::Error::source(&e) {
            msg.push_str(&format!(": {src}"));
        }
        ToolError(format!("{msg}{hint}"))
    }
}

/// The `pod_uid` and `container_id` filter arguments, checked.
fn owner_filter(args: &Args) -> Result<(Option<String>, Option<String>), RpcError> {
    let pod_uid = args.string("pod_uid")?.map(str::to_owned);
    if let Some(p) = &pod_uid {
        let ok = (32..=36).contains(&p.len())
            && p.bytes()
                .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c) || c == b'-');
        if !ok {
            return Err(RpcError::params(format!(
                "`pod_uid` must be a lowercase pod UID, not `{p}`"
            )));
        }
    }
    let container_id = args.string("container_id")?.map(str::to_owned);
    if let Some(c) = &container_id {
        let ok = (1..=64).contains(&c.len())
            && c.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        if !ok {
            return Err(RpcError::params(format!(
                "`container_id` must be 1 to 64 lowercase hex digits, not `{c}`"
            )));
        }
    }
    Ok((pod_uid, container_id))
}

/// Checked arguments.
struct Args<'m>(&'m Map<String, Value>);

impl Args<'_> {
    fn only(&self, allowed: &[&str]) -> Result<(), RpcError> {
        match self.0.keys().find(|k| !allowed.contains(&k.as_str())) {
            Some(k) => Err(RpcError::params(format!("unknown argument `{k}`"))),
            None => Ok(()),
        }
    }

    fn string(&self, key: &str) -> Result<Option<&str>, RpcError> {
        match self.0.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(RpcError::params(format!("`{key}` must be a string"))),
        }
    }

    fn observer(&self) -> Result<Option<Observer>, RpcError> {
        self.string("observer")?
            .map(|s| {
                Observer::parse(s).ok_or_else(|| {
                    RpcError::params(format!(
                        "`observer` must be one of network, container, storage, node, not `{s}`"
                    ))
                })
            })
            .transpose()
    }

    fn since(&self, now: u64) -> Result<u64, RpcError> {
        since_ns(self.string("since")?.unwrap_or("1h"), now)
            .map_err(|e| RpcError::params(format!("`since`: {e}")))
    }
}

fn text_of(render: impl FnOnce(&mut Vec<u8>) -> Result<(), crate::cmd::CliError>) -> String {
    let mut buf = Vec::new();
    // Writing into a Vec cannot fail.
    let _ = render(&mut buf);
    String::from_utf8_lossy(&buf).into_owned()
}

impl<'a> Tools<'a> {
    /// Tools reading `data_dir`.
    pub fn new(data_dir: &'a Path) -> Self {
        let defs = serde_json::from_str(DEFINITIONS).unwrap_or_default();
        Tools { data_dir, defs }
    }

    /// The definitions, with only the fields `version` knows: `title`,
    /// `outputSchema` from 2025-06-18, `annotations` from 2025-03-26.
    pub fn list(&self, version: &str) -> Vec<Value> {
        self.defs
            .iter()
            .map(|d| {
                let mut d = d.clone();
                if let Value::Object(m) = &mut d {
                    if version < "2025-06-18" {
                        m.remove("title");
                        m.remove("outputSchema");
                    }
                    if version < "2025-03-26" {
                        m.remove("annotations");
                    }
                }
                d
            })
            .collect()
    }

    /// Runs tool `name`.
    ///
    /// # Errors
    /// -32602 for an unknown tool or invalid arguments.
    pub fn call(
        &self,
        name: &str,
        args: &Map<String, Value>,
        version: &str,
    ) -> Result<Value, RpcError> {
        let args = Args(args);
        let now = now_ns();
        let outcome = match name {
            "recent_anomalies" => self.recent(&args, now)?,
            "node_health" => self.health(&args, now)?,
            "count_by_type" => self.counts(&args, now)?,
            "get_occurrence" => self.occurrence(&args)?,
            _ => return Err(RpcError::params(format!("unknown tool `{name}`"))),
        };
        Ok(match outcome {
            Ok((structured, text)) => {
                let mut content = vec![json!({"type": "text", "text": text})];
                let mut result = json!({"isError": false});
                if version >= "2025-06-18" {
                    result["structuredContent"] = structured;
                } else {
                    // No structuredContent before 2025-06-18: carry the data as JSON text too.
                    content.push(json!({"type": "text", "text": structured.to_string()}));
                }
                result["content"] = Value::Array(content);
                result
            }
            Err(ToolError(msg)) => {
                json!({"isError": true, "content": [{"type": "text", "text": msg}]})
            }
        })
    }

    fn open(&self) -> Result<DataDir, ToolError> {
        Ok(DataDir::open(self.data_dir)?)
    }

    fn recent(
        &self,
        args: &Args,
        now: u64,
    ) -> Result<Result<(Value, String), ToolError>, RpcError> {
        args.only(&[
            "since",
            "observer",
            "severity",
            "type",
            "limit",
            "pod_uid",
            "container_id",
        ])?;
        let (pod_uid, container_id) = owner_filter(args)?;
        let since_ns = args.since(now)?;
        let min_severity = args
            .string("severity")?
            .map(|s| match s {
                "info" => Ok(Severity::Info),
                "warning" => Ok(Severity::Warning),
                "critical" => Ok(Severity::Critical),
                _ => Err(RpcError::params(format!(
                    "`severity` must be info, warning or critical, not `{s}`"
                ))),
            })
            .transpose()?;
        let kind = args.string("type")?.map(str::to_owned);
        if let Some(k) = &kind {
            let parts: Vec<&str> = k.split('.').collect();
            let ok = parts.len() == 3
                && parts[0] == "kernel"
                && parts[1..].iter().all(|p| {
                    !p.is_empty() && p.bytes().all(|c| c.is_ascii_lowercase() || c == b'_')
                });
            if !ok {
                return Err(RpcError::params(format!(
                    "`type` must look like kernel.<observer>.<anomaly>, not `{k}`"
                )));
            }
        }
        let limit = match args.0.get("limit") {
            None | Some(Value::Null) => DEFAULT_LIMIT,
            Some(v) => v
                .as_u64()
                .filter(|n| (1..=MAX_LIMIT).contains(n))
                .ok_or_else(|| {
                    RpcError::params(format!("`limit` must be an integer from 1 to {MAX_LIMIT}"))
                })?,
        };
        let filter = Filter {
            since_ns,
            observers: args.observer()?.into_iter().collect(),
            min_severity,
            kind,
            pod_uid,
            container_id,
        };
        Ok((|| {
            let dir = self.open()?;
            let rep = report::recent(&dir, &filter, usize::try_from(limit).ok())?;
            let plain = Style {
                tty: false,
                colour: false,
            };
            let mut text = text_of(|buf| {
                for f in rep.found.iter().rev() {
                    crate::cmd::recent::write_occurrence(&plain, false, &f.rec, f.t_ns, buf)?;
                }
                Ok(())
            });
            text.insert_str(
                0,
                &format!(
                    "{} matching occurrences ({} facts) since {}; showing {} newest first\n",
                    rep.matched_occurrences,
                    rep.matched_facts,
                    format_rfc3339_millis(since_ns),
                    rep.found.len()
                ),
            );
            let occurrences: Vec<&tapio_common::OccurrenceRecord> =
                rep.found.iter().rev().map(|f| &f.rec).collect();
            let structured = json!({
                "since": format_rfc3339_millis(since_ns),
                "now": format_rfc3339_millis(now),
                "matched_occurrences": rep.matched_occurrences,
                "matched_facts": rep.matched_facts,
                "returned": occurrences.len(),
                "truncated": rep.matched_occurrences > occurrences.len() as u64,
                "occurrences": occurrences,
                "files": rep.files,
            });
            Ok((structured, text))
        })())
    }

    fn health(
        &self,
        args: &Args,
        now: u64,
    ) -> Result<Result<(Value, String), ToolError>, RpcError> {
        args.only(&["observer"])?;
        let only = args.observer()?;
        Ok((|| {
            let dir = self.open()?;
            let rep = report::health(&dir, now, only)?;
            let mut text = String::new();
            for r in &rep.observers {
                text.push_str(&format!(
                    "{}: {} (rule {}: {}); {} facts in the last hour\n",
                    r.observer,
                    r.judgement.verdict.as_str(),
                    r.judgement.rule,
                    r.judgement.detail,
                    r.last_hour
                ));
            }
            text.push_str(&format!("agent status file: {}\n", rep.agent.status_file));
            Ok((to_value(&rep), text))
        })())
    }

    fn counts(
        &self,
        args: &Args,
        now: u64,
    ) -> Result<Result<(Value, String), ToolError>, RpcError> {
        args.only(&["since", "observer", "pod_uid", "container_id"])?;
        let since_ns = args.since(now)?;
        let (pod_uid, container_id) = owner_filter(args)?;
        let filter = Filter {
            since_ns,
            observers: args.observer()?.into_iter().collect(),
            pod_uid,
            container_id,
            ..Filter::default()
        };
        Ok((|| {
            let dir = self.open()?;
            let (sum, files) = report::counts(&dir, &filter, now)?;
            let mut types: Vec<(&String, &crate::query::Tally)> = sum.by_type.iter().collect();
            types.sort_by(|a, b| b.1.count.cmp(&a.1.count).then_with(|| a.0.cmp(b.0)));
            let total = sum.total();
            let mut text = format!(
                "{} facts in {} occurrences since {}\n",
                total.count,
                total.files,
                format_rfc3339_millis(since_ns)
            );
            let rows: Vec<Value> = types
                .iter()
                .map(|(kind, t)| {
                    let last_seen = t.last_seen_ns.map(format_rfc3339_millis).unwrap_or_default();
                    text.push_str(&format!(
                        "{kind}: {} facts, {} occurrences, last {last_seen}\n",
                        t.count, t.files
                    ));
                    json!({
                        "type": kind,
                        "observer": observer_of(kind).map(Observer::as_str),
                        "facts": t.count,
                        "occurrences": t.files,
                        "by_severity": {"info": t.by_severity[0], "warning": t.by_severity[1], "critical": t.by_severity[2]},
                        "last_seen": last_seen,
                    })
                })
                .collect();
            let structured = json!({
                "since": format_rfc3339_millis(since_ns),
                "now": format_rfc3339_millis(now),
                "total_facts": total.count,
                "total_occurrences": total.files,
                "types": rows,
                "files": files,
            });
            Ok((structured, text))
        })())
    }

    fn occurrence(&self, args: &Args) -> Result<Result<(Value, String), ToolError>, RpcError> {
        args.only(&["id"])?;
        let id = args
            .string("id")?
            .ok_or_else(|| RpcError::params("`id` is required"))?;
        // Only a canonical ULID becomes a file name: no separators, no dots.
        if crate::names::ulid_millis(id).is_none() {
            return Err(RpcError::params(format!(
                "`id` must be a 26-character upper-case ULID, not `{id}`"
            )));
        }
        Ok((|| {
            let dir = self.open()?;
            let mut buf = Vec::new();
            let rec = dir
                .read(&format!("{id}{}", crate::names::SUFFIX), &mut buf)
                .map_err(|skip| match skip {
                    crate::store::Skip::Vanished => {
                        ToolError(format!("no occurrence with id {id}"))
                    }
                    other => ToolError(format!("occurrence {id} cannot be used: {other:?}")),
                })?;
            let text = serde_json::to_string_pretty(&rec).unwrap_or_default();
            Ok((json!({"occurrence": rec}), text))
        })())
    }
}

fn to_value<T: Serialize>(v: &T) -> Value {
    serde_json::to_value(v).unwrap_or(Value::Null)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn definitions_parse_and_follow_the_negotiated_version() {
        let tools = Tools::new(Path::new("/nonexistent"));
        let names: Vec<&str> = tools
            .defs
            .iter()
            .filter_map(|d| d["name"].as_str())
            .collect();
        assert_eq!(
            names,
            [
                "recent_anomalies",
                "node_health",
                "count_by_type",
                "get_occurrence"
            ]
        );
        for d in tools.list("2025-06-18") {
            assert_eq!(d["inputSchema"]["type"], "object", "{d}");
            assert_eq!(d["outputSchema"]["type"], "object", "{d}");
            assert_eq!(d["annotations"]["readOnlyHint"], true, "{d}");
        }
        for d in tools.list("2025-03-26") {
            assert!(d.get("outputSchema").is_none() && d.get("annotations").is_some());
        }
        for d in tools.list("2024-11-05") {
            let keys: Vec<&String> = d.as_object().unwrap().keys().collect();
            assert_eq!(keys, ["description", "inputSchema", "name"]);
        }
    }

    #[test]
    fn missing_data_dir_is_a_tool_error_not_a_protocol_error() {
        let tools = Tools::new(Path::new("/nonexistent-tapio"));
        let r = tools
            .call("node_health", &Map::new(), "2025-06-18")
            .unwrap();
        assert_eq!(r["isError"], true);
        assert_eq!(
            r["content"][0]["text"],
            "no data directory at `/nonexistent-tapio`: the agent writes occurrences there when run with --sink=file"
        );
    }

    #[test]
    fn ids_that_are_not_ulids_never_become_paths() {
        let tools = Tools::new(Path::new("/"));
        for id in [
            "../etc/passwd",
            "01ARZ3NDEKTSV4RRFFQ69G5FA/",
            "01ARZ3NDEKTSV4RRFFQ69G5FAV/../x",
        ] {
            let mut args = Map::new();
            args.insert("id".into(), id.into());
            let e = tools
                .call("get_occurrence", &args, "2025-06-18")
                .unwrap_err();
            assert_eq!(e.code, -32602, "{id}");
        }
    }
}
