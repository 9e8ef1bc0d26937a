//! Real-kernel tests of the storage observer: a loop device with direct I/O
//! over a FUSE file that fails, stalls or short-reads chosen ranges
//! (`tests/fuse/tapio_fuse_disk.c`), with the exact evidence the agent
//! printed and the correlation drops it counted.

mod support;

use std::alloc::{alloc_zeroed, dealloc, Layout};
use std::fs::OpenOptions;
use std::os::unix::fs::{FileExt, FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::*;

const IO_ERROR: &str = "kernel.storage.io_error";
const SPIKE: &str = "kernel.storage.latency_spike";

// Mirrors tests/fuse/tapio_fuse_disk.c.
const MIB: u64 = 1 << 20;
const EIO_OFF: u64 = 8 * MIB;
const SLOW_OFF: u64 = 16 * MIB;
const SHORT_OFF: u64 = 24 * MIB;
const NORMAL_OFF: u64 = 4 * MIB;
const SLOW_MS: u64 = 300;
const IO: usize = 4096;

/// Whether this kernel's `block_rq_complete` passes a `blk_status_t` (6.1
/// and later) rather than an errno (5.10), read from its own BTF: the type
/// of the tracepoint's `error` argument.
fn complete_error_is_blk_status() -> bool {
    let out = Command::new("bpftool")
        .args(["btf", "dump", "file", "/sys/kernel/btf/vmlinux"])
        .output()
        .expect("run bpftool");
    assert!(out.status.success(), "bpftool btf dump failed");
    let text = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = text.lines().collect();
    let type_of = |id: &str| -> &str {
        let head = format!("[{id}] ");
        lines
            .iter()
            .find(|l| l.starts_with(&head))
            .unwrap_or_else(|| panic!("BTF type {id} missing"))
    };
    let target = |line: &str| -> String {
        line.split("type_id=")
            .nth(1)
            .and_then(|t| t.split_whitespace().next())
            .unwrap_or_else(|| panic!("no type_id in {line:?}"))
            .to_owned()
    };
    let typedef = lines
        .iter()
        .find(|l| l.contains("TYPEDEF 'btf_trace_block_rq_complete'"))
        .expect("btf_trace_block_rq_complete in kernel BTF");
    let ptr = type_of(&target(typedef));
    let proto_id = target(ptr);
    let at = lines
        .iter()
        .position(|l| l.starts_with(&format!("[{proto_id}] FUNC_PROTO")))
        .expect("prototype");
    // Parameters: (void *__data, struct request *rq, <error>, nr_bytes).
    let error_param = lines[at + 3];
    let ty = type_of(&target(error_param));
    ty.contains("'blk_status_t'")
}

/// Tools a storage test needs: `cc` only where the FUSE program is built here.
fn storage_tools(extra: &[&'static str]) -> Vec<&'static str> {
    let mut v = vec!["losetup"];
    if std::env::var_os("TAPIO_FUSE_BIN").is_none() {
        v.push("cc");
    }
    v.extend_from_slice(extra);
    v
}

/// Builds the FUSE program once, installing libfuse3 when it is missing
/// (CI starts from a fresh machine).
fn fuse_binary() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        // Prebuilt (the kernel-matrix VMs have no compiler).
        if let Some(bin) = std::env::var_os("TAPIO_FUSE_BIN") {
            return PathBuf::from(bin);
        }
        let ok = |cmd: &str| {
            Command::new("sh")
                .arg("-c")
                .arg(cmd)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        };
        if !ok("pkg-config --exists fuse3 && command -v fusermount3") {
            sh("DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null && \
                DEBIAN_FRONTEND=noninteractive apt-get install -y -qq fuse3 libfuse3-dev pkg-config >/dev/null");
        }
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuse/tapio_fuse_disk.c");
        let bin = Path::new(env!("CARGO_TARGET_TMPDIR")).join("tapio_fuse_disk");
        sh(&format!(
            "cc -O2 -Wall -o {} {} $(pkg-config --cflags --libs fuse3)",
            bin.display(),
            src.display()
        ));
        bin
    })
    .clone()
}

/// The FUSE file system and a loop device over its file with direct I/O;
/// on drop the loop device is detached, the mount removed and the FUSE
/// process reaped.
struct FuseLoop {
    mnt: PathBuf,
    fuse: Option<Child>,
    dev: Option<String>,
}

impl FuseLoop {
    fn new(tag: &str) -> FuseLoop {
        let bin = fuse_binary();
        let mnt = std::env::temp_dir().join(format!("tapio-fuse-{tag}-{}", std::process::id()));
        let _ = Command::new("fusermount3")
            .arg("-uz")
            .arg(&mnt)
            .stderr(Stdio::null())
            .status();
        std::fs::create_dir_all(&mnt).unwrap();
        let fuse = Command::new(&bin)
            .arg(&mnt)
            .arg("-f")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn tapio_fuse_disk");
        let mut fl = FuseLoop {
            mnt,
            fuse: Some(fuse),
            dev: None,
        };
        let file = fl.mnt.join("disk");
        let end = Instant::now() + Duration::from_secs(10);
        while !file.exists() {
            assert!(
                Instant::now() < end,
                "FUSE mount at {:?} did not come up",
                fl.mnt
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        let out = Command::new("losetup")
            .args(["--find", "--show", "--direct-io=on"])
            .arg(&file)
            .output()
            .expect("losetup");
        assert!(
            out.status.success(),
            "losetup: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let dev = String::from_utf8(out.stdout).unwrap().trim().to_owned();
        fl.dev = Some(dev.clone());
        let name = dev.trim_start_matches("/dev/");
        let dio = std::fs::read_to_string(format!("/sys/block/{name}/loop/dio")).unwrap();
        assert_eq!(dio.trim(), "1", "{dev} must do direct I/O to the FUSE file");
        fl
    }

    fn dev(&self) -> &str {
        self.dev.as_deref().unwrap()
    }

    fn name(&self) -> &str {
        self.dev().trim_start_matches("/dev/")
    }

    /// "major:minor" of the loop device.
    fn major_minor(&self) -> (u64, u64) {
        let m = std::fs::metadata(self.dev()).unwrap();
        assert!(m.file_type().is_block_device());
        let rdev = m.rdev();
        (u64::from(libc::major(rdev)), u64::from(libc::minor(rdev)))
    }

    /// One O_DIRECT read of `IO` bytes at `off`: one block request.
    fn read_direct(&self, off: u64) -> std::io::Result<usize> {
        let f = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_DIRECT)
            .open(self.dev())?;
        let layout = Layout::from_size_align(IO, IO).unwrap();
        // SAFETY: non-zero size; freed below with the same layout.
        let ptr = unsafe { alloc_zeroed(layout) };
        assert!(!ptr.is_null());
        // SAFETY: ptr is valid for IO bytes until dealloc.
        let buf = unsafe { std::slice::from_raw_parts_mut(ptr, IO) };
        let r = f.read_at(buf, off);
        // SAFETY: allocated above with this layout.
        unsafe { dealloc(ptr, layout) };
        r
    }
}

impl Drop for FuseLoop {
    fn drop(&mut self) {
        if let Some(dev) = self.dev.take() {
            sh_quiet(&format!("losetup -d {dev}"));
        }
        let _ = Command::new("fusermount3")
            .arg("-uz")
            .arg(&self.mnt)
            .stderr(Stdio::null())
            .status();
        if let Some(mut c) = self.fuse.take() {
            let end = Instant::now() + Duration::from_secs(5);
            while c.try_wait().ok().flatten().is_none() && Instant::now() < end {
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = std::fs::remove_dir(&self.mnt);
    }
}

/// Thresholds with margin on a busy 2-core host: a normal read never takes
/// 200 ms, the slow range always takes 300 ms.
fn storage_config() -> Value {
    config_with(|c| {
        c["storage"]["latency_warning_us"] = json!(200_000);
        c["storage"]["latency_critical_us"] = json!(2_000_000);
    })
}

fn on_device<'a>(all: &'a [Value], kind: &str, mm: &str) -> Vec<&'a Value> {
    let mm = mm.to_owned();
    of_type(all, kind, move |d| d["device"] == mm.as_str())
}

/// The clock the kernel stamps `name`'s requests with, from the queue's own
/// attributes: writeback throttling (there where `wbt_lat_usec` can be
/// read) keeps queue stats, which stamp dispatch (`io_start_time_ns`); else
/// I/O accounting (`iostats`) or a scheduler stamps allocation
/// (`start_time_ns`); else nothing does and the issue hook measures.
fn expected_clock(name: &str) -> &'static str {
    let q = format!("/sys/block/{name}/queue");
    if std::fs::read_to_string(format!("{q}/wbt_lat_usec")).is_ok() {
        return "io_start";
    }
    let iostats = std::fs::read_to_string(format!("{q}/iostats")).unwrap_or_default();
    let sched = std::fs::read_to_string(format!("{q}/scheduler")).unwrap_or_default();
    if iostats.trim() == "1" || !sched.contains("[none]") {
        return "alloc";
    }
    "issue_hook"
}

/// The status file's correlation-drop counter for `reason` (0 when absent).
fn correlation_drops(status: &Value, reason: &str) -> u64 {
    let key = format!("tapio_correlation_drops_total{{observer=\"storage\",reason=\"{reason}\"}}");
    status["counters"][key.as_str()].as_u64().unwrap_or(0)
}

#[test]
fn eio_slow_and_normal_reads_give_exact_evidence_on_the_loop_device() {
    let Some(_k) = kernel_test(&storage_tools(&[])) else {
        return;
    };
    let agent = Agent::start("blk", &storage_config(), &[]);
    let disk = FuseLoop::new("blk");
    let (major, minor) = disk.major_minor();
    let mm = format!("{major}:{minor}");

    let err = disk.read_direct(EIO_OFF).expect_err("the EIO range fails");
    assert_eq!(err.raw_os_error(), Some(libc::EIO));
    let t = Instant::now();
    assert_eq!(disk.read_direct(SLOW_OFF).unwrap(), IO);
    assert!(t.elapsed() >= Duration::from_millis(SLOW_MS));
    assert_eq!(disk.read_direct(NORMAL_OFF).unwrap(), IO);

    agent.wait_for(Duration::from_secs(10), |all| {
        !on_device(all, IO_ERROR, &mm).is_empty() && !on_device(all, SPIKE, &mm).is_empty()
    });
    std::thread::sleep(Duration::from_millis(300));
    let (code, all) = agent.stop();
    assert_eq!(code, 0);

    let errors = on_device(&all, IO_ERROR, &mm);
    assert_eq!(errors.len(), 1, "one io_error: {errors:#?}");
    let d = &errors[0]["data"];
    assert_eq!(d["major"], major);
    assert_eq!(d["minor"], minor);
    assert_eq!(d["device_name"], disk.name());
    assert_eq!(d["sector"], EIO_OFF / 512);
    assert_eq!(d["bytes"], IO);
    assert_eq!(d["op"], "read");
    assert_eq!(d["errno"], libc::EIO);
    if complete_error_is_blk_status() {
        assert_eq!(d["blk_status"], 10, "BLK_STS_IOERR");
    } else {
        assert!(d["blk_status"].is_null(), "the kernel gave an errno: {d:#}");
    }
    assert_eq!(d["config_generation"], 1);
    assert_eq!(d["count"], 1);

    let spikes = on_device(&all, SPIKE, &mm);
    assert_eq!(
        spikes.len(),
        1,
        "one latency_spike (the slow read only; not the normal read, not the error): {spikes:#?}"
    );
    let d = &spikes[0]["data"];
    assert_eq!(d["sector"], SLOW_OFF / 512);
    assert_eq!(d["bytes"], IO);
    assert_eq!(d["op"], "read");
    assert_eq!(d["level"], "warning");
    assert_eq!(d["threshold_us"], 200_000);
    let lat = d["latency_us"].as_u64().unwrap();
    assert!(
        (SLOW_MS * 1000..2_000_000).contains(&lat),
        "latency {lat} us of a {SLOW_MS} ms read"
    );
    assert_eq!(spikes[0]["severity"], "warning");
    let clock = expected_clock(disk.name());
    eprintln!("latency_clock on {}: {clock}", disk.name());
    assert_eq!(d["latency_clock"], clock, "{d:#}");
    assert_eq!(errors[0]["data"]["latency_clock"], clock);
}

/// Drives the fallback path where every kernel of the matrix stamps loop
/// requests: the agent's test mode ignores the stamps, so issue and
/// completion are correlated by the request in the in-flight hash. The same
/// evidence as on the stamped path, the clock named, the fallback counted
/// (logged), and a requeue forgets its issue (counted as a drop).
#[test]
fn unstamped_requests_take_the_issue_hook_path_with_exact_evidence() {
    let Some(_k) = kernel_test(&storage_tools(&[])) else {
        return;
    };
    let data = tempdir("blk-unstamped-data");
    let agent = Agent::start_with_env(
        "blk-unstamped",
        &storage_config(),
        &["--sink", "file", "--data-dir", data.to_str().unwrap()],
        &[("TAPIO_TEST_STORAGE_IGNORE_STAMPS", "1")],
    );
    let disk = FuseLoop::new("blk-unstamped");
    let (major, minor) = disk.major_minor();
    let mm = format!("{major}:{minor}");

    let err = disk.read_direct(EIO_OFF).expect_err("the EIO range fails");
    assert_eq!(err.raw_os_error(), Some(libc::EIO));
    assert_eq!(disk.read_direct(SLOW_OFF).unwrap(), IO);
    assert_eq!(disk.read_direct(NORMAL_OFF).unwrap(), IO);
    assert_eq!(disk.read_direct(SHORT_OFF).unwrap(), IO);
    agent.wait_for(Duration::from_secs(10), |all| {
        !on_device(all, IO_ERROR, &mm).is_empty() && !on_device(all, SPIKE, &mm).is_empty()
    });
    agent.wait_log(
        "block requests without kernel timestamps",
        Duration::from_secs(10),
    );
    std::thread::sleep(Duration::from_millis(300));
    let (code, all) = agent.stop();
    assert_eq!(code, 0);
    let status: Value = serde_json::from_slice(
        &std::fs::read(data.join(".tapio-status.json")).expect("status file"),
    )
    .unwrap();
    let _ = std::fs::remove_dir_all(&data);

    let errors = on_device(&all, IO_ERROR, &mm);
    assert_eq!(errors.len(), 1, "one io_error: {errors:#?}");
    let d = &errors[0]["data"];
    assert_eq!(d["sector"], EIO_OFF / 512);
    assert_eq!(d["errno"], libc::EIO);
    assert_eq!(d["latency_clock"], "issue_hook");
    let spikes = on_device(&all, SPIKE, &mm);
    assert_eq!(spikes.len(), 1, "the slow read only: {spikes:#?}");
    let d = &spikes[0]["data"];
    assert_eq!(d["sector"], SLOW_OFF / 512);
    assert_eq!(d["bytes"], IO);
    assert_eq!(d["latency_clock"], "issue_hook");
    let lat = d["latency_us"].as_u64().unwrap();
    assert!(
        (SLOW_MS * 1000..2_000_000).contains(&lat),
        "latency {lat} us of a {SLOW_MS} ms read"
    );
    assert!(
        correlation_drops(&status, "requeued") >= 1,
        "the short read's requeue forgot its issue: {status:#}"
    );
}

// Regression guard: a short read makes the loop driver complete part of
// the request and requeue the rest; that must never surface as an error or
// a spike. On the stamped path nothing is lost (the kernel restamps the
// re-issue, or the allocation stamp still holds): no correlation drop; on
// the fallback path (unstamped_requests_take_the_issue_hook_path_...) the
// requeue forgets the issue and is counted.
#[test]
fn short_read_requeue_is_counted_and_never_reported() {
    let Some(_k) = kernel_test(&storage_tools(&[])) else {
        return;
    };
    let data = tempdir("blk-requeue-data");
    let agent = Agent::start(
        "blk-requeue",
        &storage_config(),
        &["--sink", "file", "--data-dir", data.to_str().unwrap()],
    );
    let disk = FuseLoop::new("requeue");
    let (major, minor) = disk.major_minor();
    let mm = format!("{major}:{minor}");
    assert_eq!(
        disk.read_direct(SHORT_OFF).unwrap(),
        IO,
        "short read completed in two parts"
    );
    std::thread::sleep(Duration::from_millis(300));
    let (code, all) = agent.stop();
    assert_eq!(code, 0);
    assert!(on_device(&all, IO_ERROR, &mm).is_empty());
    assert!(on_device(&all, SPIKE, &mm).is_empty());
    let status: Value = serde_json::from_slice(
        &std::fs::read(data.join(".tapio-status.json")).expect("status file"),
    )
    .unwrap();
    let _ = std::fs::remove_dir_all(&data);
    let requeued = correlation_drops(&status, "requeued");
    if expected_clock(disk.name()) == "issue_hook" {
        assert!(requeued >= 1, "requeue counted: {status:#}");
    } else {
        assert_eq!(requeued, 0, "nothing lost on the stamped path: {status:#}");
    }
}

// Issue 5: the latency threshold changes at run time, through the config
// carrier, with the same programs: above the injected delay nothing, below
// it a latency_spike stamped with the new generation.
#[test]
fn latency_threshold_moves_at_runtime_without_reloading_programs() {
    let Some(_k) = kernel_test(&storage_tools(&["bpftool"])) else {
        return;
    };
    // Far above the injected delay, even on a slow emulated host.
    let high = config_with(|c| {
        c["storage"]["latency_warning_us"] = json!(10_000_000);
        c["storage"]["latency_critical_us"] = json!(20_000_000);
    });
    let agent = Agent::start("blk-cfg", &high, &[]);
    let ids = bpf_prog_ids(agent.pid());
    assert!(!ids.is_empty(), "bpftool shows the agent's programs");
    let disk = FuseLoop::new("blk-cfg");
    let (major, minor) = disk.major_minor();
    let mm = format!("{major}:{minor}");

    // Generation 1: warning at 10 s, the 300 ms read is not a spike.
    let t = Instant::now();
    assert_eq!(disk.read_direct(SLOW_OFF).unwrap(), IO);
    assert!(t.elapsed() < Duration::from_secs(10), "{:?}", t.elapsed());
    std::thread::sleep(Duration::from_millis(1500));
    assert!(
        on_device(&agent.occurrences(), SPIKE, &mm).is_empty(),
        "300 ms read under a 10 s threshold reported"
    );

    // Generation 2: warning at 200 ms, the same read is a spike.
    std::fs::write(
        agent.dir.join("compiled.json"),
        serde_json::to_vec(&storage_config()).unwrap(),
    )
    .unwrap();
    agent.signal(libc::SIGHUP);
    agent.wait_log_count("config applied", 2, Duration::from_secs(10));
    assert_eq!(disk.read_direct(SLOW_OFF).unwrap(), IO);
    let all = agent.wait_for(Duration::from_secs(10), |all| {
        !on_device(all, SPIKE, &mm).is_empty()
    });
    assert_eq!(
        bpf_prog_ids(agent.pid()),
        ids,
        "no reload or re-attach on a threshold change"
    );
    let (code, _) = agent.stop();
    assert_eq!(code, 0);
    let spikes = on_device(&all, SPIKE, &mm);
    assert_eq!(spikes.len(), 1, "{spikes:#?}");
    let d = &spikes[0]["data"];
    assert_eq!(d["config_generation"], 2);
    assert_eq!(d["threshold_us"], 200_000);
    assert!(d["latency_us"].as_u64().unwrap() >= SLOW_MS * 1000);
}

/// Four EIO reads at four sectors: the first leaves with its own sector,
/// the follow-up keeps the storm's shape (first/last/min/max/distinct
/// sector of the three repeats). Regression: the follow-up said "3 more"
/// and nothing about where.
#[test]
fn an_io_error_storm_keeps_its_sectors_in_the_follow_up() {
    let Some(_k) = kernel_test(&storage_tools(&[])) else {
        return;
    };
    let agent = Agent::start("blkstorm", &storage_config(), &[]);
    let disk = FuseLoop::new("blkstorm");
    let (major, minor) = disk.major_minor();
    let mm = format!("{major}:{minor}");
    let offs = [0u64, 16 * 1024, 4 * 1024, 48 * 1024].map(|o| EIO_OFF + o);
    for off in offs {
        let err = disk.read_direct(off).expect_err("the EIO range fails");
        assert_eq!(err.raw_os_error(), Some(libc::EIO));
    }
    agent.wait_for(Duration::from_secs(5), |all| {
        !on_device(all, IO_ERROR, &mm).is_empty()
    });
    std::thread::sleep(Duration::from_millis(500));
    // Stopping closes the fold window: the follow-up leaves.
    let (code, all) = agent.stop();
    assert_eq!(code, 0);
    let errors = on_device(&all, IO_ERROR, &mm);
    assert_eq!(errors.len(), 2, "first + one follow-up: {errors:#?}");
    assert_eq!(count_sum(&errors), 4);
    let first = errors
        .iter()
        .find(|o| o["data"]["folded"].is_null())
        .unwrap();
    assert_eq!(first["data"]["sector"], offs[0] / 512);
    let f = &errors.iter().find(|o| o["data"]["folded"] == true).unwrap()["data"];
    assert_eq!(f["count"], 3);
    assert!(f["sector"].is_null(), "a follow-up claims no single sector");
    assert_eq!(f["sector_first"], offs[1] / 512);
    assert_eq!(f["sector_last"], offs[3] / 512);
    assert_eq!(f["sector_min"], offs[2] / 512);
    assert_eq!(f["sector_max"], offs[3] / 512);
    assert_eq!(f["sector_distinct"], 3);
}
