//! `file` sink: one occurrence per file, `<data-dir>/<ULID>.json`, written
//! atomically (dot-prefixed temp file, then rename), with bounded retention.
//!
//! ## Design constraints
//! - Retention keeps at most `max_files` occurrence files and none older
//!   than `max_age`; the oldest go first (ULID names sort by time). Files
//!   present at start count towards the limit.
//! - A full disk fails the batch (counted by the caller); the sink keeps
//!   going and retries with the next batch.

use std::collections::VecDeque;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use tapio_common::{Occurrence, Sink, SinkError};

/// Retention limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// Most occurrence files kept.
    pub max_files: usize,
    /// Oldest occurrence kept.
    pub max_age: Duration,
}

impl Default for Retention {
    fn default() -> Self {
        Retention {
            max_files: 10_000,
            max_age: Duration::from_secs(7 * 24 * 3600),
        }
    }
}

/// One JSON file per occurrence.
pub struct FileSink {
    dir: PathBuf,
    retention: Retention,
    /// Occurrence file names, oldest first.
    kept: VecDeque<String>,
    last_age_check: Instant,
}

fn is_occurrence_name(name: &str) -> bool {
    name.len() == 31 && name.ends_with(".json") && !name.starts_with('.')
}

/// Unix milliseconds encoded in a ULID file name's first 10 characters.
fn ulid_ms(name: &str) -> Option<u64> {
    ulid_prefix_ms(name.get(..10)?)
}

fn ulid_prefix_ms(prefix: &str) -> Option<u64> {
    const ALPHABET: &[u8] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
    let mut v: u64 = 0;
    for c in prefix.bytes() {
        let d = ALPHABET.iter().position(|&a| a == c.to_ascii_uppercase())?;
        v = v.checked_mul(32)?.checked_add(d as u64)?;
    }
    Some(v)
}

impl FileSink {
    /// Opens (creates) `dir` and indexes the occurrence files already there.
    ///
    /// # Errors
    /// The directory cannot be created or listed.
    pub fn open(dir: &Path, retention: Retention) -> Result<Self, SinkError> {
        fs::create_dir_all(dir).map_err(|source| SinkError::Io {
            op: "create_dir_all",
            source,
        })?;
        let mut kept: Vec<String> = fs::read_dir(dir)
            .map_err(|source| SinkError::Io {
                op: "read_dir",
                source,
            })?
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter(|n| is_occurrence_name(n))
            .collect();
        kept.sort();
        let mut s = FileSink {
            dir: dir.to_path_buf(),
            retention,
            kept: kept.into(),
            last_age_check: Instant::now(),
        };
        s.enforce(true);
        Ok(s)
    }

    /// Occurrence files currently kept.
    #[must_use]
    pub fn kept(&self) -> usize {
        self.kept.len()
    }

    fn write_one(&self, o: &Occurrence) -> Result<String, SinkError> {
        let name = format!("{}.json", o.id);
        let tmp = self.dir.join(format!(".{name}.tmp"));
        let body = serde_json::to_vec(o).map_err(|e| SinkError::Io {
            op: "serialize",
            source: e.into(),
        })?;
        let result = fs::File::create(&tmp)
            .and_then(|mut f| f.write_all(&body))
            .map_err(|source| SinkError::Io {
                op: "write",
                source,
            })
            .and_then(|()| {
                fs::rename(&tmp, self.dir.join(&name)).map_err(|source| SinkError::Io {
                    op: "rename",
                    source,
                })
            });
        if result.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        result.map(|()| name)
    }

    fn enforce(&mut self, check_age: bool) {
        while self.kept.len() > self.retention.max_files {
            if let Some(old) = self.kept.pop_front() {
                let _ = fs::remove_file(self.dir.join(old));
            }
        }
        if !check_age {
            return;
        }
        let now_ms = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        let max_age_ms = u64::try_from(self.retention.max_age.as_millis()).unwrap_or(u64::MAX);
        while let Some(front) = self.kept.front() {
            match ulid_ms(front) {
                Some(ms) if now_ms.saturating_sub(ms) > max_age_ms => {
                    if let Some(old) = self.kept.pop_front() {
                        let _ = fs::remove_file(self.dir.join(old));
                    }
                }
                _ => break,
            }
        }
        self.last_age_check = Instant::now();
    }
}

impl Sink for FileSink {
    fn name(&self) -> &'static str {
        "file"
    }

    fn write_batch(&mut self, batch: &[Occurrence], deadline: Instant) -> Result<(), SinkError> {
        let started = Instant::now();
        let mut first_err = None;
        for o in batch {
            if Instant::now() > deadline {
                return Err(SinkError::Deadline {
                    elapsed_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
                });
            }
            match self.write_one(o) {
                Ok(name) => self.kept.push_back(name),
                Err(e) => {
                    first_err.get_or_insert(e);
                }
            }
        }
        let age_due = self.last_age_check.elapsed() > Duration::from_secs(60);
        self.enforce(age_due);
        first_err.map_or(Ok(()), Err)
    }

    fn flush(&mut self, _deadline: Instant) -> Result<(), SinkError> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tapio_common::{Anomaly, Outcome, Severity};

    fn occ(ms: u64) -> Occurrence {
        Occurrence::new(
            Anomaly::IoError,
            Severity::Critical,
            Outcome::Failure,
            ms * 1_000_000,
            1,
        )
    }

    fn tempdir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("tapio-file-sink-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        d
    }

    #[test]
    fn writes_one_parseable_file_per_occurrence_and_no_temp_files() {
        let d = tempdir("write");
        let mut s = FileSink::open(&d, Retention::default()).unwrap();
        let now = u64::try_from(
            SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .unwrap()
                .as_millis(),
        )
        .unwrap();
        let batch = vec![occ(now), occ(now + 1)];
        s.write_batch(&batch, Instant::now() + Duration::from_secs(1))
            .unwrap();
        let names: Vec<String> = fs::read_dir(&d)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(names.len(), 2, "{names:?}");
        for o in &batch {
            let body = fs::read(d.join(format!("{}.json", o.id))).unwrap();
            let r: tapio_common::OccurrenceRecord = serde_json::from_slice(&body).unwrap();
            assert_eq!(r.id, o.id.to_string());
        }
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn retention_keeps_the_newest_max_files() {
        let d = tempdir("count");
        let mut s = FileSink::open(
            &d,
            Retention {
                max_files: 3,
                max_age: Duration::from_secs(3600 * 24 * 365 * 100),
            },
        )
        .unwrap();
        let now = u64::try_from(
            SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .unwrap()
                .as_millis(),
        )
        .unwrap();
        let batch: Vec<Occurrence> = (0..5).map(|i| occ(now + i)).collect();
        s.write_batch(&batch, Instant::now() + Duration::from_secs(1))
            .unwrap();
        let mut names: Vec<String> = fs::read_dir(&d)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        let want: Vec<String> = batch[2..]
            .iter()
            .map(|o| format!("{}.json", o.id))
            .collect();
        assert_eq!(names, want);
        // Reopening counts what is there.
        let s2 = FileSink::open(
            &d,
            Retention {
                max_files: 1,
                max_age: Duration::from_secs(3600),
            },
        )
        .unwrap();
        assert_eq!(s2.kept(), 1);
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn retention_drops_files_older_than_max_age() {
        let d = tempdir("age");
        let mut s = FileSink::open(
            &d,
            Retention {
                max_files: 100,
                max_age: Duration::from_secs(60),
            },
        )
        .unwrap();
        let now = u64::try_from(
            SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .unwrap()
                .as_millis(),
        )
        .unwrap();
        s.write_batch(
            &[occ(now - 3_600_000), occ(now)],
            Instant::now() + Duration::from_secs(1),
        )
        .unwrap();
        s.enforce(true);
        assert_eq!(s.kept(), 1);
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn ulid_prefix_decodes_milliseconds() {
        let o = occ(1_700_000_000_123);
        assert_eq!(ulid_ms(&o.id.to_string()), Some(1_700_000_000_123));
    }
}
