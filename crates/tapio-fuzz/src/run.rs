//! The fuzz loop: budget, corpus, panic capture and the report.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::{Duration, Instant};

use crate::json::mutate_json;
use crate::mutate::mutate_bytes;
use crate::rng::Rng;

/// Most entries the corpus holds.
pub const CORPUS_CAP: usize = 512;

/// How long a run lasts and how it is seeded.
#[derive(Debug, Clone, Copy)]
pub struct Budget {
    /// Wall-clock limit.
    pub time: Duration,
    /// Input limit (`u64::MAX`: none).
    pub inputs: u64,
    /// Seed of the run.
    pub seed: u64,
}

impl Budget {
    /// `TAPIO_FUZZ_SECS` (else `default_secs`), `TAPIO_FUZZ_INPUTS` and
    /// `TAPIO_FUZZ_SEED` (else the clock).
    #[must_use]
    pub fn from_env(default_secs: u64) -> Self {
        let var = |name| {
            std::env::var(name)
                .ok()
                .and_then(|s| s.trim().parse::<u64>().ok())
        };
        Budget {
            time: Duration::from_secs(var("TAPIO_FUZZ_SECS").unwrap_or(default_secs)),
            inputs: var("TAPIO_FUZZ_INPUTS").unwrap_or(u64::MAX),
            seed: var("TAPIO_FUZZ_SEED").unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(1, |d| d.as_nanos() as u64)
                    | 1
            }),
        }
    }
}

/// What the target made of one input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verdict {
    /// Outcome class, counted in the report (`accepted`, `rejected:413`...).
    pub label: &'static str,
    /// The input got past the first check: keep it as a parent.
    pub keep: bool,
}

impl Verdict {
    /// An input that is kept as a parent.
    #[must_use]
    pub fn keep(label: &'static str) -> Self {
        Verdict { label, keep: true }
    }

    /// An input that is counted only.
    #[must_use]
    pub fn drop(label: &'static str) -> Self {
        Verdict { label, keep: false }
    }
}

/// One fuzz target's settings.
#[derive(Debug, Clone)]
pub struct Fuzzer {
    /// Target name, in the report.
    pub name: &'static str,
    /// Valid inputs to start from.
    pub seeds: Vec<Vec<u8>>,
    /// Tokens inserted by byte mutations.
    pub tokens: Vec<&'static [u8]>,
    /// Field names for JSON mutations; `None`: the input is not JSON.
    pub json_keys: Option<Vec<&'static str>>,
    /// Longest input.
    pub max_len: usize,
    /// Budget.
    pub budget: Budget,
}

impl Fuzzer {
    /// A target with `seeds`, the budget from the environment (default
    /// `default_secs`) and inputs of at most 64 KiB.
    #[must_use]
    pub fn new(name: &'static str, seeds: Vec<Vec<u8>>, default_secs: u64) -> Self {
        Fuzzer {
            name,
            seeds,
            tokens: Vec::new(),
            json_keys: None,
            max_len: 64 * 1024,
            budget: Budget::from_env(default_secs),
        }
    }

    /// Runs `target` on mutants until the budget is spent; returns the
    /// number of inputs. Panics (failing the test) when `target` panics.
    pub fn run(&self, mut target: impl FnMut(&[u8]) -> Verdict) -> u64 {
        assert!(!self.seeds.is_empty(), "fuzz {}: no seeds", self.name);
        let b = self.budget;
        println!(
            "fuzz {}: TAPIO_FUZZ_SEED={} TAPIO_FUZZ_SECS={} TAPIO_FUZZ_INPUTS={}",
            self.name,
            b.seed,
            b.time.as_secs(),
            if b.inputs == u64::MAX {
                "-".to_owned()
            } else {
                b.inputs.to_string()
            }
        );
        let mut rng = Rng::new(b.seed);
        let mut corpus = self.seeds.clone();
        let mut labels: Vec<(&'static str, u64)> = Vec::new();
        let started = Instant::now();
        let mut n: u64 = 0;
        let mut rss_after_warmup = None;
        // Seeds first, unmutated, then mutants.
        while n < b.inputs && (n < self.seeds.len() as u64 || started.elapsed() < b.time) {
            let input = if let Some(s) = self.seeds.get(n as usize) {
                s.clone()
            } else {
                self.mutant(&mut rng, &corpus)
            };
            let v = match catch_unwind(AssertUnwindSafe(|| target(&input))) {
                Ok(v) => v,
                Err(_) => self.crashed(b.seed, n, &input),
            };
            match labels.iter_mut().find(|(l, _)| *l == v.label) {
                Some((_, c)) => *c += 1,
                None => labels.push((v.label, 1)),
            }
            if v.keep && n >= self.seeds.len() as u64 {
                if corpus.len() < CORPUS_CAP {
                    corpus.push(input);
                } else {
                    let i = rng.below(corpus.len());
                    corpus[i] = input;
                }
            }
            n += 1;
            if n == 10_000 {
                rss_after_warmup = current_rss_kib();
            }
        }
        let secs = started.elapsed().as_secs_f64();
        labels.sort_unstable();
        let counts: Vec<String> = labels.iter().map(|(l, c)| format!("{l}={c}")).collect();
        println!(
            "fuzz {}: {n} inputs in {secs:.1} s ({:.0} inputs/s), 0 panics; {}; corpus {}; RSS after 10k inputs {} KiB, at end {} KiB, peak {} KiB",
            self.name,
            n as f64 / secs.max(1e-9),
            counts.join(" "),
            corpus.len(),
            rss_after_warmup.map_or_else(|| "-".into(), |k| k.to_string()),
            current_rss_kib().map_or_else(|| "-".into(), |k| k.to_string()),
            peak_rss_kib().map_or_else(|| "-".into(), |k| k.to_string()),
        );
        n
    }

    fn mutant(&self, rng: &mut Rng, corpus: &[Vec<u8>]) -> Vec<u8> {
        let parent = rng.pick(corpus);
        if let Some(keys) = &self.json_keys {
            if rng.one_in(2) {
                if let Some(m) = mutate_json(rng, parent, keys) {
                    let mut m = m;
                    m.truncate(self.max_len);
                    return m;
                }
            }
        }
        mutate_bytes(rng, parent, &self.tokens, corpus, self.max_len)
    }

    fn crashed(&self, seed: u64, n: u64, input: &[u8]) -> ! {
        let path = std::env::var("TAPIO_FUZZ_OUT")
            .unwrap_or_else(|_| format!("/tmp/tapio-fuzz-{}.crash", self.name));
        let _ = std::fs::write(&path, input);
        let shown: String = String::from_utf8_lossy(input).chars().take(2000).collect();
        panic!(
            "fuzz {}: target panicked on input #{n} (TAPIO_FUZZ_SEED={seed}), saved to {path}: {shown:?}",
            self.name
        );
    }
}

fn status_kib(field: &str) -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with(field))?;
    line[field.len()..]
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()
}

/// Peak resident set of this process, KiB (`VmHWM`).
#[must_use]
pub fn peak_rss_kib() -> Option<u64> {
    status_kib("VmHWM:")
}

fn current_rss_kib() -> Option<u64> {
    status_kib("VmRSS:")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fuzzer(inputs: u64) -> Fuzzer {
        let mut f = Fuzzer::new("self-test", vec![b"abc".to_vec(), b"{}".to_vec()], 0);
        f.budget = Budget {
            time: Duration::from_secs(60),
            inputs,
            seed: 5,
        };
        f
    }

    #[test]
    fn runs_exactly_the_input_budget_seeds_first() {
        let mut seen = Vec::new();
        let n = fuzzer(100).run(|i| {
            seen.push(i.to_vec());
            Verdict::keep("any")
        });
        assert_eq!((n, seen.len()), (100, 100));
        assert_eq!(&seen[..2], &[b"abc".to_vec(), b"{}".to_vec()]);
    }

    #[test]
    #[should_panic(expected = "target panicked on input #1")]
    fn a_panicking_target_fails_with_the_input() {
        let mut f = fuzzer(10);
        f.budget.seed = 9;
        std::env::set_var("TAPIO_FUZZ_OUT", "/dev/null");
        f.run(|i| {
            assert!(i != b"{}", "boom");
            Verdict::drop("ok")
        });
    }
}
