//! The Helm chart (`charts/permit-sync`), checked without a cluster: `helm lint --strict` and
//! `helm template` for several value sets, with the rendered objects parsed and asserted (security
//! context, probes, arguments, RBAC by namespace mode), plus the files the chart must keep in step
//! with the repository (CRDs, README values table, Dockerfile).
//!
//! helm comes from `$KUBE_TESTENV_BIN/helm`, else the cache `tests/kube-testenv/build.sh` fills. When
//! it is missing the helm tests skip with a message, except under `CI=true`, where they fail.

use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

const RELEASE: &str = "permit-sync";
const NAMESPACE: &str = "permit-system";
/// The full name the chart gives its objects for release `permit-sync`.
const FULLNAME: &str = "permit-sync";
/// The kube-testenv folder `tests/kube-testenv/build.sh` builds into (default versions).
const TESTENV_CACHE: &str = ".cache/permit-sync/kube-testenv/v1.37.2-helm3.21.4";

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn chart_dir() -> PathBuf {
    root().join("charts/permit-sync")
}

/// The helm binary, or `None` (after saying why) when it is absent outside CI.
fn helm() -> Option<PathBuf> {
    let dir = match std::env::var_os("KUBE_TESTENV_BIN") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(TESTENV_CACHE),
    };
    let helm = dir.join("helm");
    if helm.is_file() {
        return Some(helm);
    }
    let msg = format!(
        "helm not found at {}: build it with `tests/kube-testenv/build.sh` (or set KUBE_TESTENV_BIN to the folder holding helm)",
        helm.display()
    );
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("{msg}");
    }
    eprintln!("SKIPPED: {msg}");
    None
}

macro_rules! require_helm {
    () => {
        match helm() {
            Some(h) => h,
            None => return,
        }
    };
}

/// Runs helm with `values` (YAML) as a values file; returns (success, stdout, stderr).
fn run_helm(helm: &Path, args: &[&str], values: &str) -> (bool, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("values.yaml");
    std::fs::write(&file, values).unwrap();
    let out = Command::new(helm)
        .args(args)
        .arg("--values")
        .arg(&file)
        .env("HELM_CACHE_HOME", dir.path().join("cache"))
        .env("HELM_CONFIG_HOME", dir.path().join("config"))
        .env("HELM_DATA_HOME", dir.path().join("data"))
        .output()
        .expect("helm runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The objects `helm template` renders for `values`.
struct Rendered(Vec<Value>);

fn template_result(helm: &Path, values: &str, extra: &[&str]) -> Result<Rendered, String> {
    let chart = chart_dir();
    let mut args = vec![
        "template",
        RELEASE,
        chart.to_str().unwrap(),
        "--namespace",
        NAMESPACE,
    ];
    args.extend_from_slice(extra);
    let (ok, stdout, stderr) = run_helm(helm, &args, values);
    if !ok {
        return Err(stderr);
    }
    let docs: Vec<Value> = serde_saphyr::from_multiple(&stdout)
        .unwrap_or_else(|e| panic!("helm template output is YAML: {e}\n{stdout}"));
    Ok(Rendered(
        docs.into_iter().filter(|d| !d.is_null()).collect(),
    ))
}

fn template(helm: &Path, values: &str) -> Rendered {
    template_result(helm, values, &[])
        .unwrap_or_else(|e| panic!("helm template fails for values\n{values}\n{e}"))
}

fn template_error(helm: &Path, values: &str) -> String {
    match template_result(helm, values, &[]) {
        Ok(_) => panic!("helm template accepts values it must refuse:\n{values}"),
        Err(e) => e,
    }
}

impl Rendered {
    fn of_kind(&self, kind: &str) -> Vec<&Value> {
        self.0.iter().filter(|o| o["kind"] == kind).collect()
    }

    fn get(&self, kind: &str, namespace: Option<&str>, name: &str) -> &Value {
        self.0
            .iter()
            .find(|o| {
                o["kind"] == kind
                    && o["metadata"]["name"] == name
                    && o["metadata"]["namespace"].as_str() == namespace
            })
            .unwrap_or_else(|| panic!("no {kind} {namespace:?}/{name} in {:?}", self.summary()))
    }

    fn summary(&self) -> Vec<String> {
        let mut s: Vec<String> = self
            .0
            .iter()
            .map(|o| {
                format!(
                    "{} {}/{}",
                    o["kind"].as_str().unwrap_or("?"),
                    o["metadata"]["namespace"].as_str().unwrap_or("-"),
                    o["metadata"]["name"].as_str().unwrap_or("?")
                )
            })
            .collect();
        s.sort();
        s
    }

    fn kinds(&self) -> BTreeMap<String, usize> {
        let mut m = BTreeMap::new();
        for o in &self.0 {
            *m.entry(o["kind"].as_str().unwrap().to_string())
                .or_insert(0) += 1;
        }
        m
    }

    fn deployment(&self) -> &Value {
        self.get("Deployment", Some(NAMESPACE), FULLNAME)
    }

    fn container(&self) -> &Value {
        let containers = self.deployment()["spec"]["template"]["spec"]["containers"]
            .as_array()
            .unwrap();
        assert_eq!(containers.len(), 1, "one container");
        &containers[0]
    }

    fn args(&self) -> Vec<String> {
        strings(&self.container()["args"])
    }

    fn env(&self, name: &str) -> Option<&Value> {
        self.container()["env"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["name"] == name)
    }
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap_or_else(|| panic!("not a list: {v}"))
        .iter()
        .map(|s| s.as_str().unwrap().to_string())
        .collect()
}

fn kinds(pairs: &[(&str, usize)]) -> BTreeMap<String, usize> {
    pairs.iter().map(|(k, n)| (k.to_string(), *n)).collect()
}

/// What a set of RBAC rules grants: (apiGroup, resource, resourceName or "*") -> verbs.
type Grants = BTreeMap<(String, String, String), BTreeSet<String>>;

fn grants(rules: &Value) -> Grants {
    let mut g = Grants::new();
    for rule in rules.as_array().expect("rules") {
        let groups = strings(&rule["apiGroups"]);
        let resources = strings(&rule["resources"]);
        let verbs = strings(&rule["verbs"]);
        let names = match rule.get("resourceNames") {
            Some(n) => strings(n),
            None => vec!["*".to_string()],
        };
        for s in groups.iter().chain(&resources).chain(&verbs) {
            assert_ne!(s, "*", "no wildcard in RBAC rules: {rule}");
        }
        for group in &groups {
            for resource in &resources {
                for name in &names {
                    g.entry((group.clone(), resource.clone(), name.clone()))
                        .or_default()
                        .extend(verbs.iter().cloned());
                }
            }
        }
    }
    g
}

const KINDS: [&str; 8] = [
    "permitresources",
    "permitroles",
    "permittenants",
    "permitusers",
    "permitresourceinstances",
    "permitrelationshiptuples",
    "roleassignments",
    "permitpdps",
];

/// Exactly what the controller's main Role/ClusterRole must grant: nothing more, nothing less.
fn expected_controller_grants() -> Grants {
    let mut g = Grants::new();
    let mut put = |group: &str, resource: &str, verbs: &[&str]| {
        g.insert(
            (group.into(), resource.into(), "*".into()),
            verbs.iter().map(|v| v.to_string()).collect(),
        );
    };
    for kind in KINDS {
        put(
            "permitsync.dev",
            kind,
            &["get", "list", "watch", "patch", "update"],
        );
        put(
            "permitsync.dev",
            &format!("{kind}/status"),
            &["get", "patch", "update"],
        );
    }
    put("permitsync.dev", "permitpdps/finalizers", &["update"]);
    put("events.k8s.io", "events", &["create", "patch"]);
    put("", "events", &["create", "patch"]);
    let crud = [
        "get", "list", "watch", "create", "patch", "update", "delete",
    ];
    put("apps", "deployments", &crud);
    put("", "services", &crud);
    put("policy", "poddisruptionbudgets", &crud);
    g
}

fn assert_binding(binding: &Value, role_kind: &str, role_name: &str) {
    assert_eq!(binding["roleRef"]["kind"], role_kind, "{binding}");
    assert_eq!(binding["roleRef"]["name"], role_name, "{binding}");
    assert_eq!(
        binding["roleRef"]["apiGroup"], "rbac.authorization.k8s.io",
        "{binding}"
    );
    let subjects = binding["subjects"].as_array().unwrap();
    assert_eq!(subjects.len(), 1, "{binding}");
    assert_eq!(subjects[0]["kind"], "ServiceAccount");
    assert_eq!(subjects[0]["name"], FULLNAME);
    assert_eq!(subjects[0]["namespace"], NAMESPACE);
}

/// Labels in `selector` all present, with the same values, in `labels`.
fn selects(selector: &Value, labels: &Value) -> bool {
    let selector = selector.as_object().expect("selector map");
    assert!(!selector.is_empty(), "empty selector");
    selector.iter().all(|(k, v)| labels.get(k) == Some(v))
}

// ---------------------------------------------------------------------------------------------
// Value sets exercised by the lint test and the object tests below.

const DEFAULT: &str = "{}";
const NAMESPACED: &str = "watchNamespaces: [team-a, team-b]\n";
const CREATED_SECRET: &str = "apiKey:\n  create: true\n  value: permit_key_s3cr3t\n";
const API_MODE: &str = "apiKey:\n  mode: api\n  secretName: my-key\n";
const TWO_REPLICAS: &str = "replicaCount: 2\n";
const SERVICE_MONITOR: &str =
    "metrics:\n  serviceMonitor:\n    enabled: true\n    labels:\n      release: prom\n";
const NETWORK_POLICY: &str = "networkPolicy:\n  enabled: true\n  apiServerCidrs: [10.96.0.1/32]\n  metricsFrom:\n    - namespaceSelector:\n        matchLabels:\n          kubernetes.io/metadata.name: monitoring\n";
const PDP: &str = "pdp:\n  create: true\n  replicas: 3\n  offlineMode:\n    enabled: true\n    sizeLimit: 100Mi\n";
const EVERYTHING: &str = "replicaCount: 3\nwatchNamespaces: [permit-system, apps]\napiUrl: https://permit.example.com\napiKey:\n  create: true\n  value: k\n  mode: api\nmetrics:\n  serviceMonitor:\n    enabled: true\nnetworkPolicy:\n  enabled: true\npdp:\n  create: true\nimage:\n  digest: sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\n";

#[test]
fn helm_lint_strict_passes_for_every_value_set() {
    let helm = require_helm!();
    let chart = chart_dir();
    for values in [
        DEFAULT,
        NAMESPACED,
        CREATED_SECRET,
        API_MODE,
        TWO_REPLICAS,
        SERVICE_MONITOR,
        NETWORK_POLICY,
        PDP,
        EVERYTHING,
    ] {
        let (ok, stdout, stderr) = run_helm(
            &helm,
            &["lint", "--strict", chart.to_str().unwrap()],
            values,
        );
        assert!(
            ok && stdout.contains("0 chart(s) failed"),
            "helm lint --strict fails for values\n{values}\n{stdout}\n{stderr}"
        );
        assert!(
            !stdout.contains("[WARNING]") && !stdout.contains("[ERROR]"),
            "{stdout}"
        );
    }
}

#[test]
fn default_values_render_a_hardened_cluster_wide_controller() {
    let helm = require_helm!();
    let r = template(&helm, DEFAULT);
    assert_eq!(
        r.kinds(),
        kinds(&[
            ("ClusterRole", 1),
            ("ClusterRoleBinding", 1),
            ("Deployment", 1),
            ("Service", 1),
            ("ServiceAccount", 1),
        ]),
        "{:?}",
        r.summary()
    );
    let dep = r.deployment();
    assert_eq!(dep["spec"]["replicas"], 1);
    assert_eq!(
        dep["spec"]["strategy"]["type"], "Recreate",
        "without leader election two controllers must never overlap"
    );
    let pod = &dep["spec"]["template"];
    assert!(
        selects(
            &dep["spec"]["selector"]["matchLabels"],
            &pod["metadata"]["labels"]
        ),
        "the Deployment selects its pods"
    );
    let spec = &pod["spec"];
    assert_eq!(spec["serviceAccountName"], FULLNAME);
    assert_eq!(spec["automountServiceAccountToken"], true);
    let sa = r.get("ServiceAccount", Some(NAMESPACE), FULLNAME);
    assert_eq!(sa["automountServiceAccountToken"], false);

    // Pod and container security.
    let psc = &spec["securityContext"];
    assert_eq!(psc["runAsNonRoot"], true);
    assert!(psc["runAsUser"].as_i64().unwrap() > 0, "{psc}");
    assert_eq!(psc["seccompProfile"]["type"], "RuntimeDefault");
    let c = r.container();
    let csc = &c["securityContext"];
    assert_eq!(csc["readOnlyRootFilesystem"], true);
    assert_eq!(csc["allowPrivilegeEscalation"], false);
    assert_eq!(csc["runAsNonRoot"], true);
    assert_eq!(csc["privileged"], false);
    assert_eq!(strings(&csc["capabilities"]["drop"]), ["ALL"]);
    assert!(csc["capabilities"].get("add").is_none(), "{csc}");
    assert_eq!(c["image"], "ghcr.io/permitsync/permit-sync:0.1.0");

    // Command line: the controller contract, with no namespace (all), no leader election.
    assert_eq!(
        r.args(),
        [
            "controller",
            "--metrics-addr=0.0.0.0:9090",
            "--log-format=json"
        ]
    );
    let key = r.env("PERMIT_API_KEY").expect("PERMIT_API_KEY is set");
    assert!(
        key.get("value").is_none(),
        "the key never appears in plain env"
    );
    assert_eq!(key["valueFrom"]["secretKeyRef"]["name"], "permit-api-key");
    assert_eq!(key["valueFrom"]["secretKeyRef"]["key"], "api-key");
    assert_eq!(r.env("RUST_LOG").unwrap()["value"], "info");

    // Probes on the metrics port, which the Service exposes.
    let ports = c["ports"].as_array().unwrap();
    assert_eq!(ports.len(), 1);
    assert_eq!(ports[0]["name"], "metrics");
    assert_eq!(ports[0]["containerPort"], 9090);
    for (probe, path) in [("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")] {
        let p = &c[probe];
        assert_eq!(p["httpGet"]["path"], path, "{probe}");
        assert_eq!(p["httpGet"]["port"], "metrics", "{probe}");
        assert!(p["periodSeconds"].as_i64().unwrap() > 0, "{probe}");
    }
    assert!(c["resources"]["requests"]["cpu"].is_string());
    assert!(c["resources"]["requests"]["memory"].is_string());
    assert!(c["resources"]["limits"]["memory"].is_string());
    // The read-only root filesystem gets a writable /tmp.
    assert_eq!(c["volumeMounts"][0]["mountPath"], "/tmp");
    assert_eq!(spec["volumes"][0]["name"], c["volumeMounts"][0]["name"]);

    let svc = r.get("Service", Some(NAMESPACE), &format!("{FULLNAME}-metrics"));
    assert!(selects(
        &svc["spec"]["selector"],
        &pod["metadata"]["labels"]
    ));
    assert_eq!(svc["spec"]["ports"][0]["port"], 9090);
    assert_eq!(svc["spec"]["ports"][0]["targetPort"], "metrics");
}

#[test]
fn cluster_mode_rbac_is_exactly_the_controller_contract() {
    let helm = require_helm!();
    let r = template(&helm, DEFAULT);
    let role = r.get("ClusterRole", None, FULLNAME);
    assert_eq!(grants(&role["rules"]), expected_controller_grants());
    assert_binding(
        r.get("ClusterRoleBinding", None, FULLNAME),
        "ClusterRole",
        FULLNAME,
    );
    assert!(r.of_kind("Role").is_empty(), "no lease or secret Role");
    // No Secret access of any kind in env mode.
    assert!(
        !grants(&role["rules"])
            .keys()
            .any(|(_, res, _)| res == "secrets"),
        "env mode reads no Secret"
    );
}

#[test]
fn namespaced_mode_has_a_role_per_namespace_and_nothing_cluster_wide() {
    let helm = require_helm!();
    let r = template(&helm, NAMESPACED);
    assert!(r.of_kind("ClusterRole").is_empty(), "{:?}", r.summary());
    assert!(r.of_kind("ClusterRoleBinding").is_empty());
    assert_eq!(
        r.of_kind("Role").len(),
        2,
        "one Role per namespace: {:?}",
        r.summary()
    );
    for ns in ["team-a", "team-b"] {
        let role = r.get("Role", Some(ns), FULLNAME);
        assert_eq!(grants(&role["rules"]), expected_controller_grants(), "{ns}");
        assert_binding(r.get("RoleBinding", Some(ns), FULLNAME), "Role", FULLNAME);
    }
    assert!(
        r.args().contains(&"--namespace=team-a,team-b".to_string()),
        "{:?}",
        r.args()
    );
}

#[test]
fn chart_created_secret_feeds_the_controller() {
    let helm = require_helm!();
    let r = template(&helm, CREATED_SECRET);
    let secret = r.get("Secret", Some(NAMESPACE), "permit-api-key");
    assert_eq!(secret["type"], "Opaque");
    // base64("permit_key_s3cr3t")
    assert_eq!(secret["data"]["api-key"], "cGVybWl0X2tleV9zM2NyM3Q=");
    let key = r.env("PERMIT_API_KEY").unwrap();
    assert_eq!(key["valueFrom"]["secretKeyRef"]["name"], "permit-api-key");
    assert_eq!(key["valueFrom"]["secretKeyRef"]["key"], "api-key");
    let annotations = &r.deployment()["spec"]["template"]["metadata"]["annotations"];
    let checksum = annotations["checksum/api-key"].as_str().unwrap();
    assert_eq!(checksum.len(), 64, "a sha256 that rolls the pods on change");
    assert!(!checksum.contains("s3cr3t"));

    let err = template_error(&helm, "apiKey:\n  create: true\n");
    assert!(
        err.contains("apiKey/value") || err.contains("apiKey.value"),
        "{err}"
    );
}

#[test]
fn api_mode_grants_get_on_the_one_secret() {
    let helm = require_helm!();
    let r = template(&helm, API_MODE);
    assert!(
        r.env("PERMIT_API_KEY").is_none(),
        "the key is read via the API"
    );
    assert!(
        r.args()
            .contains(&format!("--api-key-secret={NAMESPACE}/my-key")),
        "{:?}",
        r.args()
    );
    let name = format!("{FULLNAME}-api-key");
    let role = r.get("Role", Some(NAMESPACE), &name);
    let mut expected = Grants::new();
    expected.insert(
        ("".into(), "secrets".into(), "my-key".into()),
        ["get".to_string()].into(),
    );
    assert_eq!(grants(&role["rules"]), expected);
    assert_binding(r.get("RoleBinding", Some(NAMESPACE), &name), "Role", &name);
    assert!(
        r.of_kind("Secret").is_empty(),
        "the chart creates no Secret"
    );
}

fn expected_lease_grants(lease: &str) -> Grants {
    let mut g = Grants::new();
    g.insert(
        ("coordination.k8s.io".into(), "leases".into(), "*".into()),
        ["create".to_string()].into(),
    );
    g.insert(
        ("coordination.k8s.io".into(), "leases".into(), lease.into()),
        ["get", "update", "patch"]
            .iter()
            .map(|s| s.to_string())
            .collect(),
    );
    g
}

#[test]
fn two_replicas_turn_on_leader_election_with_its_lease_role() {
    let helm = require_helm!();
    let r = template(&helm, TWO_REPLICAS);
    let dep = r.deployment();
    assert_eq!(dep["spec"]["replicas"], 2);
    assert_eq!(dep["spec"]["strategy"]["type"], "RollingUpdate");
    let args = r.args();
    for flag in [
        "--leader-elect".to_string(),
        format!("--lease-name={FULLNAME}"),
        format!("--lease-namespace={NAMESPACE}"),
    ] {
        assert!(args.contains(&flag), "{flag} in {args:?}");
    }
    let name = format!("{FULLNAME}-leader-election");
    let role = r.get("Role", Some(NAMESPACE), &name);
    assert_eq!(grants(&role["rules"]), expected_lease_grants(FULLNAME));
    assert_binding(r.get("RoleBinding", Some(NAMESPACE), &name), "Role", &name);
    // The main rules carry no lease permission.
    let main = grants(&r.get("ClusterRole", None, FULLNAME)["rules"]);
    assert!(!main.keys().any(|(_, res, _)| res == "leases"));

    // Forced with one replica, with its own lease name and namespace.
    let r = template(
        &helm,
        "leaderElection:\n  enabled: true\n  leaseName: ps-leader\n  leaseNamespace: kube-leases\n",
    );
    let args = r.args();
    assert!(args.contains(&"--leader-elect".to_string()), "{args:?}");
    assert!(args.contains(&"--lease-name=ps-leader".to_string()));
    assert!(args.contains(&"--lease-namespace=kube-leases".to_string()));
    let role = r.get("Role", Some("kube-leases"), &name);
    assert_eq!(grants(&role["rules"]), expected_lease_grants("ps-leader"));

    // One replica: none of it.
    let r = template(&helm, DEFAULT);
    assert!(!r.args().iter().any(|a| a.starts_with("--lease")));
    assert!(!r.args().contains(&"--leader-elect".to_string()));
}

#[test]
fn service_monitor_scrapes_the_metrics_service() {
    let helm = require_helm!();
    let r = template(&helm, SERVICE_MONITOR);
    let sm = r.get("ServiceMonitor", Some(NAMESPACE), FULLNAME);
    assert_eq!(sm["apiVersion"], "monitoring.coreos.com/v1");
    assert_eq!(sm["metadata"]["labels"]["release"], "prom");
    let svc = r.get("Service", Some(NAMESPACE), &format!("{FULLNAME}-metrics"));
    assert!(selects(
        &sm["spec"]["selector"]["matchLabels"],
        &svc["metadata"]["labels"]
    ));
    assert_eq!(
        strings(&sm["spec"]["namespaceSelector"]["matchNames"]),
        [NAMESPACE]
    );
    let ep = &sm["spec"]["endpoints"][0];
    assert_eq!(ep["port"], svc["spec"]["ports"][0]["name"]);
    assert_eq!(ep["path"], "/metrics");
    assert!(
        template(&helm, DEFAULT)
            .of_kind("ServiceMonitor")
            .is_empty()
    );

    let err = template_error(
        &helm,
        "metrics:\n  service:\n    enabled: false\n  serviceMonitor:\n    enabled: true\n",
    );
    assert!(err.contains("metrics.service.enabled"), "{err}");
}

#[test]
fn network_policy_admits_metrics_and_the_controllers_egress() {
    let helm = require_helm!();
    let r = template(&helm, NETWORK_POLICY);
    let np = r.get("NetworkPolicy", Some(NAMESPACE), FULLNAME);
    let pod_labels = &r.deployment()["spec"]["template"]["metadata"]["labels"];
    assert!(selects(
        &np["spec"]["podSelector"]["matchLabels"],
        pod_labels
    ));
    assert_eq!(strings(&np["spec"]["policyTypes"]), ["Ingress", "Egress"]);
    let ingress = np["spec"]["ingress"].as_array().unwrap();
    assert_eq!(ingress.len(), 1, "ingress to the metrics port only");
    assert_eq!(ingress[0]["ports"][0]["port"], "metrics");
    assert_eq!(
        ingress[0]["from"][0]["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"],
        "monitoring"
    );
    let egress = np["spec"]["egress"].as_array().unwrap();
    let allows = |port: i64, proto: &str| {
        egress.iter().any(|rule| {
            rule["ports"]
                .as_array()
                .unwrap()
                .iter()
                .any(|p| p["port"] == port && p["protocol"] == proto)
        })
    };
    assert!(allows(53, "UDP") && allows(53, "TCP"), "DNS");
    assert!(allows(443, "TCP"), "the Permit API");
    assert!(allows(6443, "TCP"), "the API server");
    assert!(allows(7000, "TCP"), "PDP health");
    let api_rule = egress
        .iter()
        .find(|rule| {
            rule["ports"]
                .as_array()
                .unwrap()
                .iter()
                .any(|p| p["port"] == 6443)
        })
        .unwrap();
    assert_eq!(api_rule["to"][0]["ipBlock"]["cidr"], "10.96.0.1/32");
    assert!(template(&helm, DEFAULT).of_kind("NetworkPolicy").is_empty());
}

#[test]
fn default_permit_pdp_is_a_valid_permit_pdp() {
    let helm = require_helm!();
    let r = template(&helm, PDP);
    let pdp = r.get("PermitPDP", Some(NAMESPACE), "pdp");
    assert_eq!(pdp["apiVersion"], "permitsync.dev/v1alpha1");
    // The same types that generate the CRD parse it (unknown fields are refused).
    let parsed: permit_sync::kinds::PermitPDP =
        serde_json::from_value(pdp.clone()).expect("the chart's PermitPDP parses as a PermitPDP");
    assert_eq!(parsed.spec.replicas, Some(3));
    let image = parsed.spec.image.as_ref().unwrap();
    assert_eq!(
        image.repository.as_deref(),
        Some(permit_sync::kinds::pdp::DEFAULT_PDP_IMAGE)
    );
    assert_ne!(image.tag, "latest");
    let key = parsed.spec.api_key_secret_ref.as_ref().unwrap();
    assert_eq!(
        key.name, "permit-api-key",
        "the controller's Secret by default"
    );
    assert_eq!(key.key.as_deref(), Some("api-key"));
    let offline = parsed.spec.offline_mode.as_ref().unwrap();
    assert!(offline.enabled);
    assert_eq!(offline.size_limit.as_deref(), Some("100Mi"));
    assert_eq!(
        pdp["metadata"]["annotations"]["helm.sh/resource-policy"],
        "keep"
    );
    // PDP objects must never be mistaken for the controller (Service, NetworkPolicy selectors).
    let svc = r.get("Service", Some(NAMESPACE), &format!("{FULLNAME}-metrics"));
    assert!(!selects(
        &svc["spec"]["selector"],
        &pdp["metadata"]["labels"]
    ));
    assert!(template(&helm, DEFAULT).of_kind("PermitPDP").is_empty());

    let err = template_error(&helm, "pdp:\n  create: true\n  image:\n    tag: latest\n");
    assert!(err.contains("'latest' is not allowed"), "{err}");
    let err = template_error(&helm, "pdp:\n  create: true\nwatchNamespaces: [other]\n");
    assert!(err.contains("watchNamespaces"), "{err}");
}

#[test]
fn everything_at_once_renders_consistently() {
    let helm = require_helm!();
    let r = template(&helm, EVERYTHING);
    assert_eq!(
        r.kinds(),
        kinds(&[
            ("Deployment", 1),
            ("NetworkPolicy", 1),
            ("PermitPDP", 1),
            // team Roles (2) + leader election + api key
            ("Role", 4),
            ("RoleBinding", 4),
            ("Secret", 1),
            ("Service", 1),
            ("ServiceAccount", 1),
            ("ServiceMonitor", 1),
        ]),
        "{:?}",
        r.summary()
    );
    assert_eq!(
        r.container()["image"],
        "ghcr.io/permitsync/permit-sync@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
    );
    let args = r.args();
    for flag in [
        "controller",
        "--namespace=permit-system,apps",
        "--api-url=https://permit.example.com",
        "--api-key-secret=permit-system/permit-api-key",
        "--leader-elect",
    ] {
        assert!(args.contains(&flag.to_string()), "{flag} in {args:?}");
    }
}

#[test]
fn schema_and_templates_refuse_bad_values() {
    let helm = require_helm!();
    for (values, expected) in [
        ("bogus: 1\n", "bogus"),
        ("replicaCount: -1\n", "replicaCount"),
        ("watchNamespaces: [Not_A_Namespace]\n", "watchNamespaces"),
        ("watchNamespaces: [a, b, a]\n", "watchNamespaces"),
        ("apiKey:\n  mode: file\n", "apiKey/mode"),
        ("logFormat: xml\n", "logFormat"),
        ("image:\n  tag: latest\n", "'latest' is not allowed"),
        ("serviceAccount:\n  create: false\n", "serviceAccount.name"),
    ] {
        let err = template_error(&helm, values);
        assert!(err.contains(expected), "{values}: {err}");
    }
}

#[test]
fn chart_requires_a_kubernetes_with_cel_validation() {
    let helm = require_helm!();
    assert!(template_result(&helm, DEFAULT, &["--kube-version", "1.29.0"]).is_ok());
    let err = template_result(&helm, DEFAULT, &["--kube-version", "1.28.9"])
        .err()
        .expect("Kubernetes 1.28 is refused");
    assert!(err.contains("kubeVersion"), "{err}");
}

// ---------------------------------------------------------------------------------------------
// Files kept in step with the repository (no helm needed).

#[test]
fn chart_crds_equal_the_generated_crds() {
    let list = |dir: &Path| -> BTreeMap<String, Vec<u8>> {
        std::fs::read_dir(dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|e| e.unwrap().path())
            .map(|p| {
                (
                    p.file_name().unwrap().to_string_lossy().into_owned(),
                    std::fs::read(&p).unwrap(),
                )
            })
            .collect()
    };
    let repo = list(&root().join("crds"));
    let chart = list(&chart_dir().join("crds"));
    assert_eq!(repo.len(), 8, "eight CRDs in crds/");
    assert_eq!(
        chart.keys().collect::<Vec<_>>(),
        repo.keys().collect::<Vec<_>>(),
        "charts/permit-sync/crds holds the same files as crds/"
    );
    for (name, bytes) in &repo {
        assert!(
            chart[name] == *bytes,
            "charts/permit-sync/crds/{name} differs from crds/{name}: run `cargo run -- crds --output-dir crds && cp crds/*.yaml charts/permit-sync/crds/`"
        );
    }
}

/// Dotted paths of the leaves of a values tree (empty maps and lists are leaves).
fn leaves(prefix: &str, v: &Value, out: &mut BTreeSet<String>) {
    match v {
        Value::Object(m) if !m.is_empty() => {
            for (k, v) in m {
                let p = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                leaves(&p, v, out);
            }
        }
        _ => {
            out.insert(prefix.to_string());
        }
    }
}

#[test]
fn readme_values_table_documents_every_value() {
    let values: Value =
        serde_saphyr::from_str(&std::fs::read_to_string(chart_dir().join("values.yaml")).unwrap())
            .unwrap();
    let mut paths = BTreeSet::new();
    leaves("", &values, &mut paths);
    let readme = std::fs::read_to_string(chart_dir().join("README.md")).unwrap();
    let section = readme
        .split("## Values")
        .nth(1)
        .expect("README has a Values section");
    let rows: BTreeSet<String> = section
        .lines()
        .filter_map(|l| l.strip_prefix("| `"))
        .filter_map(|l| l.split('`').next())
        .map(str::to_string)
        .collect();
    assert!(rows.len() > 20, "{rows:?}");
    // Every value is a row, or lies under one (`resources` covers `resources.limits.memory`).
    for path in &paths {
        let documented = rows
            .iter()
            .any(|r| path == r || path.starts_with(&format!("{r}.")));
        assert!(
            documented,
            "values.yaml `{path}` is missing from the README table"
        );
    }
    // Every row is a value (no stale rows).
    for row in &rows {
        let exists = paths
            .iter()
            .any(|p| p == row || p.starts_with(&format!("{row}.")));
        assert!(exists, "README documents `{row}`, which values.yaml lacks");
    }
}

#[test]
fn dockerfile_runs_the_chart_user_and_command() {
    let docker = std::fs::read_to_string(root().join("Dockerfile")).unwrap();
    let values: Value =
        serde_saphyr::from_str(&std::fs::read_to_string(chart_dir().join("values.yaml")).unwrap())
            .unwrap();
    let lines: Vec<&str> = docker
        .lines()
        .map(str::trim)
        .filter(|l| !l.starts_with('#'))
        .collect();
    let froms: Vec<&&str> = lines.iter().filter(|l| l.starts_with("FROM ")).collect();
    assert!(froms.len() >= 2, "multi-stage: {froms:?}");
    assert!(
        froms[0].contains(" AS builder"),
        "first stage builds: {froms:?}"
    );
    assert!(docker.contains("ARG RUNTIME_IMAGE=gcr.io/distroless/"));
    assert!(docker.contains(":nonroot"));
    // After the last FROM: a numeric non-root USER, equal to the chart's runAsUser.
    let last_from = lines.iter().rposition(|l| l.starts_with("FROM ")).unwrap();
    let user = lines[last_from..]
        .iter()
        .find_map(|l| l.strip_prefix("USER "))
        .expect("the final stage sets USER");
    let uid: i64 = user
        .split(':')
        .next()
        .unwrap()
        .parse()
        .expect("numeric uid");
    assert_ne!(uid, 0);
    assert_eq!(values["podSecurityContext"]["runAsUser"], uid);
    assert!(lines[last_from..].contains(&r#"ENTRYPOINT ["/usr/local/bin/permit-sync"]"#));
    assert!(lines[last_from..].contains(&r#"CMD ["controller"]"#));
    assert!(docker.contains("cargo build --release --locked --bin permit-sync"));
}

/// Files under `dir`, recursively.
fn files_under(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files_under(&path, out);
        } else {
            out.push(path);
        }
    }
}

#[test]
fn docker_build_context_holds_what_the_release_build_reads() {
    // .dockerignore excludes everything but an allowlist; the release build must need no more.
    let ignore = std::fs::read_to_string(root().join(".dockerignore")).unwrap();
    let allowed: Vec<&str> = ignore
        .lines()
        .filter_map(|l| l.trim().strip_prefix('!'))
        .collect();
    for needed in ["Cargo.toml", "Cargo.lock", "src", "crates"] {
        assert!(allowed.contains(&needed), "{needed} in the build context");
    }
    assert!(
        std::fs::read_to_string(root().join("Dockerfile"))
            .unwrap()
            .contains("COPY crates ./crates"),
        "the workspace's crates are copied into the image build"
    );
    assert!(
        !root().join("build.rs").exists() || allowed.contains(&"build.rs"),
        "a build script must be in the build context (.dockerignore, Dockerfile COPY)"
    );
    let manifest = std::fs::read_to_string(root().join("Cargo.toml")).unwrap();
    let dockerfile = std::fs::read_to_string(root().join("Dockerfile")).unwrap();
    for line in manifest.lines() {
        if let Some(path) = line.trim().strip_prefix("path = ") {
            let top = path.trim_matches('"').split('/').next().unwrap_or_default();
            assert!(
                allowed.contains(&top) && dockerfile.contains(&format!("COPY {top} ./{top}")),
                "Cargo.toml target outside the build context ({line}): add it to .dockerignore and the Dockerfile"
            );
        }
    }
    // include_str!/include_bytes! may only reach files inside src/ (paths are relative to the file).
    let mut sources = Vec::new();
    files_under(&root().join("src"), &mut sources);
    let src = root().join("src").canonicalize().unwrap();
    for file in sources
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "rs"))
    {
        let text = std::fs::read_to_string(file).unwrap();
        for macro_name in ["include_str!(\"", "include_bytes!(\""] {
            for (at, _) in text.match_indices(macro_name) {
                let rest = &text[at + macro_name.len()..];
                let rel = &rest[..rest.find('"').unwrap()];
                let target = file.parent().unwrap().join(rel);
                let inside = target
                    .canonicalize()
                    .map(|t| t.starts_with(&src))
                    .unwrap_or(false);
                assert!(
                    inside,
                    "{} includes {rel}, outside src/: the image build would not have it",
                    file.display()
                );
            }
        }
    }
}
