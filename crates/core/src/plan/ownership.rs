//! What permit-sync owns, as the planner sees it: the inventory of directory mode, or the custom
//! resources themselves in the controller. Ownership decides adoption (a declared object that is
//! not ours yet), what prune may delete, and which inventory entries the plan records.

use crate::inventory::{Entry, Inventory, Loaded};
use crate::kinds::{Kind, ObjectId};
use std::collections::BTreeSet;

/// Who owns what.
#[derive(Clone, Copy, Debug)]
pub enum Ownership<'a> {
    /// The trusted inventory: what permit-sync created or adopted. The plan records the entries
    /// it must hold anew.
    Inventory(&'a Inventory),
    /// No inventory to trust (a first run, or a state file that cannot be trusted; the text says
    /// why, for the plan's warning): nothing is known to be ours, so prune deletes nothing except
    /// in mirror mode, and the plan records every declared object for a new inventory.
    Untrusted(&'a str),
    /// The custom resources (the controller): every declared object is ours, and of the
    /// undeclared ones only `deleting` (resources being deleted with our finalizer, grants a
    /// resource no longer declares). Nothing is recorded: the resources are the record.
    Declared { deleting: &'a BTreeSet<ObjectId> },
}

/// A declared object's standing.
pub(super) struct Held<'a> {
    /// Already ours: an unchanged object needs no op (not an adoption).
    pub owned: bool,
    /// Its inventory entry, where ownership is an inventory.
    pub entry: Option<&'a Entry>,
    /// The plan records entries for declared objects (an inventory, kept or new).
    pub records: bool,
}

impl<'a> Ownership<'a> {
    /// The ownership a state file gives: its inventory when trusted, else why not.
    pub fn of(loaded: &'a Loaded) -> Ownership<'a> {
        match loaded {
            Loaded::Ok(inventory) => Ownership::Inventory(inventory),
            Loaded::Missing => Ownership::Untrusted(crate::inventory::NO_INVENTORY),
            Loaded::Unusable(why) => Ownership::Untrusted(why),
        }
    }

    /// The trusted inventory, if ownership is one.
    pub fn inventory(&self) -> Option<&'a Inventory> {
        match self {
            Ownership::Inventory(inventory) => Some(inventory),
            _ => None,
        }
    }

    /// Why prune cannot rely on what is owned, when it cannot.
    pub fn untrusted(&self) -> Option<&'a str> {
        match self {
            Ownership::Untrusted(why) => Some(why),
            _ => None,
        }
    }

    pub(super) fn declared(&self, kind: Kind, key: &str) -> Held<'a> {
        match self {
            Ownership::Inventory(inventory) => {
                let entry = inventory.get(kind, key);
                Held {
                    owned: entry.is_some(),
                    entry,
                    records: true,
                }
            }
            Ownership::Untrusted(_) => Held {
                owned: false,
                entry: None,
                records: true,
            },
            Ownership::Declared { .. } => Held {
                owned: true,
                entry: None,
                records: false,
            },
        }
    }

    /// An undeclared live object: whether it is ours, and whether it was declared
    /// `deletionPolicy: Orphan` (to outlive its manifest, in mirror mode too).
    pub(super) fn undeclared(&self, kind: Kind, key: &str) -> (bool, bool) {
        match self {
            Ownership::Inventory(inventory) => {
                let entry = inventory.get(kind, key);
                (
                    entry.is_some_and(|e| !e.orphan),
                    entry.is_some_and(|e| e.orphan),
                )
            }
            Ownership::Untrusted(_) => (false, false),
            Ownership::Declared { deleting } => {
                // Asked of every undeclared live object (all of Permit that no resource
                // declares); the lookup copies the key, so the usual empty set is not searched.
                let ours = !deleting.is_empty() && deleting.contains(&(kind, key.to_string()));
                (ours, false)
            }
        }
    }

    /// Whether ownership records `(kind, key)` (an inventory entry): what goes stale once the
    /// object is neither declared nor in Permit.
    pub(super) fn records(&self, kind: Kind, key: &str) -> bool {
        self.inventory().is_some_and(|i| i.contains(kind, key))
    }
}
