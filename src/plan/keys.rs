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

use super::{Action, Op, Ownership, Plan, PlanError, PlanOptions, check_source, diff, references};
use crate::desired::Desired;
use crate::inventory::Entry;
use crate::kinds::{DEFAULT_TENANT, Kind};
use crate::model::{Obj, SYNCED_KINDS, State};
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
    let owned = |kind: Kind, key: &str| inventory.is_some_and(|i| i.contains(kind, key));
    let of_kind = |kind: Kind| {
        keys.range((kind, String::new())..)
            .take_while(move |(k, _)| *k == kind)
            .map(|(_, key)| key)
    };

    for kind in SYNCED_KINDS {
        for key in of_kind(kind) {
            let Some(want) = desired.state.get(kind, key) else {
                continue;
            };
            let orphan = desired.orphans.contains(&(kind, key.clone()));
            let entry = Entry {
                hash: want.spec_hash(),
                orphan,
            };
            // The inventory holds it as it is: nothing to record (at scale, a copy of every key).
            if inventory.and_then(|i| i.get(kind, key)) != Some(&entry) {
                plan.declared.push((kind, key.clone(), entry));
            }
            let origin = desired.origin(kind, key).cloned();
            let have = live.get(kind, key);
            let (action, diffs) = match &have {
                None => (Action::Create, Vec::new()),
                Some(have) => {
                    let diffs = diff::diff(&want, have);
                    match (diffs.is_empty(), owned(kind, key)) {
                        (true, true) => {
                            plan.unchanged += 1;
                            continue;
                        }
                        (true, false) => (Action::Adopt, diffs),
                        (false, _) => (Action::Update, diffs),
                    }
                }
            };
            plan.ops.push(Op {
                kind,
                adopted: action != Action::Create && !owned(kind, key),
                key: key.clone(),
                action,
                cascaded_by: None,
                diffs,
                origin,
                desired: Op::carried(Some(want)),
                live: Op::carried(have),
            });
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
    let wanted = |kind: Kind, key: &str| {
        let entry = inventory.and_then(|i| i.get(kind, key));
        let ours = entry.is_some_and(|e| !e.orphan);
        let orphan = entry.is_some_and(|e| e.orphan);
        let delete = match options.mode {
            super::Mode::Mirror => !orphan,
            super::Mode::Owned => options.prune && ours,
        };
        (delete, ours)
    };
    let mut owned_undeclared = 0usize;
    let mut deletions: Vec<(Kind, String)> = Vec::new();
    for kind in SYNCED_KINDS.into_iter().rev() {
        for key in of_kind(kind) {
            if !undeclared(kind, key) || (kind == Kind::PermitTenant && key == DEFAULT_TENANT) {
                continue;
            }
            let (delete, ours) = wanted(kind, key);
            if delete && is_referenced(kind, key) {
                plan.warnings.push(format!(
                    "{kind} {key} is no longer declared but declared objects still refer to it; \
                     it is kept"
                ));
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

    check_source(desired, options)?;
    if let Some(max) = options.max_deletions
        && deletions.len() > max
    {
        return Err(PlanError::TooManyDeletions {
            count: deletions.len(),
            max,
        });
    }

    // Permit deletes a user's or tenant's role assignments with it: whether that user or tenant
    // is deleted is asked of it directly, whether or not it is among `keys`.
    let mut deleted = |kind: Kind, key: &str| {
        undeclared(kind, key)
            && !(kind == Kind::PermitTenant && key == DEFAULT_TENANT)
            && wanted(kind, key).0
            && !is_referenced(kind, key)
    };
    for (kind, key) in deletions {
        let have = live.get(kind, &key);
        let cascaded_by = match &have {
            Some(Obj::Assignment(a)) => {
                if deleted(Kind::PermitUser, &a.user) {
                    Some(format!("{} {}", Kind::PermitUser, a.user))
                } else if deleted(Kind::PermitTenant, &a.tenant) {
                    Some(format!("{} {}", Kind::PermitTenant, a.tenant))
                } else {
                    None
                }
            }
            _ => None,
        };
        plan.ops.push(Op {
            kind,
            key,
            action: Action::Delete,
            adopted: false,
            cascaded_by,
            diffs: Vec::new(),
            origin: None,
            desired: None,
            live: Op::carried(have),
        });
    }

    if options.prunes()
        && options.mode == super::Mode::Owned
        && let Some(why) = ownership.untrusted
    {
        plan.warnings.push(format!("prune skipped: {why}"));
    }
    if !options.prunes() && owned_undeclared > 0 {
        plan.warnings.push(format!(
            "{owned_undeclared} object(s) managed by permit-sync are no longer declared; \
             run with --prune to delete them"
        ));
    }
    Ok(plan)
}
