//! The file sink on a real, small tmpfs filled to the last page (root: the
//! test mounts it). Occurrences written while it is full are dropped and
//! counted as `disk_full`; the sink's worker stays up, and writing resumes by
//! itself once space returns. Outside CI a host that cannot mount skips,
//! saying so; under CI=true it fails.

mod skip;

use std::ffi::CString;
use std::fs;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use tapio_agent::counters::{Counters, SinkKind};
use tapio_agent::datadir::DataDir;
use tapio_agent::sinks::file::{FileSink, Retention};
use tapio_agent::sinks::Fanout;
use tapio_agent::state::{AgentState, StatusWriter};
use tapio_common::{Anomaly, Occurrence, Outcome, Severity};

const DISK_FULL: &str = "tapio_sink_drops_total{sink=\"file\",reason=\"disk_full\"}";
const WRITE_FAILED: &str = "tapio_sink_drops_total{sink=\"file\",reason=\"write_failed\"}";
const WRITES_OK: &str = "tapio_sink_writes_total{sink=\"file\",result=\"ok\"}";

/// A tmpfs of `size` mounted at a fresh directory; detached on drop.
struct Tmpfs {
    at: PathBuf,
}

impl Tmpfs {
    fn mount(tag: &str, size: &str) -> Option<Tmpfs> {
        let at = std::env::temp_dir().join(format!("tapio-full-disk-{tag}-{}", std::process::id()));
        let _ = fs::create_dir_all(&at);
        let target = CString::new(at.as_os_str().as_bytes()).unwrap();
        let opts = CString::new(format!("size={size},mode=0700")).unwrap();
        // SAFETY: every pointer is a valid NUL-terminated string.
        let rc = unsafe {
            libc::mount(
                c"tmpfs".as_ptr(),
                target.as_ptr(),
                c"tmpfs".as_ptr(),
                libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
                opts.as_ptr().cast(),
            )
        };
        if rc == 0 {
            return Some(Tmpfs { at });
        }
        let e = std::io::Error::last_os_error();
        let _ = fs::remove_dir(&at);
        skip::cannot_run(&format!(
            "cannot mount a tmpfs at {} ({e}): this test needs root (CAP_SYS_ADMIN)",
            at.display()
        ));
        None
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let c = CString::new(self.at.as_os_str().as_bytes()).unwrap();
        // SAFETY: valid path string.
        unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) };
        let _ = fs::remove_dir(&self.at);
    }
}

/// Writes `path` until the filesystem refuses with ENOSPC.
fn fill(path: &Path) {
    let mut f = fs::File::create(path).unwrap();
    let chunk = vec![0xa5u8; 4096];
    loop {
        match f.write_all(&chunk) {
            Ok(()) => {}
            Err(e) if e.raw_os_error() == Some(libc::ENOSPC) => return,
            Err(e) => panic!("filling {}: {e}", path.display()),
        }
    }
}

fn occurrence() -> Occurrence {
    let ns = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    Occurrence::new(
        Anomaly::IoError,
        Severity::Critical,
        Outcome::Failure,
        u64::try_from(ns).unwrap(),
        1,
    )
}

fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if f() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("timed out waiting for {what}");
}

fn names(d: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(d)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    v.sort();
    v
}

#[test]
fn full_disk_drops_are_counted_as_disk_full_and_writing_resumes_when_space_returns() {
    let Some(fs_) = Tmpfs::mount("sink", "256k") else {
        return;
    };
    let data = fs_.at.join("occurrences");
    let dir = Arc::new(DataDir::open(&data, false).unwrap());
    let counters = Arc::new(Counters::default());
    let state = AgentState::new(Arc::clone(&counters));
    let sink = FileSink::open(Arc::clone(&dir), Retention::default()).unwrap();
    let fanout = Fanout::start(
        vec![(SinkKind::File, Box::new(sink))],
        Arc::clone(&counters),
    )
    .unwrap();
    let count = |name: &str| counters.snapshot()[name];

    // Room at first: one occurrence goes out.
    fanout.emit(occurrence());
    wait_until("the first file", || names(&data).len() == 1);

    // Full to the last page: every occurrence is dropped as disk_full, no
    // file and no temp file is left, and the status file cannot be written.
    let filler = fs_.at.join("filler");
    fill(&filler);
    for _ in 0..10 {
        fanout.emit(occurrence());
    }
    wait_until("10 disk_full drops", || count(DISK_FULL) == 10);
    assert_eq!(count(WRITE_FAILED), 0);
    assert_eq!(names(&data).len(), 1, "{:?}", names(&data));
    let e = state.write_status_file(&dir).unwrap_err();
    assert!(e.is_disk_full(), "{e:?}");
    let mut status = StatusWriter::new(Some(Arc::clone(&dir)));
    assert!(!status.write(&state));
    assert_eq!(names(&data).len(), 1, "{:?}", names(&data));

    // Space returns: the same worker writes again, nothing restarted.
    fs::remove_file(&filler).unwrap();
    let ok_before = count(WRITES_OK);
    for _ in 0..5 {
        fanout.emit(occurrence());
    }
    wait_until("5 more files", || names(&data).len() == 6);
    assert!(count(WRITES_OK) > ok_before);
    assert_eq!(count(DISK_FULL), 10);
    assert!(names(&data)
        .iter()
        .all(|n| n.ends_with(".json") && !n.starts_with('.')));

    // The named reason is in the status file `tapio status` reads, written
    // again by the same writer.
    assert!(status.write(&state));
    let st: serde_json::Value =
        serde_json::from_slice(&fs::read(data.join(".tapio-status.json")).unwrap()).unwrap();
    assert_eq!(st["counters"][DISK_FULL], 10);
    assert_eq!(st["counters"][WRITE_FAILED], 0);

    let late = fanout.shutdown(Instant::now() + Duration::from_secs(5));
    assert!(late.is_empty());
}
