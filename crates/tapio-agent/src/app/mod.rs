//! The agent's life: preflight, load observers, apply the config, drain
//! until SIGTERM/SIGINT, flush within the deadline (A9).

mod config;
mod sinks;

pub use config::initial_config;
use config::record_apply;
pub use sinks::open_data_dir;
use sinks::open_sinks;

use std::sync::Arc;
use std::time::Instant;

use tapio_common::status::ObserverState;
use tapio_common::Observer;
use tapio_wire::CompiledConfig;
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::{mpsc, watch};

use crate::config_source::{ApplyTracker, LocalFile};
use crate::controller::{agent_identity, ControllerLink};
use crate::counters::Counters;
use crate::datadir::DataDir;
use crate::drain::{ApplyResult, ConfigUpdate, ObserverTask};
use crate::kernel_btf::Shape;
use crate::kernel_features::KernelFeatures;
use crate::loader::{bare_loaders, kernel_btf, LoadedObject};
use crate::observers::{attach_special, classifier, own_programs};
use crate::settings::Settings;
use crate::sinks::{error_chain, Fanout};
use crate::state::{AgentState, StatusWriter};

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
    /// No observer could start: this host cannot run the agent (exit 3).
    #[error("no observer could start on this host")]
    NoObserver {
        /// `<observer>: <reason>`, one per observer.
        reasons: Vec<String>,
    },
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

impl RunError {
    /// The process exit code: 3 when no observer could start (restarting
    /// cannot help), else 1.
    #[must_use]
    pub fn exit_code(&self) -> u8 {
        match self {
            RunError::NoObserver { .. } => 3,
            _ => 1,
        }
    }
}

/// Longest observer reason printed on the exit lines (a verifier log can be
/// thousands of lines; the full text is in the log and the status file).
pub const MAX_REASON_CHARS: usize = 400;

/// `text` on one line (line breaks become ` | `), at most `max` characters
/// (then cut, with `…`).
#[must_use]
pub fn one_line(text: &str, max: usize) -> String {
    let joined = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" | ");
    if joined.chars().count() <= max {
        return joined;
    }
    let mut cut: String = joined.chars().take(max.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

/// Runs the agent until a stop signal. `data_dir` is [`open_data_dir`]'s.
///
/// # Errors
/// Startup failures; a clean stop is `Ok`.
pub async fn run(
    settings: Settings,
    initial: Option<CompiledConfig>,
    data_dir: Option<Arc<DataDir>>,
) -> Result<(), RunError> {
    // aya's loaders first, while the process has one thread: made then,
    // they do not parse the kernel BTF themselves (`bare_loaders`).
    let (loaders, sys_btf_skipped) = bare_loaders(Observer::ALL.len());
    let mut loaders = loaders.into_iter();
    if !sys_btf_skipped {
        tracing::info!(
            "aya's loaders parsed the kernel BTF themselves (process not single-threaded)"
        );
    }
    // Stop and reload signals are caught from the start: a SIGTERM while the
    // observers load (seconds on a slow or emulated host) is a clean stop
    // once they are up, not death by the default action.
    let mut sigterm = signal(SignalKind::terminate()).map_err(|source| RunError::Sys {
        call: "sigaction",
        source,
    })?;
    let mut sigint = signal(SignalKind::interrupt()).map_err(|source| RunError::Sys {
        call: "sigaction",
        source,
    })?;
    let mut sighup = signal(SignalKind::hangup()).map_err(|source| RunError::Sys {
        call: "sigaction",
        source,
    })?;
    let counters = Arc::new(Counters::default());
    let state = Arc::new(AgentState::new(Arc::clone(&counters)));
    let link = match &settings.controller_endpoint {
        Some(url) => {
            let (id, node) = agent_identity();
            Some(Arc::new(ControllerLink::new(url, id, node).map_err(
                |e| RunError::Sink {
                    sink: "controller",
                    source: Box::new(e),
                },
            )?))
        }
        None => None,
    };
    let sinks = open_sinks(&settings, data_dir.as_ref(), link.as_ref(), &counters)?;
    let fanout = Arc::new(
        Fanout::start(sinks, Arc::clone(&counters)).map_err(|source| RunError::Sys {
            call: "thread spawn",
            source,
        })?,
    );

    let btf = match kernel_btf(&settings.ebpf_dir) {
        Ok(b) => b,
        Err(e) => {
            let why = format!("kernel BTF: {}", error_chain(&e));
            for o in Observer::ALL {
                state.set_observer(o, ObserverState::Unavailable, Some(why.clone()));
            }
            StatusWriter::new(data_dir).write(&state);
            return Err(RunError::NoObserver {
                reasons: Observer::ALL
                    .iter()
                    .map(|o| format!("{o}: {why}"))
                    .collect(),
            });
        }
    };
    match &btf.shape {
        Shape::Reduced { kernel, kept, ids } => tracing::info!(
            kernel_types = kernel,
            kept,
            ids,
            "kernel BTF reduced to what the objects need"
        ),
        Shape::Whole { why } => tracing::warn!(why = %why, "kernel BTF parsed whole"),
    }
    let btf = btf.btf;
    // Read once for every object (the atomics probe is a program load).
    let features = KernelFeatures::of_kernel(&btf);
    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let _metrics = if settings.metrics_enabled {
        Some(
            crate::metrics::start(
                &settings.metrics_listen,
                Arc::clone(&state),
                crate::metrics::Limits::default(),
                shutdown_rx.clone(),
            )
            .map_err(|e| RunError::Sys {
                call: "bind",
                source: std::io::Error::other(e),
            })?,
        )
    } else {
        None
    };
    let first = initial.map(|c| ConfigUpdate {
        hash: c.content_hash(),
        config: c,
        generation: 1,
    });
    let (config_tx, config_rx) = watch::channel(first.clone().map(Arc::new));
    let (applied_tx, mut applied_rx) = mpsc::unbounded_channel::<(Observer, ApplyResult)>();

    let attribution = match crate::attribution::Attribution::start(Arc::clone(&counters)) {
        Ok(a) => Some(a),
        Err(e) => {
            tracing::warn!(error = %e, "cgroup attribution off: resolver thread not started");
            None
        }
    };
    let mut tasks = Vec::new();
    let mut failures = Vec::new();
    for o in Observer::ALL {
        let Some(c) = classifier(o) else {
            let reason = format!("observer `{o}` is not part of this build");
            state.set_observer(o, ObserverState::Unavailable, Some(reason.clone()));
            failures.push(format!("{o}: {reason}"));
            continue;
        };
        let Some(loader) = loaders.next() else {
            break;
        };
        let loaded = LoadedObject::load(
            loader,
            &settings.ebpf_dir,
            o,
            &btf,
            features,
            own_programs(o),
        )
        .map_err(|e| error_chain(&e));
        let loaded = loaded.and_then(|(mut obj, ring)| {
            let note = attach_special(o, &mut obj, &settings, &btf, features)?;
            if let Some(n) = note {
                state.set_note(o, n);
            }
            Ok((obj, ring))
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
                })?
                .with_attribution(attribution.clone());
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
    // Kernel BTF is only needed to load: its parsed form is megabytes.
    // Hand it and the loaders' scratch back to the OS before settling in.
    drop(loaders);
    drop(btf);
    crate::preflight::release_free_memory();
    if let Some((rss, peak)) = crate::preflight::memory_kib() {
        tracing::info!(
            rss_kib = rss,
            peak_rss_kib = peak,
            "start-up memory (VmRSS, VmHWM)"
        );
    }
    if tasks.is_empty() {
        // `tapio status` shows every observer's reason after the exit.
        StatusWriter::new(data_dir).write(&state);
        return Err(RunError::NoObserver { reasons: failures });
    }

    let mut status_file = StatusWriter::new(data_dir);
    let mut status_tick = tokio::time::interval(std::time::Duration::from_secs(5));
    let mut tracker = ApplyTracker::new(tasks.len());
    if let Some(f) = &first {
        tracker.begin(f);
    }
    let mut local = match (&settings.compiled_config, &first, &link) {
        (Some(p), Some(f), None) => Some(LocalFile::new(p.clone(), f)),
        _ => None,
    };
    let (from_controller, mut controller_rx) = mpsc::unbounded_channel::<ConfigUpdate>();
    let controller = match &link {
        Some(l) => Some(
            crate::controller::start(
                Arc::clone(l),
                Arc::clone(&state),
                settings.heartbeat_interval,
                from_controller,
            )
            .map_err(|source| RunError::Sys {
                call: "thread spawn",
                source,
            })?,
        ),
        None => None,
    };
    loop {
        tokio::select! {
            _ = sigterm.recv() => { tracing::info!("SIGTERM: stopping"); break; }
            _ = sigint.recv() => { tracing::info!("SIGINT: stopping"); break; }
            Some((o, r)) = applied_rx.recv() => {
                let current = config_tx.borrow().clone();
                record_apply(&state, &mut tracker, current.as_deref(), o, &r);
            }
            Some(u) = controller_rx.recv() => {
                tracker.begin(&u);
                let _ = config_tx.send(Some(Arc::new(u)));
            }
            _ = sighup.recv() => match local.as_mut().map(LocalFile::reload) {
                None => tracing::warn!("SIGHUP: no local compiled_config to reload (controller mode or built-in default)"),
                Some(Ok(None)) => tracing::info!("SIGHUP: compiled_config unchanged; generation kept"),
                Some(Ok(Some(u))) => {
                    tracing::info!(generation = u.generation, hash = %u.hash, "SIGHUP: compiled_config reloaded");
                    tracker.begin(&u);
                    let _ = config_tx.send(Some(Arc::new(u)));
                }
                Some(Err(e)) => tracing::error!(error = %e, "SIGHUP: compiled_config not reloaded; current config kept"),
            },
            _ = status_tick.tick() => {
                status_file.write(&state);
            }
        }
    }
    let _ = config_tx;

    let deadline = Instant::now() + settings.shutdown_timeout;
    let _ = shutdown_tx.send(true);
    if let Some(c) = controller {
        if !c.stop(deadline) {
            tracing::warn!("controller exchange still running at shutdown; abandoned");
        }
    }
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
    status_file.write(&state);
    match Arc::try_unwrap(fanout) {
        Ok(f) => {
            for (sink, queued, in_flight) in f.shutdown(deadline) {
                tracing::warn!(
                    sink = sink.as_str(),
                    queued,
                    in_flight,
                    "sink did not flush before the shutdown deadline; counted as shutdown_deadline and shutdown_in_flight"
                );
            }
        }
        Err(_) => tracing::warn!("sinks still referenced at shutdown; not flushed"),
    }
    status_file.write(&state);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_lines_are_one_line_each_and_bounded() {
        assert_eq!(
            one_line("load failed\n  0: r1 = 0\n\n  1: exit\n", 100),
            "load failed | 0: r1 = 0 | 1: exit"
        );
        let long = "x".repeat(1000);
        let cut = one_line(&long, MAX_REASON_CHARS);
        assert_eq!(cut.chars().count(), MAX_REASON_CHARS);
        assert!(cut.ends_with('…'));
        assert_eq!(one_line("short", 10), "short");
    }

    #[test]
    fn no_observer_is_exit_3_other_failures_exit_1() {
        assert_eq!(RunError::NoObserver { reasons: vec![] }.exit_code(), 3);
        assert_eq!(RunError::SinkUnavailable("otlp").exit_code(), 1);
    }
}
