//! Test helper for the real-kernel tests (not part of the agent): a process
//! of many threads that dies the way it is told, so a test can check that
//! one death is one occurrence however many threads it had.
//!
//! `thread_group N wait`: N threads block forever (the test kills it).
//! `thread_group N segv`: N threads block, then one of them (not the main
//! thread) raises SIGSEGV, which kills the whole group.
//! Prints `ready` once every thread runs.

use std::io::Write as _;
use std::sync::{Arc, Barrier};

fn main() {
    let mut args = std::env::args().skip(1);
    let n: usize = args
        .next()
        .and_then(|a| a.parse().ok())
        .expect("usage: thread_group N wait|segv");
    let mode = args.next().expect("usage: thread_group N wait|segv");
    // No core file for the deliberate SIGSEGV.
    let zero = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: a valid rlimit.
    unsafe { libc::setrlimit(libc::RLIMIT_CORE, &zero) };
    let started = Arc::new(Barrier::new(n + 1));
    let mut threads = Vec::new();
    for i in 0..n {
        let started = Arc::clone(&started);
        let segv = mode == "segv" && i == n / 2;
        threads.push(std::thread::spawn(move || {
            started.wait();
            if segv {
                std::thread::sleep(std::time::Duration::from_millis(200));
                // SAFETY: plain libc calls. Rust's runtime catches SIGSEGV
                // (stack overflow detection): restore the default action,
                // which ends the whole thread group, then raise it in this
                // thread.
                unsafe {
                    libc::signal(libc::SIGSEGV, libc::SIG_DFL);
                    libc::raise(libc::SIGSEGV);
                }
            }
            loop {
                std::thread::park();
            }
        }));
    }
    started.wait();
    println!("ready");
    std::io::stdout().flush().unwrap();
    for t in threads {
        let _ = t.join();
    }
}
