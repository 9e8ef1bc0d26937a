//! The resolver's bounded queue: a `Mutex<Vec>` and a `Condvar` (std's
//! channels cost more binary for the same job).

use std::sync::{Condvar, Mutex, PoisonError};

use super::cache::Key;

/// Ids waiting for the resolver; at most `capacity`.
pub struct Queue {
    ids: Mutex<Vec<Key>>,
    ready: Condvar,
    capacity: usize,
}

impl Queue {
    /// An empty queue of at most `capacity` ids.
    #[must_use]
    pub fn new(capacity: usize) -> Queue {
        Queue {
            ids: Mutex::new(Vec::with_capacity(capacity)),
            ready: Condvar::new(),
            capacity,
        }
    }

    /// Queues `k`; false (not queued) when full. Never waits on the
    /// resolver: the lock is held for a push only.
    pub fn try_push(&self, k: Key) -> bool {
        let mut ids = self.ids.lock().unwrap_or_else(PoisonError::into_inner);
        if ids.len() >= self.capacity {
            return false;
        }
        ids.push(k);
        self.ready.notify_one();
        true
    }

    /// Takes whatever is queued, without waiting.
    pub fn try_take(&self) -> Vec<Key> {
        std::mem::take(&mut *self.ids.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// Waits until at least one id is queued, then takes them all.
    pub fn take_all(&self) -> Vec<Key> {
        let mut ids = self.ids.lock().unwrap_or_else(PoisonError::into_inner);
        while ids.is_empty() {
            ids = self.ready.wait(ids).unwrap_or_else(PoisonError::into_inner);
        }
        std::mem::take(&mut *ids)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::attribution::cache::Hierarchy;

    #[test]
    fn bounded_and_taken_in_one_go() {
        let q = Queue::new(2);
        let k = |id| Key {
            hierarchy: Hierarchy::V2,
            id,
        };
        assert!(q.try_push(k(1)));
        assert!(q.try_push(k(2)));
        assert!(!q.try_push(k(3)), "full");
        assert_eq!(q.take_all(), vec![k(1), k(2)]);
        assert!(q.try_push(k(3)));
    }
}
