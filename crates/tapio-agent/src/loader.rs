//! eBPF object loading: one clang-built object per observer, loaded with
//! aya from `--ebpf-dir`, every `tp_btf/` program attached by its function
//! name (which is the tracepoint's name, up to a `__variant` suffix).
//!
//! BPF syscalls are made here (through aya), in the drain loop, and in
//! `crate::bpf_sys` for what aya does not offer.

use std::io::Read as _;
use std::os::fd::{AsFd as _, OwnedFd};
use std::path::{Path, PathBuf};

use aya::maps::{Array, MapData, PerCpuArray, RingBuf};
use aya::programs::{BtfTracePoint, Program, RawTracePoint};
use aya::{Btf, Ebpf, EbpfLoader, Pod};
use tapio_common::ebpf::network::OWNER_TABLE_MAX;
use tapio_common::ebpf::stat;
use tapio_common::Observer;

use crate::kernel_btf::no_files::with_no_new_files;
use crate::kernel_btf::{tp_btf_hook, KernelBtf};
use crate::kernel_features::KernelFeatures;

/// Why an observer's object could not be brought up.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// No object file in the eBPF directory.
    #[error("eBPF object `{path}` not found")]
    ObjectMissing {
        /// Expected path.
        path: PathBuf,
    },
    /// The object failed to parse or its maps failed to create.
    #[error("loading `{path}` failed")]
    Object {
        /// Object path.
        path: PathBuf,
        /// The cause.
        #[source]
        source: Box<aya::EbpfError>,
    },
    /// A program failed to load (verifier) or attach.
    #[error("program `{program}`: `{call}` failed")]
    Program {
        /// Program name.
        program: String,
        /// `load` or `attach`.
        call: &'static str,
        /// The cause, with the verifier log when there is one.
        #[source]
        source: Box<aya::programs::ProgramError>,
    },
    /// The object lacks a map every observer has.
    #[error("map `{name}` missing from the object")]
    MapMissing {
        /// Map name.
        name: &'static str,
    },
    /// A map has the wrong type or size.
    #[error("map `{name}` is unusable")]
    Map {
        /// Map name.
        name: &'static str,
        /// The cause.
        #[source]
        source: Box<aya::maps::MapError>,
    },
    /// A program type this loader does not attach generically.
    #[error("program `{program}` has a type that needs observer-specific attachment")]
    UnsupportedProgram {
        /// Program name.
        program: String,
    },
    /// Kernel BTF could not be read.
    #[error("kernel BTF unreadable")]
    Btf {
        /// The cause.
        #[source]
        source: Box<aya::BtfError>,
    },
}

/// Byte-array value for the `tapio_config` carrier, whose size is the
/// observer's config struct.
#[derive(Clone, Copy)]
#[repr(transparent)]
struct Carrier<const N: usize>([u8; N]);

// SAFETY: a byte array: every bit pattern is valid, no padding.
unsafe impl<const N: usize> Pod for Carrier<N> {}

/// A loaded, attached observer object.
pub struct LoadedObject {
    /// Which observer.
    pub observer: Observer,
    ebpf: Ebpf,
    stats: PerCpuArray<MapData, u64>,
    note: Option<String>,
    pass: Option<IterPass>,
}

/// A BPF iterator link that the observer's drain runs once per interval
/// (the classifier's `pass_every`): each pass runs the iterator program
/// once per element of what it iterates.
pub struct IterPass {
    link: OwnedFd,
}

impl IterPass {
    /// Wraps an iterator link.
    #[must_use]
    pub fn new(link: OwnedFd) -> Self {
        IterPass { link }
    }

    /// One pass: a fresh iterator read to its end. The programs print
    /// nothing, so one read walks every element; the kernel stops a read
    /// after a million silent elements (`EAGAIN`), and the next goes on.
    /// Bounded: a pass that has not ended after [`IterPass::MAX_READS`]
    /// reads is an error, never a loop.
    ///
    /// # Errors
    /// The iterator could not be made or read, or did not end.
    pub fn run(&self) -> std::io::Result<()> {
        let mut it = std::fs::File::from(crate::bpf_sys::iter_create(self.link.as_fd())?);
        let mut buf = [0u8; 64];
        for _ in 0..Self::MAX_READS {
            match it.read(&mut buf) {
                Ok(0) => return Ok(()),
                Ok(_) => {}
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::Interrupted | std::io::ErrorKind::WouldBlock
                    ) => {}
                Err(e) => return Err(e),
            }
        }
        Err(std::io::Error::other(format!(
            "iterator did not end within {} reads",
            Self::MAX_READS
        )))
    }

    /// Reads one pass may take (each walks up to a million elements).
    pub const MAX_READS: usize = 64;
}

/// `owner_in_table` of network_monitor.o: 1 keeps socket owners in the
/// bounded `owner_table` instead of socket-local storage.
static OWNER_IN_TABLE: u32 = 1;

/// `owner_slots_on` of network_monitor.o: 1 keeps connecting sockets'
/// owners in direct-mapped slots claimed by BPF atomics.
static OWNER_SLOTS_ON: u32 = 1;

/// `stamps_ignored` of storage_monitor.o: 1 judges every block request on the
/// issue-hook fallback path.
static STAMPS_IGNORED: u32 = 1;

/// Test only, never a default, debug builds (what the tests run) only: set
/// (to anything) in the agent's environment,
/// the storage object ignores the kernel's request timestamps, as on a device
/// the kernel does not stamp, so the fallback path can be tested on kernels
/// that stamp every request. Said in the observer's status when set.
pub const STORAGE_TEST_IGNORE_STAMPS_ENV: &str = "TAPIO_TEST_STORAGE_IGNORE_STAMPS";

/// What an object does differently on this kernel.
#[derive(Default)]
struct Variant {
    /// Said in the observer's status, when it differs from the full design.
    note: Option<String>,
    /// Programs of the object left unloaded: the variants not chosen (a
    /// program's variant is named after `__`, e.g.
    /// `inet_sock_set_state__no_atomics`).
    skip: &'static [&'static str],
}

/// Sets the load-time choices of `observer`'s object for this kernel.
fn choose_variant(
    loader: &mut EbpfLoader<'_>,
    observer: Observer,
    features: KernelFeatures,
) -> Variant {
    match observer {
        Observer::Network => {
            let skip: &'static [&'static str] = if features.bpf_atomics {
                loader.override_global("owner_slots_on", &OWNER_SLOTS_ON, true);
                tracing::info!("connecting sockets' owners in slots claimed by BPF atomics");
                &["inet_sock_set_state__no_atomics"]
            } else {
                // The slots stay unused: one entry, not 1,024.
                loader.map_max_entries("owner_slots", 1);
                tracing::info!(
                    "connecting sockets' owners in owner_table: the verifier refused BPF atomics"
                );
                &["inet_sock_set_state"]
            };
            // Socket storage in use: the fallback table keeps its size.
            if features.sk_storage_in_tracing {
                return Variant { note: None, skip };
            }
            loader.map_max_entries("owner_table", OWNER_TABLE_MAX);
            loader.override_global("owner_in_table", &OWNER_IN_TABLE, true);
            Variant {
                note: Some(format!(
                    "socket owners kept in a table of {OWNER_TABLE_MAX} sockets: this kernel's \
                     tracing programs have no socket storage (`bpf_sk_storage_tracing_allowed` \
                     absent from its BTF)"
                )),
                skip,
            }
        }
        Observer::Storage
            if cfg!(debug_assertions)
                && std::env::var_os(STORAGE_TEST_IGNORE_STAMPS_ENV).is_some() =>
        {
            loader.override_global("stamps_ignored", &STAMPS_IGNORED, true);
            Variant {
                note: Some(format!(
                    "test mode ({STORAGE_TEST_IGNORE_STAMPS_ENV}): request timestamps ignored, \
                     latency from the issue hook"
                )),
                skip: &[],
            }
        }
        Observer::Container | Observer::Storage | Observer::Node => Variant::default(),
    }
}

/// Reads the kernel BTF once for every object in `dir`, reduced to what
/// they need ([`crate::kernel_btf`]).
///
/// # Errors
/// `/sys/kernel/btf/vmlinux` is missing, unreadable or not BTF.
pub fn kernel_btf(dir: &Path) -> Result<KernelBtf, LoadError> {
    crate::kernel_btf::load(dir, crate::observers::ITERATORS).map_err(|e| LoadError::Btf {
        source: Box::new(e),
    })
}

/// `n` aya loaders holding no BTF, and whether they were made without
/// aya reading the kernel's.
///
/// aya 0.14's `EbpfLoader::new()` parses the whole kernel BTF itself even
/// when [`EbpfLoader::btf`] replaces it right after: made inside
/// [`with_no_new_files`] (a single-threaded process: call this first), it
/// cannot open the file and parses nothing. Otherwise each loader's parse
/// is dropped before the next is made: at most one is alive at once.
#[must_use]
pub fn bare_loaders<'a>(n: usize) -> (Vec<EbpfLoader<'a>>, bool) {
    with_no_new_files(|| {
        (0..n)
            .map(|_| {
                let mut l = EbpfLoader::new();
                l.btf(None);
                l
            })
            .collect()
    })
}

/// Loads and attaches the tracepoint program `name` of `ebpf`: a `tp_btf/`
/// program on the tracepoint its name gives, up to a `__variant` suffix; a
/// `raw_tp/` program on its own name. Logged with the program's id.
fn attach_tracepoint(
    ebpf: &mut Ebpf,
    observer: Observer,
    name: &str,
    btf: &Btf,
) -> Result<(), LoadError> {
    let err = |call, e| LoadError::Program {
        program: name.to_owned(),
        call,
        source: Box::new(e),
    };
    match ebpf.program_mut(name) {
        Some(Program::BtfTracePoint(p)) => {
            let p: &mut BtfTracePoint = p;
            p.load(tp_btf_hook(name), btf).map_err(|e| err("load", e))?;
            p.attach().map_err(|e| err("attach", e))?;
        }
        Some(Program::RawTracePoint(p)) => {
            let p: &mut RawTracePoint = p;
            p.load().map_err(|e| err("load", e))?;
            p.attach(name).map_err(|e| err("attach", e))?;
        }
        Some(_) => {
            return Err(LoadError::UnsupportedProgram {
                program: name.to_owned(),
            })
        }
        None => return Ok(()),
    }
    log_attached(ebpf, observer, name);
    Ok(())
}

/// The line every attached program gets, with its kernel id (scripts find
/// a program's id by it).
fn log_attached(ebpf: &Ebpf, observer: Observer, name: &str) {
    if let Some(Ok(info)) = ebpf.program(name).map(Program::info) {
        tracing::info!(observer = %observer, program = %name, id = info.id(), "program attached");
    }
}

impl LoadedObject {
    /// Loads `<dir>/<object>.o` with `loader` (one of [`bare_loaders`]),
    /// chosen for this kernel's `features` (read once for every object),
    /// and attaches every tracepoint program but those named in `own`, which
    /// are left unloaded for the observer's own code (any type). A program
    /// of another type that `own` does not name is an error.
    ///
    /// # Errors
    /// Any [`LoadError`]; nothing stays attached on error.
    pub fn load<'a>(
        mut loader: EbpfLoader<'a>,
        dir: &Path,
        observer: Observer,
        btf: &'a Btf,
        features: KernelFeatures,
        own: &[&str],
    ) -> Result<(Self, RingBuf<MapData>), LoadError> {
        let path = dir.join(format!("{}.o", observer.object_name()));
        if !path.is_file() {
            return Err(LoadError::ObjectMissing { path });
        }
        loader.btf(Some(btf));
        let Variant { note, skip } = choose_variant(&mut loader, observer, features);
        let mut ebpf = loader.load_file(&path).map_err(|e| LoadError::Object {
            path: path.clone(),
            source: Box::new(e),
        })?;
        let names: Vec<String> = ebpf.programs().map(|(n, _)| n.to_owned()).collect();
        for name in names {
            if own.contains(&name.as_str()) || skip.contains(&name.as_str()) {
                continue;
            }
            attach_tracepoint(&mut ebpf, observer, &name, btf)?;
        }
        let ring = ebpf
            .take_map("events")
            .ok_or(LoadError::MapMissing { name: "events" })?;
        let ring = RingBuf::try_from(ring).map_err(|e| LoadError::Map {
            name: "events",
            source: Box::new(e),
        })?;
        let stats = ebpf.take_map("tapio_stats").ok_or(LoadError::MapMissing {
            name: "tapio_stats",
        })?;
        let stats = PerCpuArray::try_from(stats).map_err(|e| LoadError::Map {
            name: "tapio_stats",
            source: Box::new(e),
        })?;
        Ok((
            LoadedObject {
                observer,
                ebpf,
                stats,
                note,
                pass: None,
            },
            ring,
        ))
    }

    /// What this kernel made the object do differently, for the observer's
    /// status (e.g. a bounded fallback for a missing facility).
    #[must_use]
    pub fn note(&self) -> Option<&str> {
        self.note.as_deref()
    }

    /// Gives the object an iterator pass for its drain to run.
    pub fn set_pass(&mut self, pass: IterPass) {
        self.pass = Some(pass);
    }

    /// Runs the object's iterator pass, if it has one.
    pub fn run_pass(&self) -> Option<std::io::Result<()>> {
        self.pass.as_ref().map(IterPass::run)
    }

    /// The aya object, for observer-specific programs and maps.
    pub fn ebpf_mut(&mut self) -> &mut Ebpf {
        &mut self.ebpf
    }

    /// Loads and attaches one tracepoint program the generic load left to
    /// the observer (see [`LoadedObject::load`]'s `own`).
    ///
    /// # Errors
    /// The program is not a tracepoint, or its load or attach failed.
    pub fn attach_tracepoint(&mut self, name: &str, btf: &Btf) -> Result<(), LoadError> {
        attach_tracepoint(&mut self.ebpf, self.observer, name, btf)
    }

    /// Logs an observer-attached program as the generic load logs its own.
    pub fn log_attached(&self, name: &str) {
        log_attached(&self.ebpf, self.observer, name);
    }

    /// Writes `bytes` into slot 0 of the `tapio_config` carrier.
    ///
    /// # Errors
    /// The carrier is missing, has another value size, or the update failed.
    pub fn write_config(&mut self, bytes: &[u8]) -> Result<(), LoadError> {
        let map = self
            .ebpf
            .map_mut("tapio_config")
            .ok_or(LoadError::MapMissing {
                name: "tapio_config",
            })?;
        macro_rules! put {
            ($($n:literal),*) => {
                match bytes.len() {
                    $($n => {
                        let mut a: Array<&mut MapData, Carrier<$n>> = Array::try_from(map)
                            .map_err(|e| LoadError::Map { name: "tapio_config", source: Box::new(e) })?;
                        let mut v = [0u8; $n];
                        v.copy_from_slice(bytes);
                        a.set(0, Carrier(v), 0).map_err(|e| LoadError::Map { name: "tapio_config", source: Box::new(e) })
                    })*
                    _ => Err(LoadError::Map {
                        name: "tapio_config",
                        source: Box::new(aya::maps::MapError::InvalidValueSize { size: bytes.len(), expected: 0 }),
                    }),
                }
            };
        }
        put!(16, 24, 32, 40, 48, 56, 64, 72, 80, 88, 96, 104, 112, 120, 128)
    }

    /// Kernel-side counters summed over CPUs, by `tapio_stat` slot.
    ///
    /// # Errors
    /// The map lookup failed.
    pub fn read_stats(&self) -> Result<[u64; stat::SLOTS as usize], LoadError> {
        let mut out = [0u64; stat::SLOTS as usize];
        for (i, slot) in out.iter_mut().enumerate() {
            let idx = u32::try_from(i).unwrap_or(0);
            let v = self.stats.get(&idx, 0).map_err(|e| LoadError::Map {
                name: "tapio_stats",
                source: Box::new(e),
            })?;
            *slot = v.iter().sum();
        }
        Ok(out)
    }
}
