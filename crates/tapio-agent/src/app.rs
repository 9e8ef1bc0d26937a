//! The agent's life: preflight, load observers, apply the config, drain
//! until SIGTERM/SIGINT, flush within the deadline (A9).

use std::sync::Arc;
use std::time::Instant;

use tapio_common::status::ObserverState;
use tapio_common::{Observer, Sink};
use tapio_wire::CompiledConfig;
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::{mpsc, watch};

use crate::counters::{Counters, SinkKind};
use crate::drain::{ApplyResult, ConfigUpdate, ObserverTask};
use crate::loader::{kernel_btf, LoadedObject};
use crate::observers::{attach_special, classifier};
use crate::settings::Settings;
use crate::sinks::file::FileSink;
use crate::sinks::stdout::StdoutSink;
use crate::sinks::{error_chain, Fanout};
use crate::state::{AgentState, AppliedConfig};

/// Why the agent stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// A sink could not be opened.
    #[error("sink `{sink}` could not start")]
    Sink {
        /// Sink.
        sink: &'static str,
        /// Cause.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The sink is not part of this build.
    #[error("sink `{0}` is not available in this build")]
    SinkUnavailable(&'static str),
    /// No observer could start.
    #[error("no observer could start: {0}")]
    NoObserver(String),
    /// The local CompiledConfig file is unusable.
    #[error("compiled config `{path}`: {message}")]
    CompiledConfig {
        /// Path.
        path: std::path::PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A system call failed.
    #[error("`{call}` failed")]
    Sys {
        /// The call.
        call: &'static str,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
}

fn open_sinks(s: &Settings) -> Result<Vec<(SinkKind, Box<dyn Sink>)>, RunError> {
    let mut out: Vec<(SinkKind, Box<dyn Sink>)> = Vec::new();
    for &k in &s.sinks {
        let sink: Box<dyn Sink> = match k {
            SinkKind::Stdout => Box::new(StdoutSink::new()),
            SinkKind::File => {
                Box::new(
                    FileSink::open(&s.data_dir, s.retention).map_err(|e| RunError::Sink {
                        sink: "file",
                        source: Box::new(e),
                    })?,
                )
            }
            SinkKind::Http | SinkKind::Controller | SinkKind::Otlp => {
                return Err(RunError::SinkUnavailable(k.as_str()))
            }
        };
        out.push((k, sink));
    }
    Ok(out)
}

/// The config a standalone agent starts with: the local CompiledConfig
/// file when one is set, else the built-in production-default.
///
/// # Errors
/// The file cannot be read or is not a CompiledConfig.
pub fn initial_config(settings: &Settings) -> Result<CompiledConfig, RunError> {
    let Some(path) = &settings.compiled_config else {
        return Ok(CompiledConfig::production_default());
    };
    let err = |message: String| RunError::CompiledConfig {
        path: path.clone(),
        message,
    };
    let bytes = std::fs::read(path).map_err(|e| err(e.to_string()))?;
    serde_json::from_slice(&bytes).map_err(|e| err(e.to_string()))
}

/// Runs the agent until a stop signal.
///
/// # Errors
/// Startup failures; a clean stop is `Ok`.
pub async fn run(settings: Settings, initial: CompiledConfig) -> Result<(), RunError> {
    let counters = Arc::new(Counters::default());
    let state = Arc::new(AgentState::new(Arc::clone(&counters)));
    let fanout = Arc::new(
        Fanout::start(open_sinks(&settings)?, Arc::clone(&counters)).map_err(|source| {
            RunError::Sys {
                call: "thread spawn",
                source,
            }
        })?,
    );

    let btf = kernel_btf().map_err(|e| RunError::NoObserver(error_chain(&e)))?;
    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let first = ConfigUpdate {
        hash: initial.content_hash(),
        config: initial,
        generation: 1,
    };
    let (config_tx, config_rx) = watch::channel(Some(Arc::new(first.clone())));
    let (applied_tx, mut applied_rx) = mpsc::unbounded_channel::<(Observer, ApplyResult)>();

    let mut tasks = Vec::new();
    let mut failures = Vec::new();
    for o in Observer::ALL {
        let Some(c) = classifier(o) else {
            let reason = format!("observer `{o}` is not part of this build");
            state.set_observer(o, ObserverState::Unavailable, Some(reason.clone()));
            failures.push(format!("{o}: {reason}"));
            continue;
        };
        let loaded = LoadedObject::load(&settings.ebpf_dir, o, &btf, o == Observer::Node)
            .map_err(|e| error_chain(&e));
        let loaded =
            loaded.and_then(|(mut obj, ring)| {
                attach_special(o, &mut obj, &settings).map(|()| (obj, ring))
            });
        match loaded {
            Ok((obj, ring)) => {
                let task = ObserverTask::new(
                    obj,
                    ring,
                    c,
                    Arc::clone(&fanout),
                    Arc::clone(&state),
                    settings.tick,
                    settings.max_records_per_tick,
                )
                .map_err(|source| RunError::Sys {
                    call: "epoll register",
                    source,
                })?;
                tracing::info!(observer = %o, "observer running");
                tasks.push(tokio::spawn(task.run(
                    shutdown_rx.clone(),
                    config_rx.clone(),
                    applied_tx.clone(),
                )));
            }
            Err(reason) => {
                tracing::warn!(observer = %o, reason = %reason, "observer unavailable");
                state.set_observer(o, ObserverState::Unavailable, Some(reason.clone()));
                failures.push(format!("{o}: {reason}"));
            }
        }
    }
    drop(applied_tx);
    if tasks.is_empty() {
        return Err(RunError::NoObserver(failures.join("; ")));
    }

    let file_dir = settings
        .sinks
        .contains(&SinkKind::File)
        .then(|| settings.data_dir.clone());
    let mut sigterm = signal(SignalKind::terminate()).map_err(|source| RunError::Sys {
        call: "sigaction",
        source,
    })?;
    let mut sigint = signal(SignalKind::interrupt()).map_err(|source| RunError::Sys {
        call: "sigaction",
        source,
    })?;
    let mut status_tick = tokio::time::interval(std::time::Duration::from_secs(5));
    let mut pending: Option<(u64, String, usize)> = Some((first.generation, first.hash.clone(), 0));
    let running = tasks.len();
    loop {
        tokio::select! {
            _ = sigterm.recv() => { tracing::info!("SIGTERM: stopping"); break; }
            _ = sigint.recv() => { tracing::info!("SIGINT: stopping"); break; }
            Some((o, r)) = applied_rx.recv() => {
                match r {
                    ApplyResult::Applied { generation } => {
                        if let Some((g, hash, n)) = pending.as_mut() {
                            if *g == generation {
                                *n += 1;
                                if *n == running {
                                    state.set_applied(AppliedConfig { generation, hash: hash.clone() });
                                    tracing::info!(generation, hash = %hash, "config applied");
                                    pending = None;
                                }
                            }
                        }
                    }
                    ApplyResult::Failed { generation, reason } => {
                        tracing::error!(observer = %o, generation, reason = %reason, "config not applied");
                        pending = None;
                    }
                }
            }
            _ = status_tick.tick() => {
                if let Some(dir) = &file_dir {
                    if let Err(e) = state.write_status_file(dir) {
                        tracing::warn!(error = %e, "status file not written");
                    }
                }
            }
        }
    }
    let _ = config_tx;

    let deadline = Instant::now() + settings.shutdown_timeout;
    let _ = shutdown_tx.send(true);
    let left = deadline.saturating_duration_since(Instant::now());
    let joined = tokio::time::timeout(left, async {
        for t in tasks {
            let _ = t.await;
        }
    })
    .await;
    if joined.is_err() {
        tracing::warn!("observer tasks did not finish before the shutdown deadline");
    }
    if let Some(dir) = &file_dir {
        let _ = state.write_status_file(dir);
    }
    match Arc::try_unwrap(fanout) {
        Ok(f) => {
            for late in f.shutdown(deadline) {
                tracing::warn!(
                    sink = late.as_str(),
                    "sink did not flush before the shutdown deadline"
                );
            }
        }
        Err(_) => tracing::warn!("sinks still referenced at shutdown; not flushed"),
    }
    if let Some(dir) = &file_dir {
        let _ = state.write_status_file(dir);
    }
    Ok(())
}
