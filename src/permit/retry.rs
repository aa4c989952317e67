//! When and how long to wait before repeating a call.
//!
//! 429 means Permit refused the request, so any call may be repeated. A 5xx or a dropped connection
//! leaves the outcome unknown: only idempotent calls are repeated; a bulk create that may have
//! half-succeeded goes back to the executor, which re-reads Permit and plans the rest.

use backon::{BackoffBuilder, ExponentialBuilder};
use std::time::Duration;

#[derive(Clone, Debug)]
pub struct RetryPolicy {
    /// Attempts in all, the first included.
    pub max_attempts: usize,
    pub min_delay: Duration,
    pub max_delay: Duration,
    /// Longest `Retry-After` honoured; a longer one is capped (we retry, and may be refused again).
    pub max_retry_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> RetryPolicy {
        RetryPolicy {
            max_attempts: 6,
            min_delay: Duration::from_millis(250),
            max_delay: Duration::from_secs(30),
            max_retry_after: Duration::from_secs(120),
        }
    }
}

impl RetryPolicy {
    /// Exponential delays with jitter, one per retry.
    pub fn backoff(&self) -> impl Iterator<Item = Duration> + Send + use<> {
        ExponentialBuilder::default()
            .with_min_delay(self.min_delay)
            .with_max_delay(self.max_delay)
            .with_max_times(self.max_attempts.saturating_sub(1))
            .with_jitter()
            .build()
    }
}

/// What to do with an answer or failure.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Done,
    Retry,
}

/// Decides on a status code.
pub fn on_status(status: u16, idempotent: bool) -> Verdict {
    match status {
        429 => Verdict::Retry,
        500 | 502 | 503 | 504 if idempotent => Verdict::Retry,
        _ => Verdict::Done,
    }
}

/// Decides on a transport failure: a request never sent may always be repeated.
pub fn on_transport(sent: bool, idempotent: bool) -> Verdict {
    if !sent || idempotent {
        Verdict::Retry
    } else {
        Verdict::Done
    }
}

/// `Retry-After` in seconds (the HTTP-date form is rare for APIs and falls back to the backoff).
pub fn retry_after(value: Option<&str>) -> Option<Duration> {
    let v = value?.trim();
    v.parse::<f64>()
        .ok()
        .filter(|s| s.is_finite() && *s >= 0.0)
        .map(Duration::from_secs_f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verdicts() {
        assert_eq!(on_status(429, false), Verdict::Retry);
        assert_eq!(on_status(503, true), Verdict::Retry);
        assert_eq!(on_status(503, false), Verdict::Done);
        assert_eq!(on_status(409, true), Verdict::Done);
        assert_eq!(on_transport(false, false), Verdict::Retry);
        assert_eq!(on_transport(true, false), Verdict::Done);
        assert_eq!(retry_after(Some(" 2 ")), Some(Duration::from_secs(2)));
        assert_eq!(retry_after(Some("Wed, 21 Oct 2026 07:28:00 GMT")), None);
        let delays: Vec<_> = RetryPolicy::default().backoff().collect();
        assert_eq!(delays.len(), 5);
    }
}
