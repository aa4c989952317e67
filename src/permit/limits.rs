//! Client-side rate limiting per Permit limit class, so we wait instead of collecting 429s.

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use reqwest::Method;
use serde::Serialize;
use std::num::NonZeroU32;
use std::time::{Duration, Instant};

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

/// One governor per class.
pub struct Limiter {
    classes: Vec<(LimitClass, DefaultDirectRateLimiter)>,
}

impl Limiter {
    pub fn new(limits: &Limits) -> Limiter {
        let classes = limits
            .classes
            .iter()
            .map(|(class, l)| {
                // GCRA with burst b and rate r admits up to b + r·period in any window of one period;
                // a burst of a tenth and the rest spread evenly keeps every window within the limit.
                let burst = (l.count / 10).max(1);
                let steady = (l.count - burst).max(1);
                let per_cell = l.period / steady;
                let quota = Quota::with_period(per_cell.max(Duration::from_micros(1)))
                    .expect("non-zero period")
                    .allow_burst(NonZeroU32::new(burst).expect("burst >= 1"));
                (*class, RateLimiter::direct(quota))
            })
            .collect();
        Limiter { classes }
    }

    /// Waits until every class of the request admits it; returns how long that took.
    pub async fn acquire(&self, classes: &[LimitClass]) -> Duration {
        let start = Instant::now();
        for class in classes {
            if let Some((_, l)) = self.classes.iter().find(|(c, _)| c == class) {
                l.until_ready().await;
            }
        }
        start.elapsed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[tokio::test]
    async fn waits_once_the_burst_is_spent() {
        let mut limits = Limits::unlimited();
        limits.set("write=20/1").unwrap(); // burst 2, then one every 1/18 s
        let limiter = Limiter::new(&limits);
        let classes = LimitClass::of(&Method::POST, "/v2/facts/p/e/users");
        let mut waited = Duration::ZERO;
        for _ in 0..4 {
            waited += limiter.acquire(&classes).await;
        }
        assert!(waited >= Duration::from_millis(80), "waited {waited:?}");
    }
}
