//! The few bpf(2) commands aya 0.14 does not offer in the form Tapio needs:
//! a verifier probe ([`crate::kernel_features`]), a map update without a
//! typed aya map (the node observer), and an iterator over a map (the
//! network observer's RTT pass: aya's `Iter::attach` takes no map).

use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

/// `enum bpf_cmd` values used here.
pub mod cmd {
    /// `BPF_MAP_UPDATE_ELEM`.
    pub const MAP_UPDATE_ELEM: libc::c_long = 2;
    /// `BPF_PROG_LOAD`.
    pub const PROG_LOAD: libc::c_long = 5;
    /// `BPF_LINK_CREATE`.
    pub const LINK_CREATE: libc::c_long = 28;
    /// `BPF_ITER_CREATE`.
    pub const ITER_CREATE: libc::c_long = 33;
}

/// `BPF_TRACE_ITER` of `enum bpf_attach_type`.
const BPF_TRACE_ITER: u32 = 28;

/// Runs bpf(`cmd`, `attr`): `attr` is the head of `union bpf_attr` for the
/// command, passed with its own size (the kernel takes a shorter attr as
/// zero-extended).
///
/// # Safety
/// Every pointer inside `attr` points at memory live for the call, of the
/// size the command reads or writes there.
///
/// # Errors
/// The kernel's errno.
pub unsafe fn bpf<A>(cmd: libc::c_long, attr: &A) -> std::io::Result<libc::c_long> {
    // SAFETY: the caller vouches for the pointers in attr; attr itself is
    // live and passed with its size.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd,
            std::ptr::from_ref(attr),
            std::mem::size_of::<A>(),
        )
    };
    if rc < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(rc)
}

/// Runs a command that returns a new descriptor, owned by the caller.
///
/// # Safety
/// As [`bpf`].
///
/// # Errors
/// The kernel's errno.
pub unsafe fn bpf_fd<A>(cmd: libc::c_long, attr: &A) -> std::io::Result<OwnedFd> {
    // SAFETY: as the caller's.
    let fd = unsafe { bpf(cmd, attr)? };
    let fd = i32::try_from(fd).map_err(|_| std::io::Error::from_raw_os_error(libc::EBADF))?;
    // SAFETY: a descriptor bpf(2) just returned, owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn fd_u32(fd: BorrowedFd<'_>) -> u32 {
    // A borrowed descriptor is open, hence non-negative.
    fd.as_raw_fd() as u32
}

/// Links the iterator program `prog` to the map `map` (an iterator over
/// the map's elements, e.g. `iter/bpf_sk_storage_map`).
///
/// # Errors
/// The kernel's errno (e.g. the program is not an iterator of a map).
pub fn link_map_iter(prog: BorrowedFd<'_>, map: BorrowedFd<'_>) -> std::io::Result<OwnedFd> {
    /// `union bpf_iter_link_info`, its `map` member.
    #[repr(C)]
    struct IterMap {
        map_fd: u32,
    }
    /// `link_create` of `union bpf_attr`.
    #[repr(C)]
    struct LinkCreate {
        prog_fd: u32,
        target_fd: u32,
        attach_type: u32,
        flags: u32,
        iter_info: u64,
        iter_info_len: u32,
        _pad: u32,
    }
    let info = IterMap {
        map_fd: fd_u32(map),
    };
    let attr = LinkCreate {
        prog_fd: fd_u32(prog),
        target_fd: 0,
        attach_type: BPF_TRACE_ITER,
        flags: 0,
        iter_info: std::ptr::from_ref(&info) as u64,
        iter_info_len: std::mem::size_of::<IterMap>() as u32,
        _pad: 0,
    };
    // SAFETY: iter_info points at `info`, live for the call, of the length
    // given.
    unsafe { bpf_fd(cmd::LINK_CREATE, &attr) }
}

/// A new iterator of the iterator link `link`: reading it to its end runs
/// the program once per element.
///
/// # Errors
/// The kernel's errno.
pub fn iter_create(link: BorrowedFd<'_>) -> std::io::Result<OwnedFd> {
    /// `iter_create` of `union bpf_attr`.
    #[repr(C)]
    struct IterCreate {
        link_fd: u32,
        flags: u32,
    }
    let attr = IterCreate {
        link_fd: fd_u32(link),
        flags: 0,
    };
    // SAFETY: attr holds no pointer.
    unsafe { bpf_fd(cmd::ITER_CREATE, &attr) }
}
