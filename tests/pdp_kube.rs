//! The PDP on a real kube-apiserver: `pdp::reconcile` applies the Deployment, Service and
//! PodDisruptionBudget server-side, converges on spec changes, owns its children, derives
//! `Available` from the Deployment's status and `Healthy` from its own probe, with events.
//!
//! There is no controller-manager: Deployments get no pods and nothing is garbage-collected, so the
//! cascade is shown by the ownerReferences and availability by writing the Deployment's status.

#[macro_use]
#[path = "support/kube_env.rs"]
mod kube_env;
#[path = "support/events.rs"]
mod events;
#[path = "support/permit.rs"]
mod permit;

use axum::http::StatusCode;
use events::{events, reasons};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::{Client, Resource, ResourceExt};
use permit_sync::kinds::{Condition, PermitPDP};
use permit_sync::metrics::Metrics;
use permit_sync::pdp::{self, Context};
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

async fn create(client: &Client, ns: &str, name: &str, spec: Value) -> PermitPDP {
    let pdp: PermitPDP = serde_json::from_value(json!({
        "apiVersion": "permitsync.dev/v1alpha1",
        "kind": "PermitPDP",
        "metadata": {"name": name},
        "spec": spec,
    }))
    .unwrap();
    Api::<PermitPDP>::namespaced(client.clone(), ns)
        .create(&PostParams::default(), &pdp)
        .await
        .expect("PermitPDP created")
}

async fn get(client: &Client, ns: &str, name: &str) -> PermitPDP {
    Api::<PermitPDP>::namespaced(client.clone(), ns)
        .get(name)
        .await
        .expect("PermitPDP read")
}

/// Merge-patches the spec (as `kubectl edit` would) and returns the updated object.
async fn edit(client: &Client, ns: &str, name: &str, spec: Value) -> PermitPDP {
    Api::<PermitPDP>::namespaced(client.clone(), ns)
        .patch(
            name,
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": spec})),
        )
        .await
        .expect("PermitPDP patched")
}

/// Reconciles the current object, then returns it as stored afterwards.
async fn reconcile(client: &Client, ctx: &Context, ns: &str, name: &str) -> PermitPDP {
    let pdp = get(client, ns, name).await;
    pdp::reconcile(client, &pdp, ctx)
        .await
        .expect("reconcile succeeds");
    get(client, ns, name).await
}

fn condition(pdp: &PermitPDP, type_: &str) -> Condition {
    pdp.status
        .as_ref()
        .and_then(|s| s.conditions.iter().find(|c| c.type_ == type_))
        .cloned()
        .unwrap_or_else(|| panic!("no {type_} condition in {:?}", pdp.status))
}

/// A closed port: connection refused at once.
fn closed_url() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    drop(l);
    url
}

fn context(client: &Client, metrics: &Metrics) -> Context {
    Context::new(client.clone(), None, metrics.pdp.clone())
}

fn assert_owned_by(
    meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
    pdp: &PermitPDP,
    what: &str,
) {
    let owners = meta.owner_references.clone().unwrap_or_default();
    assert_eq!(owners.len(), 1, "{what}: one owner");
    let o = &owners[0];
    assert_eq!(o.uid, pdp.uid().unwrap(), "{what}: owner uid");
    assert_eq!(o.kind, "PermitPDP", "{what}");
    assert_eq!(o.name, pdp.name_any(), "{what}");
    assert_eq!(o.controller, Some(true), "{what}: controller");
    assert_eq!(
        o.block_owner_deletion,
        Some(true),
        "{what}: blockOwnerDeletion"
    );
    let managers: Vec<_> = meta
        .managed_fields
        .iter()
        .flatten()
        .filter(|m| m.manager.as_deref() == Some("permit-sync"))
        .collect();
    assert!(
        managers
            .iter()
            .any(|m| m.operation.as_deref() == Some("Apply")),
        "{what}: applied server-side by permit-sync: {:?}",
        meta.managed_fields
    );
}

#[tokio::test]
async fn children_match_the_spec_converge_and_are_owned() {
    let env = kube_env!();
    let (client, ns) = env.setup("pdp-children").await;
    let metrics = Metrics::new();
    let ctx = context(&client, &metrics);
    let created = create(
        &client,
        &ns,
        "pdp",
        json!({
            "replicas": 2,
            "image": {"repository": "permitio/pdp-v2", "tag": "0.9.6"},
            "apiKeySecretRef": {"name": "permit-api-key"},
            "offlineMode": {"enabled": true, "sizeLimit": "100Mi"},
            "probe": {"url": closed_url()},
        }),
    )
    .await;
    let pdp = reconcile(&client, &ctx, &ns, "pdp").await;

    // What the apiserver stored equals what render produced, field by field, for the fields we set.
    let want = pdp::render::render(&created, None).unwrap();
    let deployments = Api::<Deployment>::namespaced(client.clone(), &ns);
    let services = Api::<Service>::namespaced(client.clone(), &ns);
    let pdbs = Api::<PodDisruptionBudget>::namespaced(client.clone(), &ns);
    let dep = deployments.get("pdp").await.expect("Deployment created");
    assert_owned_by(&dep.metadata, &pdp, "Deployment");
    assert_eq!(dep.metadata.labels, want.deployment.metadata.labels);
    assert_eq!(dep.spec.replicas, Some(2));
    assert_eq!(dep.spec.selector, want.deployment.spec.selector);
    assert_eq!(dep.spec.strategy, want.deployment.spec.strategy);
    let got_pod = dep.spec.template.spec.clone().unwrap();
    let want_pod = want.deployment.spec.template.spec.clone().unwrap();
    assert_eq!(got_pod.security_context, want_pod.security_context);
    assert_eq!(got_pod.automount_service_account_token, Some(false));
    assert_eq!(
        got_pod.volumes.as_ref().map(Vec::len),
        Some(2),
        "tmp + backup"
    );
    let (got_c, want_c) = (&got_pod.containers[0], &want_pod.containers[0]);
    assert_eq!(got_c.image.as_deref(), Some("permitio/pdp-v2:0.9.6"));
    assert_eq!(got_c.env, want_c.env);
    assert_eq!(got_c.ports, want_c.ports);
    assert_eq!(got_c.security_context, want_c.security_context);
    assert_eq!(got_c.resources, want_c.resources);
    assert_eq!(got_c.volume_mounts, want_c.volume_mounts);
    for (got, want) in [
        (&got_c.readiness_probe, &want_c.readiness_probe),
        (&got_c.liveness_probe, &want_c.liveness_probe),
        (&got_c.startup_probe, &want_c.startup_probe),
    ] {
        let (g, w) = (got.clone().unwrap(), want.clone().unwrap());
        assert_eq!(g.http_get.unwrap().path, w.http_get.unwrap().path);
        assert_eq!(g.period_seconds, w.period_seconds);
        assert_eq!(g.failure_threshold, w.failure_threshold);
    }

    let svc = services.get("pdp").await.expect("Service created");
    assert_owned_by(&svc.metadata, &pdp, "Service");
    let svc_spec = svc.spec.unwrap();
    let port = &svc_spec.ports.unwrap()[0];
    assert_eq!(
        (port.port, port.target_port.clone()),
        (
            7766,
            Some(k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(7000))
        )
    );
    assert_eq!(svc_spec.selector, want.service.spec.unwrap().selector);

    let pdb = pdbs.get("pdp").await.expect("PDB created with 2 replicas");
    assert_owned_by(&pdb.metadata, &pdp, "PodDisruptionBudget");
    assert_eq!(pdb.spec, want.pdb.unwrap().spec);

    // Replicas 2 → 1: the PDB goes away.
    edit(&client, &ns, "pdp", json!({"replicas": 1})).await;
    reconcile(&client, &ctx, &ns, "pdp").await;
    assert_eq!(deployments.get("pdp").await.unwrap().spec.replicas, Some(1));
    assert!(
        pdbs.get_opt("pdp").await.unwrap().is_none(),
        "PDB deleted at 1 replica"
    );

    // 1 → 3: it comes back.
    edit(&client, &ns, "pdp", json!({"replicas": 3})).await;
    reconcile(&client, &ctx, &ns, "pdp").await;
    assert_eq!(deployments.get("pdp").await.unwrap().spec.replicas, Some(3));
    assert!(
        pdbs.get_opt("pdp").await.unwrap().is_some(),
        "PDB back at 3 replicas"
    );

    // A field someone else changed on the Deployment is put back; the tag change converges.
    deployments
        .patch(
            "pdp",
            &PatchParams::apply("someone-else").force(),
            &Patch::Apply(json!({
                "apiVersion": "apps/v1", "kind": "Deployment",
                "metadata": {"name": "pdp", "annotations": {"team": "authz"}},
                "spec": {"replicas": 7, "selector": dep.spec.selector, "template": {
                    "metadata": {"labels": dep.spec.template.metadata.as_ref().unwrap().labels},
                    "spec": {"containers": [{"name": "pdp", "image": "permitio/pdp-v2:0.9.6"}]}}},
            })),
        )
        .await
        .expect("another manager's apply");
    edit(&client, &ns, "pdp", json!({"image": {"tag": "0.9.7"}})).await;
    let pdp = reconcile(&client, &ctx, &ns, "pdp").await;
    let dep = deployments.get("pdp").await.unwrap();
    assert_eq!(dep.spec.replicas, Some(3), "our replicas win (force)");
    let c = &dep.spec.template.spec.unwrap().containers[0];
    assert_eq!(c.image.as_deref(), Some("permitio/pdp-v2:0.9.7"));
    assert_eq!(
        dep.metadata.labels.unwrap()["app.kubernetes.io/version"],
        "0.9.7"
    );
    assert_eq!(
        dep.metadata
            .annotations
            .unwrap()
            .get("team")
            .map(String::as_str),
        Some("authz"),
        "others' fields are left alone"
    );
    assert_eq!(
        pdp.status.as_ref().unwrap().observed_generation,
        pdp.metadata.generation
    );

    // Deleting the PermitPDP cascades: every child is controlled by it (the garbage collector,
    // absent here, deletes them through these references).
    for meta in [
        deployments.get("pdp").await.unwrap().metadata,
        services.get("pdp").await.unwrap().metadata,
        pdbs.get("pdp").await.unwrap().metadata,
    ] {
        assert_owned_by(&meta, &pdp, meta.name.as_deref().unwrap());
    }
}

#[tokio::test]
async fn deployment_status_flips_available() {
    let env = kube_env!();
    let (client, ns) = env.setup("pdp-available").await;
    let metrics = Metrics::new();
    let ctx = context(&client, &metrics);
    create(
        &client,
        &ns,
        "pdp",
        json!({"apiKeySecretRef": {"name": "k"}, "probe": {"url": closed_url()}}),
    )
    .await;
    let pdp = reconcile(&client, &ctx, &ns, "pdp").await;
    let available = condition(&pdp, "Available");
    assert_eq!(available.status, "Unknown", "{available:?}");
    assert_eq!(available.reason.as_deref(), Some("DeploymentPending"));
    assert_eq!(pdp.status.as_ref().unwrap().ready_replicas, Some(0));

    // What the deployment controller would write once the pod is ready.
    let deployments = Api::<Deployment>::namespaced(client.clone(), &ns);
    let set_status = |ok: bool| {
        json!({"status": {
            "observedGeneration": 1, "replicas": 1, "updatedReplicas": 1,
            "readyReplicas": if ok { 1 } else { 0 }, "availableReplicas": if ok { 1 } else { 0 },
            "conditions": [{
                "type": "Available", "status": if ok { "True" } else { "False" },
                "reason": if ok { "MinimumReplicasAvailable" } else { "MinimumReplicasUnavailable" },
                "message": if ok { "Deployment has minimum availability." } else { "Deployment does not have minimum availability." },
            }],
        }})
    };
    deployments
        .patch_status(
            "pdp",
            &PatchParams::default(),
            &Patch::Merge(set_status(true)),
        )
        .await
        .expect("Deployment status written");
    let pdp = reconcile(&client, &ctx, &ns, "pdp").await;
    let available = condition(&pdp, "Available");
    assert_eq!(available.status, "True", "{available:?}");
    assert_eq!(
        available.reason.as_deref(),
        Some("MinimumReplicasAvailable")
    );
    assert!(
        available
            .message
            .as_deref()
            .unwrap()
            .starts_with("1/1 replicas ready")
    );
    assert_eq!(available.observed_generation, pdp.metadata.generation);
    assert_eq!(pdp.status.as_ref().unwrap().ready_replicas, Some(1));
    let first_transition = available.last_transition_time.clone();
    assert!(first_transition.is_some());

    deployments
        .patch_status(
            "pdp",
            &PatchParams::default(),
            &Patch::Merge(set_status(false)),
        )
        .await
        .unwrap();
    let pdp = reconcile(&client, &ctx, &ns, "pdp").await;
    let available = condition(&pdp, "Available");
    assert_eq!(available.status, "False");
    assert_eq!(
        available.reason.as_deref(),
        Some("MinimumReplicasUnavailable")
    );
    assert_eq!(pdp.status.as_ref().unwrap().ready_replicas, Some(0));

    let evs = reasons(&events(&client, &ns, "pdp").await);
    assert!(evs.contains(&"PdpAvailable".to_string()), "{evs:?}");
    assert!(evs.contains(&"PdpUnavailable".to_string()), "{evs:?}");
}

#[tokio::test]
async fn probe_of_the_embedded_pdp_is_healthy() {
    let env = kube_env!();
    let (client, ns) = env.setup("pdp-healthy").await;
    let local = permit::local().await;
    let metrics = Metrics::new();
    let ctx = context(&client, &metrics);
    create(
        &client,
        &ns,
        "pdp",
        json!({"apiKeySecretRef": {"name": "k"}, "probe": {"url": local.pdp_url(), "intervalSeconds": 5}}),
    )
    .await;
    let before = get(&client, &ns, "pdp").await;
    let action = pdp::reconcile(&client, &before, &ctx).await.unwrap();
    assert_eq!(
        action,
        kube::runtime::controller::Action::requeue(std::time::Duration::from_secs(5)),
        "the next probe after spec.probe.intervalSeconds"
    );
    let pdp = get(&client, &ns, "pdp").await;
    let healthy = condition(&pdp, "Healthy");
    assert_eq!(healthy.status, "True", "{healthy:?}");
    assert_eq!(healthy.reason.as_deref(), Some("ProbeSucceeded"));
    assert!(
        healthy
            .message
            .as_deref()
            .unwrap()
            .contains(&format!("{}/healthy", local.pdp_url()))
    );
    let status = pdp.status.clone().unwrap();
    assert!(status.last_probe_time.is_some());
    assert!(status.last_probe_latency_ms.is_some());

    let text = metrics.encode();
    let up = format!("permit_pdp_up{{namespace=\"{ns}\",name=\"pdp\"}} 1");
    assert!(text.contains(&up), "{up} in\n{text}");
    assert!(
        text.contains(&format!(
            "permit_pdp_probe_duration_seconds_count{{namespace=\"{ns}\",name=\"pdp\"}} 1"
        )),
        "{text}"
    );

    let evs = events(&client, &ns, "pdp").await;
    let healthy_event = evs
        .iter()
        .find(|e| e.reason.as_deref() == Some("PdpHealthy"))
        .expect("PdpHealthy event");
    assert_eq!(healthy_event.type_.as_deref(), Some("Normal"));

    // Nothing changed: the next reconcile does not write the status again.
    let rv = pdp.resource_version();
    let again = reconcile(&client, &ctx, &ns, "pdp").await;
    assert_eq!(
        again.resource_version(),
        rv,
        "no status write without a change"
    );
    assert_eq!(
        events(&client, &ns, "pdp").await.len(),
        evs.len(),
        "no event without a transition"
    );

    // The key is nowhere in what we wrote.
    let key = local.api_key().to_string();
    assert!(!serde_json::to_string(&again).unwrap().contains(&key));
    assert!(!serde_json::to_string(&evs).unwrap().contains(&key));
    local.shutdown().await.unwrap();
}

#[tokio::test]
async fn failing_endpoint_is_unhealthy_with_a_warning_event() {
    let env = kube_env!();
    let (client, ns) = env.setup("pdp-unhealthy").await;
    // A PDP whose policy failed to load: 503 with Permit's health body, until `ok` flips.
    let ok = Arc::new(AtomicBool::new(false));
    let flag = ok.clone();
    let app = axum::Router::new().route(
        "/healthy",
        axum::routing::get(move || {
            let flag = flag.clone();
            async move {
                if flag.load(Ordering::SeqCst) {
                    (StatusCode::OK, axum::Json(json!({"status": "ok"})))
                } else {
                    (
                        StatusCode::SERVICE_UNAVAILABLE,
                        axum::Json(json!({"status": "error", "components": {
                            "horizon": {"status": "ok"},
                            "opa": {"status": "error", "error": "policy not loaded"}}})),
                    )
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });

    let metrics = Metrics::new();
    let ctx = context(&client, &metrics);
    create(
        &client,
        &ns,
        "pdp",
        json!({"apiKeySecretRef": {"name": "k"}, "probe": {"url": url}}),
    )
    .await;
    let pdp = reconcile(&client, &ctx, &ns, "pdp").await;
    let healthy = condition(&pdp, "Healthy");
    assert_eq!(healthy.status, "False", "{healthy:?}");
    assert_eq!(healthy.reason.as_deref(), Some("ProbeFailed"));
    let message = healthy.message.clone().unwrap();
    assert!(
        message.contains("503") && message.contains("opa: policy not loaded"),
        "{message}"
    );
    let evs = events(&client, &ns, "pdp").await;
    let warning = evs
        .iter()
        .find(|e| e.reason.as_deref() == Some("PdpUnhealthy"))
        .unwrap_or_else(|| panic!("PdpUnhealthy event in {:?}", reasons(&evs)));
    assert_eq!(warning.type_.as_deref(), Some("Warning"));
    assert_eq!(warning.note.as_deref(), Some(message.as_str()));
    let regarding = warning.regarding.clone().unwrap();
    assert_eq!(regarding.kind.as_deref(), Some("PermitPDP"));
    assert_eq!(regarding.uid, pdp.uid());
    assert!(metrics.encode().contains(&format!(
        "permit_pdp_up{{namespace=\"{ns}\",name=\"pdp\"}} 0"
    )));

    // It recovers: Healthy=True and a Normal event.
    ok.store(true, Ordering::SeqCst);
    let pdp = reconcile(&client, &ctx, &ns, "pdp").await;
    assert_eq!(condition(&pdp, "Healthy").status, "True");
    let evs = reasons(&events(&client, &ns, "pdp").await);
    assert!(evs.contains(&"PdpHealthy".to_string()), "{evs:?}");

    // A closed port: Unreachable.
    edit(&client, &ns, "pdp", json!({"probe": {"url": closed_url()}})).await;
    let pdp = reconcile(&client, &ctx, &ns, "pdp").await;
    let healthy = condition(&pdp, "Healthy");
    assert_eq!(
        (healthy.status.as_str(), healthy.reason.as_deref()),
        ("False", Some("Unreachable"))
    );
    assert!(healthy.message.unwrap().contains("cannot connect"));
}

#[tokio::test]
async fn external_url_deploys_nothing_and_invalid_spec_is_reported() {
    let env = kube_env!();
    let (client, ns) = env.setup("pdp-external").await;
    let local = permit::local().await;
    let metrics = Metrics::new();
    let ctx = context(&client, &metrics);

    // Deployed first, then pointed at an external PDP: our children are removed.
    create(
        &client,
        &ns,
        "ext",
        json!({"apiKeySecretRef": {"name": "k"}, "replicas": 2, "probe": {"url": closed_url()}}),
    )
    .await;
    reconcile(&client, &ctx, &ns, "ext").await;
    let deployments = Api::<Deployment>::namespaced(client.clone(), &ns);
    assert!(deployments.get_opt("ext").await.unwrap().is_some());
    Api::<PermitPDP>::namespaced(client.clone(), &ns)
        .patch(
            "ext",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"url": local.pdp_url(), "probe": null}})),
        )
        .await
        .unwrap();
    let pdp = reconcile(&client, &ctx, &ns, "ext").await;
    assert!(
        deployments.get_opt("ext").await.unwrap().is_none(),
        "Deployment removed"
    );
    assert!(
        Api::<Service>::namespaced(client.clone(), &ns)
            .get_opt("ext")
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        Api::<PodDisruptionBudget>::namespaced(client.clone(), &ns)
            .get_opt("ext")
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(
        condition(&pdp, "Available").reason.as_deref(),
        Some("Reachable")
    );
    assert_eq!(condition(&pdp, "Healthy").status, "True");

    // No API-key Secret: refused with the object's name, and said so in the status.
    create(
        &client,
        &ns,
        "nokey",
        json!({"probe": {"url": closed_url()}}),
    )
    .await;
    let obj = get(&client, &ns, "nokey").await;
    let err = pdp::reconcile(&client, &obj, &ctx)
        .await
        .expect_err("no Secret ref");
    let text = err.to_string();
    assert!(
        text.contains(&format!("{ns}/nokey")) && text.contains("apiKeySecretRef"),
        "{text}"
    );
    let obj = get(&client, &ns, "nokey").await;
    let available = condition(&obj, "Available");
    assert_eq!(
        (available.status.as_str(), available.reason.as_deref()),
        ("False", Some("InvalidSpec"))
    );
    assert!(deployments.get_opt("nokey").await.unwrap().is_none());
    let evs = reasons(&events(&client, &ns, "nokey").await);
    assert!(evs.contains(&"InvalidSpec".to_string()), "{evs:?}");
    local.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_foreign_object_of_the_same_name_is_not_removed() {
    let env = kube_env!();
    let (client, ns) = env.setup("pdp-foreign").await;
    let metrics = Metrics::new();
    let ctx = context(&client, &metrics);
    // Someone's own Service named like the PermitPDP, which points at an external PDP.
    let svc: Service = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "ext"},
        "spec": {"ports": [{"port": 80}]},
    }))
    .unwrap();
    Api::<Service>::namespaced(client.clone(), &ns)
        .create(&PostParams::default(), &svc)
        .await
        .unwrap();
    create(&client, &ns, "ext", json!({"url": closed_url()})).await;
    let pdp = reconcile(&client, &ctx, &ns, "ext").await;
    assert!(
        Api::<Service>::namespaced(client.clone(), &ns)
            .get_opt("ext")
            .await
            .unwrap()
            .is_some()
    );
    assert_eq!(
        condition(&pdp, "Available").reason.as_deref(),
        Some("Unreachable")
    );
    assert_eq!(pdp.object_ref(&()).name.as_deref(), Some("ext"));

    // Someone's Deployment under the name a PermitPDP would use: refused, not taken over.
    let theirs: Deployment = serde_json::from_value(json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "taken"},
        "spec": {"selector": {"matchLabels": {"app": "theirs"}}, "template": {
            "metadata": {"labels": {"app": "theirs"}},
            "spec": {"containers": [{"name": "app", "image": "nginx:1.27"}]}}},
    }))
    .unwrap();
    let deployments = Api::<Deployment>::namespaced(client.clone(), &ns);
    deployments
        .create(&PostParams::default(), &theirs)
        .await
        .unwrap();
    create(
        &client,
        &ns,
        "taken",
        json!({"apiKeySecretRef": {"name": "k"}, "probe": {"url": closed_url()}}),
    )
    .await;
    let obj = get(&client, &ns, "taken").await;
    let err = pdp::reconcile(&client, &obj, &ctx)
        .await
        .expect_err("name taken");
    assert!(matches!(err, pdp::Error::NotOwned { .. }), "{err}");
    assert!(
        err.to_string().contains(&format!("Deployment {ns}/taken")),
        "{err}"
    );
    let dep = deployments.get("taken").await.unwrap();
    assert_eq!(
        dep.spec.template.spec.unwrap().containers[0]
            .image
            .as_deref(),
        Some("nginx:1.27")
    );
    assert!(dep.metadata.owner_references.is_none());
    let obj = get(&client, &ns, "taken").await;
    assert_eq!(
        condition(&obj, "Available").reason.as_deref(),
        Some("NotOwned")
    );
    let evs = reasons(&events(&client, &ns, "taken").await);
    assert!(evs.contains(&"NotOwned".to_string()), "{evs:?}");
}

#[tokio::test]
async fn monitor_run_probes_periodically_until_the_object_is_deleted() {
    let env = kube_env!();
    let (client, ns) = env.setup("pdp-run").await;
    let local = permit::local().await;
    let metrics = Metrics::new();
    let ctx = context(&client, &metrics);
    create(
        &client,
        &ns,
        "pdp",
        json!({"apiKeySecretRef": {"name": "k"}, "probe": {"url": local.pdp_url(), "intervalSeconds": 1}}),
    )
    .await;
    let cancel = tokio_util::sync::CancellationToken::new();
    let task = tokio::spawn(pdp::monitor::run(
        client.clone(),
        ns.clone(),
        "pdp".into(),
        ctx,
        cancel.clone(),
    ));

    // Healthy, then unhealthy once the PDP stops: the loop keeps probing on its own.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let pdp = get(&client, &ns, "pdp").await;
        let healthy = pdp
            .status
            .as_ref()
            .and_then(|s| s.conditions.iter().find(|c| c.type_ == "Healthy"))
            .map(|c| c.status.clone());
        if healthy.as_deref() == Some("True") {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "never healthy: {:?}",
            pdp.status
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    local.shutdown().await.unwrap();
    loop {
        let pdp = get(&client, &ns, "pdp").await;
        if condition(&pdp, "Healthy").status == "False" {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "never unhealthy: {:?}",
            pdp.status
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    assert!(metrics.encode().contains("permit_pdp_up"));

    // Deleted: the loop ends by itself and drops the metric series.
    Api::<PermitPDP>::namespaced(client.clone(), &ns)
        .delete("pdp", &Default::default())
        .await
        .unwrap();
    tokio::time::timeout(std::time::Duration::from_secs(10), task)
        .await
        .expect("the loop ends after the deletion")
        .unwrap();
    assert!(
        !metrics.encode().contains(&format!("namespace=\"{ns}\"")),
        "{}",
        metrics.encode()
    );
}
