//! Attributes Permit reports as `null` against a manifest's `attributes: {}`, over real HTTP
//! against the local Permit, which answers `null` for unset attributes as Permit does (permit-node
//! `src/tests/e2e/rbac.e2e.spec.ts`: `t.is(tenant.attributes, null)`). The plan shows what
//! applying would really change, and a re-plan after an apply shows nothing: no perpetual diff.

use permit_sync::commands::apply::{self, ApplyArgs};
use permit_sync::commands::plan::{self, PlanArgs};
use permit_sync::commands::{ConnectionArgs, OwnershipArgs, SyncArgs};
use permit_sync::kinds::{Object, Origin};
use permit_sync::local::{LocalConfig, LocalPermit};
use permit_sync::plan::Mode;
use permit_sync::plan::render::{Format, NO_CHANGES};
use serde_json::{Value, json};
use std::path::PathBuf;

fn doc(kind: &str, name: &str, spec: Value) -> (Origin, Object) {
    let v = json!({"apiVersion": "permitsync.dev/v1alpha1", "kind": kind,
        "metadata": {"name": name}, "spec": spec});
    let origin = Origin::File {
        path: std::path::Path::new("test.yaml").into(),
        line: 1,
        column: 1,
    };
    let object = match kind {
        "PermitTenant" => Object::Tenant(serde_json::from_value(v).unwrap()),
        "PermitUser" => Object::User(serde_json::from_value(v).unwrap()),
        other => panic!("no such kind {other}"),
    };
    (origin, object)
}

fn manifests(attributes: Option<Value>) -> Vec<(Origin, Object)> {
    let mut tenant = json!({"name": "Acme"});
    let mut user = json!({"email": "jane@example.com"});
    if let Some(a) = attributes {
        tenant["attributes"] = a.clone();
        user["attributes"] = a;
    }
    vec![
        doc("PermitTenant", "acme", tenant),
        doc("PermitUser", "jane@example.com", user),
    ]
}

#[tokio::test]
async fn null_attributes_meet_an_empty_map_without_a_perpetual_diff() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let permit = LocalPermit::start(LocalConfig::ephemeral()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("api-key"), permit.api_key()).unwrap();
    let sync = SyncArgs {
        path: PathBuf::from("manifests"),
        ownership: OwnershipArgs {
            prune: false,
            mode: Mode::Owned,
            allow_empty: false,
            max_deletions: None,
            state_file: dir.path().join("state/inventory.json"),
        },
        connection: ConnectionArgs {
            api_url: permit.api_url(),
            api_key_file: Some(dir.path().join("api-key")),
            rate_limits: vec![],
            timeout: 10,
        },
    };
    let plan_args = PlanArgs {
        sync: sync.clone(),
        output: Format::Table,
        detailed_exitcode: true,
    };
    let apply_args = ApplyArgs {
        sync,
        dry_run: false,
        yes: true,
        output: Format::Table,
        report: None,
        concurrency: 4,
    };
    let plan = |objects: Vec<(Origin, Object)>| {
        let args = &plan_args;
        async move {
            let mut out = Vec::new();
            let code = plan::run(
                args,
                &permit_sync::commands::desired(&objects).unwrap(),
                &mut out,
            )
            .await
            .unwrap();
            (code, String::from_utf8(out).unwrap())
        }
    };
    let apply = |objects: Vec<(Origin, Object)>| {
        let args = &apply_args;
        async move {
            let mut out = Vec::new();
            let code = apply::run(
                args,
                permit_sync::commands::desired(&objects).unwrap(),
                &mut out,
            )
            .await
            .unwrap();
            (code, String::from_utf8(out).unwrap())
        }
    };
    let live_attributes = || async {
        let http = reqwest::Client::new();
        let get = |path: String| {
            http.get(format!("{}{path}", permit.facts_url()))
                .bearer_auth(permit.api_key())
                .send()
        };
        let t: Value = get("/tenants/acme".into())
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let u: Value = get("/users/jane@example.com".into())
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        (t["attributes"].clone(), u["attributes"].clone())
    };

    // Created without attributes: Permit holds null.
    let (code, out) = apply(manifests(None)).await;
    assert_eq!(code, 0, "{out}");
    assert_eq!(live_attributes().await, (Value::Null, Value::Null));

    // `attributes: {}` declares what null already is: nothing to change, on every run.
    for _ in 0..2 {
        let (code, out) = plan(manifests(Some(json!({})))).await;
        assert_eq!(code, 0, "{out}");
        assert!(out.contains(NO_CHANGES), "{out}");
    }

    // A real difference is planned, from null as Permit holds it, and converges once applied.
    let gold = Some(json!({"tier": "gold"}));
    let (code, out) = plan(manifests(gold.clone())).await;
    assert_eq!(code, 2, "{out}");
    // The live side is shown as Permit has it: unset (the table writes null as `—`).
    assert!(out.contains(r#"attributes: — -> {"tier":"gold"}"#), "{out}");
    let (code, out) = apply(manifests(gold.clone())).await;
    assert_eq!(code, 0, "{out}");
    let (code, out) = plan(manifests(gold)).await;
    assert_eq!(code, 0, "{out}");

    // Back to `{}`: a real change (the map is cleared), then converged.
    let (code, out) = plan(manifests(Some(json!({})))).await;
    assert_eq!(code, 2, "{out}");
    let (code, out) = apply(manifests(Some(json!({})))).await;
    assert_eq!(code, 0, "{out}");
    assert_eq!(live_attributes().await, (json!({}), json!({})));
    let (code, out) = plan(manifests(Some(json!({})))).await;
    assert_eq!((code, out.contains(NO_CHANGES)), (0, true), "{out}");
    permit.shutdown().await.unwrap();
}
