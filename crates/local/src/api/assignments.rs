//! `/v2/facts/{proj}/{env}/role_assignments` and its bulk routes (bare arrays, not `operations`).

use super::{AppState, limits};
use crate::error::{ApiError, ApiResult, FieldError};
use crate::input::{Fields, Query, bulk_list, finish, json_body};
use crate::store::{AssignmentFilter, AssignmentRef, MissingUserPolicy};
use crate::views;
use axum::Json;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use permit_api::response as wire;
use serde_json::Value;

fn assignment_ref(
    value: &Value,
    loc: Vec<Value>,
    tenant_required: bool,
) -> (AssignmentRef, Vec<FieldError>) {
    let mut f = Fields::new(value, loc);
    let user = f.req_str("user");
    let role = f.req_str("role");
    let tenant = if tenant_required {
        Some(f.req_str("tenant"))
    } else {
        f.opt_str("tenant")
    };
    let resource_instance = f.opt_str("resource_instance");
    (
        AssignmentRef {
            user,
            role,
            tenant,
            resource_instance,
        },
        f.errors,
    )
}

fn assignment_refs(body: &Value, tenant_required: bool) -> ApiResult<Vec<AssignmentRef>> {
    let list = bulk_list(body, vec!["body".into()], limits::BULK_ASSIGNMENTS)?;
    let mut errors = Vec::new();
    let mut refs = Vec::with_capacity(list.len());
    for (i, item) in list.iter().enumerate() {
        let (r, errs) = assignment_ref(item, vec!["body".into(), i.into()], tenant_required);
        errors.extend(errs);
        refs.push(r);
    }
    finish(errors)?;
    Ok(refs)
}

/// `GET /role_assignments`. Besides `user`, `role` and `tenant` (each repeatable, "any of"),
/// Permit filters by `resource` ("only roles granted on instances of this resource type") and
/// `resource_instance` ("only roles granted with this instance as the object. The instance
/// identity, either `resource_type:instance_key` … or the instance uuid; a bare instance key is
/// rejected by the API with a 400": the Python SDK `permit` 3.0.0, `RoleAssignmentsApi.list`,
/// which sends them as `resource` and `resource_instance`). Both select instance role
/// assignments only. Tenant roles are listed first, then instance roles.
pub async fn list(State(s): AppState, RawQuery(q): RawQuery) -> ApiResult<Response> {
    let q = Query::parse(q.as_deref());
    let page = q.pagination()?;
    let envelope = q.flag("include_total_count")?;
    if let Some(instance) = q.one("resource_instance")
        && !instance.contains(':')
        && uuid::Uuid::parse_str(instance).is_err()
    {
        return Err(ApiError::BadRequest(
            "INVALID_INPUT",
            format!(
                "resource_instance '{instance}' must be 'resource_type:instance_key' or an instance id"
            ),
        ));
    }
    let filter = AssignmentFilter {
        users: q.all("user"),
        roles: q.all("role"),
        tenants: q.all("tenant"),
        resource: q.one("resource").map(String::from),
        resource_instance: q.one("resource_instance").map(String::from),
    };
    let store = s.store.read();
    let (rows, total) = store.list_assignments(&filter, page);
    let items = rows.iter().map(|a| views::listed(&store, *a)).collect();
    Ok(views::listing(items, total, page, envelope))
}

pub async fn assign(State(s): AppState, body: Bytes) -> ApiResult<Response> {
    let body = json_body(&body)?;
    let (r, errors) = assignment_ref(&body, vec!["body".into()], false);
    finish(errors)?;
    let mut store = s.store.write();
    let id = store.assign_any(&r)?;
    Ok((StatusCode::OK, Json(views::assignment_by_id(&store, id))).into_response())
}

pub async fn unassign(State(s): AppState, body: Bytes) -> ApiResult<StatusCode> {
    let body = json_body(&body)?;
    let (r, errors) = assignment_ref(&body, vec!["body".into()], true);
    finish(errors)?;
    s.store.write().unassign(&r)?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /role_assignments/bulk`: assignments that already exist are skipped, not refused: 200
/// with `assignments_created` counting only the new ones. Permit's own example seeder re-runs a
/// bulk assign over existing assignments and reports "`assignments_created` of N assigned; the
/// others were already assigned" (permitio/permit-mcp
/// `examples/food-ordering-system/src/food_ordering/seed.py`, whose doc says a re-run "assigns
/// only the roles that are missing"), and the SDKs type the answer as a count with default 0
/// (`BulkRoleAssignmentReport.assignments_created: Optional[int] = 0`, `permit` 3.0.0). The older
/// permit-python test that wraps this call in `suppress_409()` wraps every setup call so, role and
/// bulk user creation included (`tests/endpoints/test_role_assignments.py` at v2.6.5), and its
/// successor no longer suppresses anything around it: the 409 it guards against is the bulk *user*
/// create's, which is all-or-nothing. A missing role or tenant still fails the call (404).
pub async fn bulk_assign(
    State(s): AppState,
    RawQuery(q): RawQuery,
    body: Bytes,
) -> ApiResult<Json<wire::BulkAssignReport>> {
    let q = Query::parse(q.as_deref());
    let policy = match q.one("missing_user_policy") {
        None | Some("fail") => MissingUserPolicy::Fail,
        Some("ignore") => MissingUserPolicy::Ignore,
        Some("create") => MissingUserPolicy::Create,
        Some(_) => {
            return Err(ApiError::validation(
                vec!["query".into(), "missing_user_policy".into()],
                "value is not a valid enumeration member; permitted: 'fail', 'ignore', 'create'",
                "type_error.enum",
            ));
        }
    };
    let body = json_body(&body)?;
    let refs = assignment_refs(&body, false)?;
    let created = s.store.write().bulk_assign(&refs, policy)?;
    Ok(Json(wire::BulkAssignReport {
        assignments_created: created,
    }))
}

pub async fn bulk_unassign(
    State(s): AppState,
    body: Bytes,
) -> ApiResult<Json<wire::BulkUnassignReport>> {
    let body = json_body(&body)?;
    let refs = assignment_refs(&body, true)?;
    let removed = s.store.write().bulk_unassign(&refs);
    Ok(Json(wire::BulkUnassignReport {
        assignments_removed: removed,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use permit_api::request as wire;

    /// The assignments the client sends (`permit_api::request::Assign`) read back.
    #[test]
    fn the_clients_assignment_bodies_read_back() {
        let sent = [wire::Assign {
            user: "jane",
            role: "viewer",
            tenant: "acme",
            resource_instance: None,
        }];
        let refs = assignment_refs(&serde_json::to_value(sent).unwrap(), true).unwrap();
        assert_eq!(
            (
                refs[0].user.as_str(),
                refs[0].role.as_str(),
                refs[0].tenant.as_deref()
            ),
            ("jane", "viewer", Some("acme"))
        );
    }
}
