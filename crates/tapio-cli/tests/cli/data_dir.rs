//! The data directory: missing, empty, named by the environment, a file
//! instead of a directory, or holding a FIFO.

use std::process::Command;

use super::util::*;
use super::{fixture, MIN};

#[test]
fn missing_directory_exits_3_with_a_hint() {
    let d = tempdir("missing").join("nope");
    for cmd in [&["status"][..], &["recent"], &["health"]] {
        let o = tapio(&d, cmd);
        assert_eq!(o.status.code(), Some(3), "{cmd:?}");
        assert_eq!(stdout(&o), "");
        assert_text(
            &stderr(&o),
            &format!(
                "tapio: no data directory at `{}`\n\
                 tapio: start the agent with `--sink=file` (it writes to /var/lib/tapio/occurrences by default), \
                 or point --data-dir / TAPIO_DATA_DIR at its data directory\n",
                d.display()
            ),
        );
    }
}

#[test]
fn empty_directory_gets_a_hint_not_an_error() {
    let d = tempdir("empty");
    let o = tapio(&d, &["status"]);
    assert_eq!(o.status.code(), Some(0));
    assert!(stdout(&o).contains("total facts=0 occurrences=0\n"));
    assert_eq!(
        stderr(&o),
        format!(
            "tapio: no occurrences in `{0}` yet (the agent writes them there with `--sink=file --data-dir {0}`)\n",
            d.display()
        )
    );
    let o = tapio(&d, &["recent"]);
    assert_eq!((o.status.code(), stdout(&o).as_str()), (Some(0), ""));
    assert!(stderr(&o).starts_with("tapio: no occurrences in"));
}

#[test]
fn data_dir_comes_from_the_environment() {
    let d = fixture("env");
    let o = Command::new(bin())
        .args(["recent", "--since", "5m"])
        .env("TAPIO_DATA_DIR", &d)
        .env("TAPIO_NOW", NOW)
        .output()
        .unwrap();
    assert_eq!(stdout(&o).lines().count(), 2);
}

#[test]
fn data_dir_that_is_a_file_is_an_error() {
    let d = tempdir("file");
    let f = d.join("occurrences");
    std::fs::write(&f, "x").unwrap();
    let o = tapio(&f, &["status"]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        stderr(&o),
        format!("tapio: `{}` is not a directory\n", f.display())
    );
}

// A FIFO with an occurrence name used to be a way to hang a reader on open().
#[test]
fn fifo_in_the_data_dir_does_not_hang() {
    let d = tempdir("fifo");
    put(
        &d,
        NOW_MS - MIN,
        1,
        "kernel.node.cpu_stall",
        "warning",
        "CPU_STALL",
        r#","stall_ratio_pct":80"#,
    );
    let fifo = d.join(format!("{}.json", ulid(NOW_MS - MIN, 2)));
    assert!(Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    let o = tapio(&d, &["recent", "--since", "5m"]);
    assert_eq!(o.status.code(), Some(0));
    assert_text(
        &stdout(&o),
        "2026-04-03T14:29:00.000Z warning kernel.node.cpu_stall count=1 stall_ratio_pct=80\n",
    );
    assert_eq!(
        stderr(&o),
        format!(
            "tapio: skipped 1 of 2 files in `{}`: 1 irregular (not a regular file)\n",
            d.display()
        )
    );
}
