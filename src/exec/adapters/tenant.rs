//! Tenants: new tenants through the bulk create (not idempotent: settled by re-reading the
//! tenants), updates and creates that meet 409 by PATCH.

use super::super::body;
use super::super::strategy::{Outcome, Single, create};
use super::{Adapter, BulkCall, Found, Recovery, delete_by_idents, desired};
use crate::kinds::Kind;
use crate::model::{Obj, Tenant};
use crate::permit::{Call, PermitClient, live as read};
use crate::plan::{Action, Op, TenantField, diff, field};
use permit_api::endpoint as ep;

pub struct Tenants;

fn tenant(op: &Op) -> &Tenant {
    match desired(op) {
        Obj::Tenant(t) => t,
        _ => unreachable!("tenant op"),
    }
}

async fn patch(client: &PermitClient, op: &Op, t: &Tenant, fields: &[TenantField]) -> Outcome {
    let call = client
        .to(&ep::TENANT_PATCH, &[&t.key], op.subject())
        .body(body::tenant_patch(t, fields));
    client.call(call).await.map(drop)
}

impl Adapter for Tenants {
    fn kind(&self) -> Kind {
        Kind::PermitTenant
    }

    fn label(&self) -> &'static str {
        "tenants"
    }

    fn bulk_write(&self) -> Option<BulkCall> {
        Some(BulkCall {
            actions: &[Action::Create],
            size: |b| b.tenants,
            call: |client, chunk| {
                let ops: Vec<_> = chunk
                    .iter()
                    .map(|op| body::tenant_create(tenant(op)))
                    .collect();
                client
                    .to(
                        &ep::TENANTS_BULK_CREATE,
                        &[],
                        format!("bulk create of {} tenants", chunk.len()),
                    )
                    .body(body::Operations { operations: ops })
            },
            recovery: Recovery::Settle(|client, chunk| {
                Box::pin(async move {
                    let live = read::read_tenants(client).await?;
                    let mut found: Found = Vec::with_capacity(chunk.len());
                    for op in chunk {
                        let t = tenant(op);
                        found.push(match live.get(&t.key) {
                            Some(have) => {
                                let fields: Vec<TenantField> =
                                    field::fields_of(&diff::tenant(t, have));
                                Some(if fields.is_empty() {
                                    Ok(())
                                } else {
                                    patch(client, op, t, &fields).await
                                })
                            }
                            None => None,
                        });
                    }
                    Ok(found)
                })
            }),
        })
    }

    fn bulk_delete(&self) -> Option<BulkCall> {
        Some(BulkCall {
            actions: &[Action::Delete],
            size: |b| b.tenants,
            call: |client, chunk| {
                delete_by_idents(client, &ep::TENANTS_BULK_DELETE, "tenants", chunk)
            },
            recovery: Recovery::Singles,
        })
    }

    fn write<'a>(&'a self, client: &'a PermitClient, op: &'a Op) -> Single<'a> {
        Box::pin(async move {
            let t = tenant(op);
            if op.action != Action::Create {
                return patch(client, op, t, &op.fields()).await;
            }
            let call = client
                .to(&ep::TENANT_CREATE, &[], op.subject())
                .body(body::tenant_create(t));
            if create(client, call).await? {
                return Ok(());
            }
            patch(client, op, t, TenantField::ALL).await
        })
    }

    fn delete(&self, client: &PermitClient, op: &Op) -> Call {
        client.to(&ep::TENANT_DELETE, &[&op.key], op.subject())
    }
}
