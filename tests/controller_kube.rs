//! The Kubernetes controller on a real kube-apiserver, converging the embedded local Permit over
//! HTTP: lifecycle (create, update, delete, Orphan) with status and events, deletion while Permit
//! answers 503, malformed / paused / rejected resources, two instances with leader election,
//! 1,000 resources in a handful of bulk calls, the real binary, and an apiserver restart.
//!
//! Each test watches only its own namespace and talks to its own local Permit, so the tests run in
//! parallel on the shared apiserver. Every wait has a deadline.

#[macro_use]
#[path = "support/kube_env.rs"]
mod kube_env;
#[path = "support/events.rs"]
mod events;
#[path = "support/permit.rs"]
mod permit;

use events::{events, reasons};
use futures::StreamExt;
use kube::Client;
use kube::api::{Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use permit::local;
use permit_sync::controller::finalizer::api_resource;
use permit_sync::controller::{self, Config, ControllerState};
use permit_sync::kinds::Kind;
use permit_sync::local::LocalHandle;
use permit_sync::local::knobs::Faults;
use permit_sync::permit::{ApiKey, ClientConfig, Limits, RetryPolicy};
use serde_json::{Value, json};
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

const FINALIZER: &str = "permitsync.dev/cleanup";

struct Running {
    shared: Arc<ControllerState>,
    stop: CancellationToken,
    task: JoinHandle<anyhow::Result<()>>,
}

impl Running {
    async fn stop(self) {
        self.stop.cancel();
        tokio::time::timeout(Duration::from_secs(15), self.task)
            .await
            .expect("the controller stops within 15 s")
            .expect("the controller task does not panic")
            .expect("the controller stops cleanly");
    }
}

fn config(ns: &str, permit: &LocalHandle) -> Config {
    let mut client = ClientConfig::new(permit.api_url(), ApiKey::new(permit.api_key()));
    client.limits = Limits::unlimited();
    client.timeout = Duration::from_secs(10);
    client.retry = RetryPolicy {
        max_attempts: 2,
        min_delay: Duration::from_millis(50),
        max_delay: Duration::from_millis(200),
        max_retry_after: Duration::from_secs(1),
    };
    let mut c = Config::new(client);
    c.namespaces = vec![ns.to_string()];
    c.batch_window = Duration::from_millis(200);
    c.batch_max_wait = Duration::from_secs(2);
    c.backoff_base = Duration::from_millis(500);
    c.backoff_max = Duration::from_secs(2);
    c.pdp = false;
    c
}

fn start(client: &Client, config: Config) -> Running {
    let shared = Arc::new(ControllerState::default());
    let stop = CancellationToken::new();
    let task = tokio::spawn(controller::run(
        client.clone(),
        config,
        shared.clone(),
        stop.clone(),
    ));
    Running { shared, stop, task }
}

fn api(client: &Client, ns: &str, kind: Kind) -> Api<DynamicObject> {
    Api::namespaced_with(client.clone(), ns, &api_resource(kind))
}

async fn create(client: &Client, ns: &str, kind: Kind, name: &str, spec: Value) -> DynamicObject {
    let obj: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "permitsync.dev/v1alpha1",
        "kind": kind.as_str(),
        "metadata": {"name": name, "namespace": ns},
        "spec": spec,
    }))
    .unwrap();
    api(client, ns, kind)
        .create(&PostParams::default(), &obj)
        .await
        .unwrap_or_else(|e| panic!("creating {kind} {ns}/{name}: {e}"))
}

async fn get(client: &Client, ns: &str, kind: Kind, name: &str) -> Option<DynamicObject> {
    api(client, ns, kind).get_opt(name).await.expect("get")
}

async fn patch_spec(client: &Client, ns: &str, kind: Kind, name: &str, spec: Value) {
    api(client, ns, kind)
        .patch(
            name,
            &PatchParams::default(),
            &Patch::Merge(json!({ "spec": spec })),
        )
        .await
        .expect("spec patched");
}

async fn delete(client: &Client, ns: &str, kind: Kind, name: &str) {
    api(client, ns, kind)
        .delete(name, &DeleteParams::default())
        .await
        .expect("delete accepted");
}

/// Polls `f` every 200 ms until it returns `Some`, or panics after `secs` with `what`.
async fn until<T, F, Fut>(what: &str, secs: u64, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {secs} s: {what}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn condition<'a>(obj: &'a DynamicObject, type_: &str) -> Option<&'a Value> {
    obj.data["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == type_)
}

fn synced(obj: &DynamicObject) -> Option<(String, String)> {
    let c = condition(obj, "Synced")?;
    Some((
        c["status"].as_str()?.to_string(),
        c["reason"].as_str()?.to_string(),
    ))
}

/// Waits until `Synced` has `status` and `reason` for the current generation.
async fn until_synced(
    client: &Client,
    ns: &str,
    kind: Kind,
    name: &str,
    want: (&str, &str),
) -> DynamicObject {
    until(
        &format!("{kind} {ns}/{name} Synced={want:?}"),
        30,
        || async {
            let o = get(client, ns, kind, name).await?;
            let generation = o.metadata.generation?;
            let observed = o.data["status"]["observedGeneration"].as_i64()?;
            let (s, r) = synced(&o)?;
            (s == want.0 && r == want.1 && observed == generation).then_some(o)
        },
    )
    .await
}

fn tenant_name(permit: &LocalHandle, key: &str) -> Option<String> {
    permit
        .store()
        .tenants
        .rows()
        .iter()
        .find(|t| t.key == key)
        .map(|t| t.name.clone())
}

fn has_user(permit: &LocalHandle, key: &str) -> bool {
    permit.store().users.rows().iter().any(|u| u.key == key)
}

async fn event_reasons(client: &Client, ns: &str, name: &str) -> Vec<String> {
    reasons(&events(client, ns, name).await)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_update_delete_and_orphan() {
    let env = kube_env!();
    let (client, ns) = env.setup("ctl-life").await;
    let permit = local().await;
    let ctl = start(&client, config(&ns, &permit));

    create(
        &client,
        &ns,
        Kind::PermitTenant,
        "acme",
        json!({"name": "Acme"}),
    )
    .await;
    create(
        &client,
        &ns,
        Kind::PermitResource,
        "doc",
        json!({"actions": {"read": {}}}),
    )
    .await;
    create(
        &client,
        &ns,
        Kind::PermitRole,
        "viewer",
        json!({"permissions": ["doc:read"]}),
    )
    .await;
    create(
        &client,
        &ns,
        Kind::PermitUser,
        "jane",
        json!({"key": "jane@example.com", "email": "jane@example.com",
               "roles": [{"role": "viewer"}]}),
    )
    .await;
    let t = until_synced(
        &client,
        &ns,
        Kind::PermitTenant,
        "acme",
        ("True", "ReconcileSuccess"),
    )
    .await;
    assert_eq!(tenant_name(&permit, "acme").as_deref(), Some("Acme"));
    assert_eq!(condition(&t, "Ready").unwrap()["status"], "True");
    assert_eq!(t.data["status"]["key"], "acme");
    let id = permit
        .store()
        .tenants
        .rows()
        .iter()
        .find(|t| t.key == "acme")
        // As Permit emits ids: 32 hex digits, no dashes.
        .map(|t| t.id.simple().to_string());
    assert_eq!(
        t.data["status"]["permitId"].as_str(),
        id.as_deref(),
        "the Permit id"
    );
    assert!(
        t.metadata
            .finalizers
            .iter()
            .flatten()
            .any(|f| f == FINALIZER)
    );
    let u = until_synced(
        &client,
        &ns,
        Kind::PermitUser,
        "jane",
        ("True", "ReconcileSuccess"),
    )
    .await;
    assert_eq!(u.data["status"]["key"], "jane@example.com");
    assert!(has_user(&permit, "jane@example.com"));
    let roles = |permit: &LocalHandle| -> Vec<String> {
        let store = permit.store();
        store
            .roles_in_tenant("jane@example.com", "default")
            .into_iter()
            .map(str::to_string)
            .collect()
    };
    assert_eq!(roles(&permit), ["viewer"], "the inline role is assigned");

    // No status-write loop: once converged, nothing more is written.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let writes = ctl.shared.status_writes.load(Ordering::Relaxed);
    let permit_writes = permit.counters().writes();
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(ctl.shared.status_writes.load(Ordering::Relaxed), writes);
    assert_eq!(
        permit.counters().writes(),
        permit_writes,
        "no Permit write without a change"
    );

    // Update.
    patch_spec(
        &client,
        &ns,
        Kind::PermitTenant,
        "acme",
        json!({"name": "Acme Corp"}),
    )
    .await;
    let t = until_synced(
        &client,
        &ns,
        Kind::PermitTenant,
        "acme",
        ("True", "ReconcileSuccess"),
    )
    .await;
    assert_eq!(t.metadata.generation, Some(2));
    until("tenant renamed in Permit", 10, || async {
        (tenant_name(&permit, "acme").as_deref() == Some("Acme Corp")).then_some(())
    })
    .await;
    assert!(
        event_reasons(&client, &ns, "acme")
            .await
            .contains(&"ReconcileSuccess".to_string())
    );

    // Delete: the Permit object first, then the resource.
    delete(&client, &ns, Kind::PermitTenant, "acme").await;
    until("tenant resource gone", 30, || async {
        get(&client, &ns, Kind::PermitTenant, "acme")
            .await
            .is_none()
            .then_some(())
    })
    .await;
    assert_eq!(tenant_name(&permit, "acme"), None, "deleted from Permit");

    // A removed inline role is unassigned.
    patch_spec(&client, &ns, Kind::PermitUser, "jane", json!({"roles": []})).await;
    until("inline role unassigned", 30, || async {
        roles(&permit).is_empty().then_some(())
    })
    .await;

    // Orphan: the resource goes, the Permit user stays.
    patch_spec(
        &client,
        &ns,
        Kind::PermitUser,
        "jane",
        json!({"deletionPolicy": "Orphan"}),
    )
    .await;
    until_synced(
        &client,
        &ns,
        Kind::PermitUser,
        "jane",
        ("True", "ReconcileSuccess"),
    )
    .await;
    delete(&client, &ns, Kind::PermitUser, "jane").await;
    until("user resource gone", 30, || async {
        get(&client, &ns, Kind::PermitUser, "jane")
            .await
            .is_none()
            .then_some(())
    })
    .await;
    assert!(
        has_user(&permit, "jane@example.com"),
        "Orphan keeps the Permit user"
    );

    ctl.stop().await;
    permit.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deletion_waits_while_permit_answers_503() {
    let env = kube_env!();
    let (client, ns) = env.setup("ctl-503").await;
    let permit = local().await;
    let ctl = start(&client, config(&ns, &permit));

    create(&client, &ns, Kind::PermitTenant, "acme", json!({})).await;
    until_synced(
        &client,
        &ns,
        Kind::PermitTenant,
        "acme",
        ("True", "ReconcileSuccess"),
    )
    .await;
    assert!(tenant_name(&permit, "acme").is_some());

    permit
        .set_faults(Faults {
            error_rate: 1.0,
            error_status: 503,
            ..Default::default()
        })
        .unwrap();
    delete(&client, &ns, Kind::PermitTenant, "acme").await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    let held = get(&client, &ns, Kind::PermitTenant, "acme")
        .await
        .expect("the resource stays while Permit is down");
    assert!(held.metadata.deletion_timestamp.is_some());
    assert!(
        held.metadata
            .finalizers
            .iter()
            .flatten()
            .any(|f| f == FINALIZER)
    );
    assert!(tenant_name(&permit, "acme").is_some());
    assert!(
        permit.counters().status("delete", 503) + permit.counters().status("bulk", 503) > 0
            || permit.counters().status("read", 503) > 0,
        "the controller kept trying"
    );

    permit.set_faults(Faults::default()).unwrap();
    until("deletion completes once Permit is back", 30, || async {
        get(&client, &ns, Kind::PermitTenant, "acme")
            .await
            .is_none()
            .then_some(())
    })
    .await;
    assert_eq!(tenant_name(&permit, "acme"), None);

    ctl.stop().await;
    permit.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paused_and_rejected_resources_do_not_stall_the_others() {
    let env = kube_env!();
    let (client, ns) = env.setup("ctl-robust").await;
    let permit = local().await;
    let ctl = start(&client, config(&ns, &permit));

    // Paused: nothing in Permit, the pause in the status.
    let paused: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "permitsync.dev/v1alpha1", "kind": "PermitTenant",
        "metadata": {"name": "paused", "namespace": ns,
                     "annotations": {"permitsync.dev/reconcile": "disabled"}},
        "spec": {},
    }))
    .unwrap();
    api(&client, &ns, Kind::PermitTenant)
        .create(&PostParams::default(), &paused)
        .await
        .unwrap();
    // Rejected by Permit (the role does not exist): 4xx, terminal until the object changes.
    create(
        &client,
        &ns,
        Kind::RoleAssignment,
        "bad",
        json!({"user": "nobody", "role": "no-such-role", "tenant": "default"}),
    )
    .await;
    create(&client, &ns, Kind::PermitTenant, "fine", json!({})).await;

    until_synced(
        &client,
        &ns,
        Kind::PermitTenant,
        "fine",
        ("True", "ReconcileSuccess"),
    )
    .await;
    let p = until_synced(
        &client,
        &ns,
        Kind::PermitTenant,
        "paused",
        ("False", "ReconcilePaused"),
    )
    .await;
    assert_eq!(condition(&p, "Ready").unwrap()["status"], "Unknown");
    assert_eq!(tenant_name(&permit, "paused"), None);
    let bad = until_synced(
        &client,
        &ns,
        Kind::RoleAssignment,
        "bad",
        ("False", "Rejected"),
    )
    .await;
    let message = condition(&bad, "Synced").unwrap()["message"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        message.contains("nobody") || message.contains("no-such-role"),
        "{message}"
    );

    // Terminal: no more attempts while it is unchanged (backoff alone would retry within 2 s).
    // (Reads may happen: Permit is listed again after any failure.)
    let calls = permit.counters().writes();
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(
        permit.counters().writes(),
        calls,
        "a rejected object is not retried"
    );

    // Unpausing syncs it.
    api(&client, &ns, Kind::PermitTenant)
        .patch(
            "paused",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"annotations": {"permitsync.dev/reconcile": null}}})),
        )
        .await
        .unwrap();
    until("unpaused tenant in Permit", 30, || async {
        tenant_name(&permit, "paused").map(|_| ())
    })
    .await;

    ctl.stop().await;
    permit.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_leader_writes_and_a_new_leader_takes_over() {
    let env = kube_env!();
    let (client, ns) = env.setup("ctl-lead").await;
    let permit = local().await;
    let lease = |id: &str| {
        let mut c = config(&ns, &permit);
        c.identity = id.into();
        c.leader = Some(controller::leader::LeaseConfig {
            name: "permit-sync".into(),
            namespace: ns.clone(),
            identity: id.into(),
            duration: Duration::from_secs(4),
            grace: Duration::from_secs(1),
        });
        c
    };
    let a = start(&client, lease("a"));
    let b = start(&client, lease("b"));
    let (leader, follower) = until("a leader", 30, || async {
        match (
            a.shared.leader.load(Ordering::Relaxed),
            b.shared.leader.load(Ordering::Relaxed),
        ) {
            (true, false) => Some(("a", "b")),
            (false, true) => Some(("b", "a")),
            _ => None,
        }
    })
    .await;
    let (lead, follow) = if leader == "a" { (a, b) } else { (b, a) };

    for name in ["t1", "t2", "t3"] {
        create(&client, &ns, Kind::PermitTenant, name, json!({})).await;
    }
    for name in ["t1", "t2", "t3"] {
        until_synced(
            &client,
            &ns,
            Kind::PermitTenant,
            name,
            ("True", "ReconcileSuccess"),
        )
        .await;
    }
    let total = permit.counters().writes();
    assert!(total > 0);
    assert_eq!(
        lead.shared.permit_writes.load(Ordering::Relaxed),
        total,
        "every write is the leader's"
    );
    assert_eq!(
        follow.shared.permit_writes.load(Ordering::Relaxed),
        0,
        "{follower} never writes"
    );
    assert_eq!(follow.shared.status_writes.load(Ordering::Relaxed), 0);
    assert!(!follow.shared.leader.load(Ordering::Relaxed));

    // The leader stops (releasing the Lease); the other takes over and converges new objects.
    let old_writes = lead.shared.permit_writes.load(Ordering::Relaxed);
    let old = lead.shared.clone();
    lead.stop().await;
    until("the follower leads", 30, || async {
        follow.shared.leader.load(Ordering::Relaxed).then_some(())
    })
    .await;
    create(&client, &ns, Kind::PermitTenant, "t4", json!({})).await;
    until_synced(
        &client,
        &ns,
        Kind::PermitTenant,
        "t4",
        ("True", "ReconcileSuccess"),
    )
    .await;
    assert!(tenant_name(&permit, "t4").is_some());
    assert_eq!(old.permit_writes.load(Ordering::Relaxed), old_writes);
    assert!(follow.shared.permit_writes.load(Ordering::Relaxed) > 0);

    follow.stop().await;
    permit.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_resources_converge_in_a_handful_of_bulk_calls() {
    let env = kube_env!();
    let (client, ns) = env.setup("ctl-1k").await;
    let permit = local().await;
    let mut cfg = config(&ns, &permit);
    cfg.batch_window = Duration::from_millis(500);
    cfg.batch_max_wait = Duration::from_secs(5);
    let ctl = start(&client, cfg);
    until("watches ready", 30, || async {
        ctl.shared.ready.load(Ordering::Relaxed).then_some(())
    })
    .await;

    let started = Instant::now();
    let creates = (0..1000).map(|i| {
        let client = client.clone();
        let ns = ns.clone();
        async move {
            if i % 2 == 0 {
                create(
                    &client,
                    &ns,
                    Kind::PermitUser,
                    &format!("user-{i}"),
                    json!({"email": format!("user-{i}@example.com")}),
                )
                .await;
            } else {
                create(
                    &client,
                    &ns,
                    Kind::PermitTenant,
                    &format!("tenant-{i}"),
                    json!({}),
                )
                .await;
            }
        }
    });
    futures::stream::iter(creates)
        .buffer_unordered(32)
        .collect::<Vec<()>>()
        .await;
    let applied = started.elapsed();

    until("1,000 resources synced", 180, || async {
        let mut done = 0;
        for kind in [Kind::PermitUser, Kind::PermitTenant] {
            done += api(&client, &ns, kind)
                .list(&ListParams::default())
                .await
                .ok()?
                .items
                .iter()
                .filter(|o| synced(o).is_some_and(|(s, _)| s == "True"))
                .count();
        }
        (done == 1000).then_some(())
    })
    .await;
    let converged = started.elapsed();
    let c = permit.counters();
    let (users, tenants) = (permit.store().users.len(), permit.store().tenants.len());
    eprintln!(
        "1,000 resources: applied in {applied:?}, synced in {converged:?}; Permit writes {}, \
         bulk {} (PUT bulk/users {}, POST bulk/tenants {}), batches {}",
        c.writes(),
        c.class("bulk"),
        c.endpoint("PUT bulk/users"),
        c.endpoint("POST bulk/tenants"),
        ctl.shared.batches.load(Ordering::Relaxed),
    );
    assert_eq!(users, 500);
    assert_eq!(tenants, 501, "500 and the default tenant");
    assert!(
        c.writes() <= 12,
        "a handful of bulk calls, not one per object: {} writes",
        c.writes()
    );

    ctl.stop().await;
    permit.shutdown().await.unwrap();
}

/// A private control plane: the PermitTenant schema is loosened (as if the resource had been stored
/// under an older, laxer CRD), then the apiserver is stopped and started under the controller.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_resources_are_reported_and_watches_survive_an_apiserver_restart() {
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
    let Some(env) = kube_env::KubeEnv::start()
        .await
        .expect("private control plane")
    else {
        return;
    };
    let (client, ns) = env.setup("ctl-guard").await;

    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let mut crd = crds.get("permittenants.permitsync.dev").await.unwrap();
    let schema = crd.spec.versions[0].schema.as_mut().unwrap();
    let root = schema.open_api_v3_schema.as_mut().unwrap();
    root.x_kubernetes_validations = None;
    let spec = root.properties.as_mut().unwrap().get_mut("spec").unwrap();
    *spec = serde_json::from_value(
        json!({"type": "object", "x-kubernetes-preserve-unknown-fields": true}),
    )
    .unwrap();
    crds.replace("permittenants.permitsync.dev", &PostParams::default(), &crd)
        .await
        .unwrap();
    until("the lax schema is in force", 30, || async {
        let obj: DynamicObject = serde_json::from_value(json!({
            "apiVersion": "permitsync.dev/v1alpha1", "kind": "PermitTenant",
            "metadata": {"name": "broken", "namespace": ns},
            "spec": {"name": 42, "attributes": "not a map"},
        }))
        .unwrap();
        api(&client, &ns, Kind::PermitTenant)
            .create(&PostParams::default(), &obj)
            .await
            .ok()
            .map(|_| ())
    })
    .await;

    let permit = local().await;
    let ctl = start(&client, config(&ns, &permit));
    create(
        &client,
        &ns,
        Kind::PermitTenant,
        "fine",
        json!({"name": "Fine"}),
    )
    .await;
    until_synced(
        &client,
        &ns,
        Kind::PermitTenant,
        "fine",
        ("True", "ReconcileSuccess"),
    )
    .await;
    let broken = until_synced(
        &client,
        &ns,
        Kind::PermitTenant,
        "broken",
        ("False", "InvalidObject"),
    )
    .await;
    let message = condition(&broken, "Synced").unwrap()["message"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(message.contains("PermitTenant"), "{message}");
    assert!(
        !broken
            .metadata
            .finalizers
            .iter()
            .flatten()
            .any(|f| f == FINALIZER),
        "no finalizer on what cannot be read"
    );
    let writes = ctl.shared.status_writes.load(Ordering::Relaxed);
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        ctl.shared.status_writes.load(Ordering::Relaxed),
        writes,
        "written once"
    );

    // The apiserver goes away and comes back: the watches resume without a restart.
    env.stop_apiserver();
    tokio::time::sleep(Duration::from_secs(3)).await;
    env.start_again().await.expect("apiserver back");
    let client = env.client();
    create(&client, &ns, Kind::PermitTenant, "after", json!({})).await;
    until("converged after the restart", 60, || async {
        tenant_name(&permit, "after").map(|_| ())
    })
    .await;
    until_synced(
        &client,
        &ns,
        Kind::PermitTenant,
        "after",
        ("True", "ReconcileSuccess"),
    )
    .await;
    assert!(!ctl.task.is_finished(), "the controller kept running");

    ctl.stop().await;
    permit.shutdown().await.unwrap();
    env.stop();
}

/// The real binary with the chart's flags: API key from a Secret, JSON logs, health and metrics,
/// graceful shutdown on SIGTERM. The key never reaches the log.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_runs_with_the_charts_flags() {
    use k8s_openapi::api::core::v1::Secret;
    let env = kube_env!();
    let (client, ns) = env.setup("ctl-bin").await;
    let permit = local().await;
    let secret: Secret = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "permit-api-key", "namespace": ns},
        "stringData": {"api-key": permit.api_key()},
    }))
    .unwrap();
    Api::<Secret>::namespaced(client.clone(), &ns)
        .create(&PostParams::default(), &secret)
        .await
        .unwrap();
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let log = tempfile::NamedTempFile::new().unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_permit-sync"))
        .args(["controller", "--log-format=json", "--no-pdp"])
        .arg(format!("--kubeconfig={}", env.kubeconfig().display()))
        .arg(format!("--namespace={ns}"))
        .arg(format!("--api-url={}", permit.api_url()))
        .arg(format!("--api-key-secret={ns}/permit-api-key"))
        .arg(format!("--metrics-addr=127.0.0.1:{port}"))
        .env_remove("PERMIT_API_KEY")
        .env("RUST_LOG", "debug")
        .stdout(std::process::Stdio::null())
        .stderr(log.reopen().unwrap())
        .spawn()
        .expect("the binary starts");
    let http = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{port}");
    let get_status = |path: &str| {
        let (http, url) = (http.clone(), format!("{base}{path}"));
        async move { http.get(url).send().await.ok().map(|r| r.status().as_u16()) }
    };
    until("/readyz answers 200", 60, || async {
        (get_status("/readyz").await == Some(200)).then_some(())
    })
    .await;
    assert_eq!(get_status("/healthz").await, Some(200));

    create(
        &client,
        &ns,
        Kind::PermitTenant,
        "acme",
        json!({"name": "Acme"}),
    )
    .await;
    until_synced(
        &client,
        &ns,
        Kind::PermitTenant,
        "acme",
        ("True", "ReconcileSuccess"),
    )
    .await;
    assert_eq!(tenant_name(&permit, "acme").as_deref(), Some("Acme"));
    // The controller's metrics, and the Permit API metrics as `watch` exports them: the batch's
    // reads (scope, listings) and the tenant's create, counted once the batch has ended.
    let api_count = |metrics: &str, class: &str| -> u64 {
        metrics
            .lines()
            .filter(|l| {
                l.starts_with(&format!(
                    "permit_sync_api_requests_total{{class=\"{class}\""
                ))
            })
            .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
            .sum()
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    let metrics = loop {
        let m = http
            .get(format!("{base}/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        if api_count(&m, "write") >= 1 || std::time::Instant::now() > deadline {
            break m;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(metrics.contains("permit_sync_batches_total"), "{metrics}");
    assert!(metrics.contains("permit_sync_leader 1"), "{metrics}");
    assert!(
        metrics.contains("permit_sync_reconciles_total{kind=\"PermitTenant\",outcome=\"synced\"}"),
        "{metrics}"
    );
    assert!(api_count(&metrics, "write") >= 1, "{metrics}");
    assert!(api_count(&metrics, "all") >= 2, "{metrics}");
    assert!(
        metrics.contains("permit_sync_api_retries_total"),
        "{metrics}"
    );
    assert!(
        metrics.contains("permit_sync_rate_limit_waits_total"),
        "{metrics}"
    );
    // The loop's sync metrics, as `watch` exports them: the batch that created the tenant.
    assert!(
        metrics.contains("permit_sync_syncs_total{result=\"success\"}"),
        "{metrics}"
    );
    assert!(
        metrics.contains("permit_sync_sync_duration_seconds_count"),
        "{metrics}"
    );

    // SIGTERM: a clean exit, quickly.
    // SAFETY: sends a signal to the child we started.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let deadline = Instant::now() + Duration::from_secs(15);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "no exit within 15 s of SIGTERM");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(status.success(), "exit status {status}");
    let logs = std::fs::read_to_string(log.path()).unwrap();
    assert!(
        !logs.contains(permit.api_key()),
        "the API key is in the log"
    );
    let first = logs.lines().next().unwrap_or_default();
    assert!(
        serde_json::from_str::<Value>(first).is_ok(),
        "JSON log lines: {first}"
    );
    assert!(logs.contains("controller starting"));
    permit.shutdown().await.unwrap();
}

/// `PermitPDP` objects go to `pdp::reconcile` through the controller: Deployment and Service
/// applied, status written, the finalizer on; deleting the PDP releases it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn permit_pdps_are_deployed_by_the_controller() {
    use k8s_openapi::api::apps::v1::Deployment;
    use k8s_openapi::api::core::v1::Service;
    let env = kube_env!();
    let (client, ns) = env.setup("ctl-pdp").await;
    let permit = local().await;
    let mut cfg = config(&ns, &permit);
    cfg.pdp = true;
    let ctl = start(&client, cfg);
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", l.local_addr().unwrap())
    };
    create(
        &client,
        &ns,
        Kind::PermitPDP,
        "pdp",
        json!({"apiKeySecretRef": {"name": "k"}, "probe": {"url": closed}}),
    )
    .await;
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), &ns);
    until("the PDP Deployment", 30, || async {
        deployments.get_opt("pdp").await.ok().flatten().map(|_| ())
    })
    .await;
    // The Service is applied right after the Deployment: wait for it as for the Deployment.
    let services: Api<Service> = Api::namespaced(client.clone(), &ns);
    until("the PDP Service", 30, || async {
        services.get_opt("pdp").await.ok().flatten().map(|_| ())
    })
    .await;
    let pdp = until("PDP status and finalizer", 30, || async {
        let o = get(&client, &ns, Kind::PermitPDP, "pdp").await?;
        let has = o
            .metadata
            .finalizers
            .iter()
            .flatten()
            .any(|f| f == FINALIZER);
        (has && condition(&o, "Healthy").is_some()).then_some(o)
    })
    .await;
    assert_eq!(condition(&pdp, "Healthy").unwrap()["status"], "False");
    delete(&client, &ns, Kind::PermitPDP, "pdp").await;
    until("the PermitPDP released", 30, || async {
        get(&client, &ns, Kind::PermitPDP, "pdp")
            .await
            .is_none()
            .then_some(())
    })
    .await;
    ctl.stop().await;
    permit.shutdown().await.unwrap();
}

/// A manifest object's `spec` as JSON (what a custom resource of its kind holds).
fn spec_of(object: &permit_sync::kinds::Object) -> Value {
    use permit_sync::kinds::Object;
    let whole = match object {
        Object::Resource(o) => serde_json::to_value(o),
        Object::Role(o) => serde_json::to_value(o),
        Object::Tenant(o) => serde_json::to_value(o),
        Object::User(o) => serde_json::to_value(o),
        Object::Assignment(o) => serde_json::to_value(o),
        Object::Instance(o) => serde_json::to_value(o),
        Object::Tuple(o) => serde_json::to_value(o),
        Object::Pdp(o) => serde_json::to_value(o),
    };
    whole.unwrap()["spec"].clone()
}

/// `examples/blogging-platform` as custom resources: every kind converges into the local Permit,
/// decisions follow (John moderates comment-1 through the derivation), a derivation dropped from
/// the resource's spec and a deleted tuple leave Permit, and deleting everything empties it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_blogging_platform_converges_as_custom_resources() {
    let env = kube_env!();
    let (client, ns) = env.setup("ctl-rebac").await;
    let permit = local().await;
    let ctl = start(&client, config(&ns, &permit));
    until("watches ready", 30, || async {
        ctl.shared.ready.load(Ordering::Relaxed).then_some(())
    })
    .await;

    let set = permit_sync::manifest::load_paths(
        &[std::path::PathBuf::from("examples/blogging-platform")],
        &Default::default(),
    );
    assert!(set.diagnostics.is_empty(), "{:?}", set.diagnostics);
    let objects: Vec<(Kind, String, Value)> = set
        .objects
        .iter()
        .map(|l| {
            (
                l.object.kind(),
                l.object.name().to_string(),
                spec_of(&l.object),
            )
        })
        .collect();
    let kinds: std::collections::BTreeSet<Kind> = objects.iter().map(|o| o.0).collect();
    for kind in [
        Kind::PermitResource,
        Kind::PermitRole,
        Kind::PermitUser,
        Kind::PermitResourceInstance,
        Kind::PermitRelationshipTuple,
        Kind::RoleAssignment,
    ] {
        assert!(kinds.contains(&kind), "the example declares a {kind}");
    }
    // Created in dependency order (`Kind`'s order): a custom resource whose references arrive
    // later is rejected by Permit and retried with backoff, which can outlast the wait below.
    let mut objects = objects;
    objects.sort_by_key(|o| o.0);
    for (kind, name, spec) in &objects {
        create(&client, &ns, *kind, name, spec.clone()).await;
    }
    for (kind, name, _) in &objects {
        until_synced(&client, &ns, *kind, name, ("True", "ReconcileSuccess")).await;
    }
    let may = |user: &str, action: &str, key: &str| {
        permit
            .store()
            .allowed_on(user, action, "Comment", Some(key), "default")
    };
    {
        let store = permit.store();
        assert_eq!(store.instances.len(), 2, "post-1 and comment-1");
        assert_eq!(store.tuples.len(), 1);
        assert_eq!(store.relations.len(), 1, "Comment#parent");
        assert!(
            store.resource_roles.len() >= 3,
            "Post#Author, Comment#Author, Comment#Moderator"
        );
    }
    assert!(
        may("john@example.com", "delete", "comment-1"),
        "derived Moderator"
    );
    assert!(!may("emma@example.com", "delete", "comment-1"));
    let c = get(&client, &ns, Kind::PermitResource, "comment")
        .await
        .unwrap();
    assert_eq!(c.data["status"]["key"], "Comment");
    for (kind, name) in [
        (Kind::PermitResourceInstance, "comment-1"),
        (Kind::PermitRelationshipTuple, "post-1-parent-comment-1"),
    ] {
        let o = get(&client, &ns, kind, name).await.unwrap();
        assert!(
            o.metadata
                .finalizers
                .iter()
                .flatten()
                .any(|f| f == FINALIZER),
            "{kind} {name} carries the finalizer"
        );
        assert_eq!(condition(&o, "Ready").unwrap()["status"], "True");
    }
    let t = get(
        &client,
        &ns,
        Kind::PermitRelationshipTuple,
        "post-1-parent-comment-1",
    )
    .await
    .unwrap();
    assert_eq!(
        t.data["status"]["key"],
        "Post:post-1/parent/Comment:comment-1"
    );
    assert!(
        event_reasons(&client, &ns, "post-1-parent-comment-1")
            .await
            .contains(&"ReconcileSuccess".to_string())
    );
    let writes = permit.counters().writes();
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        permit.counters().writes(),
        writes,
        "converged: no more writes"
    );

    // The derivation dropped from the resource: deleted in Permit, the resource CR updated.
    patch_spec(
        &client,
        &ns,
        Kind::PermitResource,
        "comment",
        json!({"roles": {"Moderator": {"grantedTo": []}}}),
    )
    .await;
    until_synced(
        &client,
        &ns,
        Kind::PermitResource,
        "comment",
        ("True", "ReconcileSuccess"),
    )
    .await;
    until(
        "the derivation gone, John no longer moderates",
        30,
        || async { (!may("john@example.com", "delete", "comment-1")).then_some(()) },
    )
    .await;
    patch_spec(
        &client,
        &ns,
        Kind::PermitResource,
        "comment",
        json!({"roles": {"Moderator": {"grantedTo": [{"role": "Author", "onResource": "Post", "linkedBy": "parent"}]}}}),
    )
    .await;
    until("the derivation back", 30, || async {
        may("john@example.com", "delete", "comment-1").then_some(())
    })
    .await;

    // The tuple's resource deleted: the tuple leaves Permit first, and the grant with it.
    delete(
        &client,
        &ns,
        Kind::PermitRelationshipTuple,
        "post-1-parent-comment-1",
    )
    .await;
    until("tuple resource gone", 30, || async {
        get(
            &client,
            &ns,
            Kind::PermitRelationshipTuple,
            "post-1-parent-comment-1",
        )
        .await
        .is_none()
        .then_some(())
    })
    .await;
    assert_eq!(permit.store().tuples.len(), 0, "deleted from Permit");
    assert!(!may("john@example.com", "delete", "comment-1"));

    // Everything deleted: each waits for what refers to it, then Permit holds none of it.
    for (kind, name, _) in &objects {
        if *kind != Kind::PermitRelationshipTuple {
            delete(&client, &ns, *kind, name).await;
        }
    }
    until("every resource gone", 60, || async {
        for (kind, name, _) in &objects {
            if get(&client, &ns, *kind, name).await.is_some() {
                return None;
            }
        }
        Some(())
    })
    .await;
    {
        let store = permit.store();
        assert_eq!(store.instances.len(), 0);
        assert_eq!(store.resource_roles.len(), 0);
        assert_eq!(store.relations.len(), 0);
    }
    ctl.stop().await;
    permit.shutdown().await.unwrap();
}

/// Instances and tuples in volume converge in a few bulk calls, not one call per object.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instances_and_tuples_converge_in_bulk_calls() {
    let env = kube_env!();
    let (client, ns) = env.setup("ctl-rebac-bulk").await;
    let permit = local().await;
    let mut cfg = config(&ns, &permit);
    cfg.batch_window = Duration::from_millis(500);
    cfg.batch_max_wait = Duration::from_secs(5);
    let ctl = start(&client, cfg);
    until("watches ready", 30, || async {
        ctl.shared.ready.load(Ordering::Relaxed).then_some(())
    })
    .await;
    create(
        &client,
        &ns,
        Kind::PermitResource,
        "folder",
        json!({"key": "Folder", "actions": {"read": {}}}),
    )
    .await;
    create(
        &client,
        &ns,
        Kind::PermitResource,
        "file",
        json!({"key": "File", "actions": {"read": {}}, "relations": {"parent": {"subject": "Folder"}}}),
    )
    .await;
    until_synced(
        &client,
        &ns,
        Kind::PermitResource,
        "file",
        ("True", "ReconcileSuccess"),
    )
    .await;
    permit.reset_counters();

    const N: usize = 150;
    let creates = (0..N).map(|i| {
        let client = client.clone();
        let ns = ns.clone();
        async move {
            let folder = format!("folder-{i}");
            let file = format!("file-{i}");
            create(&client, &ns, Kind::PermitResourceInstance, &folder, json!({"resource": "Folder"})).await;
            create(&client, &ns, Kind::PermitResourceInstance, &file, json!({"resource": "File"})).await;
            create(
                &client,
                &ns,
                Kind::PermitRelationshipTuple,
                &format!("t-{i}"),
                json!({"subject": format!("Folder:{folder}"), "relation": "parent", "object": format!("File:{file}")}),
            )
            .await;
        }
    });
    futures::stream::iter(creates)
        .buffer_unordered(16)
        .collect::<Vec<()>>()
        .await;
    until("every instance and tuple synced", 120, || async {
        let mut done = 0;
        for kind in [Kind::PermitResourceInstance, Kind::PermitRelationshipTuple] {
            done += api(&client, &ns, kind)
                .list(&ListParams::default())
                .await
                .ok()?
                .items
                .iter()
                .filter(|o| synced(o).is_some_and(|(s, _)| s == "True"))
                .count();
        }
        (done == 3 * N).then_some(())
    })
    .await;
    let c = permit.counters();
    eprintln!(
        "{} instances, {N} tuples: Permit writes {}, PUT bulk/resource_instances {}, POST relationship_tuples/bulk {}, batches {}",
        2 * N,
        c.writes(),
        c.endpoint("PUT bulk/resource_instances"),
        c.endpoint("POST relationship_tuples/bulk"),
        ctl.shared.batches.load(Ordering::Relaxed),
    );
    assert_eq!(permit.store().instances.len(), 2 * N);
    assert_eq!(permit.store().tuples.len(), N);
    assert!(
        c.writes() <= 16,
        "a few bulk calls, not one per object: {} writes",
        c.writes()
    );
    ctl.stop().await;
    permit.shutdown().await.unwrap();
}
