//! Directory mode (`watch`, `dev`) end to end: files on disk, the sync loop, the embedded local
//! Permit over real HTTP. Writes are counted at the local Permit's request counters. Every wait
//! polls for the expected state with a deadline; no fixed sleep is an assertion.

use permit_sync::kinds::Kind;
use permit_sync::local::knobs::Counters;
use permit_sync::local::{LocalConfig, LocalHandle, LocalPermit};
use permit_sync::metrics::Metrics;
use permit_sync::permit::{ApiKey, ClientConfig, Limits, RetryPolicy};
use permit_sync::plan::{Mode, PlanOptions};
use permit_sync::watch::drift::DriftMode;
use permit_sync::watch::state::{ObjectState, Shared, WatchStatus};
use permit_sync::watch::{self, Config};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

const DEADLINE: Duration = Duration::from_secs(30);

/// Polls `check` every 10 ms until it holds or `DEADLINE` passes.
async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let start = Instant::now();
    while !check() {
        assert!(start.elapsed() < DEADLINE, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

struct Env {
    permit: LocalHandle,
    dir: tempfile::TempDir,
    shared: Shared,
    metrics: &'static Metrics,
    cancel: CancellationToken,
    task: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

fn manifests(dir: &tempfile::TempDir) -> PathBuf {
    dir.path().join("manifests")
}

fn client_config(url: &str, key: &str) -> ClientConfig {
    let mut c = ClientConfig::new(url, ApiKey::new(key));
    c.limits = Limits::unlimited();
    c.retry = RetryPolicy {
        max_attempts: 2,
        min_delay: Duration::from_millis(10),
        max_delay: Duration::from_millis(50),
        max_retry_after: Duration::from_secs(1),
    };
    c.timeout = Duration::from_secs(5);
    c.connect_timeout = Duration::from_secs(1);
    c
}

fn test_config(permit: &LocalHandle, dir: &tempfile::TempDir, metrics: &'static Metrics) -> Config {
    let mut c = Config::new(
        manifests(dir),
        dir.path().join("state/inventory.json"),
        client_config(&permit.api_url(), permit.api_key()),
    );
    c.batch_window = Duration::from_millis(150);
    // Long enough that file events, not the timers, must do the work in these tests.
    c.rescan_interval = Duration::from_secs(600);
    c.drift_interval = Duration::from_secs(600);
    c.max_backoff = Duration::from_millis(500);
    c.metrics = metrics.sync.clone();
    c.pdp_metrics = metrics.pdp.clone();
    c
}

async fn local() -> LocalHandle {
    let _ = rustls::crypto::ring::default_provider().install_default();
    LocalPermit::start(LocalConfig::ephemeral()).await.unwrap()
}

fn copy_blog(to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for f in [
        "policy.yaml",
        "tenants.yaml",
        "users.yaml",
        "assignments.yaml",
    ] {
        std::fs::copy(Path::new("examples/rbac-blog-reduced").join(f), to.join(f)).unwrap();
    }
}

impl Env {
    /// A local Permit and a manifest folder holding the blog example; the loop not started yet.
    async fn new() -> (Env, Config) {
        let permit = local().await;
        let dir = tempfile::tempdir().unwrap();
        copy_blog(&manifests(&dir));
        let metrics: &'static Metrics = Box::leak(Box::new(Metrics::new()));
        let config = test_config(&permit, &dir, metrics);
        let env = Env {
            permit,
            dir,
            shared: Shared::default(),
            metrics,
            cancel: CancellationToken::new(),
            task: None,
        };
        (env, config)
    }

    fn start(&mut self, config: Config) {
        let shared = self.shared.clone();
        let cancel = self.cancel.clone();
        self.task = Some(tokio::spawn(watch::run(config, shared, cancel)));
    }

    async fn started(config: impl FnOnce(&mut Config)) -> Env {
        let (mut env, mut c) = Env::new().await;
        config(&mut c);
        env.start(c);
        env.ready().await;
        env
    }

    async fn ready(&self) {
        eventually("the first complete sync", || self.shared.snapshot().ready).await;
    }

    fn path(&self, name: &str) -> PathBuf {
        manifests(&self.dir).join(name)
    }

    fn status(&self) -> WatchStatus {
        self.shared.snapshot()
    }

    fn counters(&self) -> Counters {
        self.permit.counters()
    }

    fn tenant_name(&self, key: &str) -> Option<String> {
        let store = self.permit.store();
        store
            .tenants
            .rows()
            .iter()
            .find(|t| t.key == key)
            .map(|t| t.name.clone())
    }

    fn user_first_name(&self, key: &str) -> Option<Option<String>> {
        let store = self.permit.store();
        store
            .users
            .rows()
            .iter()
            .find(|u| u.key == key)
            .map(|u| u.first_name.clone())
    }

    fn user_count(&self) -> usize {
        self.permit.store().users.len()
    }

    /// A request straight to the local Permit, as someone working around permit-sync would.
    async fn direct(&self, method: reqwest::Method, url: String, body: serde_json::Value) -> u16 {
        reqwest::Client::new()
            .request(method, url)
            .bearer_auth(self.permit.api_key())
            .json(&body)
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    }

    async fn stop(mut self) {
        self.cancel.cancel();
        if let Some(t) = self.task.take() {
            tokio::time::timeout(DEADLINE, t)
                .await
                .expect("the loop stops when cancelled")
                .unwrap()
                .unwrap();
        }
        self.permit.shutdown().await.unwrap();
    }
}

/// Requests between two counter snapshots, by endpoint.
fn delta(a: &Counters, b: &Counters) -> Vec<(String, u64)> {
    b.by_endpoint
        .iter()
        .filter_map(|(k, n)| {
            let before = a.by_endpoint.get(k).copied().unwrap_or(0);
            (*n > before).then(|| (k.clone(), n - before))
        })
        .collect()
}

/// The counters once at least one write since `since` is counted (the local Permit counts a
/// request as its answer leaves, a moment after the store shows the change).
async fn after_writes(env: &Env, since: &Counters) -> Counters {
    eventually("the write counted", || {
        env.counters().writes() > since.writes()
    })
    .await;
    env.counters()
}

fn reads(a: &Counters, b: &Counters) -> u64 {
    b.class("read") - a.class("read")
}

fn tenant_yaml(key: &str, name: &str) -> String {
    format!(
        "apiVersion: permitsync.dev/v1alpha1\nkind: PermitTenant\nmetadata:\n  name: {key}\nspec:\n  name: {name}\n"
    )
}

fn user_yaml(name: &str, first: &str) -> String {
    format!(
        "apiVersion: permitsync.dev/v1alpha1\nkind: PermitUser\nmetadata:\n  name: {name}\nspec:\n  email: {name}@example.com\n  firstName: {first}\n"
    )
}

/// Writes through a temporary file and a rename, as editors and git do.
fn write_atomic(path: &Path, text: &str) {
    let tmp = path.with_file_name(format!(
        ".{}.tmp",
        path.file_name().unwrap().to_string_lossy()
    ));
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

#[tokio::test]
async fn add_change_and_delete_files_change_permit_incrementally() {
    let env = Env::started(|c| {
        c.options = PlanOptions {
            prune: true,
            ..PlanOptions::default()
        }
    })
    .await;
    assert_eq!(
        env.user_first_name("jane@example.com"),
        Some(Some("Jane".into()))
    );
    assert!(
        env.status()
            .objects
            .iter()
            .all(|o| o.state == ObjectState::Synced)
    );

    // Add a file: one create, and no read of Permit (the cached state is planned against).
    let c0 = env.counters();
    std::fs::write(env.path("globex.yaml"), tenant_yaml("globex", "Globex")).unwrap();
    eventually("the new tenant", || {
        env.tenant_name("globex").as_deref() == Some("Globex")
    })
    .await;
    let c1 = after_writes(&env, &c0).await;
    let calls = delta(&c0, &c1);
    println!("add a file: {calls:?}");
    assert_eq!(
        reads(&c0, &c1),
        0,
        "no relist for an incremental change: {calls:?}"
    );
    assert_eq!(c1.writes() - c0.writes(), 1, "{calls:?}");

    // Change it (an editor's atomic save): one update, of that object only.
    write_atomic(
        &env.path("globex.yaml"),
        &tenant_yaml("globex", "Globex Corp"),
    );
    eventually("the renamed tenant", || {
        env.tenant_name("globex").as_deref() == Some("Globex Corp")
    })
    .await;
    let c2 = after_writes(&env, &c1).await;
    let calls = delta(&c1, &c2);
    println!("change a file: {calls:?}");
    assert_eq!(reads(&c1, &c2), 0, "{calls:?}");
    assert_eq!(c2.writes() - c1.writes(), 1, "{calls:?}");

    // Delete it: pruned (it is in the inventory), with one call.
    std::fs::remove_file(env.path("globex.yaml")).unwrap();
    eventually("the tenant pruned", || env.tenant_name("globex").is_none()).await;
    let c3 = after_writes(&env, &c2).await;
    let calls = delta(&c2, &c3);
    println!("delete a file: {calls:?}");
    assert_eq!(c3.writes() - c2.writes(), 1, "{calls:?}");
    assert_eq!(reads(&c2, &c3), 0, "{calls:?}");
    // What permit-sync did not create is never pruned: the `default` tenant stays.
    assert!(env.tenant_name("default").is_some());
    eventually("status without the pruned tenant", || {
        !env.status().objects.iter().any(|o| o.key == "globex")
    })
    .await;
    env.stop().await;
}

#[tokio::test]
async fn a_burst_of_1000_file_changes_ends_in_a_handful_of_bulk_calls() {
    let env = Env::started(|_| {}).await;
    let before_users = env.user_count();
    let c0 = env.counters();
    let start = Instant::now();
    for i in 0..1000 {
        std::fs::write(
            env.path(&format!("user-{i:04}.yaml")),
            user_yaml(&format!("u{i:04}"), "Burst"),
        )
        .unwrap();
    }
    eventually("1,000 new users", || {
        env.user_count() == before_users + 1000
    })
    .await;
    let took = start.elapsed();
    let c1 = after_writes(&env, &c0).await;
    let calls = delta(&c0, &c1);
    let writes = c1.writes() - c0.writes();
    println!("burst of 1,000 files: {writes} write call(s) in {took:?}: {calls:?}");
    assert!(writes <= 5, "{calls:?}");
    assert!(c1.endpoint("PUT bulk/users") - c0.endpoint("PUT bulk/users") >= 1);
    eventually("every object synced", || {
        let s = env.status();
        s.objects.len() >= 1008 && s.objects.iter().all(|o| o.state == ObjectState::Synced)
    })
    .await;

    // Change all of them at once: the same handful of calls, no relist.
    let c1 = env.counters();
    for i in 0..1000 {
        write_atomic(
            &env.path(&format!("user-{i:04}.yaml")),
            &user_yaml(&format!("u{i:04}"), "Changed"),
        );
    }
    eventually("1,000 changed users", || {
        let store = env.permit.store();
        store
            .users
            .rows()
            .iter()
            .filter(|u| u.first_name.as_deref() == Some("Changed"))
            .count()
            == 1000
    })
    .await;
    let c2 = after_writes(&env, &c1).await;
    let writes = c2.writes() - c1.writes();
    println!(
        "1,000 changed files: {writes} write call(s): {:?}",
        delta(&c1, &c2)
    );
    assert!(writes <= 5);
    assert_eq!(reads(&c1, &c2), 0);
    env.stop().await;
}

#[tokio::test]
async fn a_broken_edit_keeps_the_last_good_state_reports_file_and_line_then_resumes() {
    let env = Env::started(|c| {
        c.options = PlanOptions {
            prune: true,
            mode: Mode::Owned,
            ..PlanOptions::default()
        }
    })
    .await;
    let users = env.path("users.yaml");
    let good = std::fs::read_to_string(&users).unwrap();
    let c0 = env.counters();
    let syncs = env.status().syncs;

    // Line 9 opens a flow sequence it never closes: the first document no longer parses.
    let broken = good.replace("  firstName: Jane\n", "  firstName: [Jane\n");
    assert_ne!(broken, good);
    std::fs::write(&users, &broken).unwrap();
    eventually("the error reported", || {
        let s = env.status();
        s.syncs > syncs && s.files.iter().any(|f| f.severity == "error" && f.line > 0)
    })
    .await;
    let status = env.status();
    let problem = status.files.iter().find(|f| f.severity == "error").unwrap();
    assert!(problem.file.ends_with("users.yaml"), "{problem:?}");
    assert!(
        problem
            .message
            .contains(&format!("users.yaml:{}:", problem.line)),
        "file:line in the message: {problem:?}"
    );
    assert!(
        status
            .files
            .iter()
            .any(|f| f.message.contains("keeping the last valid version")),
        "{:?}",
        status.files
    );
    // Nothing was deleted or changed: the users and their assignments are still there.
    let c1 = env.counters();
    assert_eq!(c1.writes(), c0.writes(), "{:?}", delta(&c0, &c1));
    assert!(env.user_first_name("jane@example.com").is_some());
    assert!(env.user_first_name("bob").is_some());
    assert!(
        env.permit.store().assignments.len() >= 2,
        "assignments kept"
    );
    let jane = status
        .objects
        .iter()
        .find(|o| o.key == "jane@example.com")
        .unwrap();
    assert_eq!(jane.state, ObjectState::Synced);
    assert!(
        jane.message.as_deref().is_some_and(
            |m| m.contains("users.yaml has errors; its last valid version is in force")
        ),
        "{jane:?}"
    );

    // Fixed, with a change: the change lands and the error goes.
    std::fs::write(&users, good.replace("firstName: Jane", "firstName: Janet")).unwrap();
    eventually("the fixed file synced", || {
        env.user_first_name("jane@example.com") == Some(Some("Janet".into()))
    })
    .await;
    eventually("the error cleared", || {
        env.status().files.iter().all(|f| f.severity != "error")
    })
    .await;
    env.stop().await;
}

#[tokio::test]
async fn a_file_broken_at_start_holds_prune() {
    // A file broken from the start has no last good version: its objects are unknown, so prune
    // waits rather than deleting what it might declare.
    let (mut env, mut config) = Env::new().await;
    config.options = PlanOptions {
        prune: true,
        ..PlanOptions::default()
    };
    let globex = env.path("globex.yaml");
    std::fs::write(&globex, tenant_yaml("globex", "Globex")).unwrap();
    env.start(config.clone());
    env.ready().await;
    assert!(env.tenant_name("globex").is_some());
    env.cancel.cancel();
    env.task.take().unwrap().await.unwrap().unwrap();

    // Restart with globex.yaml truncated mid-write.
    std::fs::write(&globex, "apiVersion: permitsync.dev/v1alpha1\nkind: [\n").unwrap();
    env.cancel = CancellationToken::new();
    env.shared = Shared::default();
    let c0 = env.counters();
    env.start(config);
    eventually("a sync with the broken file", || {
        let s = env.status();
        s.syncs >= 1 && s.files.iter().any(|f| f.severity == "error")
    })
    .await;
    assert!(env.tenant_name("globex").is_some(), "globex was pruned");
    let c1 = env.counters();
    assert_eq!(c1.writes(), c0.writes(), "{:?}", delta(&c0, &c1));

    // Once it parses and no longer declares globex, prune goes ahead.
    std::fs::write(&globex, tenant_yaml("initech", "Initech")).unwrap();
    eventually("globex pruned, initech created", || {
        env.tenant_name("globex").is_none() && env.tenant_name("initech").is_some()
    })
    .await;
    env.stop().await;
}

#[cfg(unix)]
#[tokio::test]
async fn a_configmap_symlink_swap_is_picked_up() {
    use std::os::unix::fs::symlink;
    let (mut env, config) = Env::new().await;
    // The kubelet's layout: ..<timestamp>/ holds the files, ..data points at it, and each
    // visible file is a symlink through ..data.
    let root = manifests(&env.dir);
    std::fs::remove_dir_all(&root).unwrap();
    std::fs::create_dir_all(root.join("..2026_11_26_01")).unwrap();
    copy_blog(&root.join("..2026_11_26_01"));
    symlink("..2026_11_26_01", root.join("..data")).unwrap();
    for f in [
        "policy.yaml",
        "tenants.yaml",
        "users.yaml",
        "assignments.yaml",
    ] {
        symlink(format!("..data/{f}"), root.join(f)).unwrap();
    }
    env.start(config);
    env.ready().await;
    assert_eq!(env.tenant_name("acme").as_deref(), Some("Acme Inc."));
    assert_eq!(
        env.status().objects.len(),
        8,
        "each object once, not through ..data too"
    );

    // An update: a new timestamped folder, a new ..data link renamed over the old one.
    let next = root.join("..2026_11_26_02");
    copy_blog(&next);
    let tenants = std::fs::read_to_string(next.join("tenants.yaml")).unwrap();
    std::fs::write(
        next.join("tenants.yaml"),
        tenants.replace("Acme Inc.", "Acme Swapped"),
    )
    .unwrap();
    symlink("..2026_11_26_02", root.join("..data_tmp")).unwrap();
    std::fs::rename(root.join("..data_tmp"), root.join("..data")).unwrap();
    std::fs::remove_dir_all(root.join("..2026_11_26_01")).unwrap();
    eventually("the swapped content", || {
        env.tenant_name("acme").as_deref() == Some("Acme Swapped")
    })
    .await;
    env.stop().await;
}

#[tokio::test]
async fn an_atomic_git_checkout_is_picked_up() {
    let (mut env, config) = Env::new().await;
    let root = manifests(&env.dir);
    let git = |args: &[&str]| {
        let out = std::process::Command::new("git")
            .args(["-c", "user.name=t", "-c", "user.email=t@example.com"])
            .args(args)
            .current_dir(&root)
            .output();
        match out {
            Ok(o) if o.status.success() => Some(()),
            Ok(o) => panic!("git {args:?}: {}", String::from_utf8_lossy(&o.stderr)),
            Err(_) => None,
        }
    };
    if git(&["init", "-q", "-b", "main"]).is_none() {
        // No git on this machine: the same as git does it, renames over the old files.
        eprintln!("git not found: simulating the checkout with renames");
    } else {
        git(&["add", "-A"]);
        git(&["commit", "-q", "-m", "v1"]);
        git(&["checkout", "-q", "-b", "v2"]);
    }
    // v2 changes three files at once.
    let edit = |f: &str, from: &str, to: &str| {
        let p = root.join(f);
        let text = std::fs::read_to_string(&p).unwrap();
        assert!(text.contains(from), "{f} holds {from}");
        write_atomic(&p, &text.replace(from, to));
    };
    let has_git = root.join(".git").exists();
    if has_git {
        edit("tenants.yaml", "Acme Inc.", "Acme v2");
        edit("users.yaml", "firstName: Jane", "firstName: Jane2");
        std::fs::write(root.join("globex.yaml"), tenant_yaml("globex", "Globex")).unwrap();
        git(&["add", "-A"]);
        git(&["commit", "-q", "-m", "v2"]);
        git(&["checkout", "-q", "main"]);
    }
    env.start(config);
    env.ready().await;
    assert_eq!(env.tenant_name("acme").as_deref(), Some("Acme Inc."));
    let c0 = env.counters();
    if has_git {
        git(&["checkout", "-q", "v2"]);
    } else {
        edit("tenants.yaml", "Acme Inc.", "Acme v2");
        edit("users.yaml", "firstName: Jane", "firstName: Jane2");
        write_atomic(&root.join("globex.yaml"), &tenant_yaml("globex", "Globex"));
    }
    eventually("the checked-out state", || {
        env.tenant_name("acme").as_deref() == Some("Acme v2")
            && env.tenant_name("globex").is_some()
            && env.user_first_name("jane@example.com") == Some(Some("Jane2".into()))
    })
    .await;
    let c1 = env.counters();
    println!("checkout of 3 files: {:?}", delta(&c0, &c1));
    assert_eq!(reads(&c0, &c1), 0);
    env.stop().await;
}

#[tokio::test]
async fn drift_made_through_the_api_is_corrected() {
    let env = Env::started(|c| c.drift_interval = Duration::from_millis(300)).await;
    let facts = env.permit.facts_url();
    let status = env
        .direct(
            reqwest::Method::PATCH,
            format!("{facts}/tenants/acme"),
            json!({"name": "Renamed by hand"}),
        )
        .await;
    assert_eq!(status, 200);
    let status = env
        .direct(
            reqwest::Method::DELETE,
            format!("{facts}/role_assignments"),
            json!({"user": "jane@example.com", "role": "viewer", "tenant": "acme"}),
        )
        .await;
    assert!(status / 100 == 2, "{status}");
    eventually("drift corrected", || {
        env.tenant_name("acme").as_deref() == Some("Acme Inc.")
            && env.permit.store().assignments.len() == 2
    })
    .await;
    // The metrics move when the apply returns, just after Permit has the writes.
    eventually("drift metrics", || {
        let metrics = env.metrics.encode();
        metrics.contains("permit_sync_drift_found_total{kind=\"PermitTenant\"} 1")
            && metrics.contains("permit_sync_drift_found_total{kind=\"RoleAssignment\"} 1")
            && metrics.contains("permit_sync_drift_corrected_total{kind=\"PermitTenant\"} 1")
            && metrics.contains("permit_sync_drift_corrected_total{kind=\"RoleAssignment\"} 1")
    })
    .await;
    env.stop().await;
}

#[tokio::test]
async fn drift_is_only_reported_with_drift_report() {
    let env = Env::started(|c| {
        c.drift_interval = Duration::from_millis(300);
        c.drift = DriftMode::Report;
    })
    .await;
    let facts = env.permit.facts_url();
    let status = env
        .direct(
            reqwest::Method::PATCH,
            format!("{facts}/tenants/acme"),
            json!({"name": "Renamed by hand"}),
        )
        .await;
    assert_eq!(status, 200);
    eventually("drift reported", || {
        env.status()
            .objects
            .iter()
            .any(|o| o.key == "acme" && o.state == ObjectState::Drifted)
    })
    .await;
    // Several relists later it is still as changed by hand.
    let syncs = env.status().syncs;
    eventually("three more relists", || env.status().syncs >= syncs + 3).await;
    assert_eq!(env.tenant_name("acme").as_deref(), Some("Renamed by hand"));
    let metrics = env.metrics.encode();
    assert!(
        metrics.contains("permit_sync_drift_found_total{kind=\"PermitTenant\"} 1"),
        "found once, not at every relist: {metrics}"
    );
    assert!(
        !metrics.contains("permit_sync_drift_corrected_total{"),
        "{metrics}"
    );

    // Other changes from the files still go through.
    std::fs::write(env.path("globex.yaml"), tenant_yaml("globex", "Globex")).unwrap();
    eventually("the new tenant", || env.tenant_name("globex").is_some()).await;
    assert_eq!(env.tenant_name("acme").as_deref(), Some("Renamed by hand"));
    // Editing the drifted object's declaration is the user's say: it is applied.
    let tenants = env.path("tenants.yaml");
    let text = std::fs::read_to_string(&tenants).unwrap();
    std::fs::write(&tenants, text.replace("Acme Inc.", "Acme Edited")).unwrap();
    eventually("the edited tenant", || {
        env.tenant_name("acme").as_deref() == Some("Acme Edited")
    })
    .await;
    env.stop().await;
}

#[tokio::test]
async fn readyz_and_metrics_answer_and_an_outage_is_ridden_out() {
    // Permit is not there at first: not ready, every object in error, backoff; then it comes up
    // on the same address and the loop converges.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let addr = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let key = permit_sync::local::generate_api_key();
    let dir = tempfile::tempdir().unwrap();
    copy_blog(&manifests(&dir));
    let metrics: &'static Metrics = Box::leak(Box::new(Metrics::new()));
    let mut config = Config::new(
        manifests(&dir),
        dir.path().join("state/inventory.json"),
        client_config(&format!("http://{addr}"), &key),
    );
    config.batch_window = Duration::from_millis(100);
    config.max_backoff = Duration::from_millis(400);
    config.metrics = metrics.sync.clone();
    let shared = Shared::default();
    let cancel = CancellationToken::new();
    let server_cancel = CancellationToken::new();
    let (http_addr, server) = permit_sync::serve::start(
        "127.0.0.1:0".parse().unwrap(),
        shared.clone(),
        metrics,
        server_cancel.clone(),
    )
    .await
    .unwrap();
    let task = tokio::spawn(watch::run(config, shared.clone(), cancel.clone()));
    let http = reqwest::Client::new();
    let get = |path: &str| {
        let http = http.clone();
        let url = format!("http://{http_addr}{path}");
        async move {
            let r = http.get(url).send().await.unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        }
    };
    assert_eq!(get("/healthz").await.0, 200);
    eventually("errors per object", || {
        let s = shared.snapshot();
        s.syncs >= 2
            && s.objects.len() == 8
            && s.objects.iter().all(|o| {
                o.state == ObjectState::Error
                    && o.message
                        .as_deref()
                        .unwrap_or("")
                        .contains("Permit unreachable")
            })
    })
    .await;
    let (code, body) = get("/readyz").await;
    assert_eq!(code, 503, "{body}");
    assert!(body.contains("Permit unreachable"), "{body}");
    // Backoff: a handful of attempts in a second, not a tight loop.
    let s0 = shared.snapshot().syncs;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let attempts = shared.snapshot().syncs - s0;
    assert!(attempts <= 5, "{attempts} attempts in 1 s");

    let permit = LocalPermit::start(LocalConfig {
        api_addr: addr,
        api_key: Some(key.clone()),
        ..LocalConfig::ephemeral()
    })
    .await
    .unwrap();
    eventually("ready once Permit is back", || shared.snapshot().ready).await;
    let (code, body) = get("/readyz").await;
    assert_eq!((code, body.as_str()), (200, "ready\n"));
    assert_eq!(permit.store().users.len(), 2);

    let (code, text) = get("/metrics").await;
    assert_eq!(code, 200);
    for expected in [
        "permit_sync_syncs_total{result=\"success\"} 1",
        "permit_sync_syncs_total{result=\"failure\"}",
        "permit_sync_sync_duration_seconds_count",
        "permit_sync_api_requests_total{class=\"bulk\",status=\"200\"}",
        "permit_sync_api_requests_total{class=\"all\",status=\"200\"}",
        "permit_sync_connect_failures_total",
        "permit_sync_objects{kind=\"PermitUser\",state=\"synced\"} 2",
        "permit_sync_objects{kind=\"RoleAssignment\",state=\"synced\"} 2",
        "permit_sync_ready 1",
        "permit_sync_last_success_timestamp_seconds",
        "permit_sync_rate_limit_waits_total",
    ] {
        assert!(text.contains(expected), "{expected} missing from:\n{text}");
    }
    let (code, json) = get("/status").await;
    assert_eq!(code, 200);
    let report: WatchStatus = serde_json::from_str(&json).unwrap();
    assert!(report.ready);
    assert_eq!(report.objects.len(), 8);
    assert!(
        report
            .objects
            .iter()
            .any(|o| o.kind == Kind::RoleAssignment)
    );
    for text in [&text, &json] {
        assert!(!text.contains(&key), "the API key leaked");
    }
    cancel.cancel();
    task.await.unwrap().unwrap();
    server_cancel.cancel();
    server.await.unwrap();
    permit.shutdown().await.unwrap();
}

#[tokio::test]
async fn change_to_write_latency_stays_within_the_batching_window() {
    // WATCH_LATENCY_CHANGES=200 WATCH_LATENCY_WINDOW_MS=500 reproduce the benchmark's shape.
    let var = |k: &str, d: u64| {
        std::env::var(k)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(d)
    };
    let window = Duration::from_millis(var("WATCH_LATENCY_WINDOW_MS", 200));
    let changes = var("WATCH_LATENCY_CHANGES", 20) as usize;
    let env = Env::started(|c| c.batch_window = window).await;
    let mut samples = Vec::new();
    let mut timings = Vec::new();
    for i in 0..changes {
        let name = format!("Latency {i}");
        let written = Instant::now();
        write_atomic(&env.path("lat.yaml"), &tenant_yaml("lat", &name));
        loop {
            if env.tenant_name("lat").as_deref() == Some(name.as_str()) {
                break;
            }
            assert!(written.elapsed() < DEADLINE, "change {i} never landed");
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        samples.push(written.elapsed());
        if let Some(t) = env.status().last_timing {
            timings.push(t);
        }
    }
    let worst = |f: fn(&permit_sync::watch::state::SyncTiming) -> u64| {
        timings.iter().map(f).max().unwrap_or(0)
    };
    println!(
        "worst phases (ms): batch wait {}, scan {}, plan {}, apply {}",
        worst(|t| t.batch_wait_ms),
        worst(|t| t.scan_ms),
        worst(|t| t.plan_ms),
        worst(|t| t.apply_ms)
    );
    samples.sort();
    let p50 = samples[samples.len() / 2];
    let p99 = samples[(samples.len() * 99).div_ceil(100) - 1];
    let max = samples[samples.len() - 1];
    println!(
        "change-to-write over {changes} changes, window {window:?}: p50 {p50:?}, p99 {p99:?}, max {max:?}"
    );
    // The target is window + 100 ms (release build); a debug build on shared cores gets slack.
    assert!(p50 >= window, "batched, not immediate: {p50:?}");
    assert!(p99 <= window + Duration::from_millis(600), "{p99:?}");
    let metrics = env.metrics.encode();
    let observed: u64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("permit_sync_change_to_write_seconds_count "))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0);
    assert!(
        observed >= changes as u64,
        "one observation per change: {metrics}"
    );
    env.stop().await;
}

// ---------------------------------------------------------------------------------------------
// The binary: `dev`, `watch`, `status`, signals, and no secret in any output.

mod binary {
    use super::*;
    use std::io::{BufRead, BufReader, Read};
    use std::process::{Child, Command, Stdio};
    use std::sync::{Arc, Mutex};

    const BIN: &str = env!("CARGO_BIN_EXE_permit-sync");

    fn free_port() -> u16 {
        std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    }

    /// A running process with its stdout and stderr collected as they come.
    struct Proc {
        child: Child,
        stdout: Arc<Mutex<String>>,
        stderr: Arc<Mutex<String>>,
    }

    impl Proc {
        fn spawn(cmd: &mut Command) -> Proc {
            let mut child = cmd
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            let collect = |r: Box<dyn Read + Send>| {
                let buf = Arc::new(Mutex::new(String::new()));
                let b = buf.clone();
                std::thread::spawn(move || {
                    for line in BufReader::new(r).lines().map_while(Result::ok) {
                        let mut b = b.lock().unwrap();
                        b.push_str(&line);
                        b.push('\n');
                    }
                });
                buf
            };
            let stdout = collect(Box::new(child.stdout.take().unwrap()));
            let stderr = collect(Box::new(child.stderr.take().unwrap()));
            Proc {
                child,
                stdout,
                stderr,
            }
        }

        fn stdout(&self) -> String {
            self.stdout.lock().unwrap().clone()
        }

        fn stderr(&self) -> String {
            self.stderr.lock().unwrap().clone()
        }

        /// SIGTERM, then the exit status within the deadline.
        async fn terminate(&mut self) -> std::process::ExitStatus {
            unsafe {
                libc::kill(self.child.id() as i32, libc::SIGTERM);
            }
            let start = Instant::now();
            loop {
                if let Some(status) = self.child.try_wait().unwrap() {
                    // Let the reader threads drain the pipes.
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    return status;
                }
                assert!(start.elapsed() < DEADLINE, "no exit after SIGTERM");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }

    impl Drop for Proc {
        fn drop(&mut self) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }

    async fn get(url: &str) -> Option<(u16, String)> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let r = reqwest::get(url).await.ok()?;
        let code = r.status().as_u16();
        Some((code, r.text().await.ok()?))
    }

    async fn until_ready(port: u16) {
        let start = Instant::now();
        loop {
            if let Some((200, _)) = get(&format!("http://127.0.0.1:{port}/readyz")).await {
                return;
            }
            assert!(start.elapsed() < DEADLINE, "not ready in time");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    #[tokio::test]
    async fn dev_serves_the_example_check_and_status_and_stops_on_sigterm() {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let tmp = tempfile::tempdir().unwrap();
        let session = tmp.path().join("session.json");
        let port = free_port();
        let mut dev = Proc::spawn(
            Command::new(BIN)
                .args([
                    "dev",
                    "examples/rbac-blog-reduced",
                    "--api-addr",
                    "127.0.0.1:0",
                ])
                .args(["--pdp-addr", "127.0.0.1:0", "--log-format", "json"])
                .args(["--metrics-addr", &format!("127.0.0.1:{port}")])
                .env("PERMIT_SYNC_DEV_SESSION", &session)
                .env_remove("PERMIT_LOCAL_API_KEY")
                .env_remove("RUST_LOG"),
        );
        until_ready(port).await;
        let out = dev.stdout();
        for expected in [
            "API:     http://127.0.0.1:",
            "PDP:     http://127.0.0.1:",
            "API key: permit_key_",
            "watching examples/rbac-blog-reduced",
        ] {
            assert!(out.contains(expected), "{expected} not in:\n{out}");
        }
        let key = out
            .lines()
            .find_map(|l| l.trim().strip_prefix("API key: "))
            .unwrap()
            .to_string();

        // `check` finds the embedded PDP through the session file, with no flags.
        let check = Command::new(BIN)
            .args([
                "check",
                "jane@example.com",
                "read",
                "post",
                "--tenant",
                "acme",
            ])
            .env("PERMIT_SYNC_DEV_SESSION", &session)
            .env_remove("PERMIT_API_KEY")
            .env_remove("PERMIT_PDP_URL")
            .output()
            .unwrap();
        assert_eq!(
            check.status.code(),
            Some(0),
            "{}{}",
            String::from_utf8_lossy(&check.stdout),
            String::from_utf8_lossy(&check.stderr)
        );

        let status = Command::new(BIN)
            .args(["status", "--addr", &format!("127.0.0.1:{port}")])
            .output()
            .unwrap();
        let table = String::from_utf8_lossy(&status.stdout);
        assert_eq!(status.status.code(), Some(0), "{table}");
        assert!(table.contains("8/8 synced"), "{table}");
        assert!(
            table.contains("RoleAssignment  jane@example.com/viewer/acme  synced"),
            "{table}"
        );

        let code = dev.terminate().await;
        assert!(code.success(), "{code:?}\n{}", dev.stderr());
        assert!(!session.exists(), "the session file is removed at exit");
        let logs = dev.stderr();
        assert!(!logs.is_empty());
        for line in logs.lines() {
            let v: serde_json::Value = serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("not a JSON log line ({e}): {line}"));
            assert!(v.get("level").is_some(), "{line}");
        }
        assert!(logs.contains("stopped"), "{logs}");
        // The generated key is printed once, to stdout, and nowhere else.
        assert_eq!(out.matches(&key).count(), 1);
        assert!(!logs.contains(&key));
    }

    #[tokio::test]
    async fn a_recognisable_api_key_appears_in_no_output_log_status_or_metric() {
        const SECRET: &str = "permit_key_SECRETSENTINEL0123456789abcdefSECRETSENTINEL";
        let _ = rustls::crypto::ring::default_provider().install_default();
        let permit = LocalPermit::start(LocalConfig {
            api_key: Some(SECRET.into()),
            ..LocalConfig::ephemeral()
        })
        .await
        .unwrap();
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("m");
        copy_blog(&dir);
        // A role whose permission Permit refuses: an API error message flows into status and logs.
        std::fs::write(
            dir.join("bad-role.yaml"),
            "apiVersion: permitsync.dev/v1alpha1\nkind: PermitRole\nmetadata:\n  name: auditor\nspec:\n  permissions: [\"post:read\"]\n  extends: [\"nobody\"]\n  attributes:\n    apiKey: not-a-secret-but-named-like-one\n",
        )
        .unwrap();
        let port = free_port();
        let mut watch = Proc::spawn(
            Command::new(BIN)
                .arg("watch")
                .arg(&dir)
                .args(["--api-url", &permit.api_url(), "--batch-window", "100ms"])
                .args(["--drift-interval", "500ms", "--max-backoff", "1s"])
                .args(["--metrics-addr", &format!("127.0.0.1:{port}")])
                .arg("--state-file")
                .arg(tmp.path().join("inventory.json"))
                .env("PERMIT_API_KEY", SECRET)
                .env("RUST_LOG", "debug"),
        );
        let start = Instant::now();
        let status_url = format!("http://127.0.0.1:{port}/status");
        // Wait until the good objects are synced and the bad role has its error.
        loop {
            if let Some((200, body)) = get(&status_url).await {
                let r: WatchStatus = serde_json::from_str(&body).unwrap();
                let synced = r
                    .objects
                    .iter()
                    .filter(|o| o.state == ObjectState::Synced)
                    .count();
                if synced >= 8 && r.syncs >= 3 {
                    break;
                }
            }
            assert!(start.elapsed() < DEADLINE, "no sync:\n{}", watch.stderr());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        // A broken edit and a drift, so those paths log too.
        std::fs::write(dir.join("tenants.yaml"), "kind: [\n").unwrap();
        let facts = permit.facts_url();
        reqwest::Client::new()
            .patch(format!("{facts}/tenants/acme"))
            .bearer_auth(SECRET)
            .json(&json!({"name": "by hand"}))
            .send()
            .await
            .unwrap();
        let start = Instant::now();
        while !watch.stderr().contains("drift") {
            assert!(
                start.elapsed() < DEADLINE,
                "no drift logged:\n{}",
                watch.stderr()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let (_, status) = get(&status_url).await.unwrap();
        let (_, metrics) = get(&format!("http://127.0.0.1:{port}/metrics"))
            .await
            .unwrap();
        let table = Command::new(BIN)
            .args(["status", "--addr", &format!("127.0.0.1:{port}")])
            .output()
            .unwrap();
        let table = String::from_utf8_lossy(&table.stdout).to_string();
        assert!(table.contains("auditor"), "{table}");
        assert!(watch.terminate().await.success());
        let (out, err) = (watch.stdout(), watch.stderr());
        assert!(err.contains("synced"), "{err}");
        for (what, text) in [
            ("stdout", &out),
            ("logs", &err),
            ("status", &status),
            ("metrics", &metrics),
            ("status table", &table),
        ] {
            assert!(
                !text.contains(SECRET),
                "the API key is in the {what}:\n{text}"
            );
            assert!(
                !text.contains("SECRETSENTINEL"),
                "part of the API key is in the {what}"
            );
        }
        permit.shutdown().await.unwrap();
    }

    #[tokio::test]
    async fn sigkill_at_any_point_then_restart_converges_without_duplicates() {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let permit = LocalPermit::start(LocalConfig::ephemeral()).await.unwrap();
        // Slow answers, so that kills land in the middle of a sync.
        permit.set_latency(Duration::from_millis(40));
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("m");
        copy_blog(&dir);
        for i in 0..12 {
            std::fs::write(
                dir.join(format!("t{i}.yaml")),
                tenant_yaml(&format!("t{i}"), "T"),
            )
            .unwrap();
        }
        let users: String = (0..300)
            .map(|i| user_yaml(&format!("k{i:03}"), "Kill"))
            .collect::<Vec<_>>()
            .join("---\n");
        std::fs::write(dir.join("many-users.yaml"), users).unwrap();
        let inventory = tmp.path().join("inventory.json");
        let key_file = tmp.path().join("key");
        std::fs::write(&key_file, permit.api_key()).unwrap();
        let spawn = |port: u16| {
            Proc::spawn(
                Command::new(BIN)
                    .arg("watch")
                    .arg(&dir)
                    .args(["--api-url", &permit.api_url(), "--batch-window", "50ms"])
                    .args(["--prune", "--metrics-addr", &format!("127.0.0.1:{port}")])
                    .arg("--api-key-file")
                    .arg(&key_file)
                    .arg("--state-file")
                    .arg(&inventory),
            )
        };
        // Kill after the first, second and third write of successive runs (a full sync of this
        // folder takes about six).
        for kill_after in [1u64, 2, 3] {
            let before = permit.counters().writes();
            let mut p = spawn(free_port());
            let start = Instant::now();
            while permit.counters().writes() < before + kill_after {
                if p.child.try_wait().unwrap().is_some() {
                    panic!("watch exited:\n{}", p.stderr());
                }
                if start.elapsed() > Duration::from_secs(5) {
                    break; // Converged before this kill point: nothing left to interrupt.
                }
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            p.child.kill().unwrap();
            p.child.wait().unwrap();
            println!(
                "SIGKILL after {} write(s) of this run: {} users, {} tenants in Permit",
                permit.counters().writes() - before,
                permit.store().users.len(),
                permit.store().tenants.len()
            );
            if std::fs::metadata(&inventory).is_ok() {
                let text = std::fs::read_to_string(&inventory).unwrap();
                serde_json::from_str::<serde_json::Value>(&text)
                    .unwrap_or_else(|e| panic!("inventory half-written after SIGKILL: {e}"));
            }
        }
        let port = free_port();
        let mut p = spawn(port);
        until_ready(port).await;
        {
            let store = permit.store();
            let keys: std::collections::BTreeSet<_> =
                store.users.rows().iter().map(|u| u.key.clone()).collect();
            assert_eq!(store.users.len(), keys.len(), "no duplicate users");
            assert_eq!(store.users.len(), 302);
            assert_eq!(store.tenants.len(), 1 + 1 + 12, "default, acme, t0..t11");
            assert_eq!(store.assignments.len(), 2);
            assert_eq!(store.roles.len(), 2);
        }
        // Everything created across the killed runs is owned: removing a file prunes it.
        std::fs::remove_file(dir.join("t0.yaml")).unwrap();
        let start = Instant::now();
        while permit.store().tenants.rows().iter().any(|t| t.key == "t0") {
            assert!(start.elapsed() < DEADLINE, "t0 not pruned:\n{}", p.stderr());
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(p.terminate().await.success());
        permit.shutdown().await.unwrap();
    }

    #[tokio::test]
    async fn sigterm_lets_the_batch_in_flight_finish() {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let permit = LocalPermit::start(LocalConfig::ephemeral()).await.unwrap();
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("m");
        copy_blog(&dir);
        let inventory = tmp.path().join("inventory.json");
        let port = free_port();
        let mut p = Proc::spawn(
            Command::new(BIN)
                .arg("watch")
                .arg(&dir)
                .args(["--api-url", &permit.api_url(), "--batch-window", "50ms"])
                .args(["--metrics-addr", &format!("127.0.0.1:{port}")])
                .arg("--state-file")
                .arg(&inventory)
                .env("PERMIT_API_KEY", permit.api_key()),
        );
        until_ready(port).await;
        // Slow answers; then a batch of a tenant (a single call) and 50 users (a bulk call after it).
        permit.set_latency(Duration::from_millis(400));
        let before = permit.counters().writes();
        std::fs::write(dir.join("globex.yaml"), tenant_yaml("globex", "Globex")).unwrap();
        for i in 0..50 {
            std::fs::write(
                dir.join(format!("s{i}.yaml")),
                user_yaml(&format!("s{i:02}"), "S"),
            )
            .unwrap();
        }
        let start = Instant::now();
        // The batch is in flight once its first write reached Permit.
        while permit.counters().writes() == before {
            assert!(start.elapsed() < DEADLINE, "no write:\n{}", p.stderr());
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert!(
            permit.store().users.len() < 52,
            "SIGTERM arrives before the users are written"
        );
        assert!(p.terminate().await.success(), "{}", p.stderr());
        assert_eq!(
            permit.store().users.len(),
            52,
            "the batch in flight finished"
        );
        assert!(
            permit
                .store()
                .tenants
                .rows()
                .iter()
                .any(|t| t.key == "globex")
        );
        let inv = std::fs::read_to_string(&inventory).unwrap();
        assert!(
            inv.contains("s49@example.com") || inv.contains("\"s49\""),
            "{inv}"
        );
        assert!(p.stderr().contains("shutting down"), "{}", p.stderr());
        permit.shutdown().await.unwrap();
    }

    #[tokio::test]
    async fn dev_does_not_echo_a_key_it_was_given() {
        const SECRET: &str = "permit_key_DEVSENTINEL0123456789abcdefDEVSENTINEL";
        let tmp = tempfile::tempdir().unwrap();
        let port = free_port();
        let mut dev = Proc::spawn(
            Command::new(BIN)
                .args([
                    "dev",
                    "examples/rbac-blog-reduced",
                    "--api-addr",
                    "127.0.0.1:0",
                ])
                .args(["--pdp-addr", "127.0.0.1:0"])
                .args(["--metrics-addr", &format!("127.0.0.1:{port}")])
                .env("PERMIT_SYNC_DEV_SESSION", tmp.path().join("s.json"))
                .env("PERMIT_LOCAL_API_KEY", SECRET)
                .env("RUST_LOG", "debug"),
        );
        until_ready(port).await;
        let (_, status) = get(&format!("http://127.0.0.1:{port}/status"))
            .await
            .unwrap();
        let (_, metrics) = get(&format!("http://127.0.0.1:{port}/metrics"))
            .await
            .unwrap();
        assert!(dev.terminate().await.success());
        let out = dev.stdout();
        assert!(out.contains("API key: (the one given"), "{out}");
        for text in [&out, &dev.stderr(), &status, &metrics] {
            assert!(!text.contains("DEVSENTINEL"), "the key leaked:\n{text}");
        }
    }
}

#[tokio::test]
async fn a_permitpdp_with_a_url_is_monitored() {
    let env = Env::started(|_| {}).await;
    let pdp = format!(
        "apiVersion: permitsync.dev/v1alpha1\nkind: PermitPDP\nmetadata:\n  name: local-pdp\nspec:\n  url: {}\n  probe:\n    intervalSeconds: 1\n",
        env.permit.pdp_url()
    );
    std::fs::write(env.path("pdp.yaml"), pdp).unwrap();
    eventually("the PDP reported healthy", || {
        env.status()
            .pdps
            .iter()
            .any(|p| p.name == "local-pdp" && p.healthy)
    })
    .await;
    let metrics = env.metrics.encode();
    assert!(metrics.contains("permit_pdp_up{"), "{metrics}");
    std::fs::remove_file(env.path("pdp.yaml")).unwrap();
    eventually("the PDP no longer monitored", || {
        env.status().pdps.is_empty()
    })
    .await;
    env.stop().await;
}

#[tokio::test]
async fn a_missing_path_is_not_ready_until_it_appears() {
    // A git-sync style layout: the manifest folder appears (is renamed into place) later.
    let (mut env, config) = Env::new().await;
    let root = manifests(&env.dir);
    let staged = env.dir.path().join("staged");
    std::fs::rename(&root, &staged).unwrap();
    env.start(config);
    eventually("the missing path reported", || {
        let s = env.status();
        s.syncs >= 1
            && !s.ready
            && s.message
                .as_deref()
                .unwrap_or("")
                .contains("cannot read the manifests")
    })
    .await;
    assert_eq!(env.counters().writes(), 0);
    std::fs::rename(&staged, &root).unwrap();
    env.ready().await;
    assert_eq!(env.tenant_name("acme").as_deref(), Some("Acme Inc."));
    // Its files are watched from then on.
    std::fs::write(env.path("globex.yaml"), tenant_yaml("globex", "Globex")).unwrap();
    eventually("a file added after the path appeared", || {
        env.tenant_name("globex").is_some()
    })
    .await;
    env.stop().await;
}

#[tokio::test]
async fn permit_failing_mid_run_is_not_ready_backs_off_then_converges() {
    use permit_sync::local::knobs::Faults;
    let env = Env::started(|_| {}).await;
    env.permit
        .set_faults(Faults {
            error_rate: 1.0,
            error_status: 503,
            ..Faults::default()
        })
        .unwrap();
    std::fs::write(env.path("globex.yaml"), tenant_yaml("globex", "Globex")).unwrap();
    eventually("not ready, errors per object", || {
        let s = env.status();
        !s.ready
            && s.objects
                .iter()
                .any(|o| o.key == "globex" && o.state == ObjectState::Error)
    })
    .await;
    let (ready, why) = env.shared.ready();
    assert!(!ready);
    assert!(
        why.unwrap_or_default().contains("503"),
        "the reason names the failure"
    );
    // Backoff: over two seconds, a handful of attempts, not a loop.
    let (c0, s0) = (env.counters(), env.status().syncs);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (c1, s1) = (env.counters(), env.status().syncs);
    println!(
        "during 2 s of 503s (backoff capped at 500 ms): {} attempts, {} requests",
        s1 - s0,
        c1.total - c0.total
    );
    assert!(s1 - s0 <= 6, "{} attempts", s1 - s0);
    assert!(c1.total - c0.total <= 80, "{:?}", delta(&c0, &c1));

    env.permit.set_faults(Faults::default()).unwrap();
    env.ready().await;
    eventually("converged", || {
        env.tenant_name("globex").is_some()
            && env
                .status()
                .objects
                .iter()
                .all(|o| o.state == ObjectState::Synced)
    })
    .await;
    env.stop().await;
}

#[tokio::test]
async fn a_second_writer_on_the_same_inventory_is_refused() {
    let (mut env, config) = Env::new().await;
    env.start(config.clone());
    env.ready().await;
    let second = tokio::time::timeout(
        DEADLINE,
        watch::run(config, Shared::default(), CancellationToken::new()),
    )
    .await
    .expect("refused at once");
    let err = format!("{:#}", second.unwrap_err());
    assert!(err.contains("locking inventory"), "{err}");
    env.stop().await;
}

#[tokio::test]
async fn an_outage_found_by_the_relist_stays_not_ready_until_permit_answers() {
    use permit_sync::local::knobs::Faults;
    let env = Env::started(|c| c.drift_interval = Duration::from_millis(300)).await;
    env.permit
        .set_faults(Faults {
            error_rate: 1.0,
            error_status: 502,
            ..Faults::default()
        })
        .unwrap();
    eventually("not ready", || !env.status().ready).await;
    let syncs = env.status().syncs;
    // Each retry lists Permit again; none of them may report ready while it fails.
    let start = Instant::now();
    while env.status().syncs < syncs + 3 {
        assert!(!env.status().ready, "ready while Permit fails");
        assert!(start.elapsed() < DEADLINE);
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(
        env.status()
            .objects
            .iter()
            .all(|o| o.state == ObjectState::Error)
    );
    env.permit.set_faults(Faults::default()).unwrap();
    env.ready().await;
    eventually("all synced again", || {
        env.status()
            .objects
            .iter()
            .all(|o| o.state == ObjectState::Synced)
    })
    .await;
    env.stop().await;
}
