//! The local PDP over real HTTP: the `pdp_delay_ms` knob (decisions on the data as it was N ms
//! ago, the lag headers), bodies refused as Permit's PDP refuses them, and `/user-permissions`'
//! filters as Permit's policy applies them.

use permit_sync::local::lag::{DELAY_HEADER, PENDING_HEADER};
use permit_sync::local::{LocalConfig, LocalHandle, LocalPermit};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

struct Env {
    permit: LocalHandle,
    http: reqwest::Client,
}

/// A PDP answer: status, the lag headers (delay, pending) and the body.
struct Answer {
    status: StatusCode,
    delay_ms: Option<u64>,
    pending_ms: Option<u64>,
    content_type: String,
    text: String,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or_else(|_| panic!("JSON: {}", self.text))
    }
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

    async fn rest(&self, method: Method, path: &str, body: Value) -> (StatusCode, Value) {
        let resp = self
            .http
            .request(method, format!("{}{path}", self.permit.api_url()))
            .bearer_auth(self.permit.api_key())
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = resp.status();
        let text = resp.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    async fn ok(&self, method: Method, path: &str, body: Value) {
        let (status, b) = self.rest(method.clone(), path, body).await;
        assert!(status.is_success(), "{method} {path}: {status} {b}");
    }

    async fn pdp(&self, method: Method, path: &str, body: Option<Value>) -> Answer {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.permit.pdp_url()))
            .bearer_auth(self.permit.api_key());
        if let Some(b) = body {
            req = req
                .header("content-type", "application/json")
                .body(b.to_string());
        }
        let resp = req.send().await.unwrap();
        let ms = |name: &str| {
            resp.headers()
                .get(name)
                .map(|v| v.to_str().unwrap().parse::<u64>().unwrap())
        };
        let (delay_ms, pending_ms) = (ms(DELAY_HEADER), ms(PENDING_HEADER));
        let content_type = resp
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default();
        Answer {
            status: resp.status(),
            delay_ms,
            pending_ms,
            content_type,
            text: resp.text().await.unwrap(),
        }
    }

    async fn allowed(&self, user: &str, action: &str, tenant: &str) -> Answer {
        let body = json!({"user": {"key": user}, "action": action,
            "resource": {"type": "post", "tenant": tenant}, "context": {}});
        let a = self.pdp(Method::POST, "/allowed", Some(body)).await;
        assert_eq!(a.status, 200, "{}", a.text);
        a
    }

    async fn allow(&self, user: &str, action: &str, tenant: &str) -> bool {
        self.allowed(user, action, tenant).await.json()["allow"]
            .as_bool()
            .unwrap()
    }

    /// post (read, update), comment (read); viewer = post:read + comment:read, editor extends
    /// viewer with post:update; tenants acme (with attributes) and default; jane and bob.
    async fn blog(&self) {
        const S: &str = "/v2/schema/default/local";
        const F: &str = "/v2/facts/default/local";
        for (key, actions) in [
            ("post", json!({"read": {}, "update": {}})),
            ("comment", json!({"read": {}})),
        ] {
            let body = json!({"key": key, "name": key, "actions": actions});
            self.ok(Method::POST, &format!("{S}/resources"), body).await;
        }
        let viewer = json!({"key": "viewer", "name": "Viewer",
            "permissions": ["post:read", "comment:read"]});
        self.ok(Method::POST, &format!("{S}/roles"), viewer).await;
        let editor = json!({"key": "editor", "name": "Editor", "permissions": ["post:update"],
            "extends": ["viewer"]});
        self.ok(Method::POST, &format!("{S}/roles"), editor).await;
        let acme = json!({"key": "acme", "name": "Acme", "attributes": {"plan": "pro"}});
        self.ok(Method::POST, &format!("{F}/tenants"), acme).await;
        for key in ["jane", "bob"] {
            self.ok(
                Method::PUT,
                &format!("{F}/users/{key}"),
                json!({"key": key}),
            )
            .await;
        }
    }

    async fn assign(&self, method: Method, user: &str, role: &str, tenant: &str) {
        let body = json!({"user": user, "role": role, "tenant": tenant});
        let path = "/v2/facts/default/local/role_assignments";
        let (status, b) = self.rest(method.clone(), path, body).await;
        assert!(status.is_success(), "{method} {path}: {status} {b}");
    }
}

const DELAY: Duration = Duration::from_millis(1500);

#[tokio::test]
async fn decisions_lag_writes_by_the_pdp_delay() {
    let env = Env::start().await;
    env.blog().await;

    // Off by default: a write is in the next decision, and the headers say so.
    env.assign(Method::POST, "jane", "viewer", "acme").await;
    let a = env.allowed("jane", "read", "acme").await;
    assert_eq!(a.json()["allow"], true);
    assert_eq!((a.delay_ms, a.pending_ms), (Some(0), Some(0)));

    // Set through the admin route; the data written before is visible at once.
    let (status, knobs) = env
        .rest(Method::PUT, "/_local/knobs", json!({"pdp_delay_ms": 1500}))
        .await;
    assert_eq!(status, 200, "{knobs}");
    assert_eq!(env.permit.knobs().pdp_delay_ms, 1500);
    let a = env.allowed("jane", "read", "acme").await;
    assert_eq!(a.json()["allow"], true);
    assert_eq!((a.delay_ms, a.pending_ms), (Some(1500), Some(0)));
    assert!(env.permit.pdp_lag().up_to_date());

    // A grant and a revocation: the PDP answers on the old data until DELAY has passed.
    let written = Instant::now();
    env.assign(Method::POST, "bob", "editor", "acme").await;
    env.assign(Method::DELETE, "jane", "viewer", "acme").await;
    let a = env.allowed("bob", "update", "acme").await;
    let pending = Duration::from_millis(a.pending_ms.unwrap());
    if written.elapsed() < DELAY {
        assert_eq!(a.json()["allow"], false, "bob's grant is not in yet");
        assert!(
            env.allow("jane", "read", "acme").await,
            "jane's revocation not in yet"
        );
        assert!(pending > Duration::ZERO && pending <= DELAY, "{pending:?}");
        let lag = env.permit.pdp_lag();
        assert_eq!(lag.delay, DELAY);
        assert!(!lag.up_to_date());
        // The PDP's own list of assignments is the data its decisions read.
        let local = env
            .pdp(Method::GET, "/local/role_assignments?user=bob", None)
            .await;
        assert_eq!(local.json(), json!([]));
        assert!(local.pending_ms.unwrap() > 0);
        // /allowed/bulk and /user-permissions read the same past.
        let bulk = env
            .pdp(
                Method::POST,
                "/allowed/bulk",
                Some(json!([{"user": {"key": "bob"}, "action": "read",
                    "resource": {"type": "post", "tenant": "acme"}}])),
            )
            .await;
        assert_eq!(bulk.json()["allow"][0]["allow"], false, "{}", bulk.text);
        let perms = env
            .pdp(
                Method::POST,
                "/user-permissions",
                Some(json!({"user": {"key": "jane"}})),
            )
            .await;
        assert!(
            perms.json().get("__tenant:acme").is_some(),
            "{}",
            perms.text
        );
    }

    // Once the delay has passed since the last write, both are in.
    tokio::time::sleep(DELAY.saturating_sub(written.elapsed()) + Duration::from_millis(50)).await;
    let a = env.allowed("bob", "update", "acme").await;
    assert_eq!(a.json()["allow"], true);
    assert_eq!(a.pending_ms, Some(0));
    assert!(!env.allow("jane", "read", "acme").await);
    assert!(env.permit.pdp_lag().up_to_date());
    let local = env
        .pdp(Method::GET, "/local/role_assignments?user=bob", None)
        .await;
    assert_eq!(local.json()[0]["role"], "editor");

    // Writes through the PDP's facts proxy are delayed too.
    let body = json!({"user": "jane", "role": "viewer", "tenant": "acme"});
    let resp = env
        .http
        .post(format!("{}/facts/role_assignments", env.permit.pdp_url()))
        .bearer_auth(env.permit.api_key())
        .json(&body)
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success());
    let proxied = Instant::now();
    let a = env.allowed("jane", "read", "acme").await;
    if proxied.elapsed() < DELAY {
        assert_eq!(a.json()["allow"], false);
        assert!(a.pending_ms.unwrap() > 0);
    }

    // Back to 0 (the handle's setter): everything at once, nothing kept.
    env.permit.set_pdp_delay(Duration::ZERO).unwrap();
    assert!(env.allow("jane", "read", "acme").await);
    env.assign(Method::DELETE, "jane", "viewer", "acme").await;
    let a = env.allowed("jane", "read", "acme").await;
    assert_eq!(a.json()["allow"], false);
    assert_eq!((a.delay_ms, a.pending_ms), (Some(0), Some(0)));

    // Turned on again: no stale copy from the first period (jane's revocation stands).
    env.permit.set_pdp_delay(DELAY).unwrap();
    assert!(!env.allow("jane", "read", "acme").await);
    assert!(env.permit.pdp_lag().up_to_date());

    // A data reset through the admin route (not a REST write) is delayed as well.
    let resp = env
        .http
        .post(format!("{}/_local/reset?data=true", env.permit.api_url()))
        .bearer_auth(env.permit.api_key())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 204);
    let reset = Instant::now();
    let a = env.allowed("bob", "update", "acme").await;
    if reset.elapsed() < DELAY {
        assert_eq!(a.json()["allow"], true, "the reset is not in yet");
    }

    // Out of range: refused, the knob kept.
    let (status, _) = env
        .rest(
            Method::PUT,
            "/_local/knobs",
            json!({"pdp_delay_ms": 600_001}),
        )
        .await;
    assert_eq!(status, 422);
    assert_eq!(env.permit.knobs().pdp_delay_ms, 1500);
}

#[tokio::test]
async fn string_users_and_resources_are_refused_as_permits_pdp_does() {
    let env = Env::start().await;
    env.blog().await;
    env.assign(Method::POST, "jane", "viewer", "acme").await;
    let refused = |a: &Answer, needle: &str| {
        assert_eq!(a.status, 422, "{}", a.text);
        assert!(
            a.content_type.starts_with("text/plain"),
            "{}",
            a.content_type
        );
        assert!(
            a.text
                .starts_with("Failed to deserialize the JSON body into the target type: "),
            "{}",
            a.text
        );
        assert!(a.text.contains(needle), "{needle} in {}", a.text);
    };
    let post = |body: Value| env.pdp(Method::POST, "/allowed", Some(body));

    // What the SDKs send is allowed...
    let ok = post(
        json!({"user": {"key": "jane", "email": "j@x", "attributes": {}},
        "action": "read", "resource": {"type": "post", "tenant": "acme", "attributes": {}},
        "context": {}, "sdk": "python"}),
    )
    .await;
    assert_eq!(ok.status, 200, "{}", ok.text);
    assert_eq!(ok.json()["allow"], true);

    // ...the strings they accept are not, at the PDP.
    let a = post(json!({"user": "jane", "action": "read",
        "resource": {"type": "post", "tenant": "acme"}}))
    .await;
    refused(&a, "user: invalid type: string \"jane\", expected struct");
    let a = post(json!({"user": {"key": "jane"}, "action": "read", "resource": "post:1"})).await;
    refused(
        &a,
        "resource: invalid type: string \"post:1\", expected struct",
    );
    let a = post(json!({"user": {"email": "j@x"}, "action": "read",
        "resource": {"type": "post"}}))
    .await;
    refused(&a, "user: missing field `key`");
    let a = post(json!({"user": {"key": "jane"}, "resource": {"type": "post"}})).await;
    refused(&a, "missing field `action`");

    // Bulk: one string user refuses the whole batch, with its index.
    let a = env
        .pdp(
            Method::POST,
            "/allowed/bulk",
            Some(json!([
                {"user": {"key": "jane"}, "action": "read", "resource": {"type": "post", "tenant": "acme"}},
                {"user": "jane", "action": "read", "resource": {"type": "post", "tenant": "acme"}},
            ])),
        )
        .await;
    refused(&a, "[1].user: invalid type: string");

    // /user-permissions takes a user object too.
    let a = env
        .pdp(
            Method::POST,
            "/user-permissions",
            Some(json!({"user": "jane"})),
        )
        .await;
    refused(&a, "user: invalid type: string");

    // Broken JSON is a 400, as axum's Json rejection.
    let resp = env
        .http
        .post(format!("{}/allowed", env.permit.pdp_url()))
        .bearer_auth(env.permit.api_key())
        .header("content-type", "application/json")
        .body("{\"user\":")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    assert!(
        resp.text()
            .await
            .unwrap()
            .starts_with("Failed to parse the request body as JSON")
    );
}

#[tokio::test]
async fn user_permissions_filters_as_permits_policy() {
    let env = Env::start().await;
    env.blog().await;
    env.assign(Method::POST, "jane", "editor", "acme").await;
    env.assign(Method::POST, "jane", "viewer", "default").await;
    let perms = |filters: Value| {
        let mut body = json!({"user": {"key": "jane"}});
        body.as_object_mut()
            .unwrap()
            .extend(filters.as_object().unwrap().clone());
        let env = &env;
        async move {
            let a = env.pdp(Method::POST, "/user-permissions", Some(body)).await;
            assert_eq!(a.status, 200, "{}", a.text);
            assert_eq!(a.pending_ms, Some(0));
            a.json()
        }
    };
    let keys = |v: &Value| {
        let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
        k.sort();
        k
    };

    // No filter: one entry per tenant, every permission of the roles (extends followed).
    let all = perms(json!({})).await;
    assert_eq!(keys(&all), ["__tenant:acme", "__tenant:default"]);
    assert_eq!(
        all["__tenant:acme"]["permissions"],
        json!(["comment:read", "post:read", "post:update"])
    );
    assert_eq!(all["__tenant:acme"]["roles"], json!(["editor"]));
    // Tenant attributes as stored; left out when empty (the PDP's TenantDetails skips them).
    assert_eq!(
        all["__tenant:acme"]["tenant"],
        json!({"key": "acme", "attributes": {"plan": "pro"}})
    );
    assert_eq!(all["__tenant:default"]["tenant"], json!({"key": "default"}));

    // resource_types names object types: a tenant entry's is `__tenant`, and its permissions are
    // not filtered by it.
    assert_eq!(perms(json!({"resource_types": ["post"]})).await, json!({}));
    let tenants = perms(json!({"resource_types": ["post", "__tenant"]})).await;
    assert_eq!(tenants, all);
    assert_eq!(
        tenants["__tenant:default"]["permissions"],
        json!(["comment:read", "post:read"])
    );

    // tenants: by key or `__tenant:<key>`.
    let acme = perms(json!({"tenants": ["acme"]})).await;
    assert_eq!(keys(&acme), ["__tenant:acme"]);
    let default = perms(json!({"tenants": ["__tenant:default"]})).await;
    assert_eq!(keys(&default), ["__tenant:default"]);
    assert_eq!(
        perms(json!({"tenants": ["acme"], "resource_types": ["comment"]})).await,
        json!({})
    );

    // resources: an instances filter leaves tenant entries out, unless it names them.
    assert_eq!(perms(json!({"resources": ["post:1"]})).await, json!({}));
    let named = perms(json!({"resources": ["post:1", "__tenant:acme"]})).await;
    assert_eq!(keys(&named), ["__tenant:acme"]);

    // Nulls are no filter; an unknown user has no entries.
    assert_eq!(
        perms(json!({"tenants": null, "resource_types": null})).await,
        all
    );
    let a = env
        .pdp(
            Method::POST,
            "/user-permissions",
            Some(json!({"user": {"key": "nobody"}})),
        )
        .await;
    assert_eq!(a.json(), json!({}));
}
