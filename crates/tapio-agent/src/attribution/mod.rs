//! Attribution: the cgroup path of an occurrence's owner, and the pod and
//! container that path names, from kernel facts alone.
//!
//! ## Design constraints
//! - The drain loop never waits: [`Attribution::annotate`] is a cache
//!   lookup. A hit adds `cgroup_path` (and `pod_uid`, `qos_class`,
//!   `container_id`, `container_runtime` when the path follows the kubelet
//!   conventions, see [`tapio_common::kubelet`]); a miss leaves the
//!   occurrence with its id only, counts the miss and queues the id for
//!   the resolver thread ([`resolver`]), whose answer serves the id's later
//!   occurrences (fold follow-ups included). The first occurrence of a
//!   cgroup created after the agent's last walk therefore carries no path.
//! - Which id names the owner: network occurrences carry the task's cgroup
//!   v2 id (`cgroup_id`); container occurrences resolve their v1 memcg
//!   (`cgroup_id`, `memcg_hierarchy: "v1"`) in the v1 memory hierarchy,
//!   where v1 runtimes put containers, and otherwise the task's cgroup v2
//!   (`cgroup2_id`). An occurrence without those facts (a container
//!   follow-up carries only `cgroup_id`, hierarchy unknown) is left alone:
//!   an id is never resolved in a hierarchy it may not belong to.
//! - Each drain task looks in its own [`front::Front`] (no lock, no
//!   atomic per occurrence) before the shared cache.
//! - Bounded: [`cache::CAPACITY`] cached ids, [`front::SLOTS`] per drain
//!   task, [`resolver::QUEUE`] queued, walks of at most
//!   [`resolver::MAX_DIRS`] directories, at most one walk per
//!   [`resolver::MIN_WALK_INTERVAL`].
//! - Counted: `tapio_cgroup_lookups_total{result=hit|miss}` per annotated
//!   occurrence, `tapio_cgroup_resolutions_total{result}` per resolved id.
//! - No names are looked up anywhere (no runtime socket, no API server):
//!   only what the path says.

pub mod cache;
pub mod front;
pub mod mounts;
pub mod queue;
pub mod resolver;
pub mod walk;

use std::sync::Arc;

use tapio_common::{Fact, Observer, Occurrence};

use crate::counters::{CgroupLookup, CgroupResolution, Counters};
use cache::{Cache, Hierarchy, Key, Lookup, Owner};
use mounts::Mounts;
use queue::Queue;

/// The agent's attribution: cache, resolver queue and counters.
pub struct Attribution {
    cache: Arc<Cache>,
    queue: Arc<Queue>,
    counters: Arc<Counters>,
}

/// The cgroup that owns `occ`, when its facts say which one (see the
/// module's design constraints).
#[must_use]
pub fn owner_key(occ: &Occurrence) -> Option<Key> {
    let u = |name: &str| match occ.data.get(name) {
        Some(Fact::U64(v)) => Some(*v),
        _ => None,
    };
    match occ.anomaly.observer() {
        Observer::Network => Some(Key {
            hierarchy: Hierarchy::V2,
            id: u("cgroup_id")?,
        }),
        Observer::Container => {
            let v1 = matches!(occ.data.get("memcg_hierarchy"), Some(Fact::Str(s)) if s == "v1");
            if v1 {
                u("cgroup_id").map(|id| Key {
                    hierarchy: Hierarchy::MemoryV1,
                    id,
                })
            } else {
                u("cgroup2_id").map(|id| Key {
                    hierarchy: Hierarchy::V2,
                    id,
                })
            }
        }
        Observer::Storage | Observer::Node => None,
    }
}

/// Adds `owner`'s facts to `occ`: its pre-rendered [`Owner::facts`],
/// shared, not copied (the drain path adds no text and no serialization
/// work per occurrence).
pub fn add_facts(occ: &mut Occurrence, owner: &Owner) {
    occ.data.attach(&owner.facts);
}

impl Attribution {
    /// Starts the resolver thread over this mount namespace's hierarchies.
    ///
    /// # Errors
    /// The thread cannot be spawned.
    pub fn start(counters: Arc<Counters>) -> std::io::Result<Arc<Attribution>> {
        Attribution::start_with(Mounts::read(), counters, cache::CAPACITY)
    }

    /// [`Attribution::start`] over given hierarchies and cache bound.
    ///
    /// # Errors
    /// The thread cannot be spawned.
    pub fn start_with(
        mounts: Mounts,
        counters: Arc<Counters>,
        capacity: usize,
    ) -> std::io::Result<Arc<Attribution>> {
        let queue = Arc::new(Queue::new(resolver::QUEUE));
        let cache = Arc::new(Cache::new(capacity));
        let (q, c, k) = (
            Arc::clone(&queue),
            Arc::clone(&cache),
            Arc::clone(&counters),
        );
        let dir = |m: &Option<mounts::Mount>| {
            m.as_ref()
                .map_or_else(|| "none".to_owned(), |m| m.dir.display().to_string())
        };
        tracing::info!(v2 = %dir(&mounts.v2), memory_v1 = %dir(&mounts.memory_v1), "cgroup attribution");
        std::thread::Builder::new()
            .name("tapio-cgroups".into())
            .spawn(move || resolver::run(&q, &c, &mounts, &k))?;
        Ok(Arc::new(Attribution {
            cache,
            queue,
            counters,
        }))
    }

    /// Adds the owner's facts to `occ` when cached; otherwise counts the
    /// miss and queues the id. Never waits. (The drain loops go through
    /// their own [`front::Front`] first.)
    pub fn annotate(&self, occ: &mut Occurrence) {
        let Some(k) = owner_key(occ) else {
            return;
        };
        if let Some(owner) = self.lookup(k) {
            self.counters.cgroup_lookup(CgroupLookup::Hit);
            add_facts(occ, &owner);
        }
    }

    /// The owner of `k` when cached. A miss is counted here and the id
    /// queued for the resolver (once); a hit is left for the caller to
    /// count. Never waits.
    pub fn lookup(&self, k: Key) -> Option<Arc<Owner>> {
        match self.cache.get(&k) {
            Lookup::Hit(owner) => return Some(owner),
            Lookup::Known => self.counters.cgroup_lookup(CgroupLookup::Miss),
            Lookup::Absent => {
                self.counters.cgroup_lookup(CgroupLookup::Miss);
                if self.cache.mark_pending(k) && !self.queue.try_push(k) {
                    self.cache.forget(&k);
                    self.counters.cgroup_resolution(CgroupResolution::QueueFull);
                }
            }
        }
        None
    }
}

#[cfg(test)]
mod tests;
