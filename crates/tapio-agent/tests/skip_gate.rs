//! No silent skips: a real-kernel test that cannot run fails unless the
//! person running the tests asked for skips (`TAPIO_SKIP_KERNEL_TESTS=1`),
//! and never skips under CI. Drives a real-kernel test's gate as an
//! unprivileged user (uid 65534) through this test binary itself.
//! Regression: outside CI a missing privilege printed `SKIP` to hidden
//! stderr and counted as passed.

mod support;

use std::process::Command;

/// Run only by the test below (as another user): meets the real-kernel gate.
#[test]
#[ignore = "driven by needs_root_fails_unless_skips_are_asked_for_and_never_under_ci"]
fn helper_meets_the_real_kernel_gate() {
    if support::kernel_test(&[]).is_none() {
        return;
    }
    panic!("the gate let an unprivileged run through");
}

fn run_as_nobody(env: &[(&str, &str)]) -> (Option<i32>, String) {
    let mut cmd = Command::new("setpriv");
    cmd.args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "helper_meets_the_real_kernel_gate",
            "--ignored",
            "--nocapture",
        ])
        .env_remove("CI")
        .env_remove("TAPIO_SKIP_KERNEL_TESTS");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run setpriv");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
    )
}

#[test]
fn needs_root_fails_unless_skips_are_asked_for_and_never_under_ci() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        support::cannot_run("skip_gate switches to uid 65534: needs root");
        return;
    }
    let (code, text) = run_as_nobody(&[]);
    assert_eq!(code, Some(101), "{text}");
    assert!(text.contains("real-kernel test needs root"), "{text}");

    let (code, text) = run_as_nobody(&[("TAPIO_SKIP_KERNEL_TESTS", "1")]);
    assert_eq!(code, Some(0), "{text}");
    assert!(
        text.contains(
            "SKIP skip_gate::helper_meets_the_real_kernel_gate: real-kernel test needs root"
        ),
        "{text}"
    );

    let (code, text) = run_as_nobody(&[("TAPIO_SKIP_KERNEL_TESTS", "1"), ("CI", "true")]);
    assert_eq!(code, Some(101), "{text}");
}
