//! Roles: new roles through the bulk upsert, in waves by depth (a role that extends another role
//! of the plan waits for it); updates PATCH the plain fields and change permissions by adding and
//! removing (as Permit advises for large permission sets).

use super::super::body;
use super::super::strategy::{Outcome, Single, create};
use super::{Adapter, BulkCall, Recovery, desired, live};
use crate::kinds::Kind;
use crate::model::{Obj, Role};
use crate::permit::{Call, PermitClient, PermitError, live as read};
use crate::plan::{Action, Op, RoleField, diff, field};
use permit_api::endpoint as ep;
use std::collections::{BTreeMap, BTreeSet};

pub struct Roles;

impl Adapter for Roles {
    fn kind(&self) -> Kind {
        Kind::PermitRole
    }

    fn label(&self) -> &'static str {
        "roles"
    }

    /// New roles through the bulk upsert (`PUT bulk/roles`): one call instead of one schema write
    /// each, and schema writes are Permit's tightest limit (40/min). An upsert may be repeated, so
    /// the client retries it; if it still fails, single creates name the role at fault.
    fn bulk_write(&self) -> Option<BulkCall> {
        Some(BulkCall {
            actions: &[Action::Create],
            size: |b| b.roles,
            call: |client, chunk| {
                let bodies: Vec<_> = chunk
                    .iter()
                    .map(|op| match desired(op) {
                        Obj::Role(r) => body::role_create(r),
                        _ => unreachable!("role op"),
                    })
                    .collect();
                client
                    .to(
                        &ep::ROLES_BULK_UPSERT,
                        &[],
                        format!("bulk upsert of {} roles", chunk.len()),
                    )
                    .body(body::Operations { operations: bodies })
            },
            recovery: Recovery::Singles,
        })
    }

    fn waves<'o>(&self, ops: Vec<&'o Op>) -> Vec<Vec<&'o Op>> {
        waves_by_extends(ops, |op| match op.desired.as_deref() {
            Some(Obj::Role(r)) => r.extends.iter().cloned().collect(),
            _ => Vec::new(),
        })
    }

    fn write<'a>(&'a self, client: &'a PermitClient, op: &'a Op) -> Single<'a> {
        Box::pin(async move {
            let Obj::Role(want) = desired(op) else {
                unreachable!("role op")
            };
            if op.action != Action::Create {
                let Some(Obj::Role(have)) = live(op) else {
                    unreachable!("updates carry the live object")
                };
                return update(client, op, want, have, &op.fields()).await;
            }
            let call = client
                .to(&ep::ROLE_CREATE, &[], op.subject())
                .body(body::role_create(want));
            if create(client, call).await? {
                return Ok(());
            }
            // It exists (someone else's, or our own earlier attempt): converge it.
            let v = client
                .call(client.to(&ep::ROLE_GET, &[&want.key], op.subject()))
                .await?;
            let have = read::role(&v).ok_or_else(|| PermitError::Decode {
                object: op.subject(),
                method: ep::ROLE_GET.method.as_str().into(),
                path: ep::ROLE_GET.fill(&[&want.key]),
                message: "no role in the answer".into(),
            })?;
            let diffs = diff::role(want, &have);
            update(client, op, want, &have, &field::fields_of(&diffs)).await
        })
    }

    fn delete(&self, client: &PermitClient, op: &Op) -> Call {
        client.to(&ep::ROLE_DELETE, &[&op.key], op.subject())
    }
}

/// Ops in waves by depth: an op waits for the ops of the plan whose keys `parents` names (the
/// roles a role extends).
pub(super) fn waves_by_extends(
    ops: Vec<&Op>,
    parents: impl Fn(&Op) -> Vec<String>,
) -> Vec<Vec<&Op>> {
    let in_plan: BTreeMap<&str, &Op> = ops.iter().map(|o| (o.key.as_str(), *o)).collect();
    let mut depth: BTreeMap<&str, usize> = BTreeMap::new();
    for key in in_plan.keys() {
        depth_of(key, &in_plan, &parents, &mut depth, &mut BTreeSet::new());
    }
    let max = depth.values().copied().max().unwrap_or(0);
    let mut waves = vec![Vec::new(); max + 1];
    for op in ops {
        waves[depth.get(op.key.as_str()).copied().unwrap_or(0)].push(op);
    }
    waves
}

/// A role's depth among the roles of the plan: 0 when it extends none of them.
fn depth_of<'k>(
    key: &'k str,
    in_plan: &BTreeMap<&'k str, &'k Op>,
    parents: &dyn Fn(&Op) -> Vec<String>,
    memo: &mut BTreeMap<&'k str, usize>,
    seen: &mut BTreeSet<&'k str>,
) -> usize {
    if let Some(d) = memo.get(key) {
        return *d;
    }
    if !seen.insert(key) {
        return 0; // a cycle: Permit will refuse it, and say so
    }
    let mut d = 0;
    if let Some(op) = in_plan.get(key) {
        for parent in parents(op) {
            if let Some((p, _)) = in_plan.get_key_value(parent.as_str()) {
                d = d.max(1 + depth_of(p, in_plan, parents, memo, seen));
            }
        }
    }
    memo.insert(key, d);
    d
}

/// PATCHes the plain fields; permissions change incrementally (add, remove).
async fn update(
    client: &PermitClient,
    op: &Op,
    want: &Role,
    have: &Role,
    fields: &[RoleField],
) -> Outcome {
    let plain: Vec<RoleField> = fields
        .iter()
        .copied()
        .filter(|f| *f != RoleField::Permissions)
        .collect();
    if !plain.is_empty() {
        let call = client
            .to(&ep::ROLE_PATCH, &[&want.key], op.subject())
            .body(body::role_patch(want, &plain));
        client.call(call).await?;
    }
    let add: Vec<&String> = want.permissions.difference(&have.permissions).collect();
    let remove: Vec<&String> = have.permissions.difference(&want.permissions).collect();
    if !add.is_empty() {
        // Adding permissions already present is skipped by Permit, so it may be repeated.
        let call = client
            .to(&ep::ROLE_ADD_PERMISSIONS, &[&want.key], op.subject())
            .body(body::permissions(&add))
            .idempotent(true);
        client.call(call).await?;
    }
    if !remove.is_empty() {
        let call = client
            .to(&ep::ROLE_REMOVE_PERMISSIONS, &[&want.key], op.subject())
            .body(body::permissions(&remove));
        client.call(call).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn create(key: &str, extends: &[&str]) -> Op {
        Op {
            index: 0,
            kind: Kind::PermitRole,
            key: key.into(),
            action: Action::Create,
            adopted: false,
            cascaded_by: None,
            diffs: Vec::new(),
            origin: None,
            desired: Some(Box::new(Obj::Role(Role {
                key: key.into(),
                name: key.into(),
                description: None,
                permissions: BTreeSet::new(),
                extends: extends.iter().map(|e| e.to_string()).collect(),
                attributes: None,
            }))),
            live: None,
            record: None,
        }
    }

    #[test]
    fn a_role_is_written_after_the_roles_of_the_plan_it_extends() {
        let ops = [
            create("admin", &["editor"]),
            create("editor", &["viewer", "outside"]),
            create("viewer", &[]),
            create("auditor", &["outside"]),
            // A cycle: Permit refuses it, and says so; it must not hang the waves.
            create("a", &["b"]),
            create("b", &["a"]),
        ];
        let waves: Vec<Vec<&str>> = Roles
            .waves(ops.iter().collect())
            .into_iter()
            .map(|w| w.into_iter().map(|o| o.key.as_str()).collect())
            .collect();
        assert_eq!(waves[0], ["viewer", "auditor"]);
        // The cycle is cut where it is first met (`a`, first in key order).
        assert_eq!(waves[1], ["editor", "b"]);
        assert_eq!(waves[2], ["admin", "a"]);
        assert_eq!(waves.len(), 3);
    }
}
