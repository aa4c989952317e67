//! The rate-limit budget, pure: for each limit class, when the calls in its window were sent.
//!
//! Permit documents its REST limits as a count per period ("Bulk requests: 100 per 10 minutes",
//! docs `api/api-with-cli.mdx`, permit-api.md §7) and documents neither the algorithm nor any
//! rate-limit header or 429 body. A call is admitted here when fewer than `count` calls were sent
//! in the last `period` (a sliding-window log), so a window is spent exactly: 100 bulk calls go at
//! once and the 101st when the first one's window has passed. Whatever Permit counts with, this
//! stays within it: any sequence with at most `count` calls in every interval of `period` also
//! passes a fixed-window counter and a token bucket of that count and period.
//!
//! The safety margin is time, not calls: Permit counts a call when it arrives, we when we send it,
//! so an old call can still count at Permit after our log let it go, by the spread of one-way
//! delays between two requests. An entry counts for `period + margin`, with the margin a sixtieth
//! of the period and at most [`MAX_MARGIN`] (1 s of a 60 s window: 1.7% when waiting for windows,
//! nothing when the calls fit in one).
//!
//! A 429 means the window is shared with something we cannot see (the user's own app on the same
//! key, another permit-sync): the class's budget shrinks to 90% of what Permit had let through,
//! and grows back once a whole window passes without a 429. Times are durations since the
//! limiter's start, so tests drive it with any clock.

use super::limits::{Limit, LimitClass, Limits};
use std::collections::VecDeque;
use std::time::Duration;

/// The most an entry outlives its period (see the module doc).
pub const MAX_MARGIN: Duration = Duration::from_secs(1);

/// The time margin for one limit.
pub fn margin(limit: &Limit) -> Duration {
    (limit.period / 60).min(MAX_MARGIN)
}

/// Every limited class's window.
#[derive(Debug, Clone)]
pub struct Windows {
    windows: Vec<Window>,
}

#[derive(Debug, Clone)]
struct Window {
    class: LimitClass,
    limit: Limit,
    /// How long an entry counts: the period and the margin.
    span: Duration,
    /// Calls allowed in one window: the limit, or less after a 429.
    budget: u32,
    /// When each call in the window was admitted, oldest first.
    log: VecDeque<Duration>,
    /// No call before this (a `Retry-After`).
    closed_until: Duration,
    /// When the budget last shrank: a 429 of a call admitted before that is already accounted for.
    shrunk_at: Option<Duration>,
    last_refusal: Duration,
}

impl Window {
    fn expire(&mut self, now: Duration) {
        while self.log.front().is_some_and(|at| *at + self.span <= now) {
            self.log.pop_front();
        }
        if self.budget < self.limit.count && now >= self.last_refusal + self.span {
            self.budget = self.limit.count;
            self.shrunk_at = None;
        }
    }

    /// The earliest time a call of this class may be sent (`now` already expired).
    fn ready_at(&self, now: Duration) -> Duration {
        let budget = self.budget as usize;
        let room = if self.log.len() < budget {
            now
        } else {
            // The call that has to leave the window for one more to fit.
            self.log[self.log.len() - budget] + self.span
        };
        room.max(self.closed_until).max(now)
    }

    fn utilisation(&self) -> f64 {
        self.log.len() as f64 / f64::from(self.budget)
    }
}

impl Windows {
    pub fn new(limits: &Limits) -> Windows {
        let windows = limits
            .classes
            .iter()
            .map(|(class, limit)| Window {
                class: *class,
                limit: *limit,
                span: limit.period + margin(limit),
                budget: limit.count,
                log: VecDeque::with_capacity(limit.count.min(4096) as usize),
                closed_until: Duration::ZERO,
                shrunk_at: None,
                last_refusal: Duration::ZERO,
            })
            .collect();
        Windows { windows }
    }

    fn of<'a>(&'a mut self, classes: &'a [LimitClass]) -> impl Iterator<Item = &'a mut Window> {
        self.windows
            .iter_mut()
            .filter(move |w| classes.contains(&w.class))
    }

    /// Admits a call of `classes` at `now`, or tells when it may go.
    pub fn try_admit(&mut self, classes: &[LimitClass], now: Duration) -> Result<(), Duration> {
        let mut ready = now;
        for w in self.of(classes) {
            w.expire(now);
            ready = ready.max(w.ready_at(now));
        }
        if ready > now {
            return Err(ready);
        }
        for w in self.of(classes) {
            w.log.push_back(now);
        }
        Ok(())
    }

    /// The earliest time at or after `now` a call of `classes` may go, admitting it then: what
    /// [`Windows::try_admit`] would answer if asked again at the time it names.
    pub fn admit_at(&mut self, classes: &[LimitClass], mut now: Duration) -> Duration {
        loop {
            match self.try_admit(classes, now) {
                Ok(()) => return now,
                Err(ready) => now = ready,
            }
        }
    }

    /// Permit answered 429 to a call of `classes` admitted at `admitted`. The class nearest its
    /// budget is taken for the one Permit counted: it stays closed for `retry_after` when given,
    /// and its budget shrinks (once for the calls admitted before the last shrink; with a
    /// `Retry-After`, not below what lets one call go at the time it names). Returns
    /// whether a limited class now paces the next attempt; when none is, the caller backs off.
    pub fn refused(
        &mut self,
        classes: &[LimitClass],
        admitted: Duration,
        now: Duration,
        retry_after: Option<Duration>,
    ) -> bool {
        let Some(w) = self
            .of(classes)
            .max_by(|a, b| a.utilisation().total_cmp(&b.utilisation()))
        else {
            return false;
        };
        w.expire(now);
        if let Some(wait) = retry_after {
            w.closed_until = w.closed_until.max(now + wait);
        }
        if w.shrunk_at.is_none_or(|at| admitted >= at) {
            // Permit let through the calls before this one; keep a tenth of that in reserve.
            let let_through = w.log.len().saturating_sub(1) as u32;
            let mut budget = let_through * 9 / 10;
            if retry_after.is_some() {
                // Permit named the time: a call may go then, whatever our log still holds.
                let reopen = w.closed_until;
                let held = w.log.iter().filter(|at| **at + w.span > reopen).count() as u32;
                budget = budget.max(held + 1);
            }
            w.budget = budget.clamp(1, w.budget);
            w.shrunk_at = Some(now);
            tracing::info!(
                class = w.class.as_str(),
                budget = w.budget,
                limit = w.limit.count,
                "Permit refused a call within our rate-limit budget: the window is shared, \
                 using less of it until a whole window passes without a 429"
            );
        }
        w.last_refusal = now;
        true
    }

    /// Permit said, in rate-limit headers, that a window of a call of `classes` is spent until
    /// `reset` from now: the fullest of them stays closed until then.
    pub fn exhausted(&mut self, classes: &[LimitClass], now: Duration, reset: Duration) {
        if let Some(w) = self
            .of(classes)
            .max_by(|a, b| a.utilisation().total_cmp(&b.utilisation()))
        {
            w.closed_until = w.closed_until.max(now + reset.min(w.span));
        }
    }

    /// The budget of one class now (for tests and logs).
    pub fn budget(&self, class: LimitClass) -> Option<u32> {
        self.windows
            .iter()
            .find(|w| w.class == class)
            .map(|w| w.budget)
    }

    /// The longest period among `classes` (a `Retry-After` up to it is honoured).
    pub fn longest_period(&self, classes: &[LimitClass]) -> Duration {
        self.windows
            .iter()
            .filter(|w| classes.contains(&w.class))
            .map(|w| w.span)
            .max()
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::Method;

    const S: Duration = Duration::from_secs(1);

    fn bulk() -> Vec<LimitClass> {
        LimitClass::of(&Method::PUT, "/v2/facts/p/e/bulk/users")
    }

    #[test]
    fn a_window_is_spent_at_once_then_slides() {
        let mut w = Windows::new(&Limits::default());
        let bulk = bulk();
        for i in 0..100 {
            assert_eq!(w.try_admit(&bulk, i * Duration::from_millis(10)), Ok(()));
        }
        // The 101st waits for the first to leave its 10-minute window (plus the 1 s margin).
        assert_eq!(w.try_admit(&bulk, 2 * S), Err(601 * S));
        assert_eq!(w.admit_at(&bulk, 2 * S), 601 * S);
        // Then one more each time an early one leaves.
        assert_eq!(
            w.admit_at(&bulk, 601 * S),
            601 * S + Duration::from_millis(10)
        );
    }

    #[test]
    fn every_class_of_a_call_must_have_room() {
        let mut limits = Limits::unlimited();
        limits.set("write=3/60").unwrap();
        limits.set("all=5/60").unwrap();
        let mut w = Windows::new(&limits);
        let post = LimitClass::of(&Method::POST, "/v2/facts/p/e/users");
        let get = LimitClass::of(&Method::GET, "/v2/facts/p/e/users");
        for _ in 0..3 {
            assert!(w.try_admit(&post, S).is_ok());
        }
        assert_eq!(w.try_admit(&post, S), Err(62 * S), "writes full");
        assert!(w.try_admit(&get, S).is_ok());
        assert!(w.try_admit(&get, S).is_ok());
        assert_eq!(w.try_admit(&get, 2 * S), Err(62 * S), "all full");
    }

    #[test]
    fn a_429_shrinks_the_budget_once_and_it_grows_back() {
        let mut w = Windows::new(&Limits::default());
        let bulk = bulk();
        for _ in 0..40 {
            w.try_admit(&bulk, S).unwrap();
        }
        // Permit refuses the 40th: someone else spent 61 of the window's 100.
        assert!(w.refused(&bulk, S, 2 * S, None));
        assert_eq!(w.budget(LimitClass::Bulk), Some(35));
        // A second 429 of a call sent before the shrink changes nothing.
        assert!(w.refused(&bulk, S, 3 * S, None));
        assert_eq!(w.budget(LimitClass::Bulk), Some(35));
        // Without Retry-After, the next call waits for the window to pass.
        assert_eq!(w.try_admit(&bulk, 3 * S), Err(602 * S));
        // A whole window without a 429 restores the budget.
        assert!(w.try_admit(&bulk, 604 * S).is_ok());
        assert_eq!(w.budget(LimitClass::Bulk), Some(100));
    }

    #[test]
    fn retry_after_closes_the_class_it_concerns() {
        let mut w = Windows::new(&Limits::default());
        let bulk = bulk();
        let get = LimitClass::of(&Method::GET, "/v2/facts/p/e/users");
        w.try_admit(&get, S).unwrap();
        w.try_admit(&bulk, S).unwrap();
        assert!(w.refused(&bulk, S, S, Some(30 * S)));
        // The bulk window was the fuller one: closed until Permit said.
        assert_eq!(w.try_admit(&bulk, 2 * S), Err(31 * S));
        assert!(w.try_admit(&bulk, 31 * S).is_ok());
        assert!(w.try_admit(&get, 2 * S).is_ok(), "reads go on");
        // Rate-limit headers saying the window is spent close the fuller class, up to its window.
        let mut w = Windows::new(&Limits::default());
        w.try_admit(&get, S).unwrap();
        w.exhausted(&get, S, 20 * S);
        assert_eq!(w.try_admit(&get, 2 * S), Err(21 * S));
        w.exhausted(&get, 21 * S, 3600 * S);
        assert_eq!(w.try_admit(&get, 22 * S), Err(82 * S), "at most one window");
        // Nothing limited: the caller must back off by itself.
        assert!(!Windows::new(&Limits::unlimited()).refused(&bulk, S, S, None));
    }
}
