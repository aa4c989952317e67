//! `/v2/facts/{proj}/{env}/relationship_tuples` and `/relationship_tuples/bulk` (permit-python
//! `permit/api/relationship_tuples.py`: list filters `subject`, `relation`, `object`, `tenant`;
//! create; delete with a JSON body; bulk create `{operations}`, bulk delete `{idents: [{subject,
//! relation, object}]}`, 1,000 per call).

use super::{AppState, limits};
use crate::error::{ApiError, ApiResult, FieldError};
use crate::input::{Fields, Query, bulk_list, finish, json_body, required_operations};
use crate::store::{TupleFilter, TupleRef};
use crate::views;
use axum::Json;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use permit_api::response as wire;
use serde_json::Value;

/// `{subject, relation, object, tenant?}` at `loc` (`tenant` read only when `with_tenant`).
fn tuple_ref(value: &Value, loc: Vec<Value>, with_tenant: bool) -> (TupleRef, Vec<FieldError>) {
    let mut f = Fields::new(value, loc);
    let r = TupleRef {
        subject: f.req_str("subject"),
        relation: f.req_str("relation"),
        object: f.req_str("object"),
        tenant: if with_tenant {
            f.opt_str("tenant")
        } else {
            None
        },
    };
    (r, f.errors)
}

/// The list under `field` (`operations` or `idents`), each a tuple.
fn tuple_list(body: &Value, field: &str, with_tenant: bool) -> ApiResult<Vec<TupleRef>> {
    let items = match field {
        "operations" => required_operations(body)?,
        _ => body.get(field).ok_or_else(|| {
            ApiError::validation(
                vec!["body".into(), field.into()],
                "field required",
                "value_error.missing",
            )
        })?,
    };
    let list = bulk_list(
        items,
        vec!["body".into(), field.into()],
        limits::BULK_TUPLES,
    )?;
    let mut errors = Vec::new();
    let mut refs = Vec::with_capacity(list.len());
    for (i, item) in list.iter().enumerate() {
        let (r, errs) = tuple_ref(
            item,
            vec!["body".into(), field.into(), i.into()],
            with_tenant,
        );
        errors.extend(errs);
        refs.push(r);
    }
    finish(errors)?;
    Ok(refs)
}

/// `GET relationship_tuples`: a bare array, or the envelope with `include_total_count`.
pub async fn list(State(s): AppState, RawQuery(q): RawQuery) -> ApiResult<Response> {
    let q = Query::parse(q.as_deref());
    let page = q.pagination()?;
    let envelope = q.flag("include_total_count")?;
    let filter = TupleFilter {
        subject: q.one("subject").map(String::from),
        relation: q.one("relation").map(String::from),
        object: q.one("object").map(String::from),
        tenant: q.one("tenant").map(String::from),
    };
    let store = s.store.read();
    let (rows, total) = store.list_tuples(&filter, page);
    let items = rows.iter().map(|t| views::tuple(&store, t)).collect();
    Ok(views::listing(items, total, page, envelope))
}

/// `POST relationship_tuples`: 200 with the tuple.
pub async fn create(State(s): AppState, body: Bytes) -> ApiResult<Response> {
    let body = json_body(&body)?;
    let (r, errors) = tuple_ref(&body, vec!["body".into()], true);
    finish(errors)?;
    let mut store = s.store.write();
    let id = store.create_tuple(&r)?.id;
    let t = store.tuples.get_by_id(id).expect("just created");
    Ok(Json(views::tuple(&store, t)).into_response())
}

/// `DELETE relationship_tuples` `{subject, relation, object}`: 204, 404 when missing.
pub async fn delete(State(s): AppState, body: Bytes) -> ApiResult<StatusCode> {
    let body = json_body(&body)?;
    let (r, errors) = tuple_ref(&body, vec!["body".into()], false);
    finish(errors)?;
    s.store.write().delete_tuple(&r)?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST relationship_tuples/bulk`: answers `{}` (`RelationshipTupleCreateBulkOperationResult`).
pub async fn bulk_create(State(s): AppState, body: Bytes) -> ApiResult<Json<wire::BulkReport>> {
    let body = json_body(&body)?;
    let refs = tuple_list(&body, "operations", true)?;
    s.store.write().bulk_create_tuples(&refs)?;
    Ok(Json(wire::Empty {}))
}

pub async fn bulk_delete(State(s): AppState, body: Bytes) -> ApiResult<Json<wire::BulkReport>> {
    let body = json_body(&body)?;
    let refs = tuple_list(&body, "idents", false)?;
    s.store.write().bulk_delete_tuples(&refs);
    Ok(Json(wire::Empty {}))
}
