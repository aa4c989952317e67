//! Resources: single calls only (schema writes), creates that meet 409 patched whole.

use super::super::body;
use super::super::strategy::{Single, create};
use super::{Adapter, desired};
use crate::kinds::Kind;
use crate::model::{Obj, Resource};
use crate::permit::{Call, PermitClient};
use crate::plan::{Action, Op, ResourceField};
use permit_api::endpoint as ep;

pub struct Resources;

fn patch(client: &PermitClient, op: &Op, r: &Resource, fields: &[ResourceField]) -> Call {
    client
        .to(&ep::RESOURCE_PATCH, &[&r.key], op.subject())
        .body(body::resource_patch(r, fields))
}

impl Adapter for Resources {
    fn kind(&self) -> Kind {
        Kind::PermitResource
    }

    fn label(&self) -> &'static str {
        "resources"
    }

    fn write<'a>(&'a self, client: &'a PermitClient, op: &'a Op) -> Single<'a> {
        Box::pin(async move {
            let Obj::Resource(r) = desired(op) else {
                unreachable!("resource op")
            };
            if op.action == Action::Create {
                let call = client
                    .to(&ep::RESOURCE_CREATE, &[], op.subject())
                    .body(body::resource_create(r));
                if create(client, call).await? {
                    return Ok(());
                }
                return client
                    .call(patch(client, op, r, ResourceField::ALL))
                    .await
                    .map(drop);
            }
            client
                .call(patch(client, op, r, &op.fields()))
                .await
                .map(drop)
        })
    }

    fn delete(&self, client: &PermitClient, op: &Op) -> Call {
        client.to(&ep::RESOURCE_DELETE, &[&op.key], op.subject())
    }
}
