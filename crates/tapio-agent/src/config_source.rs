//! Config sources and apply tracking: where the agent's CompiledConfig comes
//! from (built-in default, a local file reloaded on SIGHUP, or the
//! controller) and when it counts as applied (C4).
//!
//! ## Design constraints
//! - A config is applied only when every running observer reported its
//!   carrier took it. One failure makes the applied hash empty (reported as
//!   not applied, never as applied) until a later config succeeds; the
//!   failure itself is counted per observer in `tapio_config_errors_total`.
//! - Results for a generation that is no longer the latest are ignored.
//! - A local-file reload bumps the generation only when the content hash
//!   changed (the rule the controller follows, F5): occurrences keep the
//!   generation of the config that judged them.

use std::path::{Path, PathBuf};

use tapio_common::Observer;
use tapio_wire::CompiledConfig;

use crate::drain::{ApplyResult, ConfigUpdate};
use crate::state::AppliedConfig;

/// Reads a CompiledConfig JSON file (`tapio-controller profile compile`
/// output, or the `config` object of a `GET /v1/agents/config` answer).
///
/// # Errors
/// The file cannot be read or is not a CompiledConfig; the text says why.
pub fn read_compiled(path: &Path) -> Result<CompiledConfig, String> {
    let bytes = std::fs::read(path).map_err(|e| e.to_string())?;
    serde_json::from_slice(&bytes).map_err(|e| e.to_string())
}

/// A local CompiledConfig file, reloaded on SIGHUP.
#[derive(Debug)]
pub struct LocalFile {
    path: PathBuf,
    generation: u64,
    hash: String,
}

impl LocalFile {
    /// Tracks `path`, whose content `first` was applied as `generation`.
    #[must_use]
    pub fn new(path: PathBuf, first: &ConfigUpdate) -> Self {
        LocalFile {
            path,
            generation: first.generation,
            hash: first.hash.clone(),
        }
    }

    /// Re-reads the file: `Some` update with the next generation when its
    /// content changed, `None` when it is the same.
    ///
    /// # Errors
    /// Unreadable or invalid file; the current config stays.
    pub fn reload(&mut self) -> Result<Option<ConfigUpdate>, String> {
        let config = read_compiled(&self.path)?;
        let hash = config.content_hash();
        if hash == self.hash {
            return Ok(None);
        }
        self.generation += 1;
        self.hash.clone_from(&hash);
        Ok(Some(ConfigUpdate {
            config,
            generation: self.generation,
            hash,
        }))
    }

    /// The file.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Tracks which observers took the latest config.
#[derive(Debug)]
pub struct ApplyTracker {
    expected: usize,
    pending: Option<Pending>,
}

#[derive(Debug)]
struct Pending {
    generation: u64,
    hash: String,
    applied: Vec<Observer>,
    failed: bool,
}

/// What a result changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tracked {
    /// Nothing to report yet (or a stale result).
    Nothing,
    /// Every observer took the config: it is applied.
    Applied(AppliedConfig),
    /// An observer's carrier failed: the config is not applied.
    NotApplied(AppliedConfig),
}

impl ApplyTracker {
    /// Expects results from `expected` observers per config.
    #[must_use]
    pub fn new(expected: usize) -> Self {
        ApplyTracker {
            expected,
            pending: None,
        }
    }

    /// A new config was sent to the observers.
    pub fn begin(&mut self, u: &ConfigUpdate) {
        self.pending = Some(Pending {
            generation: u.generation,
            hash: u.hash.clone(),
            applied: Vec::new(),
            failed: false,
        });
    }

    /// One observer's result.
    pub fn result(&mut self, o: Observer, r: &ApplyResult) -> Tracked {
        let Some(p) = self.pending.as_mut() else {
            return Tracked::Nothing;
        };
        match r {
            ApplyResult::Applied { generation } if *generation == p.generation => {
                if !p.applied.contains(&o) {
                    p.applied.push(o);
                }
                if !p.failed && p.applied.len() >= self.expected {
                    return Tracked::Applied(AppliedConfig {
                        generation: p.generation,
                        hash: p.hash.clone(),
                    });
                }
                Tracked::Nothing
            }
            ApplyResult::Failed { generation, .. } if *generation == p.generation => {
                let first = !p.failed;
                p.failed = true;
                if first {
                    Tracked::NotApplied(AppliedConfig {
                        generation: p.generation,
                        hash: String::new(),
                    })
                } else {
                    Tracked::Nothing
                }
            }
            ApplyResult::Applied { .. } | ApplyResult::Failed { .. } => Tracked::Nothing,
        }
    }
}

/// True when `cfg` turns observer `o` off as a whole.
#[must_use]
pub fn disabled_by(cfg: &CompiledConfig, o: Observer) -> bool {
    match o {
        Observer::Network => !cfg.network.enabled,
        Observer::Container => !cfg.container.enabled,
        Observer::Storage => !cfg.storage.enabled,
        Observer::Node => !cfg.node.enabled,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn update(g: u64) -> ConfigUpdate {
        let config = CompiledConfig::production_default();
        ConfigUpdate {
            hash: format!("h{g}"),
            config,
            generation: g,
        }
    }

    fn ok(g: u64) -> ApplyResult {
        ApplyResult::Applied { generation: g }
    }

    #[test]
    fn applied_only_when_every_observer_took_it() {
        let mut t = ApplyTracker::new(2);
        t.begin(&update(1));
        assert_eq!(t.result(Observer::Network, &ok(1)), Tracked::Nothing);
        assert_eq!(t.result(Observer::Network, &ok(1)), Tracked::Nothing);
        assert_eq!(
            t.result(Observer::Container, &ok(1)),
            Tracked::Applied(AppliedConfig {
                generation: 1,
                hash: "h1".into()
            })
        );
    }

    #[test]
    fn one_failed_carrier_means_not_applied() {
        let mut t = ApplyTracker::new(2);
        t.begin(&update(2));
        let failed = ApplyResult::Failed {
            generation: 2,
            reason: "EPERM".into(),
        };
        assert_eq!(
            t.result(Observer::Network, &failed),
            Tracked::NotApplied(AppliedConfig {
                generation: 2,
                hash: String::new()
            })
        );
        assert_eq!(t.result(Observer::Container, &ok(2)), Tracked::Nothing);
        assert_eq!(t.result(Observer::Network, &failed), Tracked::Nothing);
    }

    #[test]
    fn results_of_an_older_generation_are_ignored() {
        let mut t = ApplyTracker::new(1);
        assert_eq!(t.result(Observer::Network, &ok(1)), Tracked::Nothing);
        t.begin(&update(1));
        t.begin(&update(2));
        assert_eq!(t.result(Observer::Network, &ok(1)), Tracked::Nothing);
        assert!(matches!(
            t.result(Observer::Network, &ok(2)),
            Tracked::Applied(_)
        ));
    }

    #[test]
    fn local_reload_bumps_the_generation_only_on_new_content() {
        let dir = std::env::temp_dir().join(format!("tapio-cfgsrc-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("c.json");
        let mut c = CompiledConfig::production_default();
        std::fs::write(&p, serde_json::to_vec(&c).unwrap()).unwrap();
        let first = ConfigUpdate {
            hash: c.content_hash(),
            config: c.clone(),
            generation: 1,
        };
        let mut f = LocalFile::new(p.clone(), &first);
        assert!(f.reload().unwrap().is_none());
        c.network.enabled = false;
        std::fs::write(&p, serde_json::to_vec(&c).unwrap()).unwrap();
        let u = f.reload().unwrap().unwrap();
        assert_eq!((u.generation, u.hash), (2, c.content_hash()));
        std::fs::write(&p, b"{not json").unwrap();
        assert!(f.reload().is_err());
        c.network.enabled = true;
        std::fs::write(&p, serde_json::to_vec(&c).unwrap()).unwrap();
        assert_eq!(f.reload().unwrap().unwrap().generation, 3);
        let _ = std::fs::remove_dir_all(dir);
    }
}
