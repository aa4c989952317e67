//! The controller never leaks the API key it reads from a Secret: the real binary on the real
//! kube-apiserver, with Permit failing some calls and refusing one object (so error messages
//! flow), and a scan of its logs (text and JSON, debug level), every custom resource's status,
//! every event in the namespace, and its /metrics, /readyz and /healthz answers.

#[path = "support/kube_env.rs"]
mod kube_env;

use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, DynamicObject, ListParams, PostParams};
use permit_sync::controller::finalizer::api_resource;
use permit_sync::kinds::Kind;
use permit_sync::local::knobs::{Faults, Knobs};
use permit_sync::local::{LocalConfig, LocalPermit};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

const KEY: &str = "permit_key_CTRLCANARYc0ntr0ll3r5ecret0123456789CTRLCANARY";
const SECRET_PART: &str = "CTRLCANARYc0ntr0ll3r5ecret0123456789CTRLCANARY";

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

async fn get(url: &str) -> Option<(u16, String)> {
    let r = reqwest::get(url).await.ok()?;
    Some((r.status().as_u16(), r.text().await.ok()?))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_controller_keeps_the_key_out_of_logs_status_events_and_metrics() {
    let Some(env) = kube_env::shared() else {
        return;
    };
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = env.client();
    let ns = env.namespace(&client, "secrets").await.unwrap();
    let permit = LocalPermit::start(LocalConfig {
        api_key: Some(KEY.into()),
        knobs: Knobs {
            faults: Faults {
                seed: 11,
                error_rate: 0.2,
                ..Faults::default()
            },
            ..Knobs::default()
        },
        ..LocalConfig::ephemeral()
    })
    .await
    .unwrap();
    let secret: Secret = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "permit-api-key", "namespace": ns},
        "stringData": {"api-key": KEY},
    }))
    .unwrap();
    Api::<Secret>::namespaced(client.clone(), &ns)
        .create(&PostParams::default(), &secret)
        .await
        .unwrap();

    let objects = [
        (
            Kind::PermitResource,
            "post",
            json!({"name": "Post", "actions": {"read": {}}}),
        ),
        (
            Kind::PermitRole,
            "viewer",
            json!({"name": "Viewer", "permissions": ["post:read"]}),
        ),
        // Permit refuses it (unknown parent role): its error reaches status, events and logs.
        (
            Kind::PermitRole,
            "auditor",
            json!({"name": "Auditor", "extends": ["nobody"],
            "attributes": {"apiKey": "named-like-a-secret"}}),
        ),
        (Kind::PermitTenant, "acme", json!({"name": "Acme"})),
        (
            Kind::PermitUser,
            "jane",
            json!({"key": "jane@example.com", "email": "jane@example.com",
            "roles": [{"role": "viewer", "tenant": "acme"}]}),
        ),
    ];

    let mut texts: Vec<(String, String)> = Vec::new();
    for format in ["text", "json"] {
        let port = free_port();
        let log = tempfile::NamedTempFile::new().unwrap();
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_permit-sync"))
            .args(["controller", "--no-pdp", &format!("--log-format={format}")])
            .arg(format!("--kubeconfig={}", env.kubeconfig().display()))
            .arg(format!("--namespace={ns}"))
            .arg(format!("--api-url={}", permit.api_url()))
            .arg(format!("--api-key-secret={ns}/permit-api-key"))
            .arg(format!("--metrics-addr=127.0.0.1:{port}"))
            .env_remove("PERMIT_API_KEY")
            .env("RUST_LOG", "debug")
            .stdout(log.reopen().unwrap())
            .stderr(log.reopen().unwrap())
            .spawn()
            .unwrap();
        let base = format!("http://127.0.0.1:{port}");
        if format == "text" {
            for (kind, name, spec) in &objects {
                let o: DynamicObject = serde_json::from_value(json!({
                    "apiVersion": "permitsync.dev/v1alpha1", "kind": kind.as_str(),
                    "metadata": {"name": name, "namespace": ns}, "spec": spec,
                }))
                .unwrap();
                Api::<DynamicObject>::namespaced_with(client.clone(), &ns, &api_resource(*kind))
                    .create(&PostParams::default(), &o)
                    .await
                    .unwrap();
            }
        }
        // Until every object has a status and the refused role reports why.
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            let mut all_have_status = true;
            let mut refused = false;
            for (kind, name, _) in &objects {
                let api = Api::<DynamicObject>::namespaced_with(
                    client.clone(),
                    &ns,
                    &api_resource(*kind),
                );
                let o = api.get(name).await.unwrap();
                let conds = o.data["status"]["conditions"].as_array().cloned();
                all_have_status &= conds.is_some();
                if *name == "auditor" {
                    refused = conds.unwrap_or_default().iter().any(|c| {
                        c["type"] == "Synced" && c["status"] == "False" && c["message"].is_string()
                    });
                }
            }
            if all_have_status && refused {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "no status within 90 s; log:\n{}",
                std::fs::read_to_string(log.path()).unwrap_or_default()
            );
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        for path in ["/metrics", "/readyz", "/healthz"] {
            let (_, body) = get(&format!("{base}{path}")).await.unwrap_or_default();
            texts.push((format!("{format}: {path}"), body));
        }
        // SAFETY: a signal to the child started above.
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(20);
        while child.try_wait().unwrap().is_none() {
            assert!(Instant::now() < deadline, "no exit after SIGTERM");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        texts.push((
            format!("{format}: log"),
            std::fs::read_to_string(log.path()).unwrap(),
        ));
    }

    for kind in [
        Kind::PermitResource,
        Kind::PermitRole,
        Kind::PermitTenant,
        Kind::PermitUser,
    ] {
        let list = Api::<DynamicObject>::namespaced_with(client.clone(), &ns, &api_resource(kind))
            .list(&ListParams::default())
            .await
            .unwrap();
        texts.push((
            format!("{kind} objects"),
            serde_json::to_string(&list.items).unwrap(),
        ));
    }
    for (label, events) in [
        (
            "events.k8s.io events",
            serde_json::to_value(
                Api::<k8s_openapi::api::events::v1::Event>::namespaced(client.clone(), &ns)
                    .list(&ListParams::default())
                    .await
                    .unwrap()
                    .items,
            )
            .unwrap(),
        ),
        (
            "core events",
            serde_json::to_value(
                Api::<k8s_openapi::api::core::v1::Event>::namespaced(client.clone(), &ns)
                    .list(&ListParams::default())
                    .await
                    .unwrap()
                    .items,
            )
            .unwrap(),
        ),
    ] {
        texts.push((label.into(), events.to_string()));
    }

    let leaks: Vec<&str> = texts
        .iter()
        .filter(|(_, t)| t.contains(KEY) || t.contains(SECRET_PART))
        .map(|(l, _)| l.as_str())
        .collect();
    assert!(leaks.is_empty(), "the API key appears in {leaks:?}");
    // The scan saw the real thing: statuses with the refusal, events, metrics, log lines.
    let all: String = texts.iter().map(|(_, t)| t.as_str()).collect();
    assert!(
        all.contains("auditor") && all.contains("permit_sync_"),
        "{all}"
    );
    let events: usize = texts
        .iter()
        .filter(|(l, _)| l.contains("events"))
        .map(|(_, t)| {
            serde_json::from_str::<Value>(t).map_or(0, |v| v.as_array().map_or(0, Vec::len))
        })
        .sum();
    assert!(events > 0, "no events were recorded");
    permit.shutdown().await.unwrap();
}
