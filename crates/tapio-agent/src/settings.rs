//! Agent settings: command-line flags over the TOML file (A7).
//!
//! Precedence: a flag beats the TOML file, which beats the built-in
//! default. Unknown TOML keys are rejected with their name. A missing
//! default config file is fine; a missing explicit one is an error.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::counters::SinkKind;
use crate::sinks::file::Retention;

/// Default TOML path.
pub const DEFAULT_CONFIG: &str = "/etc/tapio/tapio.toml";
/// Default eBPF object directory.
pub const DEFAULT_EBPF_DIR: &str = "/opt/tapio/ebpf";
/// Default occurrence directory of the file sink (absolute: never relative
/// to wherever the agent happens to be started).
pub const DEFAULT_DATA_DIR: &str = "/var/lib/tapio/occurrences";
/// Longest heartbeat interval (a day): far larger values overflowed the
/// clock when the next heartbeat was scheduled.
pub const MAX_HEARTBEAT_SECS: u64 = 86_400;

/// Command-line flags, parsed by [`crate::args`] (a new flag needs a row in
/// [`crate::args::FLAGS`] too).
#[derive(Debug, Default)]
pub struct Args {
    /// TOML config file [default: /etc/tapio/tapio.toml]
    pub config: Option<PathBuf>,
    /// Sink: stdout, file, http, controller or otlp (repeatable) [default: stdout]
    pub sinks: Vec<String>,
    /// Directory holding the compiled eBPF objects [default: /opt/tapio/ebpf]
    pub ebpf_dir: Option<PathBuf>,
    /// File sink output directory [default: /var/lib/tapio/occurrences]
    pub data_dir: Option<PathBuf>,
    /// HTTP sink endpoint (http://host:port/path)
    pub http_endpoint: Option<String>,
    /// Controller base URL (http://host:port)
    pub controller_endpoint: Option<String>,
    /// OTLP/HTTP collector base URL (http://host:4318); the otlp sink
    /// posts logs to <URL>/v1/logs. https:// is refused.
    pub otlp_endpoint: Option<String>,
    /// Controller heartbeat interval in seconds (minimum 5) [default: 10]
    pub heartbeat_interval: Option<u64>,
    /// Test only, never a default: drive the node observer's BPF program
    /// and maps with software perf events, labelled `software-test`.
    pub node_pmc_test_mode: Option<String>,
}

/// The TOML file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    sinks: Option<Vec<String>>,
    ebpf_dir: Option<PathBuf>,
    data_dir: Option<PathBuf>,
    http_endpoint: Option<String>,
    controller_endpoint: Option<String>,
    otlp_endpoint: Option<String>,
    heartbeat_interval: Option<u64>,
    log: Option<String>,
    compiled_config: Option<PathBuf>,
    shutdown_timeout_ms: Option<u64>,
    #[serde(default)]
    file: FileSection,
    #[serde(default)]
    metrics: MetricsSection,
    #[serde(default)]
    drain: DrainSection,
    #[serde(default)]
    network: NetworkSection,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct NetworkSection {
    rtt_hook: Option<String>,
}

/// `[network] rtt_hook`: where RTT samples come from
/// (`observers/network/rtt_hook.rs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RttHook {
    /// `auto` (default): an iterator over the owned sockets, run once per
    /// sample interval, where owners live in socket storage (no per-segment
    /// program at all); else a sock_ops program on the cgroup v2 root where
    /// one takes it (no per-segment cost for sockets Tapio did not see
    /// connect); else `tcp_probe`.
    Auto,
    /// `sock_ops`: the sock_ops program, else `tcp_probe`.
    SockOps,
    /// `tcp_probe`: always the per-segment tracepoint (no program runs at
    /// every socket's lifecycle callbacks; cheaper where short connections
    /// far outnumber segments, or where the cgroup root must stay clear).
    TcpProbe,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileSection {
    max_files: Option<usize>,
    max_age_secs: Option<u64>,
    allow_unsafe_data_dir: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct MetricsSection {
    enabled: Option<bool>,
    listen: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct DrainSection {
    tick_ms: Option<u64>,
    max_records_per_tick: Option<usize>,
}

/// Why the settings are unusable.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    /// The explicit config file could not be read.
    #[error("cannot read config `{path}`")]
    Read {
        /// Path.
        path: PathBuf,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// The TOML did not parse or has unknown keys.
    #[error("invalid config `{path}`: {message}")]
    Parse {
        /// Path.
        path: PathBuf,
        /// The parser's message, naming the key.
        message: String,
    },
    /// A value is out of range or inconsistent.
    #[error("{0}")]
    Invalid(String),
}

/// Effective agent settings.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Sinks, deduplicated, in the order given.
    pub sinks: Vec<SinkKind>,
    /// eBPF object directory.
    pub ebpf_dir: PathBuf,
    /// File sink directory.
    pub data_dir: PathBuf,
    /// HTTP sink endpoint.
    pub http_endpoint: Option<String>,
    /// Controller base URL.
    pub controller_endpoint: Option<String>,
    /// OTLP/HTTP collector base URL.
    pub otlp_endpoint: Option<String>,
    /// Heartbeat interval.
    pub heartbeat_interval: Duration,
    /// Log filter level.
    pub log: tracing::Level,
    /// File sink retention.
    pub retention: Retention,
    /// `[file] allow_unsafe_data_dir`: accept a data dir that is a symlink,
    /// owned by another user or writable by group/others.
    pub allow_unsafe_data_dir: bool,
    /// Metrics endpoint on/off.
    pub metrics_enabled: bool,
    /// Metrics listen address.
    pub metrics_listen: String,
    /// Drain tick.
    pub tick: Duration,
    /// Records drained per pass before yielding.
    pub max_records_per_tick: usize,
    /// Deadline for the flush on SIGTERM/SIGINT.
    pub shutdown_timeout: Duration,
    /// A CompiledConfig JSON file (`tapio-controller profile compile`
    /// output) applied instead of the built-in production-default.
    pub compiled_config: Option<PathBuf>,
    /// `--node-pmc-test-mode software`: node counters from software events.
    pub node_pmc_software_test: bool,
    /// `[network] rtt_hook`.
    pub rtt_hook: RttHook,
}

fn read_file(args: &Args) -> Result<FileConfig, SettingsError> {
    let (path, explicit) = match &args.config {
        Some(p) => (p.clone(), true),
        None => (PathBuf::from(DEFAULT_CONFIG), false),
    };
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if !explicit && e.kind() == std::io::ErrorKind::NotFound => {
            return Ok(FileConfig::default())
        }
        Err(source) => return Err(SettingsError::Read { path, source }),
    };
    parse_toml(&path, &text)
}

/// Parses the TOML text of `path`.
///
/// # Errors
/// Syntax errors and unknown keys, with the key's name and position.
pub fn parse_toml(path: &Path, text: &str) -> Result<FileConfig, SettingsError> {
    toml::from_str(text).map_err(|e| SettingsError::Parse {
        path: path.to_path_buf(),
        message: e.message().to_owned()
            + &e.span()
                .map(|s| format!(" (at byte {})", s.start))
                .unwrap_or_default(),
    })
}

impl Settings {
    /// Merges flags over the file over defaults and validates the result.
    ///
    /// # Errors
    /// Unreadable or invalid config, or invalid values.
    pub fn resolve(args: &Args) -> Result<Settings, SettingsError> {
        let file = read_file(args)?;
        Settings::merge(args, file)
    }

    /// [`Settings::resolve`] with the file already parsed.
    ///
    /// # Errors
    /// Invalid values.
    pub fn merge(args: &Args, file: FileConfig) -> Result<Settings, SettingsError> {
        let names = if args.sinks.is_empty() {
            file.sinks.unwrap_or_else(|| vec!["stdout".into()])
        } else {
            args.sinks.clone()
        };
        let mut sinks = Vec::new();
        for n in &names {
            let k = SinkKind::parse(n).ok_or_else(|| {
                SettingsError::Invalid(format!(
                    "unknown sink `{n}` (expected stdout, file, http, controller or otlp)"
                ))
            })?;
            if !sinks.contains(&k) {
                sinks.push(k);
            }
        }
        let http_endpoint = args.http_endpoint.clone().or(file.http_endpoint);
        let controller_endpoint = args
            .controller_endpoint
            .clone()
            .or(file.controller_endpoint);
        if sinks.contains(&SinkKind::Http) && http_endpoint.is_none() {
            return Err(SettingsError::Invalid(
                "sink `http` needs --http-endpoint".into(),
            ));
        }
        if sinks.contains(&SinkKind::Controller) && controller_endpoint.is_none() {
            return Err(SettingsError::Invalid(
                "sink `controller` needs --controller-endpoint".into(),
            ));
        }
        let otlp_endpoint = args.otlp_endpoint.clone().or(file.otlp_endpoint);
        if sinks.contains(&SinkKind::Otlp) {
            // Checked here, before any connection: `https://` never gets a
            // TCP connect or a header (D4).
            let url = otlp_endpoint.as_deref().ok_or_else(|| {
                SettingsError::Invalid("sink `otlp` needs --otlp-endpoint".into())
            })?;
            crate::http::Endpoint::parse(url)
                .map_err(|e| SettingsError::Invalid(format!("--otlp-endpoint: {e}")))?;
        }
        let hb = args
            .heartbeat_interval
            .or(file.heartbeat_interval)
            .unwrap_or(10);
        if hb < 5 {
            return Err(SettingsError::Invalid(format!(
                "--heartbeat-interval {hb} is below the minimum of 5 seconds"
            )));
        }
        if hb > MAX_HEARTBEAT_SECS {
            return Err(SettingsError::Invalid(format!(
                "--heartbeat-interval {hb} is above the maximum of {MAX_HEARTBEAT_SECS} seconds"
            )));
        }
        let log = match file.log.as_deref().unwrap_or("info") {
            "error" => tracing::Level::ERROR,
            "warn" => tracing::Level::WARN,
            "info" => tracing::Level::INFO,
            "debug" => tracing::Level::DEBUG,
            "trace" => tracing::Level::TRACE,
            other => {
                return Err(SettingsError::Invalid(format!(
                    "log level `{other}` is not one of error, warn, info, debug, trace"
                )))
            }
        };
        let tick_ms = file.drain.tick_ms.unwrap_or(200);
        if !(10..=1000).contains(&tick_ms) {
            return Err(SettingsError::Invalid(format!(
                "drain.tick_ms {tick_ms} is outside 10..=1000"
            )));
        }
        let max_records = file.drain.max_records_per_tick.unwrap_or(8192);
        if max_records == 0 {
            return Err(SettingsError::Invalid(
                "drain.max_records_per_tick must be at least 1".into(),
            ));
        }
        let rtt_hook = match file.network.rtt_hook.as_deref().unwrap_or("auto") {
            "auto" => RttHook::Auto,
            "sock_ops" => RttHook::SockOps,
            "tcp_probe" => RttHook::TcpProbe,
            other => {
                return Err(SettingsError::Invalid(format!(
                    "network.rtt_hook `{other}` is not one of auto, sock_ops, tcp_probe"
                )))
            }
        };
        let defaults = Retention::default();
        let retention = Retention {
            max_files: file.file.max_files.unwrap_or(defaults.max_files),
            max_age: file
                .file
                .max_age_secs
                .map_or(defaults.max_age, Duration::from_secs),
        };
        if retention.max_files == 0 {
            return Err(SettingsError::Invalid(
                "file.max_files must be at least 1".into(),
            ));
        }
        Ok(Settings {
            sinks,
            ebpf_dir: args
                .ebpf_dir
                .clone()
                .or(file.ebpf_dir)
                .unwrap_or_else(|| DEFAULT_EBPF_DIR.into()),
            data_dir: args
                .data_dir
                .clone()
                .or(file.data_dir)
                .unwrap_or_else(|| DEFAULT_DATA_DIR.into()),
            http_endpoint,
            controller_endpoint,
            otlp_endpoint,
            heartbeat_interval: Duration::from_secs(hb),
            log,
            retention,
            allow_unsafe_data_dir: file.file.allow_unsafe_data_dir.unwrap_or(false),
            metrics_enabled: file.metrics.enabled.unwrap_or(false),
            metrics_listen: file
                .metrics
                .listen
                .unwrap_or_else(|| "127.0.0.1:9464".into()),
            tick: Duration::from_millis(tick_ms),
            max_records_per_tick: max_records,
            shutdown_timeout: Duration::from_millis(file.shutdown_timeout_ms.unwrap_or(5000)),
            compiled_config: file.compiled_config,
            node_pmc_software_test: args.node_pmc_test_mode.is_some(),
            rtt_hook,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(v: &[&str]) -> Args {
        match crate::args::parse(v.iter().copied()) {
            Ok(crate::args::Parsed::Run(a)) => *a,
            other => panic!("{v:?}: {other:?}"),
        }
    }

    /// `heartbeat_interval = 9223372036854775807` resolved, then panicked
    /// the controller thread at `now + interval`; found by fuzzing.
    #[test]
    fn heartbeat_interval_has_a_maximum() {
        let file = parse_toml(
            Path::new("t.toml"),
            "heartbeat_interval = 9223372036854775807\n",
        )
        .unwrap();
        let err = Settings::merge(&Args::default(), file)
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "--heartbeat-interval 9223372036854775807 is above the maximum of 86400 seconds"
        );
        let file = parse_toml(Path::new("t.toml"), "heartbeat_interval = 86400\n").unwrap();
        let s = Settings::merge(&Args::default(), file).unwrap();
        assert_eq!(s.heartbeat_interval, Duration::from_secs(86_400));
    }

    fn toml_err(text: &str) -> String {
        parse_toml(Path::new("t.toml"), text)
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn unknown_keys_are_rejected_by_name() {
        assert!(
            toml_err("sinkz = [\"stdout\"]").contains("sinkz"),
            "{}",
            toml_err("sinkz = 1")
        );
        assert!(toml_err("[metrics]\nenable = true").contains("enable"));
        assert!(toml_err("[drain]\ntick = 5").contains("tick"));
    }

    #[test]
    fn flags_beat_the_file() {
        let f = parse_toml(
            Path::new("t"),
            "sinks = [\"file\"]\ndata_dir = \"/a\"\nheartbeat_interval = 30",
        )
        .unwrap();
        let s = Settings::merge(&args(&["--sink", "stdout", "--data-dir", "/b"]), f).unwrap();
        assert_eq!(s.sinks, vec![SinkKind::Stdout]);
        assert_eq!(s.data_dir, PathBuf::from("/b"));
        assert_eq!(s.heartbeat_interval, Duration::from_secs(30));
    }

    #[test]
    fn defaults_are_standalone_stdout() {
        let s = Settings::merge(&args(&[]), FileConfig::default()).unwrap();
        assert_eq!(s.sinks, vec![SinkKind::Stdout]);
        assert_eq!(s.data_dir, PathBuf::from("/var/lib/tapio/occurrences"));
        assert!(s.data_dir.is_absolute());
        assert!(!s.allow_unsafe_data_dir);
        assert!(!s.metrics_enabled);
        assert_eq!(s.metrics_listen, "127.0.0.1:9464");
    }

    #[test]
    fn invalid_values_say_what_is_wrong() {
        let e = Settings::merge(&args(&["--heartbeat-interval", "4"]), FileConfig::default())
            .unwrap_err();
        assert!(e.to_string().contains("minimum of 5"));
        let e = Settings::merge(&args(&["--sink", "kafka"]), FileConfig::default()).unwrap_err();
        assert!(e.to_string().contains("unknown sink `kafka`"));
        let e = Settings::merge(&args(&["--sink", "http"]), FileConfig::default()).unwrap_err();
        assert!(e.to_string().contains("--http-endpoint"));
    }

    #[test]
    fn rtt_hook_is_auto_unless_another_is_named() {
        let hook = |text: &str| {
            let file = parse_toml(Path::new("t.toml"), text).unwrap();
            Settings::merge(&args(&[]), file).map(|s| s.rtt_hook)
        };
        assert_eq!(hook("").unwrap(), RttHook::Auto);
        assert_eq!(
            hook("[network]\nrtt_hook = \"auto\"").unwrap(),
            RttHook::Auto
        );
        assert_eq!(
            hook("[network]\nrtt_hook = \"tcp_probe\"").unwrap(),
            RttHook::TcpProbe
        );
        assert_eq!(
            hook("[network]\nrtt_hook = \"sock_ops\"").unwrap(),
            RttHook::SockOps
        );
        let e = hook("[network]\nrtt_hook = \"kprobe\"").unwrap_err();
        assert_eq!(
            e.to_string(),
            "network.rtt_hook `kprobe` is not one of auto, sock_ops, tcp_probe"
        );
        assert!(toml_err("[network]\nhook = 1").contains("unknown field `hook`"));
    }

    #[test]
    fn otlp_needs_a_plain_http_endpoint() {
        let e = Settings::merge(&args(&["--sink", "otlp"]), FileConfig::default()).unwrap_err();
        assert!(e.to_string().contains("--otlp-endpoint"), "{e}");
        let e = Settings::merge(
            &args(&["--sink", "otlp", "--otlp-endpoint", "https://c:4318"]),
            FileConfig::default(),
        )
        .unwrap_err();
        assert!(e.to_string().contains("https is not supported"), "{e}");
        let f = parse_toml(Path::new("t"), "otlp_endpoint = \"http://otel:4318\"").unwrap();
        let s = Settings::merge(&args(&["--sink", "otlp"]), f).unwrap();
        assert_eq!(s.otlp_endpoint.as_deref(), Some("http://otel:4318"));
    }

    #[test]
    fn missing_default_file_is_fine_missing_explicit_file_is_not() {
        let s = Settings::resolve(&args(&["--config", "/nonexistent/tapio.toml"]));
        assert!(matches!(s, Err(SettingsError::Read { .. })));
    }
}
