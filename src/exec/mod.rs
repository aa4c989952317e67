//! The executor: runs a plan against Permit with bulk calls wherever Permit has them, single calls
//! elsewhere, bounded concurrency, and a per-object outcome for every operation.
//!
//! - [`adapters`]: one per object type (its stage, bulk calls and sizes, single calls, bodies),
//!   registered in stage order in `adapters::ADAPTERS`.
//! - [`strategy`]: bulk → settle (re-read) → re-bulk once → singles, written once for all of them.
//! - [`outcome`]: each op's outcome, by its position in the plan, with a typed failure class.
//! - [`progress`]: the observer the caller passes in.
//!
//! Stages follow the plan's order (creates and updates by kind, then deletions in reverse), because
//! later kinds refer to earlier ones. A create that meets 409 becomes an update, a delete that meets
//! 404 is done. A bulk create whose outcome is unknown (5xx, dropped connection) or that conflicts
//! (409: part of it exists) is never replayed as is: the kind is re-read and what is still missing
//! is planned again.

mod adapters;
mod body;
pub mod outcome;
pub mod progress;
mod strategy;
pub mod summary;

pub use outcome::{Executed, Failed, Failure, ObjectStatus, Report};
pub use progress::{Observer, Silent};

use crate::kinds::Kind;
use crate::permit::PermitClient;
use crate::plan::{Action, Op, Plan};
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// Permit's per-call item limits (permit-api.md: bulk operations).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BatchSizes {
    pub roles: usize,
    pub users: usize,
    pub tenants: usize,
    pub assignments: usize,
    pub instances: usize,
    pub tuples: usize,
}

impl Default for BatchSizes {
    fn default() -> BatchSizes {
        BatchSizes {
            roles: 2000,
            users: 3000,
            tenants: 2000,
            assignments: 2000,
            // Permit's limits (permit-model.md §3.2): 3,000 instances, 1,000 tuples per call.
            instances: 3000,
            tuples: 1000,
        }
    }
}

#[derive(Clone, Debug)]
pub struct ExecOptions {
    /// Calls in flight at once (the rate limiter paces them further).
    pub concurrency: usize,
    /// Follows the execution (the CLI's progress bar; [`Silent`] by default).
    pub observer: Arc<dyn Observer>,
    pub batch: BatchSizes,
}

impl Default for ExecOptions {
    fn default() -> ExecOptions {
        ExecOptions {
            concurrency: 8,
            observer: Arc::new(Silent),
            batch: BatchSizes::default(),
        }
    }
}

/// Runs the plan. Never fails as a whole: failures are reported per object.
pub async fn execute(client: &PermitClient, plan: &Plan, opts: &ExecOptions) -> Report {
    run(client, plan, opts).await.report(plan)
}

/// Runs the plan; [`Executed::into_report`] or [`execute`] make the report.
pub async fn run(client: &PermitClient, plan: &Plan, opts: &ExecOptions) -> Executed {
    let start = Instant::now();
    let before = client.metrics();
    let work: Vec<&Op> = plan.ops.iter().filter(|o| o.calls_api()).collect();
    let observer = &*opts.observer;
    observer.started(work.len() as u64);
    let ex = strategy::Exec {
        client,
        opts,
        outcomes: Mutex::new(vec![None; plan.ops.len()]),
        observer,
    };
    let of = |a: &dyn adapters::Adapter, deletes: bool| -> Vec<&Op> {
        work.iter()
            .copied()
            .filter(|o| o.kind == a.kind() && (o.action == Action::Delete) == deletes)
            .collect()
    };
    // The memory log follows a large plan stage by stage; a watcher's or controller's small
    // syncs stay out of it.
    let logged = |stage: &str| {
        if plan.ops.len() >= 10_000 {
            crate::memory::log_phase(stage);
        }
    };
    for a in adapters::ADAPTERS {
        observer.stage(a.label());
        ex.write(*a, of(*a, false)).await;
        logged(&format!("writing {}", a.label()));
    }
    observer.stage("deletions");
    for a in adapters::ADAPTERS.iter().rev() {
        ex.delete(*a, of(*a, true)).await;
    }
    observer.finished();
    logged("executing the plan");

    let mut outcomes = ex.outcomes.into_inner().expect("outcomes lock");
    resolve(plan, &mut outcomes);
    Executed {
        outcomes: outcomes
            .into_iter()
            .map(|o| o.expect("every outcome resolved"))
            .collect(),
        metrics: client.metrics().since(&before),
        elapsed: start.elapsed(),
    }
}

/// The outcomes of the ops no call was made for: adoptions are done; a cascaded deletion is done
/// when the deletion it rides on is; anything else not executed failed.
fn resolve(plan: &Plan, outcomes: &mut [Option<outcome::Recorded>]) {
    // The deletions a cascaded op rides on, by the kind and key its `cascaded_by` names.
    let causes: std::collections::HashMap<(Kind, &str), usize> =
        if plan.ops.iter().any(|o| o.cascaded_by.is_some()) {
            let deletions = plan
                .ops
                .iter()
                .enumerate()
                .filter(|(_, op)| op.action == Action::Delete && op.cascaded_by.is_none());
            deletions
                .map(|(i, op)| ((op.kind, op.key.as_str()), i))
                .collect()
        } else {
            Default::default()
        };
    let not_attempted =
        |message: String| Some(Err(Box::new(Failed::new(Failure::NotAttempted, message))));
    // Resolved in place: a cascaded op reads only its cause's outcome, which is never cascaded.
    for (at, op) in plan.ops.iter().enumerate() {
        let outcome = if !op.action.writes() {
            Some(Ok(()))
        } else if let Some((kind, key)) = &op.cascaded_by {
            // Done when the deletion it rides on is done.
            match causes
                .get(&(*kind, key.as_str()))
                .and_then(|&i| outcomes[i].as_ref())
            {
                Some(Ok(())) => Some(Ok(())),
                _ => not_attempted(format!("{kind} {key} was not deleted")),
            }
        } else if outcomes[at].is_none() {
            not_attempted("not executed".into())
        } else {
            continue;
        };
        outcomes[at] = outcome;
    }
}
