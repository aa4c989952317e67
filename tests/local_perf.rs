//! Scale of the local Permit: 100,000 users, 10,000 tenants and 300,000 role assignments loaded
//! through the bulk API, then timed calls. Ignored by default (it wants a release build):
//!
//! ```text
//! cargo test --release --test local_perf -- --ignored --nocapture
//! ```

use permit_sync::local::{LocalConfig, LocalPermit};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

const USERS: usize = 100_000;
const TENANTS: usize = 10_000;
const ASSIGNMENTS: usize = 300_000;

fn rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "scale test: run with --release -- --ignored --nocapture"]
async fn scale_100k_users_10k_tenants_300k_assignments() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let rss_before = rss_mib();
    let permit = LocalPermit::start(LocalConfig::ephemeral()).await.unwrap();
    let http = reqwest::Client::new();
    let key = permit.api_key().to_string();
    let facts = format!("{}/v2/facts/default/local", permit.api_url());
    let schema = format!("{}/v2/schema/default/local", permit.api_url());
    let send = |method: reqwest::Method, url: String, body: Value| {
        let req = http.request(method, url).bearer_auth(&key).json(&body);
        async move {
            let t = Instant::now();
            let resp = req.send().await.unwrap();
            let status = resp.status();
            let body = resp.bytes().await.unwrap();
            assert!(
                status.is_success(),
                "{status}: {}",
                String::from_utf8_lossy(&body)
            );
            (t.elapsed(), body)
        }
    };
    use reqwest::Method;

    send(
        Method::POST,
        format!("{schema}/resources"),
        json!({"key": "post", "name": "Post", "actions": {"read": {}, "update": {}}}),
    )
    .await;
    for (role, perm) in [("viewer", "post:read"), ("editor", "post:update")] {
        send(
            Method::POST,
            format!("{schema}/roles"),
            json!({"key": role, "name": role, "permissions": [perm]}),
        )
        .await;
    }

    let load = Instant::now();
    let mut upsert_new = Vec::new();
    for chunk in (0..USERS).collect::<Vec<_>>().chunks(3_000) {
        let ops: Vec<Value> = chunk
            .iter()
            .map(|i| json!({"key": format!("user-{i}@example.com"), "email": format!("user-{i}@example.com"), "first_name": "U", "attributes": {"n": i}}))
            .collect();
        let (t, _) = send(
            Method::PUT,
            format!("{facts}/bulk/users"),
            json!({"operations": ops}),
        )
        .await;
        upsert_new.push(t);
    }
    for chunk in (0..TENANTS).collect::<Vec<_>>().chunks(2_000) {
        let ops: Vec<Value> = chunk
            .iter()
            .map(|i| json!({"key": format!("tenant-{i}"), "name": format!("Tenant {i}")}))
            .collect();
        send(
            Method::POST,
            format!("{facts}/bulk/tenants"),
            json!({"operations": ops}),
        )
        .await;
    }
    let mut assign_times = Vec::new();
    for chunk in (0..ASSIGNMENTS).collect::<Vec<_>>().chunks(2_000) {
        // Three assignments per user: viewer in two tenants, editor in one.
        let items: Vec<Value> = chunk
            .iter()
            .map(|i| {
                let user = i % USERS;
                let round = i / USERS;
                let role = if round == 2 { "editor" } else { "viewer" };
                json!({"user": format!("user-{user}@example.com"), "role": role,
                    "tenant": format!("tenant-{}", (user + round * 7) % TENANTS)})
            })
            .collect();
        let (t, body) = send(
            Method::POST,
            format!("{facts}/role_assignments/bulk"),
            json!(items),
        )
        .await;
        assert_eq!(
            serde_json::from_slice::<Value>(&body).unwrap()["assignments_created"],
            2_000
        );
        assign_times.push(t);
    }
    let load_time = load.elapsed();
    {
        let store = permit.store();
        assert_eq!(store.users.len(), USERS);
        assert_eq!(store.tenants.len(), TENANTS + 1);
        assert_eq!(store.assignments.len(), ASSIGNMENTS);
    }
    let rss_loaded = rss_mib();

    // A 3,000-user bulk upsert over existing users (the sync case), and over new ones.
    let mut upsert_existing = Vec::new();
    for round in 0..10 {
        let ops: Vec<Value> = (round * 3_000..(round + 1) * 3_000)
            .map(|i| json!({"key": format!("user-{i}@example.com"), "email": format!("user-{i}@example.com"), "first_name": "V"}))
            .collect();
        let (t, _) = send(
            Method::PUT,
            format!("{facts}/bulk/users"),
            json!({"operations": ops}),
        )
        .await;
        upsert_existing.push(t);
    }

    // Listing: the first and the last page of 100 must cost the same.
    let mut list_first = Vec::new();
    let mut list_last = Vec::new();
    let mut list_assign = Vec::new();
    for _ in 0..20 {
        let get = |url: String| http.get(url).bearer_auth(&key).send();
        let t = Instant::now();
        let r = get(format!("{facts}/users?page=1&per_page=100"))
            .await
            .unwrap();
        let body: Value = r.json().await.unwrap();
        list_first.push(t.elapsed());
        assert_eq!(body["total_count"], USERS);
        let t = Instant::now();
        let r = get(format!("{facts}/users?page=1000&per_page=100"))
            .await
            .unwrap();
        let body: Value = r.json().await.unwrap();
        list_last.push(t.elapsed());
        assert_eq!(body["data"].as_array().unwrap().len(), 100);
        let t = Instant::now();
        let r = get(format!(
            "{facts}/role_assignments?role=viewer&page=1500&per_page=100"
        ))
        .await
        .unwrap();
        let body: Value = r.json().await.unwrap();
        list_assign.push(t.elapsed());
        assert_eq!(body.as_array().unwrap().len(), 100);
    }

    let mut checks = Vec::new();
    for i in 0..200 {
        let t = Instant::now();
        let r = http
            .post(format!("{}/allowed", permit.pdp_url()))
            .bearer_auth(&key)
            .json(
                &json!({"user": {"key": format!("user-{i}@example.com")}, "action": "read",
                "resource": {"type": "post", "tenant": format!("tenant-{}", i % TENANTS)}}),
            )
            .send()
            .await
            .unwrap();
        let body: Value = r.json().await.unwrap();
        checks.push(t.elapsed());
        assert_eq!(body["allow"], true);
    }

    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "--- local Permit at scale ({USERS} users, {TENANTS} tenants, {ASSIGNMENTS} assignments)"
    );
    println!(
        "load through the bulk API: {:.1} s",
        load_time.as_secs_f64()
    );
    println!(
        "bulk upsert 3,000 new users: median {:.1} ms, max {:.1} ms",
        ms(median(upsert_new.clone())),
        ms(*upsert_new.iter().max().unwrap())
    );
    println!(
        "bulk upsert 3,000 existing users: median {:.1} ms, max {:.1} ms",
        ms(median(upsert_existing.clone())),
        ms(*upsert_existing.iter().max().unwrap())
    );
    println!(
        "bulk assign 2,000: median {:.1} ms",
        ms(median(assign_times))
    );
    println!(
        "list users page 1 (of 1,000): median {:.2} ms",
        ms(median(list_first.clone()))
    );
    println!(
        "list users page 1,000: median {:.2} ms",
        ms(median(list_last.clone()))
    );
    println!(
        "list assignments role=viewer page 1,500: median {:.2} ms",
        ms(median(list_assign))
    );
    println!("/allowed: median {:.2} ms", ms(median(checks)));
    println!(
        "RSS: {rss_before:.0} MiB before, {rss_loaded:.0} MiB loaded (+{:.0} MiB)",
        rss_loaded - rss_before
    );

    assert!(median(upsert_existing) < Duration::from_millis(100));
    assert!(median(list_last) < Duration::from_millis(20));
    permit.shutdown().await.unwrap();
}
