//! `PermitPDP` → Deployment, Service, PodDisruptionBudget, field by field (pure, no servers).

use k8s_openapi::api::core::v1::Container;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use permit_sync::kinds::PermitPDP;
use permit_sync::pdp::docker;
use permit_sync::pdp::render::{self, RenderError};
use serde_json::json;
use std::collections::BTreeMap;

const UID: &str = "6f0d3a52-3b8e-4c1e-9d0a-2f4a1f1b7c11";

fn pdp(spec: serde_json::Value) -> PermitPDP {
    serde_json::from_value(json!({
        "apiVersion": "permitsync.dev/v1alpha1",
        "kind": "PermitPDP",
        "metadata": {"name": "pdp", "namespace": "authz", "uid": UID, "generation": 3},
        "spec": spec,
    }))
    .expect("a valid PermitPDP")
}

fn example() -> PermitPDP {
    pdp(json!({
        "replicas": 2,
        "image": {"repository": "permitio/pdp-v2", "tag": "0.9.6"},
        "apiKeySecretRef": {"name": "permit-api-key"},
    }))
}

fn container(p: &PermitPDP) -> Container {
    let dep = render::deployment(p, None).expect("renders");
    let pod = dep.spec.template.spec.expect("pod spec");
    assert_eq!(pod.containers.len(), 1);
    pod.containers[0].clone()
}

fn env(c: &Container) -> BTreeMap<String, serde_json::Value> {
    c.env
        .iter()
        .flatten()
        .map(|e| (e.name.clone(), serde_json::to_value(e).unwrap()))
        .collect()
}

#[test]
fn deployment_matches_the_spec() {
    let p = example();
    let dep = render::deployment(&p, None).unwrap();

    // Metadata: name, namespace, labels, one controlling owner reference to the PermitPDP.
    assert_eq!(dep.metadata.name.as_deref(), Some("pdp"));
    assert_eq!(dep.metadata.namespace.as_deref(), Some("authz"));
    let labels = dep.metadata.labels.clone().unwrap();
    assert_eq!(labels["app.kubernetes.io/name"], "permit-pdp");
    assert_eq!(labels["app.kubernetes.io/instance"], "pdp");
    assert_eq!(labels["app.kubernetes.io/managed-by"], "permit-sync");
    assert_eq!(labels["app.kubernetes.io/version"], "0.9.6");
    let owners = dep.metadata.owner_references.clone().unwrap();
    assert_eq!(owners.len(), 1);
    assert_eq!(owners[0].uid, UID);
    assert_eq!(owners[0].kind, "PermitPDP");
    assert_eq!(owners[0].api_version, "permitsync.dev/v1alpha1");
    assert_eq!(owners[0].name, "pdp");
    assert_eq!(owners[0].controller, Some(true));
    assert_eq!(owners[0].block_owner_deletion, Some(true));

    // Spec: replicas, a selector that matches the pod labels, a rollout that never dips.
    let spec = &dep.spec;
    assert_eq!(spec.replicas, Some(2));
    let selector = spec.selector.match_labels.clone().unwrap();
    assert_eq!(selector.len(), 2, "selector uses the stable labels only");
    let pod_labels = spec.template.metadata.clone().unwrap().labels.unwrap();
    for (k, v) in &selector {
        assert_eq!(pod_labels.get(k), Some(v), "pod label {k}");
    }
    let rolling = spec.strategy.clone().unwrap().rolling_update.unwrap();
    assert_eq!(rolling.max_unavailable, Some(IntOrString::Int(0)));
    assert_eq!(rolling.max_surge, Some(IntOrString::Int(1)));

    // Pod: non-root, no service-account token, RuntimeDefault seccomp.
    let pod = spec.template.spec.clone().unwrap();
    assert_eq!(pod.automount_service_account_token, Some(false));
    let psc = pod.security_context.unwrap();
    assert_eq!(psc.run_as_non_root, Some(true));
    assert_eq!(psc.run_as_user, Some(render::PDP_UID));
    assert_eq!(psc.fs_group, Some(render::PDP_GID));
    assert_eq!(psc.seccomp_profile.unwrap().type_, "RuntimeDefault");

    // Container: pinned image, port 7000, the key from the Secret (never a literal).
    let c = container(&p);
    assert_eq!(c.name, "pdp");
    assert_eq!(c.image.as_deref(), Some("permitio/pdp-v2:0.9.6"));
    assert_eq!(c.image_pull_policy.as_deref(), Some("IfNotPresent"));
    let ports = c.ports.clone().unwrap();
    assert_eq!(ports.len(), 1);
    assert_eq!(ports[0].container_port, 7000);
    assert_eq!(ports[0].name.as_deref(), Some("http"));
    let env = env(&c);
    assert_eq!(
        env["PDP_API_KEY"],
        json!({"name": "PDP_API_KEY", "valueFrom": {"secretKeyRef": {"name": "permit-api-key", "key": "api-key", "optional": false}}})
    );
    assert!(
        !env.contains_key("PDP_CONTROL_PLANE"),
        "default control plane"
    );
    assert!(!env.contains_key("PDP_ENABLE_OFFLINE_MODE"));

    // Security context of the container.
    let sc = c.security_context.clone().unwrap();
    assert_eq!(sc.run_as_non_root, Some(true));
    assert_eq!(sc.read_only_root_filesystem, Some(true));
    assert_eq!(sc.allow_privilege_escalation, Some(false));
    assert_eq!(sc.capabilities.unwrap().drop, Some(vec!["ALL".to_string()]));
    assert_eq!(sc.seccomp_profile.unwrap().type_, "RuntimeDefault");

    // A writable /tmp (read-only root filesystem), nothing else without offline mode.
    let mounts = c.volume_mounts.clone().unwrap();
    assert_eq!(mounts.len(), 1);
    assert_eq!(mounts[0].mount_path, "/tmp");
    let volumes = pod.volumes.unwrap();
    assert_eq!(volumes.len(), 1);
    assert!(volumes[0].empty_dir.is_some());

    // Probes on the PDP's health routes, port "http" (7000).
    let path = |p: &Option<k8s_openapi::api::core::v1::Probe>| {
        let get = p.clone().unwrap().http_get.unwrap();
        assert_eq!(get.port, IntOrString::String("http".into()));
        get.path.unwrap()
    };
    assert_eq!(path(&c.readiness_probe), "/healthy");
    assert_eq!(path(&c.liveness_probe), "/health");
    assert_eq!(path(&c.startup_probe), "/ready");

    // Permit's recommended resources.
    let res = c.resources.clone().unwrap();
    let req = res.requests.unwrap();
    let lim = res.limits.unwrap();
    assert_eq!(req["cpu"], Quantity("200m".into()));
    assert_eq!(req["memory"], Quantity("512Mi".into()));
    assert_eq!(lim["cpu"], Quantity("1".into()));
    assert_eq!(lim["memory"], Quantity("1Gi".into()));
}

#[test]
fn service_maps_7766_to_7000() {
    let svc = render::service(&example()).unwrap();
    assert_eq!(svc.metadata.name.as_deref(), Some("pdp"));
    assert_eq!(svc.metadata.owner_references.unwrap()[0].uid, UID);
    let spec = svc.spec.unwrap();
    assert_eq!(spec.type_.as_deref(), Some("ClusterIP"));
    let ports = spec.ports.unwrap();
    assert_eq!(ports.len(), 1);
    assert_eq!(ports[0].port, 7766);
    assert_eq!(ports[0].target_port, Some(IntOrString::Int(7000)));
    let selector = spec.selector.unwrap();
    assert_eq!(selector, render::selector_labels(&example()));
    assert_eq!(
        render::service_url("authz", "pdp"),
        "http://pdp.authz.svc:7766"
    );
}

#[test]
fn pdb_only_above_one_replica() {
    let pdb = render::pdb(&example())
        .unwrap()
        .expect("2 replicas → a PDB");
    assert_eq!(pdb.metadata.owner_references.unwrap()[0].uid, UID);
    let spec = pdb.spec.unwrap();
    assert_eq!(spec.max_unavailable, Some(IntOrString::Int(1)));
    assert_eq!(
        spec.selector.unwrap().match_labels.unwrap(),
        render::selector_labels(&example())
    );
    for replicas in [json!(1), json!(0), serde_json::Value::Null] {
        let mut spec = json!({"apiKeySecretRef": {"name": "k"}});
        if !replicas.is_null() {
            spec["replicas"] = replicas.clone();
        }
        assert!(
            render::pdb(&pdp(spec)).unwrap().is_none(),
            "replicas {replicas}"
        );
    }
}

#[test]
fn defaults_control_plane_offline_mode_and_custom_resources() {
    // No image: the pinned default, never `latest`; no replicas: 1.
    let p = pdp(json!({"apiKeySecretRef": {"name": "k", "key": "token"}}));
    let c = container(&p);
    assert_eq!(c.image.as_deref(), Some("permitio/pdp-v2:0.9.6"));
    assert_eq!(render::deployment(&p, None).unwrap().spec.replicas, Some(1));
    assert_eq!(
        env(&c)["PDP_API_KEY"]["valueFrom"]["secretKeyRef"]["key"],
        "token"
    );

    // The API URL permit-sync uses becomes the control plane unless it is Permit's default.
    let dep = render::deployment(&p, Some("https://api.eu.permit.io/")).unwrap();
    let c = dep.spec.template.spec.unwrap().containers[0].clone();
    assert_eq!(
        env(&c)["PDP_CONTROL_PLANE"]["value"],
        "https://api.eu.permit.io"
    );
    let dep = render::deployment(&p, Some("https://api.permit.io")).unwrap();
    let c = dep.spec.template.spec.unwrap().containers[0].clone();
    assert!(!env(&c).contains_key("PDP_CONTROL_PLANE"));
    // spec.controlPlaneUrl wins over the API URL.
    let p = pdp(json!({
        "apiKeySecretRef": {"name": "k"},
        "controlPlaneUrl": "https://permit.internal.example",
        "offlineMode": {"enabled": true, "sizeLimit": "200Mi"},
        "resources": {"requests": {"cpu": "50m"}},
    }));
    let dep = render::deployment(&p, Some("https://api.eu.permit.io")).unwrap();
    let pod = dep.spec.template.spec.unwrap();
    let c = pod.containers[0].clone();
    let e = env(&c);
    assert_eq!(
        e["PDP_CONTROL_PLANE"]["value"],
        "https://permit.internal.example"
    );
    assert_eq!(e["PDP_ENABLE_OFFLINE_MODE"]["value"], "true");
    assert_eq!(e["PDP_OFFLINE_MODE_BACKUP_DIR"]["value"], "/app/backup");
    let mounts = c.volume_mounts.clone().unwrap();
    assert!(
        mounts
            .iter()
            .any(|m| m.name == "backup" && m.mount_path == "/app/backup")
    );
    let backup = pod
        .volumes
        .unwrap()
        .into_iter()
        .find(|v| v.name == "backup")
        .expect("backup volume");
    assert_eq!(
        backup.empty_dir.unwrap().size_limit,
        Some(Quantity("200Mi".into()))
    );
    // Resources given in the spec replace the defaults entirely.
    let res = c.resources.unwrap();
    assert_eq!(res.requests.unwrap()["cpu"], Quantity("50m".into()));
    assert!(res.limits.is_none());
}

#[test]
fn refusals() {
    let p = pdp(json!({"image": {"tag": "latest"}, "apiKeySecretRef": {"name": "k"}}));
    assert_eq!(render::render(&p, None), Err(RenderError::LatestTag));
    let p = pdp(json!({"image": {"tag": "1.0.0"}}));
    assert_eq!(render::render(&p, None), Err(RenderError::MissingSecretRef));
    let p = pdp(json!({"replicas": 101, "apiKeySecretRef": {"name": "k"}}));
    assert_eq!(render::render(&p, None), Err(RenderError::Replicas(101)));
    let mut p = example();
    p.metadata.uid = None;
    assert_eq!(render::render(&p, None), Err(RenderError::Metadata("uid")));
}

#[test]
fn docker_run_args_carry_no_key() {
    let p = pdp(json!({
        "url": "http://127.0.0.1:17766",
        "runtime": "Docker",
        "image": {"tag": "0.9.7"},
        "controlPlaneUrl": "https://api.eu.permit.io",
        "offlineMode": {"enabled": true},
    }));
    let args = docker::run_args(&p, None).unwrap();
    let joined = args.join(" ");
    assert!(
        joined.starts_with("run --detach --name permit-sync-pdp-pdp "),
        "{joined}"
    );
    assert!(
        joined.contains("--publish 127.0.0.1:17766:7000"),
        "{joined}"
    );
    assert!(
        joined.contains("--env PDP_API_KEY "),
        "key by name only: {joined}"
    );
    assert!(!joined.contains("PDP_API_KEY="), "{joined}");
    assert!(joined.contains("--env PDP_CONTROL_PLANE=https://api.eu.permit.io"));
    assert!(joined.contains("--env PDP_ENABLE_OFFLINE_MODE=true"));
    assert!(joined.contains("--volume permit-sync-pdp-pdp-backup:/app/backup"));
    assert_eq!(args.last().unwrap(), "permitio/pdp-v2:0.9.7");
    let p = pdp(json!({"runtime": "Docker", "image": {"tag": "latest"}}));
    assert_eq!(docker::run_args(&p, None), Err(RenderError::LatestTag));
}
