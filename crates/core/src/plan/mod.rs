//! The planner: desired + live + ownership → ordered operations. Pure: no IO, no clock, no randomness,
//! so the same inputs always give the same plan and every rule is testable without a server.

pub mod diff;
pub mod field;
pub mod ops;
mod ownership;
mod planner;
mod project;
pub mod render;
pub mod warning;

pub use field::{
    Field, FieldOf, InstanceField, RelationField, ResourceField, ResourceRoleField, RoleField,
    TenantField, TupleField, UserField,
};
pub use ops::{Action, FieldDiff, Op};
pub use ownership::Ownership;
pub use planner::{Model, Scope, check_source, plan};
pub use warning::Warning;

use crate::inventory::{Entry, Inventory};
use crate::kinds::Kind;
use serde::Serialize;
use std::collections::BTreeMap;

/// Which live objects prune may delete.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Only objects in the inventory (created or adopted by permit-sync) that are no longer declared.
    #[default]
    Owned,
    /// Everything in Permit that is not declared (except the `default` tenant and objects declared
    /// `deletionPolicy: Orphan`): Permit equals the manifests exactly. Implies prune.
    Mirror,
}

impl Mode {
    /// Each mode with its name and a line of help, for command lines.
    pub const VALUES: [(Mode, &'static str, &'static str); 2] = [
        (
            Mode::Owned,
            "owned",
            "Only objects in the inventory (created or adopted by permit-sync) that are no longer declared",
        ),
        (
            Mode::Mirror,
            "mirror",
            "Everything in Permit that is not declared (except the `default` tenant and objects \
             declared `deletionPolicy: Orphan`): Permit equals the manifests exactly. Implies prune",
        ),
    ];
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PlanOptions {
    pub prune: bool,
    pub mode: Mode,
    /// Allow prune when the source declares nothing (otherwise an empty checkout would wipe Permit).
    pub allow_empty: bool,
    /// Refuse plans that delete more objects than this.
    pub max_deletions: Option<usize>,
}

impl PlanOptions {
    pub fn prunes(&self) -> bool {
        self.prune || self.mode == Mode::Mirror
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    #[error(
        "refusing to prune: the source declares no objects, which would delete everything permit-sync \
         owns (pass --allow-empty if that is intended)"
    )]
    EmptySource,
    #[error("refusing to delete {count} objects: more than --max-deletions {max}")]
    TooManyDeletions { count: usize, max: usize },
}

/// The plan: ordered operations plus what the inventory must record.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Plan {
    pub ops: Vec<Op>,
    /// How many objects are declared, owned and already as declared.
    pub unchanged: usize,
    /// Declared objects the inventory must record anew without an op writing them (an orphan
    /// flag or a hash changed): those with an op carry their entry ([`Op::record`]), so a cold
    /// plan does not list every key twice. [`Plan::entries`] gives both.
    #[serde(skip)]
    pub declared: Vec<(Kind, String, Entry)>,
    /// Inventory entries neither declared nor in Permit any more: dropped from the inventory.
    #[serde(skip)]
    pub stale: Vec<(Kind, String)>,
    pub warnings: Vec<Warning>,
}

impl Plan {
    /// Every declared object the inventory does not hold exactly so yet, with its entry: the
    /// ops' ones in plan order, then the others.
    pub fn entries(&self) -> impl Iterator<Item = (Kind, &str, &Entry)> {
        let ops = self.ops.iter().filter_map(|op| {
            op.record
                .as_ref()
                .map(|entry| (op.kind, op.key.as_str(), entry))
        });
        ops.chain(
            self.declared
                .iter()
                .map(|(kind, key, entry)| (*kind, key.as_str(), entry)),
        )
    }

    /// Whether applying the plan writes to Permit.
    pub fn has_changes(&self) -> bool {
        self.ops.iter().any(|o| o.action.writes())
    }

    pub fn count(&self, kind: Kind, action: Action) -> usize {
        self.ops
            .iter()
            .filter(|o| o.kind == kind && o.action == action)
            .count()
    }

    pub fn deletions(&self) -> usize {
        self.ops
            .iter()
            .filter(|o| o.action == Action::Delete)
            .count()
    }

    /// Numbers the ops in plan order: [`Op::index`] is where each op's outcome is kept.
    pub(crate) fn number_ops(&mut self) {
        for (i, op) in self.ops.iter_mut().enumerate() {
            op.index = i;
        }
    }

    /// Keeps only the ops `keep` accepts (a source holding some back), numbered again.
    pub fn retain_ops(&mut self, keep: impl FnMut(&Op) -> bool) {
        self.ops.retain(keep);
        self.number_ops();
    }

    /// [`Plan::inventory_before`] as it is written, without building it: for a plan that
    /// removes nothing, whose inventory need not be kept once written.
    pub fn inventory_overlay<'a>(
        &'a self,
        old: Option<&'a Inventory>,
        environment: Option<String>,
    ) -> crate::inventory::Overlay<'a> {
        let mut entries: BTreeMap<Kind, Vec<(&str, &Entry)>> = BTreeMap::new();
        for (kind, key, entry) in self.entries() {
            entries.entry(kind).or_default().push((key, entry));
        }
        for list in entries.values_mut() {
            list.sort_unstable_by_key(|(key, _)| *key);
        }
        crate::inventory::Overlay {
            base: old,
            environment,
            entries,
        }
    }
}

#[cfg(test)]
mod tests;
