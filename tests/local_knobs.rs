//! Realism knobs over real HTTP: latency, scripted and seeded faults, rate limits, counters, admin.

use permit_sync::local::knobs::{Fault, Faults, Knobs, RateLimits};
use permit_sync::local::{LocalConfig, LocalHandle, LocalPermit};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

async fn start(knobs: Knobs) -> (LocalHandle, reqwest::Client) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let permit = LocalPermit::start(LocalConfig {
        knobs,
        ..LocalConfig::ephemeral()
    })
    .await
    .unwrap();
    (permit, reqwest::Client::new())
}

fn users_url(p: &LocalHandle) -> String {
    format!("{}/v2/facts/default/local/users", p.api_url())
}

#[tokio::test]
async fn scripted_faults_then_normal_service() {
    let (p, http) = start(Knobs {
        faults: Faults {
            script: vec![
                Fault::Error { status: 502 },
                Fault::RateLimited {
                    retry_after: Some(7),
                },
                Fault::RateLimited { retry_after: None },
                Fault::Drop,
                Fault::Slow { ms: 150 },
            ],
            ..Faults::default()
        },
        ..Knobs::default()
    })
    .await;
    let get = || http.get(users_url(&p)).bearer_auth(p.api_key()).send();
    let r = get().await.unwrap();
    assert_eq!(r.status(), 502);
    let r = get().await.unwrap();
    assert_eq!(r.status(), 429);
    assert_eq!(r.headers()["retry-after"], "7");
    let r = get().await.unwrap();
    assert_eq!(r.status(), 429);
    assert!(r.headers().get("retry-after").is_none());
    let err = get().await.expect_err("the connection is dropped");
    assert!(!err.is_status(), "{err}");
    let t = Instant::now();
    assert_eq!(get().await.unwrap().status(), 200);
    assert!(t.elapsed() >= Duration::from_millis(150));
    assert_eq!(get().await.unwrap().status(), 200);

    // Health can be made to fail, and recover.
    p.set_pdp_healthy(false);
    for path in ["/health", "/healthy", "/ready"] {
        let r = http
            .get(format!("{}{path}", p.pdp_url()))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 503);
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["status"], "error");
    }
    p.set_pdp_healthy(true);

    // The PDP is spared by default.
    let r = http
        .get(format!("{}/healthy", p.pdp_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    let c = p.counters();
    assert_eq!(c.class("read"), 6);
    assert_eq!(c.status("read", 429), 2);
    assert_eq!(c.status("read", 502), 1);
    assert_eq!(c.status("read", 0), 1, "a dropped connection has no status");
    assert_eq!(c.status("read", 200), 2);
    assert_eq!(c.class("pdp"), 4);
    assert_eq!(c.status("pdp", 503), 3);
    p.shutdown().await.unwrap();
}

#[tokio::test]
async fn seeded_faults_are_deterministic_over_http() {
    let faults = Faults {
        seed: 7,
        error_rate: 0.3,
        rate_limit_rate: 0.2,
        rate_limit_burst: 2,
        ..Faults::default()
    };
    let mut runs = Vec::new();
    for _ in 0..2 {
        let (p, http) = start(Knobs {
            faults: faults.clone(),
            ..Knobs::default()
        })
        .await;
        let mut statuses = Vec::new();
        for _ in 0..40 {
            let r = http
                .get(users_url(&p))
                .bearer_auth(p.api_key())
                .send()
                .await
                .unwrap();
            statuses.push(r.status().as_u16());
        }
        p.shutdown().await.unwrap();
        runs.push(statuses);
    }
    assert_eq!(runs[0], runs[1]);
    assert!(runs[0].contains(&503) && runs[0].contains(&429) && runs[0].contains(&200));
}

#[tokio::test]
async fn rate_limits_by_class_with_retry_after() {
    let (p, http) = start(Knobs {
        rate_limits: RateLimits {
            enabled: true,
            scale: 0.05, // deletes 3/min, writes 15/min, bulk 5/10 min
            ..RateLimits::default()
        },
        ..Knobs::default()
    })
    .await;
    let mut statuses = Vec::new();
    for i in 0..4 {
        let r = http
            .delete(format!("{}/u{i}", users_url(&p)))
            .bearer_auth(p.api_key())
            .send()
            .await
            .unwrap();
        if r.status() == 429 {
            let secs: u64 = r.headers()["retry-after"]
                .to_str()
                .unwrap()
                .parse()
                .unwrap();
            assert!((1..=60).contains(&secs));
        }
        statuses.push(r.status().as_u16());
    }
    assert_eq!(statuses, vec![404, 404, 404, 429]);
    // Reads still pass; resetting clears the windows.
    let r = http
        .get(users_url(&p))
        .bearer_auth(p.api_key())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    p.reset_counters();
    let r = http
        .delete(format!("{}/u9", users_url(&p)))
        .bearer_auth(p.api_key())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(p.counters().class("delete"), 1);
    p.shutdown().await.unwrap();
}

#[tokio::test]
async fn latency_counters_and_admin_routes() {
    let (p, http) = start(Knobs::default()).await;
    let admin = |path: &str| format!("{}/_local/{path}", p.api_url());
    // The admin routes need the key.
    let r = http.get(admin("counters")).send().await.unwrap();
    assert_eq!(r.status(), 401);

    let knobs = json!({"latency_ms": 120});
    let r = http
        .put(admin("knobs"))
        .bearer_auth(p.api_key())
        .json(&knobs)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(p.knobs().latency_ms, 120);
    let t = Instant::now();
    let r = http
        .put(format!(
            "{}/bulk/users",
            users_url(&p).trim_end_matches("/users")
        ))
        .bearer_auth(p.api_key())
        .json(&json!({"operations": [{"key": "a"}, {"key": "b"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(t.elapsed() >= Duration::from_millis(120));
    let r = http
        .post(users_url(&p))
        .bearer_auth(p.api_key())
        .json(&json!({"key": "c"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);

    let counters: Value = http
        .get(admin("counters"))
        .bearer_auth(p.api_key())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(counters["by_class"]["bulk"]["total"], 1);
    assert_eq!(counters["by_class"]["write"]["by_status"]["201"], 1);
    assert_eq!(counters["by_endpoint"]["PUT bulk/users"], 1);
    assert_eq!(p.counters().writes(), 2);

    // Invalid knobs are a 422; reset with data=true empties the environment.
    let r = http
        .put(admin("knobs"))
        .bearer_auth(p.api_key())
        .json(&json!({"faults": {"error_rate": 2.0}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422);
    let r = http
        .post(admin("reset?data=true"))
        .bearer_auth(p.api_key())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(p.store().users.len(), 0);
    assert_eq!(p.counters().total, 0);
    assert!(p.store().tenants.get("default").is_some());
    p.shutdown().await.unwrap();
}
