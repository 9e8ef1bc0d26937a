//! Bounded fuzzer for the profile parser and validator: mutated YAML must
//! never panic, and whatever validates must compile and hash.
//!
//! `TAPIO_FUZZ_SECS` (default 2) bounds the run; `TAPIO_FUZZ_SEED` replays a
//! run (the seed is printed). `scripts/fuzz-profile.sh` runs it longer in
//! release mode.

use std::time::{Duration, Instant};

use tapio_profile::{compile, validate};

const SEEDS: &[&str] = &[
    "apiVersion: tapio.dev/v1\nkind: EvidenceProfile\nmetadata:\n  name: production-default\nspec:\n  base: production-default\n",
    "apiVersion: tapio.dev/v1\nkind: EvidenceProfile\nmetadata: {name: a}\nspec:\n  foldWindowMs: 0\n  network: {enabled: false, retransmitThreshold: 7, rttSampleIntervalMs: 500}\n  container:\n    fatalSignals: [SIGSEGV, 9]\n    exitCodes: {report: all, ignore: [1, 2]}\n  storage:\n    latencyWarningUs: 20000\n    latencyCriticalUs: 200000\n  node:\n    ipcMinPermille: 1500\n",
    "a: &a [x, y]\nb: *a\n? [c]\n: !!int 1\n---\n\"q\": 'r'\n",
    "spec:\n  container:\n    exitCodes:\n      report: [1, 137]\n      ignore: [137]\n  gpu: {}\n",
];

const TOKENS: &[&str] = &[
    ":",
    ": ",
    "- ",
    "\n",
    "\n  ",
    "  ",
    "[",
    "]",
    "{",
    "}",
    ",",
    "&a ",
    "*a",
    "!!str ",
    "!x ",
    "---\n",
    "...\n",
    "? ",
    "|\n  ",
    ">-\n  ",
    "#",
    "\"",
    "'",
    "\\",
    "0",
    "-1",
    "255",
    "256",
    "4294967296",
    "99999999999999999999999",
    "1.5",
    "~",
    "null",
    "true",
    "yes",
    "SIGSEGV",
    "SEGV",
    "all",
    "apiVersion",
    "kind",
    "metadata",
    "name",
    "spec",
    "base",
    "network",
    "storage",
    "container",
    "node",
    "foldWindowMs",
    "latencyWarningUs",
    "latencyCriticalUs",
    "fatalSignals",
    "exitCodes",
    "report",
    "ignore",
    "\t",
    "\u{feff}",
    "\u{0}",
    "é",
    "%YAML 1.2\n",
    "<<: ",
];

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
}

fn mutate(rng: &mut Rng, input: &[u8]) -> Vec<u8> {
    let mut out = input.to_vec();
    for _ in 0..=rng.below(8) {
        let len = out.len();
        match rng.below(7) {
            0 if len > 0 => {
                let i = rng.below(len);
                out[i] ^= 1 << rng.below(8);
            }
            1 => {
                let t = TOKENS[rng.below(TOKENS.len())].as_bytes();
                let i = rng.below(len + 1);
                out.splice(i..i, t.iter().copied());
            }
            2 if len > 0 => {
                let a = rng.below(len);
                let b = (a + rng.below(32)).min(len);
                out.drain(a..b);
            }
            3 if len > 0 => {
                let a = rng.below(len);
                let b = (a + rng.below(64)).min(len);
                let chunk: Vec<u8> = out[a..b].to_vec();
                let i = rng.below(len + 1);
                out.splice(i..i, chunk);
            }
            4 => {
                let other = SEEDS[rng.below(SEEDS.len())].as_bytes();
                let cut = rng.below(other.len());
                let at = rng.below(len + 1);
                out.truncate(at);
                out.extend_from_slice(&other[cut..]);
            }
            5 if len > 0 => {
                let i = rng.below(len);
                out.insert(i, b' ');
            }
            _ => {
                let t = TOKENS[rng.below(TOKENS.len())].as_bytes();
                out.extend_from_slice(t);
            }
        }
    }
    out.truncate(16 * 1024);
    out
}

#[test]
fn fuzz_validate_never_panics() {
    let secs: u64 = std::env::var("TAPIO_FUZZ_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2);
    let seed: u64 = std::env::var("TAPIO_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(1)
                | 1
        });
    println!("fuzz_profile: TAPIO_FUZZ_SEED={seed} TAPIO_FUZZ_SECS={secs}");
    let mut rng = Rng(seed);
    let deadline = Instant::now() + Duration::from_secs(secs);
    let mut corpus: Vec<Vec<u8>> = SEEDS.iter().map(|s| s.as_bytes().to_vec()).collect();
    let (mut runs, mut valid, mut invalid) = (0u64, 0u64, 0u64);
    while Instant::now() < deadline {
        let parent = corpus[rng.below(corpus.len())].clone();
        let child = mutate(&mut rng, &parent);
        let text = String::from_utf8_lossy(&child);
        match validate(&text) {
            Ok(v) => {
                valid += 1;
                let c = compile(&v);
                assert!(c.content_hash().starts_with("sha256:"));
                // A valid mutant is an interesting parent.
                if corpus.len() < 256 {
                    corpus.push(child);
                }
            }
            Err(e) => {
                invalid += 1;
                // Every problem renders and carries a position.
                let _ = e.to_string();
                for p in e.problems() {
                    assert!(p.location.line >= 1, "{p} in {text:?}");
                }
            }
        }
        runs += 1;
    }
    println!("fuzz_profile: {runs} inputs, {valid} valid, {invalid} invalid, 0 panics");
    assert!(runs > 0);
}
