//! The local Permit over real HTTP: Permit's REST semantics (permit-api.md) and PDP decisions.

use permit_sync::local::{LocalConfig, LocalHandle, LocalPermit};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

struct Client {
    http: reqwest::Client,
    permit: LocalHandle,
    facts: String,
    schema: String,
}

impl Client {
    async fn start() -> Client {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let permit = LocalPermit::start(LocalConfig::ephemeral()).await.unwrap();
        let http = reqwest::Client::new();
        let scope: Value = http
            .get(format!("{}/v2/api-key/scope", permit.api_url()))
            .bearer_auth(permit.api_key())
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let (p, e) = (
            scope["project_id"].as_str().unwrap().to_string(),
            scope["environment_id"].as_str().unwrap().to_string(),
        );
        Client {
            facts: format!("{}/v2/facts/{p}/{e}", permit.api_url()),
            schema: format!("{}/v2/schema/{p}/{e}", permit.api_url()),
            http,
            permit,
        }
    }

    async fn call(&self, method: Method, url: &str, body: Option<Value>) -> (StatusCode, Value) {
        let mut req = self
            .http
            .request(method, url)
            .bearer_auth(self.permit.api_key());
        if let Some(body) = body {
            req = req.json(&body);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status();
        let text = resp.text().await.unwrap();
        let value = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        (status, value)
    }

    async fn facts(&self, method: Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        self.call(method, &format!("{}{path}", self.facts), body)
            .await
    }

    async fn schema(&self, method: Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        self.call(method, &format!("{}{path}", self.schema), body)
            .await
    }

    async fn check(&self, user: &str, action: &str, resource: &str, tenant: &str) -> bool {
        let (status, body) = self
            .call(
                Method::POST,
                &format!("{}/allowed", self.permit.pdp_url()),
                Some(json!({
                    "user": {"key": user}, "action": action,
                    "resource": {"type": resource, "tenant": tenant}, "context": {}
                })),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        body["allow"].as_bool().unwrap()
    }

    /// The rbac-blog-reduced schema: `post` with read/update/delete; `viewer` reads, `editor` extends it.
    async fn blog_schema(&self) {
        let (s, body) = self
            .schema(
                Method::POST,
                "/resources",
                Some(json!({"key": "post", "name": "Post",
                    "actions": {"read": {}, "update": {"name": "Update"}, "delete": {}}})),
            )
            .await;
        assert_eq!(s, 200, "{body}");
        assert!(body["actions"]["read"]["id"].is_string());
        let (s, _) = self
            .schema(
                Method::POST,
                "/roles",
                Some(json!({"key": "viewer", "name": "Viewer", "permissions": ["post:read"]})),
            )
            .await;
        assert_eq!(s, 200);
        let (s, body) = self
            .schema(
                Method::POST,
                "/roles",
                Some(json!({"key": "editor", "name": "Editor",
                    "permissions": ["post:update"], "extends": ["viewer"]})),
            )
            .await;
        assert_eq!(s, 200, "{body}");
        assert_eq!(body["extends"], json!(["viewer"]));
    }
}

/// Every endpoint of the client's table (`permit_api::endpoint`) is a route the local Permit serves
/// with that method: the path the client builds is the path the server routes.
#[tokio::test]
async fn every_endpoint_the_client_calls_is_a_route_it_serves() {
    let c = Client::start().await;
    let (status, scope) = c
        .call(
            Method::GET,
            &format!("{}/v2/api-key/scope", c.permit.api_url()),
            None,
        )
        .await;
    assert_eq!(status, 200, "{scope}");
    let (p, e) = (
        scope["project_id"].as_str().unwrap(),
        scope["environment_id"].as_str().unwrap(),
    );
    for ep in permit_api::endpoint::ALL {
        let keys = vec!["nope"; ep.arity()];
        let url = format!("{}{}", c.permit.api_url(), ep.path(p, e, &keys));
        let method = Method::from_bytes(ep.method.as_str().as_bytes()).unwrap();
        let (status, body) = c.call(method, &url, Some(json!({}))).await;
        let what = format!(
            "{} {url} ({}): {status} {body}",
            ep.method.as_str(),
            ep.label
        );
        assert_ne!(status, StatusCode::METHOD_NOT_ALLOWED, "{what}");
        assert_ne!(status, StatusCode::NOT_IMPLEMENTED, "{what}");
        assert!(!body.to_string().contains("No such route"), "{what}");
    }
}

#[tokio::test]
async fn scope_and_auth() {
    let c = Client::start().await;
    let url = format!("{}/v2/api-key/scope", c.permit.api_url());
    let (s, scope) = c.call(Method::GET, &url, None).await;
    assert_eq!(s, 200);
    for id in ["organization_id", "project_id", "environment_id"] {
        assert!(uuid::Uuid::parse_str(scope[id].as_str().unwrap()).is_ok());
    }
    let resp = c.http.get(&url).send().await.unwrap();
    assert_eq!(resp.status(), 401);
    let resp = c.http.get(&url).bearer_auth("wrong").send().await.unwrap();
    assert_eq!(resp.status(), 403);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error_code"], "FORBIDDEN_ACCESS");
    assert!(!body.to_string().contains(c.permit.api_key()));

    // Project and environment by key work too; another project does not.
    let by_key = format!("{}/v2/facts/default/local/users", c.permit.api_url());
    assert_eq!(c.call(Method::GET, &by_key, None).await.0, 200);
    let other = format!("{}/v2/facts/other/local/users", c.permit.api_url());
    assert_eq!(c.call(Method::GET, &other, None).await.0, 403);

    // PDP: 401 without a header, 403 plain text with a wrong key, health without auth.
    let pdp = c.permit.pdp_url();
    let resp = c
        .http
        .post(format!("{pdp}/allowed"))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    let resp = c
        .http
        .post(format!("{pdp}/allowed"))
        .bearer_auth("nope")
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);
    assert!(
        !resp
            .headers()
            .get("content-type")
            .unwrap()
            .to_str()
            .unwrap()
            .contains("json")
    );
    for path in ["/health", "/healthy", "/ready"] {
        let resp = c.http.get(format!("{pdp}{path}")).send().await.unwrap();
        assert_eq!(resp.status(), 200);
    }
    c.permit.shutdown().await.unwrap();
}

#[tokio::test]
async fn users_crud_and_semantics() {
    let c = Client::start().await;
    let jane = json!({"key": "jane@example.com", "email": "jane@example.com",
        "first_name": "Jane", "attributes": {"dept": "eng", "level": 3}});
    let (s, u) = c.facts(Method::POST, "/users", Some(jane.clone())).await;
    assert_eq!(s, 201, "{u}");
    for f in ["id", "organization_id", "project_id", "environment_id"] {
        assert!(uuid::Uuid::parse_str(u[f].as_str().unwrap()).is_ok(), "{f}");
    }
    assert!(chrono::DateTime::parse_from_rfc3339(u["created_at"].as_str().unwrap()).is_ok());
    let (s, e) = c.facts(Method::POST, "/users", Some(jane.clone())).await;
    assert_eq!(s, 409);
    assert_eq!(e["error_code"], "DUPLICATE_ENTITY");

    // Percent-encoded key, and the UUID, both find the user.
    let (s, got) = c
        .facts(Method::GET, "/users/jane%40example.com", None)
        .await;
    assert_eq!(
        (s, got["key"].as_str()),
        (StatusCode::OK, Some("jane@example.com"))
    );
    let id = u["id"].as_str().unwrap();
    assert_eq!(
        c.facts(Method::GET, &format!("/users/{id}"), None).await.0,
        200
    );
    assert_eq!(c.facts(Method::GET, "/users/nobody", None).await.0, 404);

    // PATCH replaces whole fields.
    let (s, p) = c
        .facts(
            Method::PATCH,
            "/users/jane@example.com",
            Some(json!({"attributes": {"dept": "ops"}})),
        )
        .await;
    assert_eq!(s, 200);
    assert_eq!(p["attributes"], json!({"dept": "ops"}));
    assert_eq!(p["first_name"], "Jane");

    // PUT upserts: 201 then 200.
    let bob = json!({"key": "bob", "email": "bob@example.com"});
    assert_eq!(
        c.facts(Method::PUT, "/users/bob", Some(bob.clone()))
            .await
            .0,
        201
    );
    let (s, b) = c
        .facts(
            Method::PUT,
            "/users/bob",
            Some(json!({"key": "bob", "first_name": "Bob"})),
        )
        .await;
    assert_eq!(s, 200);
    assert_eq!(b["email"], Value::Null, "PUT replaces the whole user");
    let (s, _) = c
        .facts(Method::PUT, "/users/bob", Some(json!({"key": "robert"})))
        .await;
    assert_eq!(s, 422, "PUT cannot rename");
    let bob_id = b["id"].as_str().unwrap().to_string();
    let (s, _) = c
        .facts(
            Method::PUT,
            &format!("/users/{bob_id}"),
            Some(json!({"key": "bob"})),
        )
        .await;
    assert_eq!(s, 200, "PUT by UUID");

    // Validation: key pattern, missing key, bad email.
    let (s, e) = c
        .facts(Method::POST, "/users", Some(json!({"key": "a b"})))
        .await;
    assert_eq!(s, 422);
    assert_eq!(e["detail"][0]["loc"], json!(["body", "key"]));
    assert!(e["detail"][0]["msg"].is_string() && e["detail"][0]["type"].is_string());
    let (s, e) = c.facts(Method::POST, "/users", Some(json!({}))).await;
    assert_eq!(s, 422);
    assert_eq!(e["detail"][0]["type"], "value_error.missing");
    let (s, _) = c
        .facts(
            Method::POST,
            "/users",
            Some(json!({"key": "x", "email": "nope"})),
        )
        .await;
    assert_eq!(s, 422);

    // Listing: always an envelope; per_page ≤ 100; pages from 1.
    for i in 0..25 {
        c.facts(
            Method::POST,
            "/users",
            Some(json!({"key": format!("u{i:02}")})),
        )
        .await;
    }
    let (s, page) = c
        .facts(Method::GET, "/users?page=3&per_page=10", None)
        .await;
    assert_eq!(s, 200);
    assert_eq!(page["total_count"], 27);
    assert_eq!(page["page_count"], 3);
    assert_eq!(page["data"].as_array().unwrap().len(), 7);
    assert_eq!(
        c.facts(Method::GET, "/users?per_page=101", None).await.0,
        422
    );
    assert_eq!(c.facts(Method::GET, "/users?page=0", None).await.0, 422);

    assert_eq!(c.facts(Method::DELETE, "/users/bob", None).await.0, 204);
    assert_eq!(c.facts(Method::DELETE, "/users/bob", None).await.0, 404);
    c.permit.shutdown().await.unwrap();
}

#[tokio::test]
async fn bulk_users_and_tenants() {
    let c = Client::start().await;
    let ops: Vec<Value> = (0..3000)
        .map(|i| json!({"key": format!("user-{i}"), "email": format!("u{i}@example.com")}))
        .collect();
    let (s, body) = c
        .facts(Method::PUT, "/bulk/users", Some(json!({"operations": ops})))
        .await;
    assert_eq!((s, body), (StatusCode::OK, json!({})));
    assert_eq!(c.permit.store().users.len(), 3000);
    let too_many: Vec<Value> = (0..3001).map(|i| json!({"key": format!("x{i}")})).collect();
    let (s, e) = c
        .facts(
            Method::PUT,
            "/bulk/users",
            Some(json!({"operations": too_many})),
        )
        .await;
    assert_eq!(s, 422);
    assert_eq!(e["detail"][0]["loc"], json!(["body", "operations"]));
    // Bulk create of an existing key: 409, nothing created.
    let (s, _) = c
        .facts(
            Method::POST,
            "/bulk/users",
            Some(json!({"operations": [{"key": "new-1"}, {"key": "user-1"}]})),
        )
        .await;
    assert_eq!(s, 409);
    assert_eq!(c.facts(Method::GET, "/users/new-1", None).await.0, 404);
    let (s, _) = c
        .facts(
            Method::DELETE,
            "/bulk/users",
            Some(json!({"idents": ["user-0", "user-1", "missing"]})),
        )
        .await;
    assert_eq!(s, 200);
    assert_eq!(c.permit.store().users.len(), 2998);

    // Tenants: default exists; bulk create, list bare array or envelope, bulk delete.
    let (s, t) = c.facts(Method::GET, "/tenants/default", None).await;
    assert_eq!((s, t["key"].as_str()), (StatusCode::OK, Some("default")));
    for f in ["last_action_at", "name", "id"] {
        assert!(t[f].is_string(), "{f}");
    }
    let ops: Vec<Value> = (0..20)
        .map(|i| json!({"key": format!("t{i}"), "name": format!("Tenant {i}")}))
        .collect();
    assert_eq!(
        c.facts(
            Method::POST,
            "/bulk/tenants",
            Some(json!({"operations": ops}))
        )
        .await
        .0,
        200
    );
    let (_, list) = c.facts(Method::GET, "/tenants?per_page=100", None).await;
    assert_eq!(list.as_array().unwrap().len(), 21);
    let (_, env) = c
        .facts(
            Method::GET,
            "/tenants?include_total_count=true&per_page=5",
            None,
        )
        .await;
    assert_eq!(
        (env["total_count"].as_u64(), env["page_count"].as_u64()),
        (Some(21), Some(5))
    );
    let (s, _) = c
        .facts(
            Method::POST,
            "/tenants",
            Some(json!({"key": "t1", "name": "dup"})),
        )
        .await;
    assert_eq!(s, 409);
    let (s, _) = c
        .facts(
            Method::POST,
            "/tenants",
            Some(json!({"key": "a.b", "name": "dots"})),
        )
        .await;
    assert_eq!(s, 422);
    let (s, t) = c
        .facts(
            Method::PATCH,
            "/tenants/t1",
            Some(json!({"description": "first"})),
        )
        .await;
    assert_eq!(
        (s, t["description"].as_str()),
        (StatusCode::OK, Some("first"))
    );
    c.facts(
        Method::DELETE,
        "/bulk/tenants",
        Some(json!({"idents": ["t0", "t1"]})),
    )
    .await;
    assert_eq!(c.permit.store().tenants.len(), 19);
    c.permit.shutdown().await.unwrap();
}

#[tokio::test]
async fn roles_assignments_and_decisions() {
    let c = Client::start().await;
    c.blog_schema().await;
    c.facts(
        Method::PUT,
        "/users/jane@example.com",
        Some(json!({"key": "jane@example.com"})),
    )
    .await;
    c.facts(
        Method::POST,
        "/tenants",
        Some(json!({"key": "acme", "name": "Acme"})),
    )
    .await;
    let jane = "jane@example.com";
    assert!(!c.check(jane, "read", "post", "acme").await);

    let (s, a) = c
        .facts(
            Method::POST,
            "/role_assignments",
            Some(json!({"user": jane, "role": "viewer", "tenant": "acme"})),
        )
        .await;
    assert_eq!(s, 200, "{a}");
    for f in [
        "id",
        "user_id",
        "role_id",
        "tenant_id",
        "organization_id",
        "created_at",
    ] {
        assert!(a[f].is_string(), "{f}");
    }
    assert_eq!(
        (a["user"].as_str(), a["tenant"].as_str()),
        (Some(jane), Some("acme"))
    );
    assert!(c.check(jane, "read", "post", "acme").await);
    assert!(!c.check(jane, "update", "post", "acme").await);
    assert!(!c.check(jane, "read", "post", "default").await);
    let (s, _) = c
        .facts(
            Method::POST,
            "/role_assignments",
            Some(json!({"user": jane, "role": "viewer", "tenant": "acme"})),
        )
        .await;
    assert_eq!(s, 409);
    let (s, _) = c
        .facts(
            Method::POST,
            "/role_assignments",
            Some(json!({"user": jane, "role": "ghost", "tenant": "acme"})),
        )
        .await;
    assert_eq!(s, 404);

    // extends: editor inherits viewer's read.
    c.facts(
        Method::POST,
        &format!("/users/{jane}/roles"),
        Some(json!({"role": "editor"})),
    )
    .await;
    assert!(c.check(jane, "read", "post", "default").await);
    assert!(c.check(jane, "update", "post", "default").await);

    // The user shows its roles.
    let (_, u) = c.facts(Method::GET, &format!("/users/{jane}"), None).await;
    assert_eq!(u["roles"].as_array().unwrap().len(), 2);

    // Filters.
    let (_, l) = c
        .facts(
            Method::GET,
            &format!("/role_assignments?user={jane}&tenant=acme"),
            None,
        )
        .await;
    assert_eq!(l.as_array().unwrap().len(), 1);
    let (_, l) = c
        .facts(
            Method::GET,
            "/role_assignments?role=editor&role=viewer",
            None,
        )
        .await;
    assert_eq!(l.as_array().unwrap().len(), 2);

    // Unassign with a JSON body, then 404 the second time.
    let body = json!({"user": jane, "role": "viewer", "tenant": "acme"});
    assert_eq!(
        c.facts(Method::DELETE, "/role_assignments", Some(body.clone()))
            .await
            .0,
        204
    );
    assert!(!c.check(jane, "read", "post", "acme").await);
    assert_eq!(
        c.facts(Method::DELETE, "/role_assignments", Some(body))
            .await
            .0,
        404
    );

    // Bulk assign / unassign as bare arrays.
    let users: Vec<Value> = (0..50).map(|i| json!({"key": format!("b{i}")})).collect();
    c.facts(
        Method::PUT,
        "/bulk/users",
        Some(json!({"operations": users})),
    )
    .await;
    let assigns: Vec<Value> = (0..50)
        .map(|i| json!({"user": format!("b{i}"), "role": "viewer", "tenant": "acme"}))
        .collect();
    let (s, r) = c
        .facts(Method::POST, "/role_assignments/bulk", Some(json!(assigns)))
        .await;
    assert_eq!((s, r), (StatusCode::OK, json!({"assignments_created": 50})));
    let (_, r) = c
        .facts(Method::POST, "/role_assignments/bulk", Some(json!(assigns)))
        .await;
    assert_eq!(r, json!({"assignments_created": 0}));
    assert!(c.check("b7", "read", "post", "acme").await);
    let (s, r) = c
        .facts(
            Method::DELETE,
            "/role_assignments/bulk",
            Some(json!(assigns[..10])),
        )
        .await;
    assert_eq!((s, r), (StatusCode::OK, json!({"assignments_removed": 10})));
    assert!(!c.check("b7", "read", "post", "acme").await);
    assert!(c.check("b17", "read", "post", "acme").await);

    // PDP bulk and user-permissions.
    let (s, r) = c
        .call(
            Method::POST,
            &format!("{}/allowed/bulk", c.permit.pdp_url()),
            Some(json!([
                {"user": {"key": "b17"}, "action": "read", "resource": {"type": "post", "tenant": "acme"}},
                {"user": {"key": "b17"}, "action": "update", "resource": {"type": "post", "tenant": "acme"}},
            ])),
        )
        .await;
    assert_eq!(s, 200);
    assert_eq!(r["allow"][0]["allow"], true);
    assert_eq!(r["allow"][1]["allow"], false);
    let (_, r) = c
        .call(
            Method::POST,
            &format!("{}/user-permissions", c.permit.pdp_url()),
            Some(json!({"user": {"key": jane}, "tenants": null})),
        )
        .await;
    assert_eq!(
        r["__tenant:default"]["permissions"],
        json!(["post:read", "post:update"])
    );

    // The PDP proxies the facts API (SDKs with `proxy_facts_via_pdp`), in both path styles.
    let pdp = c.permit.pdp_url();
    for path in ["/facts/users", "/v2/facts/default/local/users"] {
        let (s, u) = c
            .call(
                Method::POST,
                &format!("{pdp}{path}"),
                Some(json!({"key": format!("via-pdp{}", path.len())})),
            )
            .await;
        assert_eq!(s, 201, "{u}");
    }
    let (s, _) = c
        .call(
            Method::POST,
            &format!("{pdp}/facts/role_assignments"),
            Some(json!({"user": "via-pdp12", "role": "viewer", "tenant": "acme"})),
        )
        .await;
    assert_eq!(s, 200);
    assert!(c.check("via-pdp12", "read", "post", "acme").await);
    assert_eq!(
        c.permit.counters().endpoint("POST users"),
        2,
        "counted as REST writes"
    );

    // The PDP's own view of assignments, for convergence checks.
    let (s, local) = c
        .call(
            Method::GET,
            &format!("{}/local/role_assignments?user={jane}", c.permit.pdp_url()),
            None,
        )
        .await;
    assert_eq!(s, 200);
    assert_eq!(
        local,
        json!([{"user": jane, "role": "editor", "tenant": "default", "resource_instance": null}])
    );

    // Deleting a tenant removes its assignments; deleting the resource revokes permissions.
    assert_eq!(c.facts(Method::DELETE, "/tenants/acme", None).await.0, 204);
    let (_, l) = c
        .facts(Method::GET, "/role_assignments?role=viewer", None)
        .await;
    assert_eq!(l.as_array().unwrap().len(), 0);
    assert_eq!(
        c.schema(Method::DELETE, "/resources/post", None).await.0,
        204
    );
    let (_, role) = c.schema(Method::GET, "/roles/editor", None).await;
    assert_eq!(role["permissions"], json!([]));
    assert!(!c.check(jane, "read", "post", "default").await);
    c.permit.shutdown().await.unwrap();
}

#[tokio::test]
async fn role_permissions_endpoints_and_validation() {
    let c = Client::start().await;
    c.blog_schema().await;
    let (s, r) = c
        .schema(
            Method::POST,
            "/roles/viewer/permissions",
            Some(json!({"permissions": ["post:update", "post:read"]})),
        )
        .await;
    assert_eq!(s, 200);
    assert_eq!(r["permissions"], json!(["post:read", "post:update"]));
    let (s, r) = c
        .schema(
            Method::DELETE,
            "/roles/viewer/permissions",
            Some(json!({"permissions": ["post:update", "post:nothing"]})),
        )
        .await;
    assert_eq!(
        (s, r["permissions"].clone()),
        (StatusCode::OK, json!(["post:read"]))
    );
    let (s, _) = c
        .schema(
            Method::POST,
            "/roles",
            Some(json!({"key": "bad", "name": "Bad", "permissions": ["post:fly"]})),
        )
        .await;
    assert_eq!(s, 404);
    let (s, e) = c
        .schema(
            Method::POST,
            "/roles",
            Some(json!({"key": "bad", "name": "Bad", "permissions": ["nocolon"]})),
        )
        .await;
    assert_eq!(
        (s, e["error_code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("INVALID_PERMISSION_FORMAT"))
    );
    let (s, _) = c
        .schema(
            Method::PATCH,
            "/roles/viewer",
            Some(json!({"extends": ["editor"]})),
        )
        .await;
    assert_eq!(s, 400, "a cycle is refused");
    let (s, _) = c
        .schema(
            Method::POST,
            "/roles",
            Some(json!({"key": "viewer", "name": "again"})),
        )
        .await;
    assert_eq!(s, 409);
    // PATCH permissions replaces the list.
    let (_, r) = c
        .schema(
            Method::PATCH,
            "/roles/editor",
            Some(json!({"permissions": ["post:delete"]})),
        )
        .await;
    assert_eq!(r["permissions"], json!(["post:delete"]));
    // Resource PUT dropping an action revokes it.
    let (s, _) = c
        .schema(
            Method::PUT,
            "/resources/post",
            Some(json!({"name": "Post", "actions": {"read": {}, "update": {}}})),
        )
        .await;
    assert_eq!(s, 200);
    let (_, r) = c.schema(Method::GET, "/roles/editor", None).await;
    assert_eq!(r["permissions"], json!([]));
    // Bulk roles upsert.
    let (s, _) = c
        .schema(
            Method::PUT,
            "/bulk/roles",
            Some(json!({"operations": [
                {"key": "viewer", "name": "Viewer 2", "permissions": ["post:read", "post:update"]},
                {"key": "admin", "name": "Admin", "extends": ["editor"]},
            ]})),
        )
        .await;
    assert_eq!(s, 200);
    let (_, roles) = c.schema(Method::GET, "/roles", None).await;
    assert_eq!(roles.as_array().unwrap().len(), 3);
    let (_, actions) = c.schema(Method::GET, "/resources/post/actions", None).await;
    assert_eq!(actions[0]["permission_name"], "post:read");
    c.permit.shutdown().await.unwrap();
}

/// `bearer` in any case, on the REST API and the PDP (permit-python 2.x sends `bearer <key>`;
/// Permit's PDP lowercases the header: permitio/PDP `pdp-server/src/api/authn_middleware.rs`).
#[tokio::test]
async fn the_bearer_scheme_is_accepted_in_any_case() {
    let c = Client::start().await;
    let key = c.permit.api_key().to_string();
    for scheme in ["bearer", "BEARER", "Bearer", "bEaReR"] {
        let r = c
            .http
            .get(format!("{}/users", c.facts))
            .header("Authorization", format!("{scheme} {key}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{scheme}");
        let r = c
            .http
            .post(format!("{}/allowed", c.permit.pdp_url()))
            .header("Authorization", format!("{scheme} {key}"))
            .json(&json!({"user": {"key": "u"}, "action": "read",
                "resource": {"type": "post", "tenant": "default"}}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{scheme}");
    }
    // The token itself still has to match exactly; another scheme is refused.
    for header in [
        format!("bearer {}", key.to_uppercase()),
        format!("Basic {key}"),
    ] {
        let r = c
            .http
            .get(format!("{}/users", c.facts))
            .header("Authorization", header.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 403, "{header}");
    }
    c.permit.shutdown().await.unwrap();
}

/// Ids come out as Permit writes them (32 hex digits, no dashes) and paths take both forms.
#[tokio::test]
async fn ids_are_32_hex_digits_and_paths_take_both_forms() {
    let c = Client::start().await;
    let hex32 = |v: &Value| {
        let s = v.as_str().unwrap_or_default();
        s.len() == 32
            && s.bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
    };
    let (_, scope) = c
        .call(
            Method::GET,
            &format!("{}/v2/api-key/scope", c.permit.api_url()),
            None,
        )
        .await;
    for f in ["organization_id", "project_id", "environment_id"] {
        assert!(hex32(&scope[f]), "{f}: {scope}");
    }
    c.blog_schema().await;
    let (_, u) = c
        .facts(Method::POST, "/users", Some(json!({"key": "jane"})))
        .await;
    let (_, t) = c
        .facts(
            Method::POST,
            "/tenants",
            Some(json!({"key": "acme", "name": "Acme"})),
        )
        .await;
    let (_, a) = c
        .facts(
            Method::POST,
            "/role_assignments",
            Some(json!({"user": "jane", "role": "viewer", "tenant": "acme"})),
        )
        .await;
    let (_, r) = c.schema(Method::GET, "/resources/post", None).await;
    let (_, role) = c.schema(Method::GET, "/roles/viewer", None).await;
    for (what, v) in [
        ("user", &u["id"]),
        ("tenant", &t["id"]),
        ("assignment", &a["id"]),
        ("assignment user_id", &a["user_id"]),
        ("assignment role_id", &a["role_id"]),
        ("assignment tenant_id", &a["tenant_id"]),
        ("resource", &r["id"]),
        ("action", &r["actions"]["read"]["id"]),
        ("role", &role["id"]),
        ("user environment_id", &u["environment_id"]),
    ] {
        assert!(hex32(v), "{what}: {v}");
    }
    // Every id path segment takes the 32-digit form, the dashed form, and the key.
    let dashed = |v: &Value| {
        uuid::Uuid::parse_str(v.as_str().unwrap())
            .unwrap()
            .to_string()
    };
    let uid = u["id"].as_str().unwrap().to_string();
    for ident in [uid.clone(), dashed(&u["id"]), "jane".into()] {
        let (s, got) = c.facts(Method::GET, &format!("/users/{ident}"), None).await;
        assert_eq!(
            (s, got["key"].clone()),
            (StatusCode::OK, json!("jane")),
            "{ident}"
        );
    }
    let (p, e) = (
        dashed(&scope["project_id"]),
        dashed(&scope["environment_id"]),
    );
    let url = format!(
        "{}/v2/facts/{p}/{e}/tenants/{}",
        c.permit.api_url(),
        dashed(&t["id"])
    );
    let (s, got) = c.call(Method::GET, &url, None).await;
    assert_eq!((s, got["key"].clone()), (StatusCode::OK, json!("acme")));
    let action = r["actions"]["read"]["id"].clone();
    for ident in [action.as_str().unwrap().to_string(), dashed(&action)] {
        let (s, _) = c
            .schema(
                Method::GET,
                &format!("/resources/post/actions/{ident}"),
                None,
            )
            .await;
        assert_eq!(s, 200, "{ident}");
    }
    // A permission named by action id, in either form.
    let (s, body) = c
        .schema(
            Method::POST,
            "/roles/viewer/permissions",
            Some(json!({"permissions": [dashed(&r["actions"]["update"]["id"])]})),
        )
        .await;
    assert_eq!(s, 200, "{body}");
    assert!(
        body["permissions"]
            .as_array()
            .unwrap()
            .contains(&json!("post:update"))
    );
    c.permit.shutdown().await.unwrap();
}

/// Unset attributes of users and tenants read back as `null`, as Permit answers (permit-node
/// `src/tests/e2e/rbac.e2e.spec.ts`: `t.is(tenant.attributes, null)`); a sent map, `{}` included,
/// reads back as sent; PATCHing `null` unsets.
#[tokio::test]
async fn unset_attributes_are_null() {
    let c = Client::start().await;
    let (s, t) = c
        .facts(
            Method::POST,
            "/tenants",
            Some(json!({"key": "t1", "name": "T1"})),
        )
        .await;
    assert_eq!(s, 200, "{t}");
    assert_eq!(t["attributes"], Value::Null, "{t}");
    let (_, t) = c
        .facts(
            Method::POST,
            "/tenants",
            Some(json!({"key": "t2", "name": "T2", "attributes": {}})),
        )
        .await;
    assert_eq!(t["attributes"], json!({}));
    let (_, t) = c
        .facts(
            Method::PATCH,
            "/tenants/t2",
            Some(json!({"attributes": null})),
        )
        .await;
    assert_eq!(t["attributes"], Value::Null);
    let (_, t) = c
        .facts(
            Method::PATCH,
            "/tenants/t1",
            Some(json!({"attributes": {"a": 1}})),
        )
        .await;
    assert_eq!(t["attributes"], json!({"a": 1}));
    let (_, d) = c.facts(Method::GET, "/tenants/default", None).await;
    assert_eq!(d["attributes"], Value::Null);

    let (_, u) = c
        .facts(Method::PUT, "/users/u1", Some(json!({"key": "u1"})))
        .await;
    assert_eq!(u["attributes"], Value::Null, "{u}");
    let (_, u) = c
        .facts(
            Method::PUT,
            "/users/u1",
            Some(json!({"key": "u1", "attributes": {}})),
        )
        .await;
    assert_eq!(u["attributes"], json!({}));
    // PUT replaces the whole user: without attributes they are unset again.
    let (_, u) = c
        .facts(Method::PUT, "/users/u1", Some(json!({"key": "u1"})))
        .await;
    assert_eq!(u["attributes"], Value::Null);
    let (s, _) = c
        .facts(
            Method::PUT,
            "/bulk/users",
            Some(json!({"operations": [{"key": "u2"}, {"key": "u3", "attributes": {"x": true}}]})),
        )
        .await;
    assert_eq!(s, 200);
    let (_, list) = c.facts(Method::GET, "/users", None).await;
    let attrs: Vec<_> = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| {
            (
                u["key"].as_str().unwrap().to_string(),
                u["attributes"].clone(),
            )
        })
        .collect();
    assert_eq!(
        attrs,
        [
            ("u1".to_string(), Value::Null),
            ("u2".to_string(), Value::Null),
            ("u3".to_string(), json!({"x": true}))
        ]
    );
    c.permit.shutdown().await.unwrap();
}

/// `POST role_assignments/bulk` over assignments that exist: 200, `assignments_created` counts
/// only the new ones (permitio/permit-mcp `examples/food-ordering-system/src/food_ordering/seed.py`
/// re-runs it: "N of M assigned; the others were already assigned"). `PUT bulk/roles` answers
/// `{created: [keys], updated: [keys]}` (permit-node `RoleCreateBulkOperationResult`).
#[tokio::test]
async fn bulk_answers_as_permit() {
    let c = Client::start().await;
    c.blog_schema().await;
    for u in ["a", "b", "c"] {
        c.facts(Method::PUT, &format!("/users/{u}"), Some(json!({"key": u})))
            .await;
    }
    let batch = |users: &[&str]| {
        Value::Array(
            users
                .iter()
                .map(|u| json!({"user": u, "role": "viewer", "tenant": "default"}))
                .collect(),
        )
    };
    let (s, r) = c
        .facts(
            Method::POST,
            "/role_assignments/bulk",
            Some(batch(&["a", "b"])),
        )
        .await;
    assert_eq!((s, r), (StatusCode::OK, json!({"assignments_created": 2})));
    let (s, r) = c
        .facts(
            Method::POST,
            "/role_assignments/bulk",
            Some(batch(&["a", "b", "c"])),
        )
        .await;
    assert_eq!((s, r), (StatusCode::OK, json!({"assignments_created": 1})));
    let (s, r) = c
        .facts(
            Method::POST,
            "/role_assignments/bulk",
            Some(batch(&["a", "b", "c"])),
        )
        .await;
    assert_eq!((s, r), (StatusCode::OK, json!({"assignments_created": 0})));
    let (_, listed) = c
        .facts(Method::GET, "/role_assignments?role=viewer", None)
        .await;
    assert_eq!(listed.as_array().unwrap().len(), 3);

    let (s, r) = c
        .schema(
            Method::PUT,
            "/bulk/roles",
            Some(json!({"operations": [
                {"key": "viewer", "name": "Viewer 2", "permissions": ["post:read"]},
                {"key": "admin", "name": "Admin", "extends": ["editor"]},
                {"key": "auditor", "name": "Auditor"},
                {"key": "admin", "name": "Admin again"},
            ]})),
        )
        .await;
    assert_eq!(s, 200, "{r}");
    assert_eq!(
        r,
        json!({"created": ["admin", "auditor"], "updated": ["viewer"]})
    );
    let (_, admin) = c.schema(Method::GET, "/roles/admin", None).await;
    assert_eq!(admin["name"], "Admin again");
    c.permit.shutdown().await.unwrap();
}

/// The role-assignment listing's `resource` and `resource_instance` filters select
/// resource-instance assignments only (Python SDK `permit` 3.0.0 `RoleAssignmentsApi.list`), of
/// which the local Permit has none; a bare instance key is a 400.
#[tokio::test]
async fn resource_filters_of_the_assignment_listing() {
    let c = Client::start().await;
    c.blog_schema().await;
    c.facts(Method::PUT, "/users/jane", Some(json!({"key": "jane"})))
        .await;
    c.facts(
        Method::POST,
        "/role_assignments",
        Some(json!({"user": "jane", "role": "viewer"})),
    )
    .await;
    let (_, all) = c.facts(Method::GET, "/role_assignments", None).await;
    assert_eq!(all.as_array().unwrap().len(), 1);
    for q in [
        "resource=post",
        "resource=post&user=jane",
        "resource_instance=post:p1",
        "resource_instance=post:p1&include_total_count=true",
    ] {
        let (s, got) = c
            .facts(Method::GET, &format!("/role_assignments?{q}"), None)
            .await;
        assert_eq!(s, 200, "{q}: {got}");
        let rows = got.get("data").unwrap_or(&got);
        assert_eq!(rows, &json!([]), "{q}");
    }
    let (s, body) = c
        .facts(Method::GET, "/role_assignments?resource_instance=p1", None)
        .await;
    assert_eq!(s, 400, "{body}");
    c.permit.shutdown().await.unwrap();
}

/// Routes of Permit's API that the local Permit does not model answer 501 naming the feature
/// (a 404 would read as a missing object to permit-golang and the Terraform provider); an
/// unknown object on a modelled route stays 404, and so does a path outside Permit's API.
#[tokio::test]
async fn unmodelled_routes_answer_501_with_the_feature_named() {
    let c = Client::start().await;
    c.blog_schema().await;
    for (method, url, feature) in [
        (
            Method::GET,
            format!("{}/resources/post/action_groups", c.schema),
            "action groups",
        ),
        (
            Method::POST,
            format!("{}/set_rules", c.facts),
            "condition set rules",
        ),
        (
            Method::GET,
            format!("{}/condition_sets", c.schema),
            "condition sets",
        ),
        (
            Method::GET,
            format!("{}/users/attributes", c.schema),
            "user attribute definitions",
        ),
        (
            Method::GET,
            format!("{}/v2/projects", c.permit.api_url()),
            "projects and environments",
        ),
        (
            Method::POST,
            format!("{}/facts/proxy_configs", c.permit.pdp_url()),
            "proxy configs",
        ),
    ] {
        let (s, body) = c.call(method.clone(), &url, Some(json!({}))).await;
        assert_eq!(s, 501, "{method} {url}: {body}");
        assert_eq!(body["error_code"], "NOT_IMPLEMENTED", "{body}");
        let message = body["message"].as_str().unwrap();
        assert!(message.contains(feature), "{message}");
    }
    let (s, body) = c.schema(Method::GET, "/resources/nope", None).await;
    assert_eq!(
        (s, body["error_code"].clone()),
        (StatusCode::NOT_FOUND, json!("NOT_FOUND"))
    );
    let (s, _) = c.facts(Method::GET, "/users/nobody", None).await;
    assert_eq!(s, 404);
    let (s, _) = c
        .call(
            Method::GET,
            &format!("{}/nothing/here", c.permit.api_url()),
            None,
        )
        .await;
    assert_eq!(s, 404);
    c.permit.shutdown().await.unwrap();
}
