//! Resource instances (`resource:key`): creates and updates through the bulk upsert (it may be
//! repeated, so the client retries it; if it still fails, single calls name the instance at
//! fault), deletions through the bulk delete. A changed tenant is a delete and a create: Permit
//! does not move an instance between tenants.

use super::super::body;
use super::super::strategy::{Single, create};
use super::{Adapter, BulkCall, Recovery, delete_by_idents, desired};
use crate::kinds::Kind;
use crate::model::Obj;
use crate::permit::{Call, PermitClient};
use crate::plan::{Action, InstanceField, Op};
use permit_api::endpoint as ep;
use permit_api::request::InstancePatch;

pub struct Instances;

impl Adapter for Instances {
    fn kind(&self) -> Kind {
        Kind::PermitResourceInstance
    }

    fn label(&self) -> &'static str {
        "resource instances"
    }

    fn bulk_write(&self) -> Option<BulkCall> {
        Some(BulkCall {
            actions: &[Action::Create],
            size: |b| b.instances,
            call: |client, chunk| {
                let bodies: Vec<_> = chunk
                    .iter()
                    .map(|op| match desired(op) {
                        Obj::Instance(i) => body::instance_create(i),
                        _ => unreachable!("instance op"),
                    })
                    .collect();
                client
                    .to(
                        &ep::INSTANCES_BULK_UPSERT,
                        &[],
                        format!("bulk upsert of {} resource instances", chunk.len()),
                    )
                    .body(body::Operations { operations: bodies })
                    .idempotent(true)
            },
            recovery: Recovery::Singles,
        })
    }

    fn bulk_delete(&self) -> Option<BulkCall> {
        Some(BulkCall {
            actions: &[Action::Delete],
            size: |b| b.instances,
            call: |client, chunk| {
                delete_by_idents(
                    client,
                    &ep::INSTANCES_BULK_DELETE,
                    "resource instances",
                    chunk,
                )
            },
            recovery: Recovery::Singles,
        })
    }

    fn write<'a>(&'a self, client: &'a PermitClient, op: &'a Op) -> Single<'a> {
        Box::pin(async move {
            let Obj::Instance(i) = desired(op) else {
                unreachable!("instance op")
            };
            let moved = op.changed(InstanceField::Tenant);
            if op.action == Action::Update && !moved {
                let call = client
                    .to(&ep::INSTANCE_PATCH, &[&op.key], op.subject())
                    .body(InstancePatch {
                        attributes: i.attributes.as_ref(),
                    });
                return client.call(call).await.map(drop);
            }
            if moved {
                match client.call(self.delete(client, op)).await {
                    Err(e) if !e.is_not_found() => return Err(e),
                    _ => {}
                }
            }
            let call = client
                .to(&ep::INSTANCE_CREATE, &[], op.subject())
                .body(body::instance_create(i));
            if create(client, call).await? {
                return Ok(());
            }
            // It exists: its attributes as declared.
            let call = client
                .to(&ep::INSTANCE_PATCH, &[&op.key], op.subject())
                .body(InstancePatch {
                    attributes: i.attributes.as_ref(),
                });
            client.call(call).await.map(drop)
        })
    }

    fn delete(&self, client: &PermitClient, op: &Op) -> Call {
        client.to(&ep::INSTANCE_DELETE, &[&op.key], op.subject())
    }
}
