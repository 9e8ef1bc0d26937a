//! The folder: windows open, repeat, close and follow up as the clock and
//! the candidates say.

use super::*;

fn cand(port: u64, t_ms: u64) -> Candidate {
    let mut key = Facts::default();
    key.u64("dst_port", port);
    let mut detail = Facts::default();
    detail.u64("src_port", 40000 + t_ms);
    Candidate {
        anomaly: Anomaly::ConnectionRefused,
        severity: Severity::Warning,
        outcome: Outcome::Failure,
        unix_ns: t_ms * 1_000_000,
        generation: 1,
        key,
        detail,
        summary: format!("refused :{port}"),
        template: None,
        fold: true,
    }
}

fn count(o: &Occurrence) -> u64 {
    match o.data.get("count") {
        Some(Fact::U64(n)) => *n,
        other => panic!("count missing: {other:?}"),
    }
}

#[test]
fn a_templated_window_states_its_first_message_in_the_follow_up() {
    use tapio_common::Piece::{Fact as F, Lit as L};
    let mut f = Folder::new(1000, 16);
    let mut out = Vec::new();
    for t in 0..3 {
        let mut c = cand(9, t);
        c.summary = String::new();
        c.template = Some(&[L("refused :"), F("dst_port"), L(" from "), F("src_port")]);
        f.push(c, &mut out);
    }
    f.flush_expired(1000 * 1_000_000, &mut out);
    let text: Vec<String> = out.iter().map(|o| o.message_text().into_owned()).collect();
    assert_eq!(
        text,
        [
            "refused :9 from 40000",
            "refused :9 from 40000; 2 more folded in 1000 ms"
        ]
    );
}

#[test]
fn first_fact_leaves_at_once_repeats_leave_as_one_follow_up() {
    let mut f = Folder::new(1000, 16);
    let mut out = Vec::new();
    for t in 0..100 {
        f.push(cand(9, t), &mut out);
    }
    assert_eq!(out.len(), 1);
    assert_eq!(count(&out[0]), 1);
    assert_eq!(out[0].data.get("src_port"), Some(&Fact::U64(40000)));
    f.flush_expired(999 * 1_000_000, &mut out);
    assert_eq!(out.len(), 1, "window still open");
    f.flush_expired(1000 * 1_000_000, &mut out);
    assert_eq!(out.len(), 2);
    assert_eq!(count(&out[1]), 99);
    assert_eq!(out[1].data.get("window_start_ns"), Some(&Fact::U64(0)));
    assert_eq!(
        out[1].data.get("window_end_ns"),
        Some(&Fact::U64(1_000_000_000))
    );
    assert_eq!(
        out[1].data.get("src_port"),
        None,
        "details of repeats are not claimed"
    );
    assert_eq!(out.iter().map(count).sum::<u64>(), 100);
}

#[test]
fn different_keys_fold_apart() {
    let mut f = Folder::new(1000, 16);
    let mut out = Vec::new();
    f.push(cand(9, 0), &mut out);
    f.push(cand(10, 1), &mut out);
    f.push(cand(9, 2), &mut out);
    f.flush_all(&mut out);
    assert_eq!(out.len(), 3);
    assert_eq!(out.iter().map(count).sum::<u64>(), 3);
}

#[test]
fn a_fact_after_the_window_opens_a_new_one() {
    let mut f = Folder::new(10, 16);
    let mut out = Vec::new();
    f.push(cand(9, 0), &mut out);
    f.push(cand(9, 5), &mut out);
    f.push(cand(9, 20), &mut out);
    f.flush_all(&mut out);
    let counts: Vec<u64> = out.iter().map(count).collect();
    assert_eq!(counts, vec![1, 1, 1]);
}

#[test]
fn full_table_emits_alone_and_loses_nothing() {
    let mut f = Folder::new(1000, 2);
    let mut out = Vec::new();
    for p in 0..5 {
        f.push(cand(p, 0), &mut out);
        f.push(cand(p, 1), &mut out);
    }
    f.flush_all(&mut out);
    assert_eq!(out.iter().map(count).sum::<u64>(), 10);
}

fn raw(port: u8) -> RawKey {
    let mut bytes = [0u8; 64];
    bytes[0] = port;
    RawKey {
        anomaly: Anomaly::ConnectionRefused,
        generation: 1,
        bytes,
    }
}

#[test]
fn raw_keys_absorb_repeats_and_accounting_stays_exact() {
    let mut f = Folder::new(1000, 16);
    let mut out = Vec::new();
    assert!(!f.absorb(&raw(9), 0, None), "no window yet");
    f.push_keyed(cand(9, 0), Some(raw(9)), &mut out);
    for t in 1..50 {
        assert!(f.absorb(&raw(9), t * 1_000_000, None));
    }
    assert!(!f.absorb(&raw(10), 1_000_000, None), "other key");
    assert!(!f.absorb(&raw(9), 1_000 * 1_000_000, None), "window over");
    // The record absorb refused goes the full way and closes the window.
    f.push_keyed(cand(9, 1000), Some(raw(9)), &mut out);
    f.flush_all(&mut out);
    assert_eq!(out.iter().map(count).sum::<u64>(), 51);
    let counts: Vec<u64> = out.iter().map(count).collect();
    assert_eq!(
        counts,
        vec![1, 49, 1],
        "first, follow-up of 49, first of the new window"
    );
    assert!(
        !f.absorb(&raw(9), 1_001 * 1_000_000, None),
        "flushed windows forget raw keys"
    );
}

#[test]
fn text_facts_hash_as_their_text() {
    // Equal facts must hash alike, whatever their variant.
    let hash = |v: &Fact| {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        hash_fact(v, &mut h);
        h.finish()
    };
    let v6: std::net::IpAddr = "fd00::2".parse().unwrap();
    assert_eq!(hash(&Fact::Addr(v6)), hash(&Fact::Str("fd00::2".into())));
    let v4 = std::net::IpAddr::from([10, 0, 0, 9]);
    assert_eq!(hash(&Fact::Addr(v4)), hash(&Fact::Str("10.0.0.9".into())));
    let mut comm = [0u8; 16];
    comm[..4].copy_from_slice(b"curl");
    let comm = Fact::Comm(tapio_common::Comm(comm));
    assert_eq!(comm, Fact::Str("curl".into()));
    assert_eq!(hash(&comm), hash(&Fact::Str("curl".into())));
    // Stale bytes after the NUL (6.1 does not zero them) change nothing.
    let mut stale = [0xaau8; 16];
    stale[..5].copy_from_slice(b"curl\0");
    let stale = Fact::Comm(tapio_common::Comm(stale));
    assert_eq!(stale, comm);
    assert_eq!(hash(&stale), hash(&comm));
}

#[test]
fn zero_window_disables_folding() {
    let mut f = Folder::new(0, 16);
    let mut out = Vec::new();
    for t in 0..3 {
        f.push(cand(9, t), &mut out);
    }
    assert_eq!(out.len(), 3);
}

#[test]
fn generation_change_starts_a_new_window() {
    let mut f = Folder::new(1000, 16);
    let mut out = Vec::new();
    f.push(cand(9, 0), &mut out);
    let mut c = cand(9, 1);
    c.generation = 2;
    f.push(c, &mut out);
    assert_eq!(out.len(), 2);
}

#[test]
fn follow_ups_summarise_the_varying_fact_on_both_paths() {
    let mut f = Folder::new(1000, 16);
    let mut out = Vec::new();
    let mut c = cand(9, 0);
    c.detail.u64("src_port", 50_000);
    f.push_keyed(c, Some(raw(9)), &mut out);
    // Classified repeats and raw-absorbed repeats both count.
    let mut c = cand(9, 1);
    c.detail.u64("src_port", 50_010);
    f.push_keyed(c, Some(raw(9)), &mut out);
    assert!(f.absorb(&raw(9), 2_000_000, Some(50_002)));
    assert!(f.absorb(&raw(9), 3_000_000, Some(50_010)));
    f.flush_all(&mut out);
    let up = &out[1];
    assert_eq!(count(up), 3);
    assert_eq!(up.data.get("src_port"), None);
    assert_eq!(up.data.get("src_port_first"), Some(&Fact::U64(50_010)));
    assert_eq!(up.data.get("src_port_last"), Some(&Fact::U64(50_010)));
    assert_eq!(up.data.get("src_port_min"), Some(&Fact::U64(50_002)));
    assert_eq!(up.data.get("src_port_max"), Some(&Fact::U64(50_010)));
    assert_eq!(up.data.get("src_port_distinct"), Some(&Fact::U64(2)));
}
