//! Response bodies in the shapes of Permit's read models (`UserRead`, `TenantRead`, ...), with every
//! field the official SDKs require (permit-api.md §10).

use super::input::Page;
use super::store::{
    Action, Assignment, Resource, Role, Scope, Store, Tenant, User, shown_attributes,
};
use axum::Json;
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};
use uuid::Uuid;

/// An id as Permit emits it: 32 lowercase hex digits, no dashes (`"id": "5f0a…e1"` in the
/// responses captured in Permit's docs, `docs/api/examples/*.mdx`, and its SDKs' e2e logs;
/// permit-api.md "Corrections"). Paths take either form ([`crate::store::same_id`]).
pub fn sid(id: Uuid) -> String {
    id.simple().to_string()
}

fn ids(scope: &Scope) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("organization_id".into(), json!(sid(scope.organization_id)));
    m.insert("project_id".into(), json!(sid(scope.project_id)));
    m.insert("environment_id".into(), json!(sid(scope.environment_id)));
    m
}

fn with_ids(scope: &Scope, body: Value) -> Value {
    let mut m = ids(scope);
    if let Value::Object(fields) = body {
        m.extend(fields);
    }
    Value::Object(m)
}

pub fn user(store: &Store, u: &User) -> Value {
    let roles = store.user_roles(u.id);
    // associated_tenants groups the user's roles by tenant, in first-seen order.
    let mut by_tenant: Vec<(&str, Vec<&str>)> = Vec::new();
    for (role, tenant) in &roles {
        match by_tenant.iter_mut().find(|(t, _)| t == tenant) {
            Some((_, rs)) => rs.push(role),
            None => by_tenant.push((tenant, vec![role])),
        }
    }
    with_ids(
        &store.scope,
        json!({
            "key": u.key,
            "id": sid(u.id),
            "email": u.email,
            "first_name": u.first_name,
            "last_name": u.last_name,
            "attributes": shown_attributes(&u.attributes, u.attributes_set),
            "roles": roles.iter().map(|(r, t)| json!({"role": r, "tenant": t})).collect::<Vec<_>>(),
            "associated_tenants": by_tenant.iter().map(|(t, rs)| json!({
                "tenant": t, "roles": rs, "status": "active", "resource_instance_roles": [],
            })).collect::<Vec<_>>(),
            "created_at": u.created_at,
            "updated_at": u.updated_at,
        }),
    )
}

pub fn tenant(scope: &Scope, t: &Tenant) -> Value {
    with_ids(
        scope,
        json!({
            "key": t.key,
            "id": sid(t.id),
            "name": t.name,
            "description": t.description,
            "attributes": shown_attributes(&t.attributes, t.attributes_set),
            "created_at": t.created_at,
            "updated_at": t.updated_at,
            "last_action_at": t.last_action_at,
        }),
    )
}

pub fn assignment(store: &Store, a: &Assignment) -> Value {
    let key = |k: Option<&String>| k.cloned().unwrap_or_default();
    with_ids(
        &store.scope,
        json!({
            "id": sid(a.id),
            "user": key(store.users.get_by_id(a.user_id).map(|u| &u.key)),
            "role": key(store.roles.get_by_id(a.role_id).map(|r| &r.key)),
            "tenant": key(store.tenants.get_by_id(a.tenant_id).map(|t| &t.key)),
            "resource_instance": null,
            "resource_instance_id": null,
            "user_id": sid(a.user_id),
            "role_id": sid(a.role_id),
            "tenant_id": sid(a.tenant_id),
            "created_at": a.created_at,
        }),
    )
}

pub fn action(scope: &Scope, r: &Resource, a: &Action) -> Value {
    with_ids(
        scope,
        json!({
            "key": a.key,
            "id": sid(a.id),
            "name": a.name,
            "description": a.description,
            "attributes": a.attributes,
            "permission_name": format!("{}:{}", r.key, a.key),
            "resource_id": sid(r.id),
            "created_at": a.created_at,
            "updated_at": a.updated_at,
        }),
    )
}

pub fn resource(scope: &Scope, r: &Resource) -> Value {
    let actions: Map<String, Value> = r
        .actions
        .iter()
        .map(|a| {
            (
                a.key.clone(),
                json!({
                    "id": sid(a.id),
                    "key": a.key,
                    "name": a.name,
                    "description": a.description,
                    "attributes": a.attributes,
                }),
            )
        })
        .collect();
    with_ids(
        scope,
        json!({
            "key": r.key,
            "id": sid(r.id),
            "name": r.name,
            "urn": r.urn,
            "description": r.description,
            "actions": actions,
            "type_attributes": r.type_attributes,
            "attributes": r.attributes,
            "roles": {},
            "relations": {},
            "action_groups": {},
            "created_at": r.created_at,
            "updated_at": r.updated_at,
        }),
    )
}

pub fn role(scope: &Scope, r: &Role) -> Value {
    with_ids(
        scope,
        json!({
            "key": r.key,
            "id": sid(r.id),
            "name": r.name,
            "description": r.description,
            "permissions": r.permissions,
            "extends": r.extends,
            "attributes": r.attributes,
            "granted_to": null,
            "created_at": r.created_at,
            "updated_at": r.updated_at,
        }),
    )
}

pub fn scope(scope: &Scope) -> Value {
    Value::Object(ids(scope))
}

/// A list response: Permit's `{data, total_count, page_count}` envelope, or a bare array.
pub fn listing(items: Vec<Value>, total: usize, page: Page, envelope: bool) -> Response {
    if envelope {
        Json(json!({
            "data": items,
            "total_count": total,
            "page_count": page.page_count(total),
        }))
        .into_response()
    } else {
        Json(Value::Array(items)).into_response()
    }
}
