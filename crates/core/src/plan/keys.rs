//! The plan restricted to some objects: what a watcher plans when only a few declarations
//! changed and its cached live state and inventory can be trusted.
//!
//! [`plan_keys`] gives, for every key it is asked about, exactly the operations the full
//! [`plan`](super::plan) gives for that key, in the same order (cascades included: whether a
//! user's or tenant's deletion takes an assignment with it is decided per key, as the full plan
//! decides it). Only the global checks differ: `--max-deletions` counts the deletions among the
//! keys asked about, and the warnings speak of those keys only. Its cost is proportional to the
//! keys asked about, plus one pass over the declared assignments and roles when one of them is
//! a deletion candidate (whether declared objects still refer to it).

use super::Warning;
use super::{
    Notes, Ownership, Plan, PlanError, PlanOptions, cascade, cascade_warnings, check_guards,
    delete_op, deletion_wanted, ownership_warnings, plan_declared, references,
};
use crate::desired::Desired;
use crate::kinds::{DEFAULT_TENANT, Kind};
use crate::model::{SYNCED_KINDS, State};
use std::collections::BTreeSet;

/// The plan for the objects `keys` names (declared, live or in the inventory).
pub fn plan_keys(
    desired: &Desired,
    live: &State,
    ownership: Ownership<'_>,
    options: &PlanOptions,
    keys: &BTreeSet<(Kind, String)>,
) -> Result<Plan, PlanError> {
    let mut plan = Plan::default();
    let inventory = ownership.inventory;
    let of_kind = |kind: Kind| {
        keys.range((kind, String::new())..)
            .take_while(move |(k, _)| *k == kind)
            .map(|(_, key)| key)
    };

    for kind in SYNCED_KINDS {
        for key in of_kind(kind) {
            if let Some(want) = desired.state.get(kind, key) {
                plan_declared(
                    &mut plan,
                    Notes::of(desired),
                    live,
                    inventory,
                    want,
                    key.clone(),
                );
            }
        }
    }

    // Deletion candidates, decided as the full plan decides them. Which objects declared ones
    // refer to is only worked out when some candidate would be deleted.
    let mut referenced: Option<BTreeSet<(Kind, String)>> = None;
    let mut is_referenced = |kind: Kind, key: &str| {
        referenced
            .get_or_insert_with(|| references(&desired.state))
            .contains(&(kind, key.to_string()))
    };
    let undeclared = |kind: Kind, key: &str| {
        live.get(kind, key).is_some() && desired.state.get(kind, key).is_none()
    };
    let wanted = |kind: Kind, key: &str| deletion_wanted(inventory, options, kind, key);
    let mut owned_undeclared = 0usize;
    let mut deletions: Vec<(Kind, String)> = Vec::new();
    for kind in SYNCED_KINDS.into_iter().rev() {
        for key in of_kind(kind) {
            if !undeclared(kind, key) || (kind == Kind::PermitTenant && key == DEFAULT_TENANT) {
                continue;
            }
            let (delete, ours) = wanted(kind, key);
            if delete && is_referenced(kind, key) {
                plan.warnings.push(Warning::KeptForReferences {
                    kind,
                    key: key.clone(),
                });
            } else if delete {
                deletions.push((kind, key.clone()));
            } else if ours {
                owned_undeclared += 1;
            }
        }
    }
    if let Some(inv) = inventory {
        for (kind, key) in keys {
            if inv.contains(*kind, key)
                && desired.state.get(*kind, key).is_none()
                && live.get(*kind, key).is_none()
            {
                plan.stale.push((*kind, key.clone()));
            }
        }
    }

    check_guards(desired, options, deletions.len())?;

    // Permit deletes a user's or tenant's role assignments with it: whether that user or tenant
    // is deleted is asked of it directly, whether or not it is among `keys`.
    let mut deleted = |kind: Kind, key: &str| {
        undeclared(kind, key)
            && !(kind == Kind::PermitTenant && key == DEFAULT_TENANT)
            && wanted(kind, key).0
            && !is_referenced(kind, key)
    };
    for (kind, key) in &deletions {
        let have = live.get(*kind, key);
        let cascaded_by = cascade(&have, &mut deleted);
        plan.ops
            .push(delete_op(*kind, key.clone(), have, cascaded_by));
    }
    plan.warnings.extend(cascade_warnings(
        live,
        deletions.iter().map(|(kind, key)| (*kind, key.as_str())),
        &mut deleted,
    ));
    ownership_warnings(&mut plan.warnings, ownership, options, owned_undeclared);
    Ok(plan)
}
