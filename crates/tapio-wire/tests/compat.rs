//! Round-trip and compatibility tests of the tapio-wire/v1 messages.

use serde::de::DeserializeOwned;
use serde::Serialize;
use std::fmt::Debug;
use tapio_wire::*;

fn round_trip<T: Serialize + DeserializeOwned + PartialEq + Debug>(v: &T) {
    let json = serde_json::to_string(v).unwrap();
    let back: T = serde_json::from_str(&json).unwrap();
    assert_eq!(&back, v, "round trip changed the value: {json}");
}

/// Adds `"zz_future": {...}` to every object in `v`, as a newer peer might.
fn add_unknown_fields(v: &mut serde_json::Value) {
    match v {
        serde_json::Value::Object(m) => {
            for child in m.values_mut() {
                add_unknown_fields(child);
            }
            m.insert("zz_future".into(), serde_json::json!({"nested": [1, 2]}));
        }
        serde_json::Value::Array(a) => a.iter_mut().for_each(add_unknown_fields),
        _ => {}
    }
}

fn tolerates_newer_peer<T: Serialize + DeserializeOwned + PartialEq + Debug>(v: &T) {
    let mut json = serde_json::to_value(v).unwrap();
    add_unknown_fields(&mut json);
    let back: T = serde_json::from_value(json.clone())
        .unwrap_or_else(|e| panic!("newer peer's document rejected: {e}\n{json:#}"));
    assert_eq!(&back, v);
}

fn observers() -> Vec<ObserverReport> {
    vec![
        ObserverReport {
            name: "network".into(),
            state: ObserverState::Running,
            reason: None,
            config_applied: true,
        },
        ObserverReport {
            name: "node".into(),
            state: ObserverState::Unavailable,
            reason: Some("perf_event_open(cycles): ENOENT".into()),
            config_applied: false,
        },
    ]
}

fn hello() -> Hello {
    Hello {
        agent_id: "01JA1B2C3D4E5F6G7H8J9K0L1M".into(),
        node: "node-a".into(),
        agent_version: "0.1.0".into(),
        protocol: PROTOCOL.into(),
        started_at: "2026-04-03T14:23:01.042Z".into(),
        observers: observers(),
        applied_hash: String::new(),
    }
}

fn heartbeat() -> Heartbeat {
    Heartbeat {
        agent_id: "a1".into(),
        session: "s1".into(),
        applied_hash: CompiledConfig::production_default().content_hash(),
        applied_generation: 3,
        observers: observers(),
        counters: Counters {
            events: 10,
            anomalies: 4,
            lost: 1,
            malformed: 2,
            correlation_drops: 3,
            sink_drops: 5,
            send_failures: 6,
        },
    }
}

fn batch() -> EventBatch {
    EventBatch {
        agent_id: "a1".into(),
        session: "s1".into(),
        sequence: 1,
        occurrences: vec![serde_json::json!({
            "id": "01JA1B2C3D4E5F6G7H8J9K0L1M",
            "type": "kernel.network.connection_refused",
            "data": {"dst_port": 9, "config_generation": 1}
        })],
    }
}

#[test]
fn every_message_round_trips() {
    round_trip(&hello());
    round_trip(&HelloResponse {
        agent_id: "a1".into(),
        session: "s1".into(),
        protocol: PROTOCOL.into(),
        config_poll_interval_secs: 15,
        config_generation: 2,
        config_hash: "sha256:00".into(),
        max_body_bytes: 1 << 20,
        max_batch_events: 1000,
    });
    round_trip(&ConfigResponse::new(
        7,
        CompiledConfig::production_default(),
    ));
    round_trip(&heartbeat());
    round_trip(&HeartbeatResponse {
        config_generation: 1,
        config_hash: "sha256:00".into(),
        converged: true,
    });
    round_trip(&batch());
    round_trip(&EventBatchResponse {
        accepted: 1,
        sequence: 1,
        duplicate: false,
    });
    round_trip(&ErrorEnvelope::new(
        ErrorCode::PayloadTooLarge,
        "body exceeds 1048576 bytes",
    ));
}

#[test]
fn readers_tolerate_unknown_fields_from_a_newer_peer() {
    tolerates_newer_peer(&hello());
    tolerates_newer_peer(&heartbeat());
    tolerates_newer_peer(&ConfigResponse::new(
        2,
        CompiledConfig::production_default(),
    ));
    tolerates_newer_peer(&ErrorEnvelope::new(ErrorCode::NotFound, "no such endpoint"));
    // The batch's occurrences are opaque values: only the envelope is
    // checked for tolerance, the occurrences must arrive unchanged.
    let mut v = serde_json::to_value(batch()).unwrap();
    v["zz_future"] = serde_json::json!(1);
    let back: EventBatch = serde_json::from_value(v).unwrap();
    assert_eq!(back, batch());
}

#[test]
fn missing_optional_fields_default() {
    let h: Hello = serde_json::from_str(
        r#"{"agent_id":"a","node":"n","agent_version":"0.1.0","protocol":"tapio-wire/v1"}"#,
    )
    .unwrap();
    assert_eq!(h.started_at, "");
    assert!(h.observers.is_empty());
    assert_eq!(h.applied_hash, "");

    let hb: Heartbeat = serde_json::from_str(r#"{"agent_id":"a"}"#).unwrap();
    assert_eq!(
        hb.applied_hash, "",
        "unconfigured agent reports an empty hash"
    );
    assert_eq!(hb.applied_generation, 0);
    assert_eq!(hb.counters, Counters::default());

    let partial: Counters = serde_json::from_str(r#"{"events":5}"#).unwrap();
    assert_eq!(partial.events, 5);
    assert_eq!(partial.send_failures, 0);

    let r: HelloResponse = serde_json::from_str(r#"{"agent_id":"a","session":"s"}"#).unwrap();
    assert_eq!(r.config_poll_interval_secs, 30);

    let b: EventBatch =
        serde_json::from_str(r#"{"agent_id":"a","sequence":1,"occurrences":[]}"#).unwrap();
    assert_eq!(b.session, "");
}

#[test]
fn required_fields_are_required() {
    assert!(serde_json::from_str::<Heartbeat>("{}").is_err());
    assert!(serde_json::from_str::<EventBatch>(r#"{"agent_id":"a","occurrences":[]}"#).is_err());
    assert!(serde_json::from_str::<EventBatch>(
        r#"{"agent_id":"a","sequence":-1,"occurrences":[]}"#
    )
    .is_err());
}

#[test]
fn agent_side_batch_of_occurrences_reads_back_as_records() {
    use tapio_common::{Anomaly, Occurrence, OccurrenceRecord, Outcome, Severity};
    let mut o = Occurrence::new(
        Anomaly::ConnectionRefused,
        Severity::Warning,
        Outcome::Failure,
        1_743_690_181_042_000_000,
        4,
    );
    o.data.u64("dst_port", 9);
    let sent = EventBatch {
        agent_id: "a".into(),
        session: "s".into(),
        sequence: 9,
        occurrences: vec![&o],
    };
    let json = serde_json::to_vec(&sent).unwrap();
    let got: EventBatch<OccurrenceRecord> = serde_json::from_slice(&json).unwrap();
    assert_eq!(got.sequence, 9);
    assert_eq!(got.occurrences[0].config_generation(), Some(4));
    assert_eq!(got.occurrences[0].data["dst_port"], 9);
    assert_eq!(got.occurrences[0].id, o.id.to_string());
}

#[test]
fn error_codes_map_to_their_http_status() {
    let e: ErrorEnvelope =
        serde_json::from_str(r#"{"error":{"code":"unknown_agent","message":"hello first"}}"#)
            .unwrap();
    assert_eq!(e.code(), Some(ErrorCode::UnknownAgent));
    assert_eq!(ErrorCode::UnknownAgent.http_status(), 409);
    let future: ErrorEnvelope =
        serde_json::from_str(r#"{"error":{"code":"quota","message":"x"}}"#).unwrap();
    assert_eq!(future.code(), None);
    for c in ErrorCode::ALL {
        assert!((400..600).contains(&c.http_status()), "{c:?}");
    }
}
