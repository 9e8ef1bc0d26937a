//! Data directory reader: occurrence files listed by name, read with a size
//! cap and parsed into records, with every unusable file counted.
//!
//! ## Design constraints
//! - Only regular files directly inside the data directory are read: opens use
//!   `O_NOFOLLOW` (a symlink is never followed out of the directory) and
//!   `O_NONBLOCK` (a FIFO cannot hang the CLI), and `fstat` must say regular.
//! - At most [`MAX_FILE_BYTES`] are read from one file; a larger file is
//!   skipped as oversized without being read.
//! - Names starting with `.` (the agent's temp files, the status file) and
//!   names not ending in `.json` are ignored; a `.json` name that is not a
//!   canonical ULID is skipped as foreign. File names carry the fact time, so
//!   time windows are applied before any file is opened.
//! - Nothing here writes.

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{self, Read};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use tapio_common::status::{AgentStatus, STATUS_FILE};
use tapio_common::OccurrenceRecord;

use crate::names::file_millis;

/// Largest file read, in bytes (1 MiB); occurrences are well under 4 KiB.
pub const MAX_FILE_BYTES: u64 = 1 << 20;
/// Below this many files a scan stays on one thread.
const PARALLEL_MIN_FILES: usize = 2048;
/// Most threads a scan uses.
const MAX_THREADS: usize = 4;

/// Error opening or listing the data directory.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Nothing at the path.
    #[error("no data directory at `{}`", path.display())]
    Missing {
        /// The data directory.
        path: PathBuf,
    },
    /// Something that is not a directory is at the path.
    #[error("`{}` is not a directory", path.display())]
    NotADirectory {
        /// The data directory.
        path: PathBuf,
    },
    /// `stat` or `readdir` failed.
    #[error("cannot read data directory `{}`", path.display())]
    Unreadable {
        /// The data directory.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
}

/// One occurrence file, by name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileRef {
    /// File name (`<ULID>.json`).
    pub name: String,
    /// Unix milliseconds from the ULID.
    pub millis: u64,
}

/// Why a file was not used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Skip {
    /// Empty or ends mid-document (a writer that did not rename atomically, or a crash).
    HalfWritten,
    /// Not JSON.
    Corrupt,
    /// JSON, or a `.json` name, that is not a Tapio occurrence.
    Foreign,
    /// Larger than [`MAX_FILE_BYTES`].
    Oversized,
    /// A symlink, FIFO, directory or device.
    Irregular,
    /// Open or read failed (permissions, I/O error).
    Unreadable,
    /// Removed between listing and opening (retention); not reported.
    Vanished,
}

/// Counts of unusable files, by reason.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Skipped {
    /// [`Skip::HalfWritten`].
    pub half_written: u64,
    /// [`Skip::Corrupt`].
    pub corrupt: u64,
    /// [`Skip::Foreign`].
    pub foreign: u64,
    /// [`Skip::Oversized`].
    pub oversized: u64,
    /// [`Skip::Irregular`].
    pub irregular: u64,
    /// [`Skip::Unreadable`].
    pub unreadable: u64,
}

impl Skipped {
    /// Counts one skip.
    pub fn add(&mut self, skip: Skip) {
        match skip {
            Skip::HalfWritten => self.half_written += 1,
            Skip::Corrupt => self.corrupt += 1,
            Skip::Foreign => self.foreign += 1,
            Skip::Oversized => self.oversized += 1,
            Skip::Irregular => self.irregular += 1,
            Skip::Unreadable => self.unreadable += 1,
            Skip::Vanished => {}
        }
    }

    /// Adds another set of counts.
    pub fn merge(&mut self, o: &Skipped) {
        self.half_written += o.half_written;
        self.corrupt += o.corrupt;
        self.foreign += o.foreign;
        self.oversized += o.oversized;
        self.irregular += o.irregular;
        self.unreadable += o.unreadable;
    }

    /// `(label, count)` for every reason, in a fixed order.
    #[must_use]
    pub fn reasons(&self) -> [(&'static str, u64); 6] {
        [
            ("half_written", self.half_written),
            ("corrupt", self.corrupt),
            ("foreign", self.foreign),
            ("oversized", self.oversized),
            ("irregular", self.irregular),
            ("unreadable", self.unreadable),
        ]
    }

    /// Total skipped.
    #[must_use]
    pub fn total(&self) -> u64 {
        self.reasons().iter().map(|(_, n)| n).sum()
    }
}

impl fmt::Display for Skipped {
    /// `1 half-written, 2 foreign` (non-zero reasons only).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for (label, n) in self.reasons() {
            if n == 0 {
                continue;
            }
            let label = match label {
                "half_written" => "half-written",
                "oversized" => "oversized (over 1 MiB)",
                "irregular" => "irregular (not a regular file)",
                l => l,
            };
            write!(f, "{}{n} {label}", if first { "" } else { ", " })?;
            first = false;
        }
        Ok(())
    }
}

/// What the agent's status file says, if anything.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AgentInfo {
    /// No status file: the agent is not running with a file sink here, or is older.
    Absent,
    /// A status file exists but cannot be used.
    Unusable,
    /// The parsed file.
    Present(Box<AgentStatus>),
}

/// A data directory that existed when opened.
#[derive(Debug, Clone)]
pub struct DataDir {
    path: PathBuf,
}

impl DataDir {
    /// Checks that `path` is a directory.
    ///
    /// # Errors
    /// When nothing, or not a directory, is there, or `stat` fails.
    pub fn open(path: &Path) -> Result<DataDir, StoreError> {
        match std::fs::metadata(path) {
            Ok(m) if m.is_dir() => Ok(DataDir {
                path: path.to_path_buf(),
            }),
            Ok(_) => Err(StoreError::NotADirectory {
                path: path.to_path_buf(),
            }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Err(StoreError::Missing {
                path: path.to_path_buf(),
            }),
            Err(source) => Err(StoreError::Unreadable {
                path: path.to_path_buf(),
                source,
            }),
        }
    }

    /// The directory.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Occurrence files with a fact time at or after `min_millis`, oldest
    /// first, and the number of foreign `.json` names seen.
    ///
    /// # Errors
    /// When the directory cannot be read.
    pub fn list(&self, min_millis: u64) -> Result<(Vec<FileRef>, u64), StoreError> {
        let unreadable = |source| StoreError::Unreadable {
            path: self.path.clone(),
            source,
        };
        let mut files = Vec::new();
        let mut foreign = 0;
        for entry in std::fs::read_dir(&self.path).map_err(unreadable)? {
            let entry = entry.map_err(unreadable)?;
            let name = entry.file_name();
            let Some(name) = name.to_str() else {
                continue;
            };
            if name.starts_with('.') || !name.ends_with(crate::names::SUFFIX) {
                continue;
            }
            match file_millis(name) {
                Some(millis) if millis >= min_millis => files.push(FileRef {
                    name: name.to_owned(),
                    millis,
                }),
                Some(_) => {}
                None => foreign += 1,
            }
        }
        files.sort_unstable_by(|a, b| a.name.cmp(&b.name));
        Ok((files, foreign))
    }

    /// Reads and parses one occurrence file named `name` inside the directory.
    ///
    /// # Errors
    /// The reason the file cannot be used.
    pub fn read(&self, name: &str, buf: &mut Vec<u8>) -> Result<OccurrenceRecord, Skip> {
        read_capped(&self.path.join(name), buf)?;
        parse_occurrence(buf)
    }

    /// Folds every readable file of `files` into accumulators, using up to
    /// [`MAX_THREADS`] threads on contiguous chunks; the accumulators come
    /// back in file order, with the skip counts.
    pub fn scan<A, F>(&self, files: &[FileRef], fold: F) -> (Vec<A>, Skipped)
    where
        A: Default + Send,
        F: Fn(&mut A, &FileRef, OccurrenceRecord) + Sync,
    {
        let threads = if files.len() < PARALLEL_MIN_FILES {
            1
        } else {
            std::thread::available_parallelism()
                .map_or(1, usize::from)
                .min(MAX_THREADS)
        };
        let run = |chunk: &[FileRef]| {
            let mut acc = A::default();
            let mut skipped = Skipped::default();
            let mut buf = Vec::with_capacity(4096);
            for f in chunk {
                match self.read(&f.name, &mut buf) {
                    Ok(rec) => fold(&mut acc, f, rec),
                    Err(skip) => skipped.add(skip),
                }
            }
            (acc, skipped)
        };
        let parts: Vec<(A, Skipped)> = if threads <= 1 {
            vec![run(files)]
        } else {
            let size = files.len().div_ceil(threads);
            std::thread::scope(|s| {
                let handles: Vec<_> = files
                    .chunks(size)
                    .map(|chunk| s.spawn(move || run(chunk)))
                    .collect();
                handles
                    .into_iter()
                    .map(|h| h.join().unwrap_or_default())
                    .collect()
            })
        };
        let mut skipped = Skipped::default();
        let accs = parts
            .into_iter()
            .map(|(a, s)| {
                skipped.merge(&s);
                a
            })
            .collect();
        (accs, skipped)
    }

    /// The agent's status file, if it left one.
    #[must_use]
    pub fn agent(&self) -> AgentInfo {
        let mut buf = Vec::new();
        match read_capped(&self.path.join(STATUS_FILE), &mut buf) {
            Err(Skip::Vanished) => AgentInfo::Absent,
            Err(_) => AgentInfo::Unusable,
            Ok(()) => serde_json::from_slice::<AgentStatus>(&buf)
                .map_or(AgentInfo::Unusable, |s| AgentInfo::Present(Box::new(s))),
        }
    }
}

/// Parses the bytes of one occurrence file (already read, at most
/// [`MAX_FILE_BYTES`]).
///
/// # Errors
/// [`Skip::HalfWritten`] for a document that ends early, [`Skip::Foreign`]
/// for JSON that is not a Tapio `kernel.*` occurrence, [`Skip::Corrupt`] for
/// anything else.
pub fn parse_occurrence(buf: &[u8]) -> Result<OccurrenceRecord, Skip> {
    let rec: OccurrenceRecord = serde_json::from_slice(buf).map_err(|e| match e.classify() {
        serde_json::error::Category::Eof => Skip::HalfWritten,
        serde_json::error::Category::Data => Skip::Foreign,
        _ => Skip::Corrupt,
    })?;
    if rec.source != tapio_common::occurrence::SOURCE || !rec.kind.starts_with("kernel.") {
        return Err(Skip::Foreign);
    }
    Ok(rec)
}

/// Reads a regular file of at most [`MAX_FILE_BYTES`] into `buf` without
/// following symlinks or blocking on FIFOs.
fn read_capped(path: &Path, buf: &mut Vec<u8>) -> Result<(), Skip> {
    let file: File = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)
        .map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => Skip::Vanished,
            _ if e.raw_os_error() == Some(libc::ELOOP) => Skip::Irregular,
            _ => Skip::Unreadable,
        })?;
    let meta = file.metadata().map_err(|_| Skip::Unreadable)?;
    if !meta.is_file() {
        return Err(Skip::Irregular);
    }
    if meta.len() > MAX_FILE_BYTES {
        return Err(Skip::Oversized);
    }
    buf.clear();
    file.take(MAX_FILE_BYTES + 1)
        .read_to_end(buf)
        .map_err(|_| Skip::Unreadable)?;
    if buf.len() as u64 > MAX_FILE_BYTES {
        return Err(Skip::Oversized);
    }
    if buf.iter().all(u8::is_ascii_whitespace) {
        return Err(Skip::HalfWritten);
    }
    Ok(())
}

#[cfg(test)]
mod fuzz;
