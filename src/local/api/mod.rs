//! The REST API routes, by area. Paths and shapes follow Permit's `/v2` API (permit-api.md).

mod assignments;
mod schema;
mod tenants;
mod users;

use super::Shared;
use super::error::ApiError;
use super::views;
use axum::Json;
use axum::Router;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use std::collections::HashMap;
use std::sync::Arc;

pub type AppState = State<Arc<Shared>>;
pub type Params = Path<HashMap<String, String>>;

/// A path parameter by name (always present: the route declares it). Axum has percent-decoded it,
/// so `jane%40example.com` arrives as `jane@example.com`.
pub fn param<'a>(params: &'a HashMap<String, String>, name: &str) -> &'a str {
    params.get(name).map(String::as_str).unwrap_or_default()
}

/// Per-call item limits of Permit's bulk endpoints.
pub mod limits {
    pub const BULK_USERS: usize = 3_000;
    pub const BULK_TENANTS: usize = 2_000;
    pub const BULK_ASSIGNMENTS: usize = 2_000;
    pub const BULK_ROLES: usize = 2_000;
}

/// The REST API: scope, facts and schema.
pub fn router() -> Router<Arc<Shared>> {
    const S: &str = "/v2/schema/{proj}/{env}";
    Router::new()
        .route("/v2/api-key/scope", get(scope))
        .merge(facts_routes(FACTS))
        // schema: resources and actions
        .route(
            &format!("{S}/resources"),
            get(schema::list_resources).post(schema::create_resource),
        )
        .route(
            &format!("{S}/resources/{{resource}}"),
            get(schema::get_resource)
                .put(schema::replace_resource)
                .patch(schema::patch_resource)
                .delete(schema::delete_resource),
        )
        .route(
            &format!("{S}/resources/{{resource}}/actions"),
            get(schema::list_actions).post(schema::create_action),
        )
        .route(
            &format!("{S}/resources/{{resource}}/actions/{{action}}"),
            get(schema::get_action).delete(schema::delete_action),
        )
        // schema: tenant-level roles
        .route(
            &format!("{S}/roles"),
            get(schema::list_roles).post(schema::create_role),
        )
        .route(
            &format!("{S}/roles/{{role}}"),
            get(schema::get_role)
                .patch(schema::patch_role)
                .delete(schema::delete_role),
        )
        .route(
            &format!("{S}/roles/{{role}}/permissions"),
            post(schema::add_permissions).delete(schema::remove_permissions),
        )
        .route(&format!("{S}/bulk/roles"), put(schema::bulk_roles))
        .fallback(not_found)
}

async fn scope(State(s): AppState) -> Response {
    Json(views::scope(&s.store.read().scope)).into_response()
}

async fn not_found() -> ApiError {
    ApiError::NotFound("No such route in the local Permit".into())
}

const FACTS: &str = "/v2/facts/{proj}/{env}";

/// The facts routes the PDP proxies (`/facts/...` and the compatible `/v2/facts/{proj}/{env}/...`):
/// SDKs configured with `proxy_facts_via_pdp` write through the PDP. Writes are visible at once, so
/// `X-Wait-Timeout` has nothing to wait for.
pub fn pdp_facts_router() -> Router<Arc<Shared>> {
    facts_routes(FACTS)
        .merge(facts_routes("/facts"))
        .fallback(not_found)
}

/// Users, tenants and role assignments under `prefix`.
fn facts_routes(prefix: &str) -> Router<Arc<Shared>> {
    let p = prefix;
    Router::new()
        // users
        .route(&format!("{p}/users"), get(users::list).post(users::create))
        .route(
            &format!("{p}/users/{{user}}"),
            get(users::get)
                .put(users::put)
                .patch(users::patch)
                .delete(users::delete),
        )
        .route(
            &format!("{p}/users/{{user}}/roles"),
            post(users::assign_role).delete(users::unassign_role),
        )
        .route(
            &format!("{p}/bulk/users"),
            post(users::bulk_create)
                .put(users::bulk_put)
                .delete(users::bulk_delete),
        )
        // tenants
        .route(
            &format!("{p}/tenants"),
            get(tenants::list).post(tenants::create),
        )
        .route(
            &format!("{p}/tenants/{{tenant}}"),
            get(tenants::get)
                .patch(tenants::patch)
                .delete(tenants::delete),
        )
        .route(
            &format!("{p}/tenants/{{tenant}}/users"),
            get(tenants::users),
        )
        .route(
            &format!("{p}/tenants/{{tenant}}/users/{{user}}"),
            axum::routing::delete(tenants::remove_user),
        )
        .route(
            &format!("{p}/bulk/tenants"),
            post(tenants::bulk_create).delete(tenants::bulk_delete),
        )
        // role assignments
        .route(
            &format!("{p}/role_assignments"),
            get(assignments::list)
                .post(assignments::assign)
                .delete(assignments::unassign),
        )
        .route(
            &format!("{p}/role_assignments/bulk"),
            post(assignments::bulk_assign).delete(assignments::bulk_unassign),
        )
}
