//! Drift: changes made to Permit outside permit-sync, found by the periodic relist.
//!
//! Drift is what a plan against the freshly listed Permit wants to do that the plan against the
//! cached state did not (the latter holds only changes still pending from the manifests or from
//! failures). `--drift=correct` applies it; `--drift=report` holds those operations back until
//! the object's declaration changes (an edit is the user's say) or the drift goes away.

use crate::desired::Desired;
use crate::kinds::Kind;
use crate::plan::{Action, Plan};
use std::collections::{BTreeMap, BTreeSet};

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum DriftMode {
    /// Revert changes made outside permit-sync.
    #[default]
    Correct,
    /// Only report them (log, status `drifted`, metrics).
    Report,
}

pub type OpId = (Kind, String, Action);

/// Operations of `relisted` that `cached` does not have.
pub fn found(cached: &Plan, relisted: &Plan) -> Vec<OpId> {
    let pending: BTreeSet<OpId> = cached.ops.iter().map(op_id).collect();
    relisted
        .ops
        .iter()
        .map(op_id)
        .filter(|id| id.2.writes() && !pending.contains(id))
        .collect()
}

fn op_id(op: &crate::plan::Op) -> OpId {
    (op.kind, op.key.clone(), op.action)
}

fn spec_hash(desired: &Desired, kind: Kind, key: &str) -> u64 {
    desired
        .state
        .get(kind, key)
        .map(|o| o.spec_hash())
        .unwrap_or_default()
}

/// Drift held back in report mode, with the declaration it was found against.
#[derive(Clone, Debug, Default)]
pub struct Held(BTreeMap<(Kind, String), u64>);

impl Held {
    pub fn hold(&mut self, found: &[OpId], desired: &Desired) {
        for (kind, key, _) in found {
            self.0
                .insert((*kind, key.clone()), spec_hash(desired, *kind, key));
        }
    }

    /// Drops held operations from `plan`; returns the objects held. Objects whose declaration
    /// changed, or that no longer drift, are released.
    pub fn filter(&mut self, plan: &mut Plan, desired: &Desired) -> Vec<(Kind, String)> {
        let in_plan: BTreeSet<(Kind, String)> =
            plan.ops.iter().map(|o| (o.kind, o.key.clone())).collect();
        self.0.retain(|(kind, key), hash| {
            in_plan.contains(&(*kind, key.clone())) && *hash == spec_hash(desired, *kind, key)
        });
        plan.retain_ops(|o| !self.0.contains_key(&(o.kind, o.key.clone())));
        self.0.keys().cloned().collect()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}
