//! Observers: one module per eBPF object, each turning its ring records into
//! classified candidates.

use tapio_common::ebpf::{read_record, RecordHeader, TAPIO_ABI_VERSION};
use tapio_common::Observer;
use tapio_wire::CompiledConfig;

use crate::clock::Clock;
use crate::counters::Counters;
use crate::fold::Candidate;

pub mod container;
pub mod network;
pub mod node;
pub mod storage;

/// Why a ring record was dropped as malformed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Malformed {
    /// Shorter than its header or its declared size.
    #[error("record of {len} bytes is truncated")]
    Truncated {
        /// Bytes received.
        len: usize,
    },
    /// Declared size differs from the size of its kind.
    #[error("record kind {kind} declares {declared} bytes, expected {expected}")]
    SizeMismatch {
        /// Record kind.
        kind: u16,
        /// Declared size.
        declared: u16,
        /// Size of that kind.
        expected: usize,
    },
    /// Unknown record kind.
    #[error("unknown record kind {kind}")]
    UnknownKind {
        /// Record kind.
        kind: u16,
    },
    /// Produced by an object speaking another ABI.
    #[error("record ABI version {version}, expected {TAPIO_ABI_VERSION}")]
    AbiVersion {
        /// Version found.
        version: u32,
    },
}

/// Validates the common header of `bytes` for a record kind of `expected`
/// bytes; the caller has already mapped `kind` to `expected`.
///
/// # Errors
/// Any [`Malformed`] condition.
pub fn check_header(
    bytes: &[u8],
    expected: impl Fn(u16) -> Option<usize>,
) -> Result<RecordHeader, Malformed> {
    let hdr: RecordHeader = read_record(bytes).ok_or(Malformed::Truncated { len: bytes.len() })?;
    if hdr.abi_version != TAPIO_ABI_VERSION {
        return Err(Malformed::AbiVersion {
            version: hdr.abi_version,
        });
    }
    let want = expected(hdr.kind).ok_or(Malformed::UnknownKind { kind: hdr.kind })?;
    if usize::from(hdr.size) != want {
        return Err(Malformed::SizeMismatch {
            kind: hdr.kind,
            declared: hdr.size,
            expected: want,
        });
    }
    if bytes.len() < want {
        return Err(Malformed::Truncated { len: bytes.len() });
    }
    Ok(hdr)
}

/// Parses a record of type `T` whose kind is one of `kinds`: the common
/// header is validated ([`check_header`]) with `size_of::<T>()` as the size
/// of every listed kind, then the whole record is read.
///
/// # Errors
/// Any [`Malformed`] condition.
pub fn parse_record<T: tapio_common::ebpf::Plain>(
    bytes: &[u8],
    kinds: &[u16],
) -> Result<(RecordHeader, T), Malformed> {
    let size = std::mem::size_of::<T>();
    let hdr = check_header(bytes, |k| kinds.contains(&k).then_some(size))?;
    let rec = read_record(bytes).ok_or(Malformed::Truncated { len: bytes.len() })?;
    Ok((hdr, rec))
}

/// Userspace half of an observer: classification and windows.
pub trait Classifier: Send {
    /// Which observer.
    fn observer(&self) -> Observer;

    /// Classifies one ring record into zero or more candidates.
    ///
    /// # Errors
    /// The record is malformed; the caller counts and drops it.
    fn record(
        &mut self,
        bytes: &[u8],
        clock: &Clock,
        out: &mut Vec<Candidate>,
    ) -> Result<(), Malformed>;

    /// The raw fold key of a record, its boot-time stamp and its value of
    /// the anomaly's summarised fact ([`crate::fold::spread`]), when the
    /// record would become exactly one foldable candidate whose key facts
    /// come from those raw fields; `None` sends it through [`record`].
    ///
    /// [`record`]: Classifier::record
    fn raw_fold_key(&self, _bytes: &[u8]) -> Option<(crate::fold::RawKey, u64, Option<u64>)> {
        None
    }

    /// Closes windows that ended before `now_unix_ns`.
    fn tick(&mut self, _now_unix_ns: u64, _out: &mut Vec<Candidate>) {}

    /// Closes every window (shutdown).
    fn finish(&mut self, _out: &mut Vec<Candidate>) {}

    /// Takes the userspace part of a new config.
    fn configure(&mut self, cfg: &CompiledConfig, generation: u64);

    /// How often the drain runs the object's iterator pass
    /// ([`crate::loader::LoadedObject::run_pass`]) under the config taken
    /// last; `None`: not at all.
    fn pass_every(&self) -> Option<std::time::Duration> {
        None
    }

    /// Counters the classifier reports drops to.
    fn set_counters(&mut self, _counters: std::sync::Arc<Counters>) {}

    /// The object's kernel-side counters (`tapio_stats`, summed over CPUs),
    /// read about once a second; observers mirror their own slots (e.g.
    /// storage correlation drops) into [`Counters`].
    fn kernel_stats(&mut self, _stats: &[u64]) {}
}

/// The kernel config carrier of an observer: bytes to write into its
/// `tapio_config` map for a config, or `None` when this observer has no
/// carrier.
pub fn carrier_bytes(observer: Observer, cfg: &CompiledConfig, generation: u64) -> Option<Vec<u8>> {
    match observer {
        Observer::Network => Some(network::carrier(cfg, generation)),
        Observer::Container => container::carrier(cfg, generation),
        Observer::Storage => storage::carrier(cfg, generation),
        Observer::Node => node::carrier(cfg, generation),
    }
}

/// A classifier for `observer`, when this build has one.
#[must_use]
pub fn classifier(observer: Observer) -> Option<Box<dyn Classifier>> {
    match observer {
        Observer::Network => Some(Box::new(network::NetworkClassifier::default())),
        Observer::Container => container::classifier(),
        Observer::Storage => storage::classifier(),
        Observer::Node => node::classifier(),
    }
}

/// Programs of `observer`'s object the generic loader leaves alone (not
/// loaded, not attached) for [`attach_special`].
#[must_use]
pub fn own_programs(observer: Observer) -> &'static [&'static str] {
    match observer {
        Observer::Node => &["perf_cpu_clock"],
        Observer::Network => &[
            network::rtt_hook::ITER,
            network::rtt_hook::SOCKOPS,
            network::rtt_hook::TCP_PROBE,
        ],
        Observer::Container | Observer::Storage => &[],
    }
}

/// The iterator targets the observers' own code loads programs for (the
/// loader keeps their `bpf_iter_*` functions in its reduced kernel BTF).
pub const ITERATORS: &[&str] = &[network::rtt_hook::ITER_TARGET];

/// Attaches what the generic loader leaves detached ([`own_programs`]: the
/// perf-event program of the node observer, the RTT hook of the network
/// observer). `Ok(Some(note))`: running, with a standing note for its
/// status (degraded event set, a fallback, test mode); `Err` is the reason
/// the observer is unavailable.
///
/// # Errors
/// The observer cannot run on this host; the text says why (errno, event).
pub fn attach_special(
    observer: Observer,
    obj: &mut crate::loader::LoadedObject,
    settings: &crate::settings::Settings,
    btf: &aya::Btf,
    features: crate::kernel_features::KernelFeatures,
) -> Result<Option<String>, String> {
    match observer {
        Observer::Node => node::attach(obj, settings),
        Observer::Network => {
            let rtt = network::rtt_hook::attach(obj, btf, features, settings.rtt_hook)?;
            Ok(match (obj.note(), rtt) {
                (Some(a), Some(b)) => Some(format!("{a}; {b}")),
                (a, b) => a.map(str::to_owned).or(b),
            })
        }
        Observer::Container | Observer::Storage => Ok(obj.note().map(str::to_owned)),
    }
}

/// NUL-terminated kernel `comm` bytes as text.
#[must_use]
pub fn comm_str(comm: &[u8]) -> String {
    let end = comm.iter().position(|&b| b == 0).unwrap_or(comm.len());
    String::from_utf8_lossy(&comm[..end]).into_owned()
}
