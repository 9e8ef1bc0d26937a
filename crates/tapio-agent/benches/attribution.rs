//! Cost of attribution on the drain path (issue 14): the same records
//! through parse -> classify -> fold -> serialize, without and with the
//! drain task's attribution ([`Front::annotate`]) on every emitted
//! occurrence, the cgroup cached (a hit, the steady state), the front
//! flushed every [`BATCH`] records as the drain loop flushes per batch. `cargo bench -p tapio-agent --bench
//! attribution` prints ns of this thread's CPU per record, the median of 5
//! interleaved rounds per case. Cases:
//! - `distinct` / `distinct+attr`: folding off, every record is an
//!   occurrence (the worst case: one lookup and five string facts each);
//! - `drain` / `drain+attr`: the same without serialization, which the
//!   sinks do on their own tasks: the drain loop's share alone;
//! - `storm` / `storm+attr`: one key, 10 s fold window: repeats are counted
//!   before classification and never reach the lookup;
//! - `annotate-only`: the lookup and the facts alone, on a fresh copy of
//!   one occurrence (the copy's own cost subtracted);
//! - `shared-only`: the same through the shared cache alone
//!   ([`Attribution::annotate`]: read lock, hash, atomics), for comparison.
//!
//! `TAPIO_BENCH_RECORDS` (default 500,000) sets records per round.

use std::hint::black_box;
use std::os::unix::fs::MetadataExt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tapio_agent::attribution::front::Front;
use tapio_agent::attribution::mounts::{Mount, Mounts};
use tapio_agent::attribution::Attribution;
use tapio_agent::clock::Clock;
use tapio_agent::counters::Counters;
use tapio_agent::fold::Folder;
use tapio_agent::observers::network::NetworkClassifier;
use tapio_agent::observers::Classifier;
use tapio_common::ebpf::network::{NetworkRecord, REC_CONNECT_FAILED, REC_F_OWNER_KNOWN};
use tapio_common::ebpf::{as_bytes, RecordHeader, TAPIO_ABI_VERSION};
use tapio_common::{Anomaly, Occurrence, Outcome, Severity};

fn thread_cpu_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: ts is a valid, writable timespec.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    u64::try_from(ts.tv_sec).unwrap_or(0) * 1_000_000_000 + u64::try_from(ts.tv_nsec).unwrap_or(0)
}

fn records(dsts: u16, cgroup_id: u64) -> Vec<Vec<u8>> {
    (0..4096u16)
        .map(|i| {
            let d = i % dsts;
            let mut r = NetworkRecord {
                hdr: RecordHeader {
                    kind: REC_CONNECT_FAILED,
                    size: u16::try_from(std::mem::size_of::<NetworkRecord>()).unwrap(),
                    abi_version: TAPIO_ABI_VERSION,
                    ts_boot_ns: 1_000_000 + u64::from(i) * 1000,
                    generation: 1,
                },
                tgid: 4242,
                pid: 4243,
                family: 2,
                sport: 32768 + i,
                dport: 8000 + d,
                state: 2,
                flags: REC_F_OWNER_KNOWN,
                sk_err: 111,
                duration_ns: 35_000,
                cgroup_id,
                ..NetworkRecord::default()
            };
            r.comm[..6].copy_from_slice(b"client");
            r.daddr[..4].copy_from_slice(&[10, 0, (d >> 8) as u8, (d & 0xff) as u8]);
            as_bytes(&r).to_vec()
        })
        .collect()
}

/// Records between two flushes of the front (a drain batch; the agent's
/// batches are up to 8,192 records, so this is the costlier side).
const BATCH: u64 = 256;

/// CPU ns per record of one round through the drain pipeline.
fn round(
    recs: &[Vec<u8>],
    window_ms: u32,
    attr: Option<&Arc<Attribution>>,
    serialize: bool,
    n: u64,
) -> f64 {
    let mut front = attr.map(|a| Front::new(Arc::clone(a)));
    let mut c = NetworkClassifier::default();
    let counters = Arc::new(Counters::default());
    c.set_counters(Arc::clone(&counters));
    let mut folder = Folder::new(window_ms, Folder::DEFAULT_MAX_KEYS);
    let clock = Clock::fixed(1_700_000_000_000_000_000);
    let (mut cands, mut out, mut json) = (Vec::new(), Vec::new(), Vec::with_capacity(1024));
    let t0 = thread_cpu_ns();
    for i in 0..n {
        let b = &recs[(i as usize) % recs.len()];
        let raw = c.raw_fold_key(b);
        if let Some((k, boot, spread)) = &raw {
            if folder.absorb(k, clock.unix_ns(*boot), *spread) {
                continue;
            }
        }
        let _ = c.record(b, &clock, &mut cands);
        let key = raw.filter(|_| cands.len() == 1).map(|(k, _, _)| k);
        for cand in cands.drain(..) {
            folder.push_keyed(cand, key, &mut out);
        }
        for mut o in out.drain(..) {
            if let Some(f) = &mut front {
                f.annotate(&mut o);
            }
            if serialize {
                json.clear();
                o.write_json(&mut json);
                black_box(&json);
            } else {
                black_box(&o);
            }
        }
        if i % BATCH == BATCH - 1 {
            if let Some(f) = &mut front {
                f.flush();
            }
        }
    }
    drop(front);
    (thread_cpu_ns() - t0) as f64 / n as f64
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let n: u64 = std::env::var("TAPIO_BENCH_RECORDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(500_000);
    // A kubelet-shaped tree standing in for the cgroup hierarchy.
    let top = std::env::temp_dir().join(format!("tapio-bench-attr-{}", std::process::id()));
    let leaf = top.join(format!(
        "kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod0c8a2d4e_57b1_4f3e_9a6d_1b2c3d4e5f60.slice/cri-containerd-{}.scope",
        "ab".repeat(32)
    ));
    std::fs::create_dir_all(&leaf).unwrap();
    let id = std::fs::metadata(&leaf).unwrap().ino();
    let mounts = Mounts {
        v2: Some(Mount {
            dir: top.clone(),
            root: "/".into(),
            nested: vec![],
        }),
        memory_v1: None,
    };
    let counters = Arc::new(Counters::default());
    let attr = Attribution::start_with(mounts, Arc::clone(&counters), 4096).unwrap();
    let mut probe = Occurrence::new(
        Anomaly::ConnectionRefused,
        Severity::Warning,
        Outcome::Failure,
        1,
        1,
    );
    probe.data.u64("cgroup_id", id);
    let bare = probe.clone();
    let end = Instant::now() + Duration::from_secs(5);
    while probe.data.get("pod_uid").is_none() && Instant::now() < end {
        attr.annotate(&mut probe);
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(probe.data.get("pod_uid").is_some(), "cache never filled");

    let distinct = records(4096, id);
    let storm = records(1, id);
    let mut rows: Vec<(&str, Vec<f64>)> = [
        "distinct",
        "distinct+attr",
        "drain",
        "drain+attr",
        "storm",
        "storm+attr",
        "annotate-only",
        "shared-only",
    ]
    .iter()
    .map(|c| (*c, Vec::new()))
    .collect();
    for _ in 0..5 {
        rows[0].1.push(round(&distinct, 0, None, true, n));
        rows[1].1.push(round(&distinct, 0, Some(&attr), true, n));
        rows[2].1.push(round(&distinct, 0, None, false, n));
        rows[3].1.push(round(&distinct, 0, Some(&attr), false, n));
        rows[4].1.push(round(&storm, 10_000, None, true, n));
        rows[5].1.push(round(&storm, 10_000, Some(&attr), true, n));
        // On a fresh, unattributed occurrence each time (as the drain
        // path does), less the cost of making that copy.
        let t0 = thread_cpu_ns();
        for _ in 0..n {
            black_box(bare.clone());
        }
        let copy = thread_cpu_ns() - t0;
        let mut front = Front::new(Arc::clone(&attr));
        let t0 = thread_cpu_ns();
        for i in 0..n {
            let mut o = bare.clone();
            front.annotate(&mut o);
            black_box(&o);
            if i % BATCH == BATCH - 1 {
                front.flush();
            }
        }
        drop(front);
        let with = thread_cpu_ns() - t0;
        rows[6].1.push(with.saturating_sub(copy) as f64 / n as f64);
        let t0 = thread_cpu_ns();
        for _ in 0..n {
            let mut o = bare.clone();
            attr.annotate(&mut o);
            black_box(&o);
        }
        let with = thread_cpu_ns() - t0;
        rows[7].1.push(with.saturating_sub(copy) as f64 / n as f64);
    }
    println!(
        "{:<16} {:>12}  rounds (ns/record, CPU)",
        "case", "median ns"
    );
    for (name, v) in rows {
        let all: Vec<String> = v.iter().map(|x| format!("{x:.0}")).collect();
        println!("{name:<16} {:>12.1}  {}", median(v.clone()), all.join(" "));
    }
    let snap = counters.snapshot();
    println!(
        "lookups: hit={} miss={}",
        snap[r#"tapio_cgroup_lookups_total{result="hit"}"#],
        snap[r#"tapio_cgroup_lookups_total{result="miss"}"#]
    );
    let _ = std::fs::remove_dir_all(&top);
}
