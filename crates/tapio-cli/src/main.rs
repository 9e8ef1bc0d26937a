//! `tapio`: the node-shell CLI and read-only MCP server over the agent's
//! local occurrence files. It never talks to the running agent.
//!
//! Exit codes:
//! - 0: success, including an empty result and a closed stdout (broken pipe)
//! - 1: runtime error (unreadable data directory, I/O error)
//! - 2: usage error (bad flag, bad `--since` or `--interval` value)
//! - 3: the data directory does not exist

mod cmd;
mod health;
mod mcp;
mod names;
mod query;
mod render;
mod report;
mod store;
mod window;

use std::error::Error as _;
use std::io::{self, BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tapio_common::Observer;

use crate::cmd::{CliError, Ctx};
use crate::store::StoreError;

/// Read Tapio's local occurrence files: status, live follow, recent
/// occurrences, observer health, and a read-only MCP server.
#[derive(Debug, Parser)]
#[command(name = "tapio", version, about, after_help = EXIT_CODES)]
struct Cli {
    /// Directory the agent's file sink writes to.
    #[arg(
        long,
        global = true,
        env = "TAPIO_DATA_DIR",
        default_value = "/var/lib/tapio/occurrences"
    )]
    data_dir: PathBuf,
    #[command(subcommand)]
    command: Command,
}

const EXIT_CODES: &str = "Exit codes: 0 success (also when stdout closes early), 1 runtime error, \
2 usage error, 3 data directory missing.";

#[derive(Debug, Subcommand)]
enum Command {
    /// Per-observer counts, last seen, and the agent's observer states.
    Status {
        /// One JSON object instead of text.
        #[arg(long)]
        json: bool,
        /// Also count per pod (the `pod_uid` the agent read from each
        /// occurrence's cgroup path).
        #[arg(long, value_parser = ["pod"])]
        by: Option<String>,
    },
    /// Follow new occurrences as they are written, like `tail -f`.
    Watch {
        /// Only network occurrences.
        #[arg(long)]
        network: bool,
        /// Only container occurrences.
        #[arg(long)]
        container: bool,
        /// Only storage occurrences.
        #[arg(long)]
        storage: bool,
        /// Only node (PMC) occurrences.
        #[arg(long)]
        node: bool,
        /// JSON lines instead of text.
        #[arg(long)]
        json: bool,
        /// How often to look for new files (100ms..=60s).
        #[arg(long, default_value = "1s")]
        interval: String,
        /// Existing occurrences to show first.
        #[arg(short = 'n', long, default_value_t = 10)]
        lines: usize,
    },
    /// Occurrences of a recent window, oldest first.
    Recent {
        /// Window start: a duration back from now (30s, 5m, 2h, 7d) or an RFC 3339 UTC time.
        #[arg(long, default_value = "1h")]
        since: String,
        /// Show only the newest N.
        #[arg(long)]
        limit: Option<usize>,
        /// JSON lines (the occurrence documents) instead of text.
        #[arg(long)]
        json: bool,
    },
    /// A verdict per observer with the rule that produced it, and the last hour per minute.
    Health {
        /// Only this observer.
        #[arg(value_parser = ["network", "container", "storage", "node"])]
        observer: Option<String>,
        /// One JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Serve a read-only MCP server (JSON-RPC 2.0) on stdin/stdout.
    Mcp,
}

fn run(cli: Cli) -> Result<(), CliError> {
    let ctx = Ctx {
        data_dir: cli.data_dir,
        style: render::Style::detect(),
        now_ns: window::now_ns(),
    };
    let stdout = io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    match cli.command {
        Command::Status { json, by } => cmd::status::run(&ctx, json, by.is_some(), &mut out),
        Command::Recent { since, limit, json } => {
            cmd::recent::run(&ctx, &since, limit, json, &mut out)
        }
        Command::Health { observer, json } => {
            let only = observer.as_deref().and_then(Observer::parse);
            cmd::health::run(&ctx, only, json, &mut out)
        }
        Command::Watch {
            network,
            container,
            storage,
            node,
            json,
            interval,
            lines,
        } => {
            let observers = [
                (network, Observer::Network),
                (container, Observer::Container),
                (storage, Observer::Storage),
                (node, Observer::Node),
            ]
            .into_iter()
            .filter_map(|(on, o)| on.then_some(o))
            .collect();
            let args = cmd::watch::WatchArgs {
                observers,
                json,
                interval,
                lines,
            };
            cmd::watch::run(&ctx, &args, &mut out)
        }
        Command::Mcp => {
            drop(out);
            mcp::serve(&ctx.data_dir, io::stdin().lock(), io::stdout().lock())
                .map_err(CliError::Output)
        }
    }
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(CliError::Output(e)) if e.kind() == io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => {
            let _ = io::stdout().flush();
            let mut msg = format!("tapio: {e}");
            let mut source = e.source();
            while let Some(s) = source {
                msg.push_str(&format!(": {s}"));
                source = s.source();
            }
            eprintln!("{msg}");
            match e {
                CliError::Store(StoreError::Missing { .. }) => {
                    eprintln!(
                        "tapio: start the agent with `--sink=file` (it writes to /var/lib/tapio/occurrences by default), \
                         or point --data-dir / TAPIO_DATA_DIR at its data directory"
                    );
                    ExitCode::from(3)
                }
                CliError::Window(_) => ExitCode::from(2),
                _ => ExitCode::FAILURE,
            }
        }
    }
}
