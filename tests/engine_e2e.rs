//! The sync engine over real HTTP: the Permit client against a scripted server (retries, limits,
//! errors), and (once available) whole scenarios against the embedded local Permit.

use permit_sync::permit::{ApiKey, Call, ClientConfig, Limits, PermitClient, RetryPolicy};
use reqwest::Method;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// What the scripted server does with one request.
#[derive(Clone, Debug)]
enum Reply {
    Status(u16, Option<&'static str>, &'static str),
    /// Read the request, then close the connection without answering.
    Drop,
}

/// A tiny HTTP/1.1 server answering from a script (then 200 `{}`); the scope route always works.
struct Scripted {
    url: String,
    seen: Arc<Mutex<Vec<(String, String, Instant)>>>,
}

async fn scripted(script: Vec<Reply>) -> Scripted {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let script = Arc::new(Mutex::new(VecDeque::from(script)));
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut sock, _)) = listener.accept().await else {
                return;
            };
            let script = script.clone();
            let log = log.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                let (head_end, content_length) = loop {
                    let n = sock.read(&mut chunk).await.unwrap_or(0);
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        let head = String::from_utf8_lossy(&buf[..i]).to_ascii_lowercase();
                        let len = head
                            .lines()
                            .find_map(|l| l.strip_prefix("content-length:"))
                            .and_then(|v| v.trim().parse::<usize>().ok())
                            .unwrap_or(0);
                        break (i + 4, len);
                    }
                };
                while buf.len() < head_end + content_length {
                    let n = sock.read(&mut chunk).await.unwrap_or(0);
                    if n == 0 {
                        break;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                }
                let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
                let mut first = head.lines().next().unwrap_or("").split(' ');
                let method = first.next().unwrap_or("").to_string();
                let path = first.next().unwrap_or("").to_string();
                let reply = if path.starts_with("/v2/api-key/scope") {
                    Reply::Status(
                        200,
                        None,
                        r#"{"organization_id":"o","project_id":"p","environment_id":"e"}"#,
                    )
                } else {
                    log.lock().unwrap().push((method, path, Instant::now()));
                    script
                        .lock()
                        .unwrap()
                        .pop_front()
                        .unwrap_or(Reply::Status(200, None, "{}"))
                };
                match reply {
                    Reply::Drop => {
                        let _ = sock.shutdown().await;
                    }
                    Reply::Status(code, retry_after, body) => {
                        let extra = retry_after
                            .map(|s| format!("retry-after: {s}\r\n"))
                            .unwrap_or_default();
                        let resp = format!(
                            "HTTP/1.1 {code} X\r\ncontent-type: application/json\r\n{extra}content-length: {}\r\nconnection: close\r\n\r\n{body}",
                            body.len()
                        );
                        let _ = sock.write_all(resp.as_bytes()).await;
                        let _ = sock.shutdown().await;
                    }
                }
            });
        }
    });
    Scripted { url, seen }
}

fn config(url: &str) -> ClientConfig {
    let mut c = ClientConfig::new(url, ApiKey::new("permit_key_TESTSECRET0123456789"));
    c.limits = Limits::unlimited();
    c.retry = RetryPolicy {
        max_attempts: 4,
        min_delay: Duration::from_millis(10),
        max_delay: Duration::from_millis(50),
        max_retry_after: Duration::from_secs(5),
    };
    c.timeout = Duration::from_secs(5);
    c
}

fn post(client: &PermitClient) -> Call {
    Call::new(
        Method::POST,
        client.facts("tenants"),
        "tenants.create",
        "PermitTenant acme",
    )
    .body(serde_json::json!({"key": "acme", "name": "Acme"}))
}

#[tokio::test]
async fn retries_429_honouring_retry_after_then_succeeds() {
    let server = scripted(vec![
        Reply::Status(429, Some("1"), r#"{"message":"slow down"}"#),
        Reply::Status(429, None, "{}"),
        Reply::Status(201, None, r#"{"key":"acme"}"#),
    ])
    .await;
    let client = PermitClient::connect(config(&server.url)).await.unwrap();
    // A create is not idempotent, but a 429 means Permit refused it: safe to send again.
    let v = client.call(post(&client)).await.unwrap();
    assert_eq!(v["key"], "acme");
    let seen = server.seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 3);
    let gap = seen[1].2 - seen[0].2;
    assert!(
        gap >= Duration::from_millis(950),
        "Retry-After ignored: {gap:?}"
    );
    let m = client.metrics();
    assert_eq!(m.retries, 2);
    assert_eq!(m.requests["write"][&429], 2);
    assert_eq!(m.requests["write"][&201], 1);
}

#[tokio::test]
async fn a_bulk_429_without_retry_after_waits_for_the_window_then_succeeds() {
    let server = scripted(vec![
        Reply::Status(200, None, "{}"),
        Reply::Status(429, None, r#"{"message":"rate limited"}"#),
        Reply::Status(200, None, "{}"),
    ])
    .await;
    let mut c = config(&server.url);
    // Permit's bulk count in a 2 s window; the backoff would retry after 10-50 ms.
    c.limits.set("bulk=100/2").unwrap();
    let client = PermitClient::connect(c).await.unwrap();
    let bulk = || {
        Call::new(
            Method::PUT,
            client.facts("bulk/users"),
            "users.bulk_upsert",
            "users",
        )
        .body(serde_json::json!({"operations": []}))
    };
    client.call(bulk()).await.unwrap();
    client.call(bulk()).await.unwrap();
    let seen = server.seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 3, "the same call again, no fallback: {seen:?}");
    // Permit let one call through before refusing: the budget is spent, so the retry waits until
    // the first call's window (2 s + a 33 ms margin) has passed.
    let gap = seen[2].2 - seen[0].2;
    assert!(
        gap >= Duration::from_millis(2000),
        "retried too early: {gap:?}"
    );
    let m = client.metrics();
    assert_eq!(m.requests["bulk"][&429], 1);
    assert_eq!(m.rate_limit_waits, 1);
}

#[tokio::test]
async fn server_errors_are_retried_only_when_idempotent() {
    let server = scripted(vec![
        Reply::Status(503, None, "{}"),
        Reply::Status(502, None, "{}"),
        Reply::Status(200, None, "[]"),
        Reply::Status(503, None, "{}"),
    ])
    .await;
    let client = PermitClient::connect(config(&server.url)).await.unwrap();
    let get = Call::new(
        Method::GET,
        client.facts("tenants"),
        "tenants.list",
        "list tenants",
    );
    client.call(get).await.unwrap();
    assert_eq!(server.seen.lock().unwrap().len(), 3);

    // The POST meets a 503: its outcome is unknown, so it is not repeated.
    let err = client.call(post(&client)).await.unwrap_err();
    assert!(err.is_ambiguous(), "{err}");
    assert_eq!(server.seen.lock().unwrap().len(), 4);
    let text = err.to_string();
    assert!(
        text.contains("PermitTenant acme") && text.contains("503"),
        "{text}"
    );
}

#[tokio::test]
async fn dropped_connections_retry_idempotent_calls_and_report_maybe_applied_ones() {
    let server = scripted(vec![Reply::Drop, Reply::Drop]).await;
    let client = PermitClient::connect(config(&server.url)).await.unwrap();
    let put = Call::new(
        Method::PUT,
        client.facts("bulk/users"),
        "users.bulk_upsert",
        "bulk upsert of 2 users",
    )
    .body(serde_json::json!({"operations": []}));
    client.call(put).await.unwrap();
    assert_eq!(server.seen.lock().unwrap().len(), 3);

    let server = scripted(vec![Reply::Drop]).await;
    let client = PermitClient::connect(config(&server.url)).await.unwrap();
    let err = client.call(post(&client)).await.unwrap_err();
    assert!(
        err.is_ambiguous(),
        "a dropped create may have happened: {err}"
    );
    assert_eq!(server.seen.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn errors_name_the_object_and_never_the_key() {
    let server = scripted(vec![Reply::Status(
        422,
        None,
        r#"{"detail":[{"loc":["body","key"],"msg":"bad key permit_key_TESTSECRET0123456789","type":"value_error"}]}"#,
    )])
    .await;
    let client = PermitClient::connect(config(&server.url)).await.unwrap();
    let err = client.call(post(&client)).await.unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("PermitTenant acme") && text.contains("body.key"),
        "{text}"
    );
    assert!(!text.contains("TESTSECRET"), "{text}");
    assert!(!format!("{:?}", config(&server.url)).contains("TESTSECRET"));
    // 4xx other than 429 are final.
    assert_eq!(server.seen.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn the_limiter_spends_each_window_per_class() {
    let server = scripted(vec![]).await;
    let mut c = config(&server.url);
    c.limits.set("write=3/1").unwrap();
    let client = PermitClient::connect(c).await.unwrap();
    // The window's three writes go at once.
    let start = Instant::now();
    for _ in 0..3 {
        client.call(post(&client)).await.unwrap();
    }
    assert!(
        start.elapsed() < Duration::from_millis(500),
        "{:?}",
        start.elapsed()
    );
    assert_eq!(client.metrics().rate_limit_waits, 0);
    // Reads are not writes: they do not wait.
    for _ in 0..5 {
        let get = Call::new(
            Method::GET,
            client.facts("users"),
            "users.list",
            "list users",
        );
        client.call(get).await.unwrap();
    }
    assert_eq!(client.metrics().rate_limit_waits, 0);
    // The fourth write waits for the first one's window to pass.
    client.call(post(&client)).await.unwrap();
    assert!(
        start.elapsed() >= Duration::from_millis(1000),
        "{:?}",
        start.elapsed()
    );
    assert_eq!(client.metrics().rate_limit_waits, 1);
}

// ---------------------------------------------------------------------------------------------
// Scenarios against the embedded local Permit, over real HTTP. Each prints the API calls it took,
// as counted by the local Permit.

mod local {
    use permit_sync::commands::apply::{self, ApplyArgs};
    use permit_sync::commands::plan::{self, PlanArgs};
    use permit_sync::commands::{ConnectionArgs, OwnershipArgs, SyncArgs};
    use permit_sync::engine;
    use permit_sync::exec::ExecOptions;
    use permit_sync::inventory::StateFile;
    use permit_sync::kinds::{Kind, Object, Origin};
    use permit_sync::local::knobs::{Counters, Faults, Knobs};
    use permit_sync::local::{LocalConfig, LocalHandle, LocalPermit};
    use permit_sync::plan::render::{Format, NO_CHANGES};
    use permit_sync::plan::{Mode, PlanOptions};
    use serde_json::{Value, json};
    use std::collections::BTreeMap;
    use std::path::{Path, PathBuf};

    /// Permit's limit counts in one-second windows (`--rate-limit`), for runs that meet injected
    /// 429s without `Retry-After`: each waits for its window, a second instead of up to ten minutes.
    pub const ONE_SECOND_WINDOWS: [&str; 5] = [
        "bulk=100/1",
        "schema_write=40/1",
        "delete=60/1",
        "write=300/1",
        "all=1000/1",
    ];

    pub struct Env {
        pub permit: LocalHandle,
        pub dir: tempfile::TempDir,
    }

    pub async fn start(knobs: Knobs) -> Env {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let permit = LocalPermit::start(LocalConfig {
            knobs,
            ..LocalConfig::ephemeral()
        })
        .await
        .unwrap();
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("api-key"), permit.api_key()).unwrap();
        Env { permit, dir }
    }

    impl Env {
        pub fn connection(&self) -> ConnectionArgs {
            ConnectionArgs {
                api_url: self.permit.api_url(),
                api_key_file: Some(self.dir.path().join("api-key")),
                rate_limits: vec![],
                timeout: 10,
            }
        }

        pub fn state_file(&self) -> PathBuf {
            self.dir.path().join("state/inventory.json")
        }

        pub fn sync(&self, prune: bool) -> SyncArgs {
            SyncArgs {
                path: PathBuf::from("manifests"),
                ownership: OwnershipArgs {
                    prune,
                    mode: Mode::Owned,
                    allow_empty: false,
                    max_deletions: None,
                    state_file: self.state_file(),
                },
                connection: self.connection(),
            }
        }

        pub fn apply_args(&self, prune: bool) -> ApplyArgs {
            ApplyArgs {
                sync: self.sync(prune),
                dry_run: false,
                yes: true,
                output: Format::Table,
                report: None,
                concurrency: 8,
            }
        }

        pub async fn apply(&self, args: &ApplyArgs, objects: &[(Origin, Object)]) -> (u8, String) {
            let mut out = Vec::new();
            let code = apply::run(
                args,
                permit_sync::commands::desired(objects).unwrap(),
                &mut out,
            )
            .await
            .unwrap();
            (code, String::from_utf8(out).unwrap())
        }

        pub async fn plan(&self, args: &PlanArgs, objects: &[(Origin, Object)]) -> (u8, String) {
            let mut out = Vec::new();
            let code = plan::run(
                args,
                &permit_sync::commands::desired(objects).unwrap(),
                &mut out,
            )
            .await
            .unwrap();
            (code, String::from_utf8(out).unwrap())
        }

        /// One call straight to the local Permit's REST API, as another tool would make it.
        pub async fn direct(&self, method: reqwest::Method, path: &str, body: Value) -> u16 {
            let url = format!("{}{path}", self.permit.api_url());
            let r = reqwest::Client::new()
                .request(method, url)
                .bearer_auth(self.permit.api_key())
                .json(&body)
                .send()
                .await
                .unwrap();
            r.status().as_u16()
        }

        pub async fn allowed(
            &self,
            user: &str,
            action: &str,
            resource: &str,
            tenant: &str,
        ) -> bool {
            let body = permit_sync::check::allowed_body(user, action, resource, tenant);
            let r: Value = reqwest::Client::new()
                .post(format!("{}/allowed", self.permit.pdp_url()))
                .bearer_auth(self.permit.api_key())
                .json(&body)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            r["allow"].as_bool().unwrap()
        }
    }

    /// Requests between two counter snapshots, by endpoint.
    pub fn calls(before: &Counters, after: &Counters) -> BTreeMap<String, u64> {
        after
            .by_endpoint
            .iter()
            .filter_map(|(k, n)| {
                let d = n - before.by_endpoint.get(k).copied().unwrap_or(0);
                (d > 0).then(|| (k.clone(), d))
            })
            .collect()
    }

    pub fn report(scenario: &str, calls: &BTreeMap<String, u64>) {
        let total: u64 = calls.values().sum();
        let writes: u64 = calls
            .iter()
            .filter(|(k, _)| !k.starts_with("GET "))
            .map(|(_, n)| n)
            .sum();
        eprintln!("[api calls] {scenario}: {total} ({writes} writes) {calls:?}");
    }

    pub fn obj(v: Value) -> (Origin, Object) {
        let origin = Origin::File {
            path: std::path::Path::new("test.yaml").into(),
            line: 1,
            column: 1,
        };
        let kind = v["kind"].as_str().unwrap().to_string();
        let object = match kind.as_str() {
            "PermitResource" => Object::Resource(serde_json::from_value(v).unwrap()),
            "PermitRole" => Object::Role(serde_json::from_value(v).unwrap()),
            "PermitTenant" => Object::Tenant(serde_json::from_value(v).unwrap()),
            "PermitUser" => Object::User(serde_json::from_value(v).unwrap()),
            "RoleAssignment" => Object::Assignment(serde_json::from_value(v).unwrap()),
            other => panic!("no such kind {other}"),
        };
        (origin, object)
    }

    fn doc(kind: &str, name: &str, spec: Value) -> (Origin, Object) {
        obj(
            json!({"apiVersion": "permitsync.dev/v1alpha1", "kind": kind,
                   "metadata": {"name": name}, "spec": spec}),
        )
    }

    /// The rbac-blog-reduced example, through the manifest loader.
    pub fn blog() -> Vec<(Origin, Object)> {
        permit_sync::commands::load(Path::new("examples/rbac-blog-reduced")).unwrap()
    }

    pub fn without(objects: &[(Origin, Object)], kind: Kind, name: &str) -> Vec<(Origin, Object)> {
        objects
            .iter()
            .filter(|(_, o)| !(o.kind() == kind && o.name() == name))
            .cloned()
            .collect()
    }

    pub fn plan_args(env: &Env, prune: bool, output: Format) -> PlanArgs {
        PlanArgs {
            sync: env.sync(prune),
            output,
            detailed_exitcode: true,
        }
    }

    #[tokio::test]
    async fn blog_rbac_apply_allows_then_prune_denies() {
        let env = start(Knobs::default()).await;
        let objects = blog();
        let c0 = env.permit.counters();
        let mut args = env.apply_args(false);
        let report_file = env.dir.path().join("report.json");
        args.report = Some(report_file.clone());
        let (code, out) = env.apply(&args, &objects).await;
        assert_eq!(code, 0, "{out}");
        let json = std::fs::read_to_string(&report_file).unwrap();
        assert!(!json.contains(env.permit.api_key()));
        let r: Value = serde_json::from_str(&json).unwrap();
        assert_eq!(r["objects"].as_array().unwrap().len(), 8);
        assert!(
            r["objects"]
                .as_array()
                .unwrap()
                .iter()
                .all(|o| o["synced"] == true),
            "{r}"
        );
        // The client's own count of what it sent, by limit class and status.
        assert_eq!(r["metrics"]["requests"]["bulk"]["200"], 3, "{r}");
        assert!(
            out.contains("Plan: 8 to create, 0 to update, 0 to delete."),
            "{out}"
        );
        assert!(
            !out.contains(env.permit.api_key()),
            "the API key never shows"
        );
        assert!(out.contains("0 failed"), "{out}");
        // Every request the command made counts in the summary, by class: the bulk upserts and
        // assign, the resource (a schema write), the tenant, and the scope lookup and the five
        // listings as reads.
        assert!(
            out.contains("11 API calls (3 bulk, 1 schema_write, 1 write, 6 read;"),
            "{out}"
        );
        let c1 = env.permit.counters();
        let first = calls(&c0, &c1);
        report("rbac-blog-reduced first apply", &first);
        // The floor: scope + 5 list pages; 1 resource and 1 tenant (single calls), 1 bulk upsert
        // each for the 2 roles and the 2 users, 1 bulk assign for the 2 assignments.
        assert_eq!(first.values().sum::<u64>(), 11, "{first:?}");
        assert_eq!(first.get("PUT bulk/roles"), Some(&1));
        assert_eq!(first.get("PUT bulk/users"), Some(&1));
        assert_eq!(first.get("POST role_assignments/bulk"), Some(&1));
        assert!(
            env.allowed("jane@example.com", "read", "post", "acme")
                .await
        );
        assert!(
            !env.allowed("jane@example.com", "delete", "post", "acme")
                .await
        );
        assert!(env.allowed("bob", "delete", "post", "acme").await);

        // A second apply writes nothing.
        let c1 = env.permit.counters();
        let (code, out) = env.apply(&env.apply_args(false), &objects).await;
        assert_eq!(code, 0);
        assert!(out.contains(NO_CHANGES), "{out}");
        let c2 = env.permit.counters();
        let second = calls(&c1, &c2);
        report("rbac-blog-reduced second apply", &second);
        assert!(out.contains("6 API calls (6 read;"), "{out}");
        assert!(second.keys().all(|k| k.starts_with("GET ")), "{second:?}");
        assert_eq!(second.values().sum::<u64>(), 6);

        let (code, out) = env
            .plan(&plan_args(&env, false, Format::Table), &objects)
            .await;
        assert_eq!(code, 0, "detailed exit code with no changes: {out}");
        assert!(out.contains(NO_CHANGES), "{out}");

        // Remove the assignment from the manifests: the plan shows the deletion, prune does it.
        let fewer = without(&objects, Kind::RoleAssignment, "jane-viewer-acme");
        let (code, out) = env
            .plan(&plan_args(&env, true, Format::Markdown), &fewer)
            .await;
        assert_eq!(code, 2, "{out}");
        assert!(out.contains("| RoleAssignment | 0 | 0 | 1 | 0 |"), "{out}");
        let c3 = env.permit.counters();
        let (code, out) = env.apply(&env.apply_args(true), &fewer).await;
        assert_eq!(code, 0, "{out}");
        let c4 = env.permit.counters();
        let prune = calls(&c3, &c4);
        report("rbac-blog-reduced apply --prune", &prune);
        assert_eq!(prune.get("DELETE role_assignments"), Some(&1), "{prune:?}");
        assert!(
            !env.allowed("jane@example.com", "read", "post", "acme")
                .await
        );
        assert!(env.allowed("bob", "read", "post", "acme").await);
        // Without --prune the same change deletes nothing.
        let inventory = std::fs::read_to_string(env.state_file()).unwrap();
        assert!(
            !inventory.contains("jane@example.com/viewer/acme"),
            "{inventory}"
        );
    }

    #[tokio::test]
    async fn creates_meeting_409_update_and_deletes_meeting_404_are_done() {
        let env = start(Knobs::default()).await;
        let mut objects = blog();
        for t in ["globex", "initech"] {
            objects.push(doc("PermitTenant", t, json!({"name": t})));
        }
        let client = env.connection().connect().await.unwrap();
        let state = StateFile::new(env.state_file());
        let desired = permit_sync::commands::desired(&objects).unwrap();
        let planned = engine::plan(&client, &desired, &state, &PlanOptions::default())
            .await
            .unwrap();
        assert_eq!(planned.plan.ops.len(), 10);

        // Between plan and apply, someone else creates some of the same objects (differently).
        let facts = "/v2/facts/default/local";
        let schema = "/v2/schema/default/local";
        let post = reqwest::Method::POST;
        assert_eq!(
            env.direct(
                post.clone(),
                &format!("{schema}/resources"),
                json!({"key": "post", "name": "Old", "actions": {"read": {}}})
            )
            .await
                / 100,
            2
        );
        assert_eq!(
            env.direct(
                post.clone(),
                &format!("{schema}/roles"),
                json!({"key": "viewer", "name": "Viewer", "permissions": []})
            )
            .await
                / 100,
            2
        );
        assert_eq!(
            env.direct(
                post.clone(),
                &format!("{facts}/tenants"),
                json!({"key": "globex", "name": "Wrong"})
            )
            .await
                / 100,
            2
        );
        let c0 = env.permit.counters();
        let applied = engine::apply(&client, &planned, &state, &ExecOptions::default())
            .await
            .unwrap();
        let c1 = env.permit.counters();
        let took = calls(&c0, &c1);
        report("apply meeting 409s", &took);
        let failed: Vec<_> = applied.report.failed().collect();
        assert!(failed.is_empty(), "{failed:?}");
        // The conflicting bulk tenant create was re-planned: one more bulk call for the rest.
        assert_eq!(took.get("POST bulk/tenants"), Some(&2), "{took:?}");
        assert!(
            env.allowed("jane@example.com", "read", "post", "acme")
                .await
        );

        // Nothing left to do, and no duplicates.
        let planned = engine::plan(&client, &desired, &state, &PlanOptions::default())
            .await
            .unwrap();
        assert!(planned.plan.ops.is_empty(), "{:?}", planned.plan.ops);
        assert_eq!(
            planned.live.tenants.len(),
            4,
            "{:?}",
            planned.live.tenants.keys()
        );

        // Deletions whose objects someone else removed first count as done.
        let fewer: Vec<_> = objects
            .iter()
            .filter(|(_, o)| o.kind() != Kind::RoleAssignment && o.kind() != Kind::PermitUser)
            .cloned()
            .collect();
        let fewer = without(&fewer, Kind::PermitRole, "editor");
        let desired = permit_sync::commands::desired(&fewer).unwrap();
        let prune = PlanOptions {
            prune: true,
            ..PlanOptions::default()
        };
        let planned = engine::plan(&client, &desired, &state, &prune)
            .await
            .unwrap();
        assert_eq!(planned.plan.deletions(), 5, "{:?}", planned.plan.ops);
        let del = reqwest::Method::DELETE;
        assert_eq!(
            env.direct(del.clone(), &format!("{facts}/users/bob"), json!({}))
                .await
                / 100,
            2
        );
        assert_eq!(
            env.direct(del.clone(), &format!("{schema}/roles/editor"), json!({}))
                .await
                / 100,
            2
        );
        let c2 = env.permit.counters();
        let applied = engine::apply(&client, &planned, &state, &ExecOptions::default())
            .await
            .unwrap();
        let took = calls(&c2, &env.permit.counters());
        report("prune meeting 404s", &took);
        assert!(
            applied.report.failed().next().is_none(),
            "{:?}",
            applied.report.objects
        );
        let after = engine::plan(&client, &desired, &state, &prune)
            .await
            .unwrap();
        assert!(after.plan.ops.is_empty(), "{:?}", after.plan.ops);
        assert!(after.live.users.is_empty());
        let inv = std::fs::read_to_string(env.state_file()).unwrap();
        assert!(!inv.contains("\"bob\""), "{inv}");
    }

    #[tokio::test]
    async fn prune_touches_only_the_inventory_and_refuses_an_empty_source() {
        let env = start(Knobs::default()).await;
        let facts = "/v2/facts/default/local";
        let post = reqwest::Method::POST;
        // Objects made by someone else: an outsider user, tenant and assignment, and a tenant
        // that the manifests also declare (identically): that one is adopted.
        assert_eq!(
            env.direct(
                post.clone(),
                &format!("{facts}/tenants"),
                json!({"key": "outside", "name": "Outside"})
            )
            .await
                / 100,
            2
        );
        assert_eq!(
            env.direct(
                post.clone(),
                &format!("{facts}/tenants"),
                json!({"key": "acme", "name": "Acme Inc.", "description": "The first customer",
                   "attributes": {"plan": "enterprise"}})
            )
            .await
                / 100,
            2
        );
        assert_eq!(
            env.direct(
                reqwest::Method::PUT,
                &format!("{facts}/users/carol"),
                json!({"key": "carol", "email": "carol@example.com"})
            )
            .await
                / 100,
            2
        );

        let objects = blog();
        let (code, out) = env.apply(&env.apply_args(true), &objects).await;
        assert_eq!(code, 0, "{out}");
        assert!(out.contains("= PermitTenant   acme adopt"), "{out}");
        assert!(out.contains("1 adopted"), "{out}");
        // carol may use the policy we manage without it being ours.
        assert_eq!(
            env.direct(
                post.clone(),
                &format!("{facts}/role_assignments"),
                json!({"user": "carol", "role": "viewer", "tenant": "outside"})
            )
            .await
                / 100,
            2
        );

        // Everything declared goes away but the guard holds.
        let c0 = env.permit.counters();
        let mut out = Vec::new();
        let err = apply::run(&env.apply_args(true), Default::default(), &mut out)
            .await
            .unwrap_err();
        assert!(err.to_string().contains("--allow-empty"), "{err}");
        assert_eq!(env.permit.counters().writes(), c0.writes());
        let refused = calls(&c0, &env.permit.counters());
        report("empty source refused", &refused);
        assert_eq!(
            refused.keys().collect::<Vec<_>>(),
            ["GET scope"],
            "refused before listing"
        );

        // Drop bob (and with him his inline assignment) and acme's assignment: only ours go.
        let fewer = without(&objects, Kind::PermitUser, "bob");
        let fewer = without(&fewer, Kind::RoleAssignment, "jane-viewer-acme");
        let c1 = env.permit.counters();
        let (code, out) = env.apply(&env.apply_args(true), &fewer).await;
        assert_eq!(code, 0, "{out}");
        report(
            "prune beside objects made elsewhere",
            &calls(&c1, &env.permit.counters()),
        );
        assert!(out.contains("- PermitUser     bob delete"), "{out}");
        assert!(out.contains("(with PermitUser bob)"), "{out}");
        assert!(!out.contains("carol") && !out.contains("outside"), "{out}");

        // --allow-empty removes the rest of what we own, acme included (adopted), and nothing else.
        let mut args = env.apply_args(true);
        args.sync.ownership.allow_empty = true;
        let (code, out) = env.apply(&args, &[]).await;
        assert_eq!(code, 0, "{out}");
        let client = env.connection().connect().await.unwrap();
        let live = permit_sync::permit::live::read(&client).await.unwrap();
        assert_eq!(live.users.keys().collect::<Vec<_>>(), ["carol"]);
        let tenants: Vec<_> = live.tenants.keys().collect();
        assert!(
            tenants.contains(&&"outside".to_string()) && !tenants.contains(&&"acme".to_string()),
            "{tenants:?}"
        );
        // viewer was ours and is gone (carol's assignment with it); nothing else was.
        assert!(
            live.roles.is_empty() && live.resources.is_empty(),
            "{live:?}"
        );

        // Mirror mode: Permit becomes exactly the manifests, the `default` tenant aside.
        let mut mirror = env.apply_args(false);
        mirror.sync.ownership.mode = Mode::Mirror;
        let (code, out) = env.apply(&mirror, &blog()).await;
        assert_eq!(code, 0, "{out}");
        assert!(out.contains("- PermitUser     carol delete"), "{out}");
        let live = permit_sync::permit::live::read(&client).await.unwrap();
        let tenants: Vec<_> = live.tenants.keys().cloned().collect();
        assert_eq!(tenants, ["acme", "default"]);
        assert_eq!(live.users.len(), 2);
    }

    #[tokio::test]
    async fn export_then_plan_on_the_export_shows_no_changes() {
        let env = start(Knobs::default()).await;
        let (code, out) = env.apply(&env.apply_args(false), &blog()).await;
        assert_eq!(code, 0, "{out}");
        // Objects made elsewhere are exported too.
        let facts = "/v2/facts/default/local";
        let schema = "/v2/schema/default/local";
        let post = reqwest::Method::POST;
        assert_eq!(
            env.direct(
                post.clone(),
                &format!("{schema}/roles"),
                json!({"key": "admin", "name": "Admin", "permissions": ["post:delete"],
                   "extends": ["editor"], "description": "All of it"})
            )
            .await
                / 100,
            2
        );
        assert_eq!(
            env.direct(
                reqwest::Method::PUT,
                &format!("{facts}/users/ops%7Cbot"),
                json!({"key": "ops|bot", "attributes": {"team": "ops", "level": 3}})
            )
            .await
                / 100,
            2
        );
        assert_eq!(
            env.direct(
                post.clone(),
                &format!("{facts}/role_assignments"),
                json!({"user": "ops|bot", "role": "admin", "tenant": "default"})
            )
            .await
                / 100,
            2
        );

        let dir = env.dir.path().join("exported");
        let c0 = env.permit.counters();
        let export = permit_sync::commands::export::ExportArgs {
            output_dir: dir.clone(),
            connection: env.connection(),
        };
        assert_eq!(
            permit_sync::commands::export::run(&export).await.unwrap(),
            0
        );
        report("export", &calls(&c0, &env.permit.counters()));
        let exported = permit_sync::commands::load(&dir).unwrap();
        assert_eq!(
            exported.len(),
            11,
            "1 resource, 3 roles, 1 tenant, 3 users, 3 assignments"
        );

        // With the inventory of the apply, and with none (a fresh checkout): no changes either way.
        let (code, out) = env
            .plan(&plan_args(&env, true, Format::Table), &exported)
            .await;
        assert_eq!(code, 0, "{out}");
        assert!(out.contains(NO_CHANGES), "{out}");
        let mut fresh = plan_args(&env, false, Format::Json);
        fresh.sync.ownership.state_file = env.dir.path().join("elsewhere/inventory.json");
        fresh.sync.ownership.mode = Mode::Mirror;
        let (code, out) = env.plan(&fresh, &exported).await;
        assert_eq!(code, 0, "{out}");
        let plan: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(plan["changes"], false, "{out}");
        // Permit equals the export exactly: mirror mode would delete nothing.
        assert_eq!(plan["summary"]["delete"], 0, "{out}");
    }

    /// Many objects, in a directory the loader reads.
    fn write_manifests(dir: &Path, roles: usize, tenants: usize, users: usize) {
        std::fs::create_dir_all(dir).unwrap();
        let mut policy = String::from(
            "apiVersion: permitsync.dev/v1alpha1\nkind: PermitResource\nmetadata:\n  name: doc\n\
             spec:\n  actions:\n    read: {}\n    write: {}\n",
        );
        for i in 0..roles {
            policy.push_str(&format!(
                "---\napiVersion: permitsync.dev/v1alpha1\nkind: PermitRole\nmetadata:\n  name: role-{i}\n\
                 spec:\n  permissions: [\"doc:read\"]\n"
            ));
        }
        std::fs::write(dir.join("policy.yaml"), policy).unwrap();
        let mut facts = String::new();
        for i in 0..tenants {
            facts.push_str(&format!(
                "---\napiVersion: permitsync.dev/v1alpha1\nkind: PermitTenant\nmetadata:\n  name: t-{i}\n\
                 spec:\n  name: Tenant {i}\n"
            ));
        }
        for i in 0..users {
            facts.push_str(&format!(
                "---\napiVersion: permitsync.dev/v1alpha1\nkind: PermitUser\nmetadata:\n  name: u-{i}\n\
                 spec:\n  email: u{i}@example.com\n  roles:\n    - role: role-{}\n      tenant: t-{}\n",
                i % roles,
                i % tenants
            ));
        }
        std::fs::write(dir.join("facts.yaml"), facts).unwrap();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sigkill_mid_apply_then_restart_converges_without_touching_others() {
        let env = start(Knobs {
            latency_ms: 60,
            ..Knobs::default()
        })
        .await;
        let facts = "/v2/facts/default/local";
        assert_eq!(
            env.direct(
                reqwest::Method::PUT,
                &format!("{facts}/users/outsider"),
                json!({"key": "outsider"})
            )
            .await
                / 100,
            2
        );
        let manifests = env.dir.path().join("manifests");
        write_manifests(&manifests, 12, 4, 40);
        let bin = env!("CARGO_BIN_EXE_permit-sync");
        let run = || {
            std::process::Command::new(bin)
                .args([
                    "apply",
                    manifests.to_str().unwrap(),
                    "--prune",
                    "--yes",
                    "--concurrency",
                    "2",
                ])
                // Permit's 40 schema writes a minute would make this test wait ~10 s.
                .args(["--rate-limit", "schema_write=600/60"])
                .arg("--state-file")
                .arg(env.state_file())
                .env("PERMIT_API_URL", env.permit.api_url())
                .env("PERMIT_API_KEY", env.permit.api_key())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        };
        let c0 = env.permit.counters();
        let mut child = run();
        // Kill it once it has started writing (after the resource and the roles).
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while env.permit.counters().writes() - c0.writes() < 2 {
            assert!(
                std::time::Instant::now() < deadline,
                "apply never started writing"
            );
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        child.kill().unwrap(); // SIGKILL
        let status = child.wait().unwrap();
        assert!(!status.success());
        let killed = calls(&c0, &env.permit.counters());
        report("apply killed mid-way", &killed);
        let client = env.connection().connect().await.unwrap();
        let declared =
            permit_sync::commands::desired(&permit_sync::commands::load(&manifests).unwrap())
                .unwrap();
        let live = permit_sync::permit::live::read(&client).await.unwrap();
        let existed_after_kill = permit_sync::model::SYNCED_KINDS
            .iter()
            .flat_map(|k| {
                declared
                    .state
                    .keys(*k)
                    .into_iter()
                    .map(move |key| (*k, key))
            })
            .filter(|(k, key)| live.get(*k, key).is_some())
            .count();
        assert!(existed_after_kill < 97, "the kill came too late");
        // Ownership was recorded before the first write, so nothing created is unowned.
        let inventory = std::fs::read_to_string(env.state_file()).unwrap();
        assert!(
            inventory.contains("role-11") && inventory.contains("u-39"),
            "{inventory}"
        );

        let c1 = env.permit.counters();
        // The local Permit serves from this runtime: wait for the child off it.
        let child = run();
        let out = tokio::task::spawn_blocking(move || child.wait_with_output())
            .await
            .unwrap()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let restart = calls(&c1, &env.permit.counters());
        report("apply after the kill", &restart);
        assert!(
            text.contains(", 0 to delete"),
            "nothing to delete after a restart: {text}"
        );
        // The restart creates exactly what the killed run had not: nothing twice.
        let created = text
            .lines()
            .find_map(|l| l.strip_prefix("Plan: "))
            .and_then(|l| l.split(' ').next())
            .and_then(|n| n.parse::<usize>().ok())
            .unwrap();
        assert_eq!(created + existed_after_kill, 97, "{text}");

        let objects = permit_sync::commands::load(&manifests).unwrap();
        let (code, out) = env
            .plan(&plan_args(&env, true, Format::Table), &objects)
            .await;
        assert_eq!(code, 0, "{out}");
        let live = permit_sync::permit::live::read(&client).await.unwrap();
        assert_eq!(live.roles.len(), 12);
        assert_eq!(live.users.len(), 41, "40 declared and the outsider");
        assert_eq!(live.assignments.len(), 40);
    }

    #[tokio::test]
    async fn call_counts_sit_at_the_floor() {
        let env = start(Knobs::default()).await;
        let manifests = env.dir.path().join("manifests");
        // 1 resource, 6 roles, 30 tenants, 250 users, 250 inline assignments.
        write_manifests(&manifests, 6, 30, 250);
        let objects = permit_sync::commands::load(&manifests).unwrap();
        let mut args = env.apply_args(true);
        args.sync.connection.rate_limits = vec!["schema_write=off".into(), "bulk=off".into()];

        let c0 = env.permit.counters();
        let (code, out) = env.apply(&args, &objects).await;
        assert_eq!(code, 0, "{out}");
        let first = calls(&c0, &env.permit.counters());
        report("floor: 537 objects, fresh environment", &first);
        // Reads: scope + one page per kind (all empty). Writes: 1 resource (single), then one
        // bulk call each for the roles, the tenants, the users and the assignments.
        let writes: u64 = first
            .iter()
            .filter(|(k, _)| !k.starts_with("GET "))
            .map(|(_, n)| n)
            .sum();
        assert_eq!(writes, 5, "{first:?}");
        assert_eq!(first.values().sum::<u64>(), 11, "{first:?}");

        // Listing pages through 100 at a time: users 3 pages, tenants 1, assignments 3, roles 1,
        // resources 1, and the scope.
        let c1 = env.permit.counters();
        let (code, out) = env.apply(&args, &objects).await;
        assert_eq!(code, 0, "{out}");
        assert!(out.contains(NO_CHANGES), "{out}");
        let second = calls(&c1, &env.permit.counters());
        report("floor: second apply", &second);
        assert_eq!(second.get("GET users"), Some(&3), "{second:?}");
        assert_eq!(second.get("GET role_assignments"), Some(&3), "{second:?}");
        assert_eq!(second.values().sum::<u64>(), 10, "{second:?}");

        // Dropping 100 users: one bulk delete; their assignments go with them (no unassign call).
        let fewer: Vec<_> = objects
            .iter()
            .filter(|(_, o)| {
                !(o.kind() == Kind::PermitUser
                    && o.name()
                        .strip_prefix("u-")
                        .and_then(|n| n.parse::<usize>().ok())
                        .is_some_and(|n| n >= 150))
            })
            .cloned()
            .collect();
        let mut dry = env.apply_args(true);
        dry.dry_run = true;
        let c2 = env.permit.counters();
        let (code, out) = env.apply(&dry, &fewer).await;
        assert_eq!(code, 0, "{out}");
        assert!(
            out.contains("Plan: 0 to create, 0 to update, 200 to delete."),
            "{out}"
        );
        assert_eq!(
            env.permit.counters().writes(),
            c2.writes(),
            "a dry run writes nothing"
        );
        let mut no_yes = env.apply_args(true);
        no_yes.yes = false;
        let mut sink = Vec::new();
        let err = apply::run(
            &no_yes,
            permit_sync::commands::desired(&fewer).unwrap(),
            &mut sink,
        )
        .await
        .unwrap_err();
        assert!(err.to_string().contains("--yes"), "{err}");
        assert_eq!(env.permit.counters().writes(), c2.writes());

        let c3 = env.permit.counters();
        let (code, out) = env.apply(&args, &fewer).await;
        assert_eq!(code, 0, "{out}");
        let prune = calls(&c3, &env.permit.counters());
        report("floor: prune 100 users and their 100 assignments", &prune);
        let writes: Vec<_> = prune
            .iter()
            .filter(|(k, _)| !k.starts_with("GET "))
            .collect();
        assert_eq!(
            writes,
            [(&"DELETE bulk/users".to_string(), &1)],
            "{prune:?}"
        );
    }

    #[tokio::test]
    async fn bulk_creates_with_unknown_outcomes_are_replanned_not_replayed() {
        use permit_sync::local::knobs::Fault;
        let env = start(Knobs::default()).await;
        let mut objects = blog();
        for t in ["globex", "initech"] {
            objects.push(doc("PermitTenant", t, json!({"name": t})));
        }
        let client = env.connection().connect().await.unwrap();
        let state = StateFile::new(env.state_file());
        let desired = permit_sync::commands::desired(&objects).unwrap();
        let planned = engine::plan(&client, &desired, &state, &PlanOptions::default())
            .await
            .unwrap();
        // The stages run one call each here: resource, roles (bulk), tenants (bulk: the
        // connection drops), users (bulk), assignments (bulk: a 503).
        env.permit
            .set_faults(Faults {
                script: vec![
                    Fault::None,
                    Fault::None,
                    Fault::Drop,
                    Fault::None,
                    Fault::None,
                    Fault::None,
                    Fault::Error { status: 503 },
                ],
                ..Faults::default()
            })
            .unwrap();
        let c0 = env.permit.counters();
        let applied = engine::apply(&client, &planned, &state, &ExecOptions::default())
            .await
            .unwrap();
        let took = calls(&c0, &env.permit.counters());
        report("bulk creates meeting a dropped connection and a 503", &took);
        assert!(
            applied.report.failed().next().is_none(),
            "{:?}",
            applied.report.objects
        );
        // Each bulk create was followed by a fresh listing and one bulk call for what was missing.
        assert_eq!(took.get("POST bulk/tenants"), Some(&2), "{took:?}");
        assert_eq!(took.get("GET tenants"), Some(&1), "{took:?}");
        assert_eq!(took.get("POST role_assignments/bulk"), Some(&2), "{took:?}");
        assert_eq!(took.get("GET role_assignments"), Some(&1), "{took:?}");
        assert_eq!(
            applied.report.metrics.retries, 0,
            "creates are not blindly repeated"
        );
        let again = engine::plan(&client, &desired, &state, &PlanOptions::default())
            .await
            .unwrap();
        assert!(again.plan.ops.is_empty(), "{:?}", again.plan.ops);
        // The projected state the watcher would keep equals what Permit now lists.
        assert_eq!(
            applied.live.tenants.keys().collect::<Vec<_>>(),
            again.live.tenants.keys().collect::<Vec<_>>()
        );
        assert_eq!(applied.live.assignments, again.live.assignments);
    }

    #[tokio::test]
    async fn a_corrupt_inventory_disables_prune_and_is_kept_aside() {
        let env = start(Knobs::default()).await;
        let objects = blog();
        let (code, out) = env.apply(&env.apply_args(true), &objects).await;
        assert_eq!(code, 0, "{out}");
        std::fs::write(env.state_file(), "{\"version\": 1, \"objects\": ").unwrap();
        let fewer = without(&objects, Kind::RoleAssignment, "jane-viewer-acme");
        let c0 = env.permit.counters();
        let (code, out) = env.apply(&env.apply_args(true), &fewer).await;
        assert_eq!(code, 0, "{out}");
        assert!(
            out.contains("warning: prune skipped") && out.contains("corrupt"),
            "{out}"
        );
        assert_eq!(
            env.permit.counters().writes(),
            c0.writes(),
            "no deletion without ownership"
        );
        assert!(
            env.allowed("jane@example.com", "read", "post", "acme")
                .await
        );
        let aside: Vec<_> = std::fs::read_dir(env.state_file().parent().unwrap())
            .unwrap()
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.contains(".unusable-"))
            .collect();
        assert_eq!(
            aside.len(),
            1,
            "the corrupt file is kept for a person to look at"
        );
        // The new inventory owns what is declared now; the assignment dropped meanwhile is not
        // ours any more, so it is never pruned.
        let (code, out) = env.apply(&env.apply_args(true), &fewer).await;
        assert_eq!(code, 0, "{out}");
        assert!(out.contains(NO_CHANGES), "{out}");
    }

    #[tokio::test]
    async fn field_changes_are_patched_and_permissions_change_incrementally() {
        let env = start(Knobs::default()).await;
        let (code, out) = env.apply(&env.apply_args(false), &blog()).await;
        assert_eq!(code, 0, "{out}");
        assert!(env.allowed("bob", "delete", "post", "acme").await);

        let mut changed = without(&blog(), Kind::PermitResource, "post");
        changed = without(&changed, Kind::PermitRole, "editor");
        changed = without(&changed, Kind::PermitTenant, "acme");
        changed = without(&changed, Kind::PermitUser, "jane");
        changed.push(doc(
            "PermitResource",
            "post",
            json!({"name": "Post", "description": "A blog post",
            "actions": {"read": {}, "create": {}, "update": {}, "publish": {"name": "Publish"}}}),
        ));
        changed.push(doc(
            "PermitRole",
            "editor",
            json!({"name": "Editor", "description": "Reads and writes posts",
            "permissions": ["post:read", "post:create", "post:update", "post:publish"]}),
        ));
        changed.push(doc(
            "PermitTenant",
            "acme",
            json!({"name": "Acme Inc.", "description": "The first customer",
            "attributes": {"plan": "pro", "region": "eu"}}),
        ));
        changed.push(doc(
            "PermitUser",
            "jane",
            json!({"key": "jane@example.com", "email": "jane@example.com",
            "firstName": "Jane", "lastName": "Roe", "attributes": {"department": "editorial"}}),
        ));

        let (code, out) = env
            .plan(&plan_args(&env, false, Format::Markdown), &changed)
            .await;
        assert_eq!(code, 2, "{out}");
        assert!(out.contains("| `last_name` | Doe | Roe |"), "{out}");
        assert!(
            out.contains(
                r#"| `attributes` | {"plan":"enterprise"} | {"plan":"pro","region":"eu"} |"#
            ),
            "{out}"
        );

        let c0 = env.permit.counters();
        let (code, out) = env.apply(&env.apply_args(false), &changed).await;
        assert_eq!(code, 0, "{out}");
        assert!(
            out.contains("Plan: 0 to create, 4 to update, 0 to delete."),
            "{out}"
        );
        let took = calls(&c0, &env.permit.counters());
        report("updates of 4 objects", &took);
        let writes: BTreeMap<_, _> = took
            .iter()
            .filter(|(k, _)| !k.starts_with("GET "))
            .collect();
        assert_eq!(
            writes
                .into_iter()
                .map(|(k, n)| (k.as_str(), *n))
                .collect::<Vec<_>>(),
            [
                // The editor's permissions: one add, one remove; the rest of it is unchanged.
                ("DELETE roles/permissions", 1),
                ("PATCH resources", 1),
                ("PATCH tenants", 1),
                ("POST roles/permissions", 1),
                ("PUT users", 1),
            ]
        );
        assert!(!env.allowed("bob", "delete", "post", "acme").await);
        assert!(env.allowed("bob", "publish", "post", "acme").await);
        let (code, out) = env
            .plan(&plan_args(&env, false, Format::Table), &changed)
            .await;
        assert_eq!(code, 0, "{out}");
    }

    #[tokio::test]
    async fn converges_through_5xx_dropped_connections_and_429_bursts() {
        let env = start(Knobs {
            faults: Faults {
                seed: 7,
                error_rate: 0.25,
                drop_rate: 0.1,
                rate_limit_rate: 0.1,
                rate_limit_burst: 2,
                retry_after_secs: None,
                ..Faults::default()
            },
            ..Knobs::default()
        })
        .await;
        let mut objects = blog();
        for i in 0..30 {
            objects.push(doc(
                "PermitUser",
                &format!("user-{i}"),
                json!({
                "email": format!("user{i}@example.com"),
                "roles": [{"role": "viewer", "tenant": "acme"}]}),
            ));
        }
        for i in 0..5 {
            objects.push(doc(
                "PermitTenant",
                &format!("tenant-{i}"),
                json!({"name": format!("T{i}")}),
            ));
        }
        let mut args = env.apply_args(false);
        // A 429 without Retry-After waits for its class's window to pass: Permit's counts in
        // one-second windows keep that wait short here.
        args.sync.connection.rate_limits = ONE_SECOND_WINDOWS.map(String::from).to_vec();
        let mut tries = 0;
        // A run may fail objects whose retries ran out; the next run converges the rest.
        loop {
            tries += 1;
            let mut out = Vec::new();
            let r = apply::run(
                &args,
                permit_sync::commands::desired(&objects).unwrap(),
                &mut out,
            )
            .await;
            let text = String::from_utf8(out).unwrap();
            if matches!(r, Ok(0)) {
                break;
            }
            assert!(tries < 5, "no convergence after {tries} runs: {r:?} {text}");
        }
        args.sync.ownership.state_file = env.state_file();
        env.permit.set_faults(Faults::default()).unwrap();
        let (code, out) = env
            .plan(&plan_args(&env, true, Format::Table), &objects)
            .await;
        assert_eq!(code, 0, "{out}");
        let c = env.permit.counters();
        let faults: u64 = c
            .by_class
            .values()
            .flat_map(|cc| cc.by_status.iter())
            .filter(|(s, _)| **s == 429 || **s >= 500)
            .map(|(_, n)| n)
            .sum();
        eprintln!(
            "[api calls] faults: {} requests in {tries} run(s), {faults} answered 429/5xx: {:?}",
            c.total, c.by_class
        );
        assert!(faults > 0, "no fault was injected: {c:?}");
        assert!(env.allowed("user-29", "read", "post", "acme").await);
    }
}
