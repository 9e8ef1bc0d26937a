//! Tapio shared vocabulary: the BPF/Rust ABI mirror, the occurrence schema,
//! anomaly names and the sink trait.
//!
//! This crate does no I/O. Everything that crosses a process or kernel
//! boundary is defined here once and tested for layout or wire shape.
#![deny(missing_docs)]

pub mod anomaly;
pub mod ebpf;
pub mod facts;
pub mod json;
pub mod kubelet;
pub mod occurrence;
pub mod sink;
pub mod status;
pub mod time;

pub use anomaly::{Anomaly, Observer};
pub use occurrence::{
    Comm, ErrorInfo, Fact, Facts, Occurrence, OccurrenceRecord, Outcome, Piece, Severity,
    SharedFacts, Template,
};
pub use sink::{Sink, SinkError};
