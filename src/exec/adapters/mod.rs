//! One adapter per Permit object type: its stage, its bulk calls and their sizes, its single
//! calls and bodies. The strategy ([`super::strategy`]) runs them all alike.

mod assignment;
mod derivation;
mod instance;
mod relation;
mod resource;
mod resource_role;
mod role;
mod tenant;
mod tuple;
mod user;

use super::BatchSizes;
use super::strategy::{Outcome, Single};
use crate::kinds::Kind;
use crate::model::Obj;
use crate::permit::{Call, PermitClient, PermitError};
use crate::plan::{Action, Op};
use futures::future::BoxFuture;
use permit_api::Endpoint;

/// The object types in stage order: creates and updates run in this order, because later types
/// refer to earlier ones; deletions run in reverse. One line per object type.
pub const ADAPTERS: &[&dyn Adapter] = &[
    &resource::Resources,
    &relation::Relations,
    &resource_role::ResourceRoles,
    &derivation::Derivations,
    &role::Roles,
    &tenant::Tenants,
    &user::Users,
    &instance::Instances,
    &tuple::Tuples,
    &assignment::Assignments,
];

/// What the strategy needs to know of one object type.
pub trait Adapter: Sync {
    fn kind(&self) -> Kind;

    /// What progress shows while its creates and updates run (`role assignments`).
    fn label(&self) -> &'static str;

    /// The bulk call its creates or updates go through, if Permit has one.
    fn bulk_write(&self) -> Option<BulkCall> {
        None
    }

    /// The bulk call its deletions go through, if Permit has one.
    fn bulk_delete(&self) -> Option<BulkCall> {
        None
    }

    /// The groups its creates and updates run in, one after the other (roles: by depth, so a
    /// role is written after the roles it extends).
    fn waves<'o>(&self, ops: Vec<&'o Op>) -> Vec<Vec<&'o Op>> {
        vec![ops]
    }

    /// One create or update by single calls: for a create that meets 409, converging what
    /// exists.
    fn write<'a>(&'a self, client: &'a PermitClient, op: &'a Op) -> Single<'a>;

    /// The single delete of one object (the strategy counts a 404 as deleted).
    fn delete(&self, client: &PermitClient, op: &Op) -> Call;
}

/// A bulk endpoint of an object type.
#[derive(Clone, Copy)]
pub struct BulkCall {
    /// The actions whose ops a bulk write takes (the others go one by one); a bulk delete takes
    /// every deletion.
    pub actions: &'static [Action],
    /// Permit's item limit per call.
    pub size: fn(&BatchSizes) -> usize,
    /// The call for a chunk of ops.
    pub call: fn(&PermitClient, &[&Op]) -> Call,
    /// What follows when it fails.
    pub recovery: Recovery,
}

/// How a failed bulk call is recovered.
#[derive(Clone, Copy)]
pub enum Recovery {
    /// The call may be repeated (the client did): single calls tell which op is at fault.
    Singles,
    /// The call is not idempotent: Permit is re-read and each op of the chunk is found (and
    /// converged) or missing; the missing get one more bulk call on a conflict or an unknown
    /// outcome, then single calls.
    Settle(Settle),
}

/// Re-reads Permit for a chunk whose bulk call failed: each op found (and converged) or missing.
pub type Settle =
    for<'a> fn(&'a PermitClient, &'a [&'a Op]) -> BoxFuture<'a, Result<Found, PermitError>>;

/// Per op of a re-read chunk, in its order: the outcome when Permit holds it, `None` when missing.
pub type Found = Vec<Option<Outcome>>;

/// A bulk delete by key (`{"idents": [...]}`), where `what` names the objects (`users`) in
/// messages.
fn delete_by_idents(
    client: &PermitClient,
    endpoint: &'static Endpoint,
    what: &str,
    chunk: &[&Op],
) -> Call {
    let idents: Vec<&str> = chunk.iter().map(|o| o.key.as_str()).collect();
    client
        .to(
            endpoint,
            &[],
            format!("bulk delete of {} {what}", chunk.len()),
        )
        .body(super::body::idents(idents))
}

/// The declared object of a create or update.
fn desired(op: &Op) -> &Obj {
    op.desired
        .as_deref()
        .expect("create and update ops carry the desired object")
}

/// The object Permit holds, carried by updates.
fn live(op: &Op) -> Option<&Obj> {
    op.live.as_deref()
}

#[cfg(test)]
mod stage_order_tests {
    use super::ADAPTERS;
    use crate::model::SYNCED_KINDS;

    /// The executor's stages are the planner's kinds in the planner's order: the order is
    /// defined twice (the planner's ops and the executor's stages), and must not drift.
    #[test]
    fn adapters_run_in_the_planners_kind_order() {
        let kinds: Vec<_> = ADAPTERS.iter().map(|a| a.kind()).collect();
        assert_eq!(kinds, SYNCED_KINDS);
    }
}
