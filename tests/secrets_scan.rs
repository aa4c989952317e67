//! The API key never leaks: every command and mode on a recognisable key, and a scan of
//! everything they produce (stdout, stderr at `RUST_LOG=trace`, `--help` with the key in the
//! environment, written reports, inventories and exported manifests, the local Permit's admin
//! routes) for the key or its secret part. Failure paths too: faults with retries, a key the
//! server refuses, an unreachable API and PDP.
//!
//! Not scanned, by design: the local Permit's `--state` file (it persists the key, mode 0600) and
//! `permit-sync dev`'s session file (it hands the key to `check`, mode 0600).

use permit_sync::local::knobs::{Faults, Knobs};
use permit_sync::local::{LocalConfig, LocalHandle, LocalPermit};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Output, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_permit-sync");
/// Shaped like a Permit key, and unmistakable in any output.
const KEY: &str = "permit_key_CANARYc4n4ry5ecret0123456789abcdefCANARY";
/// The part that must not appear on its own either (a prefix-stripping formatter).
const SECRET_PART: &str = "CANARYc4n4ry5ecret0123456789abcdefCANARY";

/// Everything scanned, labelled by where it came from.
#[derive(Default)]
struct Scan {
    seen: Vec<(String, String)>,
}

impl Scan {
    fn add(&mut self, label: impl Into<String>, text: impl Into<String>) {
        self.seen.push((label.into(), text.into()));
    }

    fn output(&mut self, label: &str, out: &Output) {
        self.add(
            format!("{label} stdout"),
            String::from_utf8_lossy(&out.stdout),
        );
        self.add(
            format!("{label} stderr"),
            String::from_utf8_lossy(&out.stderr),
        );
    }

    /// Every file under `path`, recursively.
    fn files(&mut self, label: &str, path: &Path) {
        if path.is_dir() {
            for e in std::fs::read_dir(path).unwrap() {
                self.files(label, &e.unwrap().path());
            }
        } else if let Ok(bytes) = std::fs::read(path) {
            self.add(
                format!("{label} {}", path.display()),
                String::from_utf8_lossy(&bytes),
            );
        }
    }

    fn assert_clean(&self) {
        let leaks: Vec<&str> = self
            .seen
            .iter()
            .filter(|(_, t)| t.contains(KEY) || t.contains(SECRET_PART))
            .map(|(l, _)| l.as_str())
            .collect();
        assert!(leaks.is_empty(), "the API key appears in: {leaks:#?}");
    }
}

fn cmd(args: &[&str], api_url: &str) -> Command {
    let mut c = Command::new(BIN);
    c.args(args)
        .env("PERMIT_API_KEY", KEY)
        .env("PERMIT_API_URL", api_url)
        .env("RUST_LOG", "trace")
        .env("NO_COLOR", "1")
        .env_remove("PERMIT_API_KEY_FILE")
        .env_remove("PERMIT_PDP_URL")
        .env_remove("PERMIT_SYNC_STATE_FILE")
        .env_remove("PERMIT_LOCAL_API_KEY")
        // No dev session: `check` must use the key it is given.
        .env(
            "PERMIT_SYNC_DEV_SESSION",
            "/nonexistent/permit-sync-session.json",
        )
        .stdin(Stdio::null());
    c
}

fn run(scan: &mut Scan, label: &str, mut c: Command) -> Output {
    let out = c.output().unwrap();
    scan.output(label, &out);
    out
}

async fn local(knobs: Knobs) -> LocalHandle {
    LocalPermit::start(LocalConfig {
        api_key: Some(KEY.into()),
        knobs,
        ..LocalConfig::ephemeral()
    })
    .await
    .unwrap()
}

const MANIFESTS: &str = r#"
apiVersion: permitsync.dev/v1alpha1
kind: PermitResource
metadata: {name: post}
spec: {name: Post, actions: {read: {}, update: {}}}
---
apiVersion: permitsync.dev/v1alpha1
kind: PermitRole
metadata: {name: viewer}
spec: {name: Viewer, permissions: ["post:read"]}
---
apiVersion: permitsync.dev/v1alpha1
kind: PermitTenant
metadata: {name: acme}
spec: {name: Acme}
---
apiVersion: permitsync.dev/v1alpha1
kind: PermitUser
metadata: {name: jane}
spec:
  key: jane@example.com
  email: jane@example.com
  roles: [{role: viewer, tenant: acme}]
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_command_or_mode_prints_writes_or_serves_the_api_key() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let permit = local(Knobs::default()).await;
    let api = permit.api_url();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let manifests = dir.join("manifests");
    std::fs::create_dir_all(&manifests).unwrap();
    std::fs::write(manifests.join("blog.yaml"), MANIFESTS).unwrap();
    let m = manifests.to_str().unwrap();
    let state = dir.join("state/inventory.json");
    let s = state.to_str().unwrap();
    let mut scan = Scan::default();

    // Help of every command, with the key in the environment (clap can show env values).
    for sub in [
        "", "crds", "check", "plan", "apply", "export", "local", "validate",
    ] {
        let args: Vec<&str> = [sub, "--help"]
            .into_iter()
            .filter(|a| !a.is_empty())
            .collect();
        run(&mut scan, &format!("{sub} --help"), cmd(&args, &api));
    }
    let out = run(&mut scan, "crds", cmd(&["crds"], &api));
    assert!(out.status.success());
    let crds_dir = dir.join("crds");
    run(
        &mut scan,
        "crds --output-dir",
        cmd(&["crds", "--output-dir", crds_dir.to_str().unwrap()], &api),
    );
    for output in ["human", "json"] {
        let out = run(
            &mut scan,
            &format!("validate {output}"),
            cmd(&["validate", m, "--output", output], &api),
        );
        assert!(out.status.success(), "{out:?}");
    }

    // plan in every format, before and after apply, with and without prune.
    for output in ["table", "json", "markdown"] {
        let out = run(
            &mut scan,
            &format!("plan {output}"),
            cmd(
                &[
                    "plan",
                    m,
                    "--output",
                    output,
                    "--state-file",
                    s,
                    "--detailed-exitcode",
                ],
                &api,
            ),
        );
        assert_eq!(out.status.code(), Some(2), "{out:?}");
    }
    // apply through injected faults (retries and their log lines), with a report.
    permit
        .set_faults(Faults {
            seed: 3,
            error_rate: 0.2,
            drop_rate: 0.1,
            rate_limit_rate: 0.1,
            rate_limit_burst: 2,
            ..Faults::default()
        })
        .unwrap();
    let report = dir.join("report.json");
    let mut applied = false;
    for i in 0..6 {
        let out = run(
            &mut scan,
            &format!("apply (faults) #{i}"),
            cmd(
                &[
                    "apply",
                    m,
                    "--yes",
                    "--state-file",
                    s,
                    "--report",
                    report.to_str().unwrap(),
                    // A 429 without Retry-After waits for its window: one-second windows here.
                    "--rate-limit",
                    "bulk=100/1",
                    "--rate-limit",
                    "write=300/1",
                    "--rate-limit",
                    "all=1000/1",
                    "--rate-limit",
                    "delete=60/1",
                    "--rate-limit",
                    "schema_write=40/1",
                ],
                &api,
            ),
        );
        if out.status.success() {
            applied = true;
            break;
        }
    }
    assert!(applied, "apply did not converge through the faults");
    permit.set_faults(Faults::default()).unwrap();
    for output in ["table", "json", "markdown"] {
        run(
            &mut scan,
            &format!("plan --prune {output}"),
            cmd(
                &["plan", m, "--prune", "--output", output, "--state-file", s],
                &api,
            ),
        );
        run(
            &mut scan,
            &format!("apply --dry-run {output}"),
            cmd(
                &[
                    "apply",
                    m,
                    "--dry-run",
                    "--output",
                    output,
                    "--state-file",
                    s,
                ],
                &api,
            ),
        );
    }
    // Prune with deletions pending and no --yes (refused), then with it.
    let smaller = dir.join("smaller");
    std::fs::create_dir_all(&smaller).unwrap();
    std::fs::write(
        smaller.join("policy.yaml"),
        MANIFESTS
            .split("---")
            .take(2)
            .collect::<Vec<_>>()
            .join("---"),
    )
    .unwrap();
    let sm = smaller.to_str().unwrap();
    run(
        &mut scan,
        "apply --prune without --yes",
        cmd(&["apply", sm, "--prune", "--state-file", s], &api),
    );
    let out = run(
        &mut scan,
        "apply --prune --yes",
        cmd(&["apply", sm, "--prune", "--yes", "--state-file", s], &api),
    );
    assert!(out.status.success(), "{out:?}");
    let out = run(
        &mut scan,
        "apply again",
        cmd(&["apply", m, "--yes", "--state-file", s], &api),
    );
    assert!(out.status.success(), "{out:?}");

    let export = dir.join("export");
    let out = run(
        &mut scan,
        "export",
        cmd(&["export", "--output-dir", export.to_str().unwrap()], &api),
    );
    assert!(out.status.success(), "{out:?}");

    // check, allowed and denied, text and json; the key through the environment and a file.
    // Outside the scanned folder: this file holds the key on purpose.
    let key_dir = tempfile::tempdir().unwrap();
    let key_file = key_dir.path().join("key");
    std::fs::write(&key_file, KEY).unwrap();
    let pdp = permit.pdp_url();
    for (user, output) in [("jane@example.com", "text"), ("bob", "json")] {
        run(
            &mut scan,
            &format!("check {user} {output}"),
            cmd(
                &[
                    "check",
                    user,
                    "read",
                    "post",
                    "--tenant",
                    "acme",
                    "--pdp-url",
                    &pdp,
                    "--output",
                    output,
                ],
                &api,
            ),
        );
    }
    let mut c = cmd(
        &[
            "check",
            "jane@example.com",
            "read",
            "post",
            "--tenant",
            "acme",
            "--pdp-url",
            &pdp,
            "--api-key-file",
            key_file.to_str().unwrap(),
        ],
        &api,
    );
    c.env_remove("PERMIT_API_KEY");
    let out = run(&mut scan, "check --api-key-file", c);
    assert!(out.status.success(), "{out:?}");
    let mut c = cmd(&["plan", m, "--state-file", s], &api);
    c.env_remove("PERMIT_API_KEY")
        .env("PERMIT_API_KEY_FILE", &key_file);
    let out = run(&mut scan, "plan PERMIT_API_KEY_FILE", c);
    assert!(out.status.success(), "{out:?}");

    // The local Permit's own counters and knobs (what a dashboard would scrape).
    let http = reqwest::Client::new();
    for route in ["/_local/counters", "/_local/knobs"] {
        let body = http
            .get(format!("{api}{route}"))
            .bearer_auth(KEY)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        scan.add(format!("local {route}"), body);
    }
    scan.files("written", dir);
    assert!(report.exists() && state.exists() && export.is_dir());

    // Failure paths: a server that refuses the key, nothing listening, a dead PDP.
    let other = LocalPermit::start(LocalConfig::ephemeral()).await.unwrap();
    for (label, url) in [
        ("refused key", other.api_url()),
        ("unreachable", "http://127.0.0.1:9".to_string()),
    ] {
        for args in [
            vec!["plan", m, "--state-file", s, "--timeout", "2"],
            vec!["apply", m, "--yes", "--state-file", s, "--timeout", "2"],
            vec![
                "export",
                "--output-dir",
                "/nonexistent/export",
                "--timeout",
                "2",
            ],
        ] {
            let out = run(
                &mut scan,
                &format!("{label}: {}", args[0]),
                cmd(&args, &url),
            );
            assert!(!out.status.success(), "{label} {args:?} succeeded");
        }
    }
    let out = run(
        &mut scan,
        "check, no PDP",
        cmd(
            &[
                "check",
                "jane",
                "read",
                "post",
                "--pdp-url",
                "http://127.0.0.1:9",
            ],
            &api,
        ),
    );
    assert!(!out.status.success());

    // `local` with the key chosen through the environment and the flag: its banner, then stop.
    for via_flag in [false, true] {
        let mut c = cmd(
            &[
                "local",
                "--api-addr",
                "127.0.0.1:0",
                "--pdp-addr",
                "127.0.0.1:0",
            ],
            &api,
        );
        if via_flag {
            c.args(["--api-key", KEY]);
        } else {
            c.env("PERMIT_LOCAL_API_KEY", KEY);
        }
        let mut child = c
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut banner = String::new();
        for line in BufReader::new(child.stdout.take().unwrap()).lines() {
            let line = line.unwrap();
            banner.push_str(&line);
            banner.push('\n');
            if line.starts_with("press Ctrl-C") {
                break;
            }
        }
        child.kill().unwrap();
        let out = child.wait_with_output().unwrap();
        scan.add(format!("local banner (flag: {via_flag})"), banner.clone());
        scan.output(&format!("local (flag: {via_flag})"), &out);
        assert!(banner.contains("API key:"), "{banner}");
    }

    // In-process: the client's and the arguments' Debug forms.
    let config =
        permit_sync::permit::ClientConfig::new(api.clone(), permit_sync::permit::ApiKey::new(KEY));
    scan.add("ClientConfig Debug", format!("{config:?}"));
    let client = permit_sync::permit::PermitClient::connect(config)
        .await
        .unwrap();
    scan.add("PermitClient metrics", format!("{:?}", client.metrics()));

    let texts = scan.seen.len();
    scan.assert_clean();
    // The scan looked at real output: the plans, the report and the export are there.
    let all: String = scan.seen.iter().map(|(_, t)| t.as_str()).collect();
    assert!(all.contains("jane@example.com") && all.contains("PermitUser"));
    assert!(texts > 60, "only {texts} outputs scanned");
    other.shutdown().await.unwrap();
    permit.shutdown().await.unwrap();
}
