//! Bounded host-name resolution: the system resolver on helper threads,
//! at most one lookup in flight per `host:port` and [`MAX_LOOKUPS`] in all.
//!
//! ## Design constraints
//! - `getaddrinfo` cannot be cancelled, so a lookup runs on a helper thread
//!   and the caller waits for it only until its deadline. A request for a
//!   `host:port` whose lookup is still running waits for that lookup instead
//!   of starting another: a resolver that never answers leaves one helper
//!   thread per endpoint behind, not one per request.
//! - At most [`MAX_LOOKUPS`] helper threads exist at once; past it a request
//!   fails at once with [`HttpError::ResolverBusy`] (quoting the limit).
//! - Results are not cached: a lookup that finished is forgotten, the next
//!   request resolves again.

use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::Instant;

use super::HttpError;

/// Most lookups in flight at once (process-wide for the system resolver).
pub const MAX_LOOKUPS: usize = 4;

/// A lookup function: host and port to addresses.
pub type LookupFn = dyn Fn(&str, u16) -> io::Result<Vec<SocketAddr>> + Send + Sync;

/// What a finished lookup left for its waiters.
type Outcome = Result<Vec<SocketAddr>, (io::ErrorKind, String)>;

#[derive(Default)]
struct Slot {
    done: Mutex<Option<Outcome>>,
    cv: Condvar,
}

struct Inflight {
    host: String,
    port: u16,
    slot: Arc<Slot>,
}

/// Resolves host names with a bounded number of helper threads.
pub struct Resolver {
    lookup: Arc<LookupFn>,
    max: usize,
    inflight: Arc<Mutex<Vec<Inflight>>>,
}

impl std::fmt::Debug for Resolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Resolver")
            .field("max", &self.max)
            .field("outstanding", &self.outstanding())
            .finish_non_exhaustive()
    }
}

fn system_lookup(host: &str, port: u16) -> io::Result<Vec<SocketAddr>> {
    (host, port).to_socket_addrs().map(Iterator::collect)
}

/// The process-wide resolver over the system's `getaddrinfo`.
pub fn system() -> &'static Resolver {
    static SYSTEM: std::sync::OnceLock<Resolver> = std::sync::OnceLock::new();
    SYSTEM.get_or_init(|| Resolver::new(Arc::new(system_lookup), MAX_LOOKUPS))
}

impl Resolver {
    /// A resolver calling `lookup`, with at most `max` lookups in flight.
    #[must_use]
    pub fn new(lookup: Arc<LookupFn>, max: usize) -> Self {
        Resolver {
            lookup,
            max,
            inflight: Arc::default(),
        }
    }

    /// Lookups (helper threads) in flight now.
    #[must_use]
    pub fn outstanding(&self) -> usize {
        self.inflight
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    /// Resolves `host:port`, waiting until `deadline` at most.
    ///
    /// # Errors
    /// [`HttpError::Resolve`] when the lookup fails or finds nothing,
    /// [`HttpError::ResolverBusy`] past the limit, `Ok(None)` at the
    /// deadline (the caller turns it into its timeout).
    pub fn resolve(
        &self,
        host: &str,
        port: u16,
        deadline: Instant,
    ) -> Result<Option<Vec<SocketAddr>>, HttpError> {
        let slot = self.join_or_start(host, port)?;
        let mut done = slot.done.lock().unwrap_or_else(PoisonError::into_inner);
        loop {
            if let Some(outcome) = done.as_ref() {
                return match outcome {
                    Ok(v) if !v.is_empty() => Ok(Some(v.clone())),
                    Ok(_) => Err(resolve_error(host, io::ErrorKind::NotFound, "no address")),
                    Err((kind, msg)) => Err(resolve_error(host, *kind, msg)),
                };
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(None);
            }
            done = slot
                .cv
                .wait_timeout(done, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }

    fn join_or_start(&self, host: &str, port: u16) -> Result<Arc<Slot>, HttpError> {
        let mut table = self.inflight.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(f) = table.iter().find(|f| f.host == host && f.port == port) {
            return Ok(Arc::clone(&f.slot));
        }
        if table.len() >= self.max {
            return Err(HttpError::ResolverBusy {
                host: host.to_owned(),
                limit: self.max,
            });
        }
        let slot = Arc::new(Slot::default());
        let (lookup, inflight, mine) = (
            Arc::clone(&self.lookup),
            Arc::clone(&self.inflight),
            Arc::clone(&slot),
        );
        let target = host.to_owned();
        std::thread::Builder::new()
            .name("resolve".into())
            .spawn(move || {
                let outcome = lookup(&target, port).map_err(|e| (e.kind(), e.to_string()));
                // Forget the lookup first: a request arriving now starts afresh.
                inflight
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .retain(|f| !Arc::ptr_eq(&f.slot, &mine));
                *mine.done.lock().unwrap_or_else(PoisonError::into_inner) = Some(outcome);
                mine.cv.notify_all();
            })
            .map_err(|source| HttpError::Resolve {
                host: host.to_owned(),
                source,
            })?;
        table.push(Inflight {
            host: host.to_owned(),
            port,
            slot: Arc::clone(&slot),
        });
        Ok(slot)
    }
}

fn resolve_error(host: &str, kind: io::ErrorKind, msg: &str) -> HttpError {
    HttpError::Resolve {
        host: host.to_owned(),
        source: io::Error::new(kind, msg.to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;
    use std::time::Duration;

    /// A resolver whose lookups block until the returned sender is dropped,
    /// counting the calls.
    fn hung() -> (Resolver, mpsc::Sender<()>, Arc<Mutex<u32>>) {
        let (tx, rx) = mpsc::channel::<()>();
        let rx = Arc::new(Mutex::new(rx));
        let calls = Arc::new(Mutex::new(0u32));
        let c = Arc::clone(&calls);
        let lookup = move |_: &str, port: u16| {
            *c.lock().unwrap() += 1;
            let _ = rx.lock().unwrap().recv();
            Ok(vec![SocketAddr::from(([127, 0, 0, 1], port))])
        };
        (Resolver::new(Arc::new(lookup), 2), tx, calls)
    }

    fn soon(ms: u64) -> Instant {
        Instant::now() + Duration::from_millis(ms)
    }

    /// A hung resolver left one thread per request behind; now requests for
    /// the same endpoint share one lookup and the total is bounded.
    #[test]
    fn a_hung_resolver_leaves_one_thread_per_endpoint_and_no_more_than_the_limit() {
        let (r, release, calls) = hung();
        for _ in 0..5 {
            assert!(r.resolve("a.example", 80, soon(20)).unwrap().is_none());
        }
        assert_eq!((r.outstanding(), *calls.lock().unwrap()), (1, 1));
        assert!(r.resolve("a.example", 81, soon(20)).unwrap().is_none());
        assert_eq!(r.outstanding(), 2);
        let err = r.resolve("b.example", 80, soon(20)).unwrap_err();
        assert_eq!(
            err.to_string(),
            "cannot resolve `b.example`: 2 lookups are still outstanding"
        );
        assert_eq!((r.outstanding(), *calls.lock().unwrap()), (2, 2));
        // The resolver answers: the lookups finish and are forgotten.
        drop(release);
        let t = Instant::now();
        while r.outstanding() > 0 && t.elapsed() < Duration::from_secs(5) {
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(r.outstanding(), 0);
    }

    #[test]
    fn a_waiter_gets_the_shared_answer_and_the_next_request_resolves_again() {
        let calls = Arc::new(Mutex::new(0u32));
        let c = Arc::clone(&calls);
        let lookup = move |host: &str, port: u16| {
            *c.lock().unwrap() += 1;
            std::thread::sleep(Duration::from_millis(50));
            if host == "bad.example" {
                Err(io::Error::new(io::ErrorKind::NotFound, "no such host"))
            } else {
                Ok(vec![SocketAddr::from(([10, 0, 0, 1], port))])
            }
        };
        let r = Arc::new(Resolver::new(Arc::new(lookup), 4));
        let r2 = Arc::clone(&r);
        let other = std::thread::spawn(move || r2.resolve("a.example", 9, soon(2000)));
        std::thread::sleep(Duration::from_millis(10));
        let mine = r.resolve("a.example", 9, soon(2000)).unwrap().unwrap();
        assert_eq!(mine, vec![SocketAddr::from(([10, 0, 0, 1], 9))]);
        assert_eq!(other.join().unwrap().unwrap().unwrap(), mine);
        assert_eq!(*calls.lock().unwrap(), 1);
        let _ = r.resolve("a.example", 9, soon(2000)).unwrap().unwrap();
        assert_eq!(*calls.lock().unwrap(), 2);
        let err = r.resolve("bad.example", 9, soon(2000)).unwrap_err();
        assert!(
            matches!(&err, HttpError::Resolve { host, .. } if host == "bad.example"),
            "{err}"
        );
        assert_eq!(r.outstanding(), 0);
    }
}
