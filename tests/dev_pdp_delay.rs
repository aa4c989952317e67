//! `permit-sync dev --pdp-delay`: the embedded PDP decides on the data as it was that long ago,
//! the log says when the PDP will have a sync's writes and when it has them, and `check --expect
//! --wait` (through the dev session) waits for them.

#[path = "support/dev.rs"]
mod dev;

use dev::{DEADLINE, Dev, collect, free_port};
use std::process::{Command, Stdio};
use std::time::Instant;

const BIN: &str = env!("CARGO_BIN_EXE_permit-sync");

#[tokio::test]
async fn dev_logs_when_the_delayed_pdp_has_the_syncs_writes() {
    let tmp = tempfile::tempdir().unwrap();
    let session = tmp.path().join("session.json");
    let port = free_port();
    let mut child = Command::new(BIN)
        .args(["dev", "examples/rbac-blog-reduced", "--pdp-delay", "1500ms"])
        .args(["--api-addr", "127.0.0.1:0", "--pdp-addr", "127.0.0.1:0"])
        .args(["--metrics-addr", &format!("127.0.0.1:{port}")])
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

    // The first sync's writes: logged as pending, with when they will be in.
    let pending = dev
        .log_line("local PDP: the writes just made reach its decisions in")
        .await;
    let checked = Instant::now();
    assert!(pending.contains("--pdp-delay"), "{pending}");
    assert!(
        dev.stdout
            .lock()
            .unwrap()
            .contains("PDP delay: 1500 ms (decisions see each write that late"),
        "{}",
        dev.stdout.lock().unwrap()
    );

    // check through the dev session: --expect allow --wait sleeps until the grant is in.
    let out = tokio::process::Command::new(BIN)
        .args([
            "check",
            "jane@example.com",
            "read",
            "post",
            "--tenant",
            "acme",
        ])
        .args(["--expect", "allow", "--wait", "20s", "--output", "json"])
        .env("PERMIT_SYNC_DEV_SESSION", &session)
        .env_remove("PERMIT_API_KEY")
        .env_remove("PERMIT_PDP_URL")
        .output()
        .await
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_str(text.trim()).unwrap();
    assert_eq!(v["pdp"]["delay_ms"], 1500, "{v}");
    assert_eq!(v["pdp"]["up_to_date"], true, "{v}");

    // Then the log says the PDP has caught up, no sooner than the delay after the first line.
    dev.log_line("local PDP: its decisions now include every write")
        .await;
    let logs = dev.logs();
    let pending_at = logs.find("reach its decisions in").unwrap();
    let caught_up_at = logs.find("now include every write").unwrap();
    assert!(pending_at < caught_up_at, "{logs}");
    assert!(checked.elapsed() < DEADLINE);
}
