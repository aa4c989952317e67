//! Reads the live environment: every synced kind, paged, concurrently, into the normalised model.

use super::{PermitClient, PermitError};
use crate::desired::non_empty;
use crate::kinds::{Attributes, Kind};
use crate::model::{Action, Assignment, AttributeDef, Attrs, Resource, Role, State, Tenant, User};
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
                    attributes: attrs(a, "attributes").map(Attrs::from),
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
        attributes: attrs(v, "attributes").map(Attrs::from),
        key,
    })
}

pub fn tenant(v: &Value) -> Option<Tenant> {
    let key = s(v, "key")?;
    Some(Tenant {
        name: s(v, "name").unwrap_or_else(|| key.clone()),
        description: s(v, "description"),
        attributes: attrs(v, "attributes").map(Attrs::from),
        key,
    })
}

pub fn user(v: &Value) -> Option<User> {
    Some(User {
        key: s(v, "key")?,
        email: s(v, "email"),
        first_name: s(v, "first_name"),
        last_name: s(v, "last_name"),
        attributes: attrs(v, "attributes").map(Attrs::from),
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
    Ok(assemble(&resources, &roles, &tenants, &users, &assignments))
}

/// The normalised state of raw listings, with the id of every object.
pub fn assemble(
    resources: &[Value],
    roles: &[Value],
    tenants: &[Value],
    users: &[Value],
    assignments: &[Value],
) -> (State, Ids) {
    let mut state = State::default();
    let mut ids = Ids::new();
    let mut id = |kind: Kind, key: &str, v: &Value| {
        if let Some(id) = s(v, "id") {
            ids.insert((kind, key.to_string()), id);
        }
    };
    for v in resources {
        if let Some(r) = resource(v) {
            id(Kind::PermitResource, &r.key, v);
            state.resources.insert(r.key.clone(), r);
        }
    }
    for v in roles {
        if let Some(r) = role(v) {
            id(Kind::PermitRole, &r.key, v);
            state.roles.insert(r.key.clone(), r);
        }
    }
    for v in tenants {
        if let Some(t) = tenant(v) {
            id(Kind::PermitTenant, &t.key, v);
            state.tenants.insert(t.key.clone(), t);
        }
    }
    for v in users {
        if let Some(u) = user(v) {
            id(Kind::PermitUser, &u.key, v);
            state.users.insert(u.key.clone(), u);
        }
    }
    // Permit has been seen to put the e-mail in an assignment's `user` (permit-api.md §9): the
    // ids are authoritative, so keys are taken from the listings they point into.
    let keys = |items: &[Value]| -> BTreeMap<String, String> {
        items
            .iter()
            .filter_map(|v| Some((s(v, "id")?, s(v, "key")?)))
            .collect()
    };
    let (user_keys, role_keys, tenant_keys) = (keys(users), keys(roles), keys(tenants));
    for v in assignments {
        let Some(mut a) = assignment(v) else { continue };
        let by_id = |field: &str, map: &BTreeMap<String, String>| {
            s(v, field).and_then(|id| map.get(&id).cloned())
        };
        if let Some(k) = by_id("user_id", &user_keys) {
            a.user = k;
        }
        if let Some(k) = by_id("role_id", &role_keys) {
            a.role = k;
        }
        if let Some(k) = by_id("tenant_id", &tenant_keys) {
            a.tenant = k;
        }
        id(Kind::RoleAssignment, &a.key(), v);
        state.assignments.insert(&a);
    }
    (state, ids)
}

/// Role assignments only: the executor re-reads them when a bulk assign's outcome is unknown.
/// (Keys as listed: this is only used to find what is missing, where a mismatch costs a single
/// assign that Permit answers with 409.)
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn listings_normalise_and_assignments_trust_ids_over_keys() {
        let users = [
            json!({"id": "u1", "key": "jane", "email": "jane@example.com",
                            "first_name": "", "attributes": {}}),
        ];
        let roles = [json!({"id": "r1", "key": "viewer", "name": "Viewer",
                            "permissions": ["post:read"], "extends": []})];
        let tenants = [json!({"id": "t1", "key": "acme", "name": "Acme", "description": null})];
        let resources = [json!({"key": "post", "name": "Post",
                                "actions": {"read": {"id": "a1", "key": "read", "name": "read"}}})];
        // The API bug: the e-mail where the key belongs.
        let assignments = [
            json!({"id": "ra1", "user": "jane@example.com", "role": "viewer", "tenant": "acme",
                                  "user_id": "u1", "role_id": "r1", "tenant_id": "t1"}),
        ];
        let (s, ids) = assemble(&resources, &roles, &tenants, &users, &assignments);
        assert_eq!(ids[&(Kind::PermitUser, "jane".to_string())], "u1");
        assert_eq!(
            ids[&(Kind::RoleAssignment, "jane/viewer/acme".to_string())],
            "ra1"
        );
        assert_eq!(
            s.assignments.keys().collect::<Vec<_>>(),
            ["jane/viewer/acme"]
        );
        assert_eq!(s.users["jane"].first_name, None, "empty strings are absent");
        assert_eq!(s.tenants["acme"].description, None);
        assert!(s.roles["viewer"].permissions.contains("post:read"));
        assert_eq!(s.resources["post"].actions["read"].name, "read");
        assert_eq!(
            s.resources["post"].attributes, None,
            "not reported, not compared"
        );
    }
}
