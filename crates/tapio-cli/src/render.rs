//! Terminal rendering: colour and aligned tables on a terminal, plain
//! `key=value` text when piped, and the per-minute sparkline.
//!
//! Colour is used only when stdout is a terminal, `NO_COLOR` is unset and
//! `TERM` is not `dumb`.

use std::io::IsTerminal;

use tapio_common::{OccurrenceRecord, Severity};

use crate::health::Verdict;

/// Data keys that every occurrence carries or that other columns show.
const HIDDEN_FACTS: [&str; 5] = [
    "config_generation",
    "timestamp_ns",
    "count",
    "window_start_ns",
    "window_end_ns",
];

/// Attribution facts that `pod=` and `container=` stand for when the
/// occurrence names a pod (`--json` keeps them all).
const POD_FACTS: [&str; 5] = [
    "pod_uid",
    "container_id",
    "cgroup_path",
    "qos_class",
    "container_runtime",
];

/// Characters of a container id shown (the runtimes' short form).
pub const SHORT_ID: usize = 12;

/// `pod=<uid> container=<short id>` of an occurrence that names a pod.
#[must_use]
pub fn owner(rec: &OccurrenceRecord) -> Option<String> {
    let pod = rec.data.get("pod_uid")?.as_str()?;
    let mut s = format!("pod={pod}");
    if let Some(c) = rec.data.get("container_id").and_then(|v| v.as_str()) {
        s.push_str(" container=");
        s.push_str(c.get(..SHORT_ID).unwrap_or(c));
    }
    Some(s)
}

/// How output looks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Style {
    /// Stdout is a terminal: tables and Unicode sparklines.
    pub tty: bool,
    /// ANSI colour.
    pub colour: bool,
}

/// A colour for one cell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Paint {
    /// No colour.
    Plain,
    /// Critical, failed.
    Red,
    /// Warning, degraded.
    Yellow,
    /// Healthy, running.
    Green,
    /// Secondary text.
    Dim,
    /// Headers.
    Bold,
}

impl Style {
    /// The style for this process's stdout.
    #[must_use]
    pub fn detect() -> Style {
        let tty = std::io::stdout().is_terminal();
        let colour = tty
            && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
            && std::env::var_os("TERM").is_none_or(|t| t != "dumb");
        Style { tty, colour }
    }

    /// `text` in `paint`, when colour is on.
    #[must_use]
    pub fn paint(&self, text: &str, paint: Paint) -> String {
        let code = match paint {
            Paint::Plain => return text.to_owned(),
            Paint::Red => "31",
            Paint::Yellow => "33",
            Paint::Green => "32",
            Paint::Dim => "2",
            Paint::Bold => "1",
        };
        if self.colour && !text.trim().is_empty() {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_owned()
        }
    }
}

/// The colour of a severity.
#[must_use]
pub fn severity_paint(s: Severity) -> Paint {
    match s {
        Severity::Info => Paint::Plain,
        Severity::Warning => Paint::Yellow,
        Severity::Critical => Paint::Red,
    }
}

/// The colour of a verdict.
#[must_use]
pub fn verdict_paint(v: Verdict) -> Paint {
    match v {
        Verdict::Healthy => Paint::Green,
        Verdict::Degraded | Verdict::Unknown => Paint::Yellow,
        Verdict::Critical | Verdict::Failed => Paint::Red,
        Verdict::Disabled | Verdict::Unavailable => Paint::Dim,
    }
}

/// Rows of cells as an aligned table: columns padded to their widest cell
/// (the last column is not padded), colour applied after padding.
#[must_use]
pub fn table(style: &Style, rows: &[Vec<(String, Paint)>]) -> String {
    let cols = rows.iter().map(Vec::len).max().unwrap_or(0);
    let mut widths = vec![0; cols];
    for row in rows {
        for (i, (text, _)) in row.iter().enumerate() {
            widths[i] = widths[i].max(text.chars().count());
        }
    }
    let mut out = String::new();
    for row in rows {
        let mut line = String::new();
        for (i, (text, paint)) in row.iter().enumerate() {
            if i > 0 {
                line.push_str("  ");
            }
            let mut cell = text.clone();
            if i + 1 < row.len() {
                let pad = widths[i] - text.chars().count();
                cell.extend(std::iter::repeat_n(' ', pad));
            }
            line.push_str(&style.paint(&cell, *paint));
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// One character per minute, scaled to the busiest minute: Unicode blocks on
/// a terminal, `.:-=+*#%@` (`.` for none) otherwise.
#[must_use]
pub fn sparkline(minutes: &[u64], unicode: bool) -> String {
    const BLOCKS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
    const ASCII: [char; 8] = [':', '-', '=', '+', '*', '#', '%', '@'];
    let max = minutes.iter().copied().max().unwrap_or(0);
    minutes
        .iter()
        .map(|&n| {
            if n == 0 {
                return if unicode { '·' } else { '.' };
            }
            // 1..=max onto 0..=7, rounding up so a single fact still shows.
            let level = usize::try_from((n * 8).div_ceil(max).saturating_sub(1))
                .unwrap_or(7)
                .min(7);
            if unicode {
                BLOCKS[level]
            } else {
                ASCII[level]
            }
        })
        .collect()
}

/// The facts of an occurrence as `key=value` pairs, sorted by key, without
/// the bookkeeping keys; strings with spaces, quotes or `=` are JSON-quoted.
/// An occurrence that names a pod starts with [`owner`], which stands for
/// its attribution facts.
#[must_use]
pub fn facts(rec: &OccurrenceRecord) -> String {
    let owner = owner(rec);
    let mut out = owner.clone().unwrap_or_default();
    for (k, v) in &rec.data {
        if HIDDEN_FACTS.contains(&k.as_str())
            || (owner.is_some() && POD_FACTS.contains(&k.as_str()))
        {
            continue;
        }
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(k);
        out.push('=');
        match v {
            serde_json::Value::String(s)
                if !s.is_empty()
                    && !s.contains(|c: char| c.is_whitespace() || c == '"' || c == '=') =>
            {
                out.push_str(s);
            }
            other => out.push_str(&other.to_string()),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pod_is_shown_with_the_short_container_id_and_other_paths_as_they_are() {
        let rec: OccurrenceRecord = serde_json::from_str(&format!(
            r#"{{"id":"01M89ATT32SCX2F1EEETHR9Q96","timestamp":"2026-11-25T12:28:04.066Z","source":"tapio",
            "type":"kernel.container.abnormal_exit","protocol_version":"1.0","severity":"warning","outcome":"failure",
            "error":{{"code":"ABNORMAL_EXIT","message":"m"}},
            "data":{{"pid":7,"pod_uid":"u-1","container_id":"{}","cgroup_path":"/kubepods/podu-1/x","qos_class":"BestEffort"}}}}"#,
            "ab".repeat(32)
        ))
        .unwrap();
        assert_eq!(facts(&rec), "pod=u-1 container=abababababab pid=7");
        let plain: OccurrenceRecord = serde_json::from_str(
            r#"{"id":"01M89ATT32SCX2F1EEETHR9Q96","timestamp":"2026-11-25T12:28:04.066Z","source":"tapio",
            "type":"kernel.container.abnormal_exit","protocol_version":"1.0","severity":"warning","outcome":"failure",
            "error":{"code":"ABNORMAL_EXIT","message":"m"},"data":{"pid":7,"cgroup_path":"/system.slice/x.service"}}"#,
        )
        .unwrap();
        assert_eq!(facts(&plain), "cgroup_path=/system.slice/x.service pid=7");
    }

    #[test]
    fn sparkline_scales_to_the_busiest_minute() {
        assert_eq!(sparkline(&[0, 1, 4, 8], false), ".:+@");
        assert_eq!(sparkline(&[0, 1, 4, 8], true), "·▁▄█");
        assert_eq!(sparkline(&[0, 0], false), "..");
        assert_eq!(sparkline(&[1, 1000], false), ":@");
    }

    #[test]
    fn table_aligns_and_paints_after_padding() {
        let plain = Style {
            tty: true,
            colour: false,
        };
        let rows = vec![
            vec![
                ("a".to_owned(), Paint::Plain),
                ("bb".to_owned(), Paint::Plain),
                ("c".to_owned(), Paint::Plain),
            ],
            vec![
                ("aaa".to_owned(), Paint::Red),
                ("b".to_owned(), Paint::Plain),
                ("".to_owned(), Paint::Plain),
            ],
        ];
        assert_eq!(table(&plain, &rows), "a    bb  c\naaa  b\n");
        let colour = Style {
            tty: true,
            colour: true,
        };
        assert!(table(&colour, &rows).contains("\x1b[31maaa\x1b[0m  b"));
    }
}
