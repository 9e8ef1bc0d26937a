//! `tapio watch`: follow new occurrences as the agent writes them, like
//! `tail -f`.
//!
//! ## Design constraints
//! - Each tick lists the directory but opens only files it has not seen: a
//!   name is new when its ULID time is within [`LATE_WINDOW_MS`] of now and it
//!   is not in the seen set, which holds only names inside that window (so it
//!   stays bounded by the write rate, not by the directory size).
//! - A file whose fact time is older than [`LATE_WINDOW_MS`] when it appears
//!   is not shown.
//! - A half-written file (from a writer that does not rename atomically) is
//!   retried on the next [`HALF_WRITTEN_RETRIES`] ticks before it is skipped.
//! - The tick is bounded to 100 ms ..= 60 s.

use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::time::Duration;

use tapio_common::Observer;

use crate::cmd::recent::write_occurrence;
use crate::cmd::{CliError, Ctx};
use crate::query::{time_ns, Filter};
use crate::store::{DataDir, FileRef, Skip, StoreError};
use crate::window::{parse_duration_ns, WindowError};

/// How late (by ULID time) a file may appear and still be shown.
pub const LATE_WINDOW_MS: u64 = 5 * 60 * 1000;
/// Ticks a half-written file is retried.
const HALF_WRITTEN_RETRIES: u8 = 3;
/// At most this many existing files are read to find the backlog lines.
const BACKLOG_READ_CAP: usize = 10_000;

/// `watch` options.
#[derive(Debug, Clone)]
pub struct WatchArgs {
    /// Observers to show; empty shows all.
    pub observers: Vec<Observer>,
    /// JSON lines.
    pub json: bool,
    /// Poll interval, e.g. `1s`.
    pub interval: String,
    /// Existing occurrences to show first.
    pub lines: usize,
}

fn wall_millis() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Runs `watch` until interrupted or stdout closes.
///
/// # Errors
/// When the interval is invalid, the directory becomes unreadable or output
/// cannot be written.
pub fn run(ctx: &Ctx, args: &WatchArgs, out: &mut dyn Write) -> Result<(), CliError> {
    let interval_ns = parse_duration_ns(&args.interval)?;
    if !(100_000_000..=60_000_000_000).contains(&interval_ns) {
        return Err(WindowError::Malformed {
            value: format!("{} (interval must be 100ms..=60s)", args.interval),
        }
        .into());
    }
    let tick = Duration::from_nanos(interval_ns);
    let filter = Filter {
        observers: args.observers.clone(),
        ..Filter::default()
    };
    let dir = wait_for_dir(ctx, tick)?;
    let mut w = Watcher {
        dir,
        filter,
        json: args.json,
        seen: HashSet::new(),
        retries: HashMap::new(),
    };
    w.backlog(ctx, args.lines, out)?;
    loop {
        std::thread::sleep(tick);
        w.tick(ctx, out)?;
    }
}

fn wait_for_dir(ctx: &Ctx, tick: Duration) -> Result<DataDir, CliError> {
    let mut told = false;
    loop {
        match DataDir::open(&ctx.data_dir) {
            Ok(d) => return Ok(d),
            Err(StoreError::Missing { path }) => {
                if !told {
                    eprintln!(
                        "tapio: waiting for `{}` to appear (start the agent with `--sink=file`)",
                        path.display()
                    );
                    told = true;
                }
                std::thread::sleep(tick);
            }
            Err(e) => return Err(e.into()),
        }
    }
}

struct Watcher {
    dir: DataDir,
    filter: Filter,
    json: bool,
    seen: HashSet<String>,
    retries: HashMap<String, u8>,
}

impl Watcher {
    fn show(
        &self,
        ctx: &Ctx,
        f: &FileRef,
        buf: &mut Vec<u8>,
        out: &mut dyn Write,
    ) -> Result<Result<bool, Skip>, CliError> {
        match self.dir.read(&f.name, buf) {
            Ok(rec) => {
                let t = time_ns(&rec, f);
                if self.filter.matches(&rec, t) {
                    write_occurrence(&ctx.style, self.json, &rec, t, out)?;
                    return Ok(Ok(true));
                }
                Ok(Ok(false))
            }
            Err(skip) => Ok(Err(skip)),
        }
    }

    /// Shows the newest `lines` matching occurrences already there, and
    /// marks everything inside the late window as seen.
    fn backlog(&mut self, ctx: &Ctx, lines: usize, out: &mut dyn Write) -> Result<(), CliError> {
        let horizon = wall_millis().saturating_sub(LATE_WINDOW_MS);
        let (files, _) = self.dir.list(0)?;
        let mut picked = Vec::new();
        let mut buf = Vec::new();
        for f in files.iter().rev().take(BACKLOG_READ_CAP) {
            if picked.len() >= lines {
                break;
            }
            if let Ok(rec) = self.dir.read(&f.name, &mut buf) {
                let t = time_ns(&rec, f);
                if self.filter.matches(&rec, t) {
                    picked.push((rec, t));
                }
            }
        }
        for (rec, t) in picked.iter().rev() {
            write_occurrence(&ctx.style, self.json, rec, *t, out)?;
        }
        out.flush()?;
        self.seen.extend(
            files
                .into_iter()
                .filter(|f| f.millis >= horizon)
                .map(|f| f.name),
        );
        Ok(())
    }

    /// Shows files that appeared since the last tick.
    fn tick(&mut self, ctx: &Ctx, out: &mut dyn Write) -> Result<(), CliError> {
        let horizon = wall_millis().saturating_sub(LATE_WINDOW_MS);
        let (files, _) = match self.dir.list(horizon) {
            Ok(x) => x,
            // Removed under us (e.g. the agent's data dir was recreated): wait for it.
            Err(StoreError::Unreadable { .. } | StoreError::Missing { .. }) => return Ok(()),
            Err(e) => return Err(e.into()),
        };
        let mut buf = Vec::new();
        for f in &files {
            if self.seen.contains(&f.name) {
                continue;
            }
            match self.show(ctx, f, &mut buf, out)? {
                Err(Skip::HalfWritten) => {
                    let n = self.retries.entry(f.name.clone()).or_insert(0);
                    *n += 1;
                    if *n <= HALF_WRITTEN_RETRIES {
                        continue;
                    }
                    eprintln!("tapio: skipped `{}`: half-written", f.name);
                }
                Err(Skip::Vanished) | Ok(_) => {}
                Err(skip) => eprintln!("tapio: skipped `{}`: {}", f.name, skip_label(skip)),
            }
            self.retries.remove(&f.name);
            self.seen.insert(f.name.clone());
        }
        out.flush()?;
        self.seen
            .retain(|name| crate::names::file_millis(name).is_some_and(|ms| ms >= horizon));
        Ok(())
    }
}

fn skip_label(skip: Skip) -> &'static str {
    match skip {
        Skip::HalfWritten => "half-written",
        Skip::Corrupt => "corrupt",
        Skip::Foreign => "foreign",
        Skip::Oversized => "oversized (over 1 MiB)",
        Skip::Irregular => "not a regular file",
        Skip::Unreadable => "unreadable",
        Skip::Vanished => "vanished",
    }
}
