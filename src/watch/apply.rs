//! The directory as a [`Source`] of the reconcile loop: the declared objects in, the outcome
//! back into the inventory file and the object table `/status` serves.
//!
//! Ownership is recorded as `engine::apply` does (everything the plan declares owned before
//! executing, deletions dropped after), in place, and the state file written only when its content
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
use crate::plan::{Action, Op, Plan, PlanOptions};
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

    fn ownership(&self) -> &Loaded {
        self.inventory.as_ref().expect("loaded on connect")
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
        if record_declared(plan, &mut owned, environment.to_string()) {
            self.save(&owned)?;
        }
        self.inventory = Some(Loaded::Ok(owned));
        Ok(())
    }

    fn after_execute(&mut self, plan: &Plan, synced: &dyn Fn(&Op) -> bool) -> anyhow::Result<()> {
        let Some(Loaded::Ok(mut owned)) = self.inventory.take() else {
            anyhow::bail!("the inventory was not recorded before executing");
        };
        if drop_gone(plan, &mut owned, synced) {
            self.save(&owned)?;
        }
        self.inventory = Some(Loaded::Ok(owned));
        Ok(())
    }
}

/// `Plan::inventory_before`, in place; whether anything changed.
fn record_declared(plan: &Plan, inventory: &mut Inventory, environment: String) -> bool {
    let mut changed = false;
    if inventory.environment.is_none() {
        inventory.environment = Some(environment);
        changed = true;
    }
    for (kind, key, entry) in plan.entries() {
        if inventory.get(kind, key) != Some(entry) {
            inventory.insert(kind, key.to_string(), entry.clone());
            changed = true;
        }
    }
    changed
}

/// `Plan::inventory_after`, in place; whether anything changed.
fn drop_gone(plan: &Plan, inventory: &mut Inventory, ok: impl Fn(&Op) -> bool) -> bool {
    let mut changed = false;
    let deleted = plan
        .ops
        .iter()
        .filter(|o| o.action == Action::Delete && ok(o))
        .map(|o| (o.kind, &o.key));
    let stale = plan.stale.iter().map(|(k, key)| (*k, key));
    for (kind, key) in deleted.chain(stale) {
        if inventory.contains(kind, key) {
            inventory.remove(kind, key);
            changed = true;
        }
    }
    changed
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kinds::Kind;
    use crate::model::{Assignment, Obj, Role, State, Tenant, User};
    use crate::plan::{Ownership, PlanOptions};

    fn state() -> State {
        let mut s = State::default();
        for t in ["acme", "globex"] {
            s.insert(Obj::Tenant(Tenant {
                key: t.into(),
                name: t.into(),
                description: None,
                attributes: None,
            }));
        }
        for u in ["jane", "bob"] {
            s.insert(Obj::User(User {
                key: u.into(),
                email: None,
                first_name: Some(u.into()),
                last_name: None,
                attributes: None,
            }));
            for t in ["acme", "globex"] {
                s.insert(Obj::Assignment(Assignment {
                    user: u.into(),
                    role: "viewer".into(),
                    tenant: t.into(),
                    resource_instance: None,
                }));
            }
        }
        s
    }

    #[test]
    fn projecting_in_place_gives_what_project_gives() {
        let mut live = state();
        // An owned role on which someone else assigned jane: deleting the role deletes that
        // assignment in Permit, though it is not ours to delete.
        live.insert(Obj::Role(Role {
            key: "auditor".into(),
            name: "Auditor".into(),
            description: None,
            permissions: Default::default(),
            extends: Default::default(),
            attributes: None,
        }));
        let foreign = Assignment {
            user: "jane".into(),
            role: "auditor".into(),
            tenant: "acme".into(),
            resource_instance: None,
        };
        live.insert(Obj::Assignment(foreign.clone()));
        let mut want = state();
        want.users.remove("bob");
        want.assignments.retain(|a| a.user != "bob");
        want.tenants.get_mut("acme").unwrap().name = "Acme Inc".into();
        want.tenants.remove("globex");
        want.assignments.retain(|a| a.tenant != "globex");
        want.insert(Obj::Tenant(Tenant {
            key: "initech".into(),
            name: "Initech".into(),
            description: None,
            attributes: None,
        }));
        let mut inv = Inventory::new(None);
        for kind in crate::model::SYNCED_KINDS {
            for key in live.keys(kind) {
                inv.insert(
                    kind,
                    key,
                    crate::inventory::Entry {
                        hash: 0,
                        orphan: false,
                    },
                );
            }
        }
        inv.remove(Kind::RoleAssignment, &foreign.key());
        let desired = crate::desired::Desired {
            state: want,
            ..Default::default()
        };
        let options = PlanOptions {
            prune: true,
            ..Default::default()
        };
        let ownership = Ownership {
            inventory: Some(&inv),
            untrusted: None,
        };
        let plan = crate::plan::plan(&desired, &live, ownership, &options).unwrap();
        assert!(plan.deletions() > 0 && plan.has_changes());
        for fails in [None, Some("jane"), Some("globex"), Some("auditor")] {
            let ok = |op: &Op| Some(op.key.as_str()) != fails;
            let mut in_place = live.clone();
            crate::reconcile::project(&plan, &mut in_place, ok);
            assert_eq!(in_place, plan.project(&live, ok));
            let role_deleted = fails != Some("auditor");
            assert_eq!(
                in_place.assignments.contains_key(&foreign.key()),
                !role_deleted,
                "the foreign assignment goes with its role, and only with it"
            );

            let mut inv2 = inv.clone();
            record_declared(&plan, &mut inv2, "o/p/e".into());
            let before = plan.inventory_before(Some(&inv), Some("o/p/e".into()));
            assert_eq!(inv2, before);
            assert!(
                !record_declared(&plan, &mut inv2, "o/p/e".into()),
                "no change"
            );
            drop_gone(&plan, &mut inv2, ok);
            assert_eq!(inv2, plan.inventory_after(before.clone(), ok));
        }
    }
}
