//! `otlp` sink: occurrences as OTLP/HTTP log records, protobuf-encoded and
//! POSTed to `<endpoint>/v1/logs` (D4). Built with the cargo feature `otlp`.
//!
//! ## Design constraints
//! - Runs on its sink worker behind the bounded queue of [`super::Fanout`]
//!   (full queue: dropped and counted, `queue_full`); one batch (at most
//!   [`super::MAX_BATCH`] occurrences) is one `ExportLogsServiceRequest`.
//! - Messages are the `opentelemetry-proto` types encoded by `prost`, not a
//!   hand-written encoding.
//! - Nothing of an occurrence is dropped: `error.message` is the body; the
//!   envelope (`id`, `type`, `source`, `protocol_version`, `outcome`,
//!   `error.code`) becomes `tapio.*` attributes plus `event.name`; every
//!   `data` fact becomes a `tapio.data.<key>` attribute of its own type.
//!   OTLP integers are signed 64-bit, so a `u64` above `i64::MAX` is sent
//!   as its decimal string rather than wrapped.
//! - Attribution facts are also sent under the OpenTelemetry semantic
//!   convention names that exist for them ([`SEMCONV`]: `k8s.pod.uid`,
//!   `container.id`, `container.runtime`), as log record attributes: one
//!   batch holds many pods, and the resource is the agent on its node
//!   (`service.name`, `host.name`), not the pod the record is about.
//! - Severity: info → INFO (9), warning → WARN (13), critical → ERROR (17):
//!   Tapio's critical marks a failed operation ("something went wrong"), not
//!   a crash of the emitter (FATAL). `severity_text` keeps Tapio's word.
//! - `http://` only, host names included; `https://` is refused when the
//!   URL is parsed at startup, before any connection is opened or any
//!   header sent (TLS belongs to a local collector, proxy or mesh).
//! - A transport error and the statuses OTLP/HTTP calls retryable (429,
//!   502, 503, 504) are retried with backoff (100 ms doubling, capped at
//!   1 s) until the batch's write deadline; any other non-2xx fails the
//!   batch at once. A failed batch is counted by the worker
//!   (`tapio_sink_drops_total{sink="otlp",reason="write_failed"}`); records
//!   a collector reports as rejected in a partial success are counted
//!   there too.

use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::{
    any_value::Value, AnyValue, InstrumentationScope, KeyValue,
};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs, SeverityNumber};
use opentelemetry_proto::tonic::resource::v1::Resource;
use prost::Message;
use tapio_common::occurrence::{PROTOCOL_VERSION, SOURCE};
use tapio_common::{Fact, Occurrence, Severity, Sink, SinkError};

use super::http::{retry, sink_error, Attempt};
use crate::counters::{Counters, SinkDrop, SinkKind};
use crate::http::{Client, Endpoint, HttpError, Request};

/// Path appended to the configured endpoint (OTLP/HTTP logs).
pub const LOGS_PATH: &str = "/v1/logs";

fn kv(key: impl Into<String>, v: Value) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue { value: Some(v) }),
        ..KeyValue::default()
    }
}

fn text(s: impl Into<String>) -> Value {
    Value::StringValue(s.into())
}

/// A fact as an OTLP value, losslessly.
#[must_use]
pub fn fact_value(f: &Fact) -> Value {
    match f {
        Fact::U64(v) => i64::try_from(*v).map_or_else(|_| text(v.to_string()), Value::IntValue),
        Fact::I64(v) => Value::IntValue(*v),
        Fact::F64(v) => Value::DoubleValue(*v),
        Fact::Bool(v) => Value::BoolValue(*v),
        Fact::Str(v) => text(v.as_str()),
        Fact::Addr(_) | Fact::Comm(_) => text(f.text()),
    }
}

/// OTLP severity number of a Tapio severity.
#[must_use]
pub fn severity_number(s: Severity) -> SeverityNumber {
    match s {
        Severity::Info => SeverityNumber::Info,
        Severity::Warning => SeverityNumber::Warn,
        Severity::Critical => SeverityNumber::Error,
    }
}

/// Attribution facts with an OpenTelemetry semantic-convention name.
pub const SEMCONV: [(&str, &str); 3] = [
    ("pod_uid", "k8s.pod.uid"),
    ("container_id", "container.id"),
    ("container_runtime", "container.runtime"),
];

/// One occurrence as one log record.
#[must_use]
pub fn log_record(o: &Occurrence, observed_unix_ns: u64) -> LogRecord {
    let mut attributes = Vec::with_capacity(7 + o.data.len());
    attributes.extend([
        kv("event.name", text(o.anomaly.as_str())),
        kv("tapio.id", text(o.id.to_string())),
        kv("tapio.type", text(o.anomaly.as_str())),
        kv("tapio.source", text(SOURCE)),
        kv("tapio.protocol_version", text(PROTOCOL_VERSION)),
        kv("tapio.outcome", text(o.outcome.as_str())),
        kv("tapio.error.code", text(o.anomaly.error_code())),
    ]);
    for (k, v) in o.data.iter() {
        attributes.push(kv(format!("tapio.data.{k}"), fact_value(v)));
    }
    for (fact, name) in SEMCONV {
        if let Some(v) = o.data.get(fact) {
            attributes.push(kv(name, fact_value(v)));
        }
    }
    LogRecord {
        time_unix_nano: o.unix_ns,
        observed_time_unix_nano: observed_unix_ns,
        severity_number: severity_number(o.severity) as i32,
        severity_text: o.severity.as_str().to_owned(),
        body: Some(AnyValue {
            value: Some(text(o.message_text())),
        }),
        attributes,
        event_name: o.anomaly.as_str().to_owned(),
        ..LogRecord::default()
    }
}

/// The export request for `batch`, from node `host`.
#[must_use]
pub fn export_request(batch: &[Occurrence], host: &str) -> ExportLogsServiceRequest {
    let observed = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
    ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            resource: Some(Resource {
                attributes: vec![
                    kv("service.name", text("tapio-agent")),
                    kv("service.version", text(env!("CARGO_PKG_VERSION"))),
                    kv("host.name", text(host)),
                ],
                ..Resource::default()
            }),
            scope_logs: vec![ScopeLogs {
                scope: Some(InstrumentationScope {
                    name: "tapio".into(),
                    version: PROTOCOL_VERSION.into(),
                    ..InstrumentationScope::default()
                }),
                log_records: batch.iter().map(|o| log_record(o, observed)).collect(),
                ..ScopeLogs::default()
            }],
            ..ResourceLogs::default()
        }],
    }
}

/// True for the statuses OTLP/HTTP says to retry.
fn retryable(status: u16) -> bool {
    matches!(status, 429 | 502 | 503 | 504)
}

/// OTLP/HTTP logs exporter.
pub struct OtlpSink {
    endpoint: Endpoint,
    path: String,
    client: Client,
    host: String,
    counters: Arc<Counters>,
}

impl OtlpSink {
    /// A sink exporting to `<url>/v1/logs`, as node `host`.
    ///
    /// # Errors
    /// The URL is not a usable `http://` URL (`https://` included).
    pub fn new(url: &str, host: String, counters: Arc<Counters>) -> Result<Self, HttpError> {
        let endpoint = Endpoint::parse(url)?;
        Ok(OtlpSink {
            path: endpoint.join(LOGS_PATH),
            endpoint,
            client: Client {
                max_body: 64 * 1024,
                ..Client::default()
            },
            host,
            counters,
        })
    }

    /// Counts records a collector reported as rejected in a 2xx answer.
    fn partial_success(&self, body: &[u8]) {
        let Ok(r) = ExportLogsServiceResponse::decode(body) else {
            return;
        };
        let Some(p) = r.partial_success else { return };
        if p.rejected_log_records > 0 {
            let n = u64::try_from(p.rejected_log_records).unwrap_or(0);
            tracing::warn!(sink = "otlp", rejected = n, message = %p.error_message, "collector rejected log records");
            self.counters
                .sink_drop(SinkKind::Otlp, SinkDrop::WriteFailed, n);
        }
    }
}

impl Sink for OtlpSink {
    fn name(&self) -> &'static str {
        "otlp"
    }

    fn write_batch(&mut self, batch: &[Occurrence], deadline: Instant) -> Result<(), SinkError> {
        let started = Instant::now();
        let body = export_request(batch, &self.host).encode_to_vec();
        let mut answer = Vec::new();
        retry(deadline, || {
            let r = self
                .client
                .send(
                    &self.endpoint,
                    &Request {
                        method: "POST",
                        path: &self.path,
                        headers: &[("Content-Type", "application/x-protobuf")],
                        body: Some(&body),
                    },
                    deadline,
                )
                .map_err(|e| {
                    tracing::debug!(sink = "otlp", error = %super::error_chain(&e), "export failed");
                    Attempt::Transient(sink_error(&e, started))
                })?;
            if r.is_success() {
                answer = r.body;
                Ok(())
            } else if retryable(r.status) {
                Err(Attempt::Transient(SinkError::Rejected { status: r.status }))
            } else {
                Err(Attempt::Permanent(SinkError::Rejected { status: r.status }))
            }
        })?;
        self.partial_success(&answer);
        Ok(())
    }

    fn flush(&mut self, _deadline: Instant) -> Result<(), SinkError> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tapio_common::{Anomaly, Outcome};

    fn occ() -> Occurrence {
        let mut o = Occurrence::new(
            Anomaly::ConnectionRefused,
            Severity::Warning,
            Outcome::Failure,
            1_700_000_000_123_000_000,
            3,
        );
        o.message = "connect to 127.0.0.1:9 refused".into();
        o.data
            .u64("dst_port", 9)
            .str("dst_addr", "127.0.0.1")
            .i64("errno", 111)
            .bool("reset_received", true)
            .set("ratio", Fact::F64(0.5))
            .u64("huge", u64::MAX);
        o
    }

    fn attr<'a>(r: &'a LogRecord, k: &str) -> &'a Value {
        r.attributes
            .iter()
            .find(|a| a.key == k)
            .and_then(|a| a.value.as_ref())
            .and_then(|v| v.value.as_ref())
            .unwrap_or_else(|| panic!("no attribute {k}"))
    }

    #[test]
    fn every_fact_becomes_a_typed_attribute() {
        let o = occ();
        let r = log_record(&o, 5);
        assert_eq!(r.attributes.len(), 7 + o.data.len());
        assert_eq!(attr(&r, "tapio.data.dst_port"), &Value::IntValue(9));
        assert_eq!(attr(&r, "tapio.data.errno"), &Value::IntValue(111));
        assert_eq!(
            attr(&r, "tapio.data.reset_received"),
            &Value::BoolValue(true)
        );
        assert_eq!(attr(&r, "tapio.data.ratio"), &Value::DoubleValue(0.5));
        assert_eq!(
            attr(&r, "tapio.data.huge"),
            &Value::StringValue(u64::MAX.to_string())
        );
        assert_eq!(
            attr(&r, "tapio.data.config_generation"),
            &Value::IntValue(3)
        );
        assert_eq!(
            attr(&r, "tapio.error.code"),
            &Value::StringValue("CONNECTION_REFUSED".into())
        );
        assert_eq!(r.time_unix_nano, 1_700_000_000_123_000_000);
        assert_eq!(r.severity_number, 13);
        assert_eq!(r.severity_text, "warning");
        assert_eq!(r.event_name, "kernel.network.connection_refused");
    }

    #[test]
    fn attribution_facts_also_carry_their_semconv_names() {
        let mut o = occ();
        o.data
            .str("pod_uid", "0c8a2d4e-57b1-4f3e-9a6d-1b2c3d4e5f60")
            .str("container_id", "ab".repeat(32))
            .str("container_runtime", "containerd")
            .str("cgroup_path", "/kubepods/x");
        let r = log_record(&o, 1);
        assert_eq!(r.attributes.len(), 7 + o.data.len() + 3);
        assert_eq!(
            attr(&r, "k8s.pod.uid"),
            &text("0c8a2d4e-57b1-4f3e-9a6d-1b2c3d4e5f60")
        );
        assert_eq!(attr(&r, "container.id"), &text("ab".repeat(32)));
        assert_eq!(attr(&r, "container.runtime"), &text("containerd"));
        assert_eq!(attr(&r, "tapio.data.cgroup_path"), &text("/kubepods/x"));
        let plain = log_record(&occ(), 1);
        assert!(plain.attributes.iter().all(|a| a.key != "k8s.pod.uid"));
    }

    #[test]
    fn severities_map_onto_otlp_numbers() {
        assert_eq!(severity_number(Severity::Info) as i32, 9);
        assert_eq!(severity_number(Severity::Warning) as i32, 13);
        assert_eq!(severity_number(Severity::Critical) as i32, 17);
    }

    #[test]
    fn https_and_junk_are_refused_when_the_sink_is_built() {
        let c = Arc::new(Counters::default());
        for bad in [
            "https://collector:4318",
            "HTTPS://c",
            "grpc://c:4317",
            "c:4318",
        ] {
            assert!(
                OtlpSink::new(bad, "n".into(), Arc::clone(&c)).is_err(),
                "{bad}"
            );
        }
        let s = OtlpSink::new("http://otel-collector.monitoring:4318/", "n".into(), c).unwrap();
        assert_eq!(s.path, "/v1/logs");
        assert_eq!(s.endpoint.host(), "otel-collector.monitoring");
    }

    #[test]
    fn only_the_otlp_retryable_statuses_are_retried() {
        assert!(retryable(429) && retryable(502) && retryable(503) && retryable(504));
        assert!(!retryable(500) && !retryable(400) && !retryable(413));
    }
}
