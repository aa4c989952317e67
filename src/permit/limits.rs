//! Client-side rate limiting per Permit limit class, so we wait instead of collecting 429s: the
//! classes and their limits here, the windows they are spent in in [`super::window`].

use super::window::Windows;
use reqwest::Method;
use serde::Serialize;
use std::sync::Mutex;
use std::time::Duration;
use tokio::time::Instant;

/// Permit's limit classes (see permit-api.md §7). A request belongs to every class that matches it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LimitClass {
    /// Bulk endpoints (`/bulk`).
    Bulk,
    /// `POST /v2/schema/*`.
    SchemaWrite,
    /// DELETE requests.
    Delete,
    /// POST, PUT, PATCH, DELETE.
    Write,
    /// Every request.
    All,
}

impl LimitClass {
    pub const ALL: [LimitClass; 5] = [
        LimitClass::Bulk,
        LimitClass::SchemaWrite,
        LimitClass::Delete,
        LimitClass::Write,
        LimitClass::All,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            LimitClass::Bulk => "bulk",
            LimitClass::SchemaWrite => "schema_write",
            LimitClass::Delete => "delete",
            LimitClass::Write => "write",
            LimitClass::All => "all",
        }
    }

    pub fn parse(s: &str) -> Option<LimitClass> {
        LimitClass::ALL.into_iter().find(|c| c.as_str() == s)
    }

    /// The classes of a request, most restrictive first. PATCH is counted as a write: Permit's
    /// docs list POST, PUT and DELETE, but a PATCH writes too and we would rather wait than be refused.
    pub fn of(method: &Method, path: &str) -> Vec<LimitClass> {
        let mut out = Vec::with_capacity(4);
        if path.contains("/bulk") {
            out.push(LimitClass::Bulk);
        }
        if *method == Method::POST && path.starts_with("/v2/schema/") {
            out.push(LimitClass::SchemaWrite);
        }
        if *method == Method::DELETE {
            out.push(LimitClass::Delete);
        }
        if *method != Method::GET && *method != Method::HEAD {
            out.push(LimitClass::Write);
        }
        out.push(LimitClass::All);
        out
    }

    /// The classes of a request to an endpoint of the table, most restrictive first: its
    /// table class (`class`), then those its method adds (every DELETE is a delete, every
    /// request but a read a write, everything counts to the overall limit).
    pub fn of_endpoint(class: permit_api::RateClass, method: &Method) -> Vec<LimitClass> {
        let first = match class {
            permit_api::RateClass::Bulk => LimitClass::Bulk,
            permit_api::RateClass::SchemaWrite => LimitClass::SchemaWrite,
            permit_api::RateClass::Delete => LimitClass::Delete,
            permit_api::RateClass::Write => LimitClass::Write,
            permit_api::RateClass::Read => LimitClass::All,
        };
        let mut out = Vec::with_capacity(4);
        out.push(first);
        if *method == Method::DELETE && first < LimitClass::Delete {
            out.push(LimitClass::Delete);
        }
        if *method != Method::GET && *method != Method::HEAD && first < LimitClass::Write {
            out.push(LimitClass::Write);
        }
        if first != LimitClass::All {
            out.push(LimitClass::All);
        }
        out
    }

    /// The most specific class, the label metrics count a request under.
    pub fn label(method: &Method, path: &str) -> LimitClass {
        LimitClass::of(method, path)[0]
    }
}

/// `count` requests per `period`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limit {
    pub count: u32,
    pub period: Duration,
}

impl Limit {
    /// `N/SECONDS`, e.g. `300/60`.
    pub fn parse(s: &str) -> Option<Limit> {
        let (n, secs) = s.split_once('/')?;
        let count: u32 = n.trim().parse().ok().filter(|n| *n > 0)?;
        let secs: u64 = secs
            .trim()
            .trim_end_matches('s')
            .parse()
            .ok()
            .filter(|s| *s > 0)?;
        Some(Limit {
            count,
            period: Duration::from_secs(secs),
        })
    }
}

/// Limits per class; `None` leaves a class unlimited.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    pub classes: Vec<(LimitClass, Limit)>,
}

impl Default for Limits {
    /// Permit's documented limits (2026-03).
    fn default() -> Limits {
        let min = Duration::from_secs(60);
        Limits {
            classes: vec![
                (
                    LimitClass::Bulk,
                    Limit {
                        count: 100,
                        period: Duration::from_secs(600),
                    },
                ),
                (
                    LimitClass::SchemaWrite,
                    Limit {
                        count: 40,
                        period: min,
                    },
                ),
                (
                    LimitClass::Delete,
                    Limit {
                        count: 60,
                        period: min,
                    },
                ),
                (
                    LimitClass::Write,
                    Limit {
                        count: 300,
                        period: min,
                    },
                ),
                (
                    LimitClass::All,
                    Limit {
                        count: 1000,
                        period: min,
                    },
                ),
            ],
        }
    }
}

impl Limits {
    pub fn unlimited() -> Limits {
        Limits { classes: vec![] }
    }

    /// Overrides one class from `CLASS=N/SECONDS` (or `CLASS=off`).
    pub fn set(&mut self, spec: &str) -> Result<(), String> {
        let (class, limit) = spec
            .split_once('=')
            .ok_or_else(|| format!("rate limit {spec:?}: expected CLASS=N/SECONDS or CLASS=off"))?;
        let class = LimitClass::parse(class.trim()).ok_or_else(|| {
            format!("rate limit {spec:?}: unknown class (bulk, schema_write, delete, write, all)")
        })?;
        self.classes.retain(|(c, _)| *c != class);
        if limit.trim() != "off" {
            let limit = Limit::parse(limit)
                .ok_or_else(|| format!("rate limit {spec:?}: expected N/SECONDS, e.g. 300/60"))?;
            self.classes.push((class, limit));
        }
        Ok(())
    }
}

/// The client's limiter: every request waits until each of its classes has room in its window
/// ([`Windows`]). Cheap to share; the lock is never held across an await.
pub struct Limiter {
    origin: Instant,
    windows: Mutex<Windows>,
}

/// When a request was let through, and how long it waited for that.
#[derive(Clone, Copy, Debug)]
pub struct Admission {
    pub waited: Duration,
    /// Since the limiter's start, for [`Limiter::refused`].
    pub at: Duration,
}

impl Limiter {
    pub fn new(limits: &Limits) -> Limiter {
        Limiter {
            origin: Instant::now(),
            windows: Mutex::new(Windows::new(limits)),
        }
    }

    fn now(&self) -> Duration {
        self.origin.elapsed()
    }

    fn windows(&self) -> std::sync::MutexGuard<'_, Windows> {
        self.windows.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Waits until every class of the request has room, and counts the request in each.
    pub async fn acquire(&self, classes: &[LimitClass]) -> Admission {
        let start = self.now();
        loop {
            let now = self.now();
            let ready = match self.windows().try_admit(classes, now) {
                Ok(()) => {
                    return Admission {
                        waited: now - start,
                        at: now,
                    };
                }
                Err(ready) => ready,
            };
            tokio::time::sleep_until(self.origin + ready).await;
        }
    }

    /// Permit's answer said a window of the request is spent until `reset` from now.
    pub fn exhausted(&self, classes: &[LimitClass], reset: Duration) {
        let now = self.now();
        self.windows().exhausted(classes, now, reset);
    }

    /// Permit answered 429 to a request admitted as `admission`; see [`Windows::refused`].
    /// `retry_after` is honoured up to the longest window of the request's classes or `cap`,
    /// whichever is longer. Returns whether the limiter paces the next attempt.
    pub fn refused(
        &self,
        classes: &[LimitClass],
        admission: Admission,
        retry_after: Option<Duration>,
        cap: Duration,
    ) -> bool {
        let now = self.now();
        let mut windows = self.windows();
        let cap = cap.max(windows.longest_period(classes));
        windows.refused(classes, admission.at, now, retry_after.map(|d| d.min(cap)))
    }
}
#[cfg(test)]
mod tests {
    use super::*;

    /// The endpoint table's rate-limit class of each endpoint is the class the limiter counts its
    /// requests under.
    #[test]
    fn the_endpoint_table_agrees_with_the_limiter() {
        for ep in permit_api::endpoint::ALL {
            let method = crate::permit::client::method(ep.method);
            let class = match LimitClass::label(&method, &ep.path("p", "e", &["k"; 2])) {
                LimitClass::Bulk => permit_api::RateClass::Bulk,
                LimitClass::SchemaWrite => permit_api::RateClass::SchemaWrite,
                LimitClass::Delete => permit_api::RateClass::Delete,
                LimitClass::Write => permit_api::RateClass::Write,
                LimitClass::All => permit_api::RateClass::Read,
            };
            assert_eq!(class, ep.class, "{}", ep.label);
        }
    }

    /// The classes a call through the table is limited under (from its table class) are those
    /// its method and path fall in.
    #[test]
    fn endpoint_classes_are_the_path_classes() {
        for ep in permit_api::endpoint::ALL {
            let method = crate::permit::client::method(ep.method);
            let path = ep.path("p", "e", &["k"; 2]);
            assert_eq!(
                LimitClass::of_endpoint(ep.class, &method),
                LimitClass::of(&method, &path),
                "{}",
                ep.label
            );
        }
    }

    #[test]
    fn classes_of_requests() {
        let c = LimitClass::of(&Method::DELETE, "/v2/facts/p/e/bulk/users");
        assert_eq!(
            c,
            [
                LimitClass::Bulk,
                LimitClass::Delete,
                LimitClass::Write,
                LimitClass::All
            ]
        );
        let c = LimitClass::of(&Method::POST, "/v2/schema/p/e/roles");
        assert_eq!(
            c,
            [LimitClass::SchemaWrite, LimitClass::Write, LimitClass::All]
        );
        assert_eq!(
            LimitClass::of(&Method::GET, "/v2/facts/p/e/users"),
            [LimitClass::All]
        );
    }

    #[test]
    fn overrides_parse() {
        let mut l = Limits::default();
        l.set("write=10/1").unwrap();
        l.set("bulk=off").unwrap();
        assert!(l.classes.contains(&(
            LimitClass::Write,
            Limit {
                count: 10,
                period: Duration::from_secs(1)
            }
        )));
        assert!(!l.classes.iter().any(|(c, _)| *c == LimitClass::Bulk));
        assert!(l.set("nope=1/1").is_err());
        assert!(l.set("write=0/1").is_err());
    }

    /// The limiter on tokio's paused clock: time moves only when every task waits.
    #[tokio::test(start_paused = true)]
    async fn spends_the_window_then_waits_for_it_to_pass() {
        let limiter = Limiter::new(&Limits::default());
        let bulk = LimitClass::of(&Method::PUT, "/v2/facts/p/e/bulk/users");
        for _ in 0..100 {
            assert_eq!(limiter.acquire(&bulk).await.waited, Duration::ZERO);
        }
        let next = limiter.acquire(&bulk).await;
        assert_eq!(
            next.waited,
            Duration::from_secs(601),
            "10 min + the 1 s margin"
        );
        // A 429 without Retry-After on the only call of a fresh window: wait a whole window.
        let limiter = Limiter::new(&Limits::default());
        let first = limiter.acquire(&bulk).await;
        let cap = Duration::from_secs(120);
        assert!(limiter.refused(&bulk, first, None, cap));
        assert_eq!(
            limiter.acquire(&bulk).await.waited,
            Duration::from_secs(601)
        );
        // A Retry-After past the policy's cap is honoured up to the class's window.
        let limiter = Limiter::new(&Limits::default());
        let get = LimitClass::of(&Method::GET, "/v2/facts/p/e/users");
        let first = limiter.acquire(&get).await;
        assert!(limiter.refused(&get, first, Some(Duration::from_secs(45)), cap));
        assert_eq!(limiter.acquire(&get).await.waited, Duration::from_secs(45));
    }
}
