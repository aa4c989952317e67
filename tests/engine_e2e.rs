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
async fn the_limiter_spaces_writes_per_class() {
    let server = scripted(vec![]).await;
    let mut c = config(&server.url);
    c.limits.set("write=20/1").unwrap(); // burst 2, then one per ~55 ms
    let client = PermitClient::connect(c).await.unwrap();
    let start = Instant::now();
    for _ in 0..5 {
        client.call(post(&client)).await.unwrap();
    }
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
    assert!(
        start.elapsed() >= Duration::from_millis(150),
        "{:?}",
        start.elapsed()
    );
    assert!(client.metrics().rate_limit_waits >= 3);
}
