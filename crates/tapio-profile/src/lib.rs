//! Evidence Profiles: validation of EvidenceProfile YAML and its compilation
//! into a tapio-wire [`CompiledConfig`].
//!
//! Pure: no syscalls, no I/O; callers pass the document text in.
//!
//! ```yaml
//! apiVersion: tapio.dev/v1
//! kind: EvidenceProfile
//! metadata:
//!   name: strict-storage
//! spec:
//!   base: production-default
//!   storage:
//!     latencyWarningUs: 20000
//!     latencyCriticalUs: 200000
//!   container:
//!     exitCodes: {report: all, ignore: [1, 2]}
//! ```
//!
//! [`validate`] checks a document against the closed v1 schema and reports
//! every problem of the document at once (path and line:column for each);
//! [`compile`] takes the resulting [`Validated`] and cannot fail.
//!
//! ## Design constraints
//! - Documents over [`MAX_BYTES`] are refused unparsed; nesting deeper than
//!   [`MAX_DEPTH`] is refused; at most 1,000 problems are listed (the rest are
//!   counted in a final entry).
//! - Anchors, aliases and tags are rejected, never expanded.
#![deny(missing_docs)]

mod fields;
pub mod problem;
mod validate;
mod yaml;

use std::fmt;

use tapio_wire::CompiledConfig;

pub use problem::{Location, Problem, ProblemKind};
pub use yaml::{MAX_BYTES, MAX_DEPTH};

/// `apiVersion` of this schema.
pub const API_VERSION: &str = "tapio.dev/v1";
/// `kind` of an Evidence Profile.
pub const KIND: &str = "EvidenceProfile";

/// Why a document is not a valid profile.
#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    /// Larger than [`MAX_BYTES`]; not parsed.
    #[error("profile is {size} bytes, larger than the {limit}-byte limit")]
    TooLarge {
        /// Size of the input.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// One or more problems; every one found in the document.
    #[error("{}", Problems(.problems))]
    Invalid {
        /// The problems, in document order.
        problems: Vec<Problem>,
    },
}

struct Problems<'a>(&'a [Problem]);

impl fmt::Display for Problems<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.0.len();
        write!(f, "{n} problem{}", if n == 1 { "" } else { "s" })?;
        for p in self.0 {
            write!(f, "\n  {p}")?;
        }
        Ok(())
    }
}

impl ProfileError {
    /// The problems (empty for [`ProfileError::TooLarge`]).
    #[must_use]
    pub fn problems(&self) -> &[Problem] {
        match self {
            ProfileError::TooLarge { .. } => &[],
            ProfileError::Invalid { problems } => problems,
        }
    }
}

/// The profile a document builds on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Base {
    /// [`CompiledConfig::production_default`].
    ProductionDefault,
}

impl Base {
    fn config(self) -> CompiledConfig {
        match self {
            Base::ProductionDefault => CompiledConfig::production_default(),
        }
    }
}

/// `exitCodes.report`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ExitCodeReport {
    /// `all`: every non-zero code.
    AllNonZero,
    /// A list.
    Only(Vec<u8>),
}

/// One validated override of a base setting.
#[derive(Clone)]
pub(crate) enum Override {
    Bool(fn(&mut CompiledConfig) -> &mut bool, bool),
    U32(fn(&mut CompiledConfig) -> &mut u32, u32),
    Signals(Vec<u8>),
    ExitCodes {
        report: Option<ExitCodeReport>,
        ignore: Vec<u8>,
    },
}

impl fmt::Debug for Override {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Override::Bool(_, v) => write!(f, "Bool({v})"),
            Override::U32(_, v) => write!(f, "U32({v})"),
            Override::Signals(v) => write!(f, "Signals({v:?})"),
            Override::ExitCodes { report, ignore } => {
                write!(f, "ExitCodes({report:?}, ignore {ignore:?})")
            }
        }
    }
}

impl Override {
    fn apply(&self, c: &mut CompiledConfig) {
        match self {
            Override::Bool(at, v) => *at(c) = *v,
            Override::U32(at, v) => *at(c) = *v,
            Override::Signals(v) => c.container.fatal_signals.clone_from(v),
            Override::ExitCodes { report, ignore } => {
                let mut codes = match report {
                    Some(ExitCodeReport::AllNonZero) => (1..=255).collect(),
                    Some(ExitCodeReport::Only(l)) => l.clone(),
                    None => c.container.exit_codes.clone(),
                };
                codes.retain(|x| !ignore.contains(x));
                codes.sort_unstable();
                c.container.exit_codes = codes;
            }
        }
    }
}

/// A profile that passed validation; the only input [`compile`] takes.
#[derive(Debug, Clone)]
pub struct Validated {
    name: String,
    base: Base,
    overrides: Vec<Override>,
}

impl Validated {
    /// `metadata.name`.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// `spec.base`.
    #[must_use]
    pub fn base(&self) -> Base {
        self.base
    }
}

/// Validates one EvidenceProfile document.
///
/// # Errors
/// [`ProfileError::TooLarge`] over [`MAX_BYTES`]; otherwise
/// [`ProfileError::Invalid`] with every problem of the document.
pub fn validate(source: &str) -> Result<Validated, ProfileError> {
    if source.len() > MAX_BYTES {
        return Err(ProfileError::TooLarge {
            size: source.len(),
            limit: MAX_BYTES,
        });
    }
    let mut problems = problem::Problems::default();
    let Some(root) = yaml::parse(source, &mut problems) else {
        return Err(ProfileError::Invalid {
            problems: problems.into_sorted(),
        });
    };
    let walk = validate::walk(&root, &mut problems);
    let validated = Validated {
        name: walk.name.clone(),
        base: walk.base,
        overrides: walk.overrides.clone(),
    };
    validate::consistency(&merge(&validated), &walk, &mut problems);
    if problems.is_empty() {
        Ok(validated)
    } else {
        Err(ProfileError::Invalid {
            problems: problems.into_sorted(),
        })
    }
}

fn merge(v: &Validated) -> CompiledConfig {
    let mut c = v.base.config();
    c.profile.clone_from(&v.name);
    for o in &v.overrides {
        o.apply(&mut c);
    }
    c
}

/// Compiles a validated profile. Infallible: every failure is a validation
/// problem.
#[must_use]
pub fn compile(profile: &Validated) -> CompiledConfig {
    merge(profile)
}
