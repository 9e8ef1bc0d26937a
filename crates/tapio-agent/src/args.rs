//! Command-line flag parser of the agent: `--name value` / `--name=value`
//! into [`Args`], `--help`, `--version`.
//!
//! Hand-written because clap (derive, help, usage, error context) cost
//! ~180 KB of the agent's release binary, measured with everything else
//! equal, against a 1.25 MB target (H1); the agent has nine long flags and
//! no subcommands. A flag is added in two places: a field of [`Args`] and a
//! row of [`FLAGS`] (the help text is generated from the rows, and a unit
//! test checks every row parses).
//!
//! ## Design constraints
//! - Long flags only, plus `-h`/`-V`; no positional arguments. Every flag
//!   takes one value; `--sink` may repeat, the others may appear once.
//! - Every error names the flag and the offending value; `main` prints it
//!   with a pointer to `--help` and exits 2, as for a bad config.

use std::ffi::OsString;
use std::fmt::Write as _;
use std::path::PathBuf;

use crate::settings::Args;

/// One flag: `--<name> <VALUE>`.
#[derive(Debug, Clone, Copy)]
pub struct Flag {
    /// Long name without the dashes.
    pub name: &'static str,
    /// Value placeholder in the help.
    pub value: &'static str,
    /// Help line.
    pub help: &'static str,
    /// Left out of `--help` (test-only flags).
    pub hidden: bool,
}

const fn flag(name: &'static str, value: &'static str, help: &'static str) -> Flag {
    Flag {
        name,
        value,
        help,
        hidden: false,
    }
}

/// Every flag, in help order.
pub const FLAGS: &[Flag] = &[
    flag(
        "config",
        "PATH",
        "TOML config file [default: /etc/tapio/tapio.toml]",
    ),
    flag(
        "sink",
        "NAME",
        "Sink: stdout, file, http, controller or otlp (repeatable) [default: stdout]",
    ),
    flag(
        "ebpf-dir",
        "PATH",
        "Directory holding the compiled eBPF objects [default: /opt/tapio/ebpf]",
    ),
    flag(
        "data-dir",
        "PATH",
        "File sink output directory [default: /var/lib/tapio/occurrences]",
    ),
    flag(
        "http-endpoint",
        "URL",
        "HTTP sink endpoint (http://host:port/path)",
    ),
    flag(
        "controller-endpoint",
        "URL",
        "Controller base URL (http://host:port)",
    ),
    flag(
        "otlp-endpoint",
        "URL",
        "OTLP/HTTP collector base URL (http://host:4318); logs go to <URL>/v1/logs; https:// is refused",
    ),
    flag(
        "heartbeat-interval",
        "SECONDS",
        "Controller heartbeat interval in seconds (minimum 5) [default: 10]",
    ),
    Flag {
        name: "node-pmc-test-mode",
        value: "MODE",
        help: "Test only (debug builds): drive the node observer with software perf events (`software`)",
        hidden: true,
    },
];

const ABOUT: &str = "Tapio node agent: emits kernel.* evidence from eBPF observers";
const EXIT_CODES: &str = "Exit codes: 0 clean stop (SIGTERM/SIGINT), 1 runtime failure, 2 bad flags or config (an unsafe data dir included), 3 host cannot run the agent (kernel, BTF, capability, or no observer could load: one line per observer says why).";

/// What the command line asks for.
#[derive(Debug)]
pub enum Parsed {
    /// Run with these flags.
    Run(Box<Args>),
    /// `--help` / `-h`.
    Help,
    /// `--version` / `-V`.
    Version,
}

/// Why the command line is unusable.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ArgsError {
    /// Not a known flag (or a positional argument).
    #[error("unexpected argument `{0}`")]
    Unknown(String),
    /// A flag without its value.
    #[error("`--{0}` needs a value")]
    MissingValue(&'static str),
    /// A flag that may appear once appeared again.
    #[error("`--{0}` given more than once")]
    Repeated(&'static str),
    /// A value that does not parse.
    #[error("invalid value `{value}` for `--{flag}`: {expected}")]
    Invalid {
        /// The flag.
        flag: &'static str,
        /// The value as given.
        value: String,
        /// What was expected.
        expected: &'static str,
    },
    /// An argument that is not valid UTF-8.
    #[error("argument `{0}` is not valid UTF-8")]
    NotUtf8(String),
}

/// The `--help` text.
#[must_use]
pub fn help() -> String {
    let mut s = format!("{ABOUT}\n\nUsage: tapio-agent [OPTIONS]\n\nOptions:\n");
    for f in FLAGS.iter().filter(|f| !f.hidden) {
        let left = format!("--{} <{}>", f.name, f.value);
        let _ = writeln!(s, "      {left:<32} {}", f.help);
    }
    let _ = writeln!(s, "  -h, --help{:<26} Print help", "");
    let _ = writeln!(s, "  -V, --version{:<23} Print version", "");
    let _ = writeln!(s, "\n{EXIT_CODES}");
    s
}

/// The `--version` line.
#[must_use]
pub fn version() -> String {
    format!("tapio-agent {}\n", env!("CARGO_PKG_VERSION"))
}

fn set<T>(slot: &mut Option<T>, name: &'static str, v: T) -> Result<(), ArgsError> {
    if slot.is_some() {
        return Err(ArgsError::Repeated(name));
    }
    *slot = Some(v);
    Ok(())
}

fn apply(a: &mut Args, f: &Flag, value: String) -> Result<(), ArgsError> {
    let name = f.name;
    match name {
        "config" => set(&mut a.config, name, PathBuf::from(value)),
        "sink" => {
            a.sinks.push(value);
            Ok(())
        }
        "ebpf-dir" => set(&mut a.ebpf_dir, name, PathBuf::from(value)),
        "data-dir" => set(&mut a.data_dir, name, PathBuf::from(value)),
        "http-endpoint" => set(&mut a.http_endpoint, name, value),
        "controller-endpoint" => set(&mut a.controller_endpoint, name, value),
        "otlp-endpoint" => set(&mut a.otlp_endpoint, name, value),
        "heartbeat-interval" => {
            let n = value.parse::<u64>().map_err(|_| ArgsError::Invalid {
                flag: name,
                value: value.clone(),
                expected: "a whole number of seconds",
            })?;
            set(&mut a.heartbeat_interval, name, n)
        }
        // A test mode: debug builds (what the tests run) only, so a release
        // agent never emits evidence from software events.
        "node-pmc-test-mode" if cfg!(debug_assertions) => {
            if value != "software" {
                return Err(ArgsError::Invalid {
                    flag: name,
                    value,
                    expected: "the only mode is `software`",
                });
            }
            set(&mut a.node_pmc_test_mode, name, value)
        }
        _ => Err(ArgsError::Unknown(format!("--{name}"))),
    }
}

/// Parses the arguments after the program name.
///
/// # Errors
/// Unknown flags, missing or invalid values, repeated flags, non-UTF-8.
pub fn parse<I, T>(argv: I) -> Result<Parsed, ArgsError>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString>,
{
    let mut a = Args::default();
    let mut it = argv.into_iter().map(Into::into);
    while let Some(raw) = it.next() {
        let arg = raw
            .into_string()
            .map_err(|s| ArgsError::NotUtf8(s.to_string_lossy().into_owned()))?;
        match arg.as_str() {
            "-h" | "--help" => return Ok(Parsed::Help),
            "-V" | "--version" => return Ok(Parsed::Version),
            _ => {}
        }
        let Some(body) = arg.strip_prefix("--") else {
            return Err(ArgsError::Unknown(arg));
        };
        let (name, inline) = match body.split_once('=') {
            Some((n, v)) => (n, Some(v.to_owned())),
            None => (body, None),
        };
        let f = FLAGS
            .iter()
            .find(|f| f.name == name)
            .ok_or_else(|| ArgsError::Unknown(arg.clone()))?;
        let value = match inline {
            Some(v) => v,
            None => it
                .next()
                .ok_or(ArgsError::MissingValue(f.name))?
                .into_string()
                .map_err(|s| ArgsError::NotUtf8(s.to_string_lossy().into_owned()))?,
        };
        apply(&mut a, f, value)?;
    }
    Ok(Parsed::Run(Box::new(a)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(v: &[&str]) -> Args {
        match parse(v.iter().copied()) {
            Ok(Parsed::Run(a)) => *a,
            other => panic!("{v:?}: {other:?}"),
        }
    }

    #[test]
    fn every_flag_parses_in_both_spellings() {
        let a = run(&[
            "--config",
            "/c.toml",
            "--sink=stdout",
            "--sink",
            "file",
            "--ebpf-dir=/e",
            "--data-dir",
            "/d",
            "--http-endpoint",
            "http://h/x",
            "--controller-endpoint=http://c:8080",
            "--otlp-endpoint",
            "http://o:4318",
            "--heartbeat-interval=30",
            "--node-pmc-test-mode",
            "software",
        ]);
        assert_eq!(a.config, Some(PathBuf::from("/c.toml")));
        assert_eq!(a.sinks, ["stdout", "file"]);
        assert_eq!(a.ebpf_dir, Some(PathBuf::from("/e")));
        assert_eq!(a.data_dir, Some(PathBuf::from("/d")));
        assert_eq!(a.http_endpoint.as_deref(), Some("http://h/x"));
        assert_eq!(a.controller_endpoint.as_deref(), Some("http://c:8080"));
        assert_eq!(a.otlp_endpoint.as_deref(), Some("http://o:4318"));
        assert_eq!(a.heartbeat_interval, Some(30));
        assert_eq!(a.node_pmc_test_mode.as_deref(), Some("software"));
    }

    #[test]
    fn every_row_of_the_table_is_wired_to_a_field() {
        for f in FLAGS {
            let v = match f.name {
                "heartbeat-interval" => "10",
                "node-pmc-test-mode" => "software",
                _ => "x",
            };
            let r = parse([format!("--{}", f.name), v.to_owned()]);
            assert!(matches!(r, Ok(Parsed::Run(_))), "--{}: {r:?}", f.name);
        }
    }

    #[test]
    fn errors_name_the_flag_and_the_value() {
        let e = |v: &[&str]| parse(v.iter().copied()).unwrap_err().to_string();
        assert_eq!(e(&["--bogus"]), "unexpected argument `--bogus`");
        assert_eq!(e(&["stdout"]), "unexpected argument `stdout`");
        assert_eq!(e(&["--config"]), "`--config` needs a value");
        assert_eq!(
            e(&["--config", "a", "--config=b"]),
            "`--config` given more than once"
        );
        assert_eq!(
            e(&["--heartbeat-interval", "ten"]),
            "invalid value `ten` for `--heartbeat-interval`: a whole number of seconds"
        );
        assert!(e(&["--node-pmc-test-mode", "hw"]).contains("`software`"));
    }

    #[test]
    fn help_and_version_win_and_hide_test_flags() {
        assert!(matches!(parse(["--sink", "x", "-h"]), Ok(Parsed::Help)));
        assert!(matches!(parse(["--version"]), Ok(Parsed::Version)));
        let h = help();
        assert!(h.contains("--otlp-endpoint <URL>"));
        assert!(h.contains("Exit codes: 0 clean stop"));
        assert!(!h.contains("node-pmc-test-mode"));
        assert_eq!(
            version(),
            format!("tapio-agent {}\n", env!("CARGO_PKG_VERSION"))
        );
    }
}
