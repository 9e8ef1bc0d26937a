//! Load benchmark (not a test): N simulated agents on 127.0.0.1, each with
//! its own keep-alive connection, say hello and then alternate heartbeats and
//! event batches against the real `tapio-controller` binary, bounded in time.
//!
//! ```text
//! cargo bench -p tapio-controller --bench controller-load -- --agents 1000 --secs 20
//! ```
//! Flags: `--agents N` (1000), `--secs S` (20, at most 300), `--batch E`
//! occurrences per batch (10), `--interval-ms I` pause per agent between
//! requests (0 = closed loop: next request as soon as the answer is in).
//! Reports sustained requests/s, events/s and latency percentiles.
//!
//! Soak mode (`scripts/soak.sh`): `--target 127.0.0.1:PORT` drives an
//! already running controller instead of spawning one, for `--secs` up to
//! 4 h, surviving its pauses and restarts (per-request timeout, reconnect
//! with backoff, hello again on `409`), and prints one totals line every
//! `--report-secs` (10) and at the end. Loopback targets only.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::Request;
use hyper_util::rt::TokioIo;

struct Opts {
    agents: usize,
    secs: u64,
    batch: usize,
    interval_ms: u64,
    target: Option<std::net::SocketAddr>,
    report_secs: u64,
}

fn opts() -> Opts {
    let mut o = Opts {
        agents: 1000,
        secs: 20,
        batch: 10,
        interval_ms: 0,
        target: None,
        report_secs: 10,
    };
    let args: Vec<String> = std::env::args().collect();
    let mut i = 1;
    while i < args.len() {
        let v = || args.get(i + 1).and_then(|s| s.parse::<u64>().ok());
        match args[i].as_str() {
            "--agents" => o.agents = v().unwrap_or(1000) as usize,
            "--secs" => o.secs = v().unwrap_or(20).min(300),
            "--batch" => o.batch = v().unwrap_or(10) as usize,
            "--interval-ms" => o.interval_ms = v().unwrap_or(0),
            "--target" => o.target = args.get(i + 1).and_then(|s| s.parse().ok()),
            "--report-secs" => o.report_secs = v().unwrap_or(10).max(1),
            _ => {
                i += 1;
                continue;
            }
        }
        i += 2;
    }
    if o.target.is_some() {
        // Soak mode: longer runs, still bounded.
        let secs = args
            .iter()
            .position(|a| a == "--secs")
            .and_then(|i| args.get(i + 1))
            .and_then(|s| s.parse::<u64>().ok());
        o.secs = secs.unwrap_or(20).min(4 * 3600);
    }
    o
}

fn raise_nofile() {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: plain struct in/out.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &raw mut lim) == 0 {
            lim.rlim_cur = lim.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &raw const lim);
        }
    }
}

#[derive(Default)]
struct Totals {
    requests: AtomicU64,
    events: AtomicU64,
    errors: AtomicU64,
}

fn occurrence(i: usize) -> String {
    format!(
        r#"{{"id":"01JA1B2C3D4E5F6G7H8J9K{i:04}","timestamp":"2026-04-03T14:23:01.042Z","source":"tapio","type":"kernel.network.connection_refused","protocol_version":"1.0","severity":"warning","outcome":"failure","error":{{"code":"CONNECTION_REFUSED","message":"connect refused dst=10.0.0.1:9"}},"data":{{"pid":1234,"comm":"curl","dst_addr":"10.0.0.1","dst_port":9,"config_generation":1,"timestamp_ns":1743691381042000000}}}}"#
    )
}

async fn agent(
    id: usize,
    addr: std::net::SocketAddr,
    o: Arc<Opts>,
    measure_from: Instant,
    deadline: Instant,
    totals: Arc<Totals>,
) -> Vec<u32> {
    let mut lat = Vec::new();
    // Spread connection setup over the first second.
    tokio::time::sleep(Duration::from_micros(
        (id as u64 * 1_000_000) / o.agents.max(1) as u64,
    ))
    .await;
    let Ok(stream) = tokio::net::TcpStream::connect(addr).await else {
        totals.errors.fetch_add(1, Relaxed);
        return lat;
    };
    let _ = stream.set_nodelay(true);
    let Ok((mut tx, conn)) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await
    else {
        totals.errors.fetch_add(1, Relaxed);
        return lat;
    };
    tokio::spawn(conn);
    let agent_id = format!("bench-{id}");
    let occurrences: Vec<String> = (0..o.batch).map(occurrence).collect();
    let occurrences = occurrences.join(",");
    let mut session = String::new();
    let mut seq = 0u64;
    let mut step = 0u64;
    while Instant::now() < deadline {
        let (path, body) = if session.is_empty() {
            (
                "/v1/agents/hello",
                format!(
                    r#"{{"agent_id":"{agent_id}","node":"node-{id}","agent_version":"0.1.0","protocol":"tapio-wire/v1"}}"#
                ),
            )
        } else if step % 2 == 0 {
            (
                "/v1/agents/heartbeat",
                format!(
                    r#"{{"agent_id":"{agent_id}","session":"{session}","applied_hash":"sha256:a403e48b2ca79b4b5806ecdad5a5157f329186d71123cc825400480281a94b37","applied_generation":1,"observers":[{{"name":"network","state":"running"}},{{"name":"node","state":"unavailable","reason":"no PMU"}}],"counters":{{"events":{step},"anomalies":{seq}}}}}"#
                ),
            )
        } else {
            seq += 1;
            (
                "/v1/events",
                format!(
                    r#"{{"agent_id":"{agent_id}","session":"{session}","sequence":{seq},"occurrences":[{occurrences}]}}"#
                ),
            )
        };
        let req = Request::post(path)
            .header("host", "bench")
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(body)))
            .unwrap();
        if tx.ready().await.is_err() {
            totals.errors.fetch_add(1, Relaxed);
            return lat;
        }
        let t = Instant::now();
        let res = match tx.send_request(req).await {
            Ok(r) => r,
            Err(_) => {
                totals.errors.fetch_add(1, Relaxed);
                return lat;
            }
        };
        let status = res.status();
        let body = res.into_body().collect().await.map(|c| c.to_bytes());
        if t >= measure_from {
            lat.push(u32::try_from(t.elapsed().as_micros()).unwrap_or(u32::MAX));
        }
        totals.requests.fetch_add(1, Relaxed);
        match body {
            Ok(b) if status.is_success() => {
                if session.is_empty() {
                    let v: serde_json::Value = serde_json::from_slice(&b).unwrap_or_default();
                    session = v["session"].as_str().unwrap_or("").to_owned();
                } else if path == "/v1/events" {
                    totals.events.fetch_add(o.batch as u64, Relaxed);
                }
            }
            _ => {
                totals.errors.fetch_add(1, Relaxed);
            }
        }
        step += 1;
        if o.interval_ms > 0 {
            tokio::time::sleep(Duration::from_millis(o.interval_ms)).await;
        }
    }
    lat
}

#[derive(Default)]
struct SoakTotals {
    requests: AtomicU64,
    events: AtomicU64,
    errors: AtomicU64,
    timeouts: AtomicU64,
    reconnects: AtomicU64,
    rehellos: AtomicU64,
}

/// One simulated agent against an external controller that may be paused,
/// killed and restarted: every request has a deadline, a broken connection
/// is reopened with backoff, `409 unknown_agent` means hello again.
async fn soak_agent(id: usize, o: Arc<Opts>, deadline: Instant, t: Arc<SoakTotals>) {
    const REQ_TIMEOUT: Duration = Duration::from_secs(10);
    let addr = o.target.expect("soak target");
    let agent_id = format!("fleet-{id}");
    let occurrences: Vec<String> = (0..o.batch).map(occurrence).collect();
    let occurrences = occurrences.join(",");
    let mut session = String::new();
    let mut seq = 0u64;
    let mut step = 0u64;
    let backoff = |n: u64| Duration::from_millis(200 + (id as u64 * 7919 + n * 104_729) % 800);
    tokio::time::sleep(Duration::from_micros(
        (id as u64 * 1_000_000) / o.agents.max(1) as u64,
    ))
    .await;
    let mut attempt = 0u64;
    'connect: while Instant::now() < deadline {
        let stream =
            tokio::time::timeout(Duration::from_secs(2), tokio::net::TcpStream::connect(addr))
                .await;
        let Ok(Ok(stream)) = stream else {
            t.errors.fetch_add(1, Relaxed);
            attempt += 1;
            tokio::time::sleep(backoff(attempt)).await;
            continue;
        };
        let _ = stream.set_nodelay(true);
        let Ok(Ok((mut tx, conn))) = tokio::time::timeout(
            Duration::from_secs(2),
            hyper::client::conn::http1::handshake(TokioIo::new(stream)),
        )
        .await
        else {
            t.errors.fetch_add(1, Relaxed);
            continue;
        };
        let conn = tokio::spawn(conn);
        t.reconnects.fetch_add(1, Relaxed);
        while Instant::now() < deadline {
            let (path, body) = if session.is_empty() {
                (
                    "/v1/agents/hello",
                    format!(
                        r#"{{"agent_id":"{agent_id}","node":"node-{id}","agent_version":"0.1.0","protocol":"tapio-wire/v1"}}"#
                    ),
                )
            } else if step % 2 == 0 {
                (
                    "/v1/agents/heartbeat",
                    format!(
                        r#"{{"agent_id":"{agent_id}","session":"{session}","applied_hash":"sha256:a403e48b2ca79b4b5806ecdad5a5157f329186d71123cc825400480281a94b37","applied_generation":1,"observers":[{{"name":"network","state":"running"}}],"counters":{{"events":{step},"anomalies":{seq}}}}}"#
                    ),
                )
            } else {
                seq += 1;
                (
                    "/v1/events",
                    format!(
                        r#"{{"agent_id":"{agent_id}","session":"{session}","sequence":{seq},"occurrences":[{occurrences}]}}"#
                    ),
                )
            };
            let req = Request::post(path)
                .header("host", "soak")
                .header("content-type", "application/json")
                .body(Full::new(Bytes::from(body)))
                .unwrap();
            let answer = tokio::time::timeout(REQ_TIMEOUT, async {
                tx.ready().await.ok()?;
                let res = tx.send_request(req).await.ok()?;
                let status = res.status();
                let b = res.into_body().collect().await.ok()?.to_bytes();
                Some((status, b))
            })
            .await;
            let (status, b) = match answer {
                Ok(Some(a)) => a,
                Ok(None) => {
                    t.errors.fetch_add(1, Relaxed);
                    conn.abort();
                    attempt += 1;
                    tokio::time::sleep(backoff(attempt)).await;
                    continue 'connect;
                }
                Err(_) => {
                    t.timeouts.fetch_add(1, Relaxed);
                    conn.abort();
                    continue 'connect;
                }
            };
            t.requests.fetch_add(1, Relaxed);
            if status.is_success() {
                let v: serde_json::Value = serde_json::from_slice(&b).unwrap_or_default();
                if session.is_empty() {
                    session = v["session"].as_str().unwrap_or("").to_owned();
                    seq = 0;
                } else if path == "/v1/events" {
                    t.events
                        .fetch_add(v["accepted"].as_u64().unwrap_or(0), Relaxed);
                }
            } else {
                t.errors.fetch_add(1, Relaxed);
                if status.as_u16() == 409 {
                    session.clear();
                    t.rehellos.fetch_add(1, Relaxed);
                } else {
                    attempt += 1;
                    tokio::time::sleep(backoff(attempt)).await;
                }
            }
            step += 1;
            if o.interval_ms > 0 {
                tokio::time::sleep(Duration::from_millis(o.interval_ms)).await;
            }
        }
        conn.abort();
        break;
    }
}

fn soak(o: &Arc<Opts>) {
    let addr = o.target.expect("soak target");
    if !addr.ip().is_loopback() {
        eprintln!("controller-load: --target must be a loopback address, got {addr}");
        std::process::exit(2);
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let t = Arc::new(SoakTotals::default());
    let start = Instant::now();
    let deadline = start + Duration::from_secs(o.secs);
    rt.block_on(async {
        let tasks: Vec<_> = (0..o.agents)
            .map(|i| tokio::spawn(soak_agent(i, Arc::clone(o), deadline, Arc::clone(&t))))
            .collect();
        let reporter = {
            let t = Arc::clone(&t);
            let every = Duration::from_secs(o.report_secs);
            let agents = o.agents;
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(every).await;
                    println!("{}", soak_line(start, agents, &t));
                }
            })
        };
        for task in tasks {
            // Every request is bounded by its timeout: tasks end soon after the deadline.
            let _ = task.await;
        }
        reporter.abort();
    });
    println!("{} done", soak_line(start, o.agents, &t));
}

fn soak_line(start: Instant, agents: usize, t: &SoakTotals) -> String {
    format!(
        "fleet secs={} agents={agents} requests={} events={} errors={} timeouts={} connects={} rehellos={}",
        start.elapsed().as_secs(),
        t.requests.load(Relaxed),
        t.events.load(Relaxed),
        t.errors.load(Relaxed),
        t.timeouts.load(Relaxed),
        t.reconnects.load(Relaxed),
        t.rehellos.load(Relaxed)
    )
}

fn main() {
    let o = Arc::new(opts());
    raise_nofile();
    if o.target.is_some() {
        soak(&o);
        return;
    }
    let bin = env!("CARGO_BIN_EXE_tapio-controller");
    let mut child = std::process::Command::new(bin)
        .args([
            "--listen",
            "127.0.0.1:0",
            "--log-level",
            "warn",
            "--max-connections",
            &(o.agents + 100).to_string(),
            "--max-agents",
            &(o.agents + 100).to_string(),
            "--header-timeout-ms",
            "30000",
        ])
        .env("TAPIO_LOG", "info")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn controller");
    let stderr = child.stderr.take().unwrap();
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(stderr));
    let addr: std::net::SocketAddr = loop {
        let line = lines.next().expect("controller exited").unwrap();
        if let Some(i) = line.find("listening on ") {
            break line[i + 13..]
                .split_whitespace()
                .next()
                .unwrap()
                .parse()
                .unwrap();
        }
    };
    std::thread::spawn(move || for _ in lines {});

    // One client thread: the controller keeps at least one of the 2 cores.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let totals = Arc::new(Totals::default());
    let warmup = Duration::from_secs(2);
    let start = Instant::now();
    let deadline = start + warmup + Duration::from_secs(o.secs);
    let lat = rt.block_on(async {
        let sampler = {
            let totals = Arc::clone(&totals);
            tokio::spawn(async move {
                tokio::time::sleep(warmup).await;
                (
                    totals.requests.load(Relaxed),
                    totals.events.load(Relaxed),
                    Instant::now(),
                )
            })
        };
        let tasks: Vec<_> = (0..o.agents)
            .map(|i| {
                tokio::spawn(agent(
                    i,
                    addr,
                    Arc::clone(&o),
                    start + warmup,
                    deadline,
                    Arc::clone(&totals),
                ))
            })
            .collect();
        let (r0, e0, t0) = sampler.await.unwrap();
        let mut all = Vec::new();
        for t in tasks {
            all.extend(t.await.unwrap_or_default());
        }
        let dt = t0.elapsed().as_secs_f64();
        let r = totals.requests.load(Relaxed) - r0;
        let e = totals.events.load(Relaxed) - e0;
        println!(
            "agents={} batch={} interval_ms={} measured_secs={dt:.1}",
            o.agents, o.batch, o.interval_ms
        );
        println!(
            "requests/s={:.0} events/s={:.0} errors={}",
            r as f64 / dt,
            e as f64 / dt,
            totals.errors.load(Relaxed)
        );
        all
    });
    let mut lat = lat;
    lat.sort_unstable();
    let pct = |p: f64| {
        lat.get(((lat.len() as f64 * p) as usize).min(lat.len().saturating_sub(1)))
            .copied()
            .unwrap_or(0)
    };
    println!(
        "latency_ms p50={:.2} p99={:.2} max={:.2} (over {} requests after warm-up)",
        f64::from(pct(0.50)) / 1000.0,
        f64::from(pct(0.99)) / 1000.0,
        f64::from(pct(1.0)) / 1000.0,
        lat.len()
    );
    let _ = child.kill();
    let _ = child.wait();
}
