//! Role assignments: bulk assign (not idempotent: settled by re-reading the assignments), bulk
//! unassign; an assignment that exists is as good as made, one that is gone as good as removed.

use super::super::body;
use super::super::strategy::{Single, create};
use super::{Adapter, BulkCall, Found, Recovery};
use crate::kinds::Kind;
use crate::permit::{Call, PermitClient, live as read};
use crate::plan::{Action, Op};
use permit_api::endpoint as ep;

pub struct Assignments;

/// The assignment an op names (its key holds all of it), as every call's body takes it.
fn assignment(op: &Op) -> permit_api::request::Assign<'_> {
    body::assign(op.assignment_ref().expect("assignment op"))
}

impl Adapter for Assignments {
    fn kind(&self) -> Kind {
        Kind::RoleAssignment
    }

    fn label(&self) -> &'static str {
        "role assignments"
    }

    fn bulk_write(&self) -> Option<BulkCall> {
        Some(BulkCall {
            actions: &[Action::Create, Action::Update],
            size: |b| b.assignments,
            call: |client, chunk| {
                let bodies: Vec<_> = chunk.iter().map(|op| assignment(op)).collect();
                client
                    .to(
                        &ep::ROLE_ASSIGNMENTS_BULK_ASSIGN,
                        &[],
                        format!("bulk assign of {} role assignments", chunk.len()),
                    )
                    .body(bodies)
            },
            recovery: Recovery::Settle(|client, chunk| {
                Box::pin(async move {
                    let live = read::read_assignments(client).await?;
                    let found: Found = chunk
                        .iter()
                        .map(|op| live.contains_key(&op.key).then_some(Ok(())))
                        .collect();
                    Ok(found)
                })
            }),
        })
    }

    fn bulk_delete(&self) -> Option<BulkCall> {
        Some(BulkCall {
            actions: &[Action::Delete],
            size: |b| b.assignments,
            call: |client, chunk| {
                let bodies: Vec<_> = chunk
                    .iter()
                    .filter_map(|op| op.assignment_ref())
                    .map(body::assign)
                    .collect();
                client
                    .to(
                        &ep::ROLE_ASSIGNMENTS_BULK_UNASSIGN,
                        &[],
                        format!("bulk unassign of {} role assignments", chunk.len()),
                    )
                    .body(bodies)
            },
            recovery: Recovery::Singles,
        })
    }

    fn write<'a>(&'a self, client: &'a PermitClient, op: &'a Op) -> Single<'a> {
        Box::pin(async move {
            let call = client
                .to(&ep::ROLE_ASSIGN, &[], op.subject())
                .body(assignment(op));
            // Already assigned is as good as assigned.
            create(client, call).await.map(drop)
        })
    }

    fn delete(&self, client: &PermitClient, op: &Op) -> Call {
        client
            .to(&ep::ROLE_UNASSIGN, &[], op.subject())
            .body(assignment(op))
    }
}
