//! Block-layer codes as the kernel defines them: `blk_status_t` to errno
//! (`blk_errors[]` in block/blk-core.c) and `REQ_OP_*` names.

/// Positive errno of a `blk_status_t`, as `blk_status_to_errno()` maps it;
/// unknown codes are `EIO`, as the kernel's catch-all is.
#[must_use]
pub const fn errno_of(status: u32) -> i32 {
    match status {
        0 => 0,
        1 => libc::EOPNOTSUPP,
        2 => libc::ETIMEDOUT,
        3 => libc::ENOSPC,
        4 => libc::ENOLINK,
        5 => libc::EREMOTEIO,
        6 => libc::EBADE,
        7 => libc::ENODATA,
        8 => libc::EILSEQ,
        9 => libc::ENOMEM,
        11 => libc::EREMCHG,
        12 => libc::EAGAIN,
        13 => libc::EBUSY,
        14 => libc::ETOOMANYREFS,
        15 => libc::EOVERFLOW,
        16 => libc::ENODEV,
        17 => libc::ETIME,
        // BLK_STS_INVAL: 19 since v6.11, renumbered to 18 to close the gap.
        18 | 19 => libc::EINVAL,
        _ => libc::EIO,
    }
}

/// Lowercase name of a `REQ_OP_*` value (`enum req_op`), for the codes
/// that have meant the same operation on every kernel since 5.8; the zoned
/// operations were renumbered (v6.0) and are "other" (the raw code is a
/// fact of its own).
#[must_use]
pub const fn op_name(op: u32) -> &'static str {
    match op {
        0 => "read",
        1 => "write",
        2 => "flush",
        3 => "discard",
        5 => "secure_erase",
        9 => "write_zeroes",
        34 => "drv_in",
        35 => "drv_out",
        _ => "other",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ioerr_is_eio_and_unknown_codes_fall_back_to_eio() {
        assert_eq!(errno_of(10), libc::EIO);
        assert_eq!(errno_of(200), libc::EIO);
        assert_eq!(errno_of(2), libc::ETIMEDOUT);
        assert_eq!(errno_of(16), libc::ENODEV);
        assert_eq!(errno_of(0), 0);
    }

    #[test]
    fn ops_are_named_like_the_kernel() {
        assert_eq!(op_name(0), "read");
        assert_eq!(op_name(1), "write");
        assert_eq!(op_name(2), "flush");
        assert_eq!(op_name(250), "other");
    }
}
