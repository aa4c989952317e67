//! `Plan::project`, in place: the cache after an outcome, for both modes.

use crate::kinds::Kind;
use crate::model::{ASSIGNMENT_PARENTS, State};
use crate::plan::{Action, Op, Plan};
use std::collections::HashSet;

/// The objects the plan touches (and the role assignments Permit deletes with the users, tenants
/// and roles it deletes) are projected on their own and put back: a plan that touches one object
/// costs one object's work, not a copy of the whole live state. `ok` says which ops succeeded.
pub fn project(plan: &Plan, live: &mut State, ok: impl Fn(&Op) -> bool) {
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
    // Moved back, not copied: after a first sync the projection is the whole live state, and a
    // copy would hold it twice at once.
    let mut projected = plan.project(&part, ok);
    drop(part);
    for kind in crate::model::SYNCED_KINDS {
        for (_, obj) in projected.take(kind) {
            live.insert(obj);
        }
    }
}
