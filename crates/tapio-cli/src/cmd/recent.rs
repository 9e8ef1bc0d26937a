//! `tapio recent`: the occurrences of a recent window, oldest first.

use std::io::Write;

use tapio_common::time::format_rfc3339_millis;
use tapio_common::OccurrenceRecord;

use crate::cmd::{report_empty, report_skipped, write_json, CliError, Ctx};
use crate::query::{count, Filter};
use crate::render::{facts, severity_paint, Paint, Style};
use crate::report;
use crate::window::since_ns;

/// Runs `recent`.
///
/// # Errors
/// When `since` is malformed, the directory cannot be read or output
/// cannot be written.
pub fn run(
    ctx: &Ctx,
    since: &str,
    limit: Option<usize>,
    json: bool,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    let filter = Filter {
        since_ns: since_ns(since, ctx.now_ns)?,
        ..Filter::default()
    };
    let dir = ctx.open()?;
    let rep = report::recent(&dir, &filter, limit)?;
    for f in &rep.found {
        write_occurrence(&ctx.style, json, &f.rec, f.t_ns, out)?;
    }
    out.flush()?;
    report_skipped(&dir, &rep.files);
    if rep.found.is_empty() {
        if rep.files.considered == 0 && dir.list(0)?.0.is_empty() {
            report_empty(&dir);
        } else {
            eprintln!(
                "tapio: no occurrences since {} in `{}`",
                format_rfc3339_millis(filter.since_ns),
                dir.path().display()
            );
        }
    } else if rep.matched_occurrences > rep.found.len() as u64 {
        eprintln!(
            "tapio: showing the newest {} of {} matching occurrences",
            rep.found.len(),
            rep.matched_occurrences
        );
    }
    Ok(())
}

/// Writes one occurrence: a JSON line, a coloured terminal line, or a plain
/// `timestamp severity type count=N key=value...` line.
///
/// # Errors
/// When writing fails.
pub fn write_occurrence(
    style: &Style,
    json: bool,
    rec: &OccurrenceRecord,
    t_ns: u64,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    if json {
        return write_json(out, rec);
    }
    let ts = format_rfc3339_millis(t_ns);
    let n = count(rec);
    let facts = facts(rec);
    if style.tty {
        let kind = rec.kind.strip_prefix("kernel.").unwrap_or(&rec.kind);
        let sev = format!("{:<8}", rec.severity.as_str());
        writeln!(
            out,
            "{}  {}  {:<28}  {:>5}  {}",
            style.paint(&ts, Paint::Dim),
            style.paint(&sev, severity_paint(rec.severity)),
            kind,
            format!("x{n}"),
            facts
        )?;
    } else {
        let sep = if facts.is_empty() { "" } else { " " };
        writeln!(
            out,
            "{ts} {} {} count={n}{sep}{facts}",
            rec.severity.as_str(),
            rec.kind
        )?;
    }
    Ok(())
}
