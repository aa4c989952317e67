//! Realism knobs: added latency, Permit's rate limits, injected faults, and request counters.
//!
//! One middleware wraps both servers. For each request it adds the latency, draws a fault, applies
//! the rate limits (REST API only), runs the request and counts it by class and status. Faults are
//! deterministic for a given seed and request order: a scripted queue (`faults.script`) is consumed
//! first, then a seeded RNG decides. The admin routes under `/_local/` (API key required) read and
//! set all of it and are themselves never delayed, faulted, limited or counted.

mod admin;
mod counters;
mod layer;
mod limits;
mod log;
mod state;

pub(crate) use admin::router as admin_router;
pub use counters::{ClassCount, Counters, class};
pub(crate) use layer::{api_layer, pdp_layer};
pub use log::LoggedRequest;
pub use state::KnobState;

use serde::{Deserialize, Serialize};

/// The longest `pdp_delay_ms`: the PDP keeps a copy of the data per write made within the delay.
pub const MAX_PDP_DELAY_MS: u64 = 600_000;

/// Everything adjustable at run time. All off by default.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Knobs {
    /// Added to every request on both servers.
    pub latency_ms: u64,
    /// The PDP's `/health`, `/healthy` and `/ready` answer 503, as a PDP without policy or data does.
    pub pdp_unhealthy: bool,
    /// The PDP decides on the data as it was this many milliseconds ago, as Permit's PDPs apply
    /// writes asynchronously (see [`crate::lag`]); 0 (the default): at once, at no cost.
    pub pdp_delay_ms: u64,
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
        if self.pdp_delay_ms > MAX_PDP_DELAY_MS {
            return Err(format!(
                "pdp_delay_ms must be at most {MAX_PDP_DELAY_MS} (10 minutes)"
            ));
        }
        let r = &self.rate_limits;
        if !(r.scale > 0.0 && r.scale.is_finite() && r.time_scale > 0.0 && r.time_scale.is_finite())
        {
            return Err("rate_limits.scale and time_scale must be positive".into());
        }
        Ok(())
    }
}
