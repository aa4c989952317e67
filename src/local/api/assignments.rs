//! `/v2/facts/{proj}/{env}/role_assignments` and its bulk routes (bare arrays, not `operations`).

use super::{AppState, limits};
use crate::local::error::{ApiError, ApiResult, FieldError};
use crate::local::input::{Fields, Query, bulk_list, finish, json_body};
use crate::local::store::{AssignmentFilter, AssignmentRef, MissingUserPolicy};
use crate::local::views;
use axum::Json;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

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
    if f.opt_value("resource_instance").is_some() {
        f.push(
            "resource_instance",
            "resource instance roles are not supported by the local Permit",
            "value_error",
        );
    }
    (AssignmentRef { user, role, tenant }, f.errors)
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

pub async fn list(State(s): AppState, RawQuery(q): RawQuery) -> ApiResult<Response> {
    let q = Query::parse(q.as_deref());
    let page = q.pagination()?;
    let envelope = q.flag("include_total_count")?;
    if q.one("resource_instance").is_some() {
        // No resource instances exist locally, so an instance filter matches nothing.
        return Ok(views::listing(Vec::new(), 0, page, envelope));
    }
    let filter = AssignmentFilter {
        users: q.all("user"),
        roles: q.all("role"),
        tenants: q.all("tenant"),
    };
    let store = s.store.read();
    let (rows, total) = store.list_assignments(&filter, page);
    let items = rows.iter().map(|a| views::assignment(&store, a)).collect();
    Ok(views::listing(items, total, page, envelope))
}

pub async fn assign(State(s): AppState, body: Bytes) -> ApiResult<Response> {
    let body = json_body(&body)?;
    let (r, errors) = assignment_ref(&body, vec!["body".into()], false);
    finish(errors)?;
    let mut store = s.store.write();
    let id = store.assign(&r)?.id;
    let a = store.assignments.get_by_id(id).expect("just created");
    Ok((StatusCode::OK, Json(views::assignment(&store, a))).into_response())
}

pub async fn unassign(State(s): AppState, body: Bytes) -> ApiResult<StatusCode> {
    let body = json_body(&body)?;
    let (r, errors) = assignment_ref(&body, vec!["body".into()], true);
    finish(errors)?;
    s.store.write().unassign(&r)?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn bulk_assign(
    State(s): AppState,
    RawQuery(q): RawQuery,
    body: Bytes,
) -> ApiResult<Json<Value>> {
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
    Ok(Json(json!({ "assignments_created": created })))
}

pub async fn bulk_unassign(State(s): AppState, body: Bytes) -> ApiResult<Json<Value>> {
    let body = json_body(&body)?;
    let refs = assignment_refs(&body, true)?;
    let removed = s.store.write().bulk_unassign(&refs);
    Ok(Json(json!({ "assignments_removed": removed })))
}
