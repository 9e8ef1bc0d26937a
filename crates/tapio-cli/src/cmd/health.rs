//! `tapio health [observer]`: a verdict per observer with the rule that
//! produced it, and the last hour per minute.

use std::io::Write;

use tapio_common::Observer;

use crate::cmd::{logfmt_value, report_skipped, write_json, CliError, Ctx};
use crate::render::{sparkline, table, verdict_paint, Paint};
use crate::report::{self, HealthReport};

/// Runs `health`.
///
/// # Errors
/// When the directory cannot be read or output cannot be written.
pub fn run(
    ctx: &Ctx,
    only: Option<Observer>,
    json: bool,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    let dir = ctx.open()?;
    let rep = report::health(&dir, ctx.now_ns, only)?;
    if json {
        write_json(out, &rep)?;
    } else if ctx.style.tty {
        write_table(ctx, &rep, out)?;
    } else {
        write_plain(&rep, out)?;
    }
    out.flush()?;
    report_skipped(&dir, &rep.files);
    Ok(())
}

fn write_table(ctx: &Ctx, rep: &HealthReport, out: &mut dyn Write) -> Result<(), CliError> {
    let st = &ctx.style;
    let head = [
        "OBSERVER",
        "VERDICT",
        "LAST HOUR (1 char = 1 min, newest right)",
        "FACTS",
        "RULE",
    ];
    let mut rows = vec![head
        .iter()
        .map(|h| ((*h).to_owned(), Paint::Bold))
        .collect::<Vec<_>>()];
    for r in &rep.observers {
        let v = r.judgement.verdict;
        rows.push(vec![
            (r.observer.to_owned(), Paint::Plain),
            (v.as_str().to_owned(), verdict_paint(v)),
            (sparkline(&r.per_minute, true), Paint::Plain),
            (r.last_hour.to_string(), Paint::Plain),
            (
                format!("{}: {}", r.judgement.rule, r.judgement.detail),
                Paint::Dim,
            ),
        ]);
    }
    out.write_all(table(st, &rows).as_bytes())?;
    if rep.agent.status_file != "present" {
        writeln!(out, "\nagent status file: {}", rep.agent.status_file)?;
    }
    Ok(())
}

fn write_plain(rep: &HealthReport, out: &mut dyn Write) -> Result<(), CliError> {
    for r in &rep.observers {
        writeln!(
            out,
            "observer={} verdict={} rule={} last_hour={} max_per_minute={} minutes={} detail={}",
            r.observer,
            r.judgement.verdict.as_str(),
            r.judgement.rule,
            r.last_hour,
            r.per_minute.iter().max().copied().unwrap_or(0),
            sparkline(&r.per_minute, false),
            logfmt_value(&r.judgement.detail)
        )?;
    }
    writeln!(out, "agent_status_file={}", rep.agent.status_file)?;
    Ok(())
}
