//! The controller's own health probe of a PDP: `GET /healthy`, timed, with a deadline.
//!
//! Health routes need no API key, so the probe sends none (nothing secret can leak through it).

use crate::kinds::PermitPDP;
use chrono::{DateTime, Utc};
use kube::ResourceExt;
use serde_json::Value;
use std::time::{Duration, Instant};

/// Seconds between probes when `spec.probe.intervalSeconds` is unset.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(30);
/// A PDP that takes longer than this to say it is healthy is not.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// `/healthy` answered 2xx.
    Healthy,
    /// The PDP answered, but not 2xx (503 while policy or data are not loaded).
    Unhealthy { status: u16, detail: String },
    /// No HTTP answer: refused, DNS failure, timeout.
    Unreachable(String),
}

#[derive(Clone, Debug)]
pub struct ProbeResult {
    pub url: String,
    pub at: DateTime<Utc>,
    pub latency: Duration,
    pub outcome: Outcome,
}

impl ProbeResult {
    pub fn healthy(&self) -> bool {
        self.outcome == Outcome::Healthy
    }

    /// Whether an HTTP answer came back at all.
    pub fn reachable(&self) -> bool {
        !matches!(self.outcome, Outcome::Unreachable(_))
    }

    /// One line for conditions, events and logs.
    pub fn message(&self) -> String {
        match &self.outcome {
            // No latency here: it is in `lastProbeLatencyMs`, and a message that changes on every
            // probe would make every probe a status write.
            Outcome::Healthy => format!("{} answered healthy", self.url),
            Outcome::Unhealthy { status, detail } if detail.is_empty() => {
                format!("{} answered {status}", self.url)
            }
            Outcome::Unhealthy { status, detail } => {
                format!("{} answered {status}: {detail}", self.url)
            }
            Outcome::Unreachable(why) => format!("{} is unreachable: {why}", self.url),
        }
    }
}

/// Seconds between probes of this PDP.
pub fn interval(pdp: &PermitPDP) -> Duration {
    pdp.spec
        .probe
        .as_ref()
        .and_then(|p| p.interval_seconds)
        .map_or(DEFAULT_INTERVAL, |s| {
            Duration::from_secs(u64::from(s.max(1)))
        })
}

/// `/healthy` appended to a base URL; a URL that already has a path is used as is.
pub fn health_url(base: &str) -> String {
    let trimmed = base.trim_end_matches('/');
    let has_path = trimmed
        .split_once("://")
        .map(|(_, rest)| rest.contains('/'))
        .unwrap_or(false);
    if has_path {
        trimmed.to_string()
    } else {
        format!("{trimmed}/healthy")
    }
}

/// What to probe: `spec.probe.url`, else `spec.url` (directory mode, external PDPs), else the
/// Service's cluster DNS name.
pub fn target(pdp: &PermitPDP) -> String {
    if let Some(url) = pdp.spec.probe.as_ref().and_then(|p| p.url.as_deref()) {
        return health_url(url);
    }
    if let Some(url) = pdp.spec.url.as_deref() {
        return health_url(url);
    }
    health_url(&super::render::service_url(
        &pdp.namespace().unwrap_or_else(|| "default".into()),
        &pdp.name_any(),
    ))
}

/// A client for probes: no proxy from the environment (cluster-internal names), short timeouts.
pub fn client(timeout: Duration) -> reqwest::Client {
    // The process's one provider (ring, as kube uses); a no-op when `main` installed it already.
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout)
        .no_proxy()
        .build()
        .expect("a reqwest client with a crypto provider and no custom TLS builds")
}

/// `GET url` once. Never fails: every failure is an outcome.
pub async fn probe(client: &reqwest::Client, url: &str) -> ProbeResult {
    let at = Utc::now();
    let start = Instant::now();
    let outcome = match client.get(url).send().await {
        Err(err) => Outcome::Unreachable(describe(&err)),
        Ok(resp) => {
            let status = resp.status();
            let body = resp.text().await.unwrap_or_default();
            if status.is_success() {
                Outcome::Healthy
            } else {
                Outcome::Unhealthy {
                    status: status.as_u16(),
                    detail: summarize(&body),
                }
            }
        }
    };
    ProbeResult {
        url: url.to_string(),
        at,
        latency: start.elapsed(),
        outcome,
    }
}

fn describe(err: &reqwest::Error) -> String {
    if err.is_timeout() {
        "timed out".into()
    } else if err.is_connect() {
        // The innermost cause says "Connection refused" or the DNS error.
        let mut source: &dyn std::error::Error = err;
        while let Some(next) = source.source() {
            source = next;
        }
        format!("cannot connect ({source})")
    } else {
        err.to_string()
    }
}

/// The failing components of a PDP health answer (`{status, components: {name: {status, error}}}`),
/// else the start of the body.
fn summarize(body: &str) -> String {
    if let Ok(v) = serde_json::from_str::<Value>(body)
        && let Some(components) = v.get("components").and_then(Value::as_object)
    {
        let failing: Vec<String> = components
            .iter()
            .filter(|(_, c)| c.get("status").and_then(Value::as_str) != Some("ok"))
            .map(|(name, c)| match c.get("error").and_then(Value::as_str) {
                Some(e) => format!("{name}: {e}"),
                None => format!("{name} not ok"),
            })
            .collect();
        if !failing.is_empty() {
            return truncate(&failing.join("; "));
        }
    }
    truncate(body.trim())
}

fn truncate(s: &str) -> String {
    const MAX: usize = 200;
    if s.len() <= MAX {
        return s.to_string();
    }
    let mut end = MAX;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn health_url_appends_only_without_a_path() {
        assert_eq!(health_url("http://pdp:7766"), "http://pdp:7766/healthy");
        assert_eq!(health_url("http://pdp:7766/"), "http://pdp:7766/healthy");
        assert_eq!(health_url("http://pdp:7766/ready"), "http://pdp:7766/ready");
    }

    #[test]
    fn summary_names_failing_components() {
        let body = r#"{"status":"error","components":{"horizon":{"status":"ok"},"opa":{"status":"error","error":"policy not loaded"}}}"#;
        assert_eq!(summarize(body), "opa: policy not loaded");
        assert_eq!(summarize("  boom  "), "boom");
        assert!(summarize(&"x".repeat(500)).ends_with('…'));
    }
}
