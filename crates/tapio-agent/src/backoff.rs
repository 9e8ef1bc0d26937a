//! Retry backoff: exponential, capped, with jitter.
//!
//! Every retrying caller in the agent (controller exchanges, network sinks)
//! waits `base * 2^n`, capped at `cap`, minus up to a quarter of jitter so
//! that a fleet of agents does not retry in lockstep after an outage.

use std::time::Duration;

/// Exponential backoff between `base` and `cap`.
#[derive(Debug, Clone)]
pub struct Backoff {
    base: Duration,
    cap: Duration,
    attempt: u32,
    seed: u64,
}

impl Backoff {
    /// A backoff starting at `base`, never waiting longer than `cap`.
    #[must_use]
    pub fn new(base: Duration, cap: Duration) -> Self {
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0x9e37_79b9, |d| u64::from(d.subsec_nanos()))
            ^ u64::from(std::process::id()).rotate_left(17);
        Backoff {
            base,
            cap: cap.max(base),
            attempt: 0,
            seed: seed | 1,
        }
    }

    /// The next wait; each call doubles the step up to the cap.
    pub fn next_delay(&mut self) -> Duration {
        let shift = self.attempt.min(20);
        self.attempt = self.attempt.saturating_add(1);
        let full = self.base.saturating_mul(1 << shift).min(self.cap);
        // xorshift64: cheap jitter, no dependency.
        self.seed ^= self.seed << 13;
        self.seed ^= self.seed >> 7;
        self.seed ^= self.seed << 17;
        let quarter = full / 4;
        let nanos = u64::try_from(quarter.as_nanos()).unwrap_or(u64::MAX);
        let jitter = if nanos == 0 { 0 } else { self.seed % nanos };
        full - Duration::from_nanos(jitter)
    }

    /// Back to `base` after a success.
    pub fn reset(&mut self) {
        self.attempt = 0;
    }

    /// Failures since the last success.
    #[must_use]
    pub fn failures(&self) -> u32 {
        self.attempt
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_up_to_the_cap_with_bounded_jitter() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_secs(1));
        let d: Vec<Duration> = (0..8).map(|_| b.next_delay()).collect();
        assert!(d[0] <= Duration::from_millis(100) && d[0] >= Duration::from_millis(75));
        assert!(d[1] <= Duration::from_millis(200) && d[1] >= Duration::from_millis(150));
        for x in &d[4..] {
            assert!(*x <= Duration::from_secs(1) && *x >= Duration::from_millis(750));
        }
        assert_eq!(b.failures(), 8);
        b.reset();
        assert!(b.next_delay() <= Duration::from_millis(100));
    }
}
