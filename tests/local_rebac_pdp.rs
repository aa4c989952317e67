//! The local PDP's ReBAC decisions over real HTTP, with answers from Permit's documented
//! behaviour: the `blogging-platform` template (permit-cli `source/templates/
//! blogging-platform.tf`: John, Author of `Post:post-1`, moderates `Comment:comment-1`, the
//! post's comment, through the derivation `Post#Author → Comment#Moderator`; Emma does not), a
//! three-hop chain, a cycle of tuples, `no_direct_roles_on_object`, tenants, `/allowed/bulk` and
//! `/user-permissions` with `type:key` entries and its filters.

use permit_sync::local::{LocalConfig, LocalHandle, LocalPermit};
use reqwest::Method;
use serde_json::{Value, json};

struct Env {
    permit: LocalHandle,
    http: reqwest::Client,
}

impl Env {
    async fn start() -> Env {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let permit = LocalPermit::start(LocalConfig::ephemeral()).await.unwrap();
        Env {
            permit,
            http: reqwest::Client::new(),
        }
    }

    async fn send(&self, method: Method, url: String, body: Value) -> Value {
        let resp = self
            .http
            .request(method.clone(), &url)
            .bearer_auth(self.permit.api_key())
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = resp.status();
        let text = resp.text().await.unwrap();
        assert!(status.is_success(), "{method} {url}: {status} {text}");
        serde_json::from_str(&text).unwrap_or(Value::Null)
    }

    async fn schema(&self, path: &str, body: Value) {
        let url = format!("{}{path}", self.permit.schema_url());
        self.send(Method::POST, url, body).await;
    }

    async fn facts(&self, method: Method, path: &str, body: Value) {
        let url = format!("{}{path}", self.permit.facts_url());
        self.send(method, url, body).await;
    }

    async fn resource(&self, key: &str, actions: &[&str]) {
        let actions: serde_json::Map<String, Value> =
            actions.iter().map(|a| (a.to_string(), json!({}))).collect();
        self.schema(
            "/resources",
            json!({"key": key, "name": key, "actions": actions}),
        )
        .await;
    }

    async fn role(&self, resource: &str, key: &str, permissions: &[&str]) {
        let body = json!({"key": key, "name": key, "permissions": permissions});
        self.schema(&format!("/resources/{resource}/roles"), body)
            .await;
    }

    async fn relation(&self, object: &str, key: &str, subject: &str) {
        let body = json!({"key": key, "name": key, "subject_resource": subject});
        self.schema(&format!("/resources/{object}/relations"), body)
            .await;
    }

    /// `resource#role` is granted to users with `from_role` on `from`, linked by `relation`.
    async fn derive(
        &self,
        resource: &str,
        role: &str,
        from: &str,
        from_role: &str,
        relation: &str,
    ) {
        let body = json!({"role": from_role, "on_resource": from, "linked_by_relation": relation});
        self.schema(
            &format!("/resources/{resource}/roles/{role}/implicit_grants"),
            body,
        )
        .await;
    }

    async fn user(&self, key: &str) {
        self.facts(Method::PUT, &format!("/users/{key}"), json!({"key": key}))
            .await;
    }

    async fn assign(&self, user: &str, role: &str, tenant: &str, instance: Option<&str>) {
        let mut body = json!({"user": user, "role": role, "tenant": tenant});
        if let Some(i) = instance {
            body["resource_instance"] = json!(i);
        }
        self.facts(Method::POST, "/role_assignments", body).await;
    }

    async fn tuple(&self, subject: &str, relation: &str, object: &str, tenant: &str) {
        let body =
            json!({"subject": subject, "relation": relation, "object": object, "tenant": tenant});
        self.facts(Method::POST, "/relationship_tuples", body).await;
    }

    /// `/allowed` on `type:key` (or a bare type), the body the SDKs send for `"Post:post-1"`.
    async fn check(&self, user: &str, action: &str, resource: &str, tenant: &str) -> bool {
        let mut r = json!({"type": resource, "tenant": tenant});
        if let Some((t, k)) = resource.split_once(':') {
            r = json!({"type": t, "key": k, "tenant": tenant});
        }
        let body = json!({"user": {"key": user}, "action": action, "resource": r, "context": {}});
        let url = format!("{}/allowed", self.permit.pdp_url());
        self.send(Method::POST, url, body).await["allow"]
            .as_bool()
            .unwrap()
    }

    async fn user_permissions(&self, body: Value) -> Value {
        let url = format!("{}/user-permissions", self.permit.pdp_url());
        self.send(Method::POST, url, body).await
    }

    /// The template's resources, roles, relation and derivation; John and Emma as `Reader` in
    /// `default` (the quick-start's facts), John also `Post#Author` on `Post:post-1`; the tuple
    /// `Post:post-1 parent Comment:comment-1`.
    async fn blogging_platform(&self) {
        let crud = ["create", "read", "update", "delete"];
        self.resource("Post", &crud).await;
        self.resource("Comment", &crud).await;
        self.role("Comment", "Author", &["create", "read"]).await;
        self.role("Comment", "Moderator", &crud).await;
        self.role("Post", "Author", &crud).await;
        self.schema(
            "/roles",
            json!({"key": "Reader", "name": "Reader",
            "permissions": ["Comment:create", "Comment:read"]}),
        )
        .await;
        self.relation("Comment", "parent", "Post").await;
        self.derive("Comment", "Moderator", "Post", "Author", "parent")
            .await;
        for u in ["john", "emma"] {
            self.user(u).await;
            self.assign(u, "Reader", "default", None).await;
        }
        self.assign("john", "Author", "default", Some("Post:post-1"))
            .await;
        self.tuple("Post:post-1", "parent", "Comment:comment-1", "default")
            .await;
    }
}

#[tokio::test]
async fn john_moderates_the_comment_of_his_post_and_emma_does_not() {
    let e = Env::start().await;
    e.blogging_platform().await;
    assert!(
        e.check("john", "delete", "Comment:comment-1", "default")
            .await
    );
    assert!(
        !e.check("emma", "delete", "Comment:comment-1", "default")
            .await
    );
    // Direct instance role; RBAC still answers for every instance and the bare type.
    assert!(e.check("john", "update", "Post:post-1", "default").await);
    assert!(!e.check("emma", "update", "Post:post-1", "default").await);
    assert!(
        e.check("emma", "read", "Comment:comment-1", "default")
            .await,
        "Reader (RBAC)"
    );
    assert!(e.check("emma", "read", "Comment", "default").await);
    assert!(
        !e.check("john", "delete", "Comment", "default").await,
        "a type-level check is RBAC only"
    );
    assert!(!e.check("john", "delete", "Comment:other", "default").await);
    // What the PDP holds: the instance role with its instance.
    let url = format!("{}/local/role_assignments?user=john", e.permit.pdp_url());
    let held = e.send(Method::GET, url, Value::Null).await;
    assert!(
        held.as_array()
            .unwrap()
            .contains(&json!({"user": "john", "role": "Author",
            "tenant": "default", "resource_instance": "Post:post-1"})),
        "{held}"
    );
    // Another tenant's check reaches nothing of `default`.
    e.facts(
        Method::POST,
        "/tenants",
        json!({"key": "acme", "name": "Acme"}),
    )
    .await;
    assert!(!e.check("john", "delete", "Comment:comment-1", "acme").await);

    // Deleting the tuple takes the derived role away.
    e.facts(
        Method::DELETE,
        "/relationship_tuples",
        json!({"subject": "Post:post-1", "relation": "parent", "object": "Comment:comment-1"}),
    )
    .await;
    assert!(
        !e.check("john", "delete", "Comment:comment-1", "default")
            .await
    );

    // /allowed/bulk: in order, each on its own resource.
    let body = json!([
        {"user": {"key": "john"}, "action": "update", "resource": {"type": "Post", "key": "post-1", "tenant": "default"}},
        {"user": {"key": "emma"}, "action": "update", "resource": {"type": "Post", "key": "post-1", "tenant": "default"}},
        {"user": {"key": "emma"}, "action": "read", "resource": {"type": "Comment", "tenant": "default"}},
    ]);
    let url = format!("{}/allowed/bulk", e.permit.pdp_url());
    let got = e.send(Method::POST, url, body).await;
    let allow: Vec<bool> = got["allow"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["allow"].as_bool().unwrap())
        .collect();
    assert_eq!(allow, [true, false, true]);
    e.permit.shutdown().await.unwrap();
}

/// Account → Folder → Document → Page: an account admin edits a page three tuples away; a cycle
/// of tuples answers (and grants nothing it should not).
#[tokio::test]
async fn a_three_hop_chain_decides_and_a_cycle_of_tuples_answers() {
    let e = Env::start().await;
    for r in ["Account", "Folder", "Document", "Page"] {
        e.resource(r, &["read", "edit"]).await;
    }
    e.role("Account", "admin", &["read", "edit"]).await;
    for r in ["Folder", "Document", "Page"] {
        e.role(r, "editor", &["read", "edit"]).await;
        e.role(r, "viewer", &["read"]).await;
    }
    e.relation("Folder", "account", "Account").await;
    e.relation("Document", "folder", "Folder").await;
    e.relation("Page", "document", "Document").await;
    e.derive("Folder", "editor", "Account", "admin", "account")
        .await;
    e.derive("Document", "editor", "Folder", "editor", "folder")
        .await;
    e.derive("Page", "editor", "Document", "editor", "document")
        .await;
    e.user("ann").await;
    e.assign("ann", "admin", "default", Some("Account:acme"))
        .await;
    e.tuple("Account:acme", "account", "Folder:f", "default")
        .await;
    e.tuple("Folder:f", "folder", "Document:d", "default").await;
    e.tuple("Document:d", "document", "Page:p", "default").await;
    assert!(
        e.check("ann", "edit", "Page:p", "default").await,
        "three hops"
    );
    assert!(e.check("ann", "edit", "Document:d", "default").await);
    assert!(!e.check("ann", "edit", "Page:q", "default").await);

    // A cycle: folders inside folders, each the other's parent.
    e.relation("Folder", "parent", "Folder").await;
    e.derive("Folder", "viewer", "Folder", "viewer", "parent")
        .await;
    e.tuple("Folder:a", "parent", "Folder:b", "default").await;
    e.tuple("Folder:b", "parent", "Folder:a", "default").await;
    e.user("bob").await;
    e.assign("bob", "viewer", "default", Some("Folder:a")).await;
    assert!(
        e.check("bob", "read", "Folder:b", "default").await,
        "through the cycle"
    );
    assert!(!e.check("bob", "edit", "Folder:b", "default").await);
    assert!(!e.check("bob", "read", "Folder:f", "default").await);
    e.permit.shutdown().await.unwrap();
}

/// `no_direct_roles_on_object` (permit-python `tests/test_rebac_e2e.py`): a user with a direct
/// role on the object gets nothing derived on it.
#[tokio::test]
async fn no_direct_roles_on_object_blocks_the_derivation() {
    let e = Env::start().await;
    e.blogging_platform().await;
    e.user("zoe").await;
    e.assign("zoe", "Author", "default", Some("Post:post-1"))
        .await;
    e.assign("zoe", "Author", "default", Some("Comment:comment-1"))
        .await;
    assert!(
        e.check("zoe", "delete", "Comment:comment-1", "default")
            .await
    );
    let url = format!(
        "{}/resources/Comment/roles/Moderator/implicit_grants/conditions",
        e.permit.schema_url()
    );
    e.send(Method::PUT, url, json!({"no_direct_roles_on_object": true}))
        .await;
    assert!(
        !e.check("zoe", "delete", "Comment:comment-1", "default")
            .await
    );
    assert!(
        e.check("zoe", "read", "Comment:comment-1", "default").await,
        "her direct role stays"
    );
    assert!(
        e.check("john", "delete", "Comment:comment-1", "default")
            .await,
        "john has no direct role"
    );
    e.permit.shutdown().await.unwrap();
}

/// `/user-permissions`: `type:key` entries with the roles (direct and derived) and `type:action`
/// permissions, beside the `__tenant:` ones; `resource_types` and `resources` filter them as
/// Permit's `permit/user_permissions.rego` does.
#[tokio::test]
async fn user_permissions_list_instances_with_roles_and_permissions() {
    let e = Env::start().await;
    e.blogging_platform().await;
    let all = e.user_permissions(json!({"user": {"key": "john"}})).await;
    let keys: std::collections::BTreeSet<&str> = all
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        ["Comment:comment-1", "Post:post-1", "__tenant:default"]
            .into_iter()
            .collect()
    );
    let comment = &all["Comment:comment-1"];
    assert_eq!(
        comment["resource"],
        json!({"key": "comment-1", "type": "Comment"})
    );
    assert_eq!(comment["roles"], json!(["Moderator"]));
    assert_eq!(
        comment["permissions"],
        json!([
            "Comment:create",
            "Comment:delete",
            "Comment:read",
            "Comment:update"
        ])
    );
    assert_eq!(all["Post:post-1"]["roles"], json!(["Author"]));

    let only_posts = e
        .user_permissions(json!({"user": {"key": "john"}, "resource_types": ["Post"]}))
        .await;
    assert_eq!(
        only_posts.as_object().unwrap().keys().collect::<Vec<_>>(),
        ["Post:post-1"]
    );
    let tenants = e
        .user_permissions(json!({"user": {"key": "john"}, "resource_types": ["__tenant"]}))
        .await;
    assert_eq!(
        tenants.as_object().unwrap().keys().collect::<Vec<_>>(),
        ["__tenant:default"]
    );
    let named = e
        .user_permissions(json!({"user": {"key": "john"}, "resources": ["Comment:comment-1"]}))
        .await;
    assert_eq!(
        named.as_object().unwrap().keys().collect::<Vec<_>>(),
        ["Comment:comment-1"]
    );
    let emma = e.user_permissions(json!({"user": {"key": "emma"}})).await;
    assert_eq!(
        emma.as_object().unwrap().keys().collect::<Vec<_>>(),
        ["__tenant:default"]
    );
    e.permit.shutdown().await.unwrap();
}
