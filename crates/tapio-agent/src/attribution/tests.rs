use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use tapio_common::{Anomaly, Outcome, Severity};

use super::mounts::Mount;
use super::*;

const UID: &str = "0c8a2d4e-57b1-4f3e-9a6d-1b2c3d4e5f60";

fn cid(n: u8) -> String {
    format!("{n:02x}").repeat(32)
}

fn occ(anomaly: Anomaly, facts: &[(&'static str, Fact)]) -> Occurrence {
    let mut o = Occurrence::new(anomaly, Severity::Warning, Outcome::Failure, 1, 1);
    for (k, v) in facts {
        o.data.set(k, v.clone());
    }
    o
}

fn refused(id: u64) -> Occurrence {
    occ(Anomaly::ConnectionRefused, &[("cgroup_id", Fact::U64(id))])
}

fn str_fact<'a>(o: &'a Occurrence, k: &str) -> Option<&'a str> {
    match o.data.get(k) {
        Some(Fact::Str(s)) => Some(s),
        _ => None,
    }
}

struct Tree(PathBuf);

impl Tree {
    fn new(tag: &str) -> Tree {
        let d = std::env::temp_dir().join(format!("tapio-attr-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        Tree(d)
    }

    fn mkdir(&self, rel: &str) -> u64 {
        let p = self.0.join(rel);
        std::fs::create_dir_all(&p).unwrap();
        std::fs::metadata(&p).unwrap().ino()
    }

    fn mounts(&self) -> Mounts {
        Mounts {
            v2: Some(Mount {
                dir: self.0.clone(),
                root: "/".into(),
                nested: vec![],
            }),
            memory_v1: None,
        }
    }
}

impl Drop for Tree {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Annotates `make()` until it carries a path (the resolver's answer).
fn until_hit(a: &Attribution, make: impl Fn() -> Occurrence) -> Occurrence {
    let end = Instant::now() + Duration::from_secs(5);
    loop {
        let mut o = make();
        a.annotate(&mut o);
        if o.data.get("cgroup_path").is_some() || Instant::now() > end {
            return o;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn snap(c: &Counters, name: &str) -> u64 {
    c.snapshot()[name]
}

#[test]
fn owner_key_follows_the_hierarchy_the_facts_name() {
    let k = owner_key(&refused(7)).unwrap();
    assert_eq!((k.hierarchy, k.id), (Hierarchy::V2, 7));
    let v1 = occ(
        Anomaly::OomKill,
        &[
            ("cgroup_id", Fact::U64(5)),
            ("memcg_hierarchy", Fact::Str("v1".into())),
            ("cgroup2_id", Fact::U64(9)),
        ],
    );
    let k = owner_key(&v1).unwrap();
    assert_eq!((k.hierarchy, k.id), (Hierarchy::MemoryV1, 5));
    let v2 = occ(
        Anomaly::AbnormalExit,
        &[
            ("cgroup_id", Fact::U64(5)),
            ("memcg_hierarchy", Fact::Str("v2".into())),
            ("cgroup2_id", Fact::U64(9)),
        ],
    );
    let k = owner_key(&v2).unwrap();
    assert_eq!((k.hierarchy, k.id), (Hierarchy::V2, 9));
    // A container follow-up: cgroup_id of an unknown hierarchy.
    assert!(owner_key(&occ(Anomaly::AbnormalExit, &[("cgroup_id", Fact::U64(5))])).is_none());
    // An unknown network owner carries no cgroup.
    assert!(owner_key(&occ(Anomaly::ConnectionRefused, &[])).is_none());
    assert!(owner_key(&occ(Anomaly::IoError, &[("cgroup_id", Fact::U64(5))])).is_none());
}

#[test]
fn prefilled_cgroups_hit_from_the_first_occurrence() {
    let t = Tree::new("prefill");
    let path = format!("kubepods/burstable/pod{UID}/{}", cid(1));
    let id = t.mkdir(&path);
    let counters = Arc::new(Counters::default());
    let a = Attribution::start_with(t.mounts(), Arc::clone(&counters), 64).unwrap();
    let o = until_hit(&a, || refused(id));
    assert_eq!(
        str_fact(&o, "cgroup_path"),
        Some(format!("/{path}").as_str())
    );
    assert_eq!(str_fact(&o, "pod_uid"), Some(UID));
    assert_eq!(str_fact(&o, "container_id"), Some(cid(1).as_str()));
    assert_eq!(str_fact(&o, "qos_class"), Some("Burstable"));
    assert_eq!(str_fact(&o, "container_runtime"), None, "cgroupfs bare id");
    assert!(snap(&counters, "tapio_cgroup_lookups_total{result=\"hit\"}") >= 1);
}

#[test]
fn a_new_cgroup_misses_once_then_hits_and_a_deleted_one_is_counted() {
    let t = Tree::new("miss");
    let first = t.mkdir("a");
    let counters = Arc::new(Counters::default());
    let a = Attribution::start_with(t.mounts(), Arc::clone(&counters), 64).unwrap();
    until_hit(&a, || refused(first));
    let miss = r#"tapio_cgroup_lookups_total{result="miss"}"#;
    let misses = snap(&counters, miss);

    let id = t.mkdir(&format!(
        "kubepods.slice/kubepods-pod{}.slice/crio-{}.scope",
        UID.replace('-', "_"),
        cid(2)
    ));
    let mut o = refused(id);
    a.annotate(&mut o);
    assert!(
        o.data.get("cgroup_path").is_none(),
        "a miss carries the id only"
    );
    assert_eq!(snap(&counters, miss), misses + 1);
    let o = until_hit(&a, || refused(id));
    assert_eq!(str_fact(&o, "container_runtime"), Some("cri-o"));
    assert_eq!(str_fact(&o, "qos_class"), Some("Guaranteed"));

    let gone = t.mkdir("short-lived");
    std::fs::remove_dir(t.0.join("short-lived")).unwrap();
    let mut o = refused(gone);
    a.annotate(&mut o);
    let deleted = r#"tapio_cgroup_resolutions_total{result="deleted"}"#;
    let end = Instant::now() + Duration::from_secs(5);
    while snap(&counters, deleted) == 0 && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(snap(&counters, deleted), 1);
    // Known gone: later occurrences miss without another resolution.
    let mut o = refused(gone);
    a.annotate(&mut o);
    assert!(o.data.get("cgroup_path").is_none());
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(snap(&counters, deleted), 1);
}

#[test]
fn an_unmounted_hierarchy_is_counted_not_walked() {
    let counters = Arc::new(Counters::default());
    let a = Attribution::start_with(Mounts::default(), Arc::clone(&counters), 8).unwrap();
    let mut o = occ(
        Anomaly::OomKill,
        &[
            ("cgroup_id", Fact::U64(5)),
            ("memcg_hierarchy", Fact::Str("v1".into())),
        ],
    );
    a.annotate(&mut o);
    let name = r#"tapio_cgroup_resolutions_total{result="no_hierarchy"}"#;
    let end = Instant::now() + Duration::from_secs(5);
    while snap(&counters, name) == 0 && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(snap(&counters, name), 1);
}

#[test]
fn a_drain_front_serves_repeats_counts_them_per_flush_and_keeps_them_in_use() {
    let t = Tree::new("front");
    let path = format!("kubepods/besteffort/pod{UID}/{}", cid(3));
    let id = t.mkdir(&path);
    let counters = Arc::new(Counters::default());
    let a = Attribution::start_with(t.mounts(), Arc::clone(&counters), 2).unwrap();
    let shared = until_hit(&a, || refused(id));
    let hit = r#"tapio_cgroup_lookups_total{result="hit"}"#;
    let miss = r#"tapio_cgroup_lookups_total{result="miss"}"#;
    let (hits, misses) = (snap(&counters, hit), snap(&counters, miss));

    let mut front = front::Front::new(Arc::clone(&a));
    for _ in 0..5 {
        let mut o = refused(id);
        front.annotate(&mut o);
        assert_eq!(o.data, shared.data, "the same facts as the shared path");
    }
    assert_eq!(front.len(), 1);
    assert_eq!(
        snap(&counters, hit),
        hits,
        "counted at the flush, not before"
    );
    front.flush();
    assert_eq!(snap(&counters, hit), hits + 5);
    assert_eq!(snap(&counters, miss), misses);

    // An owner the shared cache no longer holds (evicted) is still served
    // by the front: a resolved id stays true.
    a.cache.forget(&Key {
        hierarchy: Hierarchy::V2,
        id,
    });
    let misses = snap(&counters, miss);
    let mut o = refused(id);
    front.annotate(&mut o);
    assert_eq!(str_fact(&o, "pod_uid"), Some(UID));
    assert_eq!(snap(&counters, miss), misses);
    drop(front);
    assert_eq!(snap(&counters, hit), hits + 6, "a dropped front flushes");
}

#[test]
fn the_shared_cache_keeps_entries_a_front_touched_and_evicts_the_rest() {
    let c = cache::Cache::new(3);
    let k = |id| Key {
        hierarchy: Hierarchy::V2,
        id,
    };
    let present = |id| c.contains(&k(id));
    for id in 1..=3 {
        c.set(
            k(id),
            cache::Entry::Known(Arc::new(Owner::new(format!("/{id}")))),
        );
    }
    // All three were just set (used): this pass clears their bits and
    // evicts one arbitrary entry to make room for 4.
    c.set(k(4), cache::Entry::Gone);
    let left: Vec<u64> = (1..=3).filter(|id| present(*id)).collect();
    assert_eq!(left.len(), 2);
    let (touched, untouched) = (left[0], left[1]);
    c.touch([k(touched)]);
    c.set(k(5), cache::Entry::Gone);
    assert!(present(touched), "a touched entry survives the pass");
    assert!(!present(untouched), "an unused entry is evicted");
    assert!(present(4) && present(5));
}
