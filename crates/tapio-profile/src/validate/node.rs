//! Typed reads of one YAML node (mapping, string, fixed word, boolean,
//! bounded integer, list), each reporting a wrong type as a problem at the
//! node; and the unknown-field problem shared by every level of the walk.

use crate::problem::{ProblemKind, Problems};
use crate::yaml::{is_null, join, Key, Node, Value};

pub(super) fn unknown(k: &Key, parent: &str, expected: &str, problems: &mut Problems) {
    problems.push(
        k.at,
        join(parent, &k.name),
        ProblemKind::UnknownField {
            field: k.name.clone(),
            expected: expected.to_owned(),
        },
    );
}

/// The problem of `node` at `path` not being what the schema wants there.
pub(super) fn wrong_type(
    node: &Node,
    path: impl Into<String>,
    expected: &'static str,
    problems: &mut Problems,
) {
    problems.push(
        node.at,
        path,
        ProblemKind::WrongType {
            expected,
            found: node.describe(),
        },
    );
}

pub(super) fn mapping<'a>(
    node: &'a Node,
    path: &str,
    problems: &mut Problems,
) -> Option<&'a [(Key, Node)]> {
    match &node.value {
        Value::Map(entries) => Some(entries),
        Value::Bad => None,
        _ => {
            wrong_type(node, path, "a mapping", problems);
            None
        }
    }
}

pub(super) fn string<'a>(node: &'a Node, path: &str, problems: &mut Problems) -> Option<&'a str> {
    match &node.value {
        Value::Scalar { text, plain } if !(*plain && is_null(text)) => Some(text),
        Value::Bad => None,
        _ => {
            wrong_type(node, path, "a string", problems);
            None
        }
    }
}

pub(super) fn word(node: &Node, path: &str, expected: &'static str, problems: &mut Problems) {
    if let Some(s) = string(node, path, problems) {
        if s != expected {
            problems.push(
                node.at,
                path,
                ProblemKind::InvalidValue {
                    value: s.to_owned(),
                    expected,
                },
            );
        }
    }
}

pub(super) fn boolean(node: &Node, path: &str, problems: &mut Problems) -> Option<bool> {
    match &node.value {
        Value::Scalar { text, plain: true } => match text.as_str() {
            "true" | "True" | "TRUE" => return Some(true),
            "false" | "False" | "FALSE" => return Some(false),
            _ => {}
        },
        Value::Bad => return None,
        _ => {}
    }
    wrong_type(node, path, "a boolean", problems);
    None
}

/// A plain decimal integer in `min..=max`.
pub(super) fn integer(
    node: &Node,
    path: &str,
    min: u64,
    max: u64,
    problems: &mut Problems,
) -> Option<u64> {
    let text = match &node.value {
        Value::Scalar { text, plain: true } if !is_null(text) => Some(text.as_str()),
        Value::Bad => return None,
        _ => None,
    };
    let digits = text
        .map(|t| t.strip_prefix(['-', '+']).unwrap_or(t))
        .filter(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()));
    let (Some(text), Some(digits)) = (text, digits) else {
        wrong_type(node, path, "an integer", problems);
        return None;
    };
    let value = if text.starts_with('-') && digits.bytes().any(|b| b != b'0') {
        None
    } else {
        digits
            .parse::<u64>()
            .ok()
            .filter(|v| (min..=max).contains(v))
    };
    if value.is_none() {
        problems.push(
            node.at,
            path,
            ProblemKind::OutOfRange {
                value: text.chars().take(40).collect(),
                min,
                max,
            },
        );
    }
    value
}

pub(super) fn list<'a>(node: &'a Node, path: &str, problems: &mut Problems) -> Option<&'a [Node]> {
    match &node.value {
        Value::Seq(items) => Some(items),
        Value::Bad => None,
        _ => {
            wrong_type(node, path, "a list", problems);
            None
        }
    }
}
