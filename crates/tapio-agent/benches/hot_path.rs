//! Userspace hot path benchmark: ring record bytes -> parse -> classify ->
//! fold -> count -> serialize (`Occurrence::write_json`, as the sinks do),
//! per record, on one core.
//!
//! A plain `harness = false` bench: `cargo bench -p tapio-agent --bench
//! hot_path` prints one line per case with records/s over wall time and
//! over this thread's CPU time (the per-core figure that a busy machine
//! distorts least). Cases:
//! - `network/distinct`: folding off, every record becomes an occurrence
//!   and is serialized — the full path, the worst case per record;
//! - `network/storm`: one destination, 10 s fold window — repeats are
//!   counted by the folder and never serialized (a refused-connect storm);
//! - `network/64-dst`: 64 destinations rotating, folding on;
//! - `storage/distinct`: latency-spike records, folding off;
//! - `parse-only`, `classify-only` (record bytes -> candidate, facts and
//!   summary text built) and `serialize-only`: the stages alone;
//!   `serialize-serde` the same occurrence through serde_json, the
//!   reference the hand-written writer is tested against;
//! - `ring/*` (root, `TAPIO_BENCH_PRODUCER=<ring_producer.o>`): the same
//!   pipeline fed from a real BPF ring buffer through aya's `RingBuf`,
//!   filled by `bench/ring_producer.bpf.c` via `BPF_PROG_TEST_RUN`;
//!   only the drain side is timed.
//!
//! `TAPIO_BENCH_RECORDS` (default 2,000,000) sets records per case.

use std::hint::black_box;
use std::sync::Arc;
use std::time::Instant;

use tapio_agent::clock::Clock;
use tapio_agent::counters::Counters;
use tapio_agent::fold::{Candidate, Folder};
use tapio_agent::observers::network::NetworkClassifier;
use tapio_agent::observers::{self, Classifier};
use tapio_common::ebpf::network::{NetworkRecord, REC_CONNECT_FAILED, REC_F_OWNER_KNOWN};
use tapio_common::ebpf::storage::{StorageRecord, REC_LATENCY};
use tapio_common::ebpf::{as_bytes, read_record, RecordHeader, TAPIO_ABI_VERSION};
use tapio_common::{Fact, Observer, Occurrence};

const ECONNREFUSED: i32 = 111;

fn thread_cpu_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: ts is a valid, writable timespec.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    u64::try_from(ts.tv_sec).unwrap_or(0) * 1_000_000_000 + u64::try_from(ts.tv_nsec).unwrap_or(0)
}

fn header(kind: u16, size: usize, ts: u64) -> RecordHeader {
    RecordHeader {
        kind,
        size: u16::try_from(size).expect("record size fits u16"),
        abi_version: TAPIO_ABI_VERSION,
        ts_boot_ns: ts,
        generation: 1,
    }
}

fn refused(dst_last_octet: u8, dport: u16, sport: u16, ts: u64) -> NetworkRecord {
    let mut r = NetworkRecord {
        hdr: header(REC_CONNECT_FAILED, std::mem::size_of::<NetworkRecord>(), ts),
        tgid: 4242,
        pid: 4243,
        family: 2,
        sport,
        dport,
        state: 2,
        flags: REC_F_OWNER_KNOWN,
        sk_err: ECONNREFUSED,
        duration_ns: 35_000,
        cgroup_id: 7,
        ..NetworkRecord::default()
    };
    r.comm[..6].copy_from_slice(b"client");
    r.saddr[..4].copy_from_slice(&[10, 0, 0, 1]);
    r.daddr[..4].copy_from_slice(&[10, 0, 1, dst_last_octet]);
    r
}

fn latency(sector: u64, ts: u64) -> StorageRecord {
    StorageRecord {
        hdr: header(REC_LATENCY, std::mem::size_of::<StorageRecord>(), ts),
        sector,
        latency_ns: 150_000_000,
        dev: (7 << 20) | 3,
        bytes: 4096,
        op: 0,
        ..StorageRecord::default()
    }
}

/// The drain loop's per-record work (`drain::ObserverTask::drain` and
/// `emit`, minus the sink queues): count, classify, fold, count the
/// occurrence, serialize it as the stdout/file sinks do.
struct Pipeline {
    classifier: Box<dyn Classifier>,
    folder: Folder,
    counters: Arc<Counters>,
    clock: Clock,
    candidates: Vec<Candidate>,
    out: Vec<Occurrence>,
    json: Vec<u8>,
    serialized: u64,
    observer: Observer,
}

impl Pipeline {
    fn new(classifier: Box<dyn Classifier>, fold_window_ms: u32) -> Self {
        let mut classifier = classifier;
        let counters = Arc::new(Counters::default());
        classifier.set_counters(Arc::clone(&counters));
        Pipeline {
            observer: classifier.observer(),
            classifier,
            folder: Folder::new(fold_window_ms, Folder::DEFAULT_MAX_KEYS),
            counters,
            clock: Clock::fixed(1_700_000_000_000_000_000),
            candidates: Vec::with_capacity(256),
            out: Vec::with_capacity(256),
            json: Vec::with_capacity(1024),
            serialized: 0,
        }
    }

    fn record(&mut self, bytes: &[u8]) {
        self.counters.event(self.observer);
        let raw = self.classifier.raw_fold_key(bytes);
        if let Some((k, boot_ns, spread)) = &raw {
            if self.folder.absorb(k, self.clock.unix_ns(*boot_ns), *spread) {
                return;
            }
        }
        if self
            .classifier
            .record(bytes, &self.clock, &mut self.candidates)
            .is_err()
        {
            self.counters.malformed(self.observer);
        }
        let key = raw
            .filter(|_| self.candidates.len() == 1)
            .map(|(k, _, _)| k);
        for c in self.candidates.drain(..) {
            self.folder.push_keyed(c, key, &mut self.out);
        }
        for o in self.out.drain(..) {
            let facts = match o.data.get("count") {
                Some(Fact::U64(n)) => *n,
                _ => 1,
            };
            self.counters.anomaly(o.anomaly, facts);
            self.json.clear();
            o.write_json(&mut self.json);
            self.json.push(b'\n');
            black_box(&self.json);
            self.serialized += 1;
        }
    }
}

struct Result {
    name: String,
    records: u64,
    wall_ns: u64,
    cpu_ns: u64,
    note: String,
}

impl Result {
    fn print(&self) {
        let per_s = |ns: u64| self.records as f64 * 1e9 / ns.max(1) as f64;
        println!(
            "{:<22} {:>10} {:>12.0} {:>12.0} {:>9.1}  {}",
            self.name,
            self.records,
            per_s(self.wall_ns),
            per_s(self.cpu_ns),
            self.cpu_ns as f64 / self.records.max(1) as f64,
            self.note
        );
    }
}

fn time(name: &str, records: u64, mut body: impl FnMut() -> String) -> Result {
    let (w0, c0) = (Instant::now(), thread_cpu_ns());
    let note = body();
    let cpu_ns = thread_cpu_ns() - c0;
    let wall_ns = u64::try_from(w0.elapsed().as_nanos()).unwrap_or(u64::MAX);
    Result {
        name: name.into(),
        records,
        wall_ns,
        cpu_ns,
        note,
    }
}

/// Runs `records` pre-built byte records through a pipeline, cycling.
fn run_pipeline(name: &str, p: &mut Pipeline, recs: &[Vec<u8>], n: u64) -> Result {
    // Warm-up: allocator, device-name cache, fold table.
    for r in recs.iter().take(1000) {
        p.record(r);
    }
    p.serialized = 0;
    time(name, n, || {
        for i in 0..n {
            p.record(&recs[(i as usize) % recs.len()]);
        }
        format!("occurrences serialized: {}", p.serialized)
    })
}

fn network_records(dsts: u8, base_ts: u64) -> Vec<Vec<u8>> {
    (0..4096u16)
        .map(|i| {
            let d = u8::try_from(i % u16::from(dsts)).unwrap_or(0);
            let r = refused(
                d,
                8000 + u16::from(d),
                32768 + i,
                base_ts + u64::from(i) * 1000,
            );
            as_bytes(&r).to_vec()
        })
        .collect()
}

/// `TAPIO_BENCH_PRINT_CONFIG=quiet-network`: prints the production-default
/// compiled config with every network fact off (observer still enabled),
/// for bench/scaling.sh to measure the cost of the kernel filter alone.
fn print_config(which: &str) {
    let mut cfg = tapio_wire::CompiledConfig::production_default();
    match which {
        "quiet-network" => {
            cfg.network.connect_failures = false;
            cfg.network.retransmits = false;
            cfg.network.rtt = false;
        }
        other => panic!("unknown config {other}"),
    }
    println!(
        "{}",
        serde_json::to_string(&cfg).expect("config serializes")
    );
}

fn main() {
    if let Ok(which) = std::env::var("TAPIO_BENCH_PRINT_CONFIG") {
        print_config(&which);
        return;
    }
    let n: u64 = std::env::var("TAPIO_BENCH_RECORDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2_000_000);
    // `cargo bench` passes `--bench`; a filter argument selects cases.
    let filter: Option<String> = std::env::args().skip(1).find(|a| !a.starts_with("--"));
    let want = |name: &str| filter.as_deref().is_none_or(|f| name.contains(f));
    println!(
        "{:<22} {:>10} {:>12} {:>12} {:>9}  note",
        "case", "records", "rec/s wall", "rec/s cpu", "ns/rec"
    );
    let mut results = Vec::new();

    if want("network/distinct") {
        let mut p = Pipeline::new(Box::new(NetworkClassifier::default()), 0);
        let recs = network_records(255, 1_000_000);
        results.push(run_pipeline("network/distinct", &mut p, &recs, n));
    }
    if want("network/storm") {
        let mut p = Pipeline::new(Box::new(NetworkClassifier::default()), 10_000);
        let recs = network_records(1, 1_000_000);
        results.push(run_pipeline("network/storm", &mut p, &recs, n));
    }
    if want("network/64-dst") {
        let mut p = Pipeline::new(Box::new(NetworkClassifier::default()), 10_000);
        let recs = network_records(64, 1_000_000);
        results.push(run_pipeline("network/64-dst", &mut p, &recs, n));
    }
    if want("storage/distinct") {
        if let Some(c) = observers::storage::classifier() {
            let mut p = Pipeline::new(c, 0);
            let recs: Vec<Vec<u8>> = (0..4096u64)
                .map(|i| as_bytes(&latency(i * 8, 1_000_000 + i * 1000)).to_vec())
                .collect();
            results.push(run_pipeline("storage/distinct", &mut p, &recs, n));
        }
    }
    if want("parse-only") {
        let recs = network_records(255, 1_000_000);
        results.push(time("parse-only", n, || {
            let mut sum = 0u64;
            for i in 0..n {
                let b = &recs[(i as usize) % recs.len()];
                if let Some(r) = read_record::<NetworkRecord>(b) {
                    sum = sum.wrapping_add(u64::from(r.dport));
                }
            }
            black_box(sum);
            String::new()
        }));
    }
    if want("classify-only") {
        let mut c = NetworkClassifier::default();
        let clock = Clock::fixed(1_700_000_000_000_000_000);
        let recs = network_records(255, 1_000_000);
        let mut cands = Vec::with_capacity(16);
        results.push(time("classify-only", n, || {
            for i in 0..n {
                let _ = c.record(&recs[(i as usize) % recs.len()], &clock, &mut cands);
                cands.clear();
            }
            String::new()
        }));
    }
    if want("serialize-only") {
        let mut p = Pipeline::new(Box::new(NetworkClassifier::default()), 0);
        let mut occ = Vec::new();
        p.classifier
            .record(&network_records(1, 0)[0], &p.clock, &mut p.candidates)
            .expect("well-formed");
        p.folder.push(p.candidates.remove(0), &mut occ);
        let o = occ.remove(0);
        let mut json = Vec::with_capacity(1024);
        let mut len = 0;
        results.push(time("serialize-only", n, || {
            for _ in 0..n {
                json.clear();
                o.write_json(&mut json);
                len = json.len();
                black_box(&json);
            }
            format!("{len} bytes per occurrence (Occurrence::write_json, the sinks' writer)")
        }));
        results.push(time("serialize-serde", n, || {
            for _ in 0..n {
                json.clear();
                serde_json::to_writer(&mut json, &o).expect("serializes");
                len = json.len();
                black_box(&json);
            }
            format!("{len} bytes per occurrence (serde_json, the writer's reference)")
        }));
    }
    if want("ring/") {
        match ring::bench(n) {
            Ok(mut r) => results.append(&mut r),
            Err(why) => println!("ring/* skipped: {why}"),
        }
    }
    for r in &results {
        r.print();
    }
}

/// The drain side of a real BPF ring buffer, filled by a synthetic
/// producer program run with `BPF_PROG_TEST_RUN`.
mod ring {
    use super::{refused, time, NetworkClassifier, Pipeline, Result};
    use aya::maps::{Array, RingBuf};
    use aya::programs::RawTracePoint;
    use aya::Ebpf;
    use std::os::fd::{AsFd, AsRawFd};
    use tapio_common::ebpf::network::NetworkRecord;

    /// `struct producer_cfg` of `bench/ring_producer.bpf.c`.
    #[repr(C)]
    #[derive(Clone, Copy)]
    struct ProducerCfg {
        tmpl: NetworkRecord,
        count: u32,
        _pad0: u32,
        lost: u64,
    }
    // SAFETY: repr(C), integers only, no implicit padding.
    unsafe impl aya::Pod for ProducerCfg {}

    /// Records per test run: 16 Ki * 120 B stays under the 4 MiB ring.
    const BATCH: u32 = 16 * 1024;
    const BPF_PROG_TEST_RUN: libc::c_long = 10;

    fn test_run(prog_fd: i32) -> std::io::Result<()> {
        // `union bpf_attr`, `test` member: prog_fd first, the rest zero
        // (no data, no ctx, one run).
        let mut attr = [0u64; 16];
        attr[0] = u64::try_from(prog_fd).unwrap_or(0);
        // SAFETY: attr is a zeroed, correctly sized bpf_attr that outlives
        // the call.
        let rc = unsafe {
            libc::syscall(
                libc::SYS_bpf,
                BPF_PROG_TEST_RUN,
                attr.as_mut_ptr(),
                std::mem::size_of_val(&attr),
            )
        };
        if rc < 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(())
    }

    pub(super) fn bench(n: u64) -> std::result::Result<Vec<Result>, String> {
        let path = std::env::var("TAPIO_BENCH_PRODUCER")
            .map_err(|_| "TAPIO_BENCH_PRODUCER (path of ring_producer.o) not set".to_string())?;
        let mut ebpf = Ebpf::load_file(&path).map_err(|e| format!("load {path}: {e}"))?;
        let prog: &mut RawTracePoint = ebpf
            .program_mut("produce")
            .ok_or("no program `produce`")?
            .try_into()
            .map_err(|e| format!("{e}"))?;
        prog.load().map_err(|e| format!("load `produce`: {e}"))?;
        let fd = prog.fd().map_err(|e| format!("{e}"))?.as_fd().as_raw_fd();
        let mut cfg: Array<_, ProducerCfg> =
            Array::try_from(ebpf.take_map("producer").ok_or("no map `producer`")?)
                .map_err(|e| format!("{e}"))?;
        let now = tapio_agent::clock::Clock::boot_now();
        let tmpl = refused(1, 8001, 0, now);
        cfg.set(
            0,
            ProducerCfg {
                tmpl,
                count: BATCH,
                _pad0: 0,
                lost: 0,
            },
            0,
        )
        .map_err(|e| format!("{e}"))?;
        let mut ring = RingBuf::try_from(ebpf.take_map("events").ok_or("no map `events`")?)
            .map_err(|e| format!("{e}"))?;
        let batches = n.div_ceil(u64::from(BATCH));
        let total = batches * u64::from(BATCH);
        let mut out = Vec::new();

        for (name, window) in [
            ("ring/drain-only", None),
            ("ring/drain+pipeline", Some(10_000)),
        ] {
            let mut p = window.map(|w| Pipeline::new(Box::new(NetworkClassifier::default()), w));
            let mut drained = 0u64;
            let mut wall = 0u64;
            let mut cpu = 0u64;
            let mut produce_ns = 0u64;
            for _ in 0..batches {
                let t = std::time::Instant::now();
                test_run(fd).map_err(|e| format!("BPF_PROG_TEST_RUN: {e}"))?;
                produce_ns += u64::try_from(t.elapsed().as_nanos()).unwrap_or(0);
                let r = time(name, 0, || {
                    while let Some(item) = ring.next() {
                        drained += 1;
                        match p.as_mut() {
                            Some(p) => p.record(&item),
                            None => {
                                std::hint::black_box(&*item);
                            }
                        }
                    }
                    String::new()
                });
                wall += r.wall_ns;
                cpu += r.cpu_ns;
            }
            let lost = cfg.get(&0, 0).map(|c| c.lost).unwrap_or(0);
            out.push(Result {
                name: name.into(),
                records: drained,
                wall_ns: wall,
                cpu_ns: cpu,
                note: format!(
                    "produced {total} (producer {:.0} ns/rec in kernel, lost {lost})",
                    produce_ns as f64 / total as f64
                ),
            });
        }
        Ok(out)
    }
}
