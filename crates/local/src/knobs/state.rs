//! The mutable side of the knobs: fault sequence, rate-limit windows, counters.

use super::limits::{Limit, permit_limits};
use super::log::{LoggedRequest, RequestLog};
use super::{Counters, Fault, FaultTarget, Knobs};
use axum::http::Method;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::collections::VecDeque;
use std::time::Instant;

/// The mutable side of the knobs: RNG, burst and script progress, rate-limit windows, counters.
pub struct KnobState {
    pub knobs: Knobs,
    rng: StdRng,
    burst_left: u32,
    script: VecDeque<Fault>,
    limits: Vec<Limit>,
    windows: Vec<VecDeque<Instant>>,
    pub counters: Counters,
    /// REST requests with their arrival times, while [`KnobState::record_requests`] is on.
    log: Option<RequestLog>,
}

impl KnobState {
    pub fn new(knobs: Knobs) -> Self {
        let limits = permit_limits();
        let mut state = KnobState {
            rng: StdRng::seed_from_u64(knobs.faults.seed),
            script: knobs.faults.script.iter().cloned().collect(),
            windows: limits.iter().map(|_| VecDeque::new()).collect(),
            limits,
            burst_left: 0,
            knobs: Knobs::default(),
            counters: Counters::default(),
            log: None,
        };
        state.knobs = knobs;
        state
    }

    /// Replaces the knobs; the fault RNG and script restart, so a seed replays the same faults.
    pub fn set(&mut self, knobs: Knobs) {
        let counters = std::mem::take(&mut self.counters);
        let windows_kept = self.knobs.rate_limits == knobs.rate_limits;
        let windows = std::mem::take(&mut self.windows);
        let log = self.log.take();
        *self = KnobState::new(knobs);
        self.counters = counters;
        self.log = log;
        if windows_kept {
            self.windows = windows;
        }
    }

    /// Clears counters and rate-limit windows and restarts the fault sequence.
    pub fn reset(&mut self) {
        let logging = self.log.is_some();
        *self = KnobState::new(self.knobs.clone());
        self.record_requests(logging);
    }

    /// Starts (afresh) or stops logging REST requests with their arrival times.
    pub fn record_requests(&mut self, on: bool) {
        self.log = on.then(RequestLog::new);
    }

    /// The REST requests logged since logging started or the last reset.
    pub fn request_log(&self) -> Vec<LoggedRequest> {
        self.log
            .as_ref()
            .map(|l| l.entries.clone())
            .unwrap_or_default()
    }

    pub(super) fn log_request(&mut self, method: &Method, path: &str, arrived: Instant) {
        if let Some(log) = &mut self.log {
            log.record(method.as_str(), path, arrived);
        }
    }

    pub(super) fn draw_fault(&mut self, pdp: bool) -> Fault {
        let f = &self.knobs.faults;
        let applies = match f.target {
            FaultTarget::Api => !pdp,
            FaultTarget::Pdp => pdp,
            FaultTarget::Both => true,
        };
        if !applies {
            return Fault::None;
        }
        if let Some(fault) = self.script.pop_front() {
            return fault;
        }
        if self.burst_left > 0 {
            self.burst_left -= 1;
            return Fault::RateLimited {
                retry_after: f.retry_after_secs,
            };
        }
        // One draw per request keeps the sequence a pure function of the seed and request order.
        let x: f64 = self.rng.random();
        let mut edge = f.error_rate;
        if x < edge {
            return Fault::Error {
                status: f.error_status,
            };
        }
        edge += f.rate_limit_rate;
        if x < edge {
            self.burst_left = f.rate_limit_burst.saturating_sub(1);
            return Fault::RateLimited {
                retry_after: f.retry_after_secs,
            };
        }
        edge += f.drop_rate;
        if x < edge {
            return Fault::Drop;
        }
        edge += f.slow_rate;
        if x < edge {
            return Fault::Slow { ms: f.slow_ms };
        }
        Fault::None
    }

    /// Admits the request, or returns the `Retry-After` seconds of the first limit it exceeds.
    pub(super) fn admit(&mut self, method: &Method, path: &str, now: Instant) -> Result<(), u64> {
        let cfg = &self.knobs.rate_limits;
        if !cfg.enabled {
            return Ok(());
        }
        let mut applicable = Vec::new();
        for (i, limit) in self.limits.iter().enumerate() {
            if !(limit.applies)(method, path) {
                continue;
            }
            let count = ((limit.count as f64 * cfg.scale).round() as usize).max(1);
            let window = limit.window.mul_f64(cfg.time_scale);
            let log = &mut self.windows[i];
            while log
                .front()
                .is_some_and(|t| now.duration_since(*t) >= window)
            {
                log.pop_front();
            }
            if log.len() >= count {
                let oldest = *log.front().expect("non-empty at the limit");
                let wait = window.saturating_sub(now.duration_since(oldest));
                tracing::debug!(limit = limit.name, "local Permit: rate limited");
                return Err(wait.as_secs_f64().ceil().max(1.0) as u64);
            }
            applicable.push(i);
        }
        for i in applicable {
            self.windows[i].push_back(now);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::limits::MINUTE;
    use super::super::{Faults, RateLimits};
    use super::*;

    fn draws(knobs: &Knobs, n: usize) -> Vec<Fault> {
        let mut s = KnobState::new(knobs.clone());
        (0..n).map(|_| s.draw_fault(false)).collect()
    }

    #[test]
    fn seeded_faults_replay() {
        let knobs = Knobs {
            faults: Faults {
                seed: 42,
                error_rate: 0.2,
                rate_limit_rate: 0.1,
                rate_limit_burst: 3,
                drop_rate: 0.1,
                ..Faults::default()
            },
            ..Knobs::default()
        };
        let a = draws(&knobs, 200);
        assert_eq!(a, draws(&knobs, 200));
        assert!(a.iter().any(|f| matches!(f, Fault::Error { status: 503 })));
        assert!(a.iter().any(|f| matches!(f, Fault::Drop)));
        // Every burst of 429s is at least 3 long (unless cut by the end).
        let pos = a
            .iter()
            .position(|f| matches!(f, Fault::RateLimited { .. }))
            .unwrap();
        if pos + 3 <= a.len() {
            assert!(
                a[pos..pos + 3]
                    .iter()
                    .all(|f| matches!(f, Fault::RateLimited { .. }))
            );
        }
        let other = Knobs {
            faults: Faults {
                seed: 43,
                ..knobs.faults.clone()
            },
            ..knobs.clone()
        };
        assert_ne!(draws(&other, 200), draws(&knobs, 200));
    }

    #[test]
    fn script_comes_first_and_pdp_is_spared_by_default() {
        let knobs = Knobs {
            faults: Faults {
                script: vec![Fault::Drop, Fault::Error { status: 500 }],
                ..Faults::default()
            },
            ..Knobs::default()
        };
        let mut s = KnobState::new(knobs);
        assert_eq!(s.draw_fault(true), Fault::None);
        assert_eq!(s.draw_fault(false), Fault::Drop);
        assert_eq!(s.draw_fault(false), Fault::Error { status: 500 });
        assert_eq!(s.draw_fault(false), Fault::None);
    }

    #[test]
    fn rate_limits_by_class() {
        let knobs = Knobs {
            rate_limits: RateLimits {
                enabled: true,
                scale: 0.1, // deletes: 6/min; writes: 30/min; all: 100/min
                ..RateLimits::default()
            },
            ..Knobs::default()
        };
        let mut s = KnobState::new(knobs);
        let t0 = Instant::now();
        let p = "/v2/facts/p/e/users/x";
        for _ in 0..6 {
            assert!(s.admit(&Method::DELETE, p, t0).is_ok());
        }
        let wait = s.admit(&Method::DELETE, p, t0).unwrap_err();
        assert_eq!(wait, 60);
        assert!(
            s.admit(&Method::GET, p, t0).is_ok(),
            "reads are not deletes"
        );
        assert!(
            s.admit(&Method::DELETE, p, t0 + MINUTE).is_ok(),
            "window slid"
        );
    }
}
