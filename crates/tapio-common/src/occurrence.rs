//! Occurrence schema: the JSON evidence Tapio emits (D5).
//!
//! Fields are factual: id (ULID), timestamp (RFC 3339 UTC `Z`), source,
//! type, protocol_version, severity, outcome, error{code,message} and data.
//! There is no field for reasoning, explanation or remediation, and
//! [`OccurrenceRecord`] rejects documents that carry one.

use serde::ser::SerializeStruct;
use std::borrow::Cow;

use serde::{Deserialize, Serialize, Serializer};
use ulid::Ulid;

use crate::anomaly::{Anomaly, Observer};
pub use crate::facts::{render, Comm, Fact, Facts, Piece, SharedFacts, Template};
use crate::time::{format_rfc3339_millis, parse_rfc3339_utc};

/// `source` of every occurrence.
pub const SOURCE: &str = "tapio";
/// `protocol_version` of the occurrence schema.
pub const PROTOCOL_VERSION: &str = "1.0";

/// How bad the fact is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Worth recording.
    Info,
    /// Degraded service.
    Warning,
    /// Failed service.
    Critical,
}

impl Severity {
    /// Lowercase name.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Critical => "critical",
        }
    }
}

/// What happened to the operation the fact is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// The operation failed (refused, killed, I/O error).
    Failure,
    /// The operation completed, worse than its baseline or threshold.
    Degraded,
}

impl Outcome {
    /// Lowercase name.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Outcome::Failure => "failure",
            Outcome::Degraded => "degraded",
        }
    }
}

/// One emitted anomaly, as built by the agent.
#[derive(Debug, Clone, PartialEq)]
pub struct Occurrence {
    /// Unique id.
    pub id: Ulid,
    /// Wall-clock time of the fact, Unix nanoseconds.
    pub unix_ns: u64,
    /// Which anomaly.
    pub anomaly: Anomaly,
    /// Severity.
    pub severity: Severity,
    /// Outcome.
    pub outcome: Outcome,
    /// `error.message`: the facts in one line, no interpretation. Empty
    /// when `template` is set ([`Occurrence::message_text`] reads either).
    pub message: String,
    /// `error.message` as a template over `data`, rendered when written.
    pub template: Option<Template>,
    /// `data`: the kernel facts. `config_generation` and `timestamp_ns` are
    /// always present.
    pub data: Facts,
}

impl Occurrence {
    /// A new occurrence with a fresh id; `data` starts with
    /// `config_generation` and `timestamp_ns`.
    #[must_use]
    pub fn new(
        anomaly: Anomaly,
        severity: Severity,
        outcome: Outcome,
        unix_ns: u64,
        generation: u64,
    ) -> Self {
        let mut data = Facts::with_capacity(16);
        data.u64("config_generation", generation)
            .u64("timestamp_ns", unix_ns);
        let id = Ulid::from_parts(unix_ns / 1_000_000, ulid_random());
        Occurrence {
            id,
            unix_ns,
            anomaly,
            severity,
            outcome,
            message: String::new(),
            template: None,
            data,
        }
    }

    /// The observer that produced it.
    #[must_use]
    pub fn observer(&self) -> Observer {
        self.anomaly.observer()
    }

    /// `error.message`: `message`, or `template` rendered over `data`.
    #[must_use]
    pub fn message_text(&self) -> Cow<'_, str> {
        match self.template {
            Some(t) => Cow::Owned(render(t, &self.data)),
            None => Cow::Borrowed(&self.message),
        }
    }

    /// Appends this occurrence as compact JSON to `out`: the bytes
    /// `serde_json::to_writer` writes, without its allocations
    /// ([`crate::json`]).
    pub fn write_json(&self, out: &mut Vec<u8>) {
        crate::json::write_occurrence(out, self);
    }
}

/// 80 random bits for a ULID: a per-thread xorshift seeded from the clock and
/// the thread, enough for uniqueness within a millisecond (not a secret).
fn ulid_random() -> u128 {
    use std::cell::Cell;
    use std::hash::{BuildHasher, Hasher};
    thread_local! {
        static STATE: Cell<u128> = Cell::new({
            let mut h = std::collections::hash_map::RandomState::new().build_hasher();
            h.write_u128(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0));
            let a = h.finish();
            h.write_u64(a);
            (u128::from(a) << 64) | u128::from(h.finish()) | 1
        });
    }
    STATE.with(|s| {
        let mut x = s.get();
        x ^= x << 23;
        x ^= x >> 17;
        x ^= x << 26;
        s.set(x);
        x & ((1u128 << 80) - 1)
    })
}

struct ErrorRef<'a> {
    code: &'static str,
    message: &'a str,
}

impl Serialize for ErrorRef<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut st = s.serialize_struct("error", 2)?;
        st.serialize_field("code", self.code)?;
        st.serialize_field("message", self.message)?;
        st.end()
    }
}

impl Serialize for Occurrence {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut st = s.serialize_struct("Occurrence", 9)?;
        st.serialize_field("id", &self.id.to_string())?;
        st.serialize_field("timestamp", &format_rfc3339_millis(self.unix_ns))?;
        st.serialize_field("source", SOURCE)?;
        st.serialize_field("type", self.anomaly.as_str())?;
        st.serialize_field("protocol_version", PROTOCOL_VERSION)?;
        st.serialize_field("severity", &self.severity)?;
        st.serialize_field("outcome", &self.outcome)?;
        st.serialize_field(
            "error",
            &ErrorRef {
                code: self.anomaly.error_code(),
                message: &self.message_text(),
            },
        )?;
        st.serialize_field("data", &self.data)?;
        st.end()
    }
}

/// `error` of an occurrence read back from JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ErrorInfo {
    /// Stable code, e.g. `OOM_KILL`.
    pub code: String,
    /// One-line statement of the facts.
    pub message: String,
}

/// An occurrence read back from JSON (files, wire batches): owned, with the
/// closed top-level schema; `data` stays open because each type has its own
/// facts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OccurrenceRecord {
    /// ULID.
    pub id: String,
    /// RFC 3339 UTC.
    pub timestamp: String,
    /// Always `tapio`.
    pub source: String,
    /// `kernel.*` type name.
    #[serde(rename = "type")]
    pub kind: String,
    /// Schema version.
    pub protocol_version: String,
    /// Severity.
    pub severity: Severity,
    /// Outcome.
    pub outcome: Outcome,
    /// Error code and message.
    pub error: ErrorInfo,
    /// Kernel facts.
    pub data: serde_json::Map<String, serde_json::Value>,
}

impl OccurrenceRecord {
    /// The anomaly, when the type is one Tapio knows.
    #[must_use]
    pub fn anomaly(&self) -> Option<Anomaly> {
        Anomaly::parse(&self.kind)
    }

    /// Unix nanoseconds from `data.timestamp_ns`, else from `timestamp`.
    #[must_use]
    pub fn unix_ns(&self) -> Option<u64> {
        self.data
            .get("timestamp_ns")
            .and_then(serde_json::Value::as_u64)
            .or_else(|| parse_rfc3339_utc(&self.timestamp))
    }

    /// `data.config_generation`.
    #[must_use]
    pub fn config_generation(&self) -> Option<u64> {
        self.data
            .get("config_generation")
            .and_then(serde_json::Value::as_u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Occurrence {
        let mut o = Occurrence::new(
            Anomaly::OomKill,
            Severity::Critical,
            Outcome::Failure,
            1_743_690_181_042_000_000,
            1,
        );
        o.message = "OOM kill pid=1234".into();
        o.data
            .u64("pid", 1234)
            .str("comm", "stress")
            .i64("errno", -5);
        o
    }

    #[test]
    fn serializes_the_d5_shape() {
        let v: serde_json::Value = serde_json::to_value(sample()).unwrap();
        assert_eq!(v["timestamp"], "2025-04-03T14:23:01.042Z");
        assert_eq!(v["source"], "tapio");
        assert_eq!(v["type"], "kernel.container.oom_kill");
        assert_eq!(v["protocol_version"], "1.0");
        assert_eq!(v["severity"], "critical");
        assert_eq!(v["outcome"], "failure");
        assert_eq!(v["error"]["code"], "OOM_KILL");
        assert_eq!(v["data"]["pid"], 1234);
        assert_eq!(v["data"]["config_generation"], 1);
        assert_eq!(v["data"]["timestamp_ns"], 1_743_690_181_042_000_000u64);
        assert_eq!(v["id"].as_str().unwrap().len(), 26);
        let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
        for forbidden in [
            "reason",
            "reasoning",
            "explanation",
            "remediation",
            "suggested_fix",
        ] {
            assert!(!keys.contains(&forbidden));
        }
    }

    #[test]
    fn record_reads_back_what_the_agent_writes() {
        let o = sample();
        let json = serde_json::to_string(&o).unwrap();
        let r: OccurrenceRecord = serde_json::from_str(&json).unwrap();
        assert_eq!(r.id, o.id.to_string());
        assert_eq!(r.anomaly(), Some(Anomaly::OomKill));
        assert_eq!(r.unix_ns(), Some(o.unix_ns));
        assert_eq!(r.config_generation(), Some(1));
    }

    #[test]
    fn record_rejects_reasoning_fields() {
        let mut v = serde_json::to_value(sample()).unwrap();
        v["explanation"] = "the app leaked".into();
        assert!(serde_json::from_value::<OccurrenceRecord>(v).is_err());
    }

    #[test]
    fn ids_are_unique_and_time_ordered() {
        let a = Occurrence::new(
            Anomaly::IoError,
            Severity::Critical,
            Outcome::Failure,
            1_000_000_000,
            0,
        );
        let b = Occurrence::new(
            Anomaly::IoError,
            Severity::Critical,
            Outcome::Failure,
            1_000_000_000,
            0,
        );
        let c = Occurrence::new(
            Anomaly::IoError,
            Severity::Critical,
            Outcome::Failure,
            2_000_000_000,
            0,
        );
        assert_ne!(a.id, b.id);
        assert!(c.id > a.id && c.id > b.id);
    }
}
