use std::fs;
use std::os::unix::fs::{symlink, MetadataExt};
use std::path::{Path, PathBuf};

use super::*;
use crate::counters::SinkDrop;
use tapio_common::{Anomaly, Outcome, Severity};

fn occ(ms: u64) -> Occurrence {
    Occurrence::new(
        Anomaly::IoError,
        Severity::Critical,
        Outcome::Failure,
        ms * 1_000_000,
        1,
    )
}

fn now_ms() -> u64 {
    u64::try_from(
        SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap()
            .as_millis(),
    )
    .unwrap()
}

fn tempdir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("tapio-file-sink-{tag}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&d);
    d
}

fn sink(d: &Path, retention: Retention) -> FileSink {
    FileSink::open(Arc::new(DataDir::open(d, false).unwrap()), retention).unwrap()
}

fn soon() -> Instant {
    Instant::now() + Duration::from_secs(5)
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
fn writes_one_parseable_0640_file_per_occurrence_and_no_temp_files() {
    let d = tempdir("write");
    let mut s = sink(&d, Retention::default());
    let batch = vec![occ(now_ms()), occ(now_ms() + 1)];
    s.write_batch(&batch, soon()).unwrap();
    assert_eq!(names(&d).len(), 2, "{:?}", names(&d));
    for o in &batch {
        let p = d.join(format!("{}.json", o.id));
        assert_eq!(fs::metadata(&p).unwrap().mode() & 0o777, 0o640);
        let r: tapio_common::OccurrenceRecord =
            serde_json::from_slice(&fs::read(p).unwrap()).unwrap();
        assert_eq!(r.id, o.id.to_string());
    }
    fs::remove_dir_all(&d).unwrap();
}

#[test]
fn retention_keeps_the_newest_max_files() {
    let d = tempdir("count");
    let mut s = sink(
        &d,
        Retention {
            max_files: 3,
            max_age: Duration::from_secs(3600 * 24 * 365 * 100),
        },
    );
    let now = now_ms();
    let batch: Vec<Occurrence> = (0..5).map(|i| occ(now + i)).collect();
    s.write_batch(&batch, soon()).unwrap();
    let want: Vec<String> = batch[2..]
        .iter()
        .map(|o| format!("{}.json", o.id))
        .collect();
    assert_eq!(names(&d), want);
    // Reopening counts what is there.
    let s2 = sink(
        &d,
        Retention {
            max_files: 1,
            max_age: Duration::from_secs(3600),
        },
    );
    assert_eq!(s2.kept(), 1);
    fs::remove_dir_all(&d).unwrap();
}

#[test]
fn retention_drops_files_older_than_max_age() {
    let d = tempdir("age");
    let mut s = sink(
        &d,
        Retention {
            max_files: 100,
            max_age: Duration::from_secs(60),
        },
    );
    let now = now_ms();
    s.write_batch(&[occ(now - 3_600_000), occ(now)], soon())
        .unwrap();
    s.enforce(true);
    assert_eq!(s.kept(), 1);
    fs::remove_dir_all(&d).unwrap();
}

#[test]
fn ulid_prefix_decodes_milliseconds() {
    let o = occ(1_700_000_000_123);
    assert_eq!(ulid_ms(&o.id.to_string()), Some(1_700_000_000_123));
}

#[test]
fn hostile_symlinks_at_occurrence_names_change_nothing_outside() {
    let root = tempdir("hostile");
    let d = root.join("data");
    let outside = root.join("outside");
    fs::create_dir_all(&outside).unwrap();
    let victim = outside.join("victim");
    fs::write(&victim, "precious").unwrap();
    let old = occ(now_ms() - 10);
    let new = occ(now_ms());
    fs::create_dir_all(&d).unwrap();
    fs::set_permissions(&d, std::os::unix::fs::PermissionsExt::from_mode(0o750)).unwrap();
    // An older "occurrence" that is a symlink: retention removes the link.
    symlink(&victim, d.join(format!("{}.json", old.id))).unwrap();
    let mut s = sink(
        &d,
        Retention {
            max_files: 1,
            max_age: Duration::from_secs(3600),
        },
    );
    // At the final name and at the fixed temp name earlier agents used.
    symlink(&victim, d.join(format!("{}.json", new.id))).unwrap();
    symlink(&victim, d.join(format!(".{}.json.tmp", new.id))).unwrap();
    s.write_batch(std::slice::from_ref(&new), soon()).unwrap();
    assert_eq!(fs::read_to_string(&victim).unwrap(), "precious");
    assert_eq!(names(&outside), vec!["victim".to_owned()]);
    let p = d.join(format!("{}.json", new.id));
    assert!(fs::symlink_metadata(&p).unwrap().file_type().is_file());
    assert_eq!(
        names(&d),
        vec![format!(".{}.json.tmp", new.id), format!("{}.json", new.id)]
    );
    fs::remove_dir_all(&root).unwrap();
}

#[test]
fn a_batch_stops_at_the_first_failed_file_and_says_how_many_went_out() {
    let d = tempdir("partial");
    let mut s = sink(&d, Retention::default());
    let batch: Vec<Occurrence> = (0..3).map(|i| occ(now_ms() + i)).collect();
    // A directory at the second name: renaming a file over it fails.
    fs::create_dir(d.join(format!("{}.json", batch[1].id))).unwrap();
    let e = s.write_batch(&batch, soon()).unwrap_err();
    assert_eq!(e.to_string(), "stopped after 1 of 3 occurrences");
    let (lost, cause) = e.lost(batch.len());
    assert_eq!(lost, 2);
    assert!(
        matches!(cause, SinkError::Io { op: "renameat", source } if source.raw_os_error() == Some(libc::EISDIR)),
        "{cause:?}"
    );
    assert_eq!(SinkDrop::of(&e), SinkDrop::WriteFailed);
    assert_eq!(s.kept(), 1);
    // Nothing delivered at all: a plain error, the whole batch lost.
    let e = s.write_batch(&batch[1..2], soon()).unwrap_err();
    assert_eq!(e.lost(1).0, 1);
    fs::remove_dir_all(&d).unwrap();
}
