//! The resolver thread: turns queued cgroup ids into cache entries by
//! walking their hierarchy, off the drain path.
//!
//! ## Design constraints
//! - One thread, fed by a bounded queue ([`QUEUE`] ids; a full queue is
//!   counted as `queue_full` and the id is retried on a later occurrence).
//! - Every id queued since the last walk is answered by one walk of its
//!   hierarchy; walks start at most every [`MIN_WALK_INTERVAL`], so a storm
//!   of new ids costs at most ~10 walks a second.
//! - At start, one walk of each hierarchy fills the cache (up to its bound)
//!   so cgroups that exist before the agent are hits from their first
//!   occurrence.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::cache::{Cache, Entry, Hierarchy, Key, Owner};
use super::mounts::{Mount, Mounts};
use super::queue::Queue;
use super::walk::walk;
use crate::counters::{CgroupResolution, Counters};

/// Ids the resolver queue holds.
pub const QUEUE: usize = 256;
/// Shortest time between two walks.
pub const MIN_WALK_INTERVAL: Duration = Duration::from_millis(100);
/// Most directories one walk visits.
pub const MAX_DIRS: usize = 65_536;

fn mount(m: &Mounts, h: Hierarchy) -> Option<&Mount> {
    match h {
        Hierarchy::V2 => m.v2.as_ref(),
        Hierarchy::MemoryV1 => m.memory_v1.as_ref(),
    }
}

/// Walks `h` and answers `want` (ids of `h`, sorted, unique); fills the
/// cache with the rest of the walk while it has room.
pub fn resolve(
    cache: &Cache,
    mounts: &Mounts,
    counters: &Counters,
    h: Hierarchy,
    want: &[u64],
    max_dirs: usize,
) {
    let Some(m) = mount(mounts, h) else {
        for &id in want {
            cache.set(Key { hierarchy: h, id }, Entry::Gone);
            counters.cgroup_resolution(CgroupResolution::NoHierarchy);
        }
        return;
    };
    let w = walk(m, max_dirs);
    let mut found: Vec<Option<String>> = vec![None; want.len()];
    let mut rest = Vec::new();
    for (id, path) in w.dirs {
        match want.binary_search(&id) {
            Ok(i) => found[i] = Some(path),
            Err(_) => rest.push((Key { hierarchy: h, id }, path)),
        }
    }
    for (&id, path) in want.iter().zip(found) {
        let k = Key { hierarchy: h, id };
        match path {
            Some(path) => {
                tracing::debug!(cgroup_id = id, path = %path, "cgroup resolved");
                cache.set(k, Entry::Known(Arc::new(Owner::new(path))));
                counters.cgroup_resolution(CgroupResolution::Resolved);
            }
            None if w.complete => {
                tracing::debug!(cgroup_id = id, "cgroup gone before resolution");
                cache.set(k, Entry::Gone);
                counters.cgroup_resolution(CgroupResolution::Deleted);
            }
            None => {
                cache.forget(&k);
                counters.cgroup_resolution(CgroupResolution::Truncated);
            }
        }
    }
    cache.fill(rest.into_iter().map(|(k, p)| (k, Owner::new(p))));
}

/// The thread body: prefill, then answer the queue (runs for the life of
/// the process).
pub fn run(queue: &Queue, cache: &Cache, mounts: &Mounts, counters: &Counters) {
    for h in [Hierarchy::V2, Hierarchy::MemoryV1] {
        if mount(mounts, h).is_some() {
            resolve(cache, mounts, counters, h, &[], MAX_DIRS);
        }
    }
    tracing::debug!(entries = cache.len(), "cgroup cache prefilled");
    let mut last = Instant::now();
    loop {
        let mut keys = queue.take_all();
        let wait = MIN_WALK_INTERVAL.saturating_sub(last.elapsed());
        if !wait.is_zero() {
            // Ids queued meanwhile join this walk.
            std::thread::sleep(wait);
            keys.extend(queue.try_take());
        }
        last = Instant::now();
        for h in [Hierarchy::V2, Hierarchy::MemoryV1] {
            let mut ids: Vec<u64> = keys
                .iter()
                .filter(|k| k.hierarchy == h)
                .map(|k| k.id)
                .collect();
            if ids.is_empty() {
                continue;
            }
            ids.sort_unstable();
            ids.dedup();
            resolve(cache, mounts, counters, h, &ids, MAX_DIRS);
        }
    }
}
