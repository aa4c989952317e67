//! What a plan warns of: typed, so that callers decide on the kind of warning, never on its text.

use crate::kinds::Kind;
use serde::{Serialize, Serializer};
use std::fmt;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Warning {
    /// No longer declared, to be deleted, but declared objects still refer to it: kept.
    KeptForReferences { kind: Kind, key: String },
    /// Deleting the object takes `count` objects with it that the plan does not delete (Permit
    /// cascades: role assignments, an instance's tuples, a resource's roles...), `example` one of
    /// them (of kind `example_kind`).
    CascadeDeletes {
        kind: Kind,
        key: String,
        count: usize,
        example: String,
        example_kind: Kind,
    },
    /// Permit has no update for the change (a relation's subject, a tuple's or an instance's
    /// tenant): the object is deleted and created again, and Permit deletes what goes with it.
    Recreated { kind: Kind, key: String },
    /// `--prune` asked for, but the inventory cannot be trusted.
    PruneSkipped { why: String },
    /// Owned objects no longer declared, left because prune is off.
    OwnedUndeclared { count: usize },
}

impl Warning {
    /// Whether the warning leaves nothing undone that a change elsewhere could make due (the
    /// watcher then needs no full re-plan): owned objects left without `--prune` stay left; an
    /// object kept for references, a skipped prune or a cascade may change with other objects.
    pub fn settled(&self) -> bool {
        matches!(self, Warning::OwnedUndeclared { .. })
    }
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Warning::KeptForReferences { kind, key } => write!(
                f,
                "{kind} {key} is no longer declared but declared objects still refer to it; \
                 it is kept"
            ),
            Warning::CascadeDeletes {
                kind,
                key,
                count,
                example,
                example_kind: Kind::RoleAssignment,
            } => write!(
                f,
                "deleting {kind} {key} also deletes {count} role assignment(s) on it that this \
                 plan does not (Permit deletes them with it), e.g. {example}"
            ),
            Warning::CascadeDeletes {
                kind,
                key,
                count,
                example,
                example_kind,
            } => write!(
                f,
                "deleting {kind} {key} also deletes {count} object(s) with it that this plan \
                 does not (Permit deletes them with it), e.g. {example_kind} {example}"
            ),
            Warning::Recreated { kind, key } => {
                let taken = match kind {
                    Kind::ResourceRelation => {
                        "its relationship tuples and the derivations through it"
                    }
                    Kind::PermitResourceInstance => "its relationship tuples and role assignments",
                    _ => "nothing else",
                };
                write!(
                    f,
                    "{kind} {key} has no update in Permit: it is deleted and created again, and \
                     Permit deletes {taken} with it (declared ones are written again on the next sync)"
                )
            }
            Warning::PruneSkipped { why } => write!(f, "prune skipped: {why}"),
            Warning::OwnedUndeclared { count } => write!(
                f,
                "{count} object(s) managed by permit-sync are no longer declared; \
                 run with --prune to delete them"
            ),
        }
    }
}

/// Written as its sentence, as plans' JSON always had them.
impl Serialize for Warning {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}
