//! `tapio-controller profile validate|compile` and exit codes.

mod util;

use std::process::Command;

fn run(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(util::BIN).args(args).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

const VALID: &str = "apiVersion: tapio.dev/v1\nkind: EvidenceProfile\nmetadata:\n  name: production-default\nspec:\n  base: production-default\n";

#[test]
fn validate_and_compile_a_valid_profile() {
    let dir = util::temp_dir("cli-valid");
    let f = dir.join("p.yaml");
    std::fs::write(&f, VALID).unwrap();
    let f = f.to_str().unwrap();
    let (code, out, _) = run(&["profile", "validate", f]);
    assert_eq!(code, 0);
    let hash = tapio_wire::CompiledConfig::production_default().content_hash();
    assert!(out.contains("valid") && out.contains(&hash), "{out}");
    let (code, out, err) = run(&["profile", "compile", f]);
    assert_eq!(code, 0);
    let c: tapio_wire::CompiledConfig = serde_json::from_str(&out).unwrap();
    assert_eq!(c, tapio_wire::CompiledConfig::production_default());
    assert_eq!(err.trim(), format!("hash: {hash}"));
}

#[test]
fn invalid_profile_lists_every_problem_and_exits_1() {
    let dir = util::temp_dir("cli-invalid");
    let f = dir.join("p.yaml");
    std::fs::write(
        &f,
        "apiVersion: tapio.dev/v1\nkind: EvidenceProfile\nmetadata: {name: x}\nspec:\n  storage:\n    latencyWarningUs: 0\n    bogus: true\n  gpu: {}\n",
    )
    .unwrap();
    for sub in ["validate", "compile"] {
        let (code, out, err) = run(&["profile", sub, f.to_str().unwrap()]);
        assert_eq!(code, 1, "{err}");
        assert!(out.is_empty());
        // Regression: the problem list was printed twice (cause repeated in the message).
        assert_eq!(err.matches("3 problems").count(), 1, "{err}");
        assert!(
            err.contains("6:23: `spec.storage.latencyWarningUs`: 0 is out of range"),
            "{err}"
        );
        assert!(
            err.contains("7:5: `spec.storage.bogus`: unknown field"),
            "{err}"
        );
        assert!(err.contains("8:3: `spec.gpu`: unknown observer"), "{err}");
    }
}

#[test]
fn missing_file_exits_3_and_usage_error_exits_2() {
    let (code, _, err) = run(&["profile", "validate", "/nonexistent/p.yaml"]);
    assert_eq!(code, 3);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("/nonexistent/p.yaml"));
    assert_eq!(run(&["--no-such-flag"]).0, 2);
    assert_eq!(run(&["profile", "validate"]).0, 2);
    let (code, out, _) = run(&["--help"]);
    assert_eq!(code, 0);
    assert!(out.contains("Exit codes:"));
}

#[test]
fn invalid_profile_at_start_exits_1_and_bad_listen_exits_3() {
    let dir = util::temp_dir("cli-start");
    let f = dir.join("p.yaml");
    std::fs::write(&f, "kind: nope\n").unwrap();
    let (code, _, err) = run(&["--listen", "127.0.0.1:0", "--profile", f.to_str().unwrap()]);
    assert_eq!(code, 1, "{err}");
    // Not a local address: the bind fails (the open-door check passes with
    // the insecure flag, so this reaches the bind).
    let (code, _, err) = run(&["--listen", "192.0.2.1:1", "--insecure-no-auth"]);
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("cannot listen on"), "{err}");
}

/// `tapio-controller --listen ADDR` with no token anywhere in its
/// environment, run to its exit.
fn serve_without_token(listen: &str, extra: &[&str]) -> (i32, String, String) {
    let out = Command::new(util::BIN)
        .args(["--listen", listen])
        .args(extra)
        .env_remove("TAPIO_CONTROLLER_TOKEN")
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn non_loopback_listen_without_token_is_refused_with_exit_2() {
    for listen in ["0.0.0.0:0", "[::]:0", "192.0.2.1:8080"] {
        let (code, out, err) = serve_without_token(listen, &[]);
        assert_eq!(code, 2, "{listen}: {err}");
        assert_eq!(out, "");
        assert_eq!(
            err,
            format!(
                "tapio-controller: refusing to serve on non-loopback `{listen}` without a token: \
                 set --token-file or TAPIO_CONTROLLER_TOKEN, listen on 127.0.0.1/::1, or pass \
                 --insecure-no-auth\n"
            ),
            "{listen}"
        );
    }
    // An empty token is no token.
    let out = Command::new(util::BIN)
        .args(["--listen", "0.0.0.0:0"])
        .env("TAPIO_CONTROLLER_TOKEN", "  ")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn non_loopback_listen_with_a_token_serves_and_requires_it() {
    let dir = util::temp_dir("cli-open-token");
    let path = dir.join("token");
    std::fs::write(&path, "wide-token\n").unwrap();
    let c = util::Controller::start_on("0.0.0.0:0", &["--token-file", path.to_str().unwrap()], &[]);
    assert_eq!(c.get("/v1/status").status, 401);
    let ok = util::request(
        c.addr,
        "GET",
        "/v1/status",
        &[("authorization", "Bearer wide-token")],
        None,
    );
    assert_eq!(ok.status, 200, "{ok:?}");
    assert!(!c.log().contains("insecure"), "{}", c.log());
}

#[test]
fn insecure_no_auth_serves_openly_and_says_so() {
    let c = util::Controller::start_on("0.0.0.0:0", &["--insecure-no-auth"], &[]);
    assert_eq!(c.get("/v1/status").status, 200);
    let warning = c
        .log()
        .lines()
        .filter(|l| l.contains("WARN"))
        .map(str::to_owned)
        .collect::<Vec<_>>();
    assert_eq!(warning.len(), 1, "{}", c.log());
    assert!(
        warning[0].contains("--insecure-no-auth: serving without a token"),
        "{warning:?}"
    );
}

#[test]
fn loopback_needs_no_token_and_no_flag() {
    for listen in ["127.0.0.1:0", "[::1]:0"] {
        let c = util::Controller::start_on(listen, &[], &[]);
        assert_eq!(c.get("/v1/status").status, 200, "{listen}");
        assert!(!c.log().contains("WARN"), "{}", c.log());
    }
}
