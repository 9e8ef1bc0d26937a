//! One setting's value read into an [`Override`]: the read its setting
//! type calls for, signal sets and the `exitCodes` mapping.

use crate::fields::{signal_number, Field, Setting};
use crate::problem::{ProblemKind, Problems};
use crate::yaml::{join, Node, Value};
use crate::{ExitCodeReport, Override};

use super::node::{boolean, integer, list, mapping, unknown, wrong_type};
use super::Walk;

pub(super) fn field(f: &Field, node: &Node, path: &str, w: &mut Walk, problems: &mut Problems) {
    let taken = match f.setting {
        Setting::Bool(at) => boolean(node, path, problems).map(|v| Override::Bool(at, v)),
        Setting::U32 { min, max, at } => {
            integer(node, path, u64::from(min), u64::from(max), problems)
                .map(|v| Override::U32(at, u32::try_from(v).unwrap_or(max)))
        }
        Setting::Signals => signals(node, path, problems).map(Override::Signals),
        Setting::ExitCodes => exit_codes(node, path, problems),
    };
    if let Some(o) = taken {
        w.locations.insert(path.to_owned(), node.at);
        w.overrides.push(o);
    }
}

/// A set of small numbers, each read by `one`; duplicates are problems.
/// `None` when any item is bad (the field is not overridden then).
fn number_set(
    node: &Node,
    path: &str,
    problems: &mut Problems,
    one: impl Fn(&Node, &str, &mut Problems) -> Option<u8>,
) -> Option<Vec<u8>> {
    let items = list(node, path, problems)?;
    let mut out = Vec::with_capacity(items.len());
    let mut ok = true;
    for (i, item) in items.iter().enumerate() {
        let item_path = format!("{path}[{i}]");
        match one(item, &item_path, problems) {
            Some(v) if out.contains(&v) => {
                ok = false;
                problems.push(
                    item.at,
                    item_path,
                    ProblemKind::DuplicateEntry {
                        value: item.describe(),
                    },
                );
            }
            Some(v) => out.push(v),
            None => ok = false,
        }
    }
    out.sort_unstable();
    ok.then_some(out)
}

fn signals(node: &Node, path: &str, problems: &mut Problems) -> Option<Vec<u8>> {
    number_set(node, path, problems, |item, p, problems| {
        match &item.value {
            Value::Scalar { text, plain: true } if text.bytes().all(|b| b.is_ascii_digit()) => {
                integer(item, p, 1, 64, problems).and_then(|v| u8::try_from(v).ok())
            }
            Value::Scalar { text, .. } => {
                let n = signal_number(text);
                if n.is_none() {
                    problems.push(
                        item.at,
                        p,
                        ProblemKind::InvalidValue {
                            value: text.chars().take(40).collect(),
                            expected: "a signal name such as SIGSEGV, or a number 1..=64",
                        },
                    );
                }
                n
            }
            _ => {
                wrong_type(item, p, "a signal name or number", problems);
                None
            }
        }
    })
}

fn exit_code_list(node: &Node, path: &str, problems: &mut Problems) -> Option<Vec<u8>> {
    number_set(node, path, problems, |item, p, problems| {
        integer(item, p, 1, 255, problems).and_then(|v| u8::try_from(v).ok())
    })
}

fn exit_codes(node: &Node, path: &str, problems: &mut Problems) -> Option<Override> {
    let entries = mapping(node, path, problems)?;
    let mut report = None;
    let mut ignore = Vec::new();
    let mut ok = true;
    let mut report_list: Option<(&Node, Vec<u8>)> = None;
    for (k, v) in entries {
        let p = join(path, &k.name);
        match k.name.as_str() {
            "report" => match &v.value {
                Value::Scalar { text, plain: true } if text == "all" => {
                    report = Some(ExitCodeReport::AllNonZero);
                }
                Value::Seq(_) => match exit_code_list(v, &p, problems) {
                    Some(l) => {
                        report = Some(ExitCodeReport::Only(l.clone()));
                        report_list = Some((v, l));
                    }
                    None => ok = false,
                },
                _ => {
                    ok = false;
                    wrong_type(v, p, "a list of exit codes or `all`", problems);
                }
            },
            "ignore" => match exit_code_list(v, &p, problems) {
                Some(l) => ignore = l,
                None => ok = false,
            },
            _ => {
                ok = false;
                unknown(k, path, "report, ignore", problems);
            }
        }
    }
    if let Some((report_node, listed)) = report_list {
        let both: Vec<String> = listed
            .iter()
            .filter(|c| ignore.contains(c))
            .map(u8::to_string)
            .collect();
        if !both.is_empty() {
            ok = false;
            problems.push(
                report_node.at,
                join(path, "report"),
                ProblemKind::Inconsistent {
                    message: format!(
                        "exit codes {} are both reported and ignored",
                        both.join(", ")
                    ),
                },
            );
        }
    }
    ok.then_some(Override::ExitCodes { report, ignore })
}
