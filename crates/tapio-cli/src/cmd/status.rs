//! `tapio status`: per-observer counts, last seen, and the agent's observer
//! states when it leaves a status file.

use std::io::Write;

use crate::cmd::{logfmt_value, report_empty, report_skipped, write_json, CliError, Ctx};
use crate::render::{table, Paint};
use crate::report::{self, AgentView, StatusReport};
use crate::window::format_age;

/// Runs `status`.
///
/// # Errors
/// When the directory cannot be read or output cannot be written.
pub fn run(ctx: &Ctx, json: bool, by_pod: bool, out: &mut dyn Write) -> Result<(), CliError> {
    let dir = ctx.open()?;
    let rep = report::status(&dir, ctx.now_ns, by_pod)?;
    if json {
        write_json(out, &rep)?;
    } else if ctx.style.tty {
        write_table(ctx, &rep, out)?;
    } else {
        write_plain(&rep, out)?;
    }
    out.flush()?;
    report_skipped(&dir, &rep.files);
    if rep.total_occurrences == 0 && rep.files.considered == 0 {
        report_empty(&dir);
    }
    Ok(())
}

fn agent_line(a: &AgentView) -> String {
    match (&a.status, a.status_file) {
        (Some(s), file) => {
            let hash = if s.config_hash.is_empty() {
                "unconfigured"
            } else {
                &s.config_hash
            };
            let age = a
                .age_seconds
                .map_or_else(|| "?".to_owned(), |x| format!("{x}s"));
            format!(
                "pid {} version {} config generation {} ({hash}), status updated {age} ago{}",
                s.pid,
                s.agent_version,
                s.config_generation,
                match file {
                    "stale" => " (stale: is the agent running?)",
                    "gone" => " (gone: that process is not running)",
                    _ => "",
                }
            )
        }
        (None, "unusable") => "status file present but unreadable".to_owned(),
        (None, _) => "no status file (observer states unknown)".to_owned(),
    }
}

fn write_table(ctx: &Ctx, rep: &StatusReport, out: &mut dyn Write) -> Result<(), CliError> {
    let st = &ctx.style;
    writeln!(
        out,
        "{} {}",
        st.paint("data dir:", Paint::Bold),
        rep.data_dir
    )?;
    writeln!(
        out,
        "{} {}",
        st.paint("agent:   ", Paint::Bold),
        agent_line(&rep.agent)
    )?;
    writeln!(
        out,
        "{} {} facts in {} occurrences\n",
        st.paint("total:   ", Paint::Bold),
        rep.total_facts,
        rep.total_occurrences
    )?;
    let head = [
        "OBSERVER",
        "STATE",
        "FACTS",
        "LAST HOUR",
        "LAST SEEN",
        "REASON",
    ];
    let mut rows = vec![head
        .iter()
        .map(|h| ((*h).to_owned(), Paint::Bold))
        .collect::<Vec<_>>()];
    for r in &rep.observers {
        let state_paint = match r.state.as_str() {
            "running" => Paint::Green,
            "failed" => Paint::Red,
            "unavailable" | "disabled" | "unknown" => Paint::Dim,
            _ => Paint::Plain,
        };
        let seen = match (&r.last_seen, r.last_seen_ns) {
            (Some(s), Some(ns)) => {
                format!("{s} ({} ago)", format_age(ctx.now_ns.saturating_sub(ns)))
            }
            _ => "-".to_owned(),
        };
        rows.push(vec![
            (r.observer.clone(), Paint::Plain),
            (r.state.clone(), state_paint),
            (r.facts.to_string(), Paint::Plain),
            (r.last_hour.to_string(), Paint::Plain),
            (seen, Paint::Plain),
            (r.reason.clone().unwrap_or_default(), Paint::Dim),
        ]);
    }
    out.write_all(table(st, &rows).as_bytes())?;
    if let Some(pods) = &rep.pods {
        let head = ["POD UID", "FACTS", "OCCURRENCES", "LAST HOUR", "LAST SEEN"];
        let mut rows = vec![head
            .iter()
            .map(|h| ((*h).to_owned(), Paint::Bold))
            .collect::<Vec<_>>()];
        for p in pods {
            rows.push(vec![
                (
                    p.pod_uid.clone().unwrap_or_else(|| "(no pod)".to_owned()),
                    Paint::Plain,
                ),
                (p.facts.to_string(), Paint::Plain),
                (p.occurrences.to_string(), Paint::Plain),
                (p.last_hour.to_string(), Paint::Plain),
                (
                    p.last_seen.clone().unwrap_or_else(|| "-".to_owned()),
                    Paint::Plain,
                ),
            ]);
        }
        writeln!(out)?;
        out.write_all(table(st, &rows).as_bytes())?;
    }
    Ok(())
}

fn write_plain(rep: &StatusReport, out: &mut dyn Write) -> Result<(), CliError> {
    writeln!(out, "data_dir={}", logfmt_value(&rep.data_dir))?;
    match &rep.agent.status {
        Some(s) => writeln!(
            out,
            "agent={} pid={} version={} config_generation={} config_hash={} updated_at={}",
            rep.agent.status_file,
            s.pid,
            logfmt_value(&s.agent_version),
            s.config_generation,
            logfmt_value(&s.config_hash),
            logfmt_value(&s.updated_at)
        )?,
        None => writeln!(out, "agent={}", rep.agent.status_file)?,
    }
    for r in &rep.observers {
        write!(
            out,
            "observer={} state={} facts={} occurrences={} last_hour={} last_seen={}",
            r.observer,
            r.state,
            r.facts,
            r.occurrences,
            r.last_hour,
            r.last_seen.as_deref().unwrap_or("-")
        )?;
        if let Some(reason) = &r.reason {
            write!(out, " reason={}", logfmt_value(reason))?;
        }
        writeln!(out)?;
    }
    writeln!(
        out,
        "total facts={} occurrences={}",
        rep.total_facts, rep.total_occurrences
    )?;
    for p in rep.pods.iter().flatten() {
        writeln!(
            out,
            "pod={} facts={} occurrences={} last_hour={} last_seen={}",
            p.pod_uid.as_deref().unwrap_or("-"),
            p.facts,
            p.occurrences,
            p.last_hour,
            p.last_seen.as_deref().unwrap_or("-")
        )?;
    }
    Ok(())
}
