//! `engine::apply` for a watcher that keeps the inventory and the live state in memory: the
//! same steps (ownership recorded before executing, deletions dropped after), done in place, and
//! the state file written only when its content changes. A plan that touches one object costs
//! one object's work, not a copy of the whole inventory and live state.
//!
//! Skipping a write whose content would not change is safe because the inventory in memory is
//! the file's content: it was read from it, or written to it. Whenever a write fails the caller
//! drops its copy and reads the file again. A new object is always recorded (and the file
//! written and synced) before it is created.

use crate::exec::{self, ExecOptions, Report};
use crate::inventory::{Inventory, StateFile};
use crate::kinds::Kind;
use crate::model::{ASSIGNMENT_PARENTS, State};
use crate::permit::PermitClient;
use crate::plan::{Action, Op, Plan};
use anyhow::Context;
use std::collections::HashSet;

pub async fn apply(
    client: &PermitClient,
    plan: &Plan,
    live: &mut State,
    inventory: &mut Inventory,
    state_file: &StateFile,
    options: &ExecOptions,
) -> anyhow::Result<Report> {
    let save = |inv: &Inventory| {
        state_file
            .save(inv)
            .with_context(|| format!("writing inventory {}", state_file.path.display()))
    };
    if record_declared(plan, inventory, client.scope().id()) {
        save(inventory)?;
    }
    let report = exec::execute(client, plan, options).await;
    let synced: HashSet<(Kind, &str)> = report
        .objects
        .iter()
        .filter(|o| o.synced)
        .map(|o| (o.kind, o.key.as_str()))
        .collect();
    let ok = |op: &Op| synced.contains(&(op.kind, op.key.as_str()));
    if drop_gone(plan, inventory, ok) {
        save(inventory)?;
    }
    project(plan, live, ok);
    Ok(report)
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

/// `Plan::project`, in place: the objects the plan touches (and the role assignments Permit
/// deletes with the users, tenants and roles it deletes) are projected on their own and put back.
fn project(plan: &Plan, live: &mut State, ok: impl Fn(&Op) -> bool) {
    let mut part = State::default();
    // The users, tenants and roles deleted: Permit deletes their role assignments with them.
    let mut parents = HashSet::new();
    for op in plan.ops.iter().filter(|o| ok(o)) {
        if let Some(obj) = live.remove(op.kind, &op.key) {
            part.insert(obj);
        }
        if op.action == Action::Delete && ASSIGNMENT_PARENTS.contains(&op.kind) {
            parents.insert((op.kind, op.key.as_str()));
        }
    }
    if !parents.is_empty() {
        let cascaded: Vec<String> = live
            .assignments
            .iter()
            .filter(|(_, a)| a.parents().iter().any(|p| parents.contains(p)))
            .map(|(k, _)| k.to_string())
            .collect();
        for key in cascaded {
            if let Some(obj) = live.remove(Kind::RoleAssignment, &key) {
                part.insert(obj);
            }
        }
    }
    let projected = plan.project(&part, ok);
    for kind in crate::model::SYNCED_KINDS {
        for key in projected.keys(kind) {
            if let Some(obj) = projected.get(kind, &key) {
                live.insert(obj);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Assignment, Obj, Role, Tenant, User};
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
            project(&plan, &mut in_place, ok);
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
