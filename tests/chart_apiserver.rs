//! The Helm chart on a real kube-apiserver + etcd (`tests/support/kube_env.rs`):
//!
//! - `helm template` output for every value set passes server-side dry-run (`kubectl apply
//!   --dry-run=server --validate=strict`);
//! - `helm install` on a cluster without the CRDs creates them and everything the values ask for;
//!   `helm upgrade` prunes what the new values drop; `helm uninstall` removes the release but keeps
//!   the CRDs and the default `PermitPDP`;
//! - the chart's RBAC lets its ServiceAccount (impersonated, as the controller's token would be
//!   seen) make every API call of the controller contract (list/watch/get/update, finalizer add and
//!   remove around a delete, status, events, the Lease, the API-key Secret, the PDP objects with
//!   owner references under OwnerReferencesPermissionEnforcement) and nothing beyond it; with one
//!   verb removed from the Role the apiserver refuses with a message naming verb and resource.
//!
//! - the controller binary, run outside the cluster as the ServiceAccount (impersonation), completes
//!   a full lifecycle (finalizer, status, events, Lease, Secret) against the embedded local Permit
//!   with no forbidden answer, and reports a clear permission error once a verb is removed.
//!
//! No controller-manager runs, so Deployments never get pods and
//! nothing is garbage-collected; `helm install` runs without `--wait`.

#[path = "support/kube_env.rs"]
mod kube_env;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Secret, Service, ServiceAccount};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::Client;
use kube::api::{
    Api, ApiResource, DeleteParams, DynamicObject, GroupVersionKind, ListParams, Patch,
    PatchParams, PostParams, WatchParams,
};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// The Kubernetes test environment, or return from the test (skip, outside CI only).
macro_rules! kube_env {
    () => {
        match kube_env::shared() {
            Some(env) => env,
            None => return,
        }
    };
}

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn chart_dir() -> PathBuf {
    root().join("charts/permit-sync")
}

/// Runs helm against the environment's admin kubeconfig, with `values` (if any) as a values file.
fn helm(env: &kube_env::KubeEnv, args: &[&str], values: Option<&str>) -> (bool, String) {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(env.helm());
    cmd.args(args)
        .arg("--kubeconfig")
        .arg(env.kubeconfig())
        .env("HELM_CACHE_HOME", dir.path().join("cache"))
        .env("HELM_CONFIG_HOME", dir.path().join("config"))
        .env("HELM_DATA_HOME", dir.path().join("data"));
    if let Some(values) = values {
        let file = dir.path().join("values.yaml");
        std::fs::write(&file, values).unwrap();
        cmd.arg("--values").arg(&file);
    }
    let out = cmd.output().expect("helm runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

fn helm_ok(env: &kube_env::KubeEnv, args: &[&str], values: Option<&str>) -> String {
    let (ok, out) = helm(env, args, values);
    assert!(ok, "helm {args:?} failed for values\n{values:?}\n{out}");
    out
}

/// The API refusal of `result`: (HTTP code, message). Panics when the call succeeded.
fn refusal<T: std::fmt::Debug>(result: kube::Result<T>, what: &str) -> (u16, String) {
    match result {
        Err(kube::Error::Api(status)) => (status.code, status.message.clone()),
        Err(other) => panic!("{what}: expected an API refusal, got {other:?}"),
        Ok(obj) => panic!("{what}: the apiserver allowed it: {obj:?}"),
    }
}

fn assert_forbidden<T: std::fmt::Debug>(result: kube::Result<T>, what: &str) -> String {
    let (code, message) = refusal(result, what);
    assert_eq!(code, 403, "{what}: {message}");
    message
}

fn must<T>(result: kube::Result<T>, what: &str) -> T {
    result.unwrap_or_else(|e| panic!("{what}: {e}"))
}

fn from_json<T: DeserializeOwned>(v: Value) -> T {
    serde_json::from_value(v).expect("a well-formed object")
}

async fn is_gone<K>(api: &Api<K>, name: &str) -> bool
where
    K: kube::Resource + Clone + DeserializeOwned + std::fmt::Debug,
{
    matches!(api.get_opt(name).await, Ok(None))
}

/// RBAC changes reach the authorizer through an informer: retry `check` for up to 20 s, until
/// it returns a value.
async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(Instant::now() < deadline, "{what}: not within 20s");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// `ApiResource` of a permit-sync kind.
fn permit_resource(kind: &str) -> ApiResource {
    let plural = format!("{}s", kind.to_lowercase());
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("permitsync.dev", "v1alpha1", kind),
        &plural,
    )
}

/// The rbac-blog-reduced example objects: every one of the six kinds at least once.
fn example_objects() -> Vec<DynamicObject> {
    let dir = root().join("examples/rbac-blog-reduced");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    let mut objects = Vec::new();
    for file in files {
        let docs: Vec<Value> =
            serde_saphyr::from_multiple(&std::fs::read_to_string(&file).unwrap()).unwrap();
        objects.extend(docs.into_iter().filter(|d| !d.is_null()).map(from_json));
    }
    let kinds: std::collections::BTreeSet<String> = objects.iter().map(kind_of).collect();
    assert_eq!(
        kinds.len(),
        6,
        "the example covers the six kinds: {kinds:?}"
    );
    objects
}

fn kind_of(o: &DynamicObject) -> String {
    o.types.as_ref().unwrap().kind.clone()
}

// ---------------------------------------------------------------------------------------------
// Server-side dry-run of every value set

/// A stand-in for the Prometheus Operator's ServiceMonitor CRD (not available offline): it lets
/// the apiserver accept the kind; the field checks of the real CRD are not reproduced.
async fn install_service_monitor_stub(client: &Client) {
    let crd: CustomResourceDefinition = from_json(json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "servicemonitors.monitoring.coreos.com"},
        "spec": {
            "group": "monitoring.coreos.com",
            "scope": "Namespaced",
            "names": {"kind": "ServiceMonitor", "plural": "servicemonitors", "singular": "servicemonitor"},
            "versions": [{
                "name": "v1", "served": true, "storage": true,
                "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}
            }]
        }
    }));
    let api = Api::<CustomResourceDefinition>::all(client.clone());
    must(
        api.patch(
            "servicemonitors.monitoring.coreos.com",
            &PatchParams::apply("chart-test").force(),
            &Patch::Apply(&crd),
        )
        .await,
        "installing the ServiceMonitor stub CRD",
    );
    let established = kube::runtime::wait::await_condition(
        api,
        "servicemonitors.monitoring.coreos.com",
        kube::runtime::wait::conditions::is_crd_established(),
    );
    tokio::time::timeout(Duration::from_secs(60), established)
        .await
        .expect("ServiceMonitor CRD established within 60s")
        .unwrap();
}

#[tokio::test]
async fn rendered_chart_passes_server_side_dry_run() {
    let env = kube_env!();
    let client = env.client();
    install_service_monitor_stub(&client).await;
    // {NS}: the release namespace; {TEAM}: a second watched namespace.
    let value_sets = [
        ("default", "{}"),
        ("namespaced", "watchNamespaces: [{NS}, {TEAM}]\n"),
        (
            "chart-created secret, api mode",
            "apiKey: {create: true, value: k3y, mode: api}\n",
        ),
        ("two replicas", "replicaCount: 2\n"),
        (
            "lease elsewhere",
            "leaderElection: {enabled: true, leaseName: ps-lease, leaseNamespace: {TEAM}}\n",
        ),
        (
            "service monitor",
            "metrics: {serviceMonitor: {enabled: true, labels: {release: prom}}}\n",
        ),
        (
            "network policy",
            "networkPolicy: {enabled: true, apiServerCidrs: [10.0.0.1/32], metricsFrom: [{namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: monitoring}}}]}\n",
        ),
        (
            "default PermitPDP",
            "pdp: {create: true, replicas: 3, resources: {requests: {cpu: 100m, memory: 256Mi}}, offlineMode: {enabled: true, sizeLimit: 100Mi}, controlPlaneUrl: 'https://api.permit.io'}\n",
        ),
        (
            "everything",
            "replicaCount: 3\nwatchNamespaces: [{NS}, {TEAM}]\napiUrl: https://api.permit.io\napiKey: {create: true, value: k, mode: api}\nmetrics: {serviceMonitor: {enabled: true}}\nnetworkPolicy: {enabled: true}\npdp: {create: true}\npodAnnotations: {a: b}\nextraEnv: [{name: X, value: 'y'}]\ntolerations: [{key: k, operator: Exists}]\ntopologySpreadConstraints: [{maxSkew: 1, topologyKey: kubernetes.io/hostname, whenUnsatisfiable: ScheduleAnyway, labelSelector: {matchLabels: {app.kubernetes.io/name: permit-sync}}}]\n",
        ),
    ];
    for (label, template) in value_sets {
        let ns = env.namespace(&client, "chart-dry").await.unwrap();
        let team = env.namespace(&client, "chart-team").await.unwrap();
        let values = template.replace("{NS}", &ns).replace("{TEAM}", &team);
        let chart = chart_dir();
        let rendered = helm_ok(
            &env,
            &[
                "template",
                "permit-sync",
                chart.to_str().unwrap(),
                "--namespace",
                &ns,
            ],
            Some(&values),
        );
        let objects = serde_saphyr::from_multiple::<Value>(&rendered)
            .unwrap()
            .into_iter()
            .filter(|d| !d.is_null())
            .count();
        let file = env.dir().join(format!("rendered-{ns}.yaml"));
        std::fs::write(&file, &rendered).unwrap();
        let out = env.kubectl(&[
            "apply",
            "--dry-run=server",
            "--validate=strict",
            "-f",
            file.to_str().unwrap(),
        ]);
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success(),
            "{label}: the apiserver refuses the rendered chart:\n{stderr}\n{stdout}\n{rendered}"
        );
        assert_eq!(
            stdout.matches("(server dry run)").count(),
            objects,
            "{label}: every rendered object is accepted:\n{stdout}"
        );
        assert!(!stderr.contains("Warning"), "{label}: {stderr}");
    }
}

// ---------------------------------------------------------------------------------------------
// helm install / upgrade / uninstall on a cluster that has no CRDs yet

#[tokio::test]
async fn helm_install_upgrade_uninstall_on_a_fresh_cluster() {
    kube_env::install_crypto_provider();
    // A private control plane: no CRDs (helm installs them) and the admission plugin that makes
    // owner references with blockOwnerDeletion need `update` on <owner>/finalizers.
    let options = kube_env::Options {
        install_crds: false,
        extra_apiserver_args: vec![
            "--enable-admission-plugins=OwnerReferencesPermissionEnforcement".into(),
        ],
    };
    let Some(env) = kube_env::KubeEnv::start_with(options)
        .await
        .expect("a private kube-apiserver starts")
    else {
        return;
    };
    let client = env.client();
    let ns = env.namespace(&client, "chart-install").await.unwrap();
    let team = env.namespace(&client, "chart-team").await.unwrap();
    let chart = chart_dir();
    let chart = chart.to_str().unwrap();
    let release = "ps";
    let full = "ps-permit-sync";

    // 1. Install: namespaced RBAC, two replicas, a chart-made Secret read via the API, a
    //    NetworkPolicy and the default PermitPDP.
    let values = format!(
        "replicaCount: 2\nwatchNamespaces: [{ns}, {team}]\napiKey: {{create: true, value: k3y, mode: api}}\nnetworkPolicy: {{enabled: true}}\npdp: {{create: true}}\n"
    );
    let out = helm_ok(
        &env,
        &["install", release, chart, "--namespace", &ns],
        Some(&values),
    );
    assert!(out.contains("STATUS: deployed"), "{out}");

    let crds = Api::<CustomResourceDefinition>::all(client.clone());
    for plural in [
        "permitresources",
        "permitroles",
        "permittenants",
        "permitusers",
        "permitresourceinstances",
        "permitrelationshiptuples",
        "roleassignments",
        "permitpdps",
    ] {
        let name = format!("{plural}.permitsync.dev");
        let established = kube::runtime::wait::await_condition(
            crds.clone(),
            &name,
            kube::runtime::wait::conditions::is_crd_established(),
        );
        tokio::time::timeout(Duration::from_secs(60), established)
            .await
            .unwrap_or_else(|_| panic!("helm installed CRD {name}, Established within 60s"))
            .unwrap();
    }
    let sa = must(
        Api::<ServiceAccount>::namespaced(client.clone(), &ns)
            .get(full)
            .await,
        "ServiceAccount",
    );
    assert_eq!(sa.automount_service_account_token, Some(false));
    let roles = Api::<Role>::namespaced(client.clone(), &ns);
    for name in [
        full.to_string(),
        format!("{full}-leader-election"),
        format!("{full}-api-key"),
    ] {
        must(roles.get(&name).await, &format!("Role {ns}/{name}"));
        let b = must(
            Api::<RoleBinding>::namespaced(client.clone(), &ns)
                .get(&name)
                .await,
            &format!("RoleBinding {ns}/{name}"),
        );
        assert_eq!(b.role_ref.name, name);
        let subject = &b.subjects.as_ref().unwrap()[0];
        assert_eq!(
            (subject.name.as_str(), subject.namespace.as_deref()),
            (full, Some(ns.as_str()))
        );
    }
    must(
        Api::<Role>::namespaced(client.clone(), &team)
            .get(full)
            .await,
        "Role in the second watched namespace",
    );
    assert!(
        is_gone(&Api::<ClusterRole>::all(client.clone()), full).await,
        "namespaced mode creates no ClusterRole"
    );
    let secret = must(
        Api::<Secret>::namespaced(client.clone(), &ns)
            .get("permit-api-key")
            .await,
        "Secret",
    );
    assert_eq!(secret.data.unwrap()["api-key"].0, b"k3y");
    must(
        Api::<Service>::namespaced(client.clone(), &ns)
            .get(&format!("{full}-metrics"))
            .await,
        "metrics Service",
    );
    must(
        Api::<NetworkPolicy>::namespaced(client.clone(), &ns)
            .get(full)
            .await,
        "NetworkPolicy",
    );
    let deployments = Api::<Deployment>::namespaced(client.clone(), &ns);
    let dep = must(deployments.get(full).await, "Deployment");
    let spec = dep.spec;
    assert_eq!(spec.replicas, Some(2));
    let pod = spec.template.spec.unwrap();
    assert_eq!(pod.service_account_name.as_deref(), Some(full));
    let args = pod.containers[0].args.clone().unwrap();
    for flag in [
        "controller".to_string(),
        format!("--namespace={ns},{team}"),
        "--leader-elect".into(),
        format!("--lease-name={full}"),
        format!("--lease-namespace={ns}"),
        format!("--api-key-secret={ns}/permit-api-key"),
    ] {
        assert!(args.contains(&flag), "{flag} in {args:?}");
    }
    let pdps =
        Api::<DynamicObject>::namespaced_with(client.clone(), &ns, &permit_resource("PermitPDP"));
    let pdp = must(pdps.get("pdp").await, "the default PermitPDP");
    assert_eq!(pdp.data["spec"]["image"]["tag"], "0.9.6");
    assert_eq!(
        pdp.data["spec"]["apiKeySecretRef"]["name"],
        "permit-api-key"
    );

    // 2. Owner references under OwnerReferencesPermissionEnforcement: the ServiceAccount may
    //    create a PDP Deployment owned (blockOwnerDeletion) by the PermitPDP...
    let sa_client = Client::try_from(env.service_account(&ns, full)).unwrap();
    let owned = |name: &str| -> Deployment {
        from_json(json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name, "ownerReferences": [{
                "apiVersion": "permitsync.dev/v1alpha1", "kind": "PermitPDP", "name": "pdp",
                "uid": pdp.metadata.uid.clone().unwrap(), "controller": true, "blockOwnerDeletion": true
            }]},
            "spec": {
                "selector": {"matchLabels": {"app": name}},
                "template": {"metadata": {"labels": {"app": name}},
                             "spec": {"containers": [{"name": "pdp", "image": "permitio/pdp-v2:0.9.6"}]}}
            }
        }))
    };
    let sa_deployments = Api::<Deployment>::namespaced(sa_client.clone(), &ns);
    must(
        sa_deployments
            .create(&PostParams::default(), &owned("pdp-owned"))
            .await,
        "the ServiceAccount creates a Deployment owned by the PermitPDP",
    );
    // ... and not without `update` on permitpdps/finalizers.
    let mut role = must(roles.get(full).await, "Role");
    for rule in role.rules.as_mut().unwrap() {
        rule.resources
            .as_mut()
            .unwrap()
            .retain(|r| r != "permitpdps/finalizers");
    }
    role.rules
        .as_mut()
        .unwrap()
        .retain(|r| !r.resources.as_ref().unwrap().is_empty());
    must(
        roles.replace(full, &PostParams::default(), &role).await,
        "narrowing the Role",
    );
    let refusal_message = eventually(
        "owner reference refused without permitpdps/finalizers",
        || {
            let api = sa_deployments.clone();
            let d = owned("pdp-owned-2");
            async move {
                match api.create(&PostParams::default(), &d).await {
                    Err(kube::Error::Api(s)) if s.code == 403 || s.code == 422 => Some(s.message),
                    Ok(_) => {
                        let _ = api.delete("pdp-owned-2", &DeleteParams::default()).await;
                        None
                    }
                    Err(e) => panic!("{e}"),
                }
            }
        },
    )
    .await;
    assert!(
        refusal_message.contains("blockOwnerDeletion"),
        "{refusal_message}"
    );

    // 3. Upgrade to cluster-wide mode, one replica, env key, no NetworkPolicy: what the new
    //    values drop is gone, what they add is there.
    let values = "apiKey: {create: true, value: k3y2}\npdp: {create: true}\n";
    let out = helm_ok(
        &env,
        &["upgrade", release, chart, "--namespace", &ns],
        Some(values),
    );
    assert!(out.contains("STATUS: deployed"), "{out}");
    for name in [
        format!("{full}-leader-election"),
        format!("{full}-api-key"),
        full.to_string(),
    ] {
        assert!(is_gone(&roles, &name).await, "Role {name} pruned");
    }
    assert!(is_gone(&Api::<Role>::namespaced(client.clone(), &team), full).await);
    assert!(is_gone(&Api::<NetworkPolicy>::namespaced(client.clone(), &ns), full).await);
    must(
        Api::<ClusterRole>::all(client.clone()).get(full).await,
        "ClusterRole",
    );
    must(
        Api::<ClusterRoleBinding>::all(client.clone())
            .get(full)
            .await,
        "ClusterRoleBinding",
    );
    let dep = must(deployments.get(full).await, "Deployment");
    let pod = dep.spec.template.spec.unwrap();
    let c = &pod.containers[0];
    assert!(
        !c.args
            .as_ref()
            .unwrap()
            .contains(&"--leader-elect".to_string())
    );
    let env_names: Vec<&str> = c
        .env
        .as_ref()
        .unwrap()
        .iter()
        .map(|e| e.name.as_str())
        .collect();
    assert!(env_names.contains(&"PERMIT_API_KEY"), "{env_names:?}");

    // 4. Uninstall: the release goes; the CRDs (helm never deletes them) and the PermitPDP
    //    (resource-policy keep) stay.
    helm_ok(&env, &["uninstall", release, "--namespace", &ns], None);
    assert!(is_gone(&deployments, full).await, "Deployment removed");
    assert!(
        is_gone(
            &Api::<ServiceAccount>::namespaced(client.clone(), &ns),
            full
        )
        .await
    );
    assert!(is_gone(&Api::<ClusterRole>::all(client.clone()), full).await);
    assert!(
        is_gone(
            &Api::<Secret>::namespaced(client.clone(), &ns),
            "permit-api-key"
        )
        .await
    );
    must(pdps.get("pdp").await, "the PermitPDP is kept");
    must(crds.get("permitpdps.permitsync.dev").await, "CRDs are kept");
}

// ---------------------------------------------------------------------------------------------
// The controller contract, call by call, as the chart's ServiceAccount

/// A release with leader election (two replicas) and the API-key Secret read via the API;
/// `team` is a second namespace, watched in namespaced mode.
struct Release {
    ns: String,
    team: String,
    full: String,
    lease: String,
}

async fn install_release(
    env: &kube_env::KubeEnv,
    client: &Client,
    name: &str,
    cluster_wide: bool,
) -> Release {
    let ns = env.namespace(client, "chart-rbac").await.unwrap();
    let team = env.namespace(client, "chart-team").await.unwrap();
    let mut values = "replicaCount: 2\napiKey: {create: true, value: k3y, mode: api}\n".to_string();
    if !cluster_wide {
        values.push_str(&format!("watchNamespaces: [{ns}, {team}]\n"));
    }
    let chart = chart_dir();
    helm_ok(
        env,
        &["install", name, chart.to_str().unwrap(), "--namespace", &ns],
        Some(&values),
    );
    let full = format!("{name}-permit-sync");
    Release {
        lease: full.clone(),
        ns,
        team,
        full,
    }
}

/// Every API call of the controller contract, as `sa`, on objects in `r.team`: each must succeed.
async fn contract_calls(admin: &Client, sa: &Client, r: &Release) {
    let ns = r.team.as_str();

    // The six kinds: watch, get, finalizer on, update, status, delete held by the finalizer,
    // finalizer off.
    for obj in example_objects() {
        let kind = kind_of(&obj);
        let name = obj.metadata.name.clone().unwrap();
        let what = |step: &str| format!("{kind} {name}: {step}");
        let ar = permit_resource(&kind);
        let admin_api = Api::<DynamicObject>::namespaced_with(admin.clone(), ns, &ar);
        let api = Api::<DynamicObject>::namespaced_with(sa.clone(), ns, &ar);
        must(
            admin_api.create(&PostParams::default(), &obj).await,
            &what("admin create"),
        );

        let list = must(api.list(&ListParams::default()).await, &what("list"));
        assert!(
            list.items
                .iter()
                .any(|o| o.metadata.name.as_deref() == Some(&name))
        );
        let mut stream = must(
            api.watch(&WatchParams::default().timeout(1), "0").await,
            &what("watch"),
        )
        .boxed();
        must(stream.try_next().await, &what("watch event")).expect("an ADDED event");
        drop(stream);
        must(api.get(&name).await, &what("get"));

        let finalizer = json!({"metadata": {"finalizers": ["permitsync.dev/cleanup"]}});
        must(
            api.patch(&name, &PatchParams::default(), &Patch::Merge(&finalizer))
                .await,
            &what("patch (add finalizer)"),
        );
        let mut current = must(api.get(&name).await, &what("get"));
        current
            .metadata
            .labels
            .get_or_insert_with(Default::default)
            .insert("permitsync.dev/seen".into(), "true".into());
        must(
            api.replace(&name, &PostParams::default(), &current).await,
            &what("update"),
        );

        let status = json!({"status": {"observedGeneration": 1, "conditions": [
            {"type": "Synced", "status": "True", "reason": "Synced", "message": "in Permit"}]}});
        must(
            api.patch_status(&name, &PatchParams::default(), &Patch::Merge(&status))
                .await,
            &what("patch status"),
        );
        let mut with_status = must(api.get_status(&name).await, &what("get status"));
        with_status.data["status"]["conditions"][0]["status"] = json!("False");
        must(
            api.replace_status(&name, &PostParams::default(), &with_status)
                .await,
            &what("update status"),
        );

        // Events about the object, both APIs: create, then patch (a repeat).
        let uid = with_status.metadata.uid.clone().unwrap();
        let event_name = format!("{name}.{}", kind.to_lowercase());
        let events = Api::<k8s_openapi::api::events::v1::Event>::namespaced(sa.clone(), ns);
        let event: k8s_openapi::api::events::v1::Event = from_json(json!({
            "metadata": {"name": event_name, "namespace": ns},
            "eventTime": "2026-01-01T00:00:00.000000Z",
            "reportingController": "permitsync.dev/controller",
            "reportingInstance": "permit-sync-0",
            "action": "Sync", "reason": "Synced", "type": "Normal", "note": "synced",
            "regarding": {"apiVersion": "permitsync.dev/v1alpha1", "kind": kind, "name": name,
                          "namespace": ns, "uid": uid}
        }));
        must(
            events.create(&PostParams::default(), &event).await,
            &what("create event"),
        );
        let series =
            json!({"series": {"count": 2, "lastObservedTime": "2026-01-01T00:01:00.000000Z"}});
        must(
            events
                .patch(&event_name, &PatchParams::default(), &Patch::Merge(&series))
                .await,
            &what("patch event"),
        );
        let core_events = Api::<k8s_openapi::api::core::v1::Event>::namespaced(sa.clone(), ns);
        // Both APIs store the same objects: the core event needs a name of its own.
        let core_name = format!("{event_name}.core");
        let core_event: k8s_openapi::api::core::v1::Event = from_json(json!({
            "metadata": {"name": core_name, "namespace": ns},
            "involvedObject": {"apiVersion": "permitsync.dev/v1alpha1", "kind": kind, "name": name,
                               "namespace": ns, "uid": uid},
            "reason": "Synced", "message": "synced", "type": "Normal", "count": 1,
            "source": {"component": "permit-sync"}
        }));
        must(
            core_events
                .create(&PostParams::default(), &core_event)
                .await,
            &what("create core event"),
        );
        must(
            core_events
                .patch(
                    &core_name,
                    &PatchParams::default(),
                    &Patch::Merge(&json!({"count": 2})),
                )
                .await,
            &what("patch core event"),
        );

        // Delete (by a user): the finalizer holds the object until the controller removes it.
        must(
            admin_api.delete(&name, &DeleteParams::default()).await,
            &what("admin delete"),
        );
        let held = must(api.get(&name).await, &what("get while deleting"));
        assert!(
            held.metadata.deletion_timestamp.is_some(),
            "{}",
            what("held by the finalizer")
        );
        let remove = json!({"metadata": {"finalizers": null}});
        must(
            api.patch(&name, &PatchParams::default(), &Patch::Merge(&remove))
                .await,
            &what("patch (remove finalizer)"),
        );
        assert!(
            is_gone(&admin_api, &name).await,
            "{}",
            what("gone after the finalizer")
        );
    }

    // Leader election: create the Lease, read, renew (update), take over (patch, apply).
    let leases = Api::<Lease>::namespaced(sa.clone(), &r.ns);
    let lease: Lease = from_json(json!({
        "metadata": {"name": r.lease},
        "spec": {"holderIdentity": "pod-a", "leaseDurationSeconds": 15}
    }));
    must(
        leases.create(&PostParams::default(), &lease).await,
        "create the Lease",
    );
    let mut current = must(leases.get(&r.lease).await, "get the Lease");
    current.spec.as_mut().unwrap().lease_transitions = Some(1);
    must(
        leases
            .replace(&r.lease, &PostParams::default(), &current)
            .await,
        "update the Lease",
    );
    must(
        leases
            .patch(
                &r.lease,
                &PatchParams::default(),
                &Patch::Strategic(json!({"spec": {"holderIdentity": "pod-b"}})),
            )
            .await,
        "patch the Lease (strategic merge)",
    );
    must(
        leases
            .patch(
                &r.lease,
                &PatchParams::apply("permit-sync").force(),
                &Patch::Apply(
                    json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                                     "spec": {"holderIdentity": "pod-c"}}),
                ),
            )
            .await,
        "patch the Lease (server-side apply)",
    );

    // The API key, from its one Secret.
    let secrets = Api::<Secret>::namespaced(sa.clone(), &r.ns);
    let key = must(
        secrets.get("permit-api-key").await,
        "get the API-key Secret",
    );
    assert_eq!(key.data.unwrap()["api-key"].0, b"k3y");

    // The PDP objects, owned by a PermitPDP: apply, watch, update, delete.
    let pdp_api =
        Api::<DynamicObject>::namespaced_with(admin.clone(), ns, &permit_resource("PermitPDP"));
    let pdp = example_objects()
        .into_iter()
        .find(|o| kind_of(o) == "PermitPDP")
        .unwrap();
    let pdp = must(
        pdp_api.create(&PostParams::default(), &pdp).await,
        "admin creates a PermitPDP",
    );
    let owner = json!([{"apiVersion": "permitsync.dev/v1alpha1", "kind": "PermitPDP",
        "name": pdp.metadata.name, "uid": pdp.metadata.uid, "controller": true, "blockOwnerDeletion": true}]);
    let apply = PatchParams::apply("permit-sync").force();
    let labels =
        json!({"app.kubernetes.io/name": "permit-pdp", "app.kubernetes.io/instance": "pdp"});
    let deployment = json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "pdp", "ownerReferences": owner, "labels": labels},
        "spec": {"replicas": 2, "selector": {"matchLabels": labels},
                 "template": {"metadata": {"labels": labels},
                              "spec": {"containers": [{"name": "pdp", "image": "permitio/pdp-v2:0.9.6",
                                                        "ports": [{"containerPort": 7000}]}]}}}});
    let service = json!({"apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "pdp", "ownerReferences": owner, "labels": labels},
        "spec": {"selector": labels, "ports": [{"name": "http", "port": 7766, "targetPort": 7000}]}});
    let pdb = json!({"apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
        "metadata": {"name": "pdp", "ownerReferences": owner, "labels": labels},
        "spec": {"minAvailable": 1, "selector": {"matchLabels": labels}}});
    async fn crud<K>(api: Api<K>, manifest: Value, apply: &PatchParams, what: &str)
    where
        K: kube::Resource + Clone + DeserializeOwned + serde::Serialize + std::fmt::Debug,
    {
        must(
            api.patch("pdp", apply, &Patch::Apply(&manifest)).await,
            &format!("{what}: apply"),
        );
        must(api.get("pdp").await, &format!("{what}: get"));
        must(
            api.list(&ListParams::default()).await,
            &format!("{what}: list"),
        );
        let _stream = must(
            api.watch(&WatchParams::default().timeout(1), "0").await,
            &format!("{what}: watch"),
        );
        let current = must(api.get("pdp").await, &format!("{what}: get"));
        must(
            api.replace("pdp", &PostParams::default(), &current).await,
            &format!("{what}: update"),
        );
        must(
            api.patch(
                "pdp",
                &PatchParams::default(),
                &Patch::Merge(
                    json!({"metadata": {"annotations": {"permitsync.dev/touched": "1"}}}),
                ),
            )
            .await,
            &format!("{what}: patch"),
        );
        must(
            api.delete("pdp", &DeleteParams::default()).await,
            &format!("{what}: delete"),
        );
    }
    crud(
        Api::<Deployment>::namespaced(sa.clone(), ns),
        deployment,
        &apply,
        "PDP Deployment",
    )
    .await;
    crud(
        Api::<Service>::namespaced(sa.clone(), ns),
        service,
        &apply,
        "PDP Service",
    )
    .await;
    crud(
        Api::<PodDisruptionBudget>::namespaced(sa.clone(), ns),
        pdb,
        &apply,
        "PDP PodDisruptionBudget",
    )
    .await;
}

#[tokio::test]
async fn namespaced_service_account_makes_every_contract_call_and_no_other() {
    let env = kube_env!();
    let admin = env.client();
    let r = install_release(&env, &admin, "rbac", false).await;
    let sa = Client::try_from(env.service_account(&r.ns, &r.full)).unwrap();
    contract_calls(&admin, &sa, &r).await;
    let ns = r.team.as_str();
    let secrets = Api::<Secret>::namespaced(sa.clone(), &r.ns);
    let leases = Api::<Lease>::namespaced(sa.clone(), &r.ns);

    // Nothing beyond the contract.
    let users_ar = permit_resource("PermitUser");
    let users = Api::<DynamicObject>::namespaced_with(sa.clone(), ns, &users_ar);
    let user = example_objects()
        .into_iter()
        .find(|o| kind_of(o) == "PermitUser")
        .unwrap();
    assert_forbidden(
        users.create(&PostParams::default(), &user).await,
        "create a PermitUser",
    );
    Api::<DynamicObject>::namespaced_with(admin.clone(), ns, &users_ar)
        .create(&PostParams::default(), &user)
        .await
        .unwrap();
    let user_name = user.metadata.name.clone().unwrap();
    assert_forbidden(
        users.delete(&user_name, &DeleteParams::default()).await,
        "delete a PermitUser",
    );
    let elsewhere = env.namespace(&admin, "chart-unwatched").await.unwrap();
    assert_forbidden(
        Api::<DynamicObject>::namespaced_with(sa.clone(), &elsewhere, &users_ar)
            .list(&ListParams::default())
            .await,
        "list PermitUsers in an unwatched namespace",
    );
    assert_forbidden(
        Api::<DynamicObject>::all_with(sa.clone(), &users_ar)
            .list(&ListParams::default())
            .await,
        "list PermitUsers cluster-wide",
    );
    assert_forbidden(secrets.list(&ListParams::default()).await, "list Secrets");
    assert_forbidden(
        Api::<Secret>::namespaced(sa.clone(), ns)
            .get("permit-api-key")
            .await,
        "get a Secret in a watched namespace",
    );
    assert_forbidden(leases.get("someone-elses-lease").await, "get another Lease");
    assert_forbidden(
        Api::<k8s_openapi::api::events::v1::Event>::namespaced(sa.clone(), ns)
            .list(&ListParams::default())
            .await,
        "list events",
    );
    assert_forbidden(
        Api::<k8s_openapi::api::core::v1::Pod>::namespaced(sa.clone(), ns)
            .list(&ListParams::default())
            .await,
        "list Pods",
    );

    // One verb removed from the Role: the apiserver names the verb and the resource.
    let roles = Api::<Role>::namespaced(admin.clone(), ns);
    let mut role = roles.get(&r.full).await.unwrap();
    for rule in role.rules.as_mut().unwrap() {
        if rule
            .resources
            .as_ref()
            .unwrap()
            .iter()
            .any(|r| r == "permitusers/status")
        {
            rule.verbs.retain(|v| v != "patch");
        }
    }
    roles
        .replace(&r.full, &PostParams::default(), &role)
        .await
        .unwrap();
    let status = json!({"status": {"conditions": [{"type": "Ready", "status": "True"}]}});
    let message = eventually("patch status refused once the verb is gone", || {
        let users = users.clone();
        let name = user_name.clone();
        let status = status.clone();
        async move {
            match users
                .patch_status(&name, &PatchParams::default(), &Patch::Merge(&status))
                .await
            {
                Err(kube::Error::Api(s)) if s.code == 403 => Some(s.message),
                Ok(_) => None,
                Err(e) => panic!("{e}"),
            }
        }
    })
    .await;
    assert!(
        message.contains(r#"cannot patch resource "permitusers/status""#)
            && message.contains(&format!("system:serviceaccount:{}:{}", r.ns, r.full)),
        "{message}"
    );
}

#[tokio::test]
async fn cluster_wide_service_account_makes_every_contract_call_and_no_other() {
    let env = kube_env!();
    let admin = env.client();
    let r = install_release(&env, &admin, "rbac-cluster", true).await;
    let sa = Client::try_from(env.service_account(&r.ns, &r.full)).unwrap();
    contract_calls(&admin, &sa, &r).await;
    // Cluster-wide watches are allowed; everything outside the contract is still refused.
    let users_ar = permit_resource("PermitUser");
    must(
        Api::<DynamicObject>::all_with(sa.clone(), &users_ar)
            .list(&ListParams::default())
            .await,
        "list PermitUsers cluster-wide",
    );
    for ar in [
        ApiResource::erase::<Deployment>(&()),
        ApiResource::erase::<Service>(&()),
        ApiResource::erase::<PodDisruptionBudget>(&()),
    ] {
        must(
            Api::<DynamicObject>::all_with(sa.clone(), &ar)
                .list(&ListParams::default())
                .await,
            &format!("list {} cluster-wide", ar.plural),
        );
    }
    let user = example_objects()
        .into_iter()
        .find(|o| kind_of(o) == "PermitUser")
        .unwrap();
    assert_forbidden(
        Api::<DynamicObject>::namespaced_with(sa.clone(), &r.team, &users_ar)
            .create(&PostParams::default(), &user)
            .await,
        "create a PermitUser",
    );
    assert_forbidden(
        Api::<Secret>::all(sa.clone())
            .list(&ListParams::default())
            .await,
        "list Secrets",
    );
    assert_forbidden(
        Api::<Secret>::namespaced(sa.clone(), &r.team)
            .get("permit-api-key")
            .await,
        "get a Secret outside the release namespace",
    );
    assert_forbidden(
        Api::<Lease>::namespaced(sa.clone(), &r.team)
            .get(&r.lease)
            .await,
        "get a Lease outside the lease namespace",
    );
    assert_forbidden(
        Api::<k8s_openapi::api::core::v1::Pod>::all(sa.clone())
            .list(&ListParams::default())
            .await,
        "list Pods",
    );
    assert_forbidden(
        Api::<ClusterRole>::all(sa.clone())
            .list(&ListParams::default())
            .await,
        "list ClusterRoles",
    );
}

// ---------------------------------------------------------------------------------------------
// The controller binary as the chart's ServiceAccount

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn controller_binary_as_the_service_account_runs_a_full_lifecycle() {
    use k8s_openapi::api::events::v1::Event;
    use permit_sync::local::{LocalConfig, LocalPermit};
    let env = kube_env!();
    let admin = env.client();
    let r = install_release(&env, &admin, "ctl-e2e", false).await;
    // The release's Secret holds `k3y`: the local Permit takes that key.
    let permit = LocalPermit::start(LocalConfig {
        api_key: Some("k3y".into()),
        ..LocalConfig::ephemeral()
    })
    .await
    .unwrap();
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let log = tempfile::NamedTempFile::new().unwrap();
    let sa = format!("system:serviceaccount:{}:{}", r.ns, r.full);
    let mut child = Command::new(env!("CARGO_BIN_EXE_permit-sync"))
        .args(["controller", "--log-format=json", "--leader-elect"])
        .arg(format!("--kubeconfig={}", env.kubeconfig().display()))
        .arg(format!("--as={sa}"))
        .args([
            "--as-group=system:serviceaccounts",
            "--as-group=system:authenticated",
        ])
        .arg(format!("--as-group=system:serviceaccounts:{}", r.ns))
        .arg(format!("--namespace={},{}", r.ns, r.team))
        .arg(format!("--api-url={}", permit.api_url()))
        .arg(format!("--api-key-secret={}/permit-api-key", r.ns))
        .arg(format!("--lease-name={}", r.lease))
        .arg(format!("--lease-namespace={}", r.ns))
        .arg(format!("--metrics-addr=127.0.0.1:{port}"))
        .env_remove("PERMIT_API_KEY")
        .env("RUST_LOG", "info")
        .stdout(std::process::Stdio::null())
        .stderr(log.reopen().unwrap())
        .spawn()
        .expect("the binary starts");
    let logs = || std::fs::read_to_string(log.path()).unwrap_or_default();
    let wait = |what: &'static str, secs: u64| {
        let deadline = Instant::now() + Duration::from_secs(secs);
        move |done: bool| {
            assert!(
                done || Instant::now() < deadline,
                "{what}: not within {secs}s"
            );
            done
        }
    };

    let tenants_ar = permit_resource("PermitTenant");
    let tenants = Api::<DynamicObject>::namespaced_with(admin.clone(), &r.team, &tenants_ar);
    let tenant = |name: &str, display: &str| -> DynamicObject {
        from_json(json!({
            "apiVersion": "permitsync.dev/v1alpha1", "kind": "PermitTenant",
            "metadata": {"name": name, "namespace": r.team}, "spec": {"name": display},
        }))
    };
    let synced_gen = |o: &DynamicObject| -> Option<i64> {
        let c = o.data["status"]["conditions"]
            .as_array()?
            .iter()
            .find(|c| c["type"] == "Synced" && c["status"] == "True")?;
        c["observedGeneration"].as_i64()
    };
    let in_permit = |key: &str| {
        permit
            .store()
            .tenants
            .rows()
            .iter()
            .find(|t| t.key == key)
            .map(|t| t.name.clone())
    };

    // Create.
    tenants
        .create(&PostParams::default(), &tenant("acme", "Acme"))
        .await
        .unwrap();
    let check = wait("created and Synced", 60);
    while !check(tenants.get("acme").await.ok().and_then(|o| synced_gen(&o)) == Some(1)) {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(in_permit("acme").as_deref(), Some("Acme"));
    // Update.
    tenants
        .patch(
            "acme",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"name": "Acme Corp"}})),
        )
        .await
        .unwrap();
    let check = wait("updated", 60);
    while !check(in_permit("acme").as_deref() == Some("Acme Corp")) {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Delete, through the finalizer.
    tenants
        .delete("acme", &DeleteParams::default())
        .await
        .unwrap();
    let check = wait("deleted", 60);
    while !check(is_gone(&tenants, "acme").await) {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(in_permit("acme"), None);
    let events = Api::<Event>::namespaced(admin.clone(), &r.team)
        .list(&ListParams::default())
        .await
        .unwrap();
    assert!(
        events
            .items
            .iter()
            .any(|e| e.reason.as_deref() == Some("ReconcileSuccess")),
        "events were published"
    );
    let lease = Api::<Lease>::namespaced(admin.clone(), &r.ns)
        .get(&r.lease)
        .await
        .unwrap();
    assert!(
        lease.spec.and_then(|s| s.holder_identity).is_some(),
        "the Lease is held"
    );
    let text = logs();
    assert!(
        !text.contains("forbidden") && !text.contains("permission denied"),
        "no forbidden answer in a full lifecycle:\n{text}"
    );
    assert!(!text.contains("k3y"), "the API key is not logged");

    // One verb removed: a clear permission error in the log, naming verb and resource.
    let roles = Api::<Role>::namespaced(admin.clone(), &r.team);
    let mut role = roles.get(&r.full).await.unwrap();
    for rule in role.rules.as_mut().unwrap() {
        if rule
            .resources
            .as_ref()
            .unwrap()
            .iter()
            .any(|r| r == "permittenants/status")
        {
            rule.verbs.retain(|v| v != "patch");
        }
    }
    roles
        .replace(&r.full, &PostParams::default(), &role)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await; // RBAC reaches the authorizer via an informer
    tenants
        .create(&PostParams::default(), &tenant("later", "Later"))
        .await
        .unwrap();
    let check = wait("a permission error in the log", 60);
    while !check(logs().contains(r#"cannot patch resource \"permittenants/status\""#)) {
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let text = logs();
    let line = text
        .lines()
        .find(|l| l.contains("permittenants/status"))
        .unwrap();
    assert!(line.contains("permission denied"), "{line}");
    assert!(line.contains("PermitTenant"), "the object is named: {line}");

    // SAFETY: signals the child we started.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let deadline = Instant::now() + Duration::from_secs(15);
    while child.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "no exit after SIGTERM");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    permit.shutdown().await.unwrap();
}
