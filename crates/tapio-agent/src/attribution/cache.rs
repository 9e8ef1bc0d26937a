//! Bounded cache of cgroup id -> owner (path and what the path states).
//!
//! ## Design constraints
//! - At most `capacity` entries ([`CAPACITY`] in the agent). An insert into
//!   a full cache first evicts every resolved entry no lookup has used since
//!   the previous eviction, then, if none, one arbitrary resolved entry.
//!   Pending entries are never evicted (the resolver queue bounds them).
//! - Readers (a drain task's front miss, see [`super::front`]) take a read
//!   lock and one relaxed store; only a miss takes the write lock, once per
//!   unknown id.
//! - Cgroup ids are never reused while the kernel runs (64-bit kernfs ids),
//!   so a resolved entry stays true and a deleted one stays deleted.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};

use tapio_common::{Fact, SharedFacts};

/// Entries of the agent's cache. With kubelet-length paths (~200 bytes) an
/// entry holds its facts (~370 bytes of text) and their JSON (~400 bytes)
/// plus ~400 bytes of vectors, headers and map slot: ~1.2 KB, at most ~5 MB
/// (counted, not measured).
pub const CAPACITY: usize = 4096;

/// The cgroup hierarchy an id belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Hierarchy {
    /// cgroup v2.
    V2,
    /// cgroup v1, the memory controller's hierarchy.
    MemoryV1,
}

/// A cgroup id in its hierarchy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Key {
    /// Hierarchy.
    pub hierarchy: Hierarchy,
    /// Directory inode / cgroup id.
    pub id: u64,
}

/// What a resolved cgroup is: the occurrence facts its path states
/// (`cgroup_path`, then `pod_uid`, `qos_class`, `container_id`,
/// `container_runtime` when the path follows the kubelet's conventions),
/// rendered to JSON once, on the resolver thread.
#[derive(Debug, Clone, PartialEq)]
pub struct Owner {
    /// The facts, shared by every occurrence of this cgroup.
    pub facts: Arc<SharedFacts>,
}

impl Owner {
    /// The owner at `path`.
    #[must_use]
    pub fn new(path: String) -> Owner {
        let kubelet = tapio_common::kubelet::parse(&path);
        let mut facts = vec![("cgroup_path", Fact::Str(path))];
        if let Some(k) = kubelet {
            facts.push(("pod_uid", Fact::Str(k.pod_uid)));
            facts.push(("qos_class", Fact::Str(k.qos_class.as_str().into())));
            if let Some(c) = k.container {
                facts.push(("container_id", Fact::Str(c.id)));
                if let Some(r) = c.runtime {
                    facts.push(("container_runtime", Fact::Str(r.as_str().into())));
                }
            }
        }
        Owner {
            facts: Arc::new(SharedFacts::new(facts)),
        }
    }

    /// Path from the hierarchy's root (the `cgroup_path` fact).
    #[must_use]
    pub fn path(&self) -> &str {
        match self.facts.iter().next() {
            Some(("cgroup_path", Fact::Str(p))) => p,
            _ => "",
        }
    }
}

/// State of one id.
#[derive(Debug, Clone)]
pub enum Entry {
    /// Queued for the resolver.
    Pending,
    /// Resolved.
    Known(Arc<Owner>),
    /// Not resolvable: removed, or its hierarchy is not mounted.
    Gone,
}

struct Slot {
    entry: Entry,
    used: AtomicBool,
}

/// The cache.
pub struct Cache {
    map: RwLock<HashMap<Key, Slot>>,
    capacity: usize,
}

/// A lookup's answer.
#[derive(Debug)]
pub enum Lookup {
    /// Resolved.
    Hit(Arc<Owner>),
    /// Pending or gone: nothing to add, nothing to queue.
    Known,
    /// Never seen: the caller may queue it.
    Absent,
}

impl Cache {
    /// An empty cache of at most `capacity` entries.
    #[must_use]
    pub fn new(capacity: usize) -> Cache {
        Cache {
            map: RwLock::new(HashMap::with_capacity(capacity.min(1024))),
            capacity: capacity.max(1),
        }
    }

    /// Looks `k` up, marking a resolved entry used.
    pub fn get(&self, k: &Key) -> Lookup {
        let map = self
            .map
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match map.get(k) {
            Some(s) => {
                if let Entry::Known(o) = &s.entry {
                    s.used.store(true, Ordering::Relaxed);
                    Lookup::Hit(Arc::clone(o))
                } else {
                    Lookup::Known
                }
            }
            None => Lookup::Absent,
        }
    }

    /// True when `k` has an entry (without marking it used).
    #[must_use]
    pub fn contains(&self, k: &Key) -> bool {
        self.map
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .contains_key(k)
    }

    /// Marks the entries of `keys` used (ids a drain task's front hit).
    pub fn touch(&self, keys: impl IntoIterator<Item = Key>) {
        let map = self
            .map
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for k in keys {
            if let Some(s) = map.get(&k) {
                s.used.store(true, Ordering::Relaxed);
            }
        }
    }

    /// Marks `k` pending; false when it already has an entry.
    pub fn mark_pending(&self, k: Key) -> bool {
        let mut map = self
            .map
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if map.contains_key(&k) {
            return false;
        }
        self.make_room(&mut map);
        map.insert(
            k,
            Slot {
                entry: Entry::Pending,
                used: AtomicBool::new(true),
            },
        );
        true
    }

    /// Forgets `k` (a pending id the resolver could not take or finish).
    pub fn forget(&self, k: &Key) {
        let mut map = self
            .map
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        map.remove(k);
    }

    /// Sets `k`'s entry, evicting if full.
    pub fn set(&self, k: Key, entry: Entry) {
        let mut map = self
            .map
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if !map.contains_key(&k) {
            self.make_room(&mut map);
        }
        map.insert(
            k,
            Slot {
                entry,
                used: AtomicBool::new(true),
            },
        );
    }

    /// Adds resolved owners nobody asked for yet (a walk's other cgroups)
    /// while there is room; never evicts for them.
    pub fn fill(&self, items: impl IntoIterator<Item = (Key, Owner)>) {
        let mut map = self
            .map
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for (k, o) in items {
            if map.len() >= self.capacity {
                return;
            }
            map.entry(k).or_insert_with(|| Slot {
                entry: Entry::Known(Arc::new(o)),
                used: AtomicBool::new(false),
            });
        }
    }

    /// Number of entries.
    #[must_use]
    pub fn len(&self) -> usize {
        self.map.read().map_or(0, |m| m.len())
    }

    /// True when empty.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn make_room(&self, map: &mut HashMap<Key, Slot>) {
        if map.len() < self.capacity {
            return;
        }
        map.retain(|_, s| {
            matches!(s.entry, Entry::Pending) || s.used.swap(false, Ordering::Relaxed)
        });
        if map.len() >= self.capacity {
            let victim = map
                .iter()
                .find(|(_, s)| !matches!(s.entry, Entry::Pending))
                .map(|(k, _)| *k);
            if let Some(k) = victim {
                map.remove(&k);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn k(id: u64) -> Key {
        Key {
            hierarchy: Hierarchy::V2,
            id,
        }
    }

    fn known(path: &str) -> Entry {
        Entry::Known(Arc::new(Owner::new(path.into())))
    }

    #[test]
    fn pending_once_then_resolved() {
        let c = Cache::new(8);
        assert!(matches!(c.get(&k(1)), Lookup::Absent));
        assert!(c.mark_pending(k(1)));
        assert!(!c.mark_pending(k(1)), "queued once");
        assert!(matches!(c.get(&k(1)), Lookup::Known));
        c.set(k(1), known("/a"));
        match c.get(&k(1)) {
            Lookup::Hit(o) => assert_eq!(o.path(), "/a"),
            other => panic!("{other:?}"),
        }
        c.set(k(2), Entry::Gone);
        assert!(matches!(c.get(&k(2)), Lookup::Known));
        let v1 = Key {
            hierarchy: Hierarchy::MemoryV1,
            id: 1,
        };
        assert!(matches!(c.get(&v1), Lookup::Absent), "hierarchies apart");
    }

    #[test]
    fn the_bound_holds_and_evicts_unused_entries_first() {
        let c = Cache::new(4);
        for id in 0..4 {
            c.set(k(id), known("/x"));
        }
        // One eviction pass clears the used bits; entry 0 is used again.
        c.set(k(10), known("/y"));
        assert!(c.len() <= 4);
        let _ = c.get(&k(10));
        for id in 20..40 {
            c.set(k(id), known("/z"));
            assert!(c.len() <= 4, "bound");
        }
    }

    #[test]
    fn pending_entries_are_never_evicted_and_fill_never_evicts() {
        let c = Cache::new(2);
        assert!(c.mark_pending(k(1)));
        c.set(k(2), known("/a"));
        c.set(k(3), known("/b"));
        assert!(matches!(c.get(&k(1)), Lookup::Known), "still pending");
        c.fill([(k(4), Owner::new("/c".into()))]);
        assert!(
            matches!(c.get(&k(4)), Lookup::Absent),
            "no room: not filled"
        );
        assert_eq!(c.len(), 2);
    }
}
