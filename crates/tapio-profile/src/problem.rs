//! Validation problems: what is wrong with a profile, and where.

use std::fmt;

/// A position in the source document, 1-based line and column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Location {
    /// Line, from 1.
    pub line: usize,
    /// Column, from 1 (characters, not bytes).
    pub column: usize,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.column)
    }
}

/// One problem of a document: where, which field, what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Where in the source.
    pub location: Location,
    /// Dotted path of the field (`spec.storage.latencyCriticalUs`,
    /// `spec.container.fatalSignals[2]`); empty for the document itself.
    pub path: String,
    /// What is wrong.
    pub kind: ProblemKind,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            write!(f, "{}: {}", self.location, self.kind)
        } else {
            write!(f, "{}: `{}`: {}", self.location, self.path, self.kind)
        }
    }
}

/// What is wrong with one place of a profile.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProblemKind {
    /// The YAML itself does not parse; nothing after this point was checked.
    #[error("YAML syntax error: {message}")]
    Syntax {
        /// The parser's message.
        message: String,
    },
    /// A field this schema version does not have.
    #[error("unknown field `{field}` (expected one of: {expected})")]
    UnknownField {
        /// The field name as written.
        field: String,
        /// Allowed names, comma-separated.
        expected: String,
    },
    /// An observer this schema version does not have.
    #[error("unknown observer `{name}` (expected one of: network, container, storage, node)")]
    UnknownObserver {
        /// The observer name as written.
        name: String,
    },
    /// A required field is absent.
    #[error("missing required field `{field}`")]
    MissingField {
        /// The field name.
        field: &'static str,
    },
    /// The value has the wrong YAML type.
    #[error("expected {expected}, found {found}")]
    WrongType {
        /// What the schema wants.
        expected: &'static str,
        /// What the document has.
        found: String,
    },
    /// A number outside its range.
    #[error("{value} is out of range {min}..={max}")]
    OutOfRange {
        /// The value as written.
        value: String,
        /// Smallest allowed.
        min: u64,
        /// Largest allowed.
        max: u64,
    },
    /// A value that is not one of the allowed words.
    #[error("`{value}` is not allowed here (expected {expected})")]
    InvalidValue {
        /// The value as written.
        value: String,
        /// What is allowed.
        expected: &'static str,
    },
    /// Two fields that contradict each other.
    #[error("{message}")]
    Inconsistent {
        /// Which fields and values contradict each other.
        message: String,
    },
    /// The same key twice in one mapping.
    #[error("duplicate key `{key}` (first at line {first_line})")]
    DuplicateKey {
        /// The key.
        key: String,
        /// Line of its first occurrence.
        first_line: usize,
    },
    /// The same item twice in a list that is a set.
    #[error("duplicate entry {value}")]
    DuplicateEntry {
        /// The item as written.
        value: String,
    },
    /// An anchor or alias; profiles do not support them (no expansion, so no
    /// billion-laughs).
    #[error("YAML {what} are not supported in profiles")]
    Unsupported {
        /// `anchors`, `aliases`, `tags`, `complex keys`.
        what: &'static str,
    },
    /// More than one YAML document in the input.
    #[error("more than one YAML document; a profile is exactly one")]
    MultipleDocuments,
    /// The input has no document.
    #[error("empty document")]
    Empty,
    /// Nesting deeper than the limit.
    #[error("nesting deeper than {limit} levels")]
    TooDeep {
        /// The depth limit.
        limit: usize,
    },
    /// More problems than are reported.
    #[error("{omitted} more problems not shown")]
    Truncated {
        /// How many were left out.
        omitted: usize,
    },
}

/// Problems gathered during one validation run, capped at
/// [`Problems::LIMIT`] entries (the rest are counted).
#[derive(Debug, Default)]
pub(crate) struct Problems {
    list: Vec<Problem>,
    omitted: usize,
}

impl Problems {
    /// Most problems kept from one document.
    pub(crate) const LIMIT: usize = 1_000;

    pub(crate) fn push(&mut self, location: Location, path: impl Into<String>, kind: ProblemKind) {
        if self.list.len() < Self::LIMIT {
            self.list.push(Problem {
                location,
                path: path.into(),
                kind,
            });
        } else {
            self.omitted += 1;
        }
    }

    /// True when a problem was reported at `path` or below it.
    pub(crate) fn touches(&self, path: &str) -> bool {
        self.list.iter().any(|p| {
            p.path.strip_prefix(path).is_some_and(|rest| {
                rest.is_empty() || rest.starts_with('.') || rest.starts_with('[')
            })
        })
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// The problems in document order, with a final `Truncated` entry when
    /// some were left out.
    pub(crate) fn into_sorted(mut self) -> Vec<Problem> {
        self.list.sort_by_key(|p| p.location);
        if self.omitted > 0 {
            let last = self.list.last().map(|p| p.location).unwrap_or_default();
            self.list.push(Problem {
                location: last,
                path: String::new(),
                kind: ProblemKind::Truncated {
                    omitted: self.omitted,
                },
            });
        }
        self.list
    }
}
