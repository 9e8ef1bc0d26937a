//! Bounded fuzzer for the profile parser and validator: mutated YAML must
//! never panic, and whatever validates must compile and hash.
//!
//! `TAPIO_FUZZ_SECS` (default 2) and `TAPIO_FUZZ_INPUTS` bound the run;
//! `TAPIO_FUZZ_SEED` replays a run (the seed is printed). `scripts/fuzz.sh`
//! runs it with every other target.

use tapio_fuzz::{Fuzzer, Verdict};
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

#[test]
fn fuzz_validate_never_panics() {
    let mut f = Fuzzer::new(
        "profile_yaml",
        SEEDS.iter().map(|s| s.as_bytes().to_vec()).collect(),
        2,
    );
    f.tokens = TOKENS.iter().map(|t| t.as_bytes()).collect();
    f.max_len = 16 * 1024;
    let runs = f.run(|input| {
        let text = String::from_utf8_lossy(input);
        match validate(&text) {
            Ok(v) => {
                let c = compile(&v);
                assert!(c.content_hash().starts_with("sha256:"));
                // A valid mutant is an interesting parent.
                Verdict::keep("valid")
            }
            Err(e) => {
                // Every problem renders and carries a position.
                let _ = e.to_string();
                for p in e.problems() {
                    assert!(p.location.line >= 1, "{p} in {text:?}");
                }
                Verdict::drop("invalid")
            }
        }
    });
    assert!(runs > 0);
}
