//! A drain task's own front of the shared cache: the owners this task
//! attributed lately, found with no lock, no hash of the key and no atomic
//! counter per occurrence (issue 14 item 5).
//!
//! ## Design constraints
//! - Direct-mapped and bounded: [`SLOTS`] slots per task, indexed by a
//!   multiplicative hash of the id; an id that lands on a taken slot
//!   replaces its owner. A slot holds an `Arc` of the shared cache's owner
//!   (no copy of the path).
//! - True without invalidation: only resolved owners enter, and a resolved
//!   id stays true (cgroup ids are never reused while the kernel runs; see
//!   [`super::cache`]). An owner the shared cache evicted stays valid here.
//! - Counted per batch, not per occurrence: hits are counted in a plain
//!   integer and added to `tapio_cgroup_lookups_total{result="hit"}` by
//!   [`Front::flush`], which the drain loop calls once per drained batch
//!   and tick; the ids hit since the last flush are marked used in the
//!   shared cache then, so its eviction still sees what is in use. Misses
//!   go to [`Attribution::lookup`], counted there as before.

use std::sync::Arc;

use tapio_common::Occurrence;

use super::cache::{Key, Owner};
use super::{add_facts, owner_key, Attribution};
use crate::counters::CgroupLookup;

/// Slots per drain task (each an id and an `Arc`: 24 bytes, 6 KiB a task).
pub const SLOTS: usize = 256;

/// A slot: an id and its owner.
type Slot = Option<(Key, Arc<Owner>)>;

/// One drain task's front.
pub struct Front {
    shared: Arc<Attribution>,
    slots: Box<[Slot]>,
    /// Slots hit since the last flush, one bit each.
    touched: [u64; SLOTS / 64],
    hits: u64,
}

/// The slot of `k`: the top bits of a Fibonacci hash of the id, the
/// hierarchy folded in (kernfs ids are close together; the multiply
/// spreads neighbours over the table).
#[inline]
fn slot_of(k: Key) -> usize {
    let h = (k.id ^ ((k.hierarchy as u64) << 63)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    // SLOTS is 2^8: the top 8 bits.
    (h >> (64 - SLOTS.trailing_zeros())) as usize
}

impl Front {
    /// An empty front over `shared`.
    #[must_use]
    pub fn new(shared: Arc<Attribution>) -> Front {
        Front {
            shared,
            slots: vec![None; SLOTS].into_boxed_slice(),
            touched: [0; SLOTS / 64],
            hits: 0,
        }
    }

    /// [`Attribution::annotate`], from this task's slots first.
    #[inline]
    pub fn annotate(&mut self, occ: &mut Occurrence) {
        let Some(k) = owner_key(occ) else {
            return;
        };
        let i = slot_of(k);
        if let Some((held, owner)) = &self.slots[i] {
            if *held == k {
                self.hits += 1;
                self.touched[i / 64] |= 1 << (i % 64);
                add_facts(occ, owner);
                return;
            }
        }
        if let Some(owner) = self.shared.lookup(k) {
            self.hits += 1;
            add_facts(occ, &owner);
            self.slots[i] = Some((k, owner));
        }
    }

    /// Adds the hits since the last flush to the shared counter and marks
    /// the ids hit here used in the shared cache.
    pub fn flush(&mut self) {
        if self.hits == 0 {
            return;
        }
        self.shared
            .counters
            .cgroup_lookups(CgroupLookup::Hit, std::mem::take(&mut self.hits));
        let touched = std::mem::take(&mut self.touched);
        let slots = &self.slots;
        let keys = touched.iter().enumerate().flat_map(|(w, bits)| {
            (0..64)
                .filter(move |b| bits & (1 << b) != 0)
                .filter_map(move |b| slots[w * 64 + b].as_ref().map(|(k, _)| *k))
        });
        self.shared.cache.touch(keys);
    }

    /// Occupied slots.
    #[must_use]
    pub fn len(&self) -> usize {
        self.slots.iter().filter(|s| s.is_some()).count()
    }

    /// True when no slot is occupied.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Drop for Front {
    fn drop(&mut self) {
        self.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::attribution::cache::Hierarchy;

    #[test]
    fn neighbouring_ids_spread_over_the_slots() {
        let used: std::collections::HashSet<usize> = (5000..5000 + SLOTS as u64)
            .map(|id| {
                slot_of(Key {
                    hierarchy: Hierarchy::V2,
                    id,
                })
            })
            .collect();
        // A direct map of consecutive ids: most land apart.
        assert!(used.len() > SLOTS * 6 / 10, "{} slots", used.len());
        let v1 = Key {
            hierarchy: Hierarchy::MemoryV1,
            id: 5000,
        };
        let v2 = Key {
            hierarchy: Hierarchy::V2,
            id: 5000,
        };
        assert_ne!(slot_of(v1), slot_of(v2));
        assert!((0..1 << 20).all(|id| slot_of(Key {
            hierarchy: Hierarchy::MemoryV1,
            id
        }) < SLOTS));
    }
}
