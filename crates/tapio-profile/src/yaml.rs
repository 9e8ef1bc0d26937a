//! Spanned YAML tree: a profile document as nodes with line:column, built
//! from saphyr's event parser.
//!
//! ## Design constraints
//! - Input larger than [`MAX_BYTES`] is refused before parsing.
//! - Anchors, aliases and explicit tags are rejected where they appear; an
//!   alias is never expanded, so alias bombs ("billion laughs") cost nothing.
//! - Nesting deeper than [`MAX_DEPTH`] is reported once and its content
//!   skipped; the builder keeps an explicit stack, it does not recurse.
//! - Duplicate keys in one mapping are reported at the second key.
//! - Exactly one document; a syntax error stops the build (the parser cannot
//!   resynchronise), and is reported with the problems found before it.

use std::collections::HashMap;

use saphyr_parser::{Event, Parser, ScalarStyle, Span};

use crate::problem::{Location, ProblemKind, Problems};

/// Largest profile accepted, bytes. Real profiles are under 4 KiB.
pub const MAX_BYTES: usize = 64 * 1024;
/// Deepest nesting accepted (a valid profile needs 5).
pub const MAX_DEPTH: usize = 16;

/// A node with its position.
#[derive(Debug, Clone)]
pub(crate) struct Node {
    pub(crate) at: Location,
    pub(crate) value: Value,
}

/// A node's value.
#[derive(Debug, Clone)]
pub(crate) enum Value {
    /// A scalar; `plain` when unquoted (only plain scalars can be numbers,
    /// booleans or null).
    Scalar { text: String, plain: bool },
    /// A sequence.
    Seq(Vec<Node>),
    /// A mapping with scalar keys, in document order, without duplicates.
    Map(Vec<(Key, Node)>),
    /// Something already reported (alias, too deep, complex key).
    Bad,
}

/// A mapping key.
#[derive(Debug, Clone)]
pub(crate) struct Key {
    pub(crate) at: Location,
    pub(crate) name: String,
}

impl Node {
    /// Short description of the node's type for "expected X, found Y".
    pub(crate) fn describe(&self) -> String {
        match &self.value {
            Value::Scalar { text, plain: true } if is_null(text) => "null".into(),
            Value::Scalar { text, plain } => {
                let shown: String = text.chars().take(40).collect();
                if *plain {
                    format!("`{shown}`")
                } else {
                    format!("string \"{shown}\"")
                }
            }
            Value::Seq(_) => "a list".into(),
            Value::Map(_) => "a mapping".into(),
            Value::Bad => "an invalid node".into(),
        }
    }
}

pub(crate) fn is_null(text: &str) -> bool {
    matches!(text, "" | "~" | "null" | "Null" | "NULL")
}

fn loc(span: &Span) -> Location {
    Location {
        line: span.start.line(),
        column: span.start.col() + 1,
    }
}

enum Frame {
    Seq(Location, String, Vec<Node>),
    Map {
        at: Location,
        path: String,
        entries: Vec<(Key, Node)>,
        seen: HashMap<String, usize>,
        key: Option<Option<Key>>,
    },
}

/// Parses `src` into one root node, reporting structural problems into
/// `problems`. `None` when there is no usable tree (syntax error, empty).
pub(crate) fn parse(src: &str, problems: &mut Problems) -> Option<Node> {
    let mut parser = Parser::new_from_str(src);
    let mut stack: Vec<Frame> = Vec::new();
    let mut root: Option<Node> = None;
    let mut documents = 0usize;
    // Depth of skipped content below a too-deep node (0 = not skipping).
    let mut skipping = 0usize;
    let mut depth_reported = false;

    while let Some(next) = parser.next_event() {
        let (event, span) = match next {
            Ok(ev) => ev,
            Err(e) => {
                let m = e.marker();
                problems.push(
                    Location {
                        line: m.line(),
                        column: m.col() + 1,
                    },
                    "",
                    ProblemKind::Syntax {
                        message: e.info().to_owned(),
                    },
                );
                return None;
            }
        };
        let at = loc(&span);
        if skipping > 0 {
            match event {
                Event::SequenceStart(..) | Event::MappingStart(..) => skipping += 1,
                Event::SequenceEnd | Event::MappingEnd => skipping -= 1,
                _ => {}
            }
            if skipping == 0 {
                finish(
                    &mut stack,
                    &mut root,
                    Node {
                        at,
                        value: Value::Bad,
                    },
                    problems,
                );
            }
            continue;
        }
        let anchored = |id: usize, problems: &mut Problems| {
            if id != 0 {
                problems.push(at, "", ProblemKind::Unsupported { what: "anchors" });
            }
        };
        let tagged = |tag: bool, problems: &mut Problems| {
            if tag {
                problems.push(at, "", ProblemKind::Unsupported { what: "tags" });
            }
        };
        match event {
            Event::StreamStart | Event::StreamEnd | Event::Nothing | Event::DocumentEnd => {}
            Event::DocumentStart(_) => {
                documents += 1;
                if documents > 1 {
                    problems.push(at, "", ProblemKind::MultipleDocuments);
                    break;
                }
            }
            Event::Alias(_) => {
                problems.push(at, "", ProblemKind::Unsupported { what: "aliases" });
                finish(
                    &mut stack,
                    &mut root,
                    Node {
                        at,
                        value: Value::Bad,
                    },
                    problems,
                );
            }
            Event::Scalar(text, style, anchor, tag) => {
                anchored(anchor, problems);
                tagged(tag.is_some(), problems);
                let node = Node {
                    at,
                    value: Value::Scalar {
                        text: text.into_owned(),
                        plain: style == ScalarStyle::Plain,
                    },
                };
                finish(&mut stack, &mut root, node, problems);
            }
            Event::SequenceStart(anchor, ref tag) | Event::MappingStart(anchor, ref tag) => {
                let is_seq = matches!(event, Event::SequenceStart(..));
                anchored(anchor, problems);
                tagged(tag.is_some(), problems);
                if stack.len() >= MAX_DEPTH {
                    if !depth_reported {
                        problems.push(at, "", ProblemKind::TooDeep { limit: MAX_DEPTH });
                        depth_reported = true;
                    }
                    skipping = 1;
                    continue;
                }
                let path = child_path(&stack);
                stack.push(if is_seq {
                    Frame::Seq(at, path, Vec::new())
                } else {
                    Frame::Map {
                        at,
                        path,
                        entries: Vec::new(),
                        seen: HashMap::new(),
                        key: None,
                    }
                });
            }
            Event::SequenceEnd | Event::MappingEnd => {
                let node = match stack.pop() {
                    Some(Frame::Seq(at, _, items)) => Node {
                        at,
                        value: Value::Seq(items),
                    },
                    Some(Frame::Map { at, entries, .. }) => Node {
                        at,
                        value: Value::Map(entries),
                    },
                    None => continue,
                };
                finish(&mut stack, &mut root, node, problems);
            }
        }
    }
    if documents == 0 || root.is_none() {
        if problems.is_empty() {
            problems.push(Location { line: 1, column: 1 }, "", ProblemKind::Empty);
        }
        return None;
    }
    root
}

/// Dotted path of the node about to start under the top of `stack`.
fn child_path(stack: &[Frame]) -> String {
    match stack.last() {
        None => String::new(),
        Some(Frame::Seq(_, path, items)) => format!("{path}[{}]", items.len()),
        Some(Frame::Map { path, key, .. }) => match key {
            Some(Some(k)) => join(path, &k.name),
            _ => path.clone(),
        },
    }
}

/// `parent.child`, or `child` at the root.
pub(crate) fn join(parent: &str, child: &str) -> String {
    if parent.is_empty() {
        child.to_owned()
    } else {
        format!("{parent}.{child}")
    }
}

/// Hands a completed node to its parent (or makes it the root).
fn finish(stack: &mut [Frame], root: &mut Option<Node>, node: Node, problems: &mut Problems) {
    match stack.last_mut() {
        None => *root = Some(node),
        Some(Frame::Seq(_, _, items)) => items.push(node),
        Some(Frame::Map {
            entries,
            seen,
            key,
            path,
            ..
        }) => match key.take() {
            None => {
                // This node is a key.
                let k = match node.value {
                    Value::Scalar { text, .. } => match seen.get(&text) {
                        Some(&first_line) => {
                            problems.push(
                                node.at,
                                join(path, &text),
                                ProblemKind::DuplicateKey {
                                    key: text,
                                    first_line,
                                },
                            );
                            None
                        }
                        None => {
                            seen.insert(text.clone(), node.at.line);
                            Some(Key {
                                at: node.at,
                                name: text,
                            })
                        }
                    },
                    Value::Bad => None,
                    Value::Seq(_) | Value::Map(_) => {
                        problems.push(
                            node.at,
                            "",
                            ProblemKind::Unsupported {
                                what: "complex keys",
                            },
                        );
                        None
                    }
                };
                *key = Some(k);
            }
            Some(Some(k)) => entries.push((k, node)),
            Some(None) => {} // value of a rejected key: dropped
        },
    }
}
