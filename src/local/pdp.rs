//! The PDP's decision routes, answered from the store itself: a write through the REST API is
//! visible to the next decision (no OPAL-style propagation delay).
//!
//! Decisions are RBAC: the user's roles in the resource's tenant (default `default`), with the
//! permissions of the roles they extend, must include `resource_type:action`.

use super::Shared;
use super::store::{DEFAULT_TENANT, Store};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{Map, Value, json};
use std::collections::HashSet;
use std::sync::Arc;

pub fn router() -> Router<Arc<Shared>> {
    Router::new()
        .route("/allowed", post(allowed))
        .route("/allowed/bulk", post(allowed_bulk))
        .route("/user-permissions", post(user_permissions))
        .route("/local/role_assignments", get(local_role_assignments))
}

/// Health routes need no key; they are merged outside the auth layer.
pub fn health_router() -> Router<Arc<Shared>> {
    Router::new()
        .route("/health", get(health))
        .route("/healthy", get(health))
        .route("/ready", get(health))
}

/// 200 `{status: ok}`, or 503 `{status: error}` while the `pdp_unhealthy` knob is set.
async fn health(State(s): State<Arc<Shared>>) -> Response {
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

fn bad_request(msg: impl Into<String>) -> Response {
    (
        StatusCode::UNPROCESSABLE_ENTITY,
        Json(json!({"detail": [{"loc": ["body"], "msg": msg.into(), "type": "value_error"}]})),
    )
        .into_response()
}

/// One check, normalized the way the SDKs build it.
#[derive(Debug, PartialEq)]
struct Check {
    user: String,
    action: String,
    resource_type: String,
    tenant: String,
}

fn str_field<'a>(v: &'a Value, name: &str) -> Option<&'a str> {
    v.get(name).and_then(Value::as_str)
}

/// The user as a key string or `{key, ...}`.
fn user_key(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) => Some(s.clone()),
        obj => str_field(obj, "key").map(String::from),
    }
}

fn parse_check(v: &Value) -> Result<Check, String> {
    let user = user_key(v.get("user")).ok_or("user.key is required")?;
    let action = str_field(v, "action")
        .ok_or("action is required")?
        .to_string();
    let resource = v.get("resource").ok_or("resource is required")?;
    let (resource_type, tenant) = match resource {
        // "type" or "type:key", as the SDKs accept it.
        Value::String(s) => (s.split(':').next().unwrap_or_default().to_string(), None),
        obj => (
            str_field(obj, "type")
                .ok_or("resource.type is required")?
                .to_string(),
            str_field(obj, "tenant")
                .or_else(|| obj.get("context").and_then(|c| str_field(c, "tenant")))
                .map(String::from),
        ),
    };
    Ok(Check {
        user,
        action,
        resource_type,
        tenant: tenant.unwrap_or_else(|| DEFAULT_TENANT.to_string()),
    })
}

fn decide(store: &Store, c: &Check) -> bool {
    store.allowed(&c.user, &c.action, &c.resource_type, &c.tenant)
}

fn decision(allow: bool) -> Value {
    json!({"allow": allow, "result": allow})
}

fn body_json(body: &Bytes) -> Result<Value, String> {
    serde_json::from_slice(body).map_err(|e| format!("invalid JSON: {e}"))
}

async fn allowed(State(s): State<Arc<Shared>>, body: Bytes) -> Response {
    let body = match body_json(&body) {
        Ok(b) => b,
        Err(msg) => return bad_request(msg),
    };
    match parse_check(&body) {
        Ok(check) => {
            let mut out = decision(decide(&s.store.read(), &check));
            out["query"] = body;
            Json(out).into_response()
        }
        Err(msg) => bad_request(msg),
    }
}

async fn allowed_bulk(State(s): State<Arc<Shared>>, body: Bytes) -> Response {
    let body = match body_json(&body) {
        Ok(b) => b,
        Err(msg) => return bad_request(msg),
    };
    let Some(items) = body.as_array() else {
        return bad_request("expected a JSON array of checks");
    };
    let checks: Result<Vec<Check>, String> = items.iter().map(parse_check).collect();
    match checks {
        Ok(checks) => {
            let store = s.store.read();
            let results: Vec<Value> = checks.iter().map(|c| decision(decide(&store, c))).collect();
            Json(json!({ "allow": results })).into_response()
        }
        Err(msg) => bad_request(msg),
    }
}

/// `{user, tenants?, resource_types?}` → `{"__tenant:<key>": {tenant, permissions, roles}}` for
/// each tenant where the user holds a role.
async fn user_permissions(State(s): State<Arc<Shared>>, body: Bytes) -> Response {
    let body = match body_json(&body) {
        Ok(b) => b,
        Err(msg) => return bad_request(msg),
    };
    let Some(user) = user_key(body.get("user")) else {
        return bad_request("user.key is required");
    };
    let list = |name: &str| -> Option<HashSet<String>> {
        body.get(name).and_then(Value::as_array).map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(String::from)
                .collect()
        })
    };
    let tenants_filter = list("tenants");
    let types_filter = list("resource_types");
    let store = s.store.read();
    let mut out = Map::new();
    let Some(u) = store.users.get(&user) else {
        return Json(Value::Object(out)).into_response();
    };
    let mut tenant_keys: Vec<&str> = Vec::new();
    for (_, tenant) in store.user_roles(u.id) {
        if !tenant_keys.contains(&tenant) {
            tenant_keys.push(tenant);
        }
    }
    for tenant_key in tenant_keys {
        if tenants_filter
            .as_ref()
            .is_some_and(|f| !f.contains(tenant_key))
        {
            continue;
        }
        let roles = store.roles_in_tenant(&user, tenant_key);
        let mut permissions: Vec<&str> = store
            .effective_permissions(roles.iter().copied())
            .into_iter()
            .filter(|p| {
                types_filter
                    .as_ref()
                    .is_none_or(|f| p.split(':').next().is_some_and(|t| f.contains(t)))
            })
            .collect();
        permissions.sort_unstable();
        let attributes = store
            .tenants
            .get(tenant_key)
            .map(|t| Value::Object(t.attributes.clone()))
            .unwrap_or_else(|| json!({}));
        out.insert(
            format!("__tenant:{tenant_key}"),
            json!({
                "tenant": {"key": tenant_key, "attributes": attributes},
                "permissions": permissions,
                "roles": roles,
            }),
        );
    }
    Json(Value::Object(out)).into_response()
}

/// `GET /local/role_assignments`: what this PDP holds (`user`, `role`, `tenant` filters; `per_page`
/// default 30, at most 100), as `[{user, role, tenant, resource_instance}]`. Here it is always the
/// API's data, so a convergence check passes as soon as the write returned.
async fn local_role_assignments(
    State(s): State<Arc<Shared>>,
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
    };
    let store = s.store.read();
    let (rows, _) = store.list_assignments(&filter, page);
    let items: Vec<Value> = rows
        .iter()
        .map(|a| {
            let key = |k: Option<&String>| k.cloned().unwrap_or_default();
            json!({
                "user": key(store.users.get_by_id(a.user_id).map(|u| &u.key)),
                "role": key(store.roles.get_by_id(a.role_id).map(|r| &r.key)),
                "tenant": key(store.tenants.get_by_id(a.tenant_id).map(|t| &t.key)),
                "resource_instance": null,
            })
        })
        .collect();
    Json(Value::Array(items)).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checks_normalize_like_the_sdks() {
        let c = parse_check(&json!({"user": "u1", "action": "read", "resource": "doc:1"})).unwrap();
        assert_eq!(c.resource_type, "doc");
        assert_eq!(c.tenant, "default");
        let c = parse_check(&json!({
            "user": {"key": "u1"}, "action": "read",
            "resource": {"type": "doc", "context": {"tenant": "acme"}}
        }))
        .unwrap();
        assert_eq!(c.tenant, "acme");
        assert!(parse_check(&json!({"action": "read", "resource": "doc"})).is_err());
    }
}
