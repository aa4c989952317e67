//! `/v2/facts/{proj}/{env}/tenants` and `/bulk/tenants`.

use super::users::idents;
use super::{AppState, Params, limits, param};
use crate::error::{ApiError, ApiResult, FieldError};
use crate::input::{
    Fields, KeyPattern, Query, bulk_operations, finish, json_body, required_operations,
};
use crate::store::{TenantInput, TenantPatch};
use crate::views;
use axum::Json;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use permit_api::response as wire;
use serde_json::Value;

fn tenant_input(value: &Value, loc: Vec<Value>) -> (TenantInput, Vec<FieldError>) {
    let mut f = Fields::new(value, loc);
    let key = f.req_str("key");
    f.check_key("key", &key, KeyPattern::Slug);
    let input = TenantInput {
        key,
        name: f.req_str("name"),
        description: f.opt_str("description"),
        attributes: f.opt_obj("attributes"),
    };
    (input, f.errors)
}

pub async fn list(State(s): AppState, RawQuery(q): RawQuery) -> ApiResult<Response> {
    let q = Query::parse(q.as_deref());
    let page = q.pagination()?;
    let envelope = q.flag("include_total_count")?;
    let store = s.store.read();
    let (rows, total) = store.list_tenants(q.one("search"), page);
    let items = rows
        .iter()
        .map(|t| views::tenant(&store.scope, t))
        .collect();
    Ok(views::listing(items, total, page, envelope))
}

pub async fn get(State(s): AppState, p: Params) -> ApiResult<Response> {
    let ident = param(&p, "tenant");
    let store = s.store.read();
    let tenant = store
        .tenants
        .get(ident)
        .ok_or_else(|| ApiError::not_found("tenant", ident))?;
    Ok(Json(views::tenant(&store.scope, tenant)).into_response())
}

pub async fn create(State(s): AppState, body: Bytes) -> ApiResult<Response> {
    let body = json_body(&body)?;
    let (input, errors) = tenant_input(&body, vec!["body".into()]);
    finish(errors)?;
    let mut store = s.store.write();
    let tenant = views::tenant(&store.scope.clone(), store.create_tenant(input)?);
    Ok((StatusCode::OK, Json(tenant)).into_response())
}

pub async fn patch(State(s): AppState, p: Params, body: Bytes) -> ApiResult<Response> {
    let body = json_body(&body)?;
    let mut f = Fields::new(&body, vec!["body".into()]);
    let patch = TenantPatch {
        name: f.opt_str("name"),
        description: f.sent("description").then(|| f.opt_str("description")),
        attributes: f.sent("attributes").then(|| f.opt_obj("attributes")),
    };
    finish(f.errors)?;
    let mut store = s.store.write();
    let scope = store.scope.clone();
    let tenant = store.patch_tenant(param(&p, "tenant"), patch)?;
    Ok(Json(views::tenant(&scope, tenant)).into_response())
}

pub async fn delete(State(s): AppState, p: Params) -> ApiResult<StatusCode> {
    s.store.write().delete_tenant(param(&p, "tenant"))?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /tenants/{t}/users`: an envelope, like the user list.
pub async fn users(State(s): AppState, p: Params, RawQuery(q): RawQuery) -> ApiResult<Response> {
    let ident = param(&p, "tenant");
    let q = Query::parse(q.as_deref());
    let page = q.pagination()?;
    let store = s.store.read();
    let tenant = store
        .tenants
        .get(ident)
        .ok_or_else(|| ApiError::not_found("tenant", ident))?;
    let (rows, total) = store.tenant_users(tenant.id, page);
    let items = rows.iter().map(|u| views::user(&store, u)).collect();
    Ok(views::listing(items, total, page, true))
}

/// `DELETE /tenants/{t}/users/{u}`: the user loses every role it held in the tenant.
pub async fn remove_user(State(s): AppState, p: Params) -> ApiResult<StatusCode> {
    s.store
        .write()
        .remove_tenant_user(param(&p, "tenant"), param(&p, "user"))?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn bulk_create(State(s): AppState, body: Bytes) -> ApiResult<Json<wire::Empty>> {
    let body = json_body(&body)?;
    let (inputs, errors) = bulk_operations(
        required_operations(&body)?,
        limits::BULK_TENANTS,
        tenant_input,
    )?;
    finish(errors)?;
    s.store.write().bulk_create_tenants(inputs)?;
    Ok(Json(wire::Empty {}))
}

pub async fn bulk_delete(State(s): AppState, body: Bytes) -> ApiResult<Json<wire::Empty>> {
    let body = json_body(&body)?;
    let idents = idents(&body, limits::BULK_TENANTS)?;
    s.store.write().bulk_delete_tenants(&idents);
    Ok(Json(wire::Empty {}))
}

#[cfg(test)]
mod tests {
    use super::*;
    use permit_api::request as wire;

    /// The body the client sends (`permit_api::request::TenantCreate`) reads back field for field.
    #[test]
    fn the_clients_tenant_body_reads_back() {
        let attrs: serde_json::Map<String, Value> = [("plan".to_string(), Value::from("pro"))]
            .into_iter()
            .collect();
        let sent = wire::TenantCreate {
            key: "acme",
            name: "Acme",
            description: Some("the customer"),
            attributes: Some(&attrs),
        };
        let body = serde_json::to_value(sent).unwrap();
        let (t, errors) = tenant_input(&body, vec!["body".into()]);
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(
            (t.key.as_str(), t.name.as_str(), t.description.as_deref()),
            ("acme", "Acme", Some("the customer"))
        );
        assert_eq!(t.attributes.as_ref(), Some(&attrs));
    }
}
