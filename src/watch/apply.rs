//! The directory as a [`Source`] of the reconcile loop: the declared objects in, the outcome
//! back into the inventory file and the object table `/status` serves.
//!
//! Ownership is recorded as `engine::apply` does (everything the plan declares owned before
//! executing, deletions dropped after: `Plan::record_declared`, `Plan::drop_gone`), in place, and the state file written only when its content
//! changes: a plan that touches one object costs one object's work, not a copy of the whole
//! inventory.
//!
//! Skipping a write whose content would not change is safe because the inventory in memory is
//! the file's content: it was read from it, or written to it. Whenever a write fails the
//! inventory is dropped and the file read again. A new object is always recorded (and the file
//! written and synced) before it is created.

use super::drift;
use super::scan::FileSet;
use super::state::{self, ObjectState, Shared};
use crate::desired::Desired;
use crate::inventory::{Inventory, Loaded, StateFile};
use crate::kinds::{ObjectId, Origin};
use crate::metrics::SyncMetrics;
use crate::plan::{Op, Ownership, Plan, PlanOptions};
use crate::reconcile::Source;
use anyhow::Context;
use std::collections::BTreeSet;

/// One sync's view of the watcher's state.
pub(super) struct Directory<'a> {
    pub desired: &'a Desired,
    pub options: PlanOptions,
    /// Loaded after connecting; `None` after a failed write (read the file again).
    pub inventory: Option<Loaded>,
    pub state_file: StateFile,
    pub held: &'a mut drift::Held,
    pub files: &'a FileSet,
    pub objects: &'a state::Objects,
    pub shared: &'a Shared,
    pub metrics: &'a SyncMetrics,
}

impl Directory<'_> {
    fn save(&self, inventory: &Inventory) -> anyhow::Result<()> {
        self.state_file
            .save(inventory)
            .with_context(|| format!("writing inventory {}", self.state_file.path.display()))
    }

    /// Marks a declared object synced; one whose file has errors says its last good version is
    /// in force.
    fn mark(&mut self, id: &ObjectId, origin: &Origin) {
        let message = match origin {
            Origin::File { path, .. } if self.files.keeps_last_good(path) => Some(format!(
                "{} has errors; its last valid version is in force",
                path.display()
            )),
            _ => None,
        };
        self.objects.set(id.0, &id.1, ObjectState::Synced, message);
    }
}

impl Source for Directory<'_> {
    fn desired(&self) -> &Desired {
        self.desired
    }

    fn ownership(&self) -> Ownership<'_> {
        Ownership::of(self.inventory.as_ref().expect("loaded on connect"))
    }

    fn options(&self) -> &PlanOptions {
        &self.options
    }

    fn shortcut_allowed(&self) -> bool {
        self.held.is_empty() && matches!(self.inventory, Some(Loaded::Ok(_)))
    }

    fn hold(&mut self, plan: &mut Plan) -> Vec<ObjectId> {
        self.held.filter(plan, self.desired)
    }

    fn planned(&mut self, plan: &Plan, scope: Option<&BTreeSet<ObjectId>>, held: &[ObjectId]) {
        let desired = self.desired;
        match scope {
            Some(keys) => {
                for id in keys {
                    if let Some(origin) = desired.origin(id.0, &id.1) {
                        self.mark(id, origin);
                    }
                }
            }
            None => {
                for (kind, key, origin) in desired.declared() {
                    if let Some(origin) = origin {
                        self.mark(&(kind, key), origin);
                    }
                }
            }
        }
        for op in plan.ops.iter().filter(|o| o.action.writes()) {
            self.objects
                .set(op.kind, &op.key, ObjectState::Pending, None);
        }
        for (kind, key) in held {
            self.objects.set(
                *kind,
                key,
                ObjectState::Drifted,
                Some("changed in Permit outside permit-sync; left as is (--drift=report)".into()),
            );
        }
    }

    fn before_execute(&mut self, plan: &Plan, environment: &str) -> anyhow::Result<()> {
        super::publish(self.shared, self.metrics, |_| {});
        let mut owned = match self.inventory.take().expect("loaded on connect") {
            Loaded::Ok(owned) => owned,
            // An untrusted file is moved aside for a person to look at; a new one starts.
            other => crate::engine::trusted_or_set_aside(other, &self.state_file)?
                .unwrap_or_else(|| Inventory::new(None)),
        };
        if plan.record_declared(&mut owned, Some(environment.to_string())) {
            self.save(&owned)?;
        }
        self.inventory = Some(Loaded::Ok(owned));
        Ok(())
    }

    fn after_execute(&mut self, plan: &Plan, synced: &dyn Fn(&Op) -> bool) -> anyhow::Result<()> {
        let Some(Loaded::Ok(mut owned)) = self.inventory.take() else {
            anyhow::bail!("the inventory was not recorded before executing");
        };
        if plan.drop_gone(&mut owned, synced) {
            self.save(&owned)?;
        }
        self.inventory = Some(Loaded::Ok(owned));
        Ok(())
    }
}
