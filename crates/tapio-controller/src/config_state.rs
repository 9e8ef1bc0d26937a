//! Distributed config: the current CompiledConfig, its generation, and
//! reloading it from the profile file.
//!
//! ## Design constraints
//! - The generation starts at 1 and grows by one each time a reload changes
//!   the content hash. A reload that yields the same hash (a touched file, a
//!   SIGHUP without edits) keeps the generation: the events judged by it were
//!   judged by the same config.
//! - A reload that fails (unreadable, invalid) keeps the current config and
//!   is counted with its error; the controller never distributes a config
//!   that did not validate.
//! - Profile files larger than [`tapio_profile::MAX_BYTES`] are refused
//!   without reading them.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, RwLock};
use std::time::SystemTime;

use hyper::body::Bytes;
use tapio_profile::{compile, validate, ProfileError};
use tapio_wire::{CompiledConfig, ConfigResponse, ConfigView};

/// Why a profile file could not become the config.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// Reading the file failed.
    #[error("cannot read profile `{path}`")]
    Read {
        /// The file.
        path: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The file is larger than a profile may be.
    #[error("profile `{path}` is {size} bytes, larger than the {limit}-byte limit")]
    TooLarge {
        /// The file.
        path: String,
        /// Its size.
        size: u64,
        /// The limit.
        limit: usize,
    },
    /// The profile does not validate.
    #[error("profile `{path}` is invalid")]
    Invalid {
        /// The file.
        path: String,
        /// Every problem.
        #[source]
        source: ProfileError,
    },
}

/// Reads, validates and compiles a profile file.
///
/// # Errors
/// See [`LoadError`].
pub fn load_profile(path: &str) -> Result<CompiledConfig, LoadError> {
    let read = |source| LoadError::Read {
        path: path.to_owned(),
        source,
    };
    let size = std::fs::metadata(path).map_err(read)?.len();
    if size > tapio_profile::MAX_BYTES as u64 {
        return Err(LoadError::TooLarge {
            path: path.to_owned(),
            size,
            limit: tapio_profile::MAX_BYTES,
        });
    }
    let text = std::fs::read_to_string(path).map_err(read)?;
    let v = validate(&text).map_err(|source| LoadError::Invalid {
        path: path.to_owned(),
        source,
    })?;
    Ok(compile(&v))
}

/// One config as served: pre-encoded so a fetch costs no serialization.
#[derive(Debug)]
pub struct Snapshot {
    /// Generation.
    pub generation: u64,
    /// Content hash.
    pub hash: String,
    /// Profile name.
    pub profile: String,
    /// `ConfigResponse` JSON.
    pub body: Bytes,
    /// `ETag` header value: the hash in quotes.
    pub etag: String,
}

impl Snapshot {
    fn new(generation: u64, config: CompiledConfig) -> Self {
        let profile = config.profile.clone();
        let response = ConfigResponse::new(generation, config);
        let body = Bytes::from(serde_json::to_vec(&response).unwrap_or_default());
        Snapshot {
            generation,
            etag: format!("\"{}\"", response.hash),
            hash: response.hash,
            profile,
            body,
        }
    }

    /// True when an `If-None-Match` value names this config (`*`, the quoted
    /// hash, its weak form, or the bare hash, in a comma-separated list).
    #[must_use]
    pub fn matches(&self, if_none_match: &str) -> bool {
        if_none_match.split(',').map(str::trim).any(|tag| {
            let tag = tag.strip_prefix("W/").unwrap_or(tag);
            tag == "*" || tag == self.etag || tag == self.hash
        })
    }
}

/// Outcome of a reload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reloaded {
    /// New content: the generation moved to this value.
    Changed(u64),
    /// Same hash as before; nothing changed.
    Unchanged,
}

/// The current config and where it comes from.
#[derive(Debug)]
pub struct ConfigState {
    current: RwLock<Arc<Snapshot>>,
    path: Option<String>,
    mtime: Mutex<Option<Stamp>>,
    reloads: AtomicU64,
    reload_failures: AtomicU64,
    last_error: Mutex<Option<String>>,
}

impl ConfigState {
    /// State serving `config` (generation 1), reloading from `path` if given.
    #[must_use]
    pub fn new(config: CompiledConfig, path: Option<String>) -> Self {
        let mtime = path.as_deref().and_then(stamp);
        ConfigState {
            current: RwLock::new(Arc::new(Snapshot::new(1, config))),
            path,
            mtime: Mutex::new(mtime),
            reloads: AtomicU64::new(0),
            reload_failures: AtomicU64::new(0),
            last_error: Mutex::new(None),
        }
    }

    /// The config being served.
    #[must_use]
    pub fn current(&self) -> Arc<Snapshot> {
        match self.current.read() {
            Ok(g) => Arc::clone(&g),
            Err(p) => Arc::clone(&p.into_inner()),
        }
    }

    /// True when the profile file changed (inode, size, mtime or ctime)
    /// since the last load (always false without a file).
    pub fn file_changed(&self) -> bool {
        let Some(path) = &self.path else {
            return false;
        };
        let now = stamp(path);
        let mut seen = self
            .mtime
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if now != *seen {
            *seen = now;
            true
        } else {
            false
        }
    }

    /// Re-reads the profile file. Without a file this is a no-op.
    ///
    /// # Errors
    /// The load error; the current config stays and the failure is counted.
    pub fn reload(&self) -> Result<Reloaded, LoadError> {
        let Some(path) = &self.path else {
            return Ok(Reloaded::Unchanged);
        };
        match load_profile(path) {
            Ok(config) => {
                *self
                    .last_error
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner) = None;
                let mut cur = self
                    .current
                    .write()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                if config.content_hash() == cur.hash {
                    return Ok(Reloaded::Unchanged);
                }
                let generation = cur.generation + 1;
                *cur = Arc::new(Snapshot::new(generation, config));
                self.reloads.fetch_add(1, Relaxed);
                Ok(Reloaded::Changed(generation))
            }
            Err(e) => {
                self.reload_failures.fetch_add(1, Relaxed);
                let mut text = e.to_string();
                if let Some(cause) = std::error::Error::source(&e) {
                    text.push_str(": ");
                    text.push_str(&cause.to_string());
                }
                if text.len() > 4096 {
                    let mut cut = 4096;
                    while !text.is_char_boundary(cut) {
                        cut -= 1;
                    }
                    text.truncate(cut);
                }
                *self
                    .last_error
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(text);
                Err(e)
            }
        }
    }

    /// Status view.
    #[must_use]
    pub fn view(&self) -> ConfigView {
        let cur = self.current();
        ConfigView {
            generation: cur.generation,
            hash: cur.hash.clone(),
            profile: cur.profile.clone(),
            source: self.path.clone().unwrap_or_else(|| "built-in".into()),
            reloads: self.reloads.load(Relaxed),
            reload_failures: self.reload_failures.load(Relaxed),
            last_reload_error: self
                .last_error
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .clone(),
        }
    }
}

/// What tells a changed profile file: its inode (an atomic replace, as
/// editors and ConfigMap updates do, is a new inode even when the size and a
/// coarse mtime are equal), size, mtime and ctime.
type Stamp = (u64, u64, SystemTime, i64, i64);

fn stamp(path: &str) -> Option<Stamp> {
    use std::os::unix::fs::MetadataExt as _;
    let m = std::fs::metadata(path).ok()?;
    Some((
        m.ino(),
        m.len(),
        m.modified().ok()?,
        m.ctime(),
        m.ctime_nsec(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn etag_matching_accepts_quoted_weak_bare_and_star() {
        let s = Snapshot::new(1, CompiledConfig::production_default());
        assert!(s.matches(&s.etag));
        assert!(s.matches(&format!("W/{}", s.etag)));
        assert!(s.matches(&s.hash));
        assert!(s.matches("*"));
        assert!(s.matches(&format!("\"sha256:00\", {}", s.etag)));
        assert!(!s.matches("\"sha256:00\""));
        assert!(!s.matches(""));
    }

    #[test]
    fn built_in_reload_is_a_no_op() {
        let st = ConfigState::new(CompiledConfig::production_default(), None);
        assert_eq!(st.reload().unwrap(), Reloaded::Unchanged);
        assert!(!st.file_changed());
        assert_eq!(st.view().generation, 1);
        assert_eq!(st.view().source, "built-in");
    }
}
