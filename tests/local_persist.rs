//! `--state FILE`: data and key survive a restart; a corrupt file is an error, never emptied.

use permit_sync::local::{LocalConfig, LocalPermit};
use serde_json::json;

async fn start(path: &std::path::Path) -> anyhow::Result<permit_sync::local::LocalHandle> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    LocalPermit::start(LocalConfig {
        state_file: Some(path.to_path_buf()),
        ..LocalConfig::ephemeral()
    })
    .await
}

#[tokio::test]
async fn state_survives_restart() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.json");
    let p = start(&path).await.unwrap();
    let key = p.api_key().to_string();
    let scope = p.scope();
    let http = reqwest::Client::new();
    let facts = format!("{}/v2/facts/default/local", p.api_url());
    let schema = format!("{}/v2/schema/default/local", p.api_url());
    for (url, body) in [
        (
            format!("{schema}/resources"),
            json!({"key": "post", "name": "Post", "actions": {"read": {}}}),
        ),
        (
            format!("{schema}/roles"),
            json!({"key": "viewer", "name": "Viewer", "permissions": ["post:read"]}),
        ),
        (format!("{facts}/users"), json!({"key": "jane@example.com"})),
        (
            format!("{facts}/role_assignments"),
            json!({"user": "jane@example.com", "role": "viewer"}),
        ),
    ] {
        let r = http
            .post(url)
            .bearer_auth(&key)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "{}", r.text().await.unwrap());
    }
    p.shutdown().await.unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "the state file holds the key");
    }

    let p = start(&path).await.unwrap();
    assert_eq!(p.api_key(), key, "the generated key is kept");
    assert_eq!(p.scope(), scope);
    let r = http
        .post(format!("{}/allowed", p.pdp_url()))
        .bearer_auth(&key)
        .json(
            &json!({"user": {"key": "jane@example.com"}, "action": "read",
            "resource": {"type": "post", "tenant": "default"}}),
        )
        .send()
        .await
        .unwrap();
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["allow"], true);
    p.shutdown().await.unwrap();
    // No temporary files are left behind.
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, vec![std::ffi::OsString::from("state.json")]);
}

#[tokio::test]
async fn corrupt_state_is_an_error_and_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.json");
    std::fs::write(&path, b"{\"format\": 1, \"users\": [").unwrap();
    let err = start(&path)
        .await
        .err()
        .expect("a corrupt file stops the start");
    let msg = format!("{err:#}");
    assert!(
        msg.contains("corrupt") && msg.contains("state.json"),
        "{msg}"
    );
    assert_eq!(
        std::fs::read(&path).unwrap(),
        b"{\"format\": 1, \"users\": ["
    );
}

#[tokio::test]
async fn unwritable_state_path_is_a_start_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("missing-dir").join("state.json");
    let err = start(&path)
        .await
        .err()
        .expect("no directory to write into");
    assert!(format!("{err:#}").contains("state.json"), "{err:#}");
}
