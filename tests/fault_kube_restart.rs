//! Kubernetes faults under a running controller (the real binary): kube-apiserver and etcd both
//! stopped, twice, with Permit changing meanwhile; the process keeps running, its watches resume
//! when the control plane is back, and changes made after each return converge without a restart
//! of permit-sync. A private control plane: stopping the shared one would break other tests.

#[path = "support/kube_env.rs"]
mod kube_env;

use kube::api::{Api, DynamicObject, Patch, PatchParams, PostParams};
use permit_sync::controller::finalizer::api_resource;
use permit_sync::kinds::Kind;
use permit_sync::local::{LocalConfig, LocalPermit};
use serde_json::json;
use std::time::{Duration, Instant};

async fn until(what: &str, secs: u64, mut f: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !f().await {
        assert!(
            Instant::now() < deadline,
            "timed out after {secs} s: {what}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_controller_survives_apiserver_and_etcd_restarts_and_converges() {
    let Some(env) = kube_env::KubeEnv::start()
        .await
        .expect("private control plane")
    else {
        return;
    };
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = env.client();
    let ns = env.namespace(&client, "restart").await.unwrap();
    let permit = LocalPermit::start(LocalConfig::ephemeral()).await.unwrap();
    let tenants = Api::<DynamicObject>::namespaced_with(
        client.clone(),
        &ns,
        &api_resource(Kind::PermitTenant),
    );
    let tenant_name = |key: &str| permit.store().tenants.get(key).map(|t| t.name.clone());
    let log = tempfile::NamedTempFile::new().unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_permit-sync"))
        .args(["controller", "--no-pdp"])
        .arg(format!("--kubeconfig={}", env.kubeconfig().display()))
        .arg(format!("--namespace={ns}"))
        .arg(format!("--api-url={}", permit.api_url()))
        .env("PERMIT_API_KEY", permit.api_key())
        .env("RUST_LOG", "info")
        .stdout(log.reopen().unwrap())
        .stderr(log.reopen().unwrap())
        .spawn()
        .unwrap();
    let logs = || std::fs::read_to_string(log.path()).unwrap_or_default();

    let create = async |name: &str, display: &str| {
        let o: DynamicObject = serde_json::from_value(json!({
            "apiVersion": "permitsync.dev/v1alpha1", "kind": "PermitTenant",
            "metadata": {"name": name, "namespace": ns}, "spec": {"name": display},
        }))
        .unwrap();
        tenants.create(&PostParams::default(), &o).await.unwrap();
    };
    create("acme", "Acme").await;
    until("acme in Permit", 60, async || {
        tenant_name("acme").as_deref() == Some("Acme")
    })
    .await;

    for round in 1..=2 {
        // Both stopped (apiserver first, then etcd), down for a while, then back on the same
        // ports and data.
        env.stop();
        assert!(!env.is_running());
        // Permit changes meanwhile too (someone renames the tenant by hand).
        permit_sync_drift(&permit, "acme").await;
        tokio::time::sleep(Duration::from_secs(8)).await;
        assert!(
            child.try_wait().unwrap().is_none(),
            "the controller exited while the control plane was down:\n{}",
            logs()
        );
        env.start_again().await.expect("control plane back");

        // A new object and a change to an old one, made after the return, both converge.
        let name = format!("round-{round}");
        create(&name, &format!("Round {round}")).await;
        tenants
            .patch(
                "acme",
                &PatchParams::default(),
                &Patch::Merge(json!({"spec": {"name": format!("Acme {round}")}})),
            )
            .await
            .unwrap();
        let want = format!("Round {round}");
        let acme = format!("Acme {round}");
        until(&format!("round {round} converged"), 90, async || {
            tenant_name(&name).as_deref() == Some(want.as_str())
                && tenant_name("acme").as_deref() == Some(acme.as_str())
        })
        .await;
        assert!(
            child.try_wait().unwrap().is_none(),
            "the controller exited:\n{}",
            logs()
        );
    }
    // SAFETY: a signal to the child started above.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let status = child.wait().unwrap();
    assert!(status.success(), "{status}\n{}", logs());
    env.stop();
    permit.shutdown().await.unwrap();
}

/// Someone renames the tenant in Permit directly.
async fn permit_sync_drift(permit: &permit_sync::local::LocalHandle, key: &str) {
    let r = reqwest::Client::new()
        .patch(format!("{}/tenants/{key}", permit.facts_url()))
        .bearer_auth(permit.api_key())
        .json(&json!({"name": "changed by hand"}))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.status());
}
