//! The PDP's decision routes, answered from the store itself: a write through the REST API is
//! visible to the next decision, unless the `pdp_delay_ms` knob delays the PDP's view as Permit's
//! OPAL propagation does ([`super::lag`]). Every decision carries the lag headers.
//!
//! Decisions are Permit's RBAC ∨ ReBAC, taken by `permit-decide` over the store: the user's
//! tenant roles in the resource's tenant (default `default`), with the roles they extend, grant
//! `resource_type:action` (whatever the key); or, for a `type:key` resource, a role the user holds
//! on that instance, directly or derived through relationship tuples, grants the action.

use super::LocalState;
use super::lag::with_lag_headers;
use super::store::{DEFAULT_TENANT, Store};
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use std::sync::Arc;

pub fn router() -> Router<Arc<LocalState>> {
    Router::new()
        .route("/allowed", post(allowed))
        .route("/allowed/bulk", post(allowed_bulk))
        .route("/user-permissions", post(user_permissions))
        .route("/local/role_assignments", get(local_role_assignments))
}

/// Health routes need no key; they are merged outside the auth layer.
pub fn health_router() -> Router<Arc<LocalState>> {
    Router::new()
        .route("/health", get(health))
        .route("/healthy", get(health))
        .route("/ready", get(health))
}

/// 200 `{status: ok}`, or 503 `{status: error}` while the `pdp_unhealthy` knob is set.
async fn health(State(s): State<Arc<LocalState>>) -> Response {
    if s.knobs.lock().knobs.pdp_unhealthy {
        let error = json!({"status": "error", "error": "policy and data not loaded (injected)"});
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "error", "components": {"horizon": error, "opa": error}})),
        )
            .into_response();
    }
    Json(json!({
        "status": "ok",
        "components": {"horizon": {"status": "ok"}, "opa": {"status": "ok"}},
    }))
    .into_response()
}

/// A body the PDP refuses, answered as Permit's PDP answers it: its handlers take axum's `Json<T>`
/// of the request types below, so a body that does not fit gets axum's rejection, a **plain-text**
/// 422 `Failed to deserialize the JSON body into the target type: user: invalid type: string
/// "jane", expected struct User at line 1 column 9` (400 `Failed to parse the request body as
/// JSON: …` for broken JSON). (permitio/PDP `pdp-server/src/api/authz/allowed.rs`:
/// `Json(query): Json<AllowedQuery>`, utoipa `(status = 422, description = "Invalid request
/// payload")`; axum 0.8 `Json::from_bytes`.) Unlike the PDP, a missing `Content-Type` is not
/// refused (415 there).
fn parse<T: serde::de::DeserializeOwned>(body: &Bytes) -> Result<T, JsonRejection> {
    axum::Json::<T>::from_bytes(body).map(|axum::Json(v)| v)
}

/// The PDP's request types (permitio/PDP `pdp-server/src/opa_client/allowed.rs`): `user` is an
/// object with a `key`, `resource` an object with a `type`. The SDKs turn a string user `"u1"`
/// into `{key: "u1"}` and a resource `"doc:1"` into `{type, key}` before sending (permit-python
/// `enforcer.py`, permit-node `enforcer.ts` `buildCheckInput`); the PDP itself takes no strings.
/// Unknown fields are ignored, as serde does there.
#[derive(Debug, Deserialize)]
struct PdpUser {
    key: String,
}

#[derive(Debug, Deserialize)]
struct PdpResource {
    r#type: String,
    /// The instance key: a `type:key` check (the SDKs split `"Post:post-1"` into type and key).
    #[serde(default)]
    key: Option<String>,
    #[serde(default)]
    tenant: Option<String>,
    #[serde(default)]
    context: Map<String, Value>,
}

#[derive(Debug, Deserialize)]
struct AllowedQuery {
    user: PdpUser,
    action: String,
    resource: PdpResource,
}

/// `/user-permissions`' body (permitio/PDP `pdp-server/src/opa_client/user_permissions.rs`).
#[derive(Debug, Deserialize)]
struct UserPermissionsQuery {
    user: PdpUser,
    #[serde(default)]
    tenants: Option<Vec<String>>,
    #[serde(default)]
    resources: Option<Vec<String>>,
    #[serde(default)]
    resource_types: Option<Vec<String>>,
}

/// One check, normalized: the tenant from `resource.tenant`, else `resource.context.tenant`, else
/// `default` (the SDKs always send one).
#[derive(Debug, PartialEq)]
struct Check {
    user: String,
    action: String,
    resource_type: String,
    key: Option<String>,
    tenant: String,
}

impl From<AllowedQuery> for Check {
    fn from(q: AllowedQuery) -> Self {
        let tenant = q
            .resource
            .tenant
            .or_else(|| {
                q.resource
                    .context
                    .get("tenant")
                    .and_then(Value::as_str)
                    .map(String::from)
            })
            .unwrap_or_else(|| DEFAULT_TENANT.to_string());
        Check {
            user: q.user.key,
            action: q.action,
            resource_type: q.resource.r#type,
            key: q.resource.key.filter(|k| !k.is_empty()),
            tenant,
        }
    }
}

fn decide(store: &Store, c: &Check) -> bool {
    store.allowed_on(
        &c.user,
        &c.action,
        &c.resource_type,
        c.key.as_deref(),
        &c.tenant,
    )
}

fn decision(allow: bool) -> Value {
    json!({"allow": allow, "result": allow})
}

async fn allowed(State(s): State<Arc<LocalState>>, body: Bytes) -> Response {
    let check: Check = match parse::<AllowedQuery>(&body) {
        Ok(q) => q.into(),
        Err(refused) => return refused.into_response(),
    };
    let (store, lag) = s.pdp_view();
    let mut out = decision(decide(&store, &check));
    drop(store);
    out["query"] = serde_json::from_slice(&body).unwrap_or(Value::Null);
    with_lag_headers(Json(out).into_response(), lag)
}

async fn allowed_bulk(State(s): State<Arc<LocalState>>, body: Bytes) -> Response {
    let checks: Vec<Check> = match parse::<Vec<AllowedQuery>>(&body) {
        Ok(qs) => qs.into_iter().map(Check::from).collect(),
        Err(refused) => return refused.into_response(),
    };
    let (store, lag) = s.pdp_view();
    let results: Vec<Value> = checks.iter().map(|c| decision(decide(&store, c))).collect();
    drop(store);
    with_lag_headers(Json(json!({ "allow": results })).into_response(), lag)
}

/// Whether a tenant-level entry `__tenant:<key>` is in the answer, by Permit's policy
/// (`permit/user_permissions.rego`, package `permit.user_permissions`, as generated for every
/// environment; a copy in permitio/uhg-demo-policy `user_permissions.rego`): `resource_types`
/// filters entries by their object type, and a tenant entry's type is `__tenant`
/// (`is_filtered_tenant` requires `is_filtered_resource_type(__tenant_type)`); then `tenants`
/// (the key or `__tenant:<key>`), else a `resources` list naming `__tenant:<key>` (an instances
/// filter without it leaves tenants out), else every tenant. The permissions of an entry are not
/// filtered by type: `resource_types: ["post"]` gives no tenant entries at all, `["__tenant"]`
/// all of them with every permission.
fn tenant_entry_wanted(q: &UserPermissionsQuery, tenant: &str) -> bool {
    let qualified = format!("__tenant:{tenant}");
    let named = |list: &Vec<String>| list.iter().any(|x| *x == tenant || *x == qualified);
    if q.resource_types
        .as_ref()
        .is_some_and(|types| !types.iter().any(|t| t == "__tenant"))
    {
        return false;
    }
    match (&q.tenants, &q.resources) {
        (Some(tenants), _) if named(tenants) => true,
        (_, Some(resources)) => resources.contains(&qualified),
        (Some(_), None) => false,
        (None, None) => true,
    }
}

/// Whether an instance entry `type:key` is in the answer, by the same policy
/// (`is_filtered_resource`): `resource_types` filters by type; a `resources` list naming
/// instances (entries not starting `__tenant`) keeps those named by `type:key` or by key alone;
/// without one, every instance of the types asked. `tenants` does not filter instance entries.
fn instance_entry_wanted(q: &UserPermissionsQuery, resource_type: &str, key: &str) -> bool {
    if q.resource_types
        .as_ref()
        .is_some_and(|types| !types.iter().any(|t| t == resource_type))
    {
        return false;
    }
    let named: Vec<&String> = q
        .resources
        .iter()
        .flatten()
        .filter(|r| !r.starts_with("__tenant"))
        .collect();
    let qualified = format!("{resource_type}:{key}");
    named.is_empty() || named.iter().any(|r| **r == qualified || *r == key)
}

/// `{user, tenants?, resources?, resource_types?}` → `{"__tenant:<key>": {tenant: {key,
/// attributes?}, permissions, roles}}` for each tenant where the user holds a role (attributes
/// left out when empty, as the PDP's `TenantDetails` serializes them), and `{"type:key":
/// {resource: {key, type, attributes?}, permissions: ["type:action"], roles: [role key]}}` for
/// each instance the user holds a role on, direct or derived (Permit's
/// `permit/user_permissions.rego`, `_rebac_permissions`: the roles stripped of their `type:key#`).
async fn user_permissions(State(s): State<Arc<LocalState>>, body: Bytes) -> Response {
    let q = match parse::<UserPermissionsQuery>(&body) {
        Ok(q) => q,
        Err(refused) => return refused.into_response(),
    };
    let (store, lag) = s.pdp_view();
    let mut out = Map::new();
    if let Some(u) = store.users.get(&q.user.key) {
        let mut tenant_keys: Vec<&str> = Vec::new();
        for (_, tenant) in store.user_roles(u.id) {
            if !tenant_keys.contains(&tenant) {
                tenant_keys.push(tenant);
            }
        }
        for tenant_key in tenant_keys {
            if !tenant_entry_wanted(&q, tenant_key) {
                continue;
            }
            let roles = store.roles_in_tenant(&q.user.key, tenant_key);
            let mut permissions: Vec<&str> = store
                .effective_permissions(roles.iter().copied())
                .into_iter()
                .collect();
            permissions.sort_unstable();
            let mut tenant = json!({ "key": tenant_key });
            if let Some(t) = store.tenants.get(tenant_key)
                && !t.attributes.is_empty()
            {
                tenant["attributes"] = Value::Object(t.attributes.clone());
            }
            out.insert(
                format!("__tenant:{tenant_key}"),
                json!({"tenant": tenant, "permissions": permissions, "roles": roles}),
            );
        }
        for e in store.instance_permissions(&q.user.key) {
            let i = e.instance;
            if !instance_entry_wanted(&q, &i.resource, &i.key) {
                continue;
            }
            let mut resource = json!({"key": i.key, "type": i.resource});
            if let Some(attributes) = i.attributes.as_ref().filter(|a| !a.is_empty()) {
                resource["attributes"] = Value::Object(attributes.clone());
            }
            out.insert(
                format!("{}:{}", i.resource, i.key),
                json!({"resource": resource, "permissions": e.permissions, "roles": e.roles}),
            );
        }
    }
    drop(store);
    with_lag_headers(Json(Value::Object(out)).into_response(), lag)
}

/// `GET /local/role_assignments`: what this PDP holds (`user`, `role`, `tenant` filters; `per_page`
/// default 30, at most 100), as `[{user, role, tenant, resource_instance}]`: the API's data, or with
/// `pdp_delay_ms` the data the decisions read, so a convergence check waits as it must at Permit.
async fn local_role_assignments(
    State(s): State<Arc<LocalState>>,
    axum::extract::RawQuery(q): axum::extract::RawQuery,
) -> Response {
    let q = super::input::Query::parse(q.as_deref());
    let page = match q.pagination() {
        Ok(p) => p,
        Err(e) => return e.into_response(),
    };
    let filter = super::store::AssignmentFilter {
        users: q.all("user"),
        roles: q.all("role"),
        tenants: q.all("tenant"),
        resource: q.one("resource").map(String::from),
        resource_instance: q.one("resource_instance").map(String::from),
    };
    let (store, lag) = s.pdp_view();
    let (rows, _) = store.list_assignments(&filter, page);
    let items: Vec<Value> = rows
        .iter()
        .map(|a| {
            let a = super::views::listed(&store, *a);
            json!({
                "user": a.user, "role": a.role, "tenant": a.tenant,
                "resource_instance": a.resource_instance,
            })
        })
        .collect();
    drop(store);
    with_lag_headers(Json(Value::Array(items)).into_response(), lag)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(v: Value) -> Result<Check, JsonRejection> {
        parse::<AllowedQuery>(&Bytes::from(v.to_string())).map(Check::from)
    }

    #[test]
    fn checks_take_objects_only_as_the_pdp_does() {
        let c = check(json!({
            "user": {"key": "u1", "email": "u@x"}, "action": "read",
            "resource": {"type": "doc", "context": {"tenant": "acme"}}, "sdk": "python"
        }))
        .unwrap();
        assert_eq!(c.tenant, "acme");
        let c =
            check(json!({"user": {"key": "u1"}, "action": "read", "resource": {"type": "doc"}}))
                .unwrap();
        assert_eq!(c.tenant, "default");
        for bad in [
            json!({"user": "u1", "action": "read", "resource": {"type": "doc"}}),
            json!({"user": {"key": "u1"}, "action": "read", "resource": "doc:1"}),
            json!({"action": "read", "resource": {"type": "doc"}}),
        ] {
            let status = check(bad).unwrap_err().status();
            assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        }
    }

    #[test]
    fn tenant_entries_follow_the_policys_filters() {
        let q = |v: Value| -> UserPermissionsQuery {
            serde_json::from_value(
                json!({"user": {"key": "u"}})
                    .as_object()
                    .unwrap()
                    .clone()
                    .into_iter()
                    .chain(v.as_object().unwrap().clone())
                    .collect::<Map<_, _>>()
                    .into(),
            )
            .unwrap()
        };
        assert!(tenant_entry_wanted(&q(json!({})), "acme"));
        assert!(!tenant_entry_wanted(
            &q(json!({"resource_types": ["post"]})),
            "acme"
        ));
        assert!(tenant_entry_wanted(
            &q(json!({"resource_types": ["post", "__tenant"]})),
            "acme"
        ));
        assert!(tenant_entry_wanted(
            &q(json!({"tenants": ["__tenant:acme"]})),
            "acme"
        ));
        assert!(!tenant_entry_wanted(
            &q(json!({"tenants": ["beta"]})),
            "acme"
        ));
        assert!(!tenant_entry_wanted(
            &q(json!({"resources": ["post:1"]})),
            "acme"
        ));
        assert!(tenant_entry_wanted(
            &q(json!({"resources": ["__tenant:acme"]})),
            "acme"
        ));
    }
}
