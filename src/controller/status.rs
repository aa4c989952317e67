//! Status of the synced kinds: `Synced` and `Ready` conditions with reason, message and
//! `observedGeneration`, and the Permit key in force. Built purely from a verdict; written only
//! when it differs from the stored one other than in timestamps, so a status write (which is an
//! event on the watch) never causes another.

use super::batch::Verdict;
use super::sources::Cr;
use crate::kinds::{Condition, SyncStatus};

pub const SYNCED: &str = "Synced";
pub const READY: &str = "Ready";

fn condition(
    type_: &str,
    status: &str,
    reason: &str,
    message: &str,
    generation: Option<i64>,
) -> Condition {
    Condition {
        type_: type_.into(),
        status: status.into(),
        reason: Some(reason.into()),
        message: Some(message.into()),
        last_transition_time: None,
        observed_generation: generation,
    }
}

/// The status a verdict calls for (`None`: leave the stored one). `permit_id`: the id of the
/// resource's Permit object when known.
pub fn desired(cr: &Cr, verdict: &Verdict, permit_id: Option<&str>) -> Option<SyncStatus> {
    let generation = cr.generation();
    let key = cr.object.as_ref().ok().map(|o| o.permit_key());
    let old_key = cr.status.as_ref().and_then(|s| s.key.clone());
    let c = |t: &str, s: &str, r: &str, m: &str| condition(t, s, r, m, generation);
    let (key, synced, ready) = match verdict {
        Verdict::Held | Verdict::Released { .. } | Verdict::Ignored => return None,
        // One message whatever this batch did, or the next batch would rewrite "created" as
        // "in sync" (what was done goes to the transition's event instead).
        Verdict::Synced(_) => (
            key,
            c(
                SYNCED,
                "True",
                "ReconcileSuccess",
                "Permit matches the spec",
            ),
            c(
                READY,
                "True",
                "Available",
                "the Permit object exists as declared",
            ),
        ),
        Verdict::Failed {
            message,
            rejected,
            exists,
        } => {
            let (reason, message) = if *rejected {
                (
                    "Rejected",
                    format!("Permit rejected it; retried once the object changes: {message}"),
                )
            } else {
                (
                    "ReconcileError",
                    format!("{message}; retrying with backoff"),
                )
            };
            let ready = if *exists {
                c(
                    READY,
                    "True",
                    "Available",
                    "the Permit object exists; the last change failed",
                )
            } else {
                c(
                    READY,
                    "False",
                    "NotInPermit",
                    "the Permit object does not exist",
                )
            };
            // Until the old grant of a changed assignment is gone, the old key stays in force.
            (old_key.or(key), c(SYNCED, "False", reason, &message), ready)
        }
        Verdict::Blocked(m) => (
            old_key.or(key),
            c(SYNCED, "False", "DeletionBlocked", m),
            c(READY, "True", "Available", "the Permit object still exists"),
        ),
        Verdict::Invalid(m) => {
            let m = format!("the object cannot be read as a {}: {m}", cr.kind);
            (
                old_key,
                c(SYNCED, "False", "InvalidObject", &m),
                c(READY, "False", "InvalidObject", &m),
            )
        }
        Verdict::Paused => {
            let m = "reconcile disabled by the annotation permitsync.dev/reconcile: disabled";
            (
                old_key,
                c(SYNCED, "False", "ReconcilePaused", m),
                c(READY, "Unknown", "ReconcilePaused", m),
            )
        }
        Verdict::Conflict(m) => (
            None,
            c(SYNCED, "False", "Conflict", m),
            c(READY, "False", "Conflict", m),
        ),
    };
    let permit_id = match verdict {
        Verdict::Conflict(_) => None,
        _ => permit_id
            .map(str::to_string)
            .or_else(|| cr.status.as_ref().and_then(|s| s.permit_id.clone())),
    };
    let mut status = SyncStatus {
        key,
        permit_id,
        observed_generation: generation,
        conditions: vec![synced, ready],
    };
    carry_transition_times(cr.status.as_ref(), &mut status);
    Some(status)
}

/// Keeps `lastTransitionTime` of conditions whose status did not change; stamps the others.
fn carry_transition_times(old: Option<&SyncStatus>, new: &mut SyncStatus) {
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    for c in &mut new.conditions {
        let before = old.and_then(|o| o.conditions.iter().find(|x| x.type_ == c.type_));
        c.last_transition_time = match before {
            Some(b) if b.status == c.status => b.last_transition_time.clone().or(Some(now.clone())),
            _ => Some(now.clone()),
        };
    }
}

/// Whether `new` differs from `old` in anything but timestamps.
pub fn changed(old: Option<&SyncStatus>, new: &SyncStatus) -> bool {
    let strip = |s: &SyncStatus| {
        let mut s = s.clone();
        s.conditions
            .iter_mut()
            .for_each(|c| c.last_transition_time = None);
        s
    };
    old.map(strip) != Some(strip(new))
}

/// The `Synced` condition, for transition events.
pub fn synced(status: Option<&SyncStatus>) -> Option<&Condition> {
    status.and_then(|s| s.conditions.iter().find(|c| c.type_ == SYNCED))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kinds::{Object, PermitTenant, PermitTenantSpec};

    fn cr() -> Cr {
        let mut t = PermitTenant::new("acme", PermitTenantSpec::default());
        t.metadata.namespace = Some("a".into());
        t.metadata.generation = Some(3);
        Cr {
            kind: crate::kinds::Kind::PermitTenant,
            meta: t.metadata.clone(),
            object: Ok(Object::Tenant(t)),
            status: None,
        }
    }

    #[test]
    fn a_second_identical_verdict_writes_nothing() {
        let mut c = cr();
        let first = desired(
            &c,
            &Verdict::Synced("created in Permit".into()),
            Some("u-1"),
        )
        .unwrap();
        assert!(changed(None, &first));
        assert_eq!(first.observed_generation, Some(3));
        assert_eq!(first.key.as_deref(), Some("acme"));
        assert_eq!(first.conditions[0].status, "True");
        c.status = Some(first.clone());
        let again = desired(
            &c,
            &Verdict::Synced("created in Permit".into()),
            Some("u-1"),
        )
        .unwrap();
        assert!(!changed(Some(&first), &again));
        assert_eq!(
            again.conditions[0].last_transition_time,
            first.conditions[0].last_transition_time
        );
        let settled = desired(&c, &Verdict::Synced("in sync with Permit".into()), None).unwrap();
        assert!(
            !changed(Some(&first), &settled),
            "create then no-op is no rewrite"
        );
        let failed = Verdict::Failed {
            message: "PermitTenant acme: returned 503".into(),
            rejected: false,
            exists: true,
        };
        let now = desired(&c, &failed, None).unwrap();
        assert_eq!(now.permit_id.as_deref(), Some("u-1"), "the id stays known");
        assert!(changed(Some(&first), &now));
        assert_eq!(now.conditions[0].reason.as_deref(), Some("ReconcileError"));
        assert_eq!(now.conditions[1].status, "True");
    }

    #[test]
    fn held_and_released_leave_the_status_alone() {
        assert!(desired(&cr(), &Verdict::Held, None).is_none());
        assert!(
            desired(
                &cr(),
                &Verdict::Released {
                    message: "gone".into(),
                    deleted: false
                },
                None
            )
            .is_none()
        );
        let paused = desired(&cr(), &Verdict::Paused, None).unwrap();
        assert_eq!(
            paused.conditions[0].reason.as_deref(),
            Some("ReconcilePaused")
        );
    }
}
