//! Data directory: the one directory the agent writes (occurrence files and
//! the status file), opened once and written only through its descriptor.
//!
//! ## Design constraints
//! - Created `0750` (missing parents too) when absent. Refused when it is a
//!   symlink, not a directory, owned by someone other than the agent's
//!   effective user or root, or writable by group or others, unless the
//!   operator sets `[file] allow_unsafe_data_dir = true`. The checks are made
//!   on the opened descriptor (`fstat`), so the directory cannot be swapped
//!   between check and use.
//! - Only the directory itself is checked: its ancestors are trusted (root's
//!   `/var/lib` for the default path). A symlink among them is followed.
//! - Every file is written under a fresh temp name in the directory
//!   (`.<name>.<pid>.<seq>.<random>.tmp`) opened with
//!   `O_CREAT | O_EXCL | O_NOFOLLOW`, mode `0640`, then `fsync`ed and renamed
//!   over its final name with `renameat` (which replaces a symlink, never
//!   follows it). A temp name that already exists (planted or left over) is
//!   skipped for another, at most [`TEMP_ATTEMPTS`] times.
//! - [`DataDir::sync`] `fsync`s the directory, making renames durable; the
//!   file sink calls it once per batch, the status file once per write.
//! - Removal is `unlinkat`: a symlink is removed, never followed.
//! - Temp files left behind by a crash are removed when the directory is
//!   opened.

use std::ffi::{CStr, CString, OsStr};
use std::io::Write;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Mode of a created data directory.
pub const DIR_MODE: u32 = 0o750;
/// Mode of every file written.
pub const FILE_MODE: u32 = 0o640;
/// Temp names tried before a write gives up.
pub const TEMP_ATTEMPTS: u32 = 8;
/// Largest file name accepted (the kernel's `NAME_MAX` is 255).
const MAX_NAME: usize = 200;

/// Why the data directory cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum DataDirError {
    /// The path is a symlink.
    #[error("data dir `{path}` is a symlink; refusing to follow it (point --data-dir at the real directory, or set [file] allow_unsafe_data_dir = true)")]
    Symlink {
        /// Path.
        path: PathBuf,
    },
    /// The path is not a directory.
    #[error("data dir `{path}` is not a directory")]
    NotDirectory {
        /// Path.
        path: PathBuf,
    },
    /// Group or others may write it.
    #[error("data dir `{path}` is writable by {who} (mode {mode:04o}); refusing it (chmod go-w, or set [file] allow_unsafe_data_dir = true)")]
    Writable {
        /// Path.
        path: PathBuf,
        /// `group`, `others` or `group and others`.
        who: &'static str,
        /// Permission bits.
        mode: u32,
    },
    /// Owned by another user.
    #[error("data dir `{path}` is owned by uid {uid}, neither this agent's uid {euid} nor root; refusing it (chown it, or set [file] allow_unsafe_data_dir = true)")]
    Owner {
        /// Path.
        path: PathBuf,
        /// Owner.
        uid: u32,
        /// The agent's effective uid.
        euid: u32,
    },
    /// A system call failed.
    #[error("data dir `{path}`: `{call}` failed")]
    Sys {
        /// Path.
        path: PathBuf,
        /// The call.
        call: &'static str,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
}

/// The opened data directory.
#[derive(Debug)]
pub struct DataDir {
    path: PathBuf,
    fd: OwnedFd,
    seq: AtomicU64,
}

fn cstring(bytes: &[u8]) -> std::io::Result<CString> {
    CString::new(bytes).map_err(|_| std::io::Error::from_raw_os_error(libc::EINVAL))
}

fn check(ret: libc::c_int) -> std::io::Result<libc::c_int> {
    if ret < 0 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// A plain name inside the directory: no `/`, not `.`/`..`, bounded.
fn valid_name(name: &str) -> std::io::Result<CString> {
    if name.is_empty() || name.len() > MAX_NAME || name.contains('/') || name == "." || name == ".."
    {
        return Err(std::io::Error::from_raw_os_error(libc::EINVAL));
    }
    cstring(name.as_bytes())
}

/// True for a temp name of a `.json` file, as this module makes them
/// (`.<name>.json.<pid>.<seq>.<random>.tmp`) and as earlier agents did
/// (`.<name>.json.tmp`).
fn is_temp_name(name: &str) -> bool {
    name.starts_with('.') && name.ends_with(".tmp") && name.contains(".json.")
}

/// Unit tests plant files at the exact temp names: the random part is fixed.
#[cfg(test)]
fn random_u32() -> u32 {
    0x7e57_7e57
}

#[cfg(not(test))]
fn random_u32() -> u32 {
    let mut b = [0u8; 4];
    // SAFETY: getrandom writes at most `b.len()` bytes into `b`.
    let n = unsafe { libc::getrandom(b.as_mut_ptr().cast(), b.len(), libc::GRND_NONBLOCK) };
    if n == 4 {
        u32::from_ne_bytes(b)
    } else {
        // No entropy yet (early boot): the name stays unique through pid
        // and sequence; O_EXCL keeps it safe either way.
        std::process::id().rotate_left(16)
    }
}

/// Refuses a directory writable by anyone but its owner, or owned by
/// someone other than `euid` or root.
///
/// # Errors
/// [`DataDirError::Writable`] or [`DataDirError::Owner`].
pub fn check_owner_and_mode(
    path: &Path,
    mode: u32,
    uid: u32,
    euid: u32,
) -> Result<(), DataDirError> {
    let who = match (mode & 0o020 != 0, mode & 0o002 != 0) {
        (true, true) => Some("group and others"),
        (true, false) => Some("group"),
        (false, true) => Some("others"),
        (false, false) => None,
    };
    if let Some(who) = who {
        return Err(DataDirError::Writable {
            path: path.to_path_buf(),
            who,
            mode,
        });
    }
    if uid != euid && uid != 0 {
        return Err(DataDirError::Owner {
            path: path.to_path_buf(),
            uid,
            euid,
        });
    }
    Ok(())
}

impl DataDir {
    /// Creates `path` (0750, parents too) when missing, opens it without
    /// following a final symlink and checks who may write it.
    ///
    /// # Errors
    /// [`DataDirError`]: a symlink, not a directory, unsafe owner or mode
    /// (each unless `allow_unsafe`), or a failed system call.
    pub fn open(path: &Path, allow_unsafe: bool) -> Result<DataDir, DataDirError> {
        let sys = |call, source| DataDirError::Sys {
            path: path.to_path_buf(),
            call,
            source,
        };
        match std::fs::symlink_metadata(path) {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                use std::os::unix::fs::DirBuilderExt;
                std::fs::DirBuilder::new()
                    .recursive(true)
                    .mode(DIR_MODE)
                    .create(path)
                    .map_err(|e| sys("mkdir", e))?;
            }
            Err(e) => return Err(sys("lstat", e)),
        }
        let c = cstring(path.as_os_str().as_bytes()).map_err(|e| sys("open", e))?;
        let mut flags = libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC;
        if !allow_unsafe {
            flags |= libc::O_NOFOLLOW;
        }
        // SAFETY: `c` is a NUL-terminated path; the returned fd is owned below.
        let raw = unsafe { libc::open(c.as_ptr(), flags) };
        if raw < 0 {
            let e = std::io::Error::last_os_error();
            let is_link = std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink());
            return Err(match e.raw_os_error() {
                Some(libc::ELOOP) | Some(libc::ENOTDIR) if is_link => DataDirError::Symlink {
                    path: path.to_path_buf(),
                },
                Some(libc::ENOTDIR) => DataDirError::NotDirectory {
                    path: path.to_path_buf(),
                },
                _ => sys("open", e),
            });
        }
        // SAFETY: `raw` is a fresh descriptor nobody else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        // SAFETY: `stat` is plain data; fstat fills it for a valid fd.
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        // SAFETY: `fd` is open; `st` is a valid out-pointer.
        check(unsafe { libc::fstat(fd.as_raw_fd(), &raw mut st) }).map_err(|e| sys("fstat", e))?;
        if !allow_unsafe {
            // SAFETY: geteuid cannot fail.
            let euid = unsafe { libc::geteuid() };
            check_owner_and_mode(path, st.st_mode & 0o7777, st.st_uid, euid)?;
        }
        let dir = DataDir {
            path: path.to_path_buf(),
            fd,
            seq: AtomicU64::new(0),
        };
        for name in dir.names().map_err(|e| sys("readdir", e))? {
            if is_temp_name(&name) {
                let _ = dir.remove(&name);
            }
        }
        Ok(dir)
    }

    /// The path it was opened at.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Names of the entries (not `.`/`..`, UTF-8 only), unsorted.
    ///
    /// # Errors
    /// `dup`, `fdopendir` or `readdir` failed.
    pub fn names(&self) -> std::io::Result<Vec<String>> {
        // SAFETY: dup of an open fd; the copy is owned by the DIR stream.
        let copy = check(unsafe { libc::fcntl(self.fd.as_raw_fd(), libc::F_DUPFD_CLOEXEC, 0) })?;
        // SAFETY: `copy` is a fresh directory fd; fdopendir takes it over.
        let dirp = unsafe { libc::fdopendir(copy) };
        if dirp.is_null() {
            let e = std::io::Error::last_os_error();
            // SAFETY: fdopendir failed, so `copy` is still ours to close.
            unsafe { libc::close(copy) };
            return Err(e);
        }
        // A dup shares the file offset: start from the top every time.
        // SAFETY: `dirp` is a valid DIR stream.
        unsafe { libc::rewinddir(dirp) };
        let mut out = Vec::new();
        loop {
            // SAFETY: `dirp` is valid until closedir below.
            let ent = unsafe { libc::readdir(dirp) };
            if ent.is_null() {
                break;
            }
            // SAFETY: `d_name` is NUL-terminated inside the entry.
            let name = unsafe { CStr::from_ptr((*ent).d_name.as_ptr()) };
            let bytes = name.to_bytes();
            if bytes == b"." || bytes == b".." {
                continue;
            }
            if let Some(s) = OsStr::from_bytes(bytes).to_str() {
                out.push(s.to_owned());
            }
        }
        // SAFETY: closes the stream and `copy`.
        unsafe { libc::closedir(dirp) };
        Ok(out)
    }

    /// Creates a fresh temp file for `name`: `O_EXCL | O_NOFOLLOW`, 0640.
    fn create_temp(&self, name: &str) -> std::io::Result<(CString, std::fs::File)> {
        let mut last = std::io::Error::from_raw_os_error(libc::EEXIST);
        for _ in 0..TEMP_ATTEMPTS {
            let seq = self.seq.fetch_add(1, Ordering::Relaxed);
            let tmp = format!(
                ".{name}.{}.{seq}.{:08x}.tmp",
                std::process::id(),
                random_u32()
            );
            let c = cstring(tmp.as_bytes())?;
            let flags =
                libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW | libc::O_CLOEXEC;
            // SAFETY: `c` is NUL-terminated; dirfd is open.
            let raw = unsafe { libc::openat(self.fd.as_raw_fd(), c.as_ptr(), flags, FILE_MODE) };
            if raw >= 0 {
                // SAFETY: fresh descriptor, owned by the File.
                let file = unsafe { std::fs::File::from_raw_fd(raw) };
                // The umask may have taken bits away; the mode is the contract.
                // SAFETY: fchmod on an open fd.
                check(unsafe { libc::fchmod(raw, FILE_MODE) })?;
                return Ok((c, file));
            }
            last = std::io::Error::last_os_error();
            if last.raw_os_error() != Some(libc::EEXIST) {
                return Err(last);
            }
        }
        Err(last)
    }

    /// Writes `body` as `name` atomically: temp file, `fsync`, `renameat`.
    /// The rename is durable after the next [`DataDir::sync`]. On error
    /// nothing named `name` changed and no temp file is left.
    ///
    /// # Errors
    /// The failing call and its errno (`ENOSPC` on a full disk).
    pub fn write_file(&self, name: &str, body: &[u8]) -> Result<(), WriteError> {
        let final_name = valid_name(name).map_err(|e| WriteError::new("name", e))?;
        let (tmp, mut file) = self
            .create_temp(name)
            .map_err(|e| WriteError::new("openat", e))?;
        let written = file
            .write_all(body)
            .map_err(|e| WriteError::new("write", e))
            .and_then(|()| file.sync_all().map_err(|e| WriteError::new("fsync", e)));
        drop(file);
        let renamed = written.and_then(|()| {
            // SAFETY: both names NUL-terminated, relative to the same open dirfd.
            check(unsafe {
                libc::renameat(
                    self.fd.as_raw_fd(),
                    tmp.as_ptr(),
                    self.fd.as_raw_fd(),
                    final_name.as_ptr(),
                )
            })
            .map(drop)
            .map_err(|e| WriteError::new("renameat", e))
        });
        if renamed.is_err() {
            // SAFETY: unlinkat of our own temp name in our dirfd.
            unsafe { libc::unlinkat(self.fd.as_raw_fd(), tmp.as_ptr(), 0) };
        }
        renamed
    }

    /// `fsync` of the directory: earlier renames and removals are durable.
    ///
    /// # Errors
    /// `fsync` failed.
    pub fn sync(&self) -> Result<(), WriteError> {
        // SAFETY: fsync on an open fd.
        check(unsafe { libc::fsync(self.fd.as_raw_fd()) })
            .map(drop)
            .map_err(|e| WriteError::new("fsync", e))
    }

    /// Removes `name` from the directory (a symlink itself, never its target).
    ///
    /// # Errors
    /// `unlinkat` failed.
    pub fn remove(&self, name: &str) -> std::io::Result<()> {
        let c = valid_name(name)?;
        // SAFETY: NUL-terminated name relative to an open dirfd.
        check(unsafe { libc::unlinkat(self.fd.as_raw_fd(), c.as_ptr(), 0) }).map(drop)
    }
}

/// A failed write: the call and its errno.
#[derive(Debug, thiserror::Error)]
#[error("`{call}` failed")]
pub struct WriteError {
    /// The call (`openat`, `write`, `fsync`, `renameat`).
    pub call: &'static str,
    /// Cause.
    #[source]
    pub source: std::io::Error,
}

impl WriteError {
    fn new(call: &'static str, source: std::io::Error) -> Self {
        WriteError { call, source }
    }

    /// True when the filesystem is out of space or quota.
    #[must_use]
    pub fn is_disk_full(&self) -> bool {
        matches!(
            self.source.raw_os_error(),
            Some(libc::ENOSPC | libc::EDQUOT)
        )
    }
}

#[cfg(test)]
mod tests;
