//! Seeded mutation fuzzing harness for Tapio's tests: a corpus of valid
//! inputs, byte, token and structure-aware JSON mutations, a time or input
//! budget, and a one-line report per target.
//!
//! Stable Rust, no sanitizers, no coverage feedback: a mutant that the target
//! calls interesting (it got past the first check) joins a bounded corpus.
//! A dev-dependency only; nothing here reaches a release binary.
//!
//! ## Design constraints
//! - Budget: `TAPIO_FUZZ_SECS` seconds (default given by the target) and, if
//!   set, at most `TAPIO_FUZZ_INPUTS` inputs, whichever ends first.
//!   `TAPIO_FUZZ_SEED` replays a run; the seed is printed first.
//! - Memory: at most [`CORPUS_CAP`] corpus entries (a full corpus replaces a
//!   random entry) and inputs of at most the target's `max_len` bytes.
//! - A panic in the target prints the seed, the input number and the input
//!   (escaped), writes the input to `$TAPIO_FUZZ_OUT` (default
//!   `/tmp/tapio-fuzz-<target>.crash`), and fails the test.
#![deny(missing_docs)]

mod json;
mod mutate;
mod rng;
mod run;

pub use json::{mutate_json, JSON_TOKENS};
pub use mutate::mutate_bytes;
pub use rng::Rng;
pub use run::{peak_rss_kib, Budget, Fuzzer, Verdict, CORPUS_CAP};
