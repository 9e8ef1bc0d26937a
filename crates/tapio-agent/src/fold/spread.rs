//! What a follow-up says about the folded repeats' one varying fact.
//!
//! A storm's repeats share their key facts; one detail fact per anomaly
//! still differs between them and gives the storm its shape: the sector of
//! a block error or slow request, the source port of a failed connect (one
//! per connect attempt). A follow-up states, for the repeats it counts (not
//! the first fact, which left with its own value): the first and last
//! value, the smallest and largest, and how many distinct values there
//! were, exactly up to [`DISTINCT_MAX`] (beyond it the count stops and
//! `<fact>_distinct_capped` says so).
//!
//! | anomaly                                   | summarised fact |
//! |-------------------------------------------|-----------------|
//! | `storage.io_error`, `storage.latency_spike` | `sector`      |
//! | `network.connection_refused`, `network.connection_timeout` | `src_port` |
//! | others (keyed by pid, or windowed aggregates) | none        |

use std::collections::HashSet;

use tapio_common::{Anomaly, Fact, Facts};

/// Distinct values counted exactly per window; the set is bounded by it.
pub const DISTINCT_MAX: usize = 256;

/// Names of one summarised fact and of its summary facts.
pub struct Names {
    /// The detail fact whose values are summarised.
    pub fact: &'static str,
    first: &'static str,
    last: &'static str,
    min: &'static str,
    max: &'static str,
    distinct: &'static str,
    capped: &'static str,
}

const SECTOR: Names = Names {
    fact: "sector",
    first: "sector_first",
    last: "sector_last",
    min: "sector_min",
    max: "sector_max",
    distinct: "sector_distinct",
    capped: "sector_distinct_capped",
};

const SRC_PORT: Names = Names {
    fact: "src_port",
    first: "src_port_first",
    last: "src_port_last",
    min: "src_port_min",
    max: "src_port_max",
    distinct: "src_port_distinct",
    capped: "src_port_distinct_capped",
};

/// The fact summarised for `a`'s folded repeats, if any.
#[must_use]
pub fn names_of(a: Anomaly) -> Option<&'static Names> {
    match a {
        Anomaly::IoError | Anomaly::LatencySpike => Some(&SECTOR),
        Anomaly::ConnectionRefused | Anomaly::ConnectionTimeout => Some(&SRC_PORT),
        _ => None,
    }
}

/// The value of `a`'s summarised fact in `detail`.
#[must_use]
pub fn value_in(a: Anomaly, detail: &Facts) -> Option<u64> {
    match detail.get(names_of(a)?.fact)? {
        Fact::U64(v) => Some(*v),
        _ => None,
    }
}

/// The summary of one window's repeats.
#[derive(Debug, Default)]
pub struct Spread {
    seen: u64,
    first: u64,
    last: u64,
    min: u64,
    max: u64,
    distinct: HashSet<u64>,
    capped: bool,
}

impl Spread {
    /// One repeat's value.
    pub fn add(&mut self, v: u64) {
        if self.seen == 0 {
            (self.first, self.min, self.max) = (v, v, v);
        }
        self.seen += 1;
        self.last = v;
        self.min = self.min.min(v);
        self.max = self.max.max(v);
        if !self.distinct.contains(&v) {
            if self.distinct.len() < DISTINCT_MAX {
                self.distinct.insert(v);
            } else {
                self.capped = true;
            }
        }
    }

    /// Writes the summary facts (nothing when no repeat had a value).
    pub fn write(&self, names: &Names, out: &mut Facts) {
        if self.seen == 0 {
            return;
        }
        out.u64(names.first, self.first)
            .u64(names.last, self.last)
            .u64(names.min, self.min)
            .u64(names.max, self.max)
            .u64(names.distinct, self.distinct.len() as u64);
        if self.capped {
            out.bool(names.capped, true);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn four_sectors_keep_their_shape() {
        let mut s = Spread::default();
        for v in [2048, 8, 4096, 8] {
            s.add(v);
        }
        let mut f = Facts::default();
        s.write(&SECTOR, &mut f);
        assert_eq!(f.get("sector_first"), Some(&Fact::U64(2048)));
        assert_eq!(f.get("sector_last"), Some(&Fact::U64(8)));
        assert_eq!(f.get("sector_min"), Some(&Fact::U64(8)));
        assert_eq!(f.get("sector_max"), Some(&Fact::U64(4096)));
        assert_eq!(f.get("sector_distinct"), Some(&Fact::U64(3)));
        assert_eq!(f.get("sector_distinct_capped"), None);
    }

    #[test]
    fn distinct_values_are_bounded_and_say_so() {
        let mut s = Spread::default();
        for v in 0..1000 {
            s.add(v);
        }
        assert_eq!(s.distinct.len(), DISTINCT_MAX);
        let mut f = Facts::default();
        s.write(&SRC_PORT, &mut f);
        assert_eq!(
            f.get("src_port_distinct"),
            Some(&Fact::U64(DISTINCT_MAX as u64))
        );
        assert_eq!(f.get("src_port_distinct_capped"), Some(&Fact::Bool(true)));
        assert_eq!(f.get("src_port_max"), Some(&Fact::U64(999)));
    }

    #[test]
    fn no_value_no_summary() {
        let mut f = Facts::default();
        Spread::default().write(&SECTOR, &mut f);
        assert!(f.get("sector_first").is_none());
    }
}
