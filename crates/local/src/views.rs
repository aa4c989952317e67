//! Response bodies: Permit's read models (`UserRead`, `TenantRead`, ...) as `permit_api::response`
//! types them, the same structs the client reads (permit-api.md §10).

mod rebac;
pub use rebac::*;

use super::input::Page;
use super::store::{
    Action, Assignment, InstanceAssignment, Listed, Resource, Role, Scope, Store, Tenant, User,
};
use axum::Json;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use permit_api::response::{self as wire, Str};
use serde::Serialize;
use std::borrow::Cow;
use uuid::Uuid;

/// An id as Permit emits it: 32 lowercase hex digits, no dashes (`"id": "5f0a…e1"` in the
/// responses captured in Permit's docs, `docs/api/examples/*.mdx`, and its SDKs' e2e logs;
/// permit-api.md "Corrections"). Paths take either form ([`crate::store::same_id`]).
pub fn sid(id: Uuid) -> String {
    id.simple().to_string()
}

fn id(id: Uuid) -> Option<Str<'static>> {
    Some(Str::from(sid(id)))
}

fn text(s: &str) -> Option<Str<'_>> {
    Some(Str::from(s))
}

fn opt(s: &Option<String>) -> Option<Str<'_>> {
    s.as_deref().map(Str::from)
}

/// A timestamp exactly as chrono's serde writes it (RFC 3339, `Z`).
fn stamp(t: &DateTime<Utc>) -> wire::Stamp<'static> {
    match serde_json::to_value(t) {
        Ok(serde_json::Value::String(s)) => Some(Str::from(s)),
        _ => None,
    }
}

/// `attributes` as Permit shows them: `null` when never set and empty.
fn shown(map: &wire::Attrs, set: bool) -> Option<Cow<'_, wire::Attrs>> {
    (set || !map.is_empty()).then_some(Cow::Borrowed(map))
}

pub fn user<'a>(store: &'a Store, u: &'a User) -> wire::UserRead<'a> {
    let roles = store.user_roles(u.id);
    // associated_tenants groups the user's roles by tenant, in first-seen order; instance roles
    // go in their instance's tenant as `{resource_instance, resource, role}` (permit-api.md §3).
    type Group<'a> = (&'a str, Vec<&'a str>, Vec<serde_json::Value>);
    let mut by_tenant: Vec<Group> = Vec::new();
    fn group<'a, 'g>(groups: &'g mut Vec<Group<'a>>, tenant: &'a str) -> &'g mut Group<'a> {
        match groups.iter().position(|(t, _, _)| *t == tenant) {
            Some(i) => &mut groups[i],
            None => {
                groups.push((tenant, Vec::new(), Vec::new()));
                groups.last_mut().expect("just pushed")
            }
        }
    }
    for (role, tenant) in &roles {
        group(&mut by_tenant, tenant).1.push(role);
    }
    for (role, instance, tenant) in store.user_instance_roles(u.id) {
        group(&mut by_tenant, tenant).2.push(serde_json::json!({
            "resource_instance": Store::instance_name(instance),
            "resource": instance.resource,
            "role": role,
        }));
    }
    let s = &store.scope;
    wire::UserRead {
        associated_tenants: by_tenant
            .into_iter()
            .map(|(t, rs, instance_roles)| wire::AssociatedTenant {
                resource_instance_roles: instance_roles,
                roles: rs.into_iter().map(Str::from).collect(),
                status: text("active"),
                tenant: Str::from(t),
            })
            .collect(),
        attributes: shown(&u.attributes, u.attributes_set),
        created_at: stamp(&u.created_at),
        email: opt(&u.email),
        environment_id: id(s.environment_id),
        first_name: opt(&u.first_name),
        id: id(u.id),
        key: text(&u.key),
        last_name: opt(&u.last_name),
        organization_id: id(s.organization_id),
        project_id: id(s.project_id),
        roles: roles
            .into_iter()
            .map(|(r, t)| wire::UserRole {
                role: Str::from(r),
                tenant: Str::from(t),
            })
            .collect(),
        updated_at: stamp(&u.updated_at),
    }
}

pub fn tenant<'a>(scope: &Scope, t: &'a Tenant) -> wire::TenantRead<'a> {
    wire::TenantRead {
        attributes: shown(&t.attributes, t.attributes_set),
        created_at: stamp(&t.created_at),
        description: opt(&t.description),
        environment_id: id(scope.environment_id),
        id: id(t.id),
        key: text(&t.key),
        last_action_at: stamp(&t.last_action_at),
        name: text(&t.name),
        organization_id: id(scope.organization_id),
        project_id: id(scope.project_id),
        updated_at: stamp(&t.updated_at),
    }
}

pub fn assignment<'a>(store: &'a Store, a: &Assignment) -> wire::RoleAssignmentRead<'a> {
    let key = |k: Option<&'a String>| Some(Str::from(k.map(String::as_str).unwrap_or_default()));
    let s = &store.scope;
    wire::RoleAssignmentRead {
        created_at: stamp(&a.created_at),
        environment_id: id(s.environment_id),
        id: id(a.id),
        organization_id: id(s.organization_id),
        project_id: id(s.project_id),
        resource_instance: None,
        resource_instance_id: None,
        role: key(store.roles.get_by_id(a.role_id).map(|r| &r.key)),
        role_id: id(a.role_id),
        tenant: key(store.tenants.get_by_id(a.tenant_id).map(|t| &t.key)),
        tenant_id: id(a.tenant_id),
        user: key(store.users.get_by_id(a.user_id).map(|u| &u.key)),
        user_id: id(a.user_id),
    }
}

pub fn instance_assignment<'a>(
    store: &'a Store,
    a: &InstanceAssignment,
) -> wire::RoleAssignmentRead<'a> {
    let s = &store.scope;
    let instance = store.instances.get_by_id(a.instance_id);
    let tenant = instance.and_then(|i| store.tenants.get_by_id(i.tenant_id));
    wire::RoleAssignmentRead {
        created_at: stamp(&a.created_at),
        environment_id: id(s.environment_id),
        id: id(a.id),
        organization_id: id(s.organization_id),
        project_id: id(s.project_id),
        resource_instance: instance.map(|i| Str::from(Store::instance_name(i))),
        resource_instance_id: id(a.instance_id),
        role: store
            .resource_roles
            .get_by_id(a.role_id)
            .map(|r| Str::from(r.key.as_str())),
        role_id: id(a.role_id),
        tenant: tenant.map(|t| Str::from(t.key.as_str())),
        tenant_id: tenant.and_then(|t| id(t.id)),
        user: store
            .users
            .get_by_id(a.user_id)
            .map(|u| Str::from(u.key.as_str())),
        user_id: id(a.user_id),
    }
}

pub fn listed<'a>(store: &'a Store, row: Listed<'_>) -> wire::RoleAssignmentRead<'a> {
    match row {
        Listed::Tenant(a) => assignment(store, a),
        Listed::Instance(a) => instance_assignment(store, a),
    }
}

/// The assignment with this id, of either kind (just written: it exists).
pub fn assignment_by_id(store: &Store, aid: Uuid) -> wire::RoleAssignmentRead<'_> {
    match store.assignments.get_by_id(aid) {
        Some(a) => assignment(store, a),
        None => instance_assignment(
            store,
            store
                .instance_assignments
                .get_by_id(aid)
                .expect("an assignment of one kind"),
        ),
    }
}

pub fn action<'a>(scope: &Scope, r: &Resource, a: &'a Action) -> wire::ActionRead<'a> {
    wire::ActionRead {
        attributes: a.attributes.as_ref().map(Cow::Borrowed),
        created_at: stamp(&a.created_at),
        description: opt(&a.description),
        environment_id: id(scope.environment_id),
        id: id(a.id),
        key: text(&a.key),
        name: text(&a.name),
        organization_id: id(scope.organization_id),
        permission_name: Some(Str::from(format!("{}:{}", r.key, a.key))),
        project_id: id(scope.project_id),
        resource_id: id(r.id),
        updated_at: stamp(&a.updated_at),
    }
}

/// A resource with its roles and relations embedded (Permit's `ResourceRead.roles`:
/// `{key → ResourceRoleRead}`, `.relations`: `{key → RelationBlockRead}`, permit 3.0.0).
pub fn resource<'a>(store: &'a Store, r: &'a Resource) -> wire::ResourceRead<'a> {
    let mut read = resource_alone(&store.scope, r);
    read.roles = store
        .roles_of_resource(&r.key)
        .into_iter()
        .map(|role| {
            let v = serde_json::to_value(resource_role(store, role)).unwrap_or_default();
            (Str::from(role.key.as_str()), v)
        })
        .collect();
    read.relations = store
        .relations_of(&r.key)
        .into_iter()
        .map(|rel| {
            let v = serde_json::to_value(relation_brief(store, rel)).unwrap_or_default();
            (Str::from(rel.key.as_str()), v)
        })
        .collect();
    read
}

fn resource_alone<'a>(scope: &Scope, r: &'a Resource) -> wire::ResourceRead<'a> {
    let actions = r
        .actions
        .iter()
        .map(|a| {
            (
                Str::from(a.key.as_str()),
                wire::ActionBrief {
                    attributes: a.attributes.as_ref().map(Cow::Borrowed),
                    description: opt(&a.description),
                    id: id(a.id),
                    key: text(&a.key),
                    name: text(&a.name),
                },
            )
        })
        .collect();
    wire::ResourceRead {
        action_groups: Default::default(),
        actions,
        attributes: r.attributes.as_ref().map(Cow::Borrowed),
        created_at: stamp(&r.created_at),
        description: opt(&r.description),
        environment_id: id(scope.environment_id),
        id: id(r.id),
        key: text(&r.key),
        name: text(&r.name),
        organization_id: id(scope.organization_id),
        project_id: id(scope.project_id),
        relations: Default::default(),
        roles: Default::default(),
        type_attributes: r.type_attributes.as_ref().map(Cow::Borrowed),
        updated_at: stamp(&r.updated_at),
        urn: opt(&r.urn),
    }
}

pub fn role<'a>(scope: &Scope, r: &'a Role) -> wire::RoleRead<'a> {
    let strs = |v: &'a Vec<String>| v.iter().map(|s| Str::from(s.as_str())).collect();
    wire::RoleRead {
        attributes: r.attributes.as_ref().map(Cow::Borrowed),
        created_at: stamp(&r.created_at),
        description: opt(&r.description),
        environment_id: id(scope.environment_id),
        extends: strs(&r.extends),
        granted_to: None,
        id: id(r.id),
        key: text(&r.key),
        name: text(&r.name),
        organization_id: id(scope.organization_id),
        permissions: strs(&r.permissions),
        project_id: id(scope.project_id),
        updated_at: stamp(&r.updated_at),
    }
}

pub fn scope(scope: &Scope) -> wire::ScopeRead<'static> {
    wire::ScopeRead {
        environment_id: id(scope.environment_id),
        organization_id: id(scope.organization_id),
        project_id: id(scope.project_id),
    }
}

/// A list response: Permit's `{data, total_count, page_count}` envelope, or a bare array.
pub fn listing<T: Serialize>(items: Vec<T>, total: usize, page: Page, envelope: bool) -> Response {
    if envelope {
        Json(wire::Page {
            data: items,
            page_count: Some(page.page_count(total) as u64),
            total_count: Some(total as u64),
        })
        .into_response()
    } else {
        Json(items).into_response()
    }
}
