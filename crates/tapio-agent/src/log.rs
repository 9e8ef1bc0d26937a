//! Agent log: a minimal `tracing` subscriber writing one line per event to
//! stderr, `<RFC 3339 UTC ms>  <LEVEL> <message> key=value ...`.
//!
//! Hand-written because `tracing-subscriber`'s `fmt` layer (with the span
//! registry it requires) cost ~80 KB of the agent release binary, measured
//! with everything else equal, against a 1.25 MB target (H1). The agent
//! records no spans, only events, so this keeps exactly what it uses: the
//! level filter and the `fmt`-style line (`%` fields unquoted, `?` fields
//! and strings in their `Debug` form, the message first).
//!
//! ## Design constraints
//! - One `write_all` of the whole line on locked stderr: lines from
//!   different threads never interleave; a failed write is ignored (a log
//!   must not take the agent down).
//! - Spans are accepted and ignored (no ids are tracked, nothing is kept).

use std::fmt::{self, Write as _};
use std::io::Write as _;

use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Metadata, Subscriber};

/// Writes events at `max` and more severe to stderr.
#[derive(Debug, Clone, Copy)]
pub struct StderrLog {
    max: Level,
}

impl StderrLog {
    /// A subscriber passing events at `max` and more severe.
    #[must_use]
    pub fn new(max: Level) -> Self {
        StderrLog { max }
    }

    /// Installs it as the process-wide subscriber; `false` when one was
    /// already installed.
    #[must_use]
    pub fn install(max: Level) -> bool {
        tracing::subscriber::set_global_default(StderrLog::new(max)).is_ok()
    }
}

struct Line {
    message: String,
    fields: String,
}

impl Visit for Line {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.message, "{value:?}");
        } else {
            let _ = write!(self.fields, " {}={value:?}", field.name());
        }
    }
}

/// The line for an event at `level` with its fields already visited.
fn render(unix_ns: u64, level: Level, line: &Line) -> String {
    format!(
        "{} {:>5} {}{}\n",
        tapio_common::time::format_rfc3339_millis(unix_ns),
        level.as_str(),
        line.message,
        line.fields
    )
}

impl Subscriber for StderrLog {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        *metadata.level() <= self.max
    }

    fn max_level_hint(&self) -> Option<tracing::level_filters::LevelFilter> {
        Some(tracing::level_filters::LevelFilter::from_level(self.max))
    }

    fn new_span(&self, _span: &Attributes<'_>) -> Id {
        Id::from_u64(1)
    }

    fn record(&self, _span: &Id, _values: &Record<'_>) {}

    fn record_follows_from(&self, _span: &Id, _follows: &Id) {}

    fn event(&self, event: &Event<'_>) {
        let mut line = Line {
            message: String::new(),
            fields: String::new(),
        };
        event.record(&mut line);
        let text = render(
            crate::clock::Clock::unix_now(),
            *event.metadata().level(),
            &line,
        );
        let _ = std::io::stderr().lock().write_all(text.as_bytes());
    }

    fn enter(&self, _span: &Id) {}

    fn exit(&self, _span: &Id) {}
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    /// Captures rendered lines instead of writing them.
    struct Capture(Arc<Mutex<Vec<String>>>, StderrLog);

    impl Subscriber for Capture {
        fn enabled(&self, m: &Metadata<'_>) -> bool {
            self.1.enabled(m)
        }
        fn new_span(&self, a: &Attributes<'_>) -> Id {
            self.1.new_span(a)
        }
        fn record(&self, _: &Id, _: &Record<'_>) {}
        fn record_follows_from(&self, _: &Id, _: &Id) {}
        fn event(&self, e: &Event<'_>) {
            let mut line = Line {
                message: String::new(),
                fields: String::new(),
            };
            e.record(&mut line);
            self.0.lock().unwrap().push(render(
                1_743_690_181_042_000_000,
                *e.metadata().level(),
                &line,
            ));
        }
        fn enter(&self, _: &Id) {}
        fn exit(&self, _: &Id) {}
    }

    #[test]
    fn lines_look_like_fmt_and_respect_the_level() {
        let out = Arc::new(Mutex::new(Vec::new()));
        let sub = Capture(Arc::clone(&out), StderrLog::new(Level::INFO));
        tracing::subscriber::with_default(sub, || {
            let reason = "no PMU";
            tracing::warn!(observer = %"node", reason = ?reason, n = 3, "observer unavailable");
            tracing::info!("config applied");
            tracing::debug!("hidden");
        });
        let lines = out.lock().unwrap().clone();
        assert_eq!(
            lines,
            [
                "2025-04-03T14:23:01.042Z  WARN observer unavailable observer=node reason=\"no PMU\" n=3\n",
                "2025-04-03T14:23:01.042Z  INFO config applied\n",
            ]
        );
    }
}
