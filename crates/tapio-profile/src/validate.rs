//! Validation: checks a parsed profile against the closed v1 schema and
//! collects every problem, each with its path and line:column.

use std::collections::HashMap;

use tapio_wire::CompiledConfig;

use crate::fields::{signal_number, Field, Setting, FOLD_WINDOW, SECTIONS};
use crate::problem::{Location, ProblemKind, Problems};
use crate::yaml::{is_null, join, Key, Node, Value};
use crate::{Base, ExitCodeReport, Override, API_VERSION, KIND};

/// What the walk found: the overrides and where each was written.
pub(crate) struct Walk {
    pub(crate) name: String,
    pub(crate) base: Base,
    pub(crate) overrides: Vec<Override>,
    pub(crate) locations: HashMap<String, Location>,
}

pub(crate) fn walk(root: &Node, problems: &mut Problems) -> Walk {
    let mut w = Walk {
        name: String::new(),
        base: Base::ProductionDefault,
        overrides: Vec::new(),
        locations: HashMap::new(),
    };
    let Some(top) = mapping(root, "", problems) else {
        return w;
    };
    let mut seen = Seen::default();
    for (k, v) in top {
        match k.name.as_str() {
            "apiVersion" => {
                seen.api = true;
                word(v, "apiVersion", API_VERSION, problems);
            }
            "kind" => {
                seen.kind = true;
                word(v, "kind", KIND, problems);
            }
            "metadata" => {
                seen.metadata = true;
                metadata(v, &mut w, problems);
            }
            "spec" => {
                seen.spec = true;
                spec(v, &mut w, problems);
            }
            _ => unknown(k, "", "apiVersion, kind, metadata, spec", problems),
        }
    }
    for (present, field) in [
        (seen.api, "apiVersion"),
        (seen.kind, "kind"),
        (seen.metadata, "metadata"),
        (seen.spec, "spec"),
    ] {
        if !present {
            problems.push(root.at, "", ProblemKind::MissingField { field });
        }
    }
    w
}

#[derive(Default)]
struct Seen {
    api: bool,
    kind: bool,
    metadata: bool,
    spec: bool,
}

fn unknown(k: &Key, parent: &str, expected: &str, problems: &mut Problems) {
    problems.push(
        k.at,
        join(parent, &k.name),
        ProblemKind::UnknownField {
            field: k.name.clone(),
            expected: expected.to_owned(),
        },
    );
}

fn mapping<'a>(node: &'a Node, path: &str, problems: &mut Problems) -> Option<&'a [(Key, Node)]> {
    match &node.value {
        Value::Map(entries) => Some(entries),
        Value::Bad => None,
        _ => {
            problems.push(
                node.at,
                path,
                ProblemKind::WrongType {
                    expected: "a mapping",
                    found: node.describe(),
                },
            );
            None
        }
    }
}

fn string<'a>(node: &'a Node, path: &str, problems: &mut Problems) -> Option<&'a str> {
    match &node.value {
        Value::Scalar { text, plain } if !(*plain && is_null(text)) => Some(text),
        Value::Bad => None,
        _ => {
            problems.push(
                node.at,
                path,
                ProblemKind::WrongType {
                    expected: "a string",
                    found: node.describe(),
                },
            );
            None
        }
    }
}

fn word(node: &Node, path: &str, expected: &'static str, problems: &mut Problems) {
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

fn metadata(node: &Node, w: &mut Walk, problems: &mut Problems) {
    let Some(entries) = mapping(node, "metadata", problems) else {
        return;
    };
    let mut named = false;
    for (k, v) in entries {
        if k.name == "name" {
            named = true;
            if let Some(s) = string(v, "metadata.name", problems) {
                if is_dns_label(s) {
                    w.name = s.to_owned();
                } else {
                    problems.push(
                        v.at,
                        "metadata.name",
                        ProblemKind::InvalidValue {
                            value: s.chars().take(80).collect(),
                            expected: "1-63 characters of a-z, 0-9 and `-`, starting and ending alphanumeric",
                        },
                    );
                }
            }
        } else {
            unknown(k, "metadata", "name", problems);
        }
    }
    if !named {
        problems.push(
            node.at,
            "metadata",
            ProblemKind::MissingField { field: "name" },
        );
    }
}

fn is_dns_label(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        && b[0] != b'-'
        && b[b.len() - 1] != b'-'
}

fn spec(node: &Node, w: &mut Walk, problems: &mut Problems) {
    let Some(entries) = mapping(node, "spec", problems) else {
        return;
    };
    for (k, v) in entries {
        let path = join("spec", &k.name);
        if k.name == "base" {
            if let Some(s) = string(v, &path, problems) {
                match s {
                    "production-default" => w.base = Base::ProductionDefault,
                    _ => problems.push(
                        v.at,
                        path,
                        ProblemKind::InvalidValue {
                            value: s.to_owned(),
                            expected: "`production-default`",
                        },
                    ),
                }
            }
        } else if k.name == FOLD_WINDOW.name {
            field(&FOLD_WINDOW, v, &path, w, problems);
        } else if let Some(section) = SECTIONS.iter().find(|s| s.name == k.name) {
            let Some(fields) = mapping(v, &path, problems) else {
                continue;
            };
            for (fk, fv) in fields {
                match section.fields.iter().find(|f| f.name == fk.name) {
                    Some(f) => field(f, fv, &join(&path, &fk.name), w, problems),
                    None => {
                        let expected: Vec<&str> = section.fields.iter().map(|f| f.name).collect();
                        unknown(fk, &path, &expected.join(", "), problems);
                    }
                }
            }
        } else if matches!(v.value, Value::Map(_)) {
            problems.push(
                k.at,
                path,
                ProblemKind::UnknownObserver {
                    name: k.name.clone(),
                },
            );
        } else {
            unknown(
                k,
                "spec",
                "base, foldWindowMs, network, container, storage, node",
                problems,
            );
        }
    }
}

fn field(f: &Field, node: &Node, path: &str, w: &mut Walk, problems: &mut Problems) {
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

fn boolean(node: &Node, path: &str, problems: &mut Problems) -> Option<bool> {
    match &node.value {
        Value::Scalar { text, plain: true } => match text.as_str() {
            "true" | "True" | "TRUE" => return Some(true),
            "false" | "False" | "FALSE" => return Some(false),
            _ => {}
        },
        Value::Bad => return None,
        _ => {}
    }
    problems.push(
        node.at,
        path,
        ProblemKind::WrongType {
            expected: "a boolean",
            found: node.describe(),
        },
    );
    None
}

/// A plain decimal integer in `min..=max`.
fn integer(node: &Node, path: &str, min: u64, max: u64, problems: &mut Problems) -> Option<u64> {
    let text = match &node.value {
        Value::Scalar { text, plain: true } if !is_null(text) => text.as_str(),
        Value::Bad => return None,
        _ => {
            problems.push(
                node.at,
                path,
                ProblemKind::WrongType {
                    expected: "an integer",
                    found: node.describe(),
                },
            );
            return None;
        }
    };
    let digits = text.strip_prefix(['-', '+']).unwrap_or(text);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        problems.push(
            node.at,
            path,
            ProblemKind::WrongType {
                expected: "an integer",
                found: node.describe(),
            },
        );
        return None;
    }
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

fn list<'a>(node: &'a Node, path: &str, problems: &mut Problems) -> Option<&'a [Node]> {
    match &node.value {
        Value::Seq(items) => Some(items),
        Value::Bad => None,
        _ => {
            problems.push(
                node.at,
                path,
                ProblemKind::WrongType {
                    expected: "a list",
                    found: node.describe(),
                },
            );
            None
        }
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
                problems.push(
                    item.at,
                    p,
                    ProblemKind::WrongType {
                        expected: "a signal name or number",
                        found: item.describe(),
                    },
                );
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
                    problems.push(
                        v.at,
                        p,
                        ProblemKind::WrongType {
                            expected: "a list of exit codes or `all`",
                            found: v.describe(),
                        },
                    );
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

/// Cross-field checks on the merged config; reported at the override that
/// made the pair inconsistent. A check is skipped when one of its fields
/// already has a problem (its override was not applied, so the pair would be
/// judged on a value the author did not write).
pub(crate) fn consistency(c: &CompiledConfig, w: &Walk, problems: &mut Problems) {
    let at = |fields: &[&str]| -> (Location, String) {
        fields
            .iter()
            .find_map(|f| w.locations.get(*f).map(|l| (*l, (*f).to_owned())))
            .unwrap_or_default()
    };
    let clean = |fields: &[&str], problems: &Problems| fields.iter().all(|f| !problems.touches(f));
    let storage = [
        "spec.storage.latencyCriticalUs",
        "spec.storage.latencyWarningUs",
    ];
    if clean(&storage, problems) && c.storage.latency_critical_us < c.storage.latency_warning_us {
        let (l, p) = at(&storage);
        problems.push(
            l,
            p,
            ProblemKind::Inconsistent {
                message: format!(
                    "latencyCriticalUs ({}) is below latencyWarningUs ({})",
                    c.storage.latency_critical_us, c.storage.latency_warning_us
                ),
            },
        );
    }
    let rtt = [
        "spec.network.rttReportIntervalMs",
        "spec.network.rttSampleIntervalMs",
    ];
    if clean(&rtt, problems) && c.network.rtt_report_interval_ms < c.network.rtt_sample_interval_ms
    {
        let (l, p) = at(&rtt);
        problems.push(
            l,
            p,
            ProblemKind::Inconsistent {
                message: format!(
                    "rttReportIntervalMs ({}) is shorter than rttSampleIntervalMs ({})",
                    c.network.rtt_report_interval_ms, c.network.rtt_sample_interval_ms
                ),
            },
        );
    }
    let exits = [
        "spec.container.fatalSignals",
        "spec.container.exitCodes",
        "spec.container.abnormalExit",
    ];
    if clean(&exits, problems)
        && c.container.abnormal_exit
        && c.container.fatal_signals.is_empty()
        && c.container.exit_codes.is_empty()
    {
        let (l, p) = at(&exits);
        problems.push(
            l,
            p,
            ProblemKind::Inconsistent {
                message: "abnormalExit is enabled but no fatal signal or exit code is selected"
                    .into(),
            },
        );
    }
}
