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

/// When rate-limit headers say the window is spent: `RateLimit-Remaining` (the IETF draft) or
/// `X-RateLimit-Remaining` at 0, with the reset in seconds from now, or as a Unix time when it is
/// one. Permit documents no such headers (permit-api.md §7); they are honoured if it sends them.
pub fn spent_window(
    header: impl Fn(&str) -> Option<String>,
    now_unix: Duration,
) -> Option<Duration> {
    let pick = |names: [&str; 2]| names.into_iter().find_map(&header);
    let remaining = pick(["ratelimit-remaining", "x-ratelimit-remaining"])?;
    if remaining.trim().parse::<f64>().ok()? > 0.0 {
        return None;
    }
    let reset: f64 = pick(["ratelimit-reset", "x-ratelimit-reset"])?
        .trim()
        .parse()
        .ok()
        .filter(|s: &f64| s.is_finite() && *s >= 0.0)?;
    // A value past a billion seconds is a point in time, not a delay.
    let reset = if reset > 1e9 {
        (reset - now_unix.as_secs_f64()).max(0.0)
    } else {
        reset
    };
    Some(Duration::from_secs_f64(reset))
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
        let headers = |pairs: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                pairs
                    .iter()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| v.to_string())
            }
        };
        let now = Duration::from_secs(1_800_000_000);
        let spent = |pairs| spent_window(headers(pairs), now);
        assert_eq!(
            spent(&[("x-ratelimit-remaining", "0"), ("x-ratelimit-reset", "12")]),
            Some(Duration::from_secs(12))
        );
        assert_eq!(
            spent(&[
                ("ratelimit-remaining", "0"),
                ("ratelimit-reset", "1800000030")
            ]),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            spent(&[("ratelimit-remaining", "5"), ("ratelimit-reset", "30")]),
            None
        );
        assert_eq!(spent(&[("ratelimit-reset", "30")]), None);
        let delays: Vec<_> = RetryPolicy::default().backoff().collect();
        assert_eq!(delays.len(), 5);
    }
}
