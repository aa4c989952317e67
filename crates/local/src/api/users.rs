//! `/v2/facts/{proj}/{env}/users` and `/bulk/users`.

use super::{AppState, Params, limits, param};
use crate::error::ApiResult;
use crate::input::{Fields, KeyPattern, Query, bulk_operations, finish, json_body};
use crate::store::{AssignmentRef, UserInput, UserPatch};
use crate::views;
use axum::Json;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use permit_api::response as wire;
use serde_json::Value;

/// Reads a `UserCreate`; `path_key` stands in for a missing body key (PUT names the user in the path).
pub(super) fn user_input(
    value: &Value,
    loc: Vec<Value>,
    path_key: Option<&str>,
) -> (UserInput, Vec<crate::error::FieldError>) {
    let mut f = Fields::new(value, loc);
    let key = match (path_key, f.sent("key")) {
        (Some(k), false) => k.to_string(),
        _ => f.req_str("key"),
    };
    f.check_key("key", &key, KeyPattern::User);
    let email = f.opt_str("email");
    f.check_email("email", &email);
    let input = UserInput {
        key,
        email,
        first_name: f.opt_str("first_name"),
        last_name: f.opt_str("last_name"),
        attributes: f.opt_obj("attributes"),
    };
    (input, f.errors)
}

pub async fn list(State(s): AppState, RawQuery(q): RawQuery) -> ApiResult<Response> {
    let q = Query::parse(q.as_deref());
    let page = q.pagination()?;
    let store = s.store.read();
    let (rows, total) = store.list_users(q.one("search"), q.one("role"), page);
    let items = rows.iter().map(|u| views::user(&store, u)).collect();
    Ok(views::listing(items, total, page, true))
}

pub async fn get(State(s): AppState, p: Params) -> ApiResult<Response> {
    let ident = param(&p, "user");
    let store = s.store.read();
    let user = store
        .users
        .get(ident)
        .ok_or_else(|| crate::error::ApiError::not_found("user", ident))?;
    Ok(Json(views::user(&store, user)).into_response())
}

pub async fn create(State(s): AppState, body: Bytes) -> ApiResult<Response> {
    let body = json_body(&body)?;
    let (input, errors) = user_input(&body, vec!["body".into()], None);
    finish(errors)?;
    let mut store = s.store.write();
    let id = store.create_user(input)?.id;
    let user = store.users.get_by_id(id).expect("just created");
    Ok((StatusCode::CREATED, Json(views::user(&store, user))).into_response())
}

/// PUT: upsert, 201 when created, 200 when replaced.
pub async fn put(State(s): AppState, p: Params, body: Bytes) -> ApiResult<Response> {
    let ident = param(&p, "user");
    let body = json_body(&body)?;
    // The path names the user by key, or by UUID when it exists; the body may not rename it.
    let path_key = s
        .store
        .read()
        .users
        .get(ident)
        .map_or_else(|| ident.to_string(), |u| u.key.clone());
    let (input, errors) = user_input(&body, vec!["body".into()], Some(&path_key));
    finish(errors)?;
    if input.key != path_key {
        return Err(crate::error::ApiError::validation(
            vec!["body".into(), "key".into()],
            format!(
                "the key in the body ('{}') must match the user in the path ('{path_key}')",
                input.key
            ),
            "value_error",
        ));
    }
    let mut store = s.store.write();
    let (id, created) = {
        let (user, created) = store.put_user(ident, input)?;
        (user.id, created)
    };
    let user = store.users.get_by_id(id).expect("just written");
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(views::user(&store, user))).into_response())
}

pub async fn patch(State(s): AppState, p: Params, body: Bytes) -> ApiResult<Response> {
    let ident = param(&p, "user");
    let body = json_body(&body)?;
    let mut f = Fields::new(&body, vec!["body".into()]);
    let patch = UserPatch {
        email: f.sent("email").then(|| f.opt_str("email")),
        first_name: f.sent("first_name").then(|| f.opt_str("first_name")),
        last_name: f.sent("last_name").then(|| f.opt_str("last_name")),
        attributes: f.sent("attributes").then(|| f.opt_obj("attributes")),
    };
    if let Some(email) = &patch.email {
        f.check_email("email", email);
    }
    finish(f.errors)?;
    let mut store = s.store.write();
    let id = store.patch_user(ident, patch)?.id;
    let user = store.users.get_by_id(id).expect("just written");
    Ok(Json(views::user(&store, user)).into_response())
}

pub async fn delete(State(s): AppState, p: Params) -> ApiResult<StatusCode> {
    s.store.write().delete_user(param(&p, "user"))?;
    Ok(StatusCode::NO_CONTENT)
}

/// `{role, tenant?, resource_instance?}` for the user-path assign/unassign routes.
fn role_ref(user: &str, body: &Value, tenant_required: bool) -> ApiResult<AssignmentRef> {
    let mut f = Fields::new(body, vec!["body".into()]);
    let role = f.req_str("role");
    let tenant = if tenant_required {
        Some(f.req_str("tenant"))
    } else {
        f.opt_str("tenant")
    };
    let resource_instance = f.opt_str("resource_instance");
    finish(f.errors)?;
    Ok(AssignmentRef {
        user: user.to_string(),
        role,
        tenant,
        resource_instance,
    })
}

pub async fn assign_role(State(s): AppState, p: Params, body: Bytes) -> ApiResult<Response> {
    let body = json_body(&body)?;
    let r = role_ref(param(&p, "user"), &body, false)?;
    let mut store = s.store.write();
    let id = store.assign_any(&r)?;
    Ok((StatusCode::OK, Json(views::assignment_by_id(&store, id))).into_response())
}

pub async fn unassign_role(State(s): AppState, p: Params, body: Bytes) -> ApiResult<StatusCode> {
    let body = json_body(&body)?;
    let r = role_ref(param(&p, "user"), &body, true)?;
    s.store.write().unassign(&r)?;
    Ok(StatusCode::NO_CONTENT)
}

fn operations(body: &Value) -> ApiResult<(Vec<UserInput>, Vec<crate::error::FieldError>)> {
    let mut f = Fields::new(body, vec!["body".into()]);
    let ops = f.opt_value("operations").cloned();
    if ops.is_none() {
        f.req_str("operations");
    }
    finish(std::mem::take(&mut f.errors))?;
    bulk_operations(&ops.unwrap_or_default(), limits::BULK_USERS, |item, loc| {
        user_input(item, loc, None)
    })
}

pub async fn bulk_create(State(s): AppState, body: Bytes) -> ApiResult<Json<wire::Empty>> {
    let body = json_body(&body)?;
    let (inputs, errors) = operations(&body)?;
    finish(errors)?;
    s.store.write().bulk_create_users(inputs)?;
    Ok(Json(wire::Empty {}))
}

pub async fn bulk_put(State(s): AppState, body: Bytes) -> ApiResult<Json<wire::Empty>> {
    let body = json_body(&body)?;
    let (inputs, errors) = operations(&body)?;
    finish(errors)?;
    s.store.write().bulk_put_users(inputs);
    Ok(Json(wire::Empty {}))
}

pub async fn bulk_delete(State(s): AppState, body: Bytes) -> ApiResult<Json<wire::Empty>> {
    let body = json_body(&body)?;
    let idents = idents(&body, limits::BULK_USERS)?;
    s.store.write().bulk_delete_users(&idents);
    Ok(Json(wire::Empty {}))
}

/// `{"idents": [...]}` of a bulk delete.
pub(super) fn idents(body: &Value, limit: usize) -> ApiResult<Vec<String>> {
    let mut f = Fields::new(body, vec!["body".into()]);
    let list = f.opt_str_list("idents");
    if list.is_none() && f.errors.is_empty() {
        f.req_str("idents");
    }
    finish(f.errors)?;
    let list = list.unwrap_or_default();
    if list.len() > limit {
        return Err(crate::error::ApiError::validation(
            vec!["body".into(), "idents".into()],
            format!("ensure this value has at most {limit} items"),
            "value_error.list.max_items",
        ));
    }
    Ok(list)
}

#[cfg(test)]
mod tests {
    use super::*;
    use permit_api::request as wire;

    /// The bodies the client sends (`permit_api::request`) read back here field for field.
    #[test]
    fn the_clients_user_bodies_read_back() {
        let attrs: serde_json::Map<String, Value> = [("team".to_string(), Value::from("a"))]
            .into_iter()
            .collect();
        let sent = wire::UserUpsert {
            key: "jane",
            email: Some("jane@example.com"),
            first_name: Some("Jane"),
            last_name: None,
            attributes: Some(&attrs),
        };
        let body = serde_json::to_value(wire::Operations {
            operations: vec![sent],
        })
        .unwrap();
        let (inputs, errors) = operations(&body).unwrap();
        assert!(errors.is_empty(), "{errors:?}");
        let u = &inputs[0];
        assert_eq!(u.key, "jane");
        assert_eq!(u.email.as_deref(), Some("jane@example.com"));
        assert_eq!(u.first_name.as_deref(), Some("Jane"));
        assert_eq!(u.last_name, None);
        assert_eq!(u.attributes.as_ref(), Some(&attrs));
        let body = serde_json::to_value(wire::Idents {
            idents: vec!["a", "b"],
        })
        .unwrap();
        assert_eq!(idents(&body, 10).unwrap(), ["a", "b"]);
    }
}
