//! Scenario K: 1,000 custom resources applied at once on the real test kube-apiserver
//! (`tests/support/kube_env.rs`), converged by the `permit-sync controller` binary (a child process,
//! so its peak RSS is its own) against the same stage as the other contenders.

use crate::harness::{self, Run, Stage};
use crate::kube_env::KubeEnv;
use futures::StreamExt;
use kube::api::{Api, DynamicObject, ListParams, PostParams};
use permit_sync::controller::finalizer::api_resource;
use permit_sync::kinds::Kind;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The 1,000 resources: the policy (2 resources, 3 roles), tenants, users and role assignments.
fn objects(total: usize) -> Vec<(Kind, String, Value)> {
    let mut out = Vec::new();
    for r in ["document", "folder"] {
        let actions: serde_json::Map<String, Value> = ["read", "create", "update", "delete"]
            .iter()
            .map(|a| (a.to_string(), json!({})))
            .collect();
        out.push((
            Kind::PermitResource,
            r.to_string(),
            json!({"actions": actions}),
        ));
    }
    for (role, perms) in [
        ("viewer", vec!["document:read", "folder:read"]),
        ("editor", vec!["document:read", "document:update"]),
        ("admin", vec!["document:delete", "folder:delete"]),
    ] {
        out.push((
            Kind::PermitRole,
            role.to_string(),
            json!({"permissions": perms}),
        ));
    }
    let rest = total.saturating_sub(out.len());
    let users = rest * 2 / 5;
    let tenants = rest - 2 * users;
    for t in 0..tenants {
        out.push((
            Kind::PermitTenant,
            format!("tenant-{t}"),
            json!({"name": format!("Tenant {t}")}),
        ));
    }
    for u in 0..users {
        out.push((
            Kind::PermitUser,
            format!("user-{u}"),
            json!({"email": format!("user-{u}@example.com")}),
        ));
    }
    for u in 0..users {
        out.push((
            Kind::RoleAssignment,
            format!("user-{u}-viewer"),
            json!({"user": format!("user-{u}"), "role": "viewer", "tenant": format!("tenant-{}", u % tenants.max(1))}),
        ));
    }
    out
}

fn synced(o: &DynamicObject) -> bool {
    o.data
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .is_some_and(|cs| {
            cs.iter().any(|c| {
                c.get("type").and_then(Value::as_str) == Some("Synced")
                    && c.get("status").and_then(Value::as_str) == Some("True")
            })
        })
}

pub fn scenario_k(stage: &Stage, total: usize) -> anyhow::Result<Vec<Run>> {
    let skipped = |why: String| {
        Ok(vec![Run {
            scenario: "K".into(),
            contender: "permit-sync controller".into(),
            note: format!("not run: {why}"),
            ..Run::default()
        }])
    };
    let Some(env) = stage.rt.block_on(KubeEnv::start())? else {
        return skipped("no kube-apiserver binaries (tests/kube-testenv/build.sh)".into());
    };
    let result = run(stage, &env, total);
    env.stop();
    result
}

fn run(stage: &Stage, env: &KubeEnv, total: usize) -> anyhow::Result<Vec<Run>> {
    let client = stage.rt.block_on(async { env.client() });
    let ns = stage.rt.block_on(env.namespace(&client, "bench-k"))?;
    let secret: k8s_openapi::api::core::v1::Secret = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "permit-api-key", "namespace": ns},
        "stringData": {"api-key": stage.permit.api_key()},
    }))?;
    stage.rt.block_on(
        Api::<k8s_openapi::api::core::v1::Secret>::namespaced(client.clone(), &ns)
            .create(&PostParams::default(), &secret),
    )?;
    stage.reset()?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let log = stage.settings.work.join("K-controller.log");
    let mut cmd = Command::new(&stage.settings.bin);
    cmd.args(["controller", "--no-pdp"])
        .arg(format!("--kubeconfig={}", env.kubeconfig().display()))
        .arg(format!("--namespace={ns}"))
        .arg(format!("--api-url={}", stage.permit.api_url()))
        .arg(format!("--api-key-secret={ns}/permit-api-key"))
        .arg(format!("--metrics-addr=127.0.0.1:{port}"))
        .args(stage.rate_limit_flags())
        .env_remove("PERMIT_API_KEY")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log)?);
    let child = cmd.spawn()?;
    let outcome = drive(stage, &client, &ns, port, total);
    let peak_mb = harness::stop_child(child);
    let (wall, counters, live) = outcome?;

    // The bound: the scope, the first listing (an empty environment: one page per kind), the
    // writes, and one listing of the result, which is how the controller learns the ids of objects
    // created in bulk (bulk answers carry none) for `status.permitId`.
    let count = |k: Kind| live.get(&k).copied().unwrap_or(0) as u64;
    let pages = |n: u64| n.div_ceil(harness::PER_PAGE).max(1);
    let mut d = BTreeMap::new();
    d.insert("scope".to_string(), 1);
    d.insert("first listing".to_string(), 5);
    d.insert(
        "resources (single)".to_string(),
        count(Kind::PermitResource),
    );
    d.insert(
        "roles upsert (bulk)".to_string(),
        count(Kind::PermitRole).div_ceil(harness::BULK_ROLES),
    );
    d.insert(
        "tenants create (bulk)".to_string(),
        (count(Kind::PermitTenant) - 1).div_ceil(harness::BULK_TENANTS),
    );
    d.insert(
        "users upsert (bulk)".to_string(),
        count(Kind::PermitUser).div_ceil(harness::BULK_USERS),
    );
    d.insert(
        "assign (bulk)".to_string(),
        count(Kind::RoleAssignment).div_ceil(harness::BULK_ASSIGNMENTS),
    );
    d.insert(
        "listing for ids".to_string(),
        [
            Kind::PermitResource,
            Kind::PermitRole,
            Kind::PermitTenant,
            Kind::PermitUser,
            Kind::RoleAssignment,
        ]
        .into_iter()
        .map(|k| pages(count(k)))
        .sum(),
    );
    let run = Run {
        scenario: "K".into(),
        contender: format!("permit-sync controller ({total} CRs at once)"),
        bound: d.values().sum(),
        bound_detail: d,
        peak_rss_mb: Some(peak_mb),
        note: format!(
            "wall = first CR created → every CR Synced=True; log {}",
            log.display()
        ),
        ..Run::default()
    };
    let requests = stage.permit.request_log();
    Ok(vec![harness::finish(run, &counters, Some(&requests), wall)])
}

type Driven = (
    Duration,
    permit_sync::local::knobs::Counters,
    BTreeMap<Kind, usize>,
);

fn drive(
    stage: &Stage,
    client: &kube::Client,
    ns: &str,
    port: u16,
    total: usize,
) -> anyhow::Result<Driven> {
    stage.rt.block_on(async {
        let http = reqwest::Client::new();
        let ready = format!("http://127.0.0.1:{port}/readyz");
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let ok = http
                .get(&ready)
                .send()
                .await
                .is_ok_and(|r| r.status().is_success());
            if ok {
                break;
            }
            anyhow::ensure!(
                Instant::now() < deadline,
                "the controller is not ready after 60 s"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let objs = objects(total);
        let n = objs.len();
        let started = Instant::now();
        // Applied at once, as `kubectl apply -f dir/` would: 32 requests in flight.
        let creates = objs.into_iter().map(|(kind, name, spec)| {
            let api: Api<DynamicObject> =
                Api::namespaced_with(client.clone(), ns, &api_resource(kind));
            async move {
                let mut o = DynamicObject::new(&name, &api_resource(kind));
                o.data = json!({"spec": spec});
                api.create(&PostParams::default(), &o).await.map(drop)
            }
        });
        let results: Vec<_> = futures::stream::iter(creates)
            .buffer_unordered(32)
            .collect()
            .await;
        for r in results {
            r?;
        }
        let deadline = Instant::now() + Duration::from_secs(600);
        let kinds = [
            Kind::PermitResource,
            Kind::PermitRole,
            Kind::PermitTenant,
            Kind::PermitUser,
            Kind::RoleAssignment,
        ];
        loop {
            let mut done = 0;
            for kind in kinds {
                let api: Api<DynamicObject> =
                    Api::namespaced_with(client.clone(), ns, &api_resource(kind));
                done += api
                    .list(&ListParams::default())
                    .await?
                    .items
                    .iter()
                    .filter(|o| synced(o))
                    .count();
            }
            if done == n {
                break;
            }
            anyhow::ensure!(
                Instant::now() < deadline,
                "{done} of {n} resources synced after 600 s"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let wall = started.elapsed();
        // Let trailing calls (a relist after the last batch) land before counting.
        tokio::time::sleep(Duration::from_secs(2)).await;
        let store = stage.permit.store();
        let live = BTreeMap::from([
            (Kind::PermitResource, store.resources.len()),
            (Kind::PermitRole, store.roles.len()),
            (Kind::PermitTenant, store.tenants.len()),
            (Kind::PermitUser, store.users.len()),
            (Kind::RoleAssignment, store.assignments.len()),
        ]);
        drop(store);
        Ok((wall, stage.permit.counters(), live))
    })
}
