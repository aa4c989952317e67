//! Relationship tuples (`subject/relation/object`): bulk create (not idempotent: Permit refuses
//! the whole call when one tuple exists, so a failed chunk is settled by re-reading the tuples),
//! bulk delete. Tuples have no update: a changed tenant is a delete and a create.

use super::super::body;
use super::super::strategy::{Single, create};
use super::{Adapter, BulkCall, Found, Recovery};
use crate::kinds::{Kind, tuple_key};
use crate::model::{Obj, Tuple};
use crate::permit::{Call, PermitClient, PermitError};
use crate::plan::{Action, Op};
use permit_api::endpoint as ep;
use permit_api::request::TupleIdents;
use std::collections::BTreeSet;

pub struct Tuples;

/// The tuple an op names: the desired one, else the live one, else its key.
fn tuple(op: &Op) -> Tuple {
    match op.desired.as_deref().or(op.live.as_deref()) {
        Some(Obj::Tuple(t)) => t.clone(),
        _ => {
            let mut it = op.key.splitn(3, '/');
            let mut next = || it.next().unwrap_or_default().to_string();
            Tuple {
                subject: next(),
                relation: next(),
                object: next(),
                tenant: String::new(),
            }
        }
    }
}

/// The keys of every tuple Permit holds (a failed bulk create is settled against them).
async fn tuple_keys(client: &PermitClient) -> Result<BTreeSet<String>, PermitError> {
    let keys = client
        .list_map(&ep::TUPLES_LIST, "list relationship tuples", |v| {
            let text = |f: &str| v.get(f).and_then(|s| s.as_str()).map(str::to_string);
            Some(tuple_key(
                &text("subject")?,
                &text("relation")?,
                &text("object")?,
            ))
        })
        .await?;
    Ok(keys.into_iter().collect())
}

impl Adapter for Tuples {
    fn kind(&self) -> Kind {
        Kind::PermitRelationshipTuple
    }

    fn label(&self) -> &'static str {
        "relationship tuples"
    }

    fn bulk_write(&self) -> Option<BulkCall> {
        Some(BulkCall {
            actions: &[Action::Create],
            size: |b| b.tuples,
            call: |client, chunk| {
                let tuples: Vec<Tuple> = chunk.iter().map(|op| tuple(op)).collect();
                let bodies: Vec<_> = tuples.iter().map(body::tuple_create).collect();
                client
                    .to(
                        &ep::TUPLES_BULK_CREATE,
                        &[],
                        format!("bulk create of {} relationship tuples", chunk.len()),
                    )
                    .body(body::Operations { operations: bodies })
            },
            recovery: Recovery::Settle(|client, chunk| {
                Box::pin(async move {
                    let live = tuple_keys(client).await?;
                    let found: Found = chunk
                        .iter()
                        .map(|op| live.contains(&op.key).then_some(Ok(())))
                        .collect();
                    Ok(found)
                })
            }),
        })
    }

    fn bulk_delete(&self) -> Option<BulkCall> {
        Some(BulkCall {
            actions: &[Action::Delete],
            size: |b| b.tuples,
            call: |client, chunk| {
                let tuples: Vec<Tuple> = chunk.iter().map(|op| tuple(op)).collect();
                let idents = tuples.iter().map(body::tuple_delete).collect();
                client
                    .to(
                        &ep::TUPLES_BULK_DELETE,
                        &[],
                        format!("bulk delete of {} relationship tuples", chunk.len()),
                    )
                    .body(TupleIdents { idents })
            },
            recovery: Recovery::Singles,
        })
    }

    fn write<'a>(&'a self, client: &'a PermitClient, op: &'a Op) -> Single<'a> {
        Box::pin(async move {
            let t = tuple(op);
            if op.action == Action::Update {
                match client.call(self.delete(client, op)).await {
                    Err(e) if !e.is_not_found() => return Err(e),
                    _ => {}
                }
            }
            let call = client
                .to(&ep::TUPLE_CREATE, &[], op.subject())
                .body(body::tuple_create(&t));
            // One that exists already is as good as made.
            create(client, call).await.map(drop)
        })
    }

    fn delete(&self, client: &PermitClient, op: &Op) -> Call {
        let t = tuple(op);
        client
            .to(&ep::TUPLE_DELETE, &[], op.subject())
            .body(body::tuple_delete(&t))
    }
}
