use std::fs;
use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};
use std::sync::Arc;

use super::*;
use crate::counters::Counters;
use crate::state::AgentState;
use tapio_common::status::{AgentStatus, STATUS_FILE};

/// A fresh scratch directory with an `outside/` holding victim files that
/// no write into the data dir may change.
struct Scratch {
    root: PathBuf,
}

impl Scratch {
    fn new(tag: &str) -> Scratch {
        let root = std::env::temp_dir().join(format!("tapio-datadir-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&root);
        fs::create_dir_all(root.join("outside")).unwrap();
        fs::set_permissions(&root, fs::Permissions::from_mode(0o700)).unwrap();
        Scratch { root }
    }

    fn data(&self) -> PathBuf {
        self.root.join("data")
    }

    /// `outside/<name>` with `body`; returns its path.
    fn victim(&self, name: &str, body: &str) -> PathBuf {
        let p = self.root.join("outside").join(name);
        fs::write(&p, body).unwrap();
        fs::set_permissions(&p, fs::Permissions::from_mode(0o600)).unwrap();
        p
    }

    /// Every file under `outside/`: name, mode and content, sorted.
    fn outside(&self) -> Vec<(String, u32, String)> {
        let mut v: Vec<_> = fs::read_dir(self.root.join("outside"))
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                let m = e.metadata().unwrap();
                (
                    e.file_name().into_string().unwrap(),
                    m.mode() & 0o7777,
                    fs::read_to_string(e.path()).unwrap(),
                )
            })
            .collect();
        v.sort();
        v
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.root);
    }
}

fn mode(p: &Path) -> u32 {
    fs::symlink_metadata(p).unwrap().mode() & 0o7777
}

fn is_regular(p: &Path) -> bool {
    fs::symlink_metadata(p).unwrap().file_type().is_file()
}

#[test]
fn creates_a_missing_dir_and_its_parents_0750() {
    let s = Scratch::new("create");
    let deep = s.data().join("a/occurrences");
    let d = DataDir::open(&deep, false).unwrap();
    assert_eq!(d.path(), deep);
    assert_eq!(mode(&deep) & 0o777, 0o750);
    assert_eq!(mode(&s.data()) & 0o777, 0o750);
    assert!(d.names().unwrap().is_empty());
}

#[test]
fn a_symlinked_data_dir_is_refused_unless_allowed() {
    let s = Scratch::new("dirlink");
    let real = s.root.join("outside");
    symlink(&real, s.data()).unwrap();
    let e = DataDir::open(&s.data(), false).unwrap_err();
    assert_eq!(
        e.to_string(),
        format!(
            "data dir `{}` is a symlink; refusing to follow it (point --data-dir at the real directory, or set [file] allow_unsafe_data_dir = true)",
            s.data().display()
        )
    );
    // A dangling symlink is refused too, and nothing is created at its target.
    let dangling = s.root.join("dangling");
    symlink(s.root.join("nowhere"), &dangling).unwrap();
    assert!(matches!(
        DataDir::open(&dangling, false),
        Err(DataDirError::Symlink { .. })
    ));
    assert!(!s.root.join("nowhere").exists());
    let d = DataDir::open(&s.data(), true).unwrap();
    d.write_file("x.json", b"{}").unwrap();
    assert_eq!(fs::read_to_string(real.join("x.json")).unwrap(), "{}");
}

#[test]
fn a_dir_others_may_write_is_refused_with_its_mode() {
    let s = Scratch::new("mode");
    for (m, who) in [
        (0o770, "group"),
        (0o757, "others"),
        (0o777, "group and others"),
        (0o1777, "group and others"),
    ] {
        let p = s.root.join(format!("d{m:o}"));
        fs::create_dir(&p).unwrap();
        fs::set_permissions(&p, fs::Permissions::from_mode(m)).unwrap();
        let e = DataDir::open(&p, false).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!(
                "data dir `{}` is writable by {who} (mode {m:04o}); refusing it (chmod go-w, or set [file] allow_unsafe_data_dir = true)",
                p.display()
            )
        );
        DataDir::open(&p, true).unwrap();
    }
    // Readable by others is fine; only writing matters.
    let p = s.root.join("d755");
    fs::create_dir(&p).unwrap();
    fs::set_permissions(&p, fs::Permissions::from_mode(0o755)).unwrap();
    DataDir::open(&p, false).unwrap();
}

#[test]
fn a_dir_owned_by_another_user_is_refused() {
    let p = Path::new("/d");
    assert!(check_owner_and_mode(p, 0o750, 1000, 1000).is_ok());
    assert!(check_owner_and_mode(p, 0o750, 0, 1000).is_ok());
    let e = check_owner_and_mode(p, 0o700, 1234, 0).unwrap_err();
    assert_eq!(
        e.to_string(),
        "data dir `/d` is owned by uid 1234, neither this agent's uid 0 nor root; refusing it (chown it, or set [file] allow_unsafe_data_dir = true)"
    );
}

#[test]
fn a_file_is_not_a_data_dir() {
    let s = Scratch::new("file");
    fs::write(s.data(), "").unwrap();
    let e = DataDir::open(&s.data(), false).unwrap_err();
    assert_eq!(
        e.to_string(),
        format!("data dir `{}` is not a directory", s.data().display())
    );
}

#[test]
fn writes_are_0640_atomic_and_replace_a_planted_symlink_without_following_it() {
    let s = Scratch::new("write");
    let d = DataDir::open(&s.data(), false).unwrap();
    let victim = s.victim("victim", "precious");
    symlink(&victim, s.data().join("a.json")).unwrap();
    let before = s.outside();
    d.write_file("a.json", b"new").unwrap();
    d.sync().unwrap();
    assert_eq!(s.outside(), before);
    let a = s.data().join("a.json");
    assert!(is_regular(&a));
    assert_eq!(mode(&a), 0o640);
    assert_eq!(fs::read_to_string(&a).unwrap(), "new");
    assert_eq!(d.names().unwrap(), vec!["a.json".to_owned()]);
}

#[test]
fn planted_temp_names_are_skipped_never_followed_and_bounded() {
    let s = Scratch::new("temp");
    let d = DataDir::open(&s.data(), false).unwrap();
    let victim = s.victim("victim", "precious");
    let pid = std::process::id();
    let temp = |seq: u32| s.data().join(format!(".b.json.{pid}.{seq}.7e577e57.tmp"));
    // The first three temp names are taken by symlinks to the victim.
    for seq in 0..3 {
        symlink(&victim, temp(seq)).unwrap();
    }
    let before = s.outside();
    d.write_file("b.json", b"one").unwrap();
    assert_eq!(s.outside(), before);
    assert_eq!(fs::read_to_string(s.data().join("b.json")).unwrap(), "one");
    for seq in 0..3 {
        assert!(fs::symlink_metadata(temp(seq)).unwrap().is_symlink());
    }
    // Every name of the next write (sequence 4 on: 3 was used) is taken: it
    // fails (EEXIST) after TEMP_ATTEMPTS tries, changing nothing.
    for seq in 4..4 + TEMP_ATTEMPTS {
        symlink(&victim, temp(seq)).unwrap();
    }
    let e = d.write_file("b.json", b"two").unwrap_err();
    assert_eq!(e.call, "openat");
    assert_eq!(e.source.raw_os_error(), Some(libc::EEXIST));
    assert_eq!(s.outside(), before);
    assert_eq!(fs::read_to_string(s.data().join("b.json")).unwrap(), "one");
}

#[test]
fn temp_files_left_behind_are_removed_at_open_and_links_not_followed() {
    let s = Scratch::new("stale");
    fs::create_dir(s.data()).unwrap();
    fs::set_permissions(s.data(), fs::Permissions::from_mode(0o750)).unwrap();
    let victim = s.victim("victim", "precious");
    fs::write(
        s.data().join(".01ARZ3NDEKTSV4RRFFQ69G5FAV.json.tmp"),
        "half",
    )
    .unwrap();
    symlink(&victim, s.data().join(".tapio-status.json.tmp")).unwrap();
    fs::write(s.data().join(".keep.tmp"), "operator's").unwrap();
    let before = s.outside();
    let d = DataDir::open(&s.data(), false).unwrap();
    assert_eq!(s.outside(), before);
    assert_eq!(d.names().unwrap(), vec![".keep.tmp".to_owned()]);
}

#[test]
fn remove_unlinks_a_symlink_not_its_target() {
    let s = Scratch::new("remove");
    let d = DataDir::open(&s.data(), false).unwrap();
    let victim = s.victim("victim", "precious");
    symlink(&victim, s.data().join("c.json")).unwrap();
    let before = s.outside();
    d.remove("c.json").unwrap();
    assert_eq!(s.outside(), before);
    assert!(d.names().unwrap().is_empty());
    for bad in ["", ".", "..", "../outside/victim", "a/b"] {
        assert_eq!(
            d.remove(bad).unwrap_err().raw_os_error(),
            Some(libc::EINVAL),
            "{bad}"
        );
        assert!(d.write_file(bad, b"x").is_err(), "{bad}");
    }
    assert_eq!(s.outside(), before);
}

#[test]
fn status_file_never_follows_symlinks_at_its_name_or_old_temp_name() {
    let s = Scratch::new("status");
    let d = DataDir::open(&s.data(), false).unwrap();
    let v1 = s.victim("status-victim", "precious 1");
    let v2 = s.victim("tmp-victim", "precious 2");
    symlink(&v1, s.data().join(STATUS_FILE)).unwrap();
    // Planted after open: earlier agents wrote this fixed temp name.
    symlink(&v2, s.data().join(format!("{STATUS_FILE}.tmp"))).unwrap();
    let before = s.outside();
    let state = AgentState::new(Arc::new(Counters::default()));
    state.write_status_file(&d).unwrap();
    state.write_status_file(&d).unwrap();
    assert_eq!(s.outside(), before);
    let p = s.data().join(STATUS_FILE);
    assert!(is_regular(&p));
    assert_eq!(mode(&p), 0o640);
    let st: AgentStatus = serde_json::from_slice(&fs::read(&p).unwrap()).unwrap();
    assert_eq!(st.pid, std::process::id());
    let mut names = d.names().unwrap();
    names.sort();
    assert_eq!(
        names,
        vec![STATUS_FILE.to_owned(), format!("{STATUS_FILE}.tmp")]
    );
}

#[test]
fn disk_full_is_recognised_by_errno() {
    let full = WriteError::new("write", std::io::Error::from_raw_os_error(libc::ENOSPC));
    let quota = WriteError::new("write", std::io::Error::from_raw_os_error(libc::EDQUOT));
    let other = WriteError::new("write", std::io::Error::from_raw_os_error(libc::EIO));
    assert!(full.is_disk_full() && quota.is_disk_full() && !other.is_disk_full());
}
