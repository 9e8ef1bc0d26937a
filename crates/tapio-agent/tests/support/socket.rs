//! Sockets made by hand: connects whose SYN retries and give-up the test
//! controls, pacing, congestion control, and the socket's own counters.

use std::time::Duration;

/// Thread id of the calling thread.
pub fn gettid() -> u64 {
    // SAFETY: gettid has no preconditions.
    u64::try_from(unsafe { libc::gettid() }).unwrap()
}

fn setsockopt_int(fd: i32, level: i32, opt: i32, v: i32) {
    // SAFETY: valid fd, pointer to a live i32 of the given size.
    let rc = unsafe { libc::setsockopt(fd, level, opt, std::ptr::from_ref(&v).cast(), 4) };
    assert_eq!(
        rc,
        0,
        "setsockopt {level}/{opt}: {}",
        std::io::Error::last_os_error()
    );
}

/// A TCP connect made by hand so the test controls SYN retries and gives up
/// by itself. Returns the connect's errno (0 on success) and the socket's
/// own retransmit total (TCP_INFO) just before it is closed.
pub fn connect_v4(
    dst: std::net::SocketAddrV4,
    syn_count: Option<i32>,
    give_up_after: Option<Duration>,
) -> (i32, u64) {
    connect_addr(std::net::SocketAddr::V4(dst), syn_count, give_up_after)
}

/// [`connect_v4`] for any address family (an IPv6 socket for a v6 or
/// v4-mapped address).
pub fn connect_addr(
    dst: std::net::SocketAddr,
    syn_count: Option<i32>,
    give_up_after: Option<Duration>,
) -> (i32, u64) {
    // SAFETY: plain socket syscalls on an fd this function owns and closes;
    // the sockaddr structs live across the connect call.
    unsafe {
        let family = if dst.is_ipv4() {
            libc::AF_INET
        } else {
            libc::AF_INET6
        };
        let fd = libc::socket(family, libc::SOCK_STREAM, 0);
        assert!(fd >= 0);
        if let Some(n) = syn_count {
            setsockopt_int(fd, libc::IPPROTO_TCP, libc::TCP_SYNCNT, n);
        }
        if give_up_after.is_some() {
            let fl = libc::fcntl(fd, libc::F_GETFL);
            libc::fcntl(fd, libc::F_SETFL, fl | libc::O_NONBLOCK);
        }
        let rc = match dst {
            std::net::SocketAddr::V4(a) => {
                let sa = libc::sockaddr_in {
                    sin_family: libc::AF_INET as libc::sa_family_t,
                    sin_port: a.port().to_be(),
                    sin_addr: libc::in_addr {
                        s_addr: u32::from(*a.ip()).to_be(),
                    },
                    sin_zero: [0; 8],
                };
                libc::connect(
                    fd,
                    std::ptr::from_ref(&sa).cast(),
                    std::mem::size_of::<libc::sockaddr_in>() as u32,
                )
            }
            std::net::SocketAddr::V6(a) => {
                let sa = libc::sockaddr_in6 {
                    sin6_family: libc::AF_INET6 as libc::sa_family_t,
                    sin6_port: a.port().to_be(),
                    sin6_flowinfo: 0,
                    sin6_addr: libc::in6_addr {
                        s6_addr: a.ip().octets(),
                    },
                    sin6_scope_id: 0,
                };
                libc::connect(
                    fd,
                    std::ptr::from_ref(&sa).cast(),
                    std::mem::size_of::<libc::sockaddr_in6>() as u32,
                )
            }
        };
        let mut err = if rc == 0 {
            0
        } else {
            *libc::__errno_location()
        };
        if let (Some(wait), libc::EINPROGRESS) = (give_up_after, err) {
            let mut p = libc::pollfd {
                fd,
                events: libc::POLLOUT,
                revents: 0,
            };
            let n = libc::poll(&mut p, 1, i32::try_from(wait.as_millis()).unwrap());
            err = if n == 0 {
                libc::ETIMEDOUT
            } else {
                let mut so: i32 = 0;
                let mut len = 4u32;
                libc::getsockopt(
                    fd,
                    libc::SOL_SOCKET,
                    libc::SO_ERROR,
                    std::ptr::from_mut(&mut so).cast(),
                    &mut len,
                );
                so
            };
        }
        let retrans = total_retrans(fd);
        libc::close(fd);
        (err, retrans)
    }
}

pub fn set_pacing(fd: i32, bytes_per_sec: i32) {
    setsockopt_int(
        fd,
        libc::SOL_SOCKET,
        libc::SO_MAX_PACING_RATE,
        bytes_per_sec,
    );
}

pub fn set_cubic(fd: i32) {
    let name = b"cubic";
    // SAFETY: valid fd and buffer.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            libc::IPPROTO_TCP,
            libc::TCP_CONGESTION,
            name.as_ptr().cast(),
            5,
        )
    };
    assert_eq!(
        rc,
        0,
        "TCP_CONGESTION cubic: {}",
        std::io::Error::last_os_error()
    );
}

/// Bytes in a TCP socket's send queue, unsent or not yet acknowledged
/// (`SIOCOUTQ`).
pub fn unacked_bytes(fd: i32) -> i32 {
    let mut n: libc::c_int = 0;
    // SAFETY: SIOCOUTQ writes one int through the pointer.
    let rc = unsafe { libc::ioctl(fd, libc::TIOCOUTQ, &mut n) };
    assert_eq!(rc, 0, "SIOCOUTQ: {}", std::io::Error::last_os_error());
    n
}

/// tcpi_total_retrans of a connected socket.
pub fn total_retrans(fd: i32) -> u64 {
    // SAFETY: tcp_info is plain data; getsockopt writes at most len bytes.
    unsafe {
        let mut info: libc::tcp_info = std::mem::zeroed();
        let mut len = std::mem::size_of::<libc::tcp_info>() as libc::socklen_t;
        let rc = libc::getsockopt(
            fd,
            libc::IPPROTO_TCP,
            libc::TCP_INFO,
            std::ptr::from_mut(&mut info).cast(),
            &mut len,
        );
        assert_eq!(rc, 0);
        u64::from(info.tcpi_total_retrans)
    }
}
