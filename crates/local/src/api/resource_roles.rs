//! `/v2/schema/{proj}/{env}/resources/{resource}/roles[/{role}]`, their `permissions`, and the
//! role derivations `…/roles/{role}/implicit_grants[/conditions]` (permit-python
//! `permit/api/resource_roles.py`: the list is a bare array; create, update, delete; assign and
//! remove permissions; `create_role_derivation`, `delete_role_derivation` with a
//! `DerivedRoleRuleCreate` body, `update_role_derivation_conditions` with
//! `{no_direct_roles_on_object}`).

use super::schema::list_page;
use super::{AppState, Params, param};
use crate::error::{ApiError, ApiResult, FieldError};
use crate::input::{Fields, KeyPattern, finish, json_body};
use crate::store::{
    DerivationRule, GrantedToInput, RelationInput, ResourceRoleInput, ResourceRolePatch,
};
use crate::views;
use axum::Json;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// One `DerivedRoleRuleCreate` `{role, on_resource, linked_by_relation, when?}` at `loc`.
fn rule(value: &Value, loc: Vec<Value>) -> (DerivationRule, Vec<FieldError>) {
    let mut f = Fields::new(value, loc);
    let role = f.req_str("role");
    let on_resource = f.req_str("on_resource");
    let linked_by_relation = f.req_str("linked_by_relation");
    let when = when(&mut f);
    (
        DerivationRule {
            role,
            on_resource,
            linked_by_relation,
            no_direct_roles_on_object: when.unwrap_or(false),
        },
        f.errors,
    )
}

/// A `when: {no_direct_roles_on_object?}` field.
fn when(f: &mut Fields) -> Option<bool> {
    let value = f.opt_value("when")?;
    match value.get("no_direct_roles_on_object") {
        None | Some(Value::Null) => None,
        Some(Value::Bool(b)) => Some(*b),
        Some(_) => {
            f.push(
                "when",
                "no_direct_roles_on_object: value could not be parsed to a boolean",
                "type_error.bool",
            );
            None
        }
    }
}

/// `granted_to: {users_with_role?: [rule], when?}`.
fn granted_to(f: &mut Fields, loc: &[Value]) -> Option<GrantedToInput> {
    let block = f.opt_value("granted_to")?;
    let mut g = Fields::new(block, [loc, &["granted_to".into()]].concat());
    let no_direct = when(&mut g);
    let mut rules = Vec::new();
    match g.opt_value("users_with_role") {
        None => {}
        Some(Value::Array(items)) => {
            for (i, item) in items.iter().enumerate() {
                let at = [
                    loc,
                    &["granted_to".into(), "users_with_role".into(), i.into()],
                ]
                .concat();
                let (r, errs) = rule(item, at);
                g.errors.extend(errs);
                rules.push(r);
            }
        }
        Some(_) => g.push(
            "users_with_role",
            "value is not a valid list",
            "type_error.list",
        ),
    }
    f.errors.append(&mut g.errors);
    Some(GrantedToInput {
        users_with_role: rules,
        no_direct_roles_on_object: no_direct,
    })
}

/// A `ResourceRoleCreate` at `loc`; `key` from the map key when the role comes inline.
fn role_input(
    value: &Value,
    loc: Vec<Value>,
    key: Option<&str>,
) -> (ResourceRoleInput, Vec<FieldError>) {
    let mut f = Fields::new(value, loc.clone());
    let key = match key {
        Some(k) => k.to_string(),
        None => {
            let k = f.req_str("key");
            f.check_key("key", &k, KeyPattern::Slug);
            k
        }
    };
    let input = ResourceRoleInput {
        key,
        name: f.req_str("name"),
        description: f.opt_str("description"),
        permissions: f.opt_str_list("permissions").unwrap_or_default(),
        extends: f.opt_str_list("extends").unwrap_or_default(),
        attributes: f.opt_obj("attributes"),
        granted_to: granted_to(&mut f, &loc),
    };
    (input, f.errors)
}

/// The inline `roles` and `relations` of a `ResourceCreate`.
pub(super) fn inline(body: &Value) -> ApiResult<(Vec<ResourceRoleInput>, Vec<RelationInput>)> {
    let mut errors = Vec::new();
    let mut roles = Vec::new();
    if let Some(map) = body.get("roles").filter(|v| !v.is_null()) {
        let Some(map) = map.as_object() else {
            return Err(ApiError::validation(
                vec!["body".into(), "roles".into()],
                "value is not a valid dict",
                "type_error.dict",
            ));
        };
        for (key, role) in map {
            let loc = vec!["body".into(), "roles".into(), key.as_str().into()];
            if !KeyPattern::Slug.matches(key) {
                errors.push(FieldError::new(
                    loc.clone(),
                    format!(
                        "string does not match regex \"{}\"",
                        KeyPattern::Slug.regex()
                    ),
                    "value_error.str.regex",
                ));
            }
            let (r, errs) = role_input(role, loc, Some(key));
            errors.extend(errs);
            roles.push(r);
        }
    }
    let mut relations = Vec::new();
    if let Some(map) = body.get("relations").filter(|v| !v.is_null()) {
        let Some(map) = map.as_object() else {
            return Err(ApiError::validation(
                vec!["body".into(), "relations".into()],
                "value is not a valid dict",
                "type_error.dict",
            ));
        };
        for (key, subject) in map {
            let loc = vec![Value::from("body"), "relations".into(), key.as_str().into()];
            match subject.as_str() {
                Some(subject) if KeyPattern::Slug.matches(key) => relations.push(RelationInput {
                    key: key.clone(),
                    name: key.clone(),
                    description: None,
                    subject_resource: subject.to_string(),
                }),
                Some(_) => errors.push(FieldError::new(
                    loc,
                    format!(
                        "string does not match regex \"{}\"",
                        KeyPattern::Slug.regex()
                    ),
                    "value_error.str.regex",
                )),
                None => errors.push(FieldError::new(loc, "str type expected", "type_error.str")),
            }
        }
    }
    finish(errors)?;
    Ok((roles, relations))
}

pub async fn list(State(s): AppState, p: Params, RawQuery(q): RawQuery) -> ApiResult<Response> {
    let store = s.store.read();
    let resource = store.resource_key(param(&p, "resource"))?;
    let roles = store.roles_of_resource(&resource);
    list_page(q, &roles, |r| views::resource_role(&store, r))
}

pub async fn get(State(s): AppState, p: Params) -> ApiResult<Response> {
    let store = s.store.read();
    let r = store.resource_role(param(&p, "resource"), param(&p, "role"))?;
    Ok(Json(views::resource_role(&store, r)).into_response())
}

/// Answers with the role `(resource, key)` as it is now.
fn role_response(store: &crate::store::Store, (resource, key): (String, String)) -> Response {
    let r = store.resource_role(&resource, &key).expect("just written");
    Json(views::resource_role(store, r)).into_response()
}

/// `POST resources/{r}/roles`: 200, as the tenant roles' create.
pub async fn create(State(s): AppState, p: Params, body: Bytes) -> ApiResult<Response> {
    let body = json_body(&body)?;
    let (input, errors) = role_input(&body, vec!["body".into()], None);
    finish(errors)?;
    let mut store = s.store.write();
    let id = store
        .create_resource_role(param(&p, "resource"), input)?
        .key_pair();
    Ok(role_response(&store, id))
}

pub async fn patch(State(s): AppState, p: Params, body: Bytes) -> ApiResult<Response> {
    let body = json_body(&body)?;
    let mut f = Fields::new(&body, vec!["body".into()]);
    let patch = ResourceRolePatch {
        name: f.opt_str("name"),
        description: f.sent("description").then(|| f.opt_str("description")),
        permissions: f
            .sent("permissions")
            .then(|| f.opt_str_list("permissions").unwrap_or_default()),
        extends: f
            .sent("extends")
            .then(|| f.opt_str_list("extends").unwrap_or_default()),
        attributes: f.sent("attributes").then(|| f.opt_obj("attributes")),
        granted_to: granted_to(&mut f, &["body".into()]),
    };
    finish(f.errors)?;
    let mut store = s.store.write();
    let id = store
        .patch_resource_role(param(&p, "resource"), param(&p, "role"), patch)?
        .key_pair();
    Ok(role_response(&store, id))
}

pub async fn delete(State(s): AppState, p: Params) -> ApiResult<StatusCode> {
    s.store
        .write()
        .delete_resource_role(param(&p, "resource"), param(&p, "role"))?;
    Ok(StatusCode::NO_CONTENT)
}

fn permissions_body(body: &Bytes) -> ApiResult<Vec<String>> {
    let body = json_body(body)?;
    let mut f = Fields::new(&body, vec!["body".into()]);
    let perms = f.opt_str_list("permissions");
    if perms.is_none() && f.errors.is_empty() {
        f.push("permissions", "field required", "value_error.missing");
    }
    finish(f.errors)?;
    Ok(perms.unwrap_or_default())
}

pub async fn add_permissions(State(s): AppState, p: Params, body: Bytes) -> ApiResult<Response> {
    let perms = permissions_body(&body)?;
    let mut store = s.store.write();
    let id = store
        .add_resource_role_permissions(param(&p, "resource"), param(&p, "role"), &perms)?
        .key_pair();
    Ok(role_response(&store, id))
}

pub async fn remove_permissions(State(s): AppState, p: Params, body: Bytes) -> ApiResult<Response> {
    let perms = permissions_body(&body)?;
    let mut store = s.store.write();
    let id = store
        .remove_resource_role_permissions(param(&p, "resource"), param(&p, "role"), &perms)?
        .key_pair();
    Ok(role_response(&store, id))
}

fn rule_body(body: &Bytes) -> ApiResult<DerivationRule> {
    let body = json_body(body)?;
    let (r, errors) = rule(&body, vec!["body".into()]);
    finish(errors)?;
    Ok(r)
}

/// `POST …/implicit_grants`: the `DerivedRoleRuleRead` created (200).
pub async fn create_derivation(State(s): AppState, p: Params, body: Bytes) -> ApiResult<Response> {
    let rule = rule_body(&body)?;
    let mut store = s.store.write();
    let (id, at) = {
        let (r, at) = store.add_derivation(param(&p, "resource"), param(&p, "role"), rule)?;
        (r.key_pair(), at)
    };
    let r = store.resource_role(&id.0, &id.1).expect("just written");
    Ok(Json(views::derivation(&store, r, &r.granted_to[at])).into_response())
}

pub async fn delete_derivation(
    State(s): AppState,
    p: Params,
    body: Bytes,
) -> ApiResult<StatusCode> {
    let rule = rule_body(&body)?;
    s.store
        .write()
        .remove_derivation(param(&p, "resource"), param(&p, "role"), &rule)?;
    Ok(StatusCode::NO_CONTENT)
}

/// `PUT …/implicit_grants/conditions` `{no_direct_roles_on_object}`: answers the settings.
pub async fn derivation_conditions(
    State(s): AppState,
    p: Params,
    body: Bytes,
) -> ApiResult<Response> {
    let body = json_body(&body)?;
    let mut f = Fields::new(&body, vec!["body".into()]);
    let value = match f.opt_value("no_direct_roles_on_object") {
        None => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => {
            f.push(
                "no_direct_roles_on_object",
                "value could not be parsed to a boolean",
                "type_error.bool",
            );
            false
        }
    };
    finish(f.errors)?;
    let mut store = s.store.write();
    let r = store.set_derivation_conditions(param(&p, "resource"), param(&p, "role"), value)?;
    Ok(Json(json!({"no_direct_roles_on_object": r.no_direct_roles_on_object})).into_response())
}
