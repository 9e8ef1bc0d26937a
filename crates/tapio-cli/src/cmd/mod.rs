//! The CLI's subcommands, rendering reports for a terminal, a pipe or JSON.

pub mod health;
pub mod recent;
pub mod status;
pub mod watch;

use std::io::{self, Write};
use std::path::PathBuf;

use crate::render::Style;
use crate::report::Coverage;
use crate::store::{DataDir, StoreError};
use crate::window::WindowError;

/// Error of a subcommand.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// The data directory is missing or unreadable.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A bad `--since` or `--interval`.
    #[error(transparent)]
    Window(#[from] WindowError),
    /// Writing output failed.
    #[error("cannot write output")]
    Output(#[source] io::Error),
}

impl From<io::Error> for CliError {
    fn from(e: io::Error) -> Self {
        CliError::Output(e)
    }
}

/// What every subcommand needs.
#[derive(Debug, Clone)]
pub struct Ctx {
    /// `--data-dir`.
    pub data_dir: PathBuf,
    /// Terminal or pipe.
    pub style: Style,
    /// The instant the command judges ages against.
    pub now_ns: u64,
}

impl Ctx {
    /// Opens the data directory.
    ///
    /// # Errors
    /// When it is missing, not a directory or unreadable.
    pub fn open(&self) -> Result<DataDir, CliError> {
        Ok(DataDir::open(&self.data_dir)?)
    }
}

/// Prints the one stderr line about skipped files, if any were skipped.
pub fn report_skipped(dir: &DataDir, cov: &Coverage) {
    if cov.skipped.total() > 0 {
        eprintln!(
            "tapio: skipped {} of {} files in `{}`: {}",
            cov.skipped.total(),
            cov.considered,
            dir.path().display(),
            cov.skipped
        );
    }
}

/// Prints the stderr hint for a directory without occurrences.
pub fn report_empty(dir: &DataDir) {
    eprintln!(
        "tapio: no occurrences in `{}` yet (the agent writes them there with `--sink=file --data-dir {}`)",
        dir.path().display(),
        dir.path().display()
    );
}

/// Writes one JSON value and a newline.
///
/// # Errors
/// When writing fails.
pub fn write_json<T: serde::Serialize>(out: &mut dyn Write, v: &T) -> Result<(), CliError> {
    serde_json::to_writer(&mut *out, v).map_err(io::Error::from)?;
    out.write_all(b"\n")?;
    Ok(())
}

/// A logfmt value: bare when safe, JSON-quoted otherwise.
#[must_use]
pub fn logfmt_value(v: &str) -> String {
    if !v.is_empty() && !v.contains(|c: char| c.is_whitespace() || c == '"' || c == '=') {
        v.to_owned()
    } else {
        serde_json::Value::from(v).to_string()
    }
}
