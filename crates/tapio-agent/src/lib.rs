//! Tapio node agent: loads the eBPF observers, drains their ring buffers,
//! classifies kernel facts into `kernel.*` occurrences and hands them to
//! sinks that never block the drain.
#![deny(missing_docs)]

pub mod app;
pub mod args;
pub mod attribution;
pub mod backoff;
pub mod bpf_sys;
pub mod clock;
pub mod config_source;
pub mod controller;
pub mod counters;
pub mod datadir;
pub mod drain;
pub mod fold;
pub mod http;
pub mod kernel_btf;
pub mod kernel_features;
pub mod loader;
pub mod log;
pub mod metrics;
pub mod observers;
pub mod preflight;
pub mod settings;
pub mod sinks;
pub mod state;
