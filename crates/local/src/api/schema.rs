//! `/v2/schema/{proj}/{env}`: resources with actions, tenant-level roles with permissions.

use super::{AppState, Params, limits, param};
use crate::error::{ApiError, ApiResult, FieldError};
use crate::input::{
    Fields, KeyPattern, Query, bulk_operations, finish, json_body, required_operations,
};
use crate::store::{ActionInput, ResourceInput, ResourcePatch, RoleInput, RolePatch};
use crate::views;
use axum::Json;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use permit_api::response as wire;
use serde_json::Value;

/// An `actions` map `key → {name?, description?, attributes?}`.
pub(super) fn actions(f: &mut Fields, value: Option<&Value>) -> Vec<ActionInput> {
    let Some(value) = value else {
        return Vec::new();
    };
    let Some(map) = value.as_object() else {
        f.push("actions", "value is not a valid dict", "type_error.dict");
        return Vec::new();
    };
    let mut out = Vec::with_capacity(map.len());
    for (key, block) in map {
        if !KeyPattern::Slug.matches(key) {
            f.push(
                "actions",
                format!(
                    "action key '{key}' does not match regex \"{}\"",
                    KeyPattern::Slug.regex()
                ),
                "value_error.str.regex",
            );
            continue;
        }
        let get_str = |name: &str| block.get(name).and_then(Value::as_str).map(String::from);
        out.push(ActionInput {
            key: key.clone(),
            name: get_str("name"),
            description: get_str("description"),
            attributes: block.get("attributes").and_then(Value::as_object).cloned(),
        });
    }
    out
}

fn resource_input(body: &Value, key_from_path: Option<&str>) -> ApiResult<ResourceInput> {
    let mut f = Fields::new(body, vec!["body".into()]);
    let key = match key_from_path {
        Some(k) => k.to_string(),
        None => {
            let k = f.req_str("key");
            f.check_key("key", &k, KeyPattern::Slug);
            k
        }
    };
    let name = f.req_str("name");
    if !f.sent("actions") {
        f.push("actions", "field required", "value_error.missing");
    }
    let sent_actions = f.opt_value("actions");
    let actions = actions(&mut f, sent_actions);
    let input = ResourceInput {
        key,
        name,
        description: f.opt_str("description"),
        urn: f.opt_str("urn"),
        actions,
        attributes: f.opt_value("attributes").cloned(),
        type_attributes: f.opt_value("type_attributes").cloned(),
    };
    finish(f.errors)?;
    Ok(input)
}

/// A page of a whole table, shown by `view`; Permit's envelope when `include_total_count` asks.
pub(super) fn list_page<'s, T, V: serde::Serialize>(
    q: Option<String>,
    all: &'s [T],
    view: impl Fn(&'s T) -> V,
) -> ApiResult<Response> {
    let q = Query::parse(q.as_deref());
    let page = q.pagination()?;
    let envelope = q.flag("include_total_count")?;
    let items = page.slice(all).iter().map(view).collect();
    Ok(views::listing(items, all.len(), page, envelope))
}

pub async fn list_resources(State(s): AppState, RawQuery(q): RawQuery) -> ApiResult<Response> {
    let store = s.store.read();
    list_page(q, store.resources.rows(), |r| views::resource(&store, r))
}

pub async fn get_resource(State(s): AppState, p: Params) -> ApiResult<Response> {
    let ident = param(&p, "resource");
    let store = s.store.read();
    let r = store
        .resources
        .get(ident)
        .ok_or_else(|| ApiError::not_found("resource", ident))?;
    Ok(Json(views::resource(&store, r)).into_response())
}

/// `POST /resources`: 200, not 201. Permit's OpenAPI lists only a `200` response for
/// `create_resource` (as for `create_role`; permitio/permit-cli `source/lib/api/v1.d.ts`, Permit's
/// spec as TypeScript types: `responses: {200: …ResourceRead…, 422: …}`), where user creation's
/// text says 201 (permit-api.md §7). A duplicate key is 409 (permit-python
/// `tests/endpoints/test_resources.py`).
///
/// Roles and relations may come inline (`ResourceCreate.roles: {key → ResourceRoleCreate}`,
/// `.relations: {key → subject resource key}`; permit-python's live `tests/test_rebac_e2e.py`
/// creates them so): relations first, then roles (whose `granted_to` may follow them). A bad
/// one takes the resource back out, so the call changes nothing.
pub async fn create_resource(State(s): AppState, body: Bytes) -> ApiResult<Response> {
    let body = json_body(&body)?;
    let input = resource_input(&body, None)?;
    let (roles, relations) = super::resource_roles::inline(&body)?;
    let mut store = s.store.write();
    let key = store.create_resource(input)?.key.clone();
    let inline = (|| {
        for rel in relations {
            store.create_relation(&key, rel)?;
        }
        for role in roles {
            store.create_resource_role(&key, role)?;
        }
        Ok(())
    })();
    if let Err(e) = inline {
        store.delete_resource(&key).expect("just created");
        return Err(e);
    }
    let r = store.resources.get(&key).expect("just created");
    Ok((StatusCode::OK, Json(views::resource(&store, r))).into_response())
}

pub async fn replace_resource(State(s): AppState, p: Params, body: Bytes) -> ApiResult<Response> {
    let ident = param(&p, "resource");
    let body = json_body(&body)?;
    let mut store = s.store.write();
    // The path names an existing resource by key or id; a new one takes the path as its key.
    let key = match store.resources.get(ident) {
        Some(r) => r.key.clone(),
        None if KeyPattern::Slug.matches(ident) => ident.to_string(),
        None => return Err(ApiError::not_found("resource", ident)),
    };
    let input = resource_input(&body, Some(&key))?;
    let created = store.replace_resource(ident, input)?.1;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    let r = store.resources.get(&key).expect("just written");
    Ok((status, Json(views::resource(&store, r))).into_response())
}

pub async fn patch_resource(State(s): AppState, p: Params, body: Bytes) -> ApiResult<Response> {
    let body = json_body(&body)?;
    let mut f = Fields::new(&body, vec!["body".into()]);
    let patch = ResourcePatch {
        name: f.opt_str("name"),
        description: f.sent("description").then(|| f.opt_str("description")),
        urn: f.sent("urn").then(|| f.opt_str("urn")),
        actions: f
            .sent("actions")
            .then(|| actions(&mut f, body.get("actions"))),
        attributes: f
            .sent("attributes")
            .then(|| f.opt_value("attributes").cloned()),
        type_attributes: f
            .sent("type_attributes")
            .then(|| f.opt_value("type_attributes").cloned()),
    };
    finish(f.errors)?;
    let mut store = s.store.write();
    let key = store
        .patch_resource(param(&p, "resource"), patch)?
        .key
        .clone();
    let r = store.resources.get(&key).expect("just written");
    Ok(Json(views::resource(&store, r)).into_response())
}

pub async fn delete_resource(State(s): AppState, p: Params) -> ApiResult<StatusCode> {
    s.store.write().delete_resource(param(&p, "resource"))?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn list_actions(State(s): AppState, p: Params) -> ApiResult<Response> {
    let ident = param(&p, "resource");
    let store = s.store.read();
    let r = store
        .resources
        .get(ident)
        .ok_or_else(|| ApiError::not_found("resource", ident))?;
    let items: Vec<_> = r
        .actions
        .iter()
        .map(|a| views::action(&store.scope, r, a))
        .collect();
    Ok(Json(items).into_response())
}

pub async fn get_action(State(s): AppState, p: Params) -> ApiResult<Response> {
    let (res, act) = (param(&p, "resource"), param(&p, "action"));
    let store = s.store.read();
    let r = store
        .resources
        .get(res)
        .ok_or_else(|| ApiError::not_found("resource", res))?;
    let a = r
        .action(act)
        .ok_or_else(|| ApiError::not_found("action", act))?;
    Ok(Json(views::action(&store.scope, r, a)).into_response())
}

pub async fn create_action(State(s): AppState, p: Params, body: Bytes) -> ApiResult<Response> {
    let res = param(&p, "resource");
    let body = json_body(&body)?;
    let mut f = Fields::new(&body, vec!["body".into()]);
    let key = f.req_str("key");
    f.check_key("key", &key, KeyPattern::Slug);
    let input = ActionInput {
        key,
        name: Some(f.req_str("name")),
        description: f.opt_str("description"),
        attributes: f.opt_obj("attributes"),
    };
    finish(f.errors)?;
    let mut store = s.store.write();
    let action_id = store.create_action(res, input)?.id;
    let r = store.resources.get(res).expect("resource exists");
    let a = r
        .actions
        .iter()
        .find(|a| a.id == action_id)
        .expect("just added");
    Ok((StatusCode::CREATED, Json(views::action(&store.scope, r, a))).into_response())
}

pub async fn delete_action(State(s): AppState, p: Params) -> ApiResult<StatusCode> {
    s.store
        .write()
        .delete_action(param(&p, "resource"), param(&p, "action"))?;
    Ok(StatusCode::NO_CONTENT)
}

fn role_input(value: &Value, loc: Vec<Value>) -> (RoleInput, Vec<FieldError>) {
    let mut f = Fields::new(value, loc);
    let key = f.req_str("key");
    f.check_key("key", &key, KeyPattern::Slug);
    let input = RoleInput {
        key,
        name: f.req_str("name"),
        description: f.opt_str("description"),
        permissions: f.opt_str_list("permissions").unwrap_or_default(),
        extends: f.opt_str_list("extends").unwrap_or_default(),
        attributes: f.opt_obj("attributes"),
    };
    if f.opt_value("resource").is_some() {
        f.push(
            "resource",
            "a tenant role has no resource: create resource roles under resources/{resource}/roles",
            "value_error",
        );
    }
    (input, f.errors)
}

pub async fn list_roles(State(s): AppState, RawQuery(q): RawQuery) -> ApiResult<Response> {
    let store = s.store.read();
    list_page(q, store.roles.rows(), |r| views::role(&store.scope, r))
}

pub async fn get_role(State(s): AppState, p: Params) -> ApiResult<Response> {
    let ident = param(&p, "role");
    let store = s.store.read();
    let r = store
        .roles
        .get(ident)
        .ok_or_else(|| ApiError::not_found("role", ident))?;
    Ok(Json(views::role(&store.scope, r)).into_response())
}

/// `POST /roles`: 200, not 201, as [`create_resource`] (Permit's OpenAPI lists only `200` for
/// `create_role`; permitio/permit-cli `source/lib/api/v1.d.ts`).
pub async fn create_role(State(s): AppState, body: Bytes) -> ApiResult<Response> {
    let body = json_body(&body)?;
    let (input, errors) = role_input(&body, vec!["body".into()]);
    finish(errors)?;
    let mut store = s.store.write();
    let scope = store.scope.clone();
    let r = store.create_role(input)?;
    Ok((StatusCode::OK, Json(views::role(&scope, r))).into_response())
}

pub async fn patch_role(State(s): AppState, p: Params, body: Bytes) -> ApiResult<Response> {
    let body = json_body(&body)?;
    let mut f = Fields::new(&body, vec!["body".into()]);
    let patch = RolePatch {
        name: f.opt_str("name"),
        description: f.sent("description").then(|| f.opt_str("description")),
        permissions: f
            .sent("permissions")
            .then(|| f.opt_str_list("permissions").unwrap_or_default()),
        extends: f
            .sent("extends")
            .then(|| f.opt_str_list("extends").unwrap_or_default()),
        attributes: f.sent("attributes").then(|| f.opt_obj("attributes")),
    };
    finish(f.errors)?;
    let mut store = s.store.write();
    let scope = store.scope.clone();
    let r = store.patch_role(param(&p, "role"), patch)?;
    Ok(Json(views::role(&scope, r)).into_response())
}

pub async fn delete_role(State(s): AppState, p: Params) -> ApiResult<StatusCode> {
    s.store.write().delete_role(param(&p, "role"))?;
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
    let scope = store.scope.clone();
    let r = store.add_permissions(param(&p, "role"), &perms)?;
    Ok(Json(views::role(&scope, r)).into_response())
}

pub async fn remove_permissions(State(s): AppState, p: Params, body: Bytes) -> ApiResult<Response> {
    let perms = permissions_body(&body)?;
    let mut store = s.store.write();
    let scope = store.scope.clone();
    let r = store.remove_permissions(param(&p, "role"), &perms)?;
    Ok(Json(views::role(&scope, r)).into_response())
}

/// `PUT /bulk/roles` ("if the role exists, it will be updated": permitio/docs
/// `docs/how-to/bulk-operations.mdx`) answers `RoleCreateBulkOperationResult`, `{created: [key],
/// updated: [key]}`, both required arrays of role keys (permitio/permit-node
/// `src/openapi/types/role-create-bulk-operation-result.ts`, and its type test
/// `src/tests/module-imports/bulk-roles.spec.ts`: "Both published arrays are required", "Result
/// arrays contain strings, not counts or rows"). Keys are listed in request order.
pub async fn bulk_roles(State(s): AppState, body: Bytes) -> ApiResult<Response> {
    let body = json_body(&body)?;
    let (inputs, errors) =
        bulk_operations(required_operations(&body)?, limits::BULK_ROLES, role_input)?;
    finish(errors)?;
    let (created, updated) = s.store.write().bulk_upsert_roles(inputs)?;
    let report = wire::BulkRolesReport {
        created: created.into_iter().map(wire::Str::from).collect(),
        updated: updated.into_iter().map(wire::Str::from).collect(),
    };
    Ok(Json(report).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;
    use permit_api::request as wire;
    use serde_json::json;
    use std::collections::BTreeMap;

    /// The bodies the client sends (`permit_api::request`) read back here field for field.
    #[test]
    fn the_clients_schema_bodies_read_back() {
        let attrs: serde_json::Map<String, Value> = [("level".to_string(), Value::from(2))]
            .into_iter()
            .collect();
        let role = wire::RoleCreate {
            key: "editor",
            name: "Editor",
            description: None,
            permissions: vec!["post:read", "post:write"],
            extends: vec!["viewer"],
            attributes: Some(&attrs),
        };
        let (r, errors) = role_input(&serde_json::to_value(role).unwrap(), vec!["body".into()]);
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!((r.key.as_str(), r.name.as_str()), ("editor", "Editor"));
        assert_eq!(r.description, None);
        assert_eq!(r.permissions, ["post:read", "post:write"]);
        assert_eq!(r.extends, ["viewer"]);
        assert_eq!(r.attributes.as_ref(), Some(&attrs));

        let defs = json!({"owner": {"type": "string"}});
        let actions = BTreeMap::from([(
            "read",
            wire::ActionWrite {
                name: "Read",
                description: Some("reads"),
                attributes: Some(&attrs),
            },
        )]);
        let resource = wire::ResourceCreate {
            key: "post",
            name: "Post",
            description: None,
            actions,
            attributes: Some(&defs),
        };
        let r = resource_input(&serde_json::to_value(resource).unwrap(), None).unwrap();
        assert_eq!((r.key.as_str(), r.name.as_str()), ("post", "Post"));
        assert_eq!(r.attributes, Some(defs));
        let a = &r.actions[0];
        assert_eq!(
            (a.key.as_str(), a.name.as_deref(), a.description.as_deref()),
            ("read", Some("Read"), Some("reads"))
        );
        assert_eq!(a.attributes.as_ref(), Some(&attrs));

        let perms = wire::Permissions {
            permissions: vec!["post:read"],
        };
        let body = Bytes::from(serde_json::to_vec(&perms).unwrap());
        assert_eq!(permissions_body(&body).unwrap(), ["post:read"]);
    }
}
