//! Storm folding: the agent's one mechanism against floods of the same fact.
//!
//! The first fact of a (type, key) is emitted at once. Repeats inside the
//! fold window are counted, not emitted, and leave as one follow-up
//! occurrence carrying the count and the window bounds when the window
//! closes. Accounting is exact: the `count` facts of all occurrences of a
//! key add up to the kernel facts seen for it.
//!
//! ## Design constraints
//! - At most `max_keys` windows are open; a candidate that finds the table
//!   full is emitted on its own (count 1): folding degrades, nothing is lost.
//! - Follow-ups carry the key facts, which every folded repeat shares,
//!   and a bounded summary of the one detail fact that varies per anomaly
//!   (first/last/min/max/distinct sector or source port, see [`spread`]);
//!   other per-fact details (durations) of the repeats are not claimed.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};

use tapio_common::{Anomaly, Fact, Facts, Occurrence, Outcome, Severity};

pub mod spread;
use spread::Spread;

/// One classified fact (or windowed aggregate) before folding.
#[derive(Debug, Clone)]
pub struct Candidate {
    /// Which anomaly.
    pub anomaly: Anomaly,
    /// Severity.
    pub severity: Severity,
    /// Outcome.
    pub outcome: Outcome,
    /// Wall-clock time of the fact.
    pub unix_ns: u64,
    /// Config generation that judged it.
    pub generation: u64,
    /// Facts identifying the (type, key): carried by follow-ups too.
    pub key: Facts,
    /// Facts of this one fact only.
    pub detail: Facts,
    /// One line stating the key facts, the `error.message` base.
    pub summary: String,
    /// The same line as a template over the candidate's facts, rendered
    /// only when written (`summary` is then empty): the per-record path
    /// builds no text.
    pub template: Option<tapio_common::Template>,
    /// Fold repeats of this key. A single kernel fact folds (and carries
    /// `count`); a windowed aggregate states its own count in `detail` and
    /// does not.
    pub fold: bool,
}

impl Candidate {
    /// The `error.message` base: `summary`, or `template` rendered over
    /// the key and detail facts (for tests: the agent renders a template
    /// over the occurrence's facts, [`Occurrence::message_text`]).
    #[cfg(test)]
    #[must_use]
    pub fn summary_text(&self) -> String {
        match self.template {
            Some(t) => {
                let mut all = self.key.clone();
                all.append(self.detail.clone());
                tapio_common::occurrence::render(t, &all)
            }
            None => self.summary.clone(),
        }
    }

    /// The occurrence of an unfolded candidate (or the first of a window).
    #[must_use]
    pub fn into_occurrence(self, count: Option<u64>) -> Occurrence {
        let mut o = Occurrence::new(
            self.anomaly,
            self.severity,
            self.outcome,
            self.unix_ns,
            self.generation,
        );
        // Moved, not cloned: a distinct fact's text is built once.
        o.data.append(self.key).append(self.detail);
        if let Some(n) = count {
            o.data.u64("count", n);
        }
        o.message = self.summary;
        o.template = self.template;
        o
    }
}

/// A fold key taken straight from a ring record's bytes, before any fact
/// is built: the anomaly, the judging generation and the raw fields the
/// key facts are made from (zero-padded). Equal raw keys make equal key
/// facts, so a repeat found by raw key is folded without classifying it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RawKey {
    /// Which anomaly the record will be.
    pub anomaly: Anomaly,
    /// Generation that judged it.
    pub generation: u64,
    /// The identity fields, as bytes.
    pub bytes: [u8; 64],
}

struct Window {
    raw: Option<RawKey>,
    anomaly: Anomaly,
    severity: Severity,
    outcome: Outcome,
    generation: u64,
    key: Facts,
    summary: String,
    start_ns: u64,
    end_ns: u64,
    repeats: u64,
    last_ns: u64,
    spread: Spread,
}

/// The fold table of one observer.
pub struct Folder {
    window_ns: u64,
    max_keys: usize,
    open: HashMap<u64, Window>,
    /// Raw keys of open windows, to the window's key hash.
    raw: HashMap<RawKey, u64>,
}

fn hash_fact<H: Hasher>(v: &Fact, h: &mut H) {
    match v {
        Fact::U64(x) => (0u8, x).hash(h),
        Fact::I64(x) => (1u8, x).hash(h),
        Fact::F64(x) => (2u8, x.to_bits()).hash(h),
        Fact::Bool(x) => (3u8, x).hash(h),
        Fact::Str(x) => (4u8, x.as_str()).hash(h),
        // Text facts hash as their text (equal facts, equal hashes),
        // rendered on the stack: an address is at most 45 characters.
        Fact::Addr(a) => {
            use std::io::Write;
            let mut buf = [0u8; 64];
            let mut w = &mut buf[..];
            let _ = write!(w, "{a}");
            let n = 64 - w.len();
            (4u8, std::str::from_utf8(&buf[..n]).unwrap_or_default()).hash(h);
        }
        Fact::Comm(c) => (4u8, &*c.text()).hash(h),
    }
}

fn key_hash(anomaly: Anomaly, generation: u64, key: &Facts) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    (anomaly, generation).hash(&mut h);
    for (k, v) in key.iter() {
        k.hash(&mut h);
        hash_fact(v, &mut h);
    }
    h.finish()
}

impl Folder {
    /// Default bound on open windows.
    pub const DEFAULT_MAX_KEYS: usize = 4096;

    /// A folder with `window_ms` (0 = no folding).
    #[must_use]
    pub fn new(window_ms: u32, max_keys: usize) -> Self {
        Folder {
            window_ns: u64::from(window_ms) * 1_000_000,
            max_keys,
            open: HashMap::new(),
            raw: HashMap::new(),
        }
    }

    /// Counts a repeat found by its raw key in an open window that still
    /// covers `unix_ns`; false when the record must be classified (no such
    /// window, or it is over).
    /// `spread` is the record's value of the anomaly's summarised fact.
    pub fn absorb(&mut self, raw: &RawKey, unix_ns: u64, spread: Option<u64>) -> bool {
        let Some(h) = self.raw.get(raw) else {
            return false;
        };
        match self.open.get_mut(h) {
            Some(w) if w.raw.as_ref() == Some(raw) && unix_ns < w.end_ns => {
                w.repeats += 1;
                w.last_ns = w.last_ns.max(unix_ns);
                if let Some(v) = spread {
                    w.spread.add(v);
                }
                true
            }
            _ => false,
        }
    }

    fn close(&mut self, h: u64) -> Option<Occurrence> {
        let w = self.open.remove(&h)?;
        if let Some(r) = &w.raw {
            self.raw.remove(r);
        }
        follow_up(w)
    }

    /// Changes the window; open windows keep the bounds they opened with.
    pub fn set_window_ms(&mut self, window_ms: u32) {
        self.window_ns = u64::from(window_ms) * 1_000_000;
    }

    /// Number of open windows.
    #[must_use]
    pub fn open_windows(&self) -> usize {
        self.open.len()
    }

    /// Folds `c`, pushing what leaves now to `out`.
    pub fn push(&mut self, c: Candidate, out: &mut Vec<Occurrence>) {
        self.push_keyed(c, None, out);
    }

    /// [`Folder::push`], registering `raw` for a window `c` opens so that
    /// later repeats can be [absorbed](Folder::absorb) unclassified.
    pub fn push_keyed(&mut self, c: Candidate, raw: Option<RawKey>, out: &mut Vec<Occurrence>) {
        if !c.fold || self.window_ns == 0 {
            let count = c.fold.then_some(1);
            out.push(c.into_occurrence(count));
            return;
        }
        let h = key_hash(c.anomaly, c.generation, &c.key);
        if let Some(w) = self.open.get_mut(&h) {
            if w.anomaly == c.anomaly && w.generation == c.generation && w.key == c.key {
                if c.unix_ns < w.end_ns {
                    w.repeats += 1;
                    w.last_ns = w.last_ns.max(c.unix_ns);
                    if let Some(v) = spread::value_in(c.anomaly, &c.detail) {
                        w.spread.add(v);
                    }
                    return;
                }
                // The window is over: its follow-up leaves first.
                out.extend(self.close(h));
            } else {
                // Hash collision with another key: never merge, emit alone.
                out.push(c.into_occurrence(Some(1)));
                return;
            }
        }
        if self.open.len() >= self.max_keys {
            out.push(c.into_occurrence(Some(1)));
            return;
        }
        if let Some(r) = raw {
            self.raw.insert(r, h);
        }
        let (anomaly, severity, outcome) = (c.anomaly, c.severity, c.outcome);
        let (generation, start_ns, key) = (c.generation, c.unix_ns, c.key.clone());
        let first = c.into_occurrence(Some(1));
        self.open.insert(
            h,
            Window {
                raw,
                anomaly,
                severity,
                outcome,
                generation,
                key,
                // The first occurrence's own message (its template rendered
                // once over the facts it already holds).
                summary: first.message_text().into_owned(),
                start_ns,
                end_ns: start_ns.saturating_add(self.window_ns),
                repeats: 0,
                last_ns: start_ns,
                spread: Spread::default(),
            },
        );
        out.push(first);
    }

    /// Closes windows that ended before `now_unix_ns`.
    pub fn flush_expired(&mut self, now_unix_ns: u64, out: &mut Vec<Occurrence>) {
        let expired: Vec<u64> = self
            .open
            .iter()
            .filter(|(_, w)| w.end_ns <= now_unix_ns)
            .map(|(h, _)| *h)
            .collect();
        for h in expired {
            out.extend(self.close(h));
        }
    }

    /// Closes every window now (shutdown): follow-ups carry the bounds
    /// actually observed.
    pub fn flush_all(&mut self, out: &mut Vec<Occurrence>) {
        self.raw.clear();
        for (_, w) in self.open.drain() {
            out.extend(follow_up(w));
        }
    }
}

fn follow_up(w: Window) -> Option<Occurrence> {
    if w.repeats == 0 {
        return None;
    }
    let mut o = Occurrence::new(w.anomaly, w.severity, w.outcome, w.last_ns, w.generation);
    for (k, v) in w.key.iter() {
        o.data.set(k, v.clone());
    }
    o.data
        .u64("count", w.repeats)
        .bool("folded", true)
        .u64("window_start_ns", w.start_ns)
        .u64("window_end_ns", w.end_ns)
        .u64("last_ns", w.last_ns);
    if let Some(names) = spread::names_of(w.anomaly) {
        w.spread.write(names, &mut o.data);
    }
    o.message = format!(
        "{}; {} more folded in {} ms",
        w.summary,
        w.repeats,
        (w.end_ns - w.start_ns) / 1_000_000
    );
    Some(o)
}

#[cfg(test)]
mod tests;
