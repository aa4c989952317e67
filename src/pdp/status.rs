//! The `PermitPDP` status, computed purely: `Available` from the Deployment (or, without one, from
//! reachability), `Healthy` from the probe; written only when something other than a timestamp
//! changed, so status writes do not retrigger reconciles on every probe.

use super::probe::{Outcome, ProbeResult};
use crate::kinds::Condition;
use crate::kinds::pdp::PdpStatus;
use chrono::{DateTime, SecondsFormat, Utc};
use k8s_openapi::api::apps::v1::Deployment;
use std::time::Duration;

pub const AVAILABLE: &str = "Available";
pub const HEALTHY: &str = "Healthy";

/// `lastProbeTime` and `lastProbeLatencyMs` alone trigger a write only when the recorded probe is
/// older than this: the status shows the probe is alive without a write per probe.
pub const PROBE_REFRESH: Duration = Duration::from_secs(300);

pub fn timestamp(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn condition(
    type_: &str,
    status: bool,
    reason: &str,
    message: String,
    generation: Option<i64>,
) -> Condition {
    Condition {
        type_: type_.into(),
        status: if status { "True" } else { "False" }.into(),
        reason: Some(reason.into()),
        message: Some(message),
        last_transition_time: None,
        observed_generation: generation,
    }
}

fn unknown(type_: &str, reason: &str, message: String, generation: Option<i64>) -> Condition {
    Condition {
        status: "Unknown".into(),
        ..condition(type_, false, reason, message, generation)
    }
}

/// `Available` as the Deployment reports it; `Unknown` until its controller has written a status.
pub fn available_from_deployment(
    deployment: Option<&Deployment>,
    object: &str,
    generation: Option<i64>,
) -> Condition {
    let Some(dep) = deployment else {
        return condition(
            AVAILABLE,
            false,
            "DeploymentMissing",
            format!("the Deployment {object} does not exist"),
            generation,
        );
    };
    let reported = dep
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|cs| cs.iter().find(|c| c.type_.as_deref() == Some(AVAILABLE)));
    match reported {
        Some(c) if matches!(c.status.as_deref(), Some("True" | "False")) => {
            let ready = dep
                .status
                .as_ref()
                .and_then(|s| s.ready_replicas)
                .unwrap_or(0);
            let wanted = dep.spec.replicas.unwrap_or(1);
            let detail = c.message.as_deref().unwrap_or("");
            condition(
                AVAILABLE,
                c.status.as_deref() == Some("True"),
                c.reason.as_deref().unwrap_or("Deployment"),
                format!("{ready}/{wanted} replicas ready; Deployment {object}: {detail}")
                    .trim_end_matches([' ', ':'])
                    .to_string(),
                generation,
            )
        }
        _ => unknown(
            AVAILABLE,
            "DeploymentPending",
            format!("the Deployment {object} has not reported availability yet"),
            generation,
        ),
    }
}

/// Without a Deployment (directory mode, an external `url`): available when the PDP answers HTTP.
pub fn available_from_probe(probe: &ProbeResult, generation: Option<i64>) -> Condition {
    if probe.reachable() {
        condition(
            AVAILABLE,
            true,
            "Reachable",
            format!("{} answers", probe.url),
            generation,
        )
    } else {
        condition(AVAILABLE, false, "Unreachable", probe.message(), generation)
    }
}

/// `Available=False` because the spec cannot be deployed.
pub fn invalid_spec(reason: &str, generation: Option<i64>) -> Condition {
    condition(
        AVAILABLE,
        false,
        "InvalidSpec",
        reason.to_string(),
        generation,
    )
}

/// `Available=False` because a child's name is taken by an object this `PermitPDP` does not control.
pub fn not_owned(message: &str, generation: Option<i64>) -> Condition {
    condition(
        AVAILABLE,
        false,
        "NotOwned",
        message.to_string(),
        generation,
    )
}

pub fn healthy(probe: Option<&ProbeResult>, generation: Option<i64>) -> Condition {
    let Some(p) = probe else {
        return unknown(HEALTHY, "NotProbed", "not probed yet".into(), generation);
    };
    let reason = match p.outcome {
        Outcome::Healthy => "ProbeSucceeded",
        Outcome::Unhealthy { .. } => "ProbeFailed",
        Outcome::Unreachable(_) => "Unreachable",
    };
    condition(HEALTHY, p.healthy(), reason, p.message(), generation)
}

/// The new conditions, keeping `lastTransitionTime` where the status did not change.
pub fn merge_conditions(old: &[Condition], new: Vec<Condition>, now: &str) -> Vec<Condition> {
    new.into_iter()
        .map(|mut c| {
            let previous = old.iter().find(|o| o.type_ == c.type_);
            c.last_transition_time = match previous {
                Some(p) if p.status == c.status => p
                    .last_transition_time
                    .clone()
                    .or_else(|| Some(now.to_string())),
                _ => Some(now.to_string()),
            };
            c
        })
        .collect()
}

/// The full new status.
pub fn desired(
    old: Option<&PdpStatus>,
    generation: Option<i64>,
    ready_replicas: Option<i32>,
    conditions: Vec<Condition>,
    probe: Option<&ProbeResult>,
    now: DateTime<Utc>,
) -> PdpStatus {
    let old_conditions = old.map(|s| s.conditions.as_slice()).unwrap_or_default();
    PdpStatus {
        observed_generation: generation,
        ready_replicas,
        last_probe_time: probe
            .map(|p| timestamp(p.at))
            .or_else(|| old.and_then(|o| o.last_probe_time.clone())),
        last_probe_latency_ms: probe
            .map(|p| p.latency.as_millis() as u64)
            .or_else(|| old.and_then(|o| o.last_probe_latency_ms)),
        conditions: merge_conditions(old_conditions, conditions, &timestamp(now)),
    }
}

fn without_timestamps(s: &PdpStatus) -> PdpStatus {
    PdpStatus {
        last_probe_time: None,
        last_probe_latency_ms: None,
        conditions: s
            .conditions
            .iter()
            .map(|c| Condition {
                last_transition_time: None,
                ..c.clone()
            })
            .collect(),
        ..s.clone()
    }
}

/// Whether `new` must be written over `old` (see [`PROBE_REFRESH`]).
pub fn needs_write(old: Option<&PdpStatus>, new: &PdpStatus, now: DateTime<Utc>) -> bool {
    let Some(old) = old else { return true };
    if without_timestamps(old) != without_timestamps(new) {
        return true;
    }
    if old.last_probe_time.is_none() && new.last_probe_time.is_some() {
        return true;
    }
    let recorded = old
        .last_probe_time
        .as_deref()
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok());
    match recorded {
        Some(t) => {
            new.last_probe_time != old.last_probe_time
                && (now - t.with_timezone(&Utc)).to_std().unwrap_or_default() >= PROBE_REFRESH
        }
        None => false,
    }
}

/// A condition whose status changed: (type, old status or `None`, the new condition).
#[derive(Clone, Debug, PartialEq)]
pub struct Transition {
    pub type_: String,
    pub from: Option<String>,
    pub to: Condition,
}

pub fn transitions(old: Option<&PdpStatus>, new: &PdpStatus) -> Vec<Transition> {
    new.conditions
        .iter()
        .filter_map(|c| {
            let from = old
                .and_then(|o| o.conditions.iter().find(|p| p.type_ == c.type_))
                .map(|p| p.status.clone());
            (from.as_deref() != Some(c.status.as_str())).then(|| Transition {
                type_: c.type_.clone(),
                from,
                to: c.clone(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn probe(outcome: Outcome, at: DateTime<Utc>) -> ProbeResult {
        ProbeResult {
            url: "http://pdp/healthy".into(),
            at,
            latency: Duration::from_millis(7),
            outcome,
        }
    }

    #[test]
    fn timestamps_alone_do_not_write_until_stale() {
        let t0 = Utc::now();
        let first = desired(
            None,
            Some(1),
            None,
            vec![healthy(Some(&probe(Outcome::Healthy, t0)), Some(1))],
            Some(&probe(Outcome::Healthy, t0)),
            t0,
        );
        assert!(needs_write(None, &first, t0));
        let t1 = t0 + chrono::Duration::seconds(30);
        let p1 = probe(Outcome::Healthy, t1);
        let second = desired(
            Some(&first),
            Some(1),
            None,
            vec![healthy(Some(&p1), Some(1))],
            Some(&p1),
            t1,
        );
        assert_eq!(
            second.conditions[0].last_transition_time,
            first.conditions[0].last_transition_time
        );
        assert!(!needs_write(Some(&first), &second, t1));
        assert!(transitions(Some(&first), &second).is_empty());
        let t2 = t0 + chrono::Duration::seconds(301);
        let p2 = probe(Outcome::Healthy, t2);
        let third = desired(
            Some(&first),
            Some(1),
            None,
            vec![healthy(Some(&p2), Some(1))],
            Some(&p2),
            t2,
        );
        assert!(needs_write(Some(&first), &third, t2));
    }

    #[test]
    fn a_health_change_writes_and_is_a_transition() {
        let t0 = Utc::now();
        let ok = probe(Outcome::Healthy, t0);
        let first = desired(
            None,
            Some(1),
            None,
            vec![healthy(Some(&ok), Some(1))],
            Some(&ok),
            t0,
        );
        let bad = probe(
            Outcome::Unhealthy {
                status: 503,
                detail: "opa".into(),
            },
            t0,
        );
        let second = desired(
            Some(&first),
            Some(1),
            None,
            vec![healthy(Some(&bad), Some(1))],
            Some(&bad),
            t0,
        );
        assert!(needs_write(Some(&first), &second, t0));
        let t = transitions(Some(&first), &second);
        assert_eq!(t.len(), 1);
        assert_eq!(t[0].from.as_deref(), Some("True"));
        assert_eq!(t[0].to.status, "False");
        assert_eq!(t[0].to.reason.as_deref(), Some("ProbeFailed"));
    }
}
