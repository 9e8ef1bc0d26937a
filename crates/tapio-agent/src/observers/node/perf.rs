//! Node counter setup: per-CPU perf events opened with `perf_event_open`,
//! their fds placed in the object's perf event arrays, and the cpu-clock
//! sampling event that runs the snapshot program on every online CPU.
//!
//! ## Design constraints
//! - Cycles are required: without them no ratio exists and the observer is
//!   unavailable, the reason naming the event, the CPU and the errno.
//!   Instructions and stalled cycles are optional; a missing one degrades
//!   only the anomalies that need it, and the startup log says which.
//! - Software events fill the slots only in the software test mode; the
//!   source is written to `pmc_setup`, copied into every snapshot, and every
//!   occurrence names it. Hardware names are never given to software counts.
//! - The perf event arrays hold the only references to the counter events:
//!   they live exactly as long as the loaded object.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

use aya::maps::{Array, Map, MapData};
use aya::programs::perf_event::{PerfEventConfig, PerfEventScope, SamplePolicy, SoftwareEvent};
use aya::programs::PerfEvent;
use tapio_common::ebpf::node::{
    NodeSetup, EV_CYCLES, EV_INSTRUCTIONS, EV_STALL_BACKEND, EV_STALL_FRONTEND, SAMPLE_PERIOD_MS,
    SRC_HARDWARE, SRC_SOFTWARE_TEST,
};

use crate::loader::LoadedObject;

const PERF_TYPE_HARDWARE: u32 = 0;
const PERF_TYPE_SOFTWARE: u32 = 1;
const PERF_FLAG_FD_CLOEXEC: libc::c_ulong = 1 << 3;
const PERF_ATTR_SIZE_VER0: u32 = 64;

/// One counter slot and the event that fills it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventSpec {
    /// Slot (`EV_*`), also the perf event array it goes to.
    pub slot: usize,
    /// Name used in reasons and logs.
    pub name: &'static str,
    /// Kernel name of the event.
    pub kernel_name: &'static str,
    perf_type: u32,
    config: u64,
    /// Required: the observer is unavailable without it.
    pub required: bool,
    /// Anomalies that cannot be judged without it.
    pub needed_by: &'static str,
}

const fn spec(
    slot: usize,
    name: &'static str,
    kernel_name: &'static str,
    perf_type: u32,
    config: u64,
    needed_by: &'static str,
) -> EventSpec {
    EventSpec {
        slot,
        name,
        kernel_name,
        perf_type,
        config,
        required: slot == EV_CYCLES,
        needed_by,
    }
}

/// Hardware counters: the only source outside the test mode.
pub const HARDWARE: [EventSpec; 4] = [
    spec(
        EV_CYCLES,
        "cycles",
        "PERF_COUNT_HW_CPU_CYCLES",
        PERF_TYPE_HARDWARE,
        0,
        "every anomaly",
    ),
    spec(
        EV_INSTRUCTIONS,
        "instructions",
        "PERF_COUNT_HW_INSTRUCTIONS",
        PERF_TYPE_HARDWARE,
        1,
        "kernel.node.ipc_degradation",
    ),
    spec(
        EV_STALL_FRONTEND,
        "stalled-cycles-frontend",
        "PERF_COUNT_HW_STALLED_CYCLES_FRONTEND",
        PERF_TYPE_HARDWARE,
        7,
        "kernel.node.cpu_stall (with backend stalls as fallback)",
    ),
    spec(
        EV_STALL_BACKEND,
        "stalled-cycles-backend",
        "PERF_COUNT_HW_STALLED_CYCLES_BACKEND",
        PERF_TYPE_HARDWARE,
        8,
        "kernel.node.memory_pressure and kernel.node.cpu_stall (with frontend stalls as fallback)",
    ),
];

/// Software events of the test mode: plumbing only, labelled as such.
pub const SOFTWARE_TEST: [EventSpec; 4] = [
    spec(
        EV_CYCLES,
        "cpu-clock",
        "PERF_COUNT_SW_CPU_CLOCK",
        PERF_TYPE_SOFTWARE,
        0,
        "every anomaly",
    ),
    spec(
        EV_INSTRUCTIONS,
        "context-switches",
        "PERF_COUNT_SW_CONTEXT_SWITCHES",
        PERF_TYPE_SOFTWARE,
        3,
        "kernel.node.ipc_degradation (test mode)",
    ),
    spec(
        EV_STALL_FRONTEND,
        "page-faults",
        "PERF_COUNT_SW_PAGE_FAULTS",
        PERF_TYPE_SOFTWARE,
        2,
        "kernel.node.cpu_stall (test mode)",
    ),
    spec(
        EV_STALL_BACKEND,
        "cpu-migrations",
        "PERF_COUNT_SW_CPU_MIGRATIONS",
        PERF_TYPE_SOFTWARE,
        4,
        "kernel.node.memory_pressure (test mode)",
    ),
];

/// Perf event array of each slot in `node_pmc_monitor.o`.
const ARRAYS: [&str; 4] = ["cycles", "instructions", "stall_frontend", "stall_backend"];

/// `struct perf_event_attr`, first published size (`PERF_ATTR_SIZE_VER0`):
/// every later field zero is the kernel default.
#[repr(C)]
#[derive(Default)]
struct PerfEventAttr {
    perf_type: u32,
    size: u32,
    config: u64,
    sample_period: u64,
    sample_type: u64,
    read_format: u64,
    flags: u64,
    wakeup_events: u32,
    bp_type: u32,
    config1: u64,
}

/// The name of an errno, for reasons an operator can search for.
#[must_use]
pub fn errno_name(errno: i32) -> &'static str {
    match errno {
        libc::ENOENT => "ENOENT",
        libc::EACCES => "EACCES",
        libc::EPERM => "EPERM",
        libc::ENODEV => "ENODEV",
        libc::EOPNOTSUPP => "EOPNOTSUPP",
        libc::EINVAL => "EINVAL",
        libc::EBUSY => "EBUSY",
        libc::EMFILE => "EMFILE",
        libc::E2BIG => "E2BIG",
        libc::ENOSPC => "ENOSPC",
        _ => "errno",
    }
}

/// Opens `spec` counting on every task of `cpu`.
fn open_counter(spec: &EventSpec, cpu: u32) -> std::io::Result<OwnedFd> {
    let attr = PerfEventAttr {
        perf_type: spec.perf_type,
        size: PERF_ATTR_SIZE_VER0,
        config: spec.config,
        ..PerfEventAttr::default()
    };
    let cpu =
        libc::c_int::try_from(cpu).map_err(|_| std::io::Error::from_raw_os_error(libc::EINVAL))?;
    // SAFETY: attr is a valid perf_event_attr of the size it declares; the
    // returned fd is new and owned by nobody else.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_perf_event_open,
            std::ptr::from_ref(&attr),
            -1 as libc::pid_t,
            cpu,
            -1 as libc::c_int,
            PERF_FLAG_FD_CLOEXEC,
        )
    };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    let fd =
        libc::c_int::try_from(fd).map_err(|_| std::io::Error::from_raw_os_error(libc::EBADF))?;
    // SAFETY: fd was just returned by perf_event_open.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

#[repr(C)]
struct MapElemAttr {
    map_fd: u32,
    _pad: u32,
    key: u64,
    value: u64,
    flags: u64,
}

/// Stores perf event `event` at index `cpu` of a perf event array.
fn array_set(map: BorrowedFd<'_>, cpu: u32, event: BorrowedFd<'_>) -> std::io::Result<()> {
    let key = cpu;
    let value = u32::try_from(event.as_raw_fd())
        .map_err(|_| std::io::Error::from_raw_os_error(libc::EBADF))?;
    let attr = MapElemAttr {
        map_fd: u32::try_from(map.as_raw_fd())
            .map_err(|_| std::io::Error::from_raw_os_error(libc::EBADF))?,
        _pad: 0,
        key: std::ptr::from_ref(&key) as u64,
        value: std::ptr::from_ref(&value) as u64,
        flags: 0,
    };
    // SAFETY: attr points at live key/value of the map's sizes (u32, u32).
    unsafe { crate::bpf_sys::bpf(crate::bpf_sys::cmd::MAP_UPDATE_ELEM, &attr) }.map(drop)
}

fn pmus_present() -> String {
    let mut names: Vec<String> = std::fs::read_dir("/sys/bus/event_source/devices")
        .map(|d| {
            d.filter_map(Result::ok)
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    if names.is_empty() {
        "none listed".into()
    } else {
        names.join(", ")
    }
}

/// Why one event could not be opened.
#[derive(Debug)]
pub struct OpenFailure {
    /// The event.
    pub spec: EventSpec,
    /// The CPU it failed on.
    pub cpu: u32,
    /// The error.
    pub error: std::io::Error,
}

impl OpenFailure {
    /// One line: event, CPU, call, errno name and text.
    #[must_use]
    pub fn describe(&self, hardware: bool) -> String {
        let errno = self.error.raw_os_error().unwrap_or(0);
        let text = self.error.to_string();
        let text = text.split(" (os error").next().unwrap_or_default();
        let mut s = format!(
            "{} event `{}` ({}) on cpu {}: `perf_event_open` failed with {} (errno {errno}: {text})",
            if hardware { "hardware" } else { "software" },
            self.spec.name,
            self.spec.kernel_name,
            self.cpu,
            errno_name(errno),
        );
        if hardware && errno == libc::ENOENT {
            s.push_str(&format!(
                "; no PMU here counts generic hardware events (PMUs present: {})",
                pmus_present()
            ));
        }
        s
    }
}

/// Opens `spec` on every CPU of `cpus`.
///
/// # Errors
/// The first CPU it failed on.
pub fn open_all(spec: &EventSpec, cpus: &[u32]) -> Result<Vec<(u32, OwnedFd)>, OpenFailure> {
    cpus.iter()
        .map(|&cpu| {
            open_counter(spec, cpu)
                .map(|fd| (cpu, fd))
                .map_err(|error| OpenFailure {
                    spec: *spec,
                    cpu,
                    error,
                })
        })
        .collect()
}

fn map_fd<'a>(obj: &'a mut LoadedObject, name: &str) -> Result<BorrowedFd<'a>, String> {
    match obj.ebpf_mut().map(name) {
        Some(Map::PerfEventArray(m)) => Ok(m.fd().as_fd()),
        Some(_) => Err(format!("map `{name}` is not a perf event array")),
        None => Err(format!("map `{name}` missing from node_pmc_monitor.o")),
    }
}

/// Opens the counters of `software_test` or hardware mode, fills the
/// arrays, writes `pmc_setup` and attaches the sampling program.
///
/// # Errors
/// Why the observer cannot run here (the text is the `unavailable` reason).
pub fn setup(obj: &mut LoadedObject, software_test: bool) -> Result<Option<String>, String> {
    let (specs, source) = if software_test {
        (SOFTWARE_TEST, SRC_SOFTWARE_TEST)
    } else {
        (HARDWARE, SRC_HARDWARE)
    };
    let cpus = aya::util::online_cpus()
        .map_err(|(path, e)| format!("online CPUs unreadable from `{path}`: {e}"))?;
    let mut mask = 0u32;
    let mut missing = Vec::new();
    for spec in &specs {
        match open_all(spec, &cpus) {
            Ok(fds) => {
                let array = map_fd(obj, ARRAYS[spec.slot])?;
                for (cpu, fd) in &fds {
                    array_set(array, *cpu, fd.as_fd()).map_err(|e| {
                        format!(
                            "`bpf(BPF_MAP_UPDATE_ELEM)` on `{}` cpu {cpu} failed: {e}",
                            ARRAYS[spec.slot]
                        )
                    })?;
                }
                mask |= 1 << spec.slot;
            }
            Err(f) if spec.required => return Err(f.describe(!software_test)),
            Err(f) => missing.push(f),
        }
    }
    if mask == 1 << EV_CYCLES {
        let why: Vec<String> = missing.iter().map(|f| f.describe(!software_test)).collect();
        return Err(format!(
            "no anomaly can be judged with cycles alone: {}",
            why.join("; ")
        ));
    }
    for f in &missing {
        tracing::warn!(
            observer = "node",
            event = f.spec.name,
            degrades = f.spec.needed_by,
            reason = %f.describe(!software_test),
            "node counter unavailable: anomalies needing it are not judged"
        );
    }
    let setup = NodeSetup {
        source,
        event_mask: mask,
    };
    let map = obj
        .ebpf_mut()
        .map_mut("pmc_setup")
        .ok_or("map `pmc_setup` missing from node_pmc_monitor.o")?;
    let mut arr: Array<&mut MapData, [u32; 2]> =
        Array::try_from(map).map_err(|e| format!("map `pmc_setup` unusable: {e}"))?;
    arr.set(0, [setup.source, setup.event_mask], 0)
        .map_err(|e| format!("map `pmc_setup` update failed: {e}"))?;
    let prog: &mut PerfEvent = obj
        .ebpf_mut()
        .program_mut("perf_cpu_clock")
        .ok_or("program `perf_cpu_clock` missing from node_pmc_monitor.o")?
        .try_into()
        .map_err(|e| format!("program `perf_cpu_clock`: {e}"))?;
    prog.load().map_err(|e| {
        format!(
            "program `perf_cpu_clock`: `load` failed: {}",
            crate::sinks::error_chain(&e)
        )
    })?;
    for &cpu in &cpus {
        prog.attach(
            PerfEventConfig::Software(SoftwareEvent::CpuClock),
            PerfEventScope::AllProcessesOneCpu { cpu },
            SamplePolicy::Period(SAMPLE_PERIOD_MS * 1_000_000),
            false,
        )
        .map_err(|e| {
            format!(
                "program `perf_cpu_clock`: `attach` to cpu-clock on cpu {cpu} failed: {}",
                crate::sinks::error_chain(&e)
            )
        })?;
    }
    let names: Vec<&str> = specs
        .iter()
        .filter(|s| mask & (1 << s.slot) != 0)
        .map(|s| s.name)
        .collect();
    if software_test {
        tracing::warn!(
            observer = "node",
            counter_source = "software-test",
            events = %names.join(","),
            cpus = cpus.len(),
            "node observer in SOFTWARE TEST MODE: software events fill the counter slots; its occurrences are labelled counter_source=software-test and are not hardware evidence"
        );
    } else {
        tracing::info!(
            observer = "node",
            counter_source = "hardware",
            events = %names.join(","),
            cpus = cpus.len(),
            "node counters opened"
        );
    }
    let mut notes: Vec<String> = Vec::new();
    if software_test {
        notes.push("SOFTWARE TEST MODE: software events fill the counter slots (counter_source=software-test), not hardware evidence".into());
    }
    for f in &missing {
        notes.push(format!(
            "degraded: {} not judged ({})",
            f.spec.needed_by,
            f.describe(!software_test)
        ));
    }
    Ok((!notes.is_empty()).then(|| notes.join("; ")))
}
