//! Issue 18's walkthrough on the real binary: `permit-sync dev examples/blogging-platform --prune`
//! (a copy), then `permit-sync check` through the dev session. John is Author of `Post:post-1`,
//! the parent of `Comment:comment-1`, so he is Moderator of the comment (the derivation
//! `Post#Author` -> `Comment#Moderator` through the relation `parent`, Permit's docs
//! `overview/build-your-policy/rebac`): he may delete it; Emma, a Reader only, may not. Once the
//! tuple's manifest is deleted and the watcher has synced, John may not either.

#[path = "support/dev.rs"]
mod dev;

use dev::{DEADLINE, Dev, collect, free_port};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_permit-sync");

async fn check(session: &std::path::Path, user: &str, expect: &str) -> (Option<i32>, String) {
    let out = tokio::process::Command::new(BIN)
        .args(["check", user, "delete", "Comment:comment-1"])
        .args(["--expect", expect, "--wait", "20s"])
        .env("PERMIT_SYNC_DEV_SESSION", session)
        .env_remove("PERMIT_API_KEY")
        .env_remove("PERMIT_PDP_URL")
        .output()
        .await
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code(), text)
}

#[tokio::test]
async fn a_derived_role_follows_the_tuple_in_dev() {
    let tmp = tempfile::tempdir().unwrap();
    let example = tmp.path().join("blogging-platform");
    std::fs::create_dir(&example).unwrap();
    for entry in std::fs::read_dir("examples/blogging-platform").unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "yaml") {
            std::fs::copy(&path, example.join(path.file_name().unwrap())).unwrap();
        }
    }
    let session = tmp.path().join("session.json");
    let port = free_port();
    let mut child = Command::new(BIN)
        .arg("dev")
        .arg(&example)
        .args([
            "--prune",
            "--api-addr",
            "127.0.0.1:0",
            "--pdp-addr",
            "127.0.0.1:0",
        ])
        .args(["--metrics-addr", &format!("127.0.0.1:{port}")])
        .args(["--state-file"])
        .arg(tmp.path().join("inventory.json"))
        .env("PERMIT_SYNC_DEV_SESSION", &session)
        .env_remove("PERMIT_LOCAL_API_KEY")
        .env_remove("RUST_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("dev starts");
    let stdout = collect(child.stdout.take().unwrap());
    let stderr = collect(child.stderr.take().unwrap());
    let dev = Dev {
        child,
        stdout,
        stderr,
    };
    dev.log_line("synced").await;

    let (code, text) = check(&session, "john@example.com", "allow").await;
    assert_eq!(
        code,
        Some(0),
        "John, Moderator by derivation: {text}\n{}",
        dev.logs()
    );
    assert!(text.contains("allowed"), "{text}");
    let (code, text) = check(&session, "emma@example.com", "deny").await;
    assert_eq!(code, Some(0), "Emma, a Reader: {text}");
    assert!(text.contains("denied"), "{text}");

    std::fs::remove_file(example.join("tuples.yaml")).unwrap();
    // The watcher's second sync is the tuple's deletion (the first created everything).
    let start = Instant::now();
    while dev.logs().matches("synced").count() < 2 {
        assert!(
            start.elapsed() < DEADLINE,
            "no second sync:\n{}",
            dev.logs()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (code, text) = check(&session, "john@example.com", "deny").await;
    assert_eq!(
        code,
        Some(0),
        "John without the tuple: {text}\n{}",
        dev.logs()
    );
    assert!(text.contains("denied"), "{text}");
    assert!(dev.logs().contains("deleted"), "{}", dev.logs());
}
