//! `kernel_btf::no_files` on a single-threaded process (no test harness:
//! libtest runs tests on threads of their own, where the guard must not
//! act): file opens are refused inside it and only there, and aya's
//! `Btf::from_sys_fs` (what `EbpfLoader::new` calls) finds nothing.

use tapio_agent::kernel_btf::no_files::with_no_new_files;

fn main() {
    let ((open, sys_btf), limited) = with_no_new_files(|| {
        (
            std::fs::File::open("/proc/self/status").map_err(|e| e.raw_os_error()),
            aya::Btf::from_sys_fs().is_ok(),
        )
    });
    assert!(limited, "a single-threaded process is limited");
    assert_eq!(
        open.err(),
        Some(Some(libc::EMFILE)),
        "opens are refused inside"
    );
    assert!(!sys_btf, "aya reads no kernel BTF inside");
    assert!(
        std::fs::File::open("/proc/self/status").is_ok(),
        "opens work again after"
    );
    println!("no_files: opens refused inside the guard (EMFILE), restored after");
}
