//! `tapio-controller`: serves tapio-wire/v1 to Tapio agents, and validates
//! or compiles Evidence Profiles for operators.

use std::io::Write;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use tapio_controller::auth::Token;
use tapio_controller::config_state::{load_profile, ConfigState, LoadError, Reloaded};
use tapio_controller::metrics::Counters;
use tapio_controller::registry::Registry;
use tapio_controller::routes::App;
use tapio_controller::{server, Limits};
use tapio_wire::CompiledConfig;

const EXIT_CODES: &str = "Exit codes:
  0  success (serve: stopped by SIGTERM/SIGINT; validate/compile: profile is valid)
  1  the profile is invalid (every problem is printed with line:column)
  2  usage error (unknown flag, missing argument), or serving on a
     non-loopback address without a token and without --insecure-no-auth
  3  runtime error (unreadable file, cannot bind, bad token file)";

/// Tapio controller: distributes the compiled Evidence Profile to agents and
/// receives their hellos, heartbeats and event batches (tapio-wire/v1).
#[derive(Parser)]
#[command(version, after_help = EXIT_CODES, args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    serve: ServeArgs,
}

#[derive(Subcommand)]
enum Command {
    /// Validate or compile an EvidenceProfile file.
    #[command(subcommand, after_help = EXIT_CODES)]
    Profile(ProfileCommand),
}

#[derive(Subcommand)]
enum ProfileCommand {
    /// Check FILE against the EvidenceProfile v1 schema; print every problem.
    #[command(after_help = EXIT_CODES)]
    Validate {
        /// Profile YAML file.
        file: String,
    },
    /// Print the CompiledConfig JSON of FILE and its content hash.
    #[command(after_help = EXIT_CODES)]
    Compile {
        /// Profile YAML file.
        file: String,
    },
}

#[derive(Args)]
struct ServeArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// EvidenceProfile file; reloaded when it changes or on SIGHUP.
    /// Default: the built-in production-default.
    #[arg(long)]
    profile: Option<String>,
    /// File holding the shared Bearer token (else env TAPIO_CONTROLLER_TOKEN;
    /// neither = no authentication, accepted on a loopback --listen only).
    #[arg(long)]
    token_file: Option<String>,
    /// Serve without a token on a non-loopback --listen address: anyone who
    /// can reach the port may register agents, post events and read
    /// /v1/status.
    #[arg(long)]
    insecure_no_auth: bool,
    /// Largest request body, bytes.
    #[arg(long, default_value_t = 1 << 20)]
    max_body_bytes: u64,
    /// Most occurrences in one event batch.
    #[arg(long, default_value_t = 1_000)]
    max_batch_events: u32,
    /// Most open connections.
    #[arg(long, default_value_t = 4_096)]
    max_connections: usize,
    /// Most known agents.
    #[arg(long, default_value_t = 50_000)]
    max_agents: usize,
    /// Time to receive request headers, ms (slow clients are cut off).
    #[arg(long, default_value_t = 5_000)]
    header_timeout_ms: u64,
    /// Time to receive a request body, ms.
    #[arg(long, default_value_t = 10_000)]
    body_timeout_ms: u64,
    /// Forget agents silent for this long, seconds.
    #[arg(long, default_value_t = 600)]
    agent_ttl_secs: u64,
    /// Config poll interval told to agents, seconds.
    #[arg(long, default_value_t = 30)]
    config_poll_secs: u64,
    /// How often the profile file's mtime is checked, ms.
    #[arg(long, default_value_t = 2_000)]
    reload_interval_ms: u64,
    /// Log level: error, warn, info, debug, trace (trace logs every event
    /// payload). Env TAPIO_LOG overrides.
    #[arg(long, default_value = "info")]
    log_level: String,
}

/// Outcome that decides the exit code.
enum Failure {
    Invalid(anyhow::Error),
    Usage(String),
    Runtime(anyhow::Error),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Some(Command::Profile(ProfileCommand::Validate { file })) => validate(&file),
        Some(Command::Profile(ProfileCommand::Compile { file })) => compile(&file),
        None => serve(cli.serve),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Invalid(e)) => {
            eprintln!("tapio-controller: {e:#}");
            ExitCode::from(1)
        }
        Err(Failure::Usage(e)) => {
            eprintln!("tapio-controller: {e}");
            ExitCode::from(2)
        }
        Err(Failure::Runtime(e)) => {
            eprintln!("tapio-controller: {e:#}");
            ExitCode::from(3)
        }
    }
}

fn load(file: &str) -> Result<CompiledConfig, Failure> {
    load_profile(file).map_err(|e| match e {
        LoadError::Invalid { .. } | LoadError::TooLarge { .. } => Failure::Invalid(e.into()),
        LoadError::Read { .. } => Failure::Runtime(e.into()),
    })
}

/// Writes to stdout; a closed pipe (`| head`) is success.
fn print(text: &str) -> Result<(), Failure> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(Failure::Runtime(
            anyhow::Error::new(e).context("writing to stdout"),
        )),
        _ => Ok(()),
    }
}

fn validate(file: &str) -> Result<(), Failure> {
    let c = load(file)?;
    print(&format!(
        "{file}: valid (profile `{}`, {})\n",
        c.profile,
        c.content_hash()
    ))
}

fn compile(file: &str) -> Result<(), Failure> {
    let c = load(file)?;
    let json = serde_json::to_string_pretty(&c)
        .map_err(|e| Failure::Runtime(anyhow::Error::new(e).context("encoding CompiledConfig")))?;
    // stdout stays pure JSON so it can be saved as the agent's
    // `compiled_config` file; the hash goes to stderr.
    eprintln!("hash: {}", c.content_hash());
    print(&format!("{json}\n"))
}

fn init_logging(level: &str) -> anyhow::Result<()> {
    let level = std::env::var("TAPIO_LOG").unwrap_or_else(|_| level.to_owned());
    let max: tracing::Level = level.parse().map_err(|_| {
        anyhow::anyhow!("unknown log level `{level}` (error, warn, info, debug, trace)")
    })?;
    tracing_subscriber::fmt()
        .with_max_level(max)
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .init();
    Ok(())
}

fn token(args: &ServeArgs) -> anyhow::Result<Option<Token>> {
    if let Some(path) = &args.token_file {
        return Ok(Some(Token::from_file(path)?));
    }
    match std::env::var("TAPIO_CONTROLLER_TOKEN") {
        Ok(t) if !t.trim().is_empty() => Ok(Some(Token::new(&t, "TAPIO_CONTROLLER_TOKEN")?)),
        _ => Ok(None),
    }
}

/// Closed by default (the way Redis' protected mode is): serving on a
/// non-loopback address without a token is refused unless the operator says
/// `--insecure-no-auth`. Loopback needs nothing. Returns the one-line refusal.
fn open_door(listen: SocketAddr, has_token: bool, insecure: bool) -> Option<String> {
    if has_token || insecure || listen.ip().is_loopback() {
        return None;
    }
    Some(format!(
        "refusing to serve on non-loopback `{listen}` without a token: set --token-file or \
         TAPIO_CONTROLLER_TOKEN, listen on 127.0.0.1/::1, or pass --insecure-no-auth"
    ))
}

/// Raises the open-file soft limit to the hard limit: each connection is a
/// file descriptor.
fn raise_nofile() {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read/write the struct we pass.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &raw mut lim) == 0 && lim.rlim_cur < lim.rlim_max {
            lim.rlim_cur = lim.rlim_max;
            let _ = libc::setrlimit(libc::RLIMIT_NOFILE, &raw const lim);
        }
    }
}

fn serve(args: ServeArgs) -> Result<(), Failure> {
    let rt = |e: anyhow::Error| Failure::Runtime(e);
    init_logging(&args.log_level).map_err(rt)?;
    let config = match &args.profile {
        Some(path) => load(path)?,
        None => CompiledConfig::production_default(),
    };
    let token = token(&args).map_err(rt)?;
    if let Some(refusal) = open_door(args.listen, token.is_some(), args.insecure_no_auth) {
        return Err(Failure::Usage(refusal));
    }
    if token.is_none() && !args.listen.ip().is_loopback() {
        tracing::warn!(
            listen = %args.listen,
            "--insecure-no-auth: serving without a token; anyone who can reach the port can register agents, post events and read /v1/status"
        );
    }
    raise_nofile();
    let limits = Limits {
        max_body_bytes: args.max_body_bytes,
        max_batch_events: args.max_batch_events,
        max_connections: args.max_connections.max(1),
        max_agents: args.max_agents,
        header_read_timeout: Duration::from_millis(args.header_timeout_ms.max(1)),
        body_read_timeout: Duration::from_millis(args.body_timeout_ms.max(1)),
        agent_ttl: Duration::from_secs(args.agent_ttl_secs),
    };
    let app = Arc::new(App {
        config: ConfigState::new(config, args.profile.clone()),
        registry: Registry::new(limits.max_agents),
        counters: Counters::default(),
        limits,
        token,
        config_poll_secs: args.config_poll_secs.max(1),
        started: Instant::now(),
    });
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the tokio runtime")
        .map_err(rt)?;
    runtime.block_on(run(
        app,
        args.listen,
        Duration::from_millis(args.reload_interval_ms.max(100)),
    ))
}

async fn run(app: Arc<App>, listen: SocketAddr, reload_every: Duration) -> Result<(), Failure> {
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))
        .map_err(Failure::Runtime)?;
    let local = listener
        .local_addr()
        .map_err(|e| Failure::Runtime(e.into()))?;
    // Signal handlers before the start line: a SIGTERM or SIGHUP sent as
    // soon as the controller says it is listening must be handled, not take
    // the default action (regression: SIGTERM right after start killed it).
    let shutdown = shutdown_signal();
    let hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
    let cur = app.config.current();
    tracing::info!(
        generation = cur.generation,
        hash = %cur.hash,
        profile = %cur.profile,
        auth = app.token.is_some(),
        "tapio-controller listening on {local}"
    );
    tokio::spawn(reloader(Arc::clone(&app), reload_every, hup));
    server::serve(listener, app, shutdown).await;
    tracing::info!("tapio-controller stopped");
    Ok(())
}

/// Registers the SIGTERM and SIGINT handlers now; the future resolves on
/// the first of them.
fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    use tokio::signal::unix::{signal, SignalKind};
    let term = signal(SignalKind::terminate()).ok();
    let int = signal(SignalKind::interrupt()).ok();
    async move {
        let recv = |s: Option<tokio::signal::unix::Signal>| async move {
            match s {
                Some(mut s) => {
                    s.recv().await;
                }
                None => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            () = recv(term) => {}
            () = recv(int) => {}
        }
    }
}

/// Reloads the profile on SIGHUP or when its file changes; expires silent
/// agents on the same tick.
async fn reloader(app: Arc<App>, every: Duration, mut hup: Option<tokio::signal::unix::Signal>) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let by_signal = tokio::select! {
            _ = tick.tick() => false,
            Some(()) = async { match hup.as_mut() { Some(h) => h.recv().await, None => std::future::pending().await } } => true,
        };
        if by_signal || app.config.file_changed() {
            let why = if by_signal { "sighup" } else { "file_changed" };
            match app.config.reload() {
                Ok(Reloaded::Changed(g)) => {
                    let cur = app.config.current();
                    tracing::info!(reason = why, generation = g, hash = %cur.hash, "profile reloaded");
                }
                Ok(Reloaded::Unchanged) => {
                    tracing::info!(
                        reason = why,
                        "profile reloaded: content unchanged, generation kept"
                    );
                }
                Err(e) => tracing::error!(
                    reason = why,
                    "profile reload rejected, keeping the current config: {e}"
                ),
            }
        }
        let expired = app.registry.expire(app.limits.agent_ttl);
        if expired > 0 {
            app.counters
                .agents_expired
                .fetch_add(expired as u64, std::sync::atomic::Ordering::Relaxed);
            tracing::info!(expired, "agents expired after their TTL");
        }
    }
}
