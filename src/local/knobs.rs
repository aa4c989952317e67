//! Realism knobs: added latency, Permit's rate limits, injected faults, and request counters.
//!
//! One middleware wraps both servers. For each request it adds the latency, draws a fault, applies
//! the rate limits (REST API only), runs the request and counts it by class and status. Faults are
//! deterministic for a given seed and request order: a scripted queue (`faults.script`) is consumed
//! first, then a seeded RNG decides. The admin routes under `/_local/` (API key required) read and
//! set all of it and are themselves never delayed, faulted, limited or counted.

use super::Shared;
use super::error::ApiError;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

/// Everything adjustable at run time. All off by default.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Knobs {
    /// Added to every request on both servers.
    pub latency_ms: u64,
    pub rate_limits: RateLimits,
    pub faults: Faults,
}

/// Permit's documented REST limits (permit-api.md §7), scaled.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RateLimits {
    pub enabled: bool,
    /// Multiplies every limit's request count (0.1 → a tenth of Permit's limits; at least 1).
    pub scale: f64,
    /// Multiplies every limit's window (0.01 → a one-minute window lasts 0.6 s), for fast tests.
    pub time_scale: f64,
    /// Whether a limited response carries `Retry-After` (Permit's behaviour is unconfirmed).
    pub retry_after: bool,
}

impl Default for RateLimits {
    fn default() -> Self {
        RateLimits {
            enabled: false,
            scale: 1.0,
            time_scale: 1.0,
            retry_after: true,
        }
    }
}

/// A fault applied to one request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Fault {
    /// No fault.
    None,
    /// Answer with this 5xx status.
    Error { status: u16 },
    /// Answer 429, with `Retry-After: secs` when given.
    RateLimited { retry_after: Option<u64> },
    /// Close the connection without a response.
    Drop,
    /// Serve normally after this delay.
    Slow { ms: u64 },
}

/// Which server faults apply to.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultTarget {
    #[default]
    Api,
    Pdp,
    Both,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Faults {
    pub seed: u64,
    pub target: FaultTarget,
    /// Probability of a 5xx answer.
    pub error_rate: f64,
    pub error_status: u16,
    /// Probability that a burst of 429s starts.
    pub rate_limit_rate: f64,
    /// How many consecutive requests a 429 burst covers.
    pub rate_limit_burst: u32,
    /// `Retry-After` seconds on injected 429s; `None` sends none.
    pub retry_after_secs: Option<u64>,
    /// Probability of closing the connection without an answer.
    pub drop_rate: f64,
    /// Probability of a slow answer, and how slow.
    pub slow_rate: f64,
    pub slow_ms: u64,
    /// Faults for the next requests, in order, before any random draw.
    pub script: Vec<Fault>,
}

impl Default for Faults {
    fn default() -> Self {
        Faults {
            seed: 0,
            target: FaultTarget::Api,
            error_rate: 0.0,
            error_status: 503,
            rate_limit_rate: 0.0,
            rate_limit_burst: 1,
            retry_after_secs: None,
            drop_rate: 0.0,
            slow_rate: 0.0,
            slow_ms: 1_000,
            script: Vec::new(),
        }
    }
}

impl Knobs {
    /// Checks ranges; the message names the field.
    pub fn validate(&self) -> Result<(), String> {
        let f = &self.faults;
        for (name, p) in [
            ("faults.error_rate", f.error_rate),
            ("faults.rate_limit_rate", f.rate_limit_rate),
            ("faults.drop_rate", f.drop_rate),
            ("faults.slow_rate", f.slow_rate),
        ] {
            if !(0.0..=1.0).contains(&p) {
                return Err(format!("{name} must be between 0 and 1"));
            }
        }
        if !(500..=599).contains(&f.error_status) {
            return Err("faults.error_status must be a 5xx status".into());
        }
        for s in &f.script {
            if let Fault::Error { status } = s
                && !(500..=599).contains(status)
            {
                return Err("faults.script: error status must be 5xx".into());
            }
        }
        let r = &self.rate_limits;
        if !(r.scale > 0.0 && r.scale.is_finite() && r.time_scale > 0.0 && r.time_scale.is_finite())
        {
            return Err("rate_limits.scale and time_scale must be positive".into());
        }
        Ok(())
    }
}

/// Request classes, as Permit's rate limits and our counters see them.
pub mod class {
    pub const READ: &str = "read";
    pub const WRITE: &str = "write";
    pub const DELETE: &str = "delete";
    pub const BULK: &str = "bulk";
    pub const SCHEMA_WRITE: &str = "schema_write";
    pub const PDP: &str = "pdp";
}

/// The one class a request is counted under (most specific first).
fn count_class(method: &Method, path: &str, pdp: bool) -> &'static str {
    if pdp {
        class::PDP
    } else if *method == Method::GET || *method == Method::HEAD {
        class::READ
    } else if path.contains("/bulk") {
        class::BULK
    } else if *method == Method::DELETE {
        class::DELETE
    } else if *method == Method::POST && path.starts_with("/v2/schema/") {
        class::SCHEMA_WRITE
    } else {
        class::WRITE
    }
}

/// A readable endpoint name: method plus the path's fixed words (`PUT bulk/users`,
/// `DELETE role_assignments`, `POST roles/permissions`); ids are left out.
fn endpoint(method: &Method, path: &str) -> String {
    const WORDS: &[&str] = &[
        "users",
        "tenants",
        "role_assignments",
        "bulk",
        "roles",
        "resources",
        "actions",
        "permissions",
        "scope",
        "allowed",
        "user-permissions",
        "health",
        "healthy",
        "ready",
    ];
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let rest: &[&str] = match segments.as_slice() {
        ["v2", "facts" | "schema", _, _, rest @ ..] => rest,
        ["v2", rest @ ..] => rest,
        all => all,
    };
    let words: Vec<&str> = rest.iter().copied().filter(|s| WORDS.contains(s)).collect();
    format!("{method} {}", words.join("/"))
}

/// Request counts, by class and status and by endpoint. A dropped connection counts with status 0.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Counters {
    pub total: u64,
    pub by_class: BTreeMap<String, ClassCount>,
    pub by_endpoint: BTreeMap<String, u64>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ClassCount {
    pub total: u64,
    pub by_status: BTreeMap<u16, u64>,
}

impl Counters {
    /// Requests of a class (see [`class`]), whatever their status.
    pub fn class(&self, class: &str) -> u64 {
        self.by_class.get(class).map_or(0, |c| c.total)
    }

    /// Requests of a class answered with `status`.
    pub fn status(&self, class: &str, status: u16) -> u64 {
        self.by_class
            .get(class)
            .and_then(|c| c.by_status.get(&status))
            .copied()
            .unwrap_or(0)
    }

    /// REST requests that change something (writes, deletes, bulk, schema writes).
    pub fn writes(&self) -> u64 {
        [
            class::WRITE,
            class::DELETE,
            class::BULK,
            class::SCHEMA_WRITE,
        ]
        .iter()
        .map(|c| self.class(c))
        .sum()
    }

    /// Requests to one endpoint, named like `"PUT bulk/users"`.
    pub fn endpoint(&self, name: &str) -> u64 {
        self.by_endpoint.get(name).copied().unwrap_or(0)
    }

    fn record(&mut self, class: &str, endpoint: String, status: u16) {
        self.total += 1;
        let c = self.by_class.entry(class.to_string()).or_default();
        c.total += 1;
        *c.by_status.entry(status).or_default() += 1;
        *self.by_endpoint.entry(endpoint).or_default() += 1;
    }
}

/// One of Permit's limits: `count` requests per `window`, for the requests `applies` selects.
struct Limit {
    name: &'static str,
    count: u32,
    window: Duration,
    applies: fn(&Method, &str) -> bool,
}

fn is_write(m: &Method) -> bool {
    matches!(
        *m,
        Method::POST | Method::PUT | Method::PATCH | Method::DELETE
    )
}

const MINUTE: Duration = Duration::from_secs(60);

/// permit-api.md §7: all 1,000/min; writes 300/min; DELETE 60/min; schema POST 40/min; bulk
/// 100/10 min.
fn permit_limits() -> Vec<Limit> {
    vec![
        Limit {
            name: "all",
            count: 1_000,
            window: MINUTE,
            applies: |_, _| true,
        },
        Limit {
            name: "writes",
            count: 300,
            window: MINUTE,
            applies: |m, _| is_write(m),
        },
        Limit {
            name: "deletes",
            count: 60,
            window: MINUTE,
            applies: |m, _| *m == Method::DELETE,
        },
        Limit {
            name: "schema_writes",
            count: 40,
            window: MINUTE,
            applies: |m, p| *m == Method::POST && p.starts_with("/v2/schema/"),
        },
        Limit {
            name: "bulk",
            count: 100,
            window: Duration::from_secs(600),
            applies: |m, p| is_write(m) && p.contains("/bulk"),
        },
    ]
}

/// The mutable side of the knobs: RNG, burst and script progress, rate-limit windows, counters.
pub struct KnobState {
    pub knobs: Knobs,
    rng: StdRng,
    burst_left: u32,
    script: VecDeque<Fault>,
    limits: Vec<Limit>,
    windows: Vec<VecDeque<Instant>>,
    pub counters: Counters,
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
        };
        state.knobs = knobs;
        state
    }

    /// Replaces the knobs; the fault RNG and script restart, so a seed replays the same faults.
    pub fn set(&mut self, knobs: Knobs) {
        let counters = std::mem::take(&mut self.counters);
        let windows_kept = self.knobs.rate_limits == knobs.rate_limits;
        let windows = std::mem::take(&mut self.windows);
        *self = KnobState::new(knobs);
        self.counters = counters;
        if windows_kept {
            self.windows = windows;
        }
    }

    /// Clears counters and rate-limit windows and restarts the fault sequence.
    pub fn reset(&mut self) {
        *self = KnobState::new(self.knobs.clone());
    }

    fn draw_fault(&mut self, pdp: bool) -> Fault {
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
    fn admit(&mut self, method: &Method, path: &str, now: Instant) -> Result<(), u64> {
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

/// A response whose body fails at once: hyper then closes the connection without an answer.
fn dropped_connection() -> Response {
    let stream = futures::stream::once(async {
        Err::<axum::body::Bytes, std::io::Error>(std::io::Error::new(
            std::io::ErrorKind::ConnectionAborted,
            "injected dropped connection",
        ))
    });
    Response::new(Body::from_stream(stream))
}

async fn apply(shared: &Shared, req: Request, next: Next, pdp: bool) -> Response {
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let (latency, fault) = {
        let mut state = shared.knobs.lock();
        (state.knobs.latency_ms, state.draw_fault(pdp))
    };
    if latency > 0 {
        tokio::time::sleep(Duration::from_millis(latency)).await;
    }
    let response = match fault {
        Fault::Error { status } => ApiError::Server(status).into_response(),
        Fault::RateLimited { retry_after } => ApiError::RateLimited { retry_after }.into_response(),
        Fault::Drop => dropped_connection(),
        Fault::Slow { ms } => {
            tokio::time::sleep(Duration::from_millis(ms)).await;
            limited_or_run(shared, req, next, &method, &path, pdp).await
        }
        Fault::None => limited_or_run(shared, req, next, &method, &path, pdp).await,
    };
    let status = if matches!(fault, Fault::Drop) {
        0 // no status was ever sent
    } else {
        response.status().as_u16()
    };
    shared.knobs.lock().counters.record(
        count_class(&method, &path, pdp),
        endpoint(&method, &path),
        status,
    );
    response
}

async fn limited_or_run(
    shared: &Shared,
    req: Request,
    next: Next,
    method: &Method,
    path: &str,
    pdp: bool,
) -> Response {
    if !pdp {
        let verdict = {
            let mut state = shared.knobs.lock();
            let with_header = state.knobs.rate_limits.retry_after;
            state
                .admit(method, path, Instant::now())
                .map_err(|secs| with_header.then_some(secs))
        };
        if let Err(retry_after) = verdict {
            return ApiError::RateLimited { retry_after }.into_response();
        }
    }
    next.run(req).await
}

pub(crate) async fn api_layer(
    State(s): State<std::sync::Arc<Shared>>,
    req: Request,
    next: Next,
) -> Response {
    apply(&s, req, next, false).await
}

pub(crate) async fn pdp_layer(
    State(s): State<std::sync::Arc<Shared>>,
    req: Request,
    next: Next,
) -> Response {
    apply(&s, req, next, true).await
}

/// Admin routes: `GET/PUT /_local/knobs`, `GET /_local/counters`, `POST /_local/reset[?data=true]`.
pub(crate) mod admin {
    use super::{Counters, Knobs};
    use crate::local::Shared;
    use crate::local::error::ApiError;
    use axum::body::Bytes;
    use axum::extract::{RawQuery, State};
    use axum::http::StatusCode;
    use axum::routing::{get, post};
    use axum::{Json, Router};
    use std::sync::Arc;

    pub const PREFIX: &str = "/_local";

    pub(crate) fn router() -> Router<Arc<Shared>> {
        Router::new()
            .route(&format!("{PREFIX}/knobs"), get(get_knobs).put(put_knobs))
            .route(&format!("{PREFIX}/counters"), get(counters))
            .route(&format!("{PREFIX}/reset"), post(reset))
    }

    async fn get_knobs(State(s): State<Arc<Shared>>) -> Json<Knobs> {
        Json(s.knobs.lock().knobs.clone())
    }

    async fn put_knobs(State(s): State<Arc<Shared>>, body: Bytes) -> Result<Json<Knobs>, ApiError> {
        let knobs: Knobs = serde_json::from_slice(&body)
            .map_err(|e| ApiError::validation(vec!["body".into()], e.to_string(), "value_error"))?;
        knobs
            .validate()
            .map_err(|msg| ApiError::validation(vec!["body".into()], msg, "value_error"))?;
        s.knobs.lock().set(knobs.clone());
        Ok(Json(knobs))
    }

    async fn counters(State(s): State<Arc<Shared>>) -> Json<Counters> {
        Json(s.knobs.lock().counters.clone())
    }

    /// Clears counters, rate-limit windows and the fault sequence; with `?data=true` also empties
    /// the environment (back to the `default` tenant).
    async fn reset(State(s): State<Arc<Shared>>, RawQuery(q): RawQuery) -> StatusCode {
        s.knobs.lock().reset();
        if q.as_deref()
            .is_some_and(|q| q.split('&').any(|p| p == "data=true"))
        {
            s.store.write().clear();
        }
        StatusCode::NO_CONTENT
    }
}

#[cfg(test)]
mod tests {
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

    #[test]
    fn endpoints_and_classes() {
        let path = "/v2/facts/p/e/users/jane@x.io/roles";
        assert_eq!(endpoint(&Method::POST, path), "POST users/roles");
        assert_eq!(
            endpoint(&Method::PUT, "/v2/facts/p/e/bulk/users"),
            "PUT bulk/users"
        );
        assert_eq!(
            count_class(&Method::PUT, "/v2/facts/p/e/bulk/users", false),
            "bulk"
        );
        assert_eq!(
            count_class(&Method::POST, "/v2/schema/p/e/roles", false),
            "schema_write"
        );
        assert_eq!(count_class(&Method::PATCH, path, false), "write");
        assert_eq!(count_class(&Method::POST, "/allowed", true), "pdp");
    }
}
