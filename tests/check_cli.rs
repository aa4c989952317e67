//! `permit-sync check` end to end: the binary asks the embedded PDP after the rbac-blog-reduced
//! example's state was created through the local Permit's REST API; exit codes 0 allowed, 3
//! denied, 1 error.

use permit_sync::local::{LocalConfig, LocalHandle, LocalPermit};
use permit_sync::pdp::dev;
use reqwest::Method;
use serde_json::{Value, json};
use std::path::Path;
use std::process::Output;

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

/// Runs the binary with a clean environment for the key, the URL and the dev session.
async fn check(args: &[&str], key: Option<&str>, session: &Path) -> Run {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_permit-sync"));
    cmd.arg("check")
        .args(args)
        .env_remove("PERMIT_API_KEY")
        .env_remove("PERMIT_PDP_URL")
        .env(dev::SESSION_ENV, session);
    if let Some(k) = key {
        // Through the environment, as a script would: never on the command line.
        cmd.env("PERMIT_API_KEY", k);
    }
    let Output {
        status,
        stdout,
        stderr,
    } = cmd.output().await.expect("the binary runs");
    Run {
        code: status.code().expect("exited"),
        stdout: String::from_utf8_lossy(&stdout).into_owned(),
        stderr: String::from_utf8_lossy(&stderr).into_owned(),
    }
}

async fn call(permit: &LocalHandle, method: Method, path: &str, body: Value) -> Value {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let http = reqwest::Client::new();
    let url = format!("{}{path}", permit.api_url());
    let resp = http
        .request(method.clone(), &url)
        .bearer_auth(permit.api_key())
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = resp.status();
    let text = resp.text().await.unwrap();
    assert!(status.is_success(), "{method} {path}: {status} {text}");
    serde_json::from_str(&text).unwrap_or(Value::Null)
}

/// `examples/rbac-blog-reduced`, created through the REST API as the sync engine would.
async fn blog_rbac(permit: &LocalHandle) {
    const S: &str = "/v2/schema/default/local";
    const F: &str = "/v2/facts/default/local";
    call(
        permit,
        Method::POST,
        &format!("{S}/resources"),
        json!({
            "key": "post", "name": "Post", "description": "A blog post",
            "actions": {"read": {}, "create": {}, "update": {}, "delete": {}},
        }),
    )
    .await;
    call(
        permit,
        Method::POST,
        &format!("{S}/roles"),
        json!({
            "key": "viewer", "name": "Viewer", "permissions": ["post:read"],
        }),
    )
    .await;
    call(
        permit,
        Method::POST,
        &format!("{S}/roles"),
        json!({
            "key": "editor", "name": "Editor",
            "permissions": ["post:read", "post:create", "post:update", "post:delete"],
        }),
    )
    .await;
    call(
        permit,
        Method::POST,
        &format!("{F}/tenants"),
        json!({
            "key": "acme", "name": "Acme Inc.", "attributes": {"plan": "enterprise"},
        }),
    )
    .await;
    for (key, first) in [("jane@example.com", "Jane"), ("bob", "Bob")] {
        call(permit, Method::PUT, &format!("{F}/users/{key}"), json!({
            "key": key, "email": format!("{}@example.com", first.to_lowercase()), "first_name": first,
        }))
        .await;
    }
    call(
        permit,
        Method::POST,
        &format!("{F}/role_assignments"),
        json!({
            "user": "jane@example.com", "role": "viewer", "tenant": "acme",
        }),
    )
    .await;
    call(
        permit,
        Method::POST,
        &format!("{F}/role_assignments"),
        json!({
            "user": "bob", "role": "editor", "tenant": "acme",
        }),
    )
    .await;
}

#[tokio::test]
async fn allow_deny_and_errors_against_the_embedded_pdp() {
    let dir = tempfile::tempdir().unwrap();
    let no_session = dir.path().join("none.json");
    let permit = LocalPermit::start(LocalConfig::ephemeral()).await.unwrap();
    blog_rbac(&permit).await;
    let key = permit.api_key().to_string();
    let pdp = permit.pdp_url();
    let url = ["--pdp-url", pdp.as_str()];
    let with = |extra: &[&'static str]| -> Vec<String> {
        let mut v: Vec<String> = url.iter().map(|s| s.to_string()).collect();
        v.extend(extra.iter().map(|s| s.to_string()));
        v
    };
    let run = |args: Vec<String>, key: Option<String>| {
        let session = no_session.clone();
        async move {
            let refs: Vec<&str> = args.iter().map(String::as_str).collect();
            check(&refs, key.as_deref(), &session).await
        }
    };

    // Jane views posts in acme.
    let r = run(
        with(&["jane@example.com", "read", "post", "--tenant", "acme"]),
        Some(key.clone()),
    )
    .await;
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert_eq!(
        r.stdout.trim(),
        "allowed: jane@example.com may read post in tenant acme"
    );

    // She may not edit them, nor read in another tenant.
    let r = run(
        with(&["jane@example.com", "update", "post", "--tenant", "acme"]),
        Some(key.clone()),
    )
    .await;
    assert_eq!(r.code, 3, "{}{}", r.stdout, r.stderr);
    assert_eq!(
        r.stdout.trim(),
        "denied: jane@example.com may not update post in tenant acme"
    );
    let r = run(
        with(&["jane@example.com", "read", "post"]),
        Some(key.clone()),
    )
    .await;
    assert_eq!(r.code, 3, "default tenant: {}{}", r.stdout, r.stderr);

    // Bob edits; an instance `type:key` is checked against its type.
    let r = run(
        with(&["bob", "delete", "post:42", "--tenant", "acme"]),
        Some(key.clone()),
    )
    .await;
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);

    // JSON output, same exit codes.
    let r = run(
        with(&[
            "jane@example.com",
            "read",
            "post",
            "--tenant",
            "acme",
            "--output",
            "json",
        ]),
        Some(key.clone()),
    )
    .await;
    assert_eq!(r.code, 0);
    let v: Value = serde_json::from_str(r.stdout.trim()).expect("one JSON document");
    assert_eq!(
        v,
        json!({"user": "jane@example.com", "action": "read", "resource": "post",
        "tenant": "acme", "allow": true, "decision": "allowed",
        "pdp": {"reports_lag": true, "delay_ms": 0, "pending_ms": 0, "up_to_date": true}})
    );
    let r = run(
        with(&[
            "jane@example.com",
            "delete",
            "post",
            "--tenant",
            "acme",
            "--output",
            "json",
        ]),
        Some(key.clone()),
    )
    .await;
    assert_eq!(r.code, 3);
    let v: Value = serde_json::from_str(r.stdout.trim()).unwrap();
    assert_eq!(
        (v["allow"].clone(), v["decision"].clone()),
        (json!(false), json!("denied"))
    );

    // Errors exit 1 and never print a key.
    let r = run(
        with(&["jane@example.com", "read", "post"]),
        Some("permit_key_wrong".into()),
    )
    .await;
    assert_eq!(r.code, 1, "wrong key: {}{}", r.stdout, r.stderr);
    assert!(r.stderr.contains("403"), "{}", r.stderr);
    assert!(
        !r.stderr.contains("permit_key_wrong") && !r.stderr.contains(&key),
        "{}",
        r.stderr
    );
    let r = run(with(&["jane@example.com", "read", "post"]), None).await;
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("no API key"), "{}", r.stderr);
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", l.local_addr().unwrap())
    };
    let r = run(
        vec![
            "--pdp-url".into(),
            closed.clone(),
            "u".into(),
            "read".into(),
            "post".into(),
        ],
        Some(key.clone()),
    )
    .await;
    assert_eq!(r.code, 1, "unreachable: {}{}", r.stdout, r.stderr);
    assert!(
        r.stderr
            .contains(&format!("asking the PDP at {closed}/allowed")),
        "{}",
        r.stderr
    );

    // The seed scenario's end: once the assignment is removed, the same check is denied.
    call(
        &permit,
        Method::DELETE,
        "/v2/facts/default/local/role_assignments",
        json!({
            "user": "jane@example.com", "role": "viewer", "tenant": "acme",
        }),
    )
    .await;
    let r = run(
        with(&["jane@example.com", "read", "post", "--tenant", "acme"]),
        Some(key.clone()),
    )
    .await;
    assert_eq!(r.code, 3, "{}{}", r.stdout, r.stderr);
    permit.shutdown().await.unwrap();
}

#[tokio::test]
async fn dev_session_makes_check_work_without_flags() {
    let dir = tempfile::tempdir().unwrap();
    let session = dir.path().join("run").join("dev-session.json");
    let devpdp = dev::start_embedded_at(LocalConfig::ephemeral(), Some(session.clone()))
        .await
        .unwrap();
    assert_eq!(devpdp.session_file(), Some(session.as_path()));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&session).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "the session holds a key: owner only");
    }
    blog_rbac(devpdp.permit()).await;

    // No key, no URL: the dev session's PDP and key.
    let r = check(
        &["jane@example.com", "read", "post", "--tenant", "acme"],
        None,
        &session,
    )
    .await;
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    let r = check(
        &["jane@example.com", "update", "post", "--tenant", "acme"],
        None,
        &session,
    )
    .await;
    assert_eq!(r.code, 3, "{}{}", r.stdout, r.stderr);

    // The session key is for the session's PDP only.
    let r = check(
        &[
            "--pdp-url",
            "http://127.0.0.1:9",
            "jane@example.com",
            "read",
            "post",
        ],
        None,
        &session,
    )
    .await;
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("no API key"), "{}", r.stderr);

    // Stopping dev removes the session.
    devpdp.shutdown().await.unwrap();
    assert!(!session.exists());
}
