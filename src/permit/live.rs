//! Reads the live environment: every synced kind, paged, concurrently, into the normalised model.

use super::{PermitClient, PermitError};
use crate::desired::non_empty;
use crate::kinds::{Attributes, Kind};
use crate::model::{Action, Assignment, AttributeDef, Resource, Role, State, Tenant, User};
use serde_json::Value;
use std::collections::BTreeMap;

fn s(v: &Value, k: &str) -> Option<String> {
    non_empty(&v.get(k).and_then(|x| x.as_str()).map(str::to_string))
}

fn attrs(v: &Value, k: &str) -> Option<Attributes> {
    match v.get(k) {
        Some(Value::Object(m)) => Some(m.iter().map(|(k, v)| (k.clone(), v.clone())).collect()),
        _ => None,
    }
}

fn strings(v: &Value, k: &str) -> Vec<String> {
    v.get(k)
        .and_then(|x| x.as_array())
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

pub fn resource(v: &Value) -> Option<Resource> {
    let key = s(v, "key")?;
    let actions = match v.get("actions") {
        Some(Value::Object(m)) => m
            .iter()
            .map(|(k, a)| {
                let action = Action {
                    name: s(a, "name").unwrap_or_else(|| k.clone()),
                    description: s(a, "description"),
                    attributes: attrs(a, "attributes"),
                };
                (k.clone(), action)
            })
            .collect(),
        _ => BTreeMap::new(),
    };
    // Attribute definitions are reported as a map `key → {type, description}` when at all.
    let attributes = match v.get("attributes") {
        Some(Value::Object(m)) => Some(
            m.iter()
                .filter_map(|(k, a)| {
                    let def = AttributeDef {
                        type_: s(a, "type")?,
                        description: s(a, "description"),
                    };
                    Some((k.clone(), def))
                })
                .collect(),
        ),
        _ => None,
    };
    Some(Resource {
        name: s(v, "name").unwrap_or_else(|| key.clone()),
        description: s(v, "description"),
        actions,
        attributes,
        key,
    })
}

pub fn role(v: &Value) -> Option<Role> {
    let key = s(v, "key")?;
    Some(Role {
        name: s(v, "name").unwrap_or_else(|| key.clone()),
        description: s(v, "description"),
        permissions: strings(v, "permissions").into_iter().collect(),
        extends: strings(v, "extends").into_iter().collect(),
        attributes: attrs(v, "attributes"),
        key,
    })
}

pub fn tenant(v: &Value) -> Option<Tenant> {
    let key = s(v, "key")?;
    Some(Tenant {
        name: s(v, "name").unwrap_or_else(|| key.clone()),
        description: s(v, "description"),
        attributes: attrs(v, "attributes"),
        key,
    })
}

pub fn user(v: &Value) -> Option<User> {
    Some(User {
        key: s(v, "key")?,
        email: s(v, "email"),
        first_name: s(v, "first_name"),
        last_name: s(v, "last_name"),
        attributes: attrs(v, "attributes"),
    })
}

pub fn assignment(v: &Value) -> Option<Assignment> {
    Some(Assignment {
        user: s(v, "user")?,
        role: s(v, "role")?,
        tenant: s(v, "tenant").unwrap_or_else(|| crate::kinds::DEFAULT_TENANT.into()),
        resource_instance: s(v, "resource_instance"),
    })
}

/// Permit ids (UUIDs) by kind and key: what the Kubernetes controller reports in `status.permitId`.
pub type Ids = BTreeMap<(Kind, String), String>;

/// Every synced kind, the five listings run concurrently (the limiter paces them).
pub async fn read(client: &PermitClient) -> Result<State, PermitError> {
    read_with_ids(client).await.map(|(state, _)| state)
}

/// [`read`], keeping the id of every object too.
pub async fn read_with_ids(client: &PermitClient) -> Result<(State, Ids), PermitError> {
    let (resources, roles, tenants, users, assignments) = tokio::try_join!(
        client.list(
            client.schema("resources"),
            "resources.list",
            "list resources"
        ),
        client.list(client.schema("roles"), "roles.list", "list roles"),
        client.list(client.facts("tenants"), "tenants.list", "list tenants"),
        client.list(client.facts("users"), "users.list", "list users"),
        client.list(
            client.facts("role_assignments"),
            "role_assignments.list",
            "list role assignments"
        ),
    )?;
    let mut state = State::default();
    let mut ids = Ids::new();
    let mut id = |kind: Kind, key: &str, v: &Value| {
        if let Some(id) = v.get("id").and_then(Value::as_str) {
            ids.insert((kind, key.to_string()), id.to_string());
        }
    };
    for v in &resources {
        if let Some(r) = resource(v) {
            id(Kind::PermitResource, &r.key, v);
            state.resources.insert(r.key.clone(), r);
        }
    }
    for v in &roles {
        if let Some(r) = role(v) {
            id(Kind::PermitRole, &r.key, v);
            state.roles.insert(r.key.clone(), r);
        }
    }
    for v in &tenants {
        if let Some(t) = tenant(v) {
            id(Kind::PermitTenant, &t.key, v);
            state.tenants.insert(t.key.clone(), t);
        }
    }
    for v in &users {
        if let Some(u) = user(v) {
            id(Kind::PermitUser, &u.key, v);
            state.users.insert(u.key.clone(), u);
        }
    }
    for v in &assignments {
        if let Some(a) = assignment(v) {
            id(Kind::RoleAssignment, &a.key(), v);
            state.assignments.insert(a.key(), a);
        }
    }
    Ok((state, ids))
}

/// Role assignments only: the executor re-reads them when a bulk assign's outcome is unknown.
pub async fn read_assignments(
    client: &PermitClient,
) -> Result<BTreeMap<String, Assignment>, PermitError> {
    let items = client
        .list(
            client.facts("role_assignments"),
            "role_assignments.list",
            "list role assignments",
        )
        .await?;
    Ok(items
        .iter()
        .filter_map(assignment)
        .map(|a| (a.key(), a))
        .collect())
}

/// Tenants only, for the same reason.
pub async fn read_tenants(client: &PermitClient) -> Result<BTreeMap<String, Tenant>, PermitError> {
    let items = client
        .list(client.facts("tenants"), "tenants.list", "list tenants")
        .await?;
    Ok(items
        .iter()
        .filter_map(tenant)
        .map(|t| (t.key.clone(), t))
        .collect())
}
