//! State safety: the inventory file is replaced atomically (a reader never sees half of one), and
//! an inventory that is corrupt, truncated, empty, unreadable, of another format or environment,
//! or missing never leads to a deletion: `plan`/`apply --prune` say prune is disabled and why, and
//! the damaged file is kept for a person to look at. Runs the real binary against a local Permit.

use permit_sync::inventory::{Entry, Inventory, Loaded, StateFile};
use permit_sync::kinds::Kind;
use permit_sync::local::{LocalConfig, LocalHandle, LocalPermit};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_permit-sync");

const POLICY: &str = r#"
apiVersion: permitsync.dev/v1alpha1
kind: PermitResource
metadata: {name: post}
spec: {name: Post, actions: {read: {}}}
---
apiVersion: permitsync.dev/v1alpha1
kind: PermitRole
metadata: {name: viewer}
spec: {name: Viewer, permissions: ["post:read"]}
"#;

const PEOPLE: &str = r#"
apiVersion: permitsync.dev/v1alpha1
kind: PermitTenant
metadata: {name: acme}
spec: {name: Acme}
---
apiVersion: permitsync.dev/v1alpha1
kind: PermitUser
metadata: {name: jane}
spec: {email: jane@example.com, roles: [{role: viewer, tenant: acme}]}
"#;

struct Env {
    permit: LocalHandle,
    _tmp: tempfile::TempDir,
    dir: PathBuf,
}

impl Env {
    async fn start() -> Env {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let permit = LocalPermit::start(LocalConfig::ephemeral()).await.unwrap();
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().to_path_buf();
        for (name, files) in [("all", vec![POLICY, PEOPLE]), ("fewer", vec![POLICY])] {
            std::fs::create_dir_all(dir.join(name)).unwrap();
            for (i, text) in files.iter().enumerate() {
                std::fs::write(dir.join(name).join(format!("{i}.yaml")), text).unwrap();
            }
        }
        Env {
            permit,
            _tmp: tmp,
            dir,
        }
    }

    fn state(&self) -> PathBuf {
        self.dir.join("state/inventory.json")
    }

    fn run(&self, args: &[&str], manifests: &str) -> (Output, String) {
        let out = Command::new(BIN)
            .args(args)
            .arg(self.dir.join(manifests))
            .arg("--state-file")
            .arg(self.state())
            .args(["--api-url", &self.permit.api_url()])
            .env("PERMIT_API_KEY", self.permit.api_key())
            .env_remove("PERMIT_API_KEY_FILE")
            .env_remove("PERMIT_SYNC_STATE_FILE")
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out, text)
    }

    /// Keys of every object in Permit, by kind.
    fn live(&self) -> Vec<String> {
        let s = self.permit.store();
        let mut keys: Vec<String> = Vec::new();
        keys.extend(
            s.resources
                .rows()
                .iter()
                .map(|r| format!("resource {}", r.key)),
        );
        keys.extend(s.roles.rows().iter().map(|r| format!("role {}", r.key)));
        keys.extend(s.tenants.rows().iter().map(|r| format!("tenant {}", r.key)));
        keys.extend(s.users.rows().iter().map(|r| format!("user {}", r.key)));
        keys.push(format!("{} assignments", s.assignments.len()));
        keys.sort();
        keys
    }
}

/// Files next to the state file whose name marks them as set aside.
fn set_aside(state: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(state.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().contains(".unusable-"))
        .collect()
}

#[derive(Debug, Clone, Copy)]
enum Damage {
    Corrupt,
    Truncated,
    Empty,
    Directory,
    NewerFormat,
    OtherEnvironment,
    Missing,
}

fn damage(path: &Path, how: Damage) {
    let good = std::fs::read_to_string(path).unwrap();
    match how {
        Damage::Corrupt => std::fs::write(path, "{ not json").unwrap(),
        Damage::Truncated => std::fs::write(path, &good[..good.len() / 2]).unwrap(),
        Damage::Empty => std::fs::write(path, "").unwrap(),
        Damage::Directory => {
            std::fs::remove_file(path).unwrap();
            std::fs::create_dir(path).unwrap();
        }
        Damage::NewerFormat => {
            std::fs::write(path, good.replace("\"version\": 1", "\"version\": 99")).unwrap()
        }
        Damage::OtherEnvironment => {
            let mut v: serde_json::Value = serde_json::from_str(&good).unwrap();
            v["environment"] = "other-org/other-project/other-env".into();
            std::fs::write(path, v.to_string()).unwrap();
        }
        Damage::Missing => std::fs::remove_file(path).unwrap(),
    }
}

/// What the output must say for each damage.
fn reason(how: Damage) -> &'static str {
    match how {
        Damage::Corrupt | Damage::Truncated | Damage::Empty => "is corrupt",
        Damage::Directory => "cannot read inventory",
        Damage::NewerFormat => "has format version 99",
        Damage::OtherEnvironment => "belongs to environment other-org/other-project/other-env",
        Damage::Missing => "no inventory",
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_or_missing_inventory_never_deletes_and_says_why() {
    for how in [
        Damage::Corrupt,
        Damage::Truncated,
        Damage::Empty,
        Damage::Directory,
        Damage::NewerFormat,
        Damage::OtherEnvironment,
        Damage::Missing,
    ] {
        let env = Env::start().await;
        let (out, text) = env.run(&["apply", "--prune", "--yes"], "all");
        assert!(out.status.success(), "{how:?}: {text}");
        let everything = env.live();
        damage(&env.state(), how);
        let damaged = std::fs::read(env.state()).ok();

        // The plan shows no deletion and says why prune is off.
        let (out, text) = env.run(&["plan", "--prune", "--output", "json"], "fewer");
        assert!(out.status.success(), "{how:?}: {text}");
        let plan: serde_json::Value =
            serde_json::from_str(&String::from_utf8_lossy(&out.stdout)).unwrap();
        assert_eq!(plan["summary"]["delete"], 0, "{how:?}: {text}");
        assert!(
            text.contains("prune skipped") && text.contains(reason(how)),
            "{how:?}: {text}"
        );

        // apply --prune --yes deletes nothing, says why, and keeps the damaged file aside.
        let (out, text) = env.run(&["apply", "--prune", "--yes"], "fewer");
        assert!(out.status.success(), "{how:?}: {text}");
        assert!(text.contains(reason(how)), "{how:?}: {text}");
        assert_eq!(
            env.live(),
            everything,
            "{how:?}: something was deleted\n{text}"
        );
        if let Some(bytes) = &damaged {
            let aside = set_aside(&env.state());
            assert_eq!(aside.len(), 1, "{how:?}: {aside:?}");
            assert_eq!(&std::fs::read(&aside[0]).unwrap(), bytes, "{how:?}");
        }
        // The new inventory is trusted and owns what is declared now; what was left behind stays
        // in Permit, unowned, on the next prune too.
        match StateFile::new(env.state()).load(None) {
            Loaded::Ok(inv) => {
                assert!(inv.contains(Kind::PermitRole, "viewer"), "{how:?}");
                assert!(!inv.contains(Kind::PermitUser, "jane"), "{how:?}");
            }
            other => panic!("{how:?}: the new inventory is {other:?}"),
        }
        let (out, text) = env.run(&["apply", "--prune", "--yes"], "fewer");
        assert!(out.status.success(), "{how:?}: {text}");
        assert_eq!(env.live(), everything, "{how:?}: {text}");
    }
}

/// A reader racing a writer sees the old inventory or the new one, never a torn file.
#[test]
fn inventory_replacement_is_atomic_for_readers() {
    let tmp = tempfile::tempdir().unwrap();
    let file = StateFile::new(tmp.path().join("inventory.json"));
    let inventory = |n: usize| {
        let mut inv = Inventory::new(Some("o/p/e".into()));
        for i in 0..n {
            inv.insert(
                Kind::PermitUser,
                format!("user-{i}@example.com"),
                Entry {
                    hash: i as u64,
                    orphan: false,
                },
            );
        }
        inv
    };
    let (small, large) = (inventory(3), inventory(20_000));
    file.save(&small).unwrap();
    let done = std::sync::atomic::AtomicBool::new(false);
    let reads = std::thread::scope(|s| {
        let reader = s.spawn(|| {
            let mut reads = 0u64;
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                match file.load(Some("o/p/e")) {
                    Loaded::Ok(inv) => assert!(inv == small || inv == large, "a mixed inventory"),
                    other => panic!("a reader saw {other:?}"),
                }
                reads += 1;
            }
            reads
        });
        for i in 0..60 {
            file.save(if i % 2 == 0 { &large } else { &small }).unwrap();
        }
        done.store(true, std::sync::atomic::Ordering::Relaxed);
        reader.join().unwrap()
    });
    assert!(reads > 0);
    // No temporary files are left beside it.
    let names: Vec<_> = std::fs::read_dir(tmp.path()).unwrap().collect();
    assert_eq!(names.len(), 1, "{names:?}");
}
