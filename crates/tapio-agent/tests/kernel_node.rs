//! Real-kernel tests of the node PMC observer: its honest unavailability
//! on a host without a hardware PMU, and its plumbing (perf event arrays,
//! the sampling program, deltas, windows) driven by software events in the
//! labelled test mode.

mod support;

use std::net::TcpStream;
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::*;

const REFUSED: &str = "kernel.network.connection_refused";
const IPC: &str = "kernel.node.ipc_degradation";
const STALL: &str = "kernel.node.cpu_stall";
const MEMORY: &str = "kernel.node.memory_pressure";

/// errno of opening hardware cycles on CPU 0 the way the agent does, or 0.
fn hardware_cycles_errno() -> i32 {
    #[repr(C)]
    #[derive(Default)]
    struct Attr {
        perf_type: u32,
        size: u32,
        rest: [u64; 7],
    }
    let attr = Attr {
        perf_type: 0,
        size: 64,
        ..Attr::default()
    };
    // SAFETY: a zeroed 64-byte perf_event_attr (type HARDWARE, config
    // CPU_CYCLES); the fd is closed below.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_perf_event_open,
            std::ptr::from_ref(&attr),
            -1,
            0,
            -1,
            8,
        )
    };
    if fd < 0 {
        return std::io::Error::last_os_error().raw_os_error().unwrap_or(-1);
    }
    // SAFETY: fd was returned by perf_event_open above.
    unsafe { libc::close(i32::try_from(fd).unwrap()) };
    0
}

fn online_cpus() -> u64 {
    let text = std::fs::read_to_string("/sys/devices/system/cpu/online").unwrap();
    text.trim()
        .split(',')
        .map(|r| match r.split_once('-') {
            Some((a, b)) => b.parse::<u64>().unwrap() - a.parse::<u64>().unwrap() + 1,
            None => 1,
        })
        .sum()
}

/// The `node` entry of the status file, once it says `state`.
fn node_status(dir: &Path, state: &str, timeout: Duration) -> Value {
    let path = dir.join(".tapio-status.json");
    let end = Instant::now() + scaled(timeout);
    let mut last = Value::Null;
    while Instant::now() < end {
        if let Some(doc) = std::fs::read(&path)
            .ok()
            .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
        {
            last = doc;
            if let Some(n) = last["observers"]
                .as_array()
                .and_then(|o| o.iter().find(|o| o["name"] == "node"))
            {
                if n["state"] == state {
                    return last;
                }
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!(
        "node never reached `{state}` in {}: {last:#}",
        path.display()
    );
}

fn observer<'a>(status: &'a Value, name: &str) -> &'a Value {
    status["observers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["name"] == name)
        .unwrap()
}

#[test]
fn without_a_hardware_pmu_node_is_unavailable_with_the_errno_and_network_keeps_running() {
    let Some(_k) = kernel_test(&[]) else { return };
    let errno = hardware_cycles_errno();
    let data = tempdir("node-unavail-data");
    let agent = Agent::start(
        "node-unavail",
        &config_with(|_| {}),
        &["--sink", "file", "--data-dir", data.to_str().unwrap()],
    );
    if errno == 0 {
        // A host with a PMU: the observer must run instead.
        node_status(&data, "running", Duration::from_secs(10));
        let (code, _) = agent.stop();
        assert_eq!(code, 0);
        eprintln!("NOTE: this host has a hardware PMU; the unavailable path was not exercised");
        return;
    }
    assert_eq!(
        errno,
        libc::ENOENT,
        "this VM refuses hardware cycles with ENOENT"
    );
    let status = node_status(&data, "unavailable", Duration::from_secs(10));
    let reason = observer(&status, "node")["reason"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        reason.starts_with(
            "hardware event `cycles` (PERF_COUNT_HW_CPU_CYCLES) on cpu 0: `perf_event_open` failed with ENOENT"
        ),
        "{reason}"
    );
    assert!(reason.contains("PMUs present:"), "{reason}");
    assert_eq!(observer(&status, "network")["state"], "running");
    // The startup log says it too, once, with the same reason.
    let logged: Vec<String> = agent
        .log_lines()
        .into_iter()
        .filter(|l| l.contains("observer unavailable") && l.contains("observer=node"))
        .collect();
    assert_eq!(logged.len(), 1, "{logged:#?}");
    assert!(logged[0].contains(&reason), "{}", logged[0]);

    // The other observers keep producing evidence.
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    drop(l);
    let e = TcpStream::connect(("127.0.0.1", port)).unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::ConnectionRefused);
    let mine = |d: &Value| d["dst_port"] == port && d["dst_addr"] == "127.0.0.1";
    let all = agent.wait_for(Duration::from_secs(10), |all| {
        !of_type(all, REFUSED, mine).is_empty()
    });
    let refused = of_type(&all, REFUSED, mine);
    assert_eq!(count_sum(&refused), 1, "{refused:#?}");
    assert_eq!(refused[0]["data"]["pid"], u64::from(std::process::id()));

    std::thread::sleep(Duration::from_secs(3));
    let (code, all) = agent.stop();
    assert_eq!(code, 0);
    let node: Vec<&Value> = all
        .iter()
        .filter(|o| o["type"].as_str().unwrap_or("").starts_with("kernel.node."))
        .collect();
    assert!(
        node.is_empty(),
        "an unavailable observer emits nothing: {node:#?}"
    );
    let _ = std::fs::remove_dir_all(&data);
}

/// Touches `pages` fresh anonymous pages: at least that many page faults.
fn fault_pages(pages: usize) {
    let len = pages * 4096;
    // SAFETY: a private anonymous mapping this function owns and unmaps.
    unsafe {
        let p = libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        );
        assert_ne!(p, libc::MAP_FAILED);
        // One fault per page: a kernel that backs anonymous memory with
        // transparent huge pages (THP `always`) would take one per 2 MiB.
        assert_eq!(libc::madvise(p, len, libc::MADV_NOHUGEPAGE), 0);
        for i in 0..pages {
            std::ptr::write_volatile(p.cast::<u8>().add(i * 4096), 1);
        }
        libc::munmap(p, len);
    }
}

/// Keeps every online CPU busy while it lives: a cpu-clock sampling event
/// does not fire on an idle (tickless) CPU, so on a quiet machine an idle
/// CPU contributes no snapshots and a window would cover fewer CPUs.
struct BusyCpus {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl BusyCpus {
    fn start() -> BusyCpus {
        use std::sync::atomic::{AtomicBool, Ordering};
        let stop = std::sync::Arc::new(AtomicBool::new(false));
        let threads = (0..online_cpus())
            .map(|cpu| {
                let stop = std::sync::Arc::clone(&stop);
                std::thread::spawn(move || {
                    // SAFETY: a zeroed cpu_set_t is valid; CPU_SET stays in bounds.
                    unsafe {
                        let mut set: libc::cpu_set_t = std::mem::zeroed();
                        libc::CPU_SET(usize::try_from(cpu).unwrap(), &mut set);
                        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
                    }
                    while !stop.load(Ordering::Relaxed) {
                        std::hint::spin_loop();
                    }
                })
            })
            .collect();
        BusyCpus { stop, threads }
    }
}

impl Drop for BusyCpus {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// A thread faulting fresh pages in batches until stopped; each batch is
/// logged with its wall-clock start and end and its page count.
struct Faulter {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: std::thread::JoinHandle<Vec<(u64, u64, u64)>>,
}

impl Faulter {
    const BATCH: u64 = 1024;

    fn start() -> Faulter {
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let s = std::sync::Arc::clone(&stop);
        let now = || {
            u64::try_from(
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_nanos(),
            )
            .unwrap()
        };
        let thread = std::thread::spawn(move || {
            let mut log = Vec::new();
            while !s.load(std::sync::atomic::Ordering::Relaxed) {
                let t0 = now();
                fault_pages(Self::BATCH as usize);
                log.push((t0, now(), Self::BATCH));
            }
            log
        });
        Faulter { stop, thread }
    }

    fn stop(self) -> Vec<(u64, u64, u64)> {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        self.thread.join().unwrap()
    }
}

#[test]
fn software_test_mode_reads_counters_into_labelled_windowed_deltas() {
    let Some(_k) = kernel_test(&[]) else { return };
    let _busy = BusyCpus::start();
    const WINDOW_MS: u64 = 4000;
    let cfg = config_with(|c| {
        // context_switches/cpu_clock_ns is ~0 permille: below 1 in every
        // window, so one episode that never clears. Stall ratios inert.
        c["node"] = json!({
            "enabled": true,
            "window_ms": WINDOW_MS,
            "cpu_stall_permille": 0,
            "memory_pressure_permille": 0,
            "ipc_min_permille": 1,
        });
    });
    let data = tempdir("node-soft-data");
    let agent = Agent::start(
        "node-soft",
        &cfg,
        &[
            "--node-pmc-test-mode",
            "software",
            "--sink",
            "file",
            "--data-dir",
            data.to_str().unwrap(),
        ],
    );
    let banner: Vec<String> = agent
        .log_lines()
        .into_iter()
        .filter(|l| l.contains("SOFTWARE TEST MODE"))
        .collect();
    assert_eq!(
        banner.len(),
        1,
        "test mode is announced: {:#?}",
        agent.log_lines()
    );
    assert!(
        banner[0].contains("counter_source=\"software-test\""),
        "{}",
        banner[0]
    );
    // Page faults all along, each batch stamped with wall-clock bounds, so
    // the faults made inside whichever window is reported are known
    // exactly, however slowly this host runs.
    let faulter = Faulter::start();
    let status = node_status(&data, "running", Duration::from_secs(10));
    // The status says it is the test mode, not hardware evidence.
    let reason = observer(&status, "node")["reason"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(reason.starts_with("SOFTWARE TEST MODE"), "{reason}");

    // Three windows and more: one episode, one occurrence.
    std::thread::sleep(Duration::from_millis(3 * WINDOW_MS + 1500));
    let batches = faulter.stop();
    let (code, all) = agent.stop();
    assert_eq!(code, 0);
    let ipc = of_type(&all, IPC, |_| true);
    assert_eq!(ipc.len(), 1, "one occurrence per episode: {ipc:#?}");
    assert!(
        of_type(&all, STALL, |_| true).is_empty(),
        "threshold 0 is inert"
    );
    assert!(
        of_type(&all, MEMORY, |_| true).is_empty(),
        "threshold 0 is inert"
    );

    let o = ipc[0];
    let d = &o["data"];
    assert_eq!(d["counter_source"], "software-test");
    assert_eq!(d["ratio"], "context_switches/cpu_clock_ns");
    assert!(
        o["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("[software-test counters, not hardware] "),
        "{o:#}"
    );
    for hw in [
        "cycles",
        "instructions",
        "stalled_cycles_frontend",
        "stalled_cycles_backend",
    ] {
        assert!(
            d.get(hw).is_none(),
            "hardware name `{hw}` on software counts: {d:#}"
        );
    }
    assert_eq!(d["config_generation"], 1);
    assert_eq!(d["window_ms"], WINDOW_MS);
    let start = d["window_start_ns"].as_u64().unwrap();
    let end = d["window_end_ns"].as_u64().unwrap();
    assert_eq!(end - start, WINDOW_MS * 1_000_000);
    let cpus = online_cpus();
    assert_eq!(d["cpus"], cpus);
    assert_eq!(d["cpus_missing"], 0);
    assert_eq!(d["multiplexed"], false);
    assert_eq!(d["gaps"], 0);
    assert_eq!(d["resets"], 0);
    // Counter reads and deltas: each CPU's cpu-clock delta is the wall time
    // between its two snapshots, so the summed counter equals the summed
    // snapshot intervals (a cumulative value would not).
    let covered = d["covered_ns"].as_u64().unwrap();
    let clock = d["cpu_clock_ns"].as_u64().unwrap();
    assert!(
        clock.abs_diff(covered) <= covered / 200,
        "cpu_clock_ns {clock} vs covered_ns {covered}"
    );
    // Windowing: every CPU covers the window, less at most the one or two
    // sample periods at its edges.
    let full = cpus * WINDOW_MS * 1_000_000;
    assert!(
        covered <= full + cpus * 500_000_000 && covered >= full - cpus * 1_000_000_000,
        "covered_ns {covered} for a {WINDOW_MS} ms window on {cpus} CPUs"
    );
    // The faults made inside the window are in its page-fault delta.
    let faults = d["page_faults"].as_u64().unwrap();
    // A window counts each CPU's deltas between its own snapshots, which
    // may miss up to a second at the window's edges (the covered_ns bound
    // above): the faults made at least that far inside are all in it.
    let margin = 1_000_000_000;
    let mine: u64 = batches
        .iter()
        .filter(|(t0, t1, _)| *t0 >= start + margin && *t1 + margin <= end)
        .map(|(_, _, n)| n)
        .sum();
    assert!(
        mine >= Faulter::BATCH,
        "no fault batch made well inside the window"
    );
    assert!(
        faults >= mine,
        "page_faults {faults} < {mine} provoked well inside the window"
    );
    assert!(d["context_switches"].as_u64().unwrap() > 0);
    assert_eq!(d["value_permille"], 0);
    assert_eq!(d["threshold_permille"], 1);
    let _ = std::fs::remove_dir_all(&data);
}
