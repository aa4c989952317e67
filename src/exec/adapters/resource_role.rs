//! Resource roles (`resource#role`): single calls (schema writes; Permit has no bulk for them),
//! in waves by `extends` within their resource; updates PATCH the plain fields, change
//! permissions by adding and removing, and set the derivation option through its own route.

use super::super::body;
use super::super::strategy::{Outcome, Single, create};
use super::role::waves_by_extends;
use super::{Adapter, desired, live};
use crate::kinds::{Kind, part_key};
use crate::model::{Obj, ResourceRole};
use crate::permit::{Call, PermitClient};
use crate::plan::{Action, Op, ResourceRoleField};
use permit_api::endpoint as ep;
use permit_api::request::DerivationConditions;

pub struct ResourceRoles;

fn role(op: &Op) -> &ResourceRole {
    match desired(op) {
        Obj::ResourceRole(r) => r,
        _ => unreachable!("resource role op"),
    }
}

/// `(resource, role)` of an op's key, `resource#role`.
fn parts(key: &str) -> (&str, &str) {
    key.split_once('#').unwrap_or(("", key))
}

impl Adapter for ResourceRoles {
    fn kind(&self) -> Kind {
        Kind::ResourceRole
    }

    fn label(&self) -> &'static str {
        "resource roles"
    }

    fn waves<'o>(&self, ops: Vec<&'o Op>) -> Vec<Vec<&'o Op>> {
        waves_by_extends(ops, |op| match op.desired.as_deref() {
            Some(Obj::ResourceRole(r)) => r
                .extends
                .iter()
                .map(|parent| part_key(&r.resource, parent))
                .collect(),
            _ => Vec::new(),
        })
    }

    fn write<'a>(&'a self, client: &'a PermitClient, op: &'a Op) -> Single<'a> {
        Box::pin(async move {
            let want = role(op);
            if op.action == Action::Create {
                let call = client
                    .to(&ep::RESOURCE_ROLE_CREATE, &[&want.resource], op.subject())
                    .body(body::resource_role_create(want));
                if create(client, call).await? {
                    if want.no_direct_roles_on_object == Some(true) {
                        conditions(client, op, want).await?;
                    }
                    return Ok(());
                }
                // It exists (someone else's, or our own earlier attempt): write every field.
                return update(client, op, want, None, ResourceRoleField::ALL).await;
            }
            let have = match live(op) {
                Some(Obj::ResourceRole(r)) => Some(r),
                _ => None,
            };
            update(client, op, want, have, &op.fields()).await
        })
    }

    fn delete(&self, client: &PermitClient, op: &Op) -> Call {
        let (resource, key) = parts(&op.key);
        client.to(&ep::RESOURCE_ROLE_DELETE, &[resource, key], op.subject())
    }
}

async fn conditions(client: &PermitClient, op: &Op, want: &ResourceRole) -> Outcome {
    let call = client
        .to(
            &ep::DERIVATION_CONDITIONS,
            &[&want.resource, &want.key],
            op.subject(),
        )
        .body(DerivationConditions {
            no_direct_roles_on_object: want.no_direct_roles_on_object.unwrap_or(false),
        })
        .idempotent(true);
    client.call(call).await.map(drop)
}

/// PATCHes the plain fields; permissions change incrementally against `have` (all of them
/// added when the live role is not known: adding present ones is skipped by Permit).
async fn update(
    client: &PermitClient,
    op: &Op,
    want: &ResourceRole,
    have: Option<&ResourceRole>,
    fields: &[ResourceRoleField],
) -> Outcome {
    use ResourceRoleField as F;
    let path = [want.resource.as_str(), want.key.as_str()];
    let plain: Vec<F> = fields
        .iter()
        .copied()
        .filter(|f| matches!(f, F::Name | F::Description | F::Extends | F::Attributes))
        .collect();
    if !plain.is_empty() {
        let call = client
            .to(&ep::RESOURCE_ROLE_PATCH, &path, op.subject())
            .body(body::resource_role_patch(want, &plain));
        client.call(call).await?;
    }
    if fields.contains(&F::Permissions) {
        let none = Default::default();
        let had = have.map_or(&none, |h| &h.permissions);
        let add: Vec<&String> = want.permissions.difference(had).collect();
        let remove: Vec<&String> = had.difference(&want.permissions).collect();
        if !add.is_empty() {
            let call = client
                .to(&ep::RESOURCE_ROLE_ADD_PERMISSIONS, &path, op.subject())
                .body(body::permissions(&add))
                .idempotent(true);
            client.call(call).await?;
        }
        if !remove.is_empty() {
            let call = client
                .to(&ep::RESOURCE_ROLE_REMOVE_PERMISSIONS, &path, op.subject())
                .body(body::permissions(&remove));
            client.call(call).await?;
        }
    }
    if fields.contains(&F::NoDirectRolesOnObject) && want.no_direct_roles_on_object.is_some() {
        conditions(client, op, want).await?;
    }
    Ok(())
}
