//! The hand-written writer against serde_json, its peer: the same bytes for
//! every generated occurrence.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use proptest::prelude::*;

use super::*;
use crate::anomaly::Anomaly;
use crate::occurrence::{Comm, OccurrenceRecord, Outcome, Piece, Severity, SharedFacts, Template};

const KEYS: [&str; 8] = [
    "pid",
    "comm",
    "dst_addr",
    "cgroup_path",
    "ratio",
    "errno",
    "reset_received",
    "we\"ird\\key\n",
];

const TEMPLATES: [Template; 4] = [
    &[
        Piece::Lit("connect to "),
        Piece::Fact("dst_addr"),
        Piece::Lit(" refused pid="),
        Piece::Fact("pid"),
        Piece::Lit(" comm="),
        Piece::Fact("comm"),
    ],
    &[
        Piece::Fact("we\"ird\\key\n"),
        Piece::Lit("\u{1}\"é"),
        Piece::Fact("ratio"),
        Piece::Fact("reset_received"),
    ],
    &[],
    // Joined from parts (one of them empty) at compile time.
    crate::template!(
        &[Piece::Lit("to "), Piece::Fact("dst_addr")],
        &[Piece::Lit(" \"x\" ")],
        &[],
        &[Piece::Fact("pid"), Piece::Fact("missing")],
    ),
];

fn fact() -> impl Strategy<Value = Fact> {
    prop_oneof![
        any::<u64>().prop_map(Fact::U64),
        any::<i64>().prop_map(Fact::I64),
        any::<f64>().prop_map(Fact::F64),
        prop_oneof![
            Just(0.5f64),
            Just(1e16),
            Just(-0.0),
            Just(f64::NAN),
            Just(1e-7)
        ]
        .prop_map(Fact::F64),
        any::<bool>().prop_map(Fact::Bool),
        any::<String>().prop_map(Fact::Str),
        "[\\x00-\\x20\"\\\\/a-z\u{7f}\u{e9}\u{2028}\u{1f600}]{0,24}".prop_map(Fact::Str),
        any::<u32>().prop_map(|a| Fact::Addr(IpAddr::V4(Ipv4Addr::from(a)))),
        any::<u128>().prop_map(|a| Fact::Addr(IpAddr::V6(Ipv6Addr::from(a)))),
        any::<[u8; 16]>().prop_map(|c| Fact::Comm(Comm(c))),
        "[a-z\"\\\\\\x01]{0,16}".prop_map(|t| {
            let mut c = [0u8; 16];
            c[..t.len()].copy_from_slice(t.as_bytes());
            Fact::Comm(Comm(c))
        }),
    ]
}

fn facts() -> impl Strategy<Value = Vec<(&'static str, Fact)>> {
    proptest::collection::vec((0..KEYS.len(), fact()), 0..10)
        .prop_map(|v| v.into_iter().map(|(i, f)| (KEYS[i], f)).collect())
}

fn occurrence() -> impl Strategy<Value = Occurrence> {
    (
        0..Anomaly::ALL.len(),
        any::<u64>(),
        any::<u64>(),
        any::<String>(),
        facts(),
        proptest::option::of(facts()),
        any::<bool>(),
        proptest::option::of(0..TEMPLATES.len()),
    )
        .prop_map(
            |(a, unix_ns, generation, message, own, shared, critical, template)| {
                let (sev, out) = if critical {
                    (Severity::Critical, Outcome::Failure)
                } else {
                    (Severity::Info, Outcome::Degraded)
                };
                let mut o = Occurrence::new(Anomaly::ALL[a], sev, out, unix_ns, generation);
                o.message = message;
                if let Some(t) = template {
                    o.message = String::new();
                    o.template = Some(TEMPLATES[t]);
                }
                for (k, v) in own {
                    o.data.set(k, v);
                }
                if let Some(s) = shared {
                    o.data.attach(&Arc::new(SharedFacts::new(s)));
                }
                o
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn writes_what_serde_json_writes(o in occurrence()) {
        let mut mine = Vec::new();
        o.write_json(&mut mine);
        let peer = serde_json::to_vec(&o).unwrap();
        prop_assert_eq!(String::from_utf8_lossy(&mine), String::from_utf8_lossy(&peer));
        // And what the sinks' readers parse back is the occurrence.
        let r: OccurrenceRecord = serde_json::from_slice(&mine).unwrap();
        prop_assert_eq!(r.id, o.id.to_string());
        prop_assert_eq!(r.data.len(), o.data.len());
        prop_assert_eq!(r.error.message, o.message_text());
    }

    #[test]
    fn batches_match_serde_json(v in proptest::collection::vec(occurrence(), 0..4)) {
        let mut mine = Vec::new();
        write_occurrences(&mut mine, &v);
        prop_assert_eq!(mine, serde_json::to_vec(&v).unwrap());
    }

    #[test]
    fn strings_escape_as_serde_json_does(s in any::<String>()) {
        let mut mine = Vec::new();
        write_str(&mut mine, &s);
        prop_assert_eq!(mine, serde_json::to_vec(&s).unwrap());
    }
}

#[test]
fn every_control_byte_escapes_as_serde_json_does() {
    for b in 0u8..=0x7f {
        let s = String::from(char::from(b));
        let mut mine = Vec::new();
        write_str(&mut mine, &s);
        assert_eq!(mine, serde_json::to_vec(&s).unwrap(), "byte {b:#04x}");
    }
}

#[test]
fn integer_extremes_match() {
    for v in [0, 1, 9, 10, 99, 100, u64::MAX, u64::MAX / 10] {
        let mut mine = Vec::new();
        write_u64(&mut mine, v);
        assert_eq!(mine, serde_json::to_vec(&v).unwrap());
    }
    for v in [0, -1, i64::MIN, i64::MAX, -10] {
        let mut mine = Vec::new();
        write_i64(&mut mine, v);
        assert_eq!(mine, serde_json::to_vec(&v).unwrap());
    }
}

#[test]
fn shared_facts_read_and_write_as_if_set_one_by_one() {
    let shared = Arc::new(SharedFacts::new([
        ("cgroup_path", Fact::Str("/kubepods/pod1/c".into())),
        ("pod_uid", Fact::Str("1".into())),
    ]));
    let mut a = Facts::default();
    a.u64("pid", 7).attach(&shared);
    let mut b = Facts::default();
    b.u64("pid", 7)
        .str("cgroup_path", "/kubepods/pod1/c")
        .str("pod_uid", "1");
    assert_eq!(a, b);
    assert_eq!(a.get("pod_uid"), Some(&Fact::Str("1".into())));
    let (mut ja, mut jb) = (Vec::new(), Vec::new());
    write_facts(&mut ja, &a);
    write_facts(&mut jb, &b);
    assert_eq!(ja, jb);
    assert_eq!(serde_json::to_vec(&a).unwrap(), jb);
    // A write after attaching keeps the one-list order.
    a.u64("count", 2);
    b.u64("count", 2);
    assert_eq!(a, b);
    assert_eq!(
        a.iter().map(|(k, _)| k).collect::<Vec<_>>(),
        ["pid", "cgroup_path", "pod_uid", "count"]
    );
    // A clash sets one by one: the later value wins, in place.
    let mut c = Facts::default();
    c.str("pod_uid", "old").attach(&shared);
    assert_eq!(c.get("pod_uid"), Some(&Fact::Str("1".into())));
    assert_eq!(c.len(), 2);
    // Only shared facts: no leading comma.
    let mut d = Facts::default();
    d.attach(&shared);
    let mut jd = Vec::new();
    write_facts(&mut jd, &d);
    assert_eq!(jd, serde_json::to_vec(&d).unwrap());
}

/// One write to a `Facts`, for the model test below.
#[derive(Debug, Clone)]
enum Write {
    Set(usize, u64),
    Append(Vec<(usize, u64)>),
    Attach(Vec<(usize, u64)>),
}

/// Keys that share a filter bit ("pid"/"pad", "comm"/"cram": same length,
/// first and last byte) next to keys that do not.
const MODEL_KEYS: [&str; 6] = ["pid", "pad", "comm", "cram", "cgroup_path", "x"];

fn write() -> impl Strategy<Value = Write> {
    let kv = (0..MODEL_KEYS.len(), any::<u64>());
    prop_oneof![
        kv.clone().prop_map(|(k, v)| Write::Set(k, v)),
        proptest::collection::vec(kv.clone(), 0..5).prop_map(Write::Append),
        proptest::collection::vec(kv, 0..5).prop_map(Write::Attach),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// Every write behaves as `set` of each fact in order on a plain list
    /// (a key set again is replaced in place): keys stay unique whatever the
    /// key filter says.
    #[test]
    fn writes_keep_one_ordered_list_of_unique_keys(writes in proptest::collection::vec(write(), 0..12)) {
        let mut facts = Facts::default();
        let mut model: Vec<(&str, u64)> = Vec::new();
        let set = |m: &mut Vec<(&'static str, u64)>, k: &'static str, v: u64| {
            match m.iter_mut().find(|(o, _)| *o == k) {
                Some(slot) => slot.1 = v,
                None => m.push((k, v)),
            }
        };
        for w in writes {
            match w {
                Write::Set(k, v) => {
                    facts.u64(MODEL_KEYS[k], v);
                    set(&mut model, MODEL_KEYS[k], v);
                }
                Write::Append(list) | Write::Attach(list) if list.is_empty() => {}
                Write::Append(list) => {
                    let mut other = Facts::default();
                    for (k, v) in &list {
                        other.u64(MODEL_KEYS[*k], *v);
                        set(&mut model, MODEL_KEYS[*k], *v);
                    }
                    facts.append(other);
                }
                Write::Attach(list) => {
                    let shared = SharedFacts::new(list.iter().map(|(k, v)| (MODEL_KEYS[*k], Fact::U64(*v))));
                    for (k, v) in shared.iter() {
                        let Fact::U64(v) = v else { unreachable!() };
                        set(&mut model, k, *v);
                    }
                    facts.attach(&Arc::new(shared));
                }
            }
            let got: Vec<(&str, u64)> = facts
                .iter()
                .map(|(k, v)| (k, match v { Fact::U64(v) => *v, _ => u64::MAX }))
                .collect();
            prop_assert_eq!(&got, &model);
            prop_assert_eq!(facts.len(), model.len());
            for (k, v) in &model {
                prop_assert_eq!(facts.get(k), Some(&Fact::U64(*v)));
            }
        }
    }
}

#[test]
fn a_joined_template_is_its_parts_in_order_in_both_writers() {
    assert_eq!(
        TEMPLATES[3],
        &[
            Piece::Lit("to "),
            Piece::Fact("dst_addr"),
            Piece::Lit(" \"x\" "),
            Piece::Fact("pid"),
            Piece::Fact("missing"),
        ]
    );
    let mut o = Occurrence::new(
        Anomaly::ConnectionRefused,
        Severity::Info,
        Outcome::Failure,
        1,
        1,
    );
    o.data.str("dst_addr", "10.0.0.1").u64("pid", 7);
    o.template = Some(TEMPLATES[3]);
    assert_eq!(o.message_text(), "to 10.0.0.1 \"x\" 7?");
    let mut mine = Vec::new();
    o.write_json(&mut mine);
    let text = String::from_utf8(mine).unwrap();
    assert!(
        text.contains(r#""message":"to 10.0.0.1 \"x\" 7?""#),
        "{text}"
    );
}
