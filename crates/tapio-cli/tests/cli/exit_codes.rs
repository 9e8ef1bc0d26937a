//! Exit codes and usage: a bad argument, a closed stdout, and `--help`.

use std::io::Read;
use std::process::{Command, Stdio};

use super::util::*;
use super::{fixture, MIN};

#[test]
fn bad_since_is_a_usage_error() {
    let d = fixture("bad-since");
    let o = tapio(&d, &["recent", "--since", "5 minutes"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).starts_with("tapio: `5 minutes` is not a duration"),
        "{}",
        stderr(&o)
    );
}

// A closed stdout (`tapio recent | head -1`) used to be reported as an error.
#[test]
fn broken_pipe_is_success() {
    let d = tempdir("pipe");
    for i in 0..3000u64 {
        put(
            &d,
            NOW_MS - 30 * MIN + i,
            u128::from(i),
            "kernel.network.connection_refused",
            "warning",
            "CONNECTION_REFUSED",
            r#","dst_port":1"#,
        );
    }
    let mut child = Command::new(bin())
        .arg("--data-dir")
        .arg(&d)
        .arg("recent")
        .env("TAPIO_NOW", NOW)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = [0u8; 10];
    child
        .stdout
        .as_mut()
        .unwrap()
        .read_exact(&mut first)
        .unwrap();
    drop(child.stdout.take());
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(stderr(&o), "");
}

#[test]
fn help_documents_the_exit_codes() {
    let o = Command::new(bin()).arg("--help").output().unwrap();
    assert_eq!(o.status.code(), Some(0));
    assert!(stdout(&o).contains(
        "Exit codes: 0 success (also when stdout closes early), 1 runtime error, 2 usage error, 3 data directory missing."
    ));
    let o = Command::new(bin()).arg("--bogus").output().unwrap();
    assert_eq!(o.status.code(), Some(2));
}
