//! What became of each op: done, or failed with a typed class (what callers decide on) and a
//! message (what people read). Outcomes are kept by the op's position in the plan.

use crate::kinds::Kind;
use crate::permit::{Metrics, PermitError};
use crate::plan::{Action, Plan};
use serde::Serialize;
use std::time::Duration;

/// Why an op failed. Callers decide on this, never on the message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "failure", rename_all = "snake_case")]
pub enum Failure {
    /// Permit refused the object itself (a 4xx other than 408 and 429): sending it again as it
    /// is cannot succeed.
    Rejected { http_status: u16 },
    /// Permit's rate limit held after the client's waits and retries (429).
    RateLimited,
    /// Permit failed to answer in time or failed itself (408, 5xx, or any other status that is
    /// not a 4xx): the call may have landed.
    ServerError { http_status: u16 },
    /// No answer (connection refused or dropped, timeout); `maybe_applied` when the request
    /// may have reached Permit.
    Unreachable { maybe_applied: bool },
    /// A 2xx answer that could not be read.
    BadAnswer,
    /// The API key or its scope cannot be used.
    Config,
    /// Never sent: the deletion a cascaded op rides on failed, or no stage ran the op.
    NotAttempted,
}

impl Failure {
    /// The class of a client error.
    pub fn of(e: &PermitError) -> Failure {
        match e {
            PermitError::Api { status: 429, .. } => Failure::RateLimited,
            PermitError::Api { status, .. } if (400..500).contains(status) && *status != 408 => {
                Failure::Rejected {
                    http_status: *status,
                }
            }
            PermitError::Api { status, .. } => Failure::ServerError {
                http_status: *status,
            },
            PermitError::Transport { maybe_applied, .. } => Failure::Unreachable {
                maybe_applied: *maybe_applied,
            },
            PermitError::Decode { .. } => Failure::BadAnswer,
            PermitError::Config(_) => Failure::Config,
        }
    }

    /// The object's own problem: retry only once it changes. Every other class is Permit's (or
    /// the connection's), and passes.
    pub fn rejected(self) -> bool {
        matches!(self, Failure::Rejected { .. })
    }

    /// The HTTP status Permit answered with, if it answered.
    pub fn http_status(self) -> Option<u16> {
        match self {
            Failure::Rejected { http_status } | Failure::ServerError { http_status } => {
                Some(http_status)
            }
            Failure::RateLimited => Some(429),
            _ => None,
        }
    }
}

/// A failed op: its class and the message for people.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failed {
    pub failure: Failure,
    pub message: String,
}

impl Failed {
    pub fn new(failure: Failure, message: impl Into<String>) -> Failed {
        Failed {
            failure,
            message: message.into(),
        }
    }

    pub fn of(e: &PermitError) -> Failed {
        Failed::new(Failure::of(e), e.to_string())
    }
}

/// One op's outcome: a failure boxed, so that at 400,000 ops, most of them done, the outcomes
/// stay small (16 bytes an op while executing, 8 once resolved).
pub type Recorded = Result<(), Box<Failed>>;

/// The outcome for one object: what the source reports as its status.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ObjectStatus {
    pub kind: Kind,
    pub key: String,
    pub action: Action,
    pub synced: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Why it failed (with the HTTP status Permit answered, when it answered).
    #[serde(flatten)]
    pub failure: Option<Failure>,
}

impl ObjectStatus {
    /// Permit refused the object itself: sending it again as it is cannot succeed.
    pub fn rejected(&self) -> bool {
        self.failure.is_some_and(Failure::rejected)
    }

    /// The HTTP status Permit answered a failed call with (none for transport failures).
    pub fn http_status(&self) -> Option<u16> {
        self.failure.and_then(Failure::http_status)
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub objects: Vec<ObjectStatus>,
    /// API use of this execution.
    pub metrics: Metrics,
    #[serde(skip)]
    pub elapsed: Duration,
}

impl Report {
    pub fn failed(&self) -> impl Iterator<Item = &ObjectStatus> {
        self.objects.iter().filter(|o| !o.synced)
    }

    pub fn succeeded(&self, kind: Kind, key: &str) -> bool {
        self.objects
            .iter()
            .any(|o| o.kind == kind && o.key == key && o.synced)
    }
}

/// What running a plan did, op by op (by position in the plan), before it is a [`Report`].
pub struct Executed {
    /// Each op's outcome, cascades resolved.
    pub(super) outcomes: Vec<Recorded>,
    pub(super) metrics: Metrics,
    pub(super) elapsed: Duration,
}

impl Executed {
    /// Whether the op at `at` in the plan is done.
    pub fn synced(&self, at: usize) -> bool {
        self.outcomes.get(at).is_some_and(Result::is_ok)
    }

    /// The report, each op's key copied.
    pub(super) fn report(self, plan: &Plan) -> Report {
        let objects = plan
            .ops
            .iter()
            .zip(self.outcomes)
            .map(|(op, outcome)| status(op.kind, op.key.clone(), op.action, outcome))
            .collect();
        Report {
            objects,
            metrics: self.metrics,
            elapsed: self.elapsed,
        }
    }

    /// The report, taking the plan: its keys move into the report instead of being copied, and
    /// the statuses are written over the ops as they are read (the standard library collects a
    /// vector's mapped items into its own buffer), so that at 400,000 objects the report is not
    /// a second large list beside the plan's.
    pub fn into_report(self, plan: Plan) -> Report {
        let mut objects: Vec<ObjectStatus> = plan
            .ops
            .into_iter()
            .zip(self.outcomes)
            .map(|(op, outcome)| status(op.kind, op.key, op.action, outcome))
            .collect();
        objects.shrink_to_fit();
        Report {
            objects,
            metrics: self.metrics,
            elapsed: self.elapsed,
        }
    }
}

fn status(kind: Kind, key: String, action: Action, outcome: Recorded) -> ObjectStatus {
    let (message, failure) = match outcome {
        Ok(()) => (None, None),
        Err(failed) => {
            let Failed { failure, message } = *failed;
            (Some(message), Some(failure))
        }
    };
    ObjectStatus {
        kind,
        key,
        action,
        synced: failure.is_none(),
        message,
        failure,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api(status: u16) -> PermitError {
        PermitError::Api {
            object: "PermitUser jane".into(),
            method: "PUT".into(),
            path: "users/jane".into(),
            status,
            code: None,
            message: "no".into(),
        }
    }

    #[test]
    fn only_a_4xx_other_than_408_and_429_is_the_objects_own_failure() {
        assert!(Failure::of(&api(422)).rejected());
        assert!(Failure::of(&api(404)).rejected());
        for passing in [408, 429, 500, 503] {
            assert!(!Failure::of(&api(passing)).rejected(), "{passing}");
            assert_eq!(Failure::of(&api(passing)).http_status(), Some(passing));
        }
        let dropped = PermitError::Transport {
            object: "x".into(),
            method: "PUT".into(),
            path: "users/jane".into(),
            message: "reset".into(),
            maybe_applied: true,
        };
        assert_eq!(
            Failure::of(&dropped),
            Failure::Unreachable {
                maybe_applied: true
            }
        );
        assert_eq!(Failure::of(&dropped).http_status(), None);
    }

    #[test]
    fn a_report_names_the_failure_class_and_the_status() {
        let failed = status(
            Kind::PermitUser,
            "jane".into(),
            Action::Create,
            Err(Box::new(Failed::of(&api(422)))),
        );
        let v = serde_json::to_value(&failed).unwrap();
        assert_eq!(v["failure"], "rejected");
        assert_eq!(v["http_status"], 422);
        assert!(failed.rejected() && !failed.synced);
        let done = status(Kind::PermitUser, "jane".into(), Action::Create, Ok(()));
        let v = serde_json::to_value(&done).unwrap();
        assert!(v.get("failure").is_none() && v.get("http_status").is_none());
    }
}
