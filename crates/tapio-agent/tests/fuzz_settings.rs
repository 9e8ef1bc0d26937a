//! Fuzz target: the agent's TOML settings file, parsed and merged over
//! default flags as at start. `scripts/fuzz.sh` runs it with a budget.
//!
//! Oracles: no panic; an error names the file or the value; settings that
//! resolve are usable: every duration can be added to the clock (a
//! `heartbeat_interval` of `i64::MAX` seconds made the controller thread
//! panic at its first heartbeat), and the endpoints a sink needs parse.

use std::path::Path;
use std::time::Instant;

use tapio_agent::http::Endpoint;
use tapio_agent::settings::{parse_toml, Args, Settings, SettingsError};
use tapio_fuzz::{Fuzzer, Verdict};

const SEEDS: &[&str] = &[
    "",
    "sinks = [\"stdout\"]\n",
    "sinks = [\"file\", \"http\", \"controller\"]\nhttp_endpoint = \"http://collector:8080/ingest\"\ncontroller_endpoint = \"http://[fe80::1]:8080\"\nheartbeat_interval = 30\nlog = \"debug\"\ndata_dir = \"/var/lib/tapio/occurrences\"\nebpf_dir = \"/opt/tapio/ebpf\"\n",
    "sinks = [\"otlp\"]\notlp_endpoint = \"http://127.0.0.1:4318\"\nshutdown_timeout_ms = 2000\ncompiled_config = \"/etc/tapio/compiled.json\"\n",
    "[file]\nmax_files = 1000\nmax_age_secs = 3600\n\n[metrics]\nenabled = true\nlisten = \"127.0.0.1:9464\"\n\n[drain]\ntick_ms = 100\nmax_records_per_tick = 4096\n",
    "log = 'warn'\n# comment\nsinks = ['file']\n[drain]\ntick_ms = 1000\n",
    "[network]\nrtt_hook = \"tcp_probe\"\n",
];

const TOKENS: &[&[u8]] = &[
    b"=",
    b" = ",
    b"\n",
    b"[",
    b"]",
    b"[[",
    b"]]",
    b"{",
    b"}",
    b",",
    b"\"",
    b"'",
    b"'''",
    b"\"\"\"",
    b"#",
    b".",
    b"\\",
    b"\\u0000",
    b"true",
    b"false",
    b"inf",
    b"nan",
    b"1979-05-27T07:32:00Z",
    b"0x10",
    b"1_000",
    b"sinks",
    b"http_endpoint",
    b"controller_endpoint",
    b"otlp_endpoint",
    b"heartbeat_interval",
    b"shutdown_timeout_ms",
    b"log",
    b"data_dir",
    b"ebpf_dir",
    b"compiled_config",
    b"[file]",
    b"[metrics]",
    b"[drain]",
    b"max_files",
    b"max_age_secs",
    b"enabled",
    b"listen",
    b"tick_ms",
    b"max_records_per_tick",
    b"[network]",
    b"rtt_hook",
    b"\"auto\"",
    b"\"tcp_probe\"",
    b"\"http\"",
    b"\"controller\"",
    b"\"otlp\"",
    b"\"file\"",
    b"http://[::1]:1",
    b"https://a",
    b"unknown_key",
];

#[test]
fn fuzz_settings_toml() {
    let mut f = Fuzzer::new(
        "settings_toml",
        SEEDS.iter().map(|s| s.as_bytes().to_vec()).collect(),
        1,
    );
    f.tokens = TOKENS.to_vec();
    f.max_len = 8 * 1024;
    let args = Args::default();
    let path = Path::new("/etc/tapio/tapio.toml");
    f.run(|input| {
        let Ok(text) = std::str::from_utf8(input) else {
            return Verdict::drop("not_utf8");
        };
        let file = match parse_toml(path, text) {
            Ok(file) => file,
            Err(e @ SettingsError::Parse { .. }) => {
                assert!(e
                    .to_string()
                    .starts_with("invalid config `/etc/tapio/tapio.toml`: "));
                return Verdict::drop("parse_error");
            }
            Err(e) => panic!("parse_toml gave {e:?}"),
        };
        let s = match Settings::merge(&args, file) {
            Ok(s) => s,
            Err(SettingsError::Invalid(why)) => {
                assert!(!why.is_empty());
                return Verdict::keep("invalid_value");
            }
            Err(e) => panic!("merge gave {e:?}"),
        };
        let now = Instant::now();
        for (what, d) in [
            ("heartbeat_interval", s.heartbeat_interval),
            ("shutdown_timeout", s.shutdown_timeout),
            ("tick", s.tick),
        ] {
            assert!(
                now.checked_add(d).is_some(),
                "{what} {d:?} overflows the clock"
            );
        }
        assert!(s.heartbeat_interval.as_secs() >= 5 && s.max_records_per_tick >= 1);
        if let Some(u) = &s.otlp_endpoint {
            if s.sinks.iter().any(|k| format!("{k:?}") == "Otlp") {
                assert!(Endpoint::parse(u).is_ok(), "{u}");
            }
        }
        for u in [&s.http_endpoint, &s.controller_endpoint]
            .into_iter()
            .flatten()
        {
            let _ = Endpoint::parse(u);
        }
        Verdict::keep("resolved")
    });
}
