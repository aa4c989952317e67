//! The REST API routes, by area. Paths and shapes follow Permit's `/v2` API (permit-api.md).

mod assignments;
mod instances;
mod relations;
mod resource_roles;
mod schema;
mod tenants;
mod tuples;
mod users;

use super::LocalState;
use super::error::ApiError;
use super::views;
use axum::Json;
use axum::Router;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use std::collections::HashMap;
use std::sync::Arc;

pub type AppState = State<Arc<LocalState>>;
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
    pub const BULK_INSTANCES: usize = 3_000;
    pub const BULK_TUPLES: usize = 1_000;
}

/// The REST API: scope, facts and schema.
pub fn router() -> Router<Arc<LocalState>> {
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
        // schema: resource roles, their derivations, relations (ReBAC)
        .route(
            &format!("{S}/resources/{{resource}}/roles"),
            get(resource_roles::list).post(resource_roles::create),
        )
        .route(
            &format!("{S}/resources/{{resource}}/roles/{{role}}"),
            get(resource_roles::get)
                .patch(resource_roles::patch)
                .delete(resource_roles::delete),
        )
        .route(
            &format!("{S}/resources/{{resource}}/roles/{{role}}/permissions"),
            post(resource_roles::add_permissions).delete(resource_roles::remove_permissions),
        )
        .route(
            &format!("{S}/resources/{{resource}}/roles/{{role}}/implicit_grants"),
            post(resource_roles::create_derivation).delete(resource_roles::delete_derivation),
        )
        .route(
            &format!("{S}/resources/{{resource}}/roles/{{role}}/implicit_grants/conditions"),
            put(resource_roles::derivation_conditions),
        )
        .route(
            &format!("{S}/resources/{{resource}}/relations"),
            get(relations::list).post(relations::create),
        )
        .route(
            &format!("{S}/resources/{{resource}}/relations/{{relation}}"),
            get(relations::get).delete(relations::delete),
        )
        .fallback(unmodelled)
}

async fn scope(State(s): AppState) -> Response {
    Json(views::scope(&s.store.read().scope)).into_response()
}

/// Routes the local Permit does not serve. A route of Permit's API that it does not model answers
/// **501** with the feature named, not 404: Permit's clients read a 404 as "that object does not
/// exist" (permit-golang `pkg/errors/handlers.go` turns every 404 into a `NotFound` PermitError,
/// and terraform-provider-permit-io `internal/provider/common/errors.go` `IsNotFoundErr` treats
/// that as a missing object, so Terraform would plan to re-create a parent that is there). A path
/// outside Permit's API stays 404. An unknown object on a modelled route is the handler's 404.
async fn unmodelled(method: axum::http::Method, uri: axum::http::Uri) -> ApiError {
    match unmodelled_feature(uri.path()) {
        Some(feature) => ApiError::NotImplemented(format!(
            "The local Permit does not model {feature} ({method} {}); see the README's \
             'The embedded local Permit' for what it serves",
            uri.path()
        )),
        None => ApiError::NotFound("No such route in Permit's API".into()),
    }
}

/// The feature a path of Permit's API belongs to, named for a 501; `None` for a path that is not
/// Permit's. Names follow Permit's API reference (permit-model.md §1).
pub fn unmodelled_feature(path: &str) -> Option<String> {
    let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
    let named = |s: &str| -> String {
        match s {
            "resource_instances" => "resource instances (ReBAC)",
            "relationship_tuples" => "relationship tuples (ReBAC)",
            "roles" => "resource roles (ReBAC)",
            "relations" => "resource relations (ReBAC)",
            "implicit_grants" => "role derivations (ReBAC)",
            "attributes" => "attribute definitions (ABAC)",
            "condition_sets" => "condition sets: user sets and resource sets (ABAC)",
            "set_rules" => "condition set rules (ABAC)",
            "action_groups" => "action groups",
            "proxy_configs" => "proxy configs",
            "access_requests" | "operation_approval" | "user_invites" => "approval flows",
            "detailed" => "detailed role assignment listings",
            "ancestors" | "descendants" | "parents" => "role hierarchies beyond `extends`",
            other => return format!("'{other}'"),
        }
        .to_string()
    };
    match segs.as_slice() {
        // `/v2/facts|schema/{proj}/{env}/...` and the PDP's facts proxy `/facts/...`.
        ["v2", "facts" | "schema", _, _, rest @ ..] | ["facts", rest @ ..] if !rest.is_empty() => {
            Some(match rest {
                ["bulk", what, ..] => format!("bulk {}", named(what)),
                ["users", "attributes", ..] => "user attribute definitions (ABAC)".into(),
                [_, _, sub, ..] => named(sub),
                [what, ..] => named(what),
                [] => unreachable!("rest is not empty"),
            })
        }
        ["v2", "projects", _, "envs", ..] | ["v2", "projects", ..] => {
            Some("projects and environments".into())
        }
        ["v2", "elements", ..] => Some("Permit Elements".into()),
        ["v2", "api-key", ..] => Some("API keys beyond the scope lookup".into()),
        ["v2", "members", ..] => Some("organization members".into()),
        ["v2", "pdps", ..] => Some("PDP configurations".into()),
        ["v2", what, ..] => Some(format!("'/v2/{what}'")),
        // The PDP's routes that the local PDP does not serve (permit-api.md §8).
        ["allowed", "all-tenants"]
        | ["user-tenants"]
        | ["authorized_users"]
        | ["allowed_url"]
        | ["allowed", "url"] => Some(format!("the PDP route /{}", segs.join("/"))),
        _ => None,
    }
}

const FACTS: &str = "/v2/facts/{proj}/{env}";

/// The facts routes the PDP proxies (`/facts/...` and the compatible `/v2/facts/{proj}/{env}/...`):
/// SDKs configured with `proxy_facts_via_pdp` write through the PDP. Writes are visible at once, so
/// `X-Wait-Timeout` has nothing to wait for.
pub fn pdp_facts_router() -> Router<Arc<LocalState>> {
    facts_routes(FACTS)
        .merge(facts_routes("/facts"))
        .fallback(unmodelled)
}

/// Users, tenants, role assignments, resource instances and relationship tuples under `prefix`.
fn facts_routes(prefix: &str) -> Router<Arc<LocalState>> {
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
        // resource instances and relationship tuples (ReBAC)
        .route(
            &format!("{p}/resource_instances"),
            get(instances::list).post(instances::create),
        )
        .route(
            &format!("{p}/resource_instances/{{instance}}"),
            get(instances::get)
                .patch(instances::patch)
                .delete(instances::delete),
        )
        .route(
            &format!("{p}/bulk/resource_instances"),
            put(instances::bulk_upsert).delete(instances::bulk_delete),
        )
        .route(
            &format!("{p}/relationship_tuples"),
            get(tuples::list)
                .post(tuples::create)
                .delete(tuples::delete),
        )
        .route(
            &format!("{p}/relationship_tuples/bulk"),
            post(tuples::bulk_create).delete(tuples::bulk_delete),
        )
}

#[cfg(test)]
mod tests {
    use super::unmodelled_feature;

    #[test]
    fn unmodelled_routes_are_named_and_foreign_paths_are_not() {
        let f = |p: &str| unmodelled_feature(p);
        let facts = "/v2/facts/p/e";
        let schema = "/v2/schema/p/e";
        assert_eq!(
            f(&format!("{facts}/resource_instances")).unwrap(),
            "resource instances (ReBAC)"
        );
        assert_eq!(
            f(&format!("{facts}/bulk/resource_instances")).unwrap(),
            "bulk resource instances (ReBAC)"
        );
        assert_eq!(
            f(&format!("{schema}/resources/doc/roles/editor")).unwrap(),
            "resource roles (ReBAC)"
        );
        assert_eq!(
            f(&format!("{schema}/resources/doc/relations")).unwrap(),
            "resource relations (ReBAC)"
        );
        assert_eq!(
            f(&format!("{schema}/users/attributes")).unwrap(),
            "user attribute definitions (ABAC)"
        );
        assert_eq!(
            f(&format!("{schema}/condition_sets")).unwrap(),
            "condition sets: user sets and resource sets (ABAC)"
        );
        assert_eq!(
            f("/facts/relationship_tuples").unwrap(),
            "relationship tuples (ReBAC)"
        );
        assert_eq!(
            f("/v2/projects/p/envs").unwrap(),
            "projects and environments"
        );
        assert_eq!(
            f("/allowed/all-tenants").unwrap(),
            "the PDP route /allowed/all-tenants"
        );
        assert_eq!(f("/nope"), None);
        assert_eq!(f("/"), None);
    }
}
