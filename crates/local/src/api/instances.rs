//! `/v2/facts/{proj}/{env}/resource_instances[/{instance}]` and `/bulk/resource_instances`
//! (permit-python `permit/api/resource_instances.py`; a path's instance is `type:key` or its id).

use super::users::idents;
use super::{AppState, Params, limits, param};
use crate::error::{ApiResult, FieldError};
use crate::input::{
    Fields, KeyPattern, Query, bulk_operations, finish, json_body, required_operations,
};
use crate::store::{InstanceFilter, InstanceInput};
use crate::views;
use axum::Json;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use permit_api::response as wire;
use serde_json::Value;

/// A `ResourceInstanceCreate` `{key, tenant, resource, attributes?}`: `tenant` is required
/// (permit 3.0.0), the key is `^[A-Za-z0-9\-_]+$`.
fn instance_input(value: &Value, loc: Vec<Value>) -> (InstanceInput, Vec<FieldError>) {
    let mut f = Fields::new(value, loc);
    let key = f.req_str("key");
    f.check_key("key", &key, KeyPattern::Slug);
    let input = InstanceInput {
        key,
        tenant: f.req_str("tenant"),
        resource: f.req_str("resource"),
        attributes: f.opt_obj("attributes"),
    };
    (input, f.errors)
}

/// `GET resource_instances` with `tenant`, `resource`, `search` filters: a bare array, or the
/// envelope with `include_total_count`.
pub async fn list(State(s): AppState, RawQuery(q): RawQuery) -> ApiResult<Response> {
    let q = Query::parse(q.as_deref());
    let page = q.pagination()?;
    let envelope = q.flag("include_total_count")?;
    let filter = InstanceFilter {
        tenant: q.one("tenant").map(String::from),
        resource: q.one("resource").map(String::from),
        search: q.one("search").map(String::from),
    };
    let store = s.store.read();
    let (rows, total) = store.list_instances(&filter, page);
    let items = rows.iter().map(|i| views::instance(&store, i)).collect();
    Ok(views::listing(items, total, page, envelope))
}

pub async fn get(State(s): AppState, p: Params) -> ApiResult<Response> {
    let store = s.store.read();
    let i = store.instance(param(&p, "instance"))?;
    Ok(Json(views::instance(&store, i)).into_response())
}

/// `POST resource_instances`: 200 with the instance.
pub async fn create(State(s): AppState, body: Bytes) -> ApiResult<Response> {
    let body = json_body(&body)?;
    let (input, errors) = instance_input(&body, vec!["body".into()]);
    finish(errors)?;
    let mut store = s.store.write();
    let id = store.create_instance(input)?.id;
    let i = store.instances.get_by_id(id).expect("just created");
    Ok(Json(views::instance(&store, i)).into_response())
}

/// `PATCH resource_instances/{instance}` `{attributes?}`.
pub async fn patch(State(s): AppState, p: Params, body: Bytes) -> ApiResult<Response> {
    let body = json_body(&body)?;
    let mut f = Fields::new(&body, vec!["body".into()]);
    let attributes = f.sent("attributes").then(|| f.opt_obj("attributes"));
    finish(f.errors)?;
    let mut store = s.store.write();
    let id = store.patch_instance(param(&p, "instance"), attributes)?.id;
    let i = store.instances.get_by_id(id).expect("just written");
    Ok(Json(views::instance(&store, i)).into_response())
}

pub async fn delete(State(s): AppState, p: Params) -> ApiResult<StatusCode> {
    s.store.write().delete_instance(param(&p, "instance"))?;
    Ok(StatusCode::NO_CONTENT)
}

/// `PUT bulk/resource_instances` `{operations}` (3,000 per call): creates or replaces each;
/// answers `{}` (`ResourceInstanceCreateBulkOperationResult` has no fields).
pub async fn bulk_upsert(State(s): AppState, body: Bytes) -> ApiResult<Json<wire::BulkReport>> {
    let body = json_body(&body)?;
    let (inputs, errors) = bulk_operations(
        required_operations(&body)?,
        limits::BULK_INSTANCES,
        instance_input,
    )?;
    finish(errors)?;
    s.store.write().bulk_upsert_instances(inputs)?;
    Ok(Json(wire::Empty {}))
}

/// `DELETE bulk/resource_instances` `{idents: ["type:key" | id]}`.
pub async fn bulk_delete(State(s): AppState, body: Bytes) -> ApiResult<Json<wire::BulkReport>> {
    let body = json_body(&body)?;
    let idents = idents(&body, limits::BULK_INSTANCES)?;
    s.store.write().bulk_delete_instances(&idents);
    Ok(Json(wire::Empty {}))
}
