//! The agent's sinks as the settings name them, and the data directory the
//! file sink writes into.

use std::sync::Arc;

use tapio_common::Sink;

use super::RunError;
#[cfg(feature = "otlp")]
use crate::controller::agent_identity;
use crate::controller::ControllerLink;
use crate::counters::{Counters, SinkKind};
use crate::datadir::{DataDir, DataDirError};
use crate::settings::Settings;
use crate::sinks::controller::ControllerSink;
use crate::sinks::file::FileSink;
use crate::sinks::http::HttpSink;
use crate::sinks::stdout::StdoutSink;

/// Opens the data directory when the file sink is configured (it holds the
/// occurrence files and the status file).
///
/// # Errors
/// The directory is unsafe (symlink, foreign owner, writable by others) or
/// cannot be created or opened: a configuration error (exit 2).
pub fn open_data_dir(settings: &Settings) -> Result<Option<Arc<DataDir>>, DataDirError> {
    if !settings.sinks.contains(&SinkKind::File) {
        return Ok(None);
    }
    DataDir::open(&settings.data_dir, settings.allow_unsafe_data_dir).map(|d| Some(Arc::new(d)))
}

/// The configured sinks, labelled.
pub(super) type SinkList = Vec<(SinkKind, Box<dyn Sink>)>;

pub(super) fn open_sinks(
    s: &Settings,
    data_dir: Option<&Arc<DataDir>>,
    link: Option<&Arc<ControllerLink>>,
    counters: &Arc<Counters>,
) -> Result<SinkList, RunError> {
    let mut out: Vec<(SinkKind, Box<dyn Sink>)> = Vec::new();
    for &k in &s.sinks {
        let sink: Box<dyn Sink> = match k {
            SinkKind::Stdout => Box::new(StdoutSink::new()),
            SinkKind::File => {
                let dir = data_dir.ok_or(RunError::SinkUnavailable("file"))?;
                Box::new(FileSink::open(Arc::clone(dir), s.retention).map_err(|e| {
                    RunError::Sink {
                        sink: "file",
                        source: Box::new(e),
                    }
                })?)
            }
            SinkKind::Http => Box::new(
                HttpSink::new(s.http_endpoint.as_deref().unwrap_or_default()).map_err(|e| {
                    RunError::Sink {
                        sink: "http",
                        source: Box::new(e),
                    }
                })?,
            ),
            SinkKind::Controller => match link {
                Some(l) => Box::new(ControllerSink::new(Arc::clone(l), Arc::clone(counters))),
                None => return Err(RunError::SinkUnavailable(k.as_str())),
            },
            #[cfg(feature = "otlp")]
            SinkKind::Otlp => Box::new(
                crate::sinks::otlp::OtlpSink::new(
                    s.otlp_endpoint.as_deref().unwrap_or_default(),
                    agent_identity().1,
                    Arc::clone(counters),
                )
                .map_err(|e| RunError::Sink {
                    sink: "otlp",
                    source: Box::new(e),
                })?,
            ),
            #[cfg(not(feature = "otlp"))]
            SinkKind::Otlp => return Err(RunError::SinkUnavailable(k.as_str())),
        };
        out.push((k, sink));
    }
    Ok(out)
}
