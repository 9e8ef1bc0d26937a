//! The ignored timing run: `status`, `recent` and `health` on 100,000
//! occurrence files.

use std::time::Instant;

use super::util::*;

/// `cargo test -p tapio-cli --release -- --ignored --nocapture scale` prints
/// how long `status` and `recent` take on 100,000 occurrence files.
#[test]
#[ignore = "timing measurement; prints numbers, asserts none"]
fn scale_100k_files() {
    let d = tempdir("scale");
    let kinds = [
        (
            "kernel.network.connection_refused",
            "warning",
            "CONNECTION_REFUSED",
        ),
        ("kernel.container.oom_kill", "critical", "OOM_KILL"),
        ("kernel.storage.latency_spike", "warning", "LATENCY_SPIKE"),
        (
            "kernel.network.retransmit_spike",
            "warning",
            "RETRANSMIT_SPIKE",
        ),
    ];
    let n = 100_000u64;
    let t = Instant::now();
    // Spread over the last 24 hours, newest at NOW.
    for i in 0..n {
        let (kind, sev, code) = kinds[(i % 4) as usize];
        let ms = NOW_MS - (n - i) * 864;
        put(
            &d,
            ms,
            u128::from(i),
            kind,
            sev,
            code,
            r#","pid":1234,"comm":"curl","dst_port":8080,"daddr":"10.1.2.3""#,
        );
    }
    println!("wrote {n} files in {:?}", t.elapsed());
    for args in [
        &["status"][..],
        &["status"],
        &["recent", "--since", "5m"],
        &["recent", "--since", "1h"],
        &["recent", "--since", "24h"],
        &["health"],
    ] {
        let t = Instant::now();
        let o = tapio(&d, args);
        let el = t.elapsed();
        assert_eq!(o.status.code(), Some(0));
        println!(
            "tapio {:<22} {:>8.1} ms  ({} stdout lines)",
            args.join(" "),
            el.as_secs_f64() * 1000.0,
            stdout(&o).lines().count()
        );
    }
    let _ = std::fs::remove_dir_all(&d);
}
