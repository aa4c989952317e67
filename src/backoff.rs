//! The one backoff policy of permit-sync's retries outside a single API call (those are
//! `permit::retry`): the watcher's failed syncs, the controller's unreachable Permit and failed
//! resources, the executor's creates of unknown outcome. `base` doubles with each failure up to
//! `max`; [`Backoff::jittered`] spreads peers that failed together (±20 %).

use std::time::Duration;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Backoff {
    /// The wait after the first failure.
    pub base: Duration,
    pub max: Duration,
}

impl Backoff {
    pub const fn new(base: Duration, max: Duration) -> Backoff {
        Backoff { base, max }
    }

    /// The wait after `failures` failures in a row (1 = the first): `base × 2^(failures−1)`,
    /// at most `max`; no wait before any failure.
    pub fn delay(&self, failures: u32) -> Duration {
        if failures == 0 {
            return Duration::ZERO;
        }
        self.base
            .saturating_mul(1u32 << (failures - 1).min(16))
            .min(self.max)
    }

    /// [`Backoff::delay`] with ±20 % jitter, still at most `max`, so that processes restarted
    /// together do not retry in step.
    pub fn jittered(&self, failures: u32) -> Duration {
        let jitter = 0.8 + rand::random::<f64>() * 0.4;
        self.delay(failures)
            .mul_f64(jitter)
            .min(self.max.max(Duration::from_millis(1)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_to_the_cap_with_bounded_jitter() {
        let b = Backoff::new(Duration::from_secs(1), Duration::from_secs(10));
        let secs: Vec<u64> = (0..7).map(|n| b.delay(n).as_secs()).collect();
        assert_eq!(secs, [0, 1, 2, 4, 8, 10, 10]);
        assert_eq!(b.delay(1000), Duration::from_secs(10), "no overflow");
        for n in 1..6 {
            let j = b.jittered(n);
            assert!(j >= b.delay(n).mul_f64(0.8) && j <= b.delay(n).mul_f64(1.2).min(b.max));
        }
    }
}
