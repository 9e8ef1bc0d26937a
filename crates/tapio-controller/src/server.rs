//! Accept loop: bounded connections, slowloris-safe HTTP/1.1 serving.
//!
//! ## Design constraints
//! - At most `max_connections` connections are served; past it each new
//!   connection gets a canned 503 `overloaded` envelope and is closed
//!   (counted in `connections_refused`).
//! - Headers must arrive within `header_read_timeout` (hyper closes the
//!   connection otherwise), bodies within `body_read_timeout` (408).
//! - Accept errors (EMFILE, ENFILE) back off for 50 ms instead of spinning.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tapio_wire::{ErrorCode, ErrorEnvelope};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;

use crate::metrics::Counters;
use crate::routes::{handle, App};

/// Serves `listener` until `shutdown` completes.
pub async fn serve(listener: TcpListener, app: Arc<App>, shutdown: impl Future<Output = ()>) {
    let permits = Arc::new(Semaphore::new(app.limits.max_connections));
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(app.limits.header_read_timeout)
        .max_buf_size(64 * 1024);
    let http = Arc::new(http);
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let Ok(permit) = Arc::clone(&permits).try_acquire_owned() else {
            Counters::inc(&app.counters.connections_refused);
            app.counters.error(ErrorCode::Overloaded);
            tokio::spawn(refuse(stream, app.limits.max_connections));
            continue;
        };
        let app = Arc::clone(&app);
        let http = Arc::clone(&http);
        tokio::spawn(async move {
            let service = service_fn(move |req| handle(Arc::clone(&app), req));
            if let Err(e) = http.serve_connection(TokioIo::new(stream), service).await {
                tracing::debug!(%peer, error = %e, "connection closed with error");
            }
            drop(permit);
        });
    }
}

/// Answers a connection over the limit with 503 and closes it.
async fn refuse(mut stream: TcpStream, limit: usize) {
    let body = serde_json::to_string(&ErrorEnvelope::new(
        ErrorCode::Overloaded,
        format!("connection limit of {limit} reached"),
    ))
    .unwrap_or_default();
    let head = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    );
    let write = async {
        stream.write_all(head.as_bytes()).await?;
        stream.write_all(body.as_bytes()).await?;
        stream.shutdown().await
    };
    let _ = tokio::time::timeout(Duration::from_secs(1), write).await;
}
