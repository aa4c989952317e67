//! The local Permit's ReBAC routes over real HTTP: resource roles, relations, role derivations,
//! resource instances, relationship tuples and instance role assignments, with Permit's
//! envelopes, 409/404/422/400, bulk limits and what a delete takes with it.

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
        Client {
            facts: permit.facts_url(),
            schema: permit.schema_url(),
            http: reqwest::Client::new(),
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
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    async fn facts(&self, method: Method, path: &str, body: Value) -> (StatusCode, Value) {
        let body = (!body.is_null()).then_some(body);
        self.call(method, &format!("{}{path}", self.facts), body)
            .await
    }

    async fn schema(&self, method: Method, path: &str, body: Value) -> (StatusCode, Value) {
        let body = (!body.is_null()).then_some(body);
        self.call(method, &format!("{}{path}", self.schema), body)
            .await
    }

    /// A call that must succeed; its body.
    async fn ok(&self, method: Method, url: String, body: Value) -> Value {
        let b = (!body.is_null()).then_some(body);
        let (status, got) = self.call(method.clone(), &url, b).await;
        assert!(status.is_success(), "{method} {url}: {status} {got}");
        got
    }

    /// permit-cli's `blogging-platform` template, its ReBAC part: `Post` and `Comment`, the
    /// resource roles `Comment#Author`, `Comment#Moderator` and `Post#Author`, the relation
    /// `Comment.parent → Post` and the derivation `Post#Author → Comment#Moderator`.
    async fn blogging_platform(&self) {
        let s = &self.schema;
        for (key, actions) in [
            (
                "Post",
                json!({"create": {}, "read": {}, "update": {}, "delete": {}}),
            ),
            (
                "Comment",
                json!({"create": {}, "read": {}, "update": {}, "delete": {}}),
            ),
        ] {
            let body = json!({"key": key, "name": key, "actions": actions});
            self.ok(Method::POST, format!("{s}/resources"), body).await;
        }
        for (resource, role, permissions) in [
            ("Comment", "Author", json!(["create", "read"])),
            (
                "Comment",
                "Moderator",
                json!(["update", "create", "delete", "read"]),
            ),
            (
                "Post",
                "Author",
                json!(["update", "read", "create", "delete"]),
            ),
        ] {
            let body = json!({"key": role, "name": role, "permissions": permissions});
            self.ok(
                Method::POST,
                format!("{s}/resources/{resource}/roles"),
                body,
            )
            .await;
        }
        let relation = json!({"key": "parent", "name": "Parent", "subject_resource": "Post"});
        self.ok(
            Method::POST,
            format!("{s}/resources/Comment/relations"),
            relation,
        )
        .await;
        let rule = json!({"role": "Author", "on_resource": "Post", "linked_by_relation": "parent"});
        let url = format!("{s}/resources/Comment/roles/Moderator/implicit_grants");
        self.ok(Method::POST, url, rule).await;
    }

    async fn user(&self, key: &str) {
        let url = format!("{}/users/{key}", self.facts);
        self.ok(Method::PUT, url, json!({"key": key})).await;
    }
}

fn loc(body: &Value) -> Vec<Value> {
    body["detail"]
        .as_array()
        .map(|d| d.iter().map(|e| e["loc"].clone()).collect())
        .unwrap_or_default()
}

/// Resource roles: identity `(resource, key)`, permissions as action keys (or `resource:action`
/// of their own resource), `extends` within the resource; relations; derivations and their
/// conditions; the resource read with its roles and relations embedded.
#[tokio::test]
async fn resource_roles_relations_and_derivations() {
    let c = Client::start().await;
    c.blogging_platform().await;
    // A tenant role of the same key as the resource roles.
    let (s, _) = c
        .schema(
            Method::POST,
            "/roles",
            json!({"key": "Author", "name": "Author",
            "permissions": ["Post:read"]}),
        )
        .await;
    assert_eq!(s, 200);

    let (s, body) = c
        .schema(
            Method::POST,
            "/resources/Comment/roles",
            json!({"key": "Author", "name": "A"}),
        )
        .await;
    assert_eq!(
        (s, body["error_code"].as_str()),
        (StatusCode::CONFLICT, Some("DUPLICATE_ENTITY"))
    );
    assert!(
        body["message"].as_str().unwrap().contains("Comment#Author"),
        "{body}"
    );
    let (s, body) = c
        .schema(
            Method::POST,
            "/resources/Nope/roles",
            json!({"key": "x", "name": "x"}),
        )
        .await;
    assert_eq!(s, 404, "{body}");
    let (s, body) = c
        .schema(
            Method::POST,
            "/resources/Post/roles",
            json!({"key": "Editor", "name": "E", "permissions": ["publish"]}),
        )
        .await;
    assert_eq!(s, 404, "{body}");
    assert!(
        body["message"].as_str().unwrap().contains("Post:publish"),
        "{body}"
    );
    let (s, body) = c
        .schema(
            Method::POST,
            "/resources/Post/roles",
            json!({"key": "Editor", "name": "E", "permissions": ["Comment:read"]}),
        )
        .await;
    assert_eq!(
        (s, body["error_code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("INVALID_PERMISSION_FORMAT"))
    );
    let (s, body) = c
        .schema(
            Method::POST,
            "/resources/Post/roles",
            json!({"key": "a b", "permissions": 3}),
        )
        .await;
    assert_eq!(s, 422);
    assert_eq!(
        loc(&body),
        [
            json!(["body", "key"]),
            json!(["body", "name"]),
            json!(["body", "permissions"])
        ]
    );
    // `resource:action` of its own resource is accepted and kept as the action key.
    let (s, body) = c
        .schema(
            Method::POST,
            "/resources/Post/roles",
            json!({"key": "Editor", "name": "Editor",
            "permissions": ["Post:update", "read"], "extends": ["Author"]}),
        )
        .await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(body["permissions"], json!(["update", "read"]));
    assert_eq!(
        (body["resource"].as_str(), body["extends"].clone()),
        (Some("Post"), json!(["Author"]))
    );
    assert!(body["resource_id"].is_string() && body["granted_to"]["id"].is_string());
    let (s, body) = c
        .schema(
            Method::PATCH,
            "/resources/Post/roles/Author",
            json!({"extends": ["Editor"]}),
        )
        .await;
    assert_eq!(s, 400, "an extends cycle: {body}");
    let (s, body) = c
        .schema(
            Method::POST,
            "/resources/Post/roles/Editor/permissions",
            json!({"permissions": ["delete"]}),
        )
        .await;
    assert_eq!(
        (s, body["permissions"].clone()),
        (StatusCode::OK, json!(["update", "read", "delete"]))
    );
    let (_, body) = c
        .schema(
            Method::DELETE,
            "/resources/Post/roles/Editor/permissions",
            json!({"permissions": ["Post:update"]}),
        )
        .await;
    assert_eq!(body["permissions"], json!(["read", "delete"]));
    let (s, list) = c
        .schema(Method::GET, "/resources/Post/roles", Value::Null)
        .await;
    assert_eq!(s, 200);
    let keys: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["key"].as_str().unwrap())
        .collect();
    assert_eq!(
        keys,
        ["Author", "Editor"],
        "a bare array of this resource's roles"
    );
    let (s, _) = c
        .schema(Method::GET, "/resources/Comment/roles/Editor", Value::Null)
        .await;
    assert_eq!(s, 404);

    // Relations: the list is an envelope; 409, 404.
    let (s, list) = c
        .schema(Method::GET, "/resources/Comment/relations", Value::Null)
        .await;
    assert_eq!((s, list["total_count"].as_u64()), (StatusCode::OK, Some(1)));
    let r = &list["data"][0];
    assert_eq!(
        (
            r["key"].as_str(),
            r["subject_resource"].as_str(),
            r["object_resource"].as_str()
        ),
        (Some("parent"), Some("Post"), Some("Comment"))
    );
    let (s, _) = c
        .schema(
            Method::POST,
            "/resources/Comment/relations",
            json!({"key": "parent", "name": "P", "subject_resource": "Post"}),
        )
        .await;
    assert_eq!(s, 409);
    let (s, _) = c
        .schema(
            Method::POST,
            "/resources/Comment/relations",
            json!({"key": "thread", "name": "T", "subject_resource": "Thread"}),
        )
        .await;
    assert_eq!(s, 404);
    let (s, _) = c
        .schema(
            Method::GET,
            "/resources/Comment/relations/parent",
            Value::Null,
        )
        .await;
    assert_eq!(s, 200);

    // Derivations: the rule read back with its ids; 409 twice; 404 for a relation the resource
    // lacks; 400 for a relation whose subject is another resource.
    let (s, body) = c
        .schema(
            Method::GET,
            "/resources/Comment/roles/Moderator",
            Value::Null,
        )
        .await;
    assert_eq!(s, 200);
    let rule = &body["granted_to"]["users_with_role"][0];
    assert_eq!(
        (
            rule["role"].as_str(),
            rule["on_resource"].as_str(),
            rule["linked_by_relation"].as_str()
        ),
        (Some("Author"), Some("Post"), Some("parent"))
    );
    assert!(
        rule["role_id"].is_string()
            && rule["relation_id"].is_string()
            && rule["resource_id"].is_string()
    );
    let grants = "/resources/Comment/roles/Moderator/implicit_grants";
    let same = json!({"role": "Author", "on_resource": "Post", "linked_by_relation": "parent"});
    let (s, _) = c.schema(Method::POST, grants, same.clone()).await;
    assert_eq!(s, 409);
    let (s, _) = c
        .schema(
            Method::POST,
            grants,
            json!({"role": "Author", "on_resource": "Post", "linked_by_relation": "thread"}),
        )
        .await;
    assert_eq!(s, 404);
    let (s, body) = c
        .schema(
            Method::POST,
            grants,
            json!({"role": "Author", "on_resource": "Comment", "linked_by_relation": "parent"}),
        )
        .await;
    assert_eq!(s, 400, "{body}");
    let (s, body) = c
        .schema(
            Method::PUT,
            &format!("{grants}/conditions"),
            json!({"no_direct_roles_on_object": true}),
        )
        .await;
    assert_eq!(
        (s, body),
        (StatusCode::OK, json!({"no_direct_roles_on_object": true}))
    );
    let (_, body) = c
        .schema(
            Method::GET,
            "/resources/Comment/roles/Moderator",
            Value::Null,
        )
        .await;
    assert_eq!(
        body["granted_to"]["when"]["no_direct_roles_on_object"],
        true
    );

    // The resource embeds its roles and relations.
    let (_, comment) = c
        .schema(Method::GET, "/resources/Comment", Value::Null)
        .await;
    assert_eq!(
        comment["roles"]["Moderator"]["granted_to"]["users_with_role"][0]["role"],
        "Author"
    );
    assert_eq!(comment["relations"]["parent"]["resource"], "Post");

    let (s, _) = c.schema(Method::DELETE, grants, same.clone()).await;
    assert_eq!(s, 204);
    let (s, _) = c.schema(Method::DELETE, grants, same).await;
    assert_eq!(s, 404);
    c.permit.shutdown().await.unwrap();
}

/// Inline roles and relations of `POST resources` (permit-python's `tests/test_rebac_e2e.py`
/// creates them so); a bad one leaves no resource behind.
#[tokio::test]
async fn resources_take_roles_and_relations_inline() {
    let c = Client::start().await;
    let account = json!({"key": "Account", "name": "Account", "actions": {"view": {}},
        "roles": {"admin": {"name": "Admin", "permissions": ["view"]}}});
    let body = c
        .ok(Method::POST, format!("{}/resources", c.schema), account)
        .await;
    assert_eq!(body["roles"]["admin"]["permissions"], json!(["view"]));
    let folder = json!({"key": "Folder", "name": "Folder", "actions": {"read": {}},
        "relations": {"account": "Account"},
        "roles": {"editor": {"name": "Editor", "permissions": ["read"], "granted_to":
            {"users_with_role": [{"role": "admin", "on_resource": "Account", "linked_by_relation": "account"}]}}}});
    let body = c
        .ok(Method::POST, format!("{}/resources", c.schema), folder)
        .await;
    assert_eq!(body["relations"]["account"]["resource"], "Account");
    assert_eq!(
        body["roles"]["editor"]["granted_to"]["users_with_role"][0]["role"],
        "admin"
    );
    let bad = json!({"key": "Doc", "name": "Doc", "actions": {}, "relations": {"folder": "Nope"}});
    let (s, _) = c.schema(Method::POST, "/resources", bad).await;
    assert_eq!(s, 404);
    let (s, _) = c.schema(Method::GET, "/resources/Doc", Value::Null).await;
    assert_eq!(s, 404, "the failed create left nothing");
    c.permit.shutdown().await.unwrap();
}

/// Instances, tuples and instance role assignments, one at a time.
#[tokio::test]
async fn instances_tuples_and_instance_assignments() {
    let c = Client::start().await;
    c.blogging_platform().await;
    c.user("john").await;

    let post = json!({"key": "post-1", "resource": "Post", "tenant": "default",
        "attributes": {"premium": false}});
    let (s, body) = c
        .facts(Method::POST, "/resource_instances", post.clone())
        .await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(
        (body["resource"].as_str(), body["tenant"].as_str()),
        (Some("Post"), Some("default"))
    );
    assert!(body["resource_id"].is_string() && body["tenant_id"].is_string());
    let id = body["id"].as_str().unwrap().to_string();
    let (s, _) = c.facts(Method::POST, "/resource_instances", post).await;
    assert_eq!(s, 409);
    let (s, body) = c
        .facts(
            Method::POST,
            "/resource_instances",
            json!({"key": "p:2", "resource": "Post"}),
        )
        .await;
    assert_eq!(s, 422);
    assert_eq!(
        loc(&body),
        [json!(["body", "key"]), json!(["body", "tenant"])]
    );
    let (s, _) = c
        .facts(
            Method::POST,
            "/resource_instances",
            json!({"key": "p2", "resource": "Post", "tenant": "acme"}),
        )
        .await;
    assert_eq!(s, 404);
    for ident in ["Post:post-1", id.as_str()] {
        let (s, body) = c
            .facts(
                Method::GET,
                &format!("/resource_instances/{ident}"),
                Value::Null,
            )
            .await;
        assert_eq!(
            (s, body["key"].as_str()),
            (StatusCode::OK, Some("post-1")),
            "{ident}"
        );
    }
    let (_, body) = c
        .facts(
            Method::PATCH,
            "/resource_instances/Post:post-1",
            json!({"attributes": {"premium": true}}),
        )
        .await;
    assert_eq!(body["attributes"], json!({"premium": true}));

    // A tuple naming a missing instance creates it in the tuple's tenant.
    let tuple =
        json!({"subject": "Post:post-1", "relation": "parent", "object": "Comment:comment-1"});
    let (s, body) = c
        .facts(Method::POST, "/relationship_tuples", tuple.clone())
        .await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(
        (
            body["subject"].as_str(),
            body["object"].as_str(),
            body["tenant"].as_str()
        ),
        (
            Some("Post:post-1"),
            Some("Comment:comment-1"),
            Some("default")
        )
    );
    let (s, _) = c
        .facts(
            Method::GET,
            "/resource_instances/Comment:comment-1",
            Value::Null,
        )
        .await;
    assert_eq!(s, 200);
    let (s, _) = c
        .facts(Method::POST, "/relationship_tuples", tuple.clone())
        .await;
    assert_eq!(s, 409);
    let (s, body) = c
        .facts(
            Method::POST,
            "/relationship_tuples",
            json!({"subject": "Comment:comment-1", "relation": "parent", "object": "Comment:c2"}),
        )
        .await;
    assert_eq!(s, 400, "the relation's subject is a Post: {body}");
    let (s, body) = c
        .facts(
            Method::POST,
            "/relationship_tuples",
            json!({"subject": "Post:p9", "relation": "parent", "object": "Comment:c9"}),
        )
        .await;
    assert_eq!(
        (s, loc(&body)),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            vec![json!(["body", "tenant"])]
        )
    );
    c.ok(
        Method::POST,
        format!("{}/tenants", c.facts),
        json!({"key": "acme", "name": "Acme"}),
    )
    .await;
    let (s, body) = c
        .facts(Method::POST, "/relationship_tuples",
            json!({"subject": "Post:post-1", "relation": "parent", "object": "Comment:c3", "tenant": "acme"}))
        .await;
    assert_eq!(
        (s, body["error_code"].as_str()),
        (
            StatusCode::BAD_REQUEST,
            Some("MISMATCH_RESOURCE_INSTANCES_TENANTS")
        )
    );
    let (s, body) = c
        .facts(
            Method::POST,
            "/relationship_tuples",
            json!({"subject": "post-1", "relation": "parent",
        "object": "Comment:c1", "tenant": "default"}),
        )
        .await;
    assert_eq!(
        (s, loc(&body)),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            vec![json!(["body", "subject"])]
        )
    );
    let (_, list) = c
        .facts(
            Method::GET,
            "/relationship_tuples?subject=Post:post-1",
            Value::Null,
        )
        .await;
    assert_eq!(list.as_array().unwrap().len(), 1);
    let (_, list) = c
        .facts(
            Method::GET,
            "/relationship_tuples?relation=parent&tenant=acme",
            Value::Null,
        )
        .await;
    assert_eq!(list, json!([]));

    // An instance role assignment; one on a missing instance with a tenant creates it.
    let assign = json!({"user": "john", "role": "Author", "tenant": "default", "resource_instance": "Post:post-1"});
    let (s, body) = c
        .facts(Method::POST, "/role_assignments", assign.clone())
        .await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(
        (body["resource_instance"].as_str(), body["role"].as_str()),
        (Some("Post:post-1"), Some("Author"))
    );
    assert!(body["resource_instance_id"].is_string());
    let (s, _) = c
        .facts(Method::POST, "/role_assignments", assign.clone())
        .await;
    assert_eq!(s, 409);
    let (s, body) = c
        .facts(Method::POST, "/role_assignments",
            json!({"user": "john", "role": "Moderator", "tenant": "acme", "resource_instance": "Comment:new"}))
        .await;
    assert_eq!(s, 200, "{body}");
    let (_, created) = c
        .facts(Method::GET, "/resource_instances/Comment:new", Value::Null)
        .await;
    assert_eq!(created["tenant"], "acme");
    let (s, _) = c
        .facts(
            Method::POST,
            "/role_assignments",
            json!({"user": "john", "role": "Author", "resource_instance": "Post:missing"}),
        )
        .await;
    assert_eq!(s, 404, "no tenant to create the instance in");
    let (s, _) = c
        .facts(Method::POST, "/role_assignments",
            json!({"user": "john", "role": "Moderator", "tenant": "default", "resource_instance": "Post:post-1"}))
        .await;
    assert_eq!(s, 404, "Post has no Moderator role");
    let (s, body) = c
        .facts(Method::POST, "/role_assignments",
            json!({"user": "john", "role": "Author", "tenant": "acme", "resource_instance": "Post:post-1"}))
        .await;
    assert_eq!(
        (s, body["error_code"].as_str()),
        (
            StatusCode::BAD_REQUEST,
            Some("MISMATCH_RESOURCE_INSTANCES_TENANTS")
        )
    );
    let (_, list) = c
        .facts(
            Method::GET,
            "/role_assignments?resource_instance=Post:post-1",
            Value::Null,
        )
        .await;
    assert_eq!(list.as_array().unwrap().len(), 1, "{list}");
    let (_, list) = c
        .facts(
            Method::GET,
            "/role_assignments?resource=Comment&include_total_count=true",
            Value::Null,
        )
        .await;
    assert_eq!(list["total_count"], 1, "{list}");
    let (_, list) = c
        .facts(Method::GET, "/role_assignments?user=john", Value::Null)
        .await;
    assert_eq!(list.as_array().unwrap().len(), 2);
    let (_, user) = c.facts(Method::GET, "/users/john", Value::Null).await;
    assert_eq!(user["roles"], json!([]), "tenant roles only: {user}");
    let held: Vec<&Value> = user["associated_tenants"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|t| t["resource_instance_roles"].as_array().unwrap())
        .collect();
    assert!(
        held.contains(
            &&json!({"resource_instance": "Post:post-1", "resource": "Post", "role": "Author"})
        ),
        "{user}"
    );
    let (s, _) = c
        .facts(Method::DELETE, "/role_assignments", assign.clone())
        .await;
    assert_eq!(s, 204);
    let (s, _) = c.facts(Method::DELETE, "/role_assignments", assign).await;
    assert_eq!(s, 404);
    let (s, _) = c
        .facts(Method::DELETE, "/relationship_tuples", tuple.clone())
        .await;
    assert_eq!(s, 204);
    let (s, _) = c.facts(Method::DELETE, "/relationship_tuples", tuple).await;
    assert_eq!(s, 404);
    c.permit.shutdown().await.unwrap();
}

/// Bulk calls: their bodies (`operations`, `idents`), limits (3,000 instances, 1,000 tuples),
/// bulk tuple create all-or-nothing, bulk deletes skipping what is missing, bulk instance
/// assignments.
#[tokio::test]
async fn bulk_instances_tuples_and_assignments() {
    let c = Client::start().await;
    c.blogging_platform().await;
    c.user("john").await;
    let ops: Vec<Value> = (0..3)
        .map(|i| json!({"key": format!("p{i}"), "resource": "Post", "tenant": "default"}))
        .collect();
    let (s, body) = c
        .facts(
            Method::PUT,
            "/bulk/resource_instances",
            json!({"operations": ops}),
        )
        .await;
    assert_eq!((s, body), (StatusCode::OK, json!({})));
    let again = json!({"operations": [{"key": "p0", "resource": "Post", "tenant": "default", "attributes": {"a": 1}}]});
    c.ok(
        Method::PUT,
        format!("{}/bulk/resource_instances", c.facts),
        again,
    )
    .await;
    let (_, p0) = c
        .facts(Method::GET, "/resource_instances/Post:p0", Value::Null)
        .await;
    assert_eq!(p0["attributes"], json!({"a": 1}), "replaced");
    let many: Vec<Value> = (0..3001)
        .map(|i| json!({"key": format!("x{i}"), "resource": "Post", "tenant": "default"}))
        .collect();
    let (s, body) = c
        .facts(
            Method::PUT,
            "/bulk/resource_instances",
            json!({"operations": many}),
        )
        .await;
    assert_eq!(
        (s, loc(&body)),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            vec![json!(["body", "operations"])]
        )
    );

    let tuples: Vec<Value> = (0..3)
        .map(|i| json!({"subject": format!("Post:p{i}"), "relation": "parent", "object": format!("Comment:c{i}")}))
        .collect();
    let (s, body) = c
        .facts(
            Method::POST,
            "/relationship_tuples/bulk",
            json!({"operations": tuples}),
        )
        .await;
    assert_eq!((s, body), (StatusCode::OK, json!({})));
    let (_, list) = c
        .facts(
            Method::GET,
            "/relationship_tuples?include_total_count=true",
            Value::Null,
        )
        .await;
    assert_eq!(list["total_count"], 3);
    let mixed = json!({"operations": [
        {"subject": "Post:p0", "relation": "parent", "object": "Comment:c9"},
        {"subject": "Post:p0", "relation": "parent", "object": "Comment:c0"}]});
    let (s, _) = c
        .facts(Method::POST, "/relationship_tuples/bulk", mixed)
        .await;
    assert_eq!(s, 409);
    let (s, _) = c
        .facts(Method::GET, "/resource_instances/Comment:c9", Value::Null)
        .await;
    assert_eq!(s, 404, "all or nothing: not even the implicit instance");
    let many: Vec<Value> = (0..1001)
        .map(|i| json!({"subject": "Post:p0", "relation": "parent", "object": format!("Comment:m{i}")}))
        .collect();
    let (s, _) = c
        .facts(
            Method::POST,
            "/relationship_tuples/bulk",
            json!({"operations": many}),
        )
        .await;
    assert_eq!(s, 422);
    let (s, _) = c
        .facts(
            Method::DELETE,
            "/relationship_tuples/bulk",
            json!({"idents": [
            {"subject": "Post:p0", "relation": "parent", "object": "Comment:c0"},
            {"subject": "Post:p0", "relation": "parent", "object": "Comment:nope"}]}),
        )
        .await;
    assert_eq!(s, 200);
    let (_, list) = c
        .facts(Method::GET, "/relationship_tuples", Value::Null)
        .await;
    assert_eq!(list.as_array().unwrap().len(), 2);

    let assigns = json!([
        {"user": "john", "role": "Author", "tenant": "default", "resource_instance": "Post:p1"},
        {"user": "john", "role": "Author", "tenant": "default", "resource_instance": "Post:fresh"},
        {"user": "john", "role": "Author", "tenant": "default", "resource_instance": "Post:p1"}]);
    let (s, body) = c
        .facts(Method::POST, "/role_assignments/bulk", assigns.clone())
        .await;
    assert_eq!(
        (s, body["assignments_created"].as_u64()),
        (StatusCode::OK, Some(2)),
        "{body}"
    );
    let (s, body) = c
        .facts(Method::DELETE, "/role_assignments/bulk", assigns)
        .await;
    assert_eq!(
        (s, body["assignments_removed"].as_u64()),
        (StatusCode::OK, Some(2)),
        "{body}"
    );

    let (s, _) = c
        .facts(
            Method::DELETE,
            "/bulk/resource_instances",
            json!({"idents": ["Post:p1", "Post:nope"]}),
        )
        .await;
    assert_eq!(s, 200);
    let (_, list) = c
        .facts(
            Method::GET,
            "/resource_instances?resource=Post&include_total_count=true",
            Value::Null,
        )
        .await;
    assert_eq!(list["total_count"], 3, "p0, p2, fresh: {list}");
    c.permit.shutdown().await.unwrap();
}

/// What a delete takes with it: an instance its tuples and instance assignments; a relation its
/// tuples and the derivations that follow it; a resource role its assignments and the
/// derivations it is the source of; a resource its roles, relations and instances; a tenant its
/// instances.
#[tokio::test]
async fn deletes_cascade_as_permit_does() {
    let c = Client::start().await;
    c.blogging_platform().await;
    c.user("john").await;
    let tuple = json!({"subject": "Post:post-1", "relation": "parent", "object": "Comment:comment-1", "tenant": "default"});
    let assign = |role: &str, on: &str| json!({"user": "john", "role": role, "tenant": "default", "resource_instance": on});
    let count = |v: &Value| v.as_array().map_or(0, Vec::len);

    c.ok(
        Method::POST,
        format!("{}/relationship_tuples", c.facts),
        tuple.clone(),
    )
    .await;
    c.ok(
        Method::POST,
        format!("{}/role_assignments", c.facts),
        assign("Moderator", "Comment:comment-1"),
    )
    .await;
    c.ok(
        Method::DELETE,
        format!("{}/resource_instances/Comment:comment-1", c.facts),
        Value::Null,
    )
    .await;
    let (_, t) = c
        .facts(Method::GET, "/relationship_tuples", Value::Null)
        .await;
    let (_, a) = c.facts(Method::GET, "/role_assignments", Value::Null).await;
    assert_eq!(
        (count(&t), count(&a)),
        (0, 0),
        "the instance took its tuple and assignment"
    );

    c.ok(
        Method::POST,
        format!("{}/relationship_tuples", c.facts),
        tuple.clone(),
    )
    .await;
    c.ok(
        Method::DELETE,
        format!("{}/resources/Comment/relations/parent", c.schema),
        Value::Null,
    )
    .await;
    let (_, t) = c
        .facts(Method::GET, "/relationship_tuples", Value::Null)
        .await;
    assert_eq!(count(&t), 0, "the relation took its tuple");
    let (_, m) = c
        .schema(
            Method::GET,
            "/resources/Comment/roles/Moderator",
            Value::Null,
        )
        .await;
    assert_eq!(
        m["granted_to"]["users_with_role"],
        json!([]),
        "and the derivation following it"
    );

    let relation = json!({"key": "parent", "name": "Parent", "subject_resource": "Post"});
    c.ok(
        Method::POST,
        format!("{}/resources/Comment/relations", c.schema),
        relation,
    )
    .await;
    let rule = json!({"role": "Author", "on_resource": "Post", "linked_by_relation": "parent"});
    c.ok(
        Method::POST,
        format!(
            "{}/resources/Comment/roles/Moderator/implicit_grants",
            c.schema
        ),
        rule,
    )
    .await;
    c.ok(
        Method::POST,
        format!("{}/role_assignments", c.facts),
        assign("Author", "Post:post-1"),
    )
    .await;
    c.ok(
        Method::DELETE,
        format!("{}/resources/Post/roles/Author", c.schema),
        Value::Null,
    )
    .await;
    let (_, a) = c.facts(Method::GET, "/role_assignments", Value::Null).await;
    assert_eq!(count(&a), 0, "the role took its assignment");
    let (_, m) = c
        .schema(
            Method::GET,
            "/resources/Comment/roles/Moderator",
            Value::Null,
        )
        .await;
    assert_eq!(
        m["granted_to"]["users_with_role"],
        json!([]),
        "and the derivation from it"
    );

    c.ok(
        Method::POST,
        format!("{}/relationship_tuples", c.facts),
        tuple,
    )
    .await;
    c.ok(
        Method::DELETE,
        format!("{}/resources/Post", c.schema),
        Value::Null,
    )
    .await;
    let (_, rel) = c
        .schema(Method::GET, "/resources/Comment/relations", Value::Null)
        .await;
    let (_, i) = c
        .facts(Method::GET, "/resource_instances", Value::Null)
        .await;
    let (_, t) = c
        .facts(Method::GET, "/relationship_tuples", Value::Null)
        .await;
    assert_eq!(
        (rel["total_count"].as_u64(), count(&t)),
        (Some(0), 0),
        "relations to Post and their tuples"
    );
    let keys: Vec<&str> = i
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["key"].as_str().unwrap())
        .collect();
    assert_eq!(keys, ["comment-1"], "Post's instances went with it");

    c.ok(
        Method::POST,
        format!("{}/tenants", c.facts),
        json!({"key": "acme", "name": "Acme"}),
    )
    .await;
    let inst = json!({"key": "c2", "resource": "Comment", "tenant": "acme"});
    c.ok(
        Method::POST,
        format!("{}/resource_instances", c.facts),
        inst,
    )
    .await;
    c.ok(
        Method::DELETE,
        format!("{}/tenants/acme", c.facts),
        Value::Null,
    )
    .await;
    let (s, _) = c
        .facts(Method::GET, "/resource_instances/Comment:c2", Value::Null)
        .await;
    assert_eq!(s, 404, "the tenant took its instances");
    c.permit.shutdown().await.unwrap();
}
