//! A plan's outcome applied in place: Permit's projected state (the cache a long-running mode
//! keeps between relists instead of listing Permit after every apply) and the inventory, before
//! executing (everything declared owned, so a crash never leaves an object created but not owned)
//! and after (deletions done and stale entries gone; a failed deletion stays). `ok` says which
//! ops succeeded; ops are looked up by [`Op::index`], never by a map of their ids.

use super::{
    Action, InstanceField, Op, Plan, ResourceField, ResourceRoleField, RoleField, TenantField,
};
use crate::inventory::Inventory;
use crate::kinds::Kind;
use crate::model::{CASCADE_CAUSES, Obj, SYNCED_KINDS, State};
use std::collections::HashSet;

impl Plan {
    /// Projects the succeeded ops onto `live` in place (cascades included). The declared objects
    /// move out of the ops into `live` (the ops keep no `desired` afterwards): after a first
    /// sync the projection is the whole environment, and a copy would hold it twice at once.
    pub fn project(&mut self, live: &mut State, ok: impl Fn(&Op) -> bool) {
        // The objects deleted whose deletion Permit cascades (`Obj::parents`).
        let mut parents: HashSet<(Kind, String)> = HashSet::new();
        for op in self.ops.iter_mut().filter(|o| ok(o)) {
            match op.action {
                Action::Adopt => {}
                Action::Create => {
                    let want = op
                        .desired
                        .take()
                        .map(|b| *b)
                        .or_else(|| op.assignment().map(Obj::Assignment))
                        .expect("ops that write carry the desired object");
                    live.insert(want);
                }
                Action::Update => {
                    let want = *op
                        .desired
                        .take()
                        .expect("ops that write carry the desired object");
                    let merged = match live.remove(op.kind, &op.key) {
                        Some(current) => merge(op, want, current),
                        None => want,
                    };
                    live.insert(merged);
                    // Deleted and created again: what Permit deletes with it is gone.
                    if super::planner::recreates(op.kind, &op.diffs) {
                        parents.insert((op.kind, op.key.clone()));
                    }
                }
                Action::Delete => {
                    live.remove(op.kind, &op.key);
                    if CASCADE_CAUSES.contains(&op.kind) {
                        parents.insert((op.kind, op.key.clone()));
                    }
                }
            }
        }
        if parents.is_empty() {
            return;
        }
        // What went with them, kind by kind in creation order: every parent's kind comes before
        // its children's, so one pass finds cascades of cascades (a resource, its instances,
        // their tuples).
        for kind in SYNCED_KINDS {
            let gone: Vec<String> = live
                .key_refs(kind)
                .filter(|key| {
                    live.parents(kind, key)
                        .into_iter()
                        .any(|parent| parents.contains(&parent))
                })
                .map(str::to_string)
                .collect();
            for key in gone {
                live.remove(kind, &key);
                if CASCADE_CAUSES.contains(&kind) {
                    parents.insert((kind, key));
                }
            }
        }
    }

    /// Records in `inventory` everything the plan declares (before executing); whether anything
    /// changed (the file need not be written otherwise).
    pub fn record_declared(&self, inventory: &mut Inventory, environment: Option<String>) -> bool {
        let mut changed = false;
        if inventory.environment.is_none() && environment.is_some() {
            inventory.environment = environment;
            changed = true;
        }
        // Each kind's entries made a map in one go (`Inventory::record`): full nodes, not the
        // half-empty ones that inserting them one by one in key order leaves.
        inventory.record(self.entries()) || changed
    }

    /// Drops from `inventory` what the plan deleted (where `ok`) and its stale entries (after
    /// executing); whether anything changed.
    pub fn drop_gone(&self, inventory: &mut Inventory, ok: impl Fn(&Op) -> bool) -> bool {
        let mut changed = false;
        let deleted = self
            .ops
            .iter()
            .filter(|o| o.action == Action::Delete && ok(o))
            .map(|o| (o.kind, &o.key));
        let stale = self.stale.iter().map(|(k, key)| (*k, key));
        for (kind, key) in deleted.chain(stale) {
            if inventory.contains(kind, key) {
                inventory.remove(kind, key);
                changed = true;
            }
        }
        changed
    }

    /// [`Plan::record_declared`] on `old` (or a new inventory), returned.
    pub fn inventory_before_owned(
        &self,
        old: Option<Inventory>,
        environment: Option<String>,
    ) -> Inventory {
        let mut inventory = old.unwrap_or_else(|| Inventory::new(environment.clone()));
        self.record_declared(&mut inventory, environment);
        inventory
    }

    /// [`Plan::inventory_before_owned`] on a copy of `old`.
    pub fn inventory_before(
        &self,
        old: Option<&Inventory>,
        environment: Option<String>,
    ) -> Inventory {
        self.inventory_before_owned(old.cloned(), environment)
    }

    /// [`Plan::drop_gone`] on `before`, returned.
    pub fn inventory_after(&self, mut before: Inventory, ok: impl Fn(&Op) -> bool) -> Inventory {
        self.drop_gone(&mut before, ok);
        before
    }
}

/// An updated object as Permit holds it after the update: the declared fields the op changes
/// laid over the live object.
fn merge(op: &Op, want: Obj, current: Obj) -> Obj {
    match (want, current) {
        (Obj::Resource(d), Obj::Resource(mut l)) => {
            l.name = d.name;
            if op.changed(ResourceField::Description) {
                l.description = d.description;
            }
            if op.changed(ResourceField::Actions) {
                l.actions = d.actions;
            }
            if op.changed(ResourceField::Attributes) {
                l.attributes = d.attributes;
            }
            Obj::Resource(l)
        }
        (Obj::Role(d), Obj::Role(mut l)) => {
            l.name = d.name;
            if op.changed(RoleField::Description) {
                l.description = d.description;
            }
            // The executor adds the missing permissions and removes the extra: the declared set.
            l.permissions = d.permissions;
            l.extends = d.extends;
            if op.changed(RoleField::Attributes) {
                l.attributes = d.attributes;
            }
            Obj::Role(l)
        }
        (Obj::Tenant(d), Obj::Tenant(mut l)) => {
            l.name = d.name;
            for f in op.fields::<TenantField>() {
                match f {
                    TenantField::Description => l.description = d.description.clone(),
                    TenantField::Attributes => l.attributes = d.attributes.clone(),
                    TenantField::Name => {}
                }
            }
            Obj::Tenant(l)
        }
        (Obj::User(d), Obj::User(mut l)) => {
            // The executor upserts the live user with the declared fields laid over it.
            l.email = d.email.or(l.email);
            l.first_name = d.first_name.or(l.first_name);
            l.last_name = d.last_name.or(l.last_name);
            l.attributes = d.attributes.or(l.attributes);
            Obj::User(l)
        }
        (Obj::Relation(d), Obj::Relation(_)) => Obj::Relation(d),
        (Obj::ResourceRole(d), Obj::ResourceRole(mut l)) => {
            l.name = d.name;
            if op.changed(ResourceRoleField::Description) {
                l.description = d.description;
            }
            l.permissions = d.permissions;
            l.extends = d.extends;
            if op.changed(ResourceRoleField::Attributes) {
                l.attributes = d.attributes;
            }
            if op.changed(ResourceRoleField::NoDirectRolesOnObject) {
                l.no_direct_roles_on_object = d.no_direct_roles_on_object;
            }
            Obj::ResourceRole(l)
        }
        (Obj::Instance(d), Obj::Instance(mut l)) => {
            l.tenant = d.tenant;
            if op.changed(InstanceField::Attributes) {
                l.attributes = d.attributes;
            }
            Obj::Instance(l)
        }
        // Recreated: the declared tuple.
        (Obj::Tuple(d), Obj::Tuple(_)) => Obj::Tuple(d),
        // Every kind listed, so that a new one is a compile error here. Assignments and
        // derivations are identity only: never updated.
        (
            Obj::Resource(_)
            | Obj::Role(_)
            | Obj::Tenant(_)
            | Obj::User(_)
            | Obj::Assignment(_)
            | Obj::Relation(_)
            | Obj::ResourceRole(_)
            | Obj::Derivation(_)
            | Obj::Instance(_)
            | Obj::Tuple(_),
            _,
        ) => {
            unreachable!("an update keeps its kind")
        }
    }
}
