//! `permit-sync check` when decisions lag writes: the binary against the local PDP with its
//! `pdp_delay_ms` knob set (lag reported, `--wait` sleeping until the writes are in, `--expect`
//! exit codes) and against a PDP that reports no lag (a stand-in that answers `allow` only
//! after a while, or fails first).

use axum::response::IntoResponse;
use axum::routing::post;
use permit_sync::local::{LocalConfig, LocalHandle, LocalPermit};
use reqwest::Method;
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

const DELAY: Duration = Duration::from_millis(1500);

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    fn json(&self) -> Value {
        serde_json::from_str(self.stdout.trim())
            .unwrap_or_else(|_| panic!("JSON: {}{}", self.stdout, self.stderr))
    }
}

async fn check(pdp: &str, key: &str, args: &[&str]) -> Run {
    let dir = std::env::temp_dir().join(format!("check-wait-no-session-{}", std::process::id()));
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_permit-sync"))
        .arg("check")
        .args(["--pdp-url", pdp])
        .args(args)
        .env_remove("PERMIT_PDP_URL")
        .env("PERMIT_API_KEY", key)
        .env(permit_sync::pdp::dev::SESSION_ENV, dir.join("none.json"))
        .output()
        .await
        .expect("the binary runs");
    Run {
        code: out.status.code().expect("exited"),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

async fn rest(permit: &LocalHandle, method: Method, path: &str, body: Value) {
    let resp = reqwest::Client::new()
        .request(method.clone(), format!("{}{path}", permit.api_url()))
        .bearer_auth(permit.api_key())
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = resp.status();
    assert!(status.is_success(), "{method} {path}: {status}");
}

const F: &str = "/v2/facts/default/local";

async fn assign(permit: &LocalHandle, method: Method) {
    let body = json!({"user": "jane", "role": "viewer", "tenant": "acme"});
    rest(permit, method, &format!("{F}/role_assignments"), body).await;
}

/// post:read for viewers, tenant acme, user jane without a role; the delay set afterwards.
async fn local_pdp() -> LocalHandle {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let permit = LocalPermit::start(LocalConfig::ephemeral()).await.unwrap();
    let s = "/v2/schema/default/local";
    let post = json!({"key": "post", "name": "Post", "actions": {"read": {}}});
    rest(&permit, Method::POST, &format!("{s}/resources"), post).await;
    let viewer = json!({"key": "viewer", "name": "Viewer", "permissions": ["post:read"]});
    rest(&permit, Method::POST, &format!("{s}/roles"), viewer).await;
    let acme = json!({"key": "acme", "name": "Acme"});
    rest(&permit, Method::POST, &format!("{F}/tenants"), acme).await;
    rest(
        &permit,
        Method::PUT,
        &format!("{F}/users/jane"),
        json!({"key": "jane"}),
    )
    .await;
    permit.set_pdp_delay(DELAY).unwrap();
    permit
}

const JANE_READS: [&str; 5] = ["jane", "read", "post", "--tenant", "acme"];

fn with(extra: &[&'static str]) -> Vec<&'static str> {
    JANE_READS.iter().chain(extra).copied().collect()
}

#[tokio::test]
async fn check_reports_the_local_pdps_lag_and_waits_for_it() {
    let permit = local_pdp().await;
    let (pdp, key) = (permit.pdp_url(), permit.api_key().to_string());

    // Right after a grant, without --wait: the old answer, and the note saying why.
    let granted = Instant::now();
    assign(&permit, Method::POST).await;
    let r = check(&pdp, &key, &JANE_READS).await;
    if granted.elapsed() < DELAY {
        assert_eq!(r.code, 3, "{}{}", r.stdout, r.stderr);
        assert_eq!(
            r.stdout.trim(),
            "denied: jane may not read post in tenant acme"
        );
        assert!(
            r.stderr
                .contains("the local PDP decides on the data as it was 1500 ms ago")
                && r.stderr.contains("not in this answer yet"),
            "{}",
            r.stderr
        );
    }

    // --expect allow --wait: sleeps until the PDP has the write, asks again, exit 0.
    let r = check(
        &pdp,
        &key,
        &with(&["--expect", "allow", "--wait", "10s", "--output", "json"]),
    )
    .await;
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    let v = r.json();
    assert_eq!(v["allow"], true);
    assert_eq!(
        (v["expected"].clone(), v["as_expected"].clone()),
        (json!("allow"), json!(true))
    );
    assert_eq!(v["pdp"]["up_to_date"], true, "{v}");
    assert!(granted.elapsed() >= DELAY);
    assert!(
        v["waited_ms"].as_u64().unwrap() < 5_000,
        "one sleep, not the bound: {v}"
    );
    assert!(v["attempts"].as_u64().unwrap() <= 3, "{v}");

    // Revoked: JSON without --wait shows the lag; --wait alone waits for it and answers denied.
    let revoked = Instant::now();
    assign(&permit, Method::DELETE).await;
    let r = check(&pdp, &key, &with(&["--output", "json"])).await;
    let v = r.json();
    if revoked.elapsed() < DELAY {
        assert_eq!(r.code, 0, "still allowed: {v}");
        assert_eq!(v["pdp"]["reports_lag"], true);
        assert_eq!(v["pdp"]["delay_ms"], 1500);
        assert_eq!(v["pdp"]["up_to_date"], false);
        assert!(v["pdp"]["pending_ms"].as_u64().unwrap() > 0);
        assert!(v.get("attempts").is_none(), "no --wait, no attempts: {v}");
    }
    let r = check(&pdp, &key, &with(&["--wait", "10s", "--output", "json"])).await;
    assert_eq!(r.code, 3, "{}{}", r.stdout, r.stderr);
    let v = r.json();
    assert_eq!(v["decision"], "denied");
    assert_eq!(v["pdp"]["up_to_date"], true);
    assert!(revoked.elapsed() >= DELAY);

    // Up to date and still not as expected: final, so no waiting out the bound; exit 3.
    let started = Instant::now();
    let r = check(&pdp, &key, &with(&["--expect", "allow", "--wait", "10s"])).await;
    assert_eq!(r.code, 3, "{}{}", r.stdout, r.stderr);
    assert!(
        r.stderr.contains("not as expected: --expect allow"),
        "{}",
        r.stderr
    );
    assert!(started.elapsed() < Duration::from_secs(5), "stopped early");

    // --expect deny, as expected: exit 0 (the codes follow the expectation).
    let r = check(&pdp, &key, &with(&["--expect", "deny"])).await;
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert!(r.stdout.starts_with("denied: "), "{}", r.stdout);

    // A bound shorter than the lag: the old answer, exit 3, after about the bound.
    assign(&permit, Method::POST).await;
    let started = Instant::now();
    let r = check(
        &pdp,
        &key,
        &with(&["--expect", "allow", "--wait", "300ms", "--output", "json"]),
    )
    .await;
    let took = started.elapsed();
    if took < DELAY {
        assert_eq!(r.code, 3, "{}{}", r.stdout, r.stderr);
        let v = r.json();
        assert_eq!(v["as_expected"], false);
        assert_eq!(v["pdp"]["up_to_date"], false);
        assert!(v["waited_ms"].as_u64().unwrap() >= 300, "{v}");
    }
}

/// A PDP without lag headers: `/allowed` fails with 503 `fail_first` times, then denies until
/// `allow_after` has passed since it started, then allows.
async fn stand_in_pdp(fail_first: u32, allow_after: Duration) -> (String, Arc<AtomicU32>) {
    let asked = Arc::new(AtomicU32::new(0));
    let started = Instant::now();
    let counter = asked.clone();
    let app = axum::Router::new().route(
        "/allowed",
        post(move || {
            let counter = counter.clone();
            async move {
                let n = counter.fetch_add(1, Ordering::SeqCst);
                if n < fail_first {
                    return (axum::http::StatusCode::SERVICE_UNAVAILABLE, "starting")
                        .into_response();
                }
                let allow = started.elapsed() >= allow_after;
                axum::Json(json!({"allow": allow, "result": allow})).into_response()
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, asked)
}

#[tokio::test]
async fn check_polls_a_pdp_that_reports_no_lag() {
    // Without --wait: one ask, and the note that this PDP may not have the latest writes.
    let (url, asked) = stand_in_pdp(0, Duration::from_secs(3600)).await;
    let r = check(&url, "k", &with(&["--output", "json"])).await;
    assert_eq!(r.code, 3);
    let v = r.json();
    assert_eq!(v["pdp"]["reports_lag"], false);
    assert_eq!(v["pdp"]["up_to_date"], Value::Null);
    let r = check(&url, "k", &JANE_READS).await;
    assert!(
        r.stderr
            .contains("does not say how far behind writes it is"),
        "{}",
        r.stderr
    );
    assert_eq!(asked.load(Ordering::SeqCst), 2);

    // --wait without --expect has nothing to wait for here: asked once, and said so.
    let r = check(&url, "k", &with(&["--wait", "5s"])).await;
    assert_eq!(r.code, 3);
    assert!(r.stderr.contains("asked once"), "{}", r.stderr);
    assert_eq!(asked.load(Ordering::SeqCst), 3);

    // --expect allow: polled until the answer turns (after 503s while it starts).
    let (url, asked) = stand_in_pdp(2, Duration::from_millis(1200)).await;
    let r = check(
        &url,
        "k",
        &with(&["--expect", "allow", "--wait", "10s", "--output", "json"]),
    )
    .await;
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    let v = r.json();
    assert_eq!(v["allow"], true);
    let n = asked.load(Ordering::SeqCst);
    assert!(n >= 4, "two 503s, at least one deny, one allow: {n}");
    assert_eq!(v["attempts"], n);

    // The bound holds: never allowed, given up after about 800 ms, exit 3.
    let (url, asked) = stand_in_pdp(0, Duration::from_secs(3600)).await;
    let started = Instant::now();
    let r = check(&url, "k", &with(&["--expect", "allow", "--wait", "800ms"])).await;
    let took = started.elapsed();
    assert_eq!(r.code, 3, "{}{}", r.stdout, r.stderr);
    assert!(
        took >= Duration::from_millis(800) && took < Duration::from_secs(6),
        "{took:?}"
    );
    assert!(asked.load(Ordering::SeqCst) >= 3);

    // A PDP failing all along: retried until the bound, then its error (exit 1).
    let (url, _) = stand_in_pdp(u32::MAX, Duration::ZERO).await;
    let r = check(&url, "k", &with(&["--expect", "allow", "--wait", "500ms"])).await;
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    assert!(r.stderr.contains("503"), "{}", r.stderr);
}
