//! Users: creates and updates alike through the bulk upsert (`PUT bulk/users`): idempotent, so
//! the client may repeat it, and one call covers up to 3,000 users. One bad user fails the batch:
//! single upserts then tell which.

use super::super::body;
use super::super::strategy::Single;
use super::{Adapter, BulkCall, Recovery, delete_by_idents, desired, live};
use crate::kinds::Kind;
use crate::model::{Obj, User};
use crate::permit::{Call, PermitClient};
use crate::plan::{Action, Op};
use permit_api::endpoint as ep;

pub struct Users;

/// The user as the upsert sends it: the live user with the declared fields laid over it.
fn upsert(op: &Op) -> body::UserUpsert<'_> {
    let Obj::User(want) = desired(op) else {
        unreachable!("user op")
    };
    let have: Option<&User> = match live(op) {
        Some(Obj::User(u)) => Some(u),
        _ => None,
    };
    body::user_upsert(want, have)
}

impl Adapter for Users {
    fn kind(&self) -> Kind {
        Kind::PermitUser
    }

    fn label(&self) -> &'static str {
        "users"
    }

    fn bulk_write(&self) -> Option<BulkCall> {
        Some(BulkCall {
            actions: &[Action::Create, Action::Update],
            size: |b| b.users,
            call: |client, chunk| {
                let bodies: Vec<_> = chunk.iter().map(|op| upsert(op)).collect();
                client
                    .to(
                        &ep::USERS_BULK_UPSERT,
                        &[],
                        format!("bulk upsert of {} users", chunk.len()),
                    )
                    .body(body::Operations { operations: bodies })
            },
            recovery: Recovery::Singles,
        })
    }

    fn bulk_delete(&self) -> Option<BulkCall> {
        Some(BulkCall {
            actions: &[Action::Delete],
            size: |b| b.users,
            call: |client, chunk| delete_by_idents(client, &ep::USERS_BULK_DELETE, "users", chunk),
            recovery: Recovery::Singles,
        })
    }

    fn write<'a>(&'a self, client: &'a PermitClient, op: &'a Op) -> Single<'a> {
        Box::pin(async move {
            let call = client
                .to(&ep::USER_UPSERT, &[&op.key], op.subject())
                .body(upsert(op));
            client.call(call).await.map(drop)
        })
    }

    fn delete(&self, client: &PermitClient, op: &Op) -> Call {
        client.to(&ep::USER_DELETE, &[&op.key], op.subject())
    }
}
