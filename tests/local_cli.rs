//! `permit-sync local` as a process: prints its URLs and key, serves, stops on SIGTERM; a corrupt
//! state file is a clear error.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_permit-sync");

#[tokio::test]
async fn prints_urls_and_key_then_serves() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut child = Command::new(BIN)
        .args([
            "local",
            "--api-addr",
            "127.0.0.1:0",
            "--pdp-addr",
            "127.0.0.1:0",
        ])
        .env_remove("PERMIT_LOCAL_API_KEY")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let (mut api, mut pdp, mut key) = (String::new(), String::new(), String::new());
    for line in lines.by_ref() {
        let line = line.unwrap();
        let line = line.trim();
        if let Some(v) = line.strip_prefix("API:") {
            api = v.trim().to_string();
        } else if let Some(v) = line.strip_prefix("PDP:") {
            pdp = v.trim().to_string();
        } else if let Some(v) = line.strip_prefix("API key:") {
            key = v.trim().to_string();
        } else if line.starts_with("press Ctrl-C") {
            break;
        }
    }
    assert!(
        key.starts_with("permit_key_") && key.len() > 40,
        "a generated key"
    );
    let http = reqwest::Client::new();
    let scope = http
        .get(format!("{api}/v2/api-key/scope"))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(scope.status(), 200);
    let health = http.get(format!("{pdp}/healthy")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    let pid = child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    assert!(child.wait().unwrap().success(), "graceful exit on SIGTERM");
}

#[test]
fn corrupt_state_file_fails_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.json");
    std::fs::write(&state, "not json").unwrap();
    let out = Command::new(BIN)
        .args([
            "local",
            "--api-addr",
            "127.0.0.1:0",
            "--pdp-addr",
            "127.0.0.1:0",
        ])
        .arg("--state")
        .arg(&state)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("corrupt") && stderr.contains("state.json"),
        "{stderr}"
    );
    assert_eq!(std::fs::read_to_string(&state).unwrap(), "not json");
}

#[test]
fn knob_flags_are_checked_and_applied() {
    let out = Command::new(BIN)
        .args([
            "local",
            "--api-addr",
            "127.0.0.1:0",
            "--pdp-addr",
            "127.0.0.1:0",
        ])
        .args(["--fault-5xx-rate", "2"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("error_rate"));
}
