//! `/v2/schema/{proj}/{env}/resources/{object}/relations[/{relation}]` (permit-python
//! `permit/api/resource_relations.py`: the list is always an envelope,
//! `PaginatedResultRelationRead`; no update).

use super::{AppState, Params, param};
use crate::error::ApiResult;
use crate::input::{Fields, KeyPattern, Query, finish, json_body};
use crate::store::RelationInput;
use crate::views;
use axum::Json;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

pub async fn list(State(s): AppState, p: Params, RawQuery(q): RawQuery) -> ApiResult<Response> {
    let q = Query::parse(q.as_deref());
    let page = q.pagination()?;
    let store = s.store.read();
    let object = store.resource_key(param(&p, "resource"))?;
    let all = store.relations_of(&object);
    let items = page
        .slice(&all)
        .iter()
        .map(|r| views::relation(&store, r))
        .collect();
    Ok(views::listing(items, all.len(), page, true))
}

pub async fn get(State(s): AppState, p: Params) -> ApiResult<Response> {
    let store = s.store.read();
    let r = store.relation(param(&p, "resource"), param(&p, "relation"))?;
    Ok(Json(views::relation(&store, r)).into_response())
}

/// `POST resources/{object}/relations` `{key, name, description?, subject_resource}`: 200.
pub async fn create(State(s): AppState, p: Params, body: Bytes) -> ApiResult<Response> {
    let body = json_body(&body)?;
    let mut f = Fields::new(&body, vec!["body".into()]);
    let key = f.req_str("key");
    f.check_key("key", &key, KeyPattern::Slug);
    let input = RelationInput {
        key,
        name: f.req_str("name"),
        description: f.opt_str("description"),
        subject_resource: f.req_str("subject_resource"),
    };
    finish(f.errors)?;
    let mut store = s.store.write();
    let (object, key) = {
        let r = store.create_relation(param(&p, "resource"), input)?;
        (r.object_resource.clone(), r.key.clone())
    };
    let r = store.relation(&object, &key).expect("just created");
    Ok(Json(views::relation(&store, r)).into_response())
}

pub async fn delete(State(s): AppState, p: Params) -> ApiResult<StatusCode> {
    s.store
        .write()
        .delete_relation(param(&p, "resource"), param(&p, "relation"))?;
    Ok(StatusCode::NO_CONTENT)
}
