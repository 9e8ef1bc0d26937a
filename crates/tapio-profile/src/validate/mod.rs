//! Validation: checks a parsed profile against the closed v1 schema and
//! collects every problem, each with its path and line:column.
//!
//! This module walks the document's structure (top level, `metadata`,
//! `spec`); `node` reads one node as the type a field expects, `setting`
//! reads one setting's value into an override, and `consistency` checks
//! pairs of settings on the merged config.

mod consistency;
mod node;
mod setting;

use std::collections::HashMap;

use crate::fields::{FOLD_WINDOW, SECTIONS};
use crate::problem::{Location, ProblemKind, Problems};
use crate::yaml::{join, Node, Value};
use crate::{Base, Override, API_VERSION, KIND};

pub(crate) use consistency::consistency;
use node::{mapping, string, unknown, word};
use setting::field;

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
