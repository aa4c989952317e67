//! `PermitPDP` → Deployment, Service and PodDisruptionBudget: pure functions, no IO.
//!
//! Defaults follow Permit's deployment docs: requests of 200m CPU / 512Mi memory with a 1-core CPU
//! limit for spikes ("Deploy Permit to Production", system requirements); the memory limit leaves
//! 2× headroom because the PDP holds the whole environment's data in memory (about 6 kB per user,
//! tenant or resource instance). Probes follow Permit's Kubernetes guide: readiness `/healthy`,
//! liveness `/health`, startup `/ready`, all on container port 7000.

use crate::kinds::pdp::{
    DEFAULT_CONTROL_PLANE, DEFAULT_PDP_IMAGE, DEFAULT_PDP_TAG, PermitPDP, PermitPDPSpec,
};
use k8s_openapi::api::apps::v1::{
    Deployment, DeploymentSpec, DeploymentStrategy, RollingUpdateDeployment,
};
use k8s_openapi::api::core::v1::{
    Capabilities, Container, ContainerPort, EmptyDirVolumeSource, EnvVar, EnvVarSource,
    HTTPGetAction, PodSecurityContext, PodSpec, PodTemplateSpec, Probe, ResourceRequirements,
    SeccompProfile, SecretKeySelector, SecurityContext, Service, ServicePort, ServiceSpec, Volume,
    VolumeMount,
};
use k8s_openapi::api::policy::v1::{PodDisruptionBudget, PodDisruptionBudgetSpec};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta, OwnerReference};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::{Resource, ResourceExt};
use std::collections::BTreeMap;

/// Field manager of every server-side apply permit-sync makes.
pub const FIELD_MANAGER: &str = "permit-sync";
/// Port of the Service (where the SDKs expect a PDP).
pub const SERVICE_PORT: i32 = 7766;
/// Port of the PDP API inside the container (the image sets `PDP_PORT=7000`).
pub const CONTAINER_PORT: i32 = 7000;
/// Name of the PDP container in the pod.
pub const CONTAINER_NAME: &str = "pdp";
/// Key in the API-key Secret when `apiKeySecretRef.key` is unset.
pub const DEFAULT_SECRET_KEY: &str = "api-key";
/// Where the PDP keeps its offline-mode backups (`PDP_OFFLINE_MODE_BACKUP_DIR`).
pub const BACKUP_DIR: &str = "/app/backup";
/// The image's `permit` user and group (numeric, so the kubelet can verify `runAsNonRoot`).
pub const PDP_UID: i64 = 1000;
pub const PDP_GID: i64 = 1001;

/// The Kubernetes objects one `PermitPDP` owns.
#[derive(Clone, Debug, PartialEq)]
pub struct Children {
    pub deployment: Deployment,
    pub service: Service,
    /// Only with more than one replica: one voluntary disruption at a time.
    pub pdb: Option<PodDisruptionBudget>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RenderError {
    #[error(
        "spec.apiKeySecretRef is required to deploy a PDP (the Secret holding the environment API key)"
    )]
    MissingSecretRef,
    #[error("spec.image.tag `latest` is not allowed: pin the PDP to a version")]
    LatestTag,
    #[error("spec.replicas must be between 0 and 100, got {0}")]
    Replicas(i32),
    #[error("the object has no {0} yet (it must be read from the apiserver first)")]
    Metadata(&'static str),
}

/// `<namespace>/<name>`, how errors and events name a `PermitPDP`.
pub fn object_name(pdp: &PermitPDP) -> String {
    format!("{}/{}", pdp.namespace().unwrap_or_default(), pdp.name_any())
}

/// Labels on every child; the selector uses the first two only (they never change).
pub fn labels(pdp: &PermitPDP) -> BTreeMap<String, String> {
    let mut l = selector_labels(pdp);
    l.insert("app.kubernetes.io/component".into(), "pdp".into());
    l.insert("app.kubernetes.io/managed-by".into(), FIELD_MANAGER.into());
    l.insert(
        "app.kubernetes.io/version".into(),
        image_tag(&pdp.spec).to_string(),
    );
    l
}

pub fn selector_labels(pdp: &PermitPDP) -> BTreeMap<String, String> {
    BTreeMap::from([
        (
            "app.kubernetes.io/name".to_string(),
            "permit-pdp".to_string(),
        ),
        ("app.kubernetes.io/instance".to_string(), pdp.name_any()),
    ])
}

fn image_tag(spec: &PermitPDPSpec) -> &str {
    spec.image
        .as_ref()
        .map_or(DEFAULT_PDP_TAG, |i| i.tag.as_str())
}

/// `repository:tag`, refusing `latest` (the CRD refuses it too; directory mode has no apiserver).
pub fn image(spec: &PermitPDPSpec) -> Result<String, RenderError> {
    let repo = spec
        .image
        .as_ref()
        .and_then(|i| i.repository.as_deref())
        .unwrap_or(DEFAULT_PDP_IMAGE);
    let tag = image_tag(spec);
    if tag == "latest" {
        return Err(RenderError::LatestTag);
    }
    Ok(format!("{repo}:{tag}"))
}

pub fn replicas(spec: &PermitPDPSpec) -> Result<i32, RenderError> {
    match spec.replicas.unwrap_or(1) {
        r @ 0..=100 => Ok(r),
        r => Err(RenderError::Replicas(r)),
    }
}

/// The control plane the PDP must use, when it is not Permit's default: `spec.controlPlaneUrl`,
/// else the API URL permit-sync itself talks to.
pub fn control_plane(spec: &PermitPDPSpec, api_url: Option<&str>) -> Option<String> {
    let url = spec
        .control_plane_url
        .as_deref()
        .or(api_url)?
        .trim_end_matches('/');
    (url != DEFAULT_CONTROL_PLANE).then(|| url.to_string())
}

/// Permit's recommended starting point (see the module doc).
pub fn default_resources() -> ResourceRequirements {
    let q = |s: &str| Quantity(s.to_string());
    ResourceRequirements {
        requests: Some(BTreeMap::from([
            ("cpu".to_string(), q("200m")),
            ("memory".to_string(), q("512Mi")),
        ])),
        limits: Some(BTreeMap::from([
            ("cpu".to_string(), q("1")),
            ("memory".to_string(), q("1Gi")),
        ])),
        ..Default::default()
    }
}

/// The in-cluster URL of the PDP's Service.
pub fn service_url(namespace: &str, name: &str) -> String {
    format!("http://{name}.{namespace}.svc:{SERVICE_PORT}")
}

fn owner_ref(pdp: &PermitPDP) -> Result<OwnerReference, RenderError> {
    if pdp.meta().uid.is_none() {
        return Err(RenderError::Metadata("uid"));
    }
    // controller=true and blockOwnerDeletion=true: the garbage collector deletes the children
    // with the PermitPDP, and foreground deletion waits for them.
    let mut owner = pdp
        .controller_owner_ref(&())
        .ok_or(RenderError::Metadata("name"))?;
    owner.block_owner_deletion = Some(true);
    Ok(owner)
}

fn child_meta(pdp: &PermitPDP) -> Result<ObjectMeta, RenderError> {
    Ok(ObjectMeta {
        name: Some(pdp.name_any()),
        namespace: Some(pdp.namespace().ok_or(RenderError::Metadata("namespace"))?),
        labels: Some(labels(pdp)),
        owner_references: Some(vec![owner_ref(pdp)?]),
        ..Default::default()
    })
}

fn env(name: &str, value: &str) -> EnvVar {
    EnvVar {
        name: name.into(),
        value: Some(value.into()),
        ..Default::default()
    }
}

fn http_probe(path: &str, period: i32, failures: i32) -> Probe {
    Probe {
        http_get: Some(HTTPGetAction {
            path: Some(path.into()),
            port: IntOrString::String("http".into()),
            ..Default::default()
        }),
        period_seconds: Some(period),
        timeout_seconds: Some(3),
        failure_threshold: Some(failures),
        ..Default::default()
    }
}

fn empty_dir(name: &str, size_limit: Option<&str>) -> Volume {
    Volume {
        name: name.into(),
        empty_dir: Some(EmptyDirVolumeSource {
            size_limit: size_limit.map(|s| Quantity(s.into())),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn mount(name: &str, path: &str) -> VolumeMount {
    VolumeMount {
        name: name.into(),
        mount_path: path.into(),
        ..Default::default()
    }
}

pub fn deployment(pdp: &PermitPDP, api_url: Option<&str>) -> Result<Deployment, RenderError> {
    let spec = &pdp.spec;
    let secret = spec
        .api_key_secret_ref
        .as_ref()
        .ok_or(RenderError::MissingSecretRef)?;
    let mut env_vars = vec![EnvVar {
        name: "PDP_API_KEY".into(),
        value_from: Some(EnvVarSource {
            secret_key_ref: Some(SecretKeySelector {
                name: secret.name.clone(),
                key: secret
                    .key
                    .clone()
                    .unwrap_or_else(|| DEFAULT_SECRET_KEY.into()),
                optional: Some(false),
            }),
            ..Default::default()
        }),
        ..Default::default()
    }];
    if let Some(cp) = control_plane(spec, api_url) {
        env_vars.push(env("PDP_CONTROL_PLANE", &cp));
    }
    // The PDP writes temporary files (Python, OPA) even with a read-only root filesystem.
    let mut volumes = vec![empty_dir("tmp", None)];
    let mut mounts = vec![mount("tmp", "/tmp")];
    if let Some(offline) = spec.offline_mode.as_ref().filter(|o| o.enabled) {
        env_vars.push(env("PDP_ENABLE_OFFLINE_MODE", "true"));
        env_vars.push(env("PDP_OFFLINE_MODE_BACKUP_DIR", BACKUP_DIR));
        volumes.push(empty_dir("backup", offline.size_limit.as_deref()));
        mounts.push(mount("backup", BACKUP_DIR));
    }

    let container = Container {
        name: CONTAINER_NAME.into(),
        image: Some(image(spec)?),
        image_pull_policy: Some("IfNotPresent".into()),
        ports: Some(vec![ContainerPort {
            name: Some("http".into()),
            container_port: CONTAINER_PORT,
            protocol: Some("TCP".into()),
            ..Default::default()
        }]),
        env: Some(env_vars),
        resources: Some(spec.resources.clone().unwrap_or_else(default_resources)),
        readiness_probe: Some(http_probe("/healthy", 10, 3)),
        liveness_probe: Some(http_probe("/health", 10, 6)),
        // Loading policy and data from the control plane can take minutes on a large environment.
        startup_probe: Some(http_probe("/ready", 5, 60)),
        security_context: Some(SecurityContext {
            run_as_non_root: Some(true),
            run_as_user: Some(PDP_UID),
            run_as_group: Some(PDP_GID),
            read_only_root_filesystem: Some(true),
            allow_privilege_escalation: Some(false),
            capabilities: Some(Capabilities {
                drop: Some(vec!["ALL".into()]),
                ..Default::default()
            }),
            seccomp_profile: Some(SeccompProfile {
                type_: "RuntimeDefault".into(),
                ..Default::default()
            }),
            ..Default::default()
        }),
        volume_mounts: Some(mounts),
        ..Default::default()
    };

    let meta = child_meta(pdp)?;
    Ok(Deployment {
        metadata: meta.clone(),
        spec: DeploymentSpec {
            replicas: Some(replicas(spec)?),
            selector: LabelSelector {
                match_labels: Some(selector_labels(pdp)),
                ..Default::default()
            },
            // Never go below the desired count during a rollout: decisions must keep flowing.
            strategy: Some(DeploymentStrategy {
                type_: Some("RollingUpdate".into()),
                rolling_update: Some(RollingUpdateDeployment {
                    max_surge: Some(IntOrString::Int(1)),
                    max_unavailable: Some(IntOrString::Int(0)),
                }),
            }),
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: meta.labels.clone(),
                    ..Default::default()
                }),
                spec: Some(PodSpec {
                    containers: vec![container],
                    volumes: Some(volumes),
                    // The PDP never calls the Kubernetes API.
                    automount_service_account_token: Some(false),
                    security_context: Some(PodSecurityContext {
                        run_as_non_root: Some(true),
                        run_as_user: Some(PDP_UID),
                        run_as_group: Some(PDP_GID),
                        fs_group: Some(PDP_GID),
                        seccomp_profile: Some(SeccompProfile {
                            type_: "RuntimeDefault".into(),
                            ..Default::default()
                        }),
                        ..Default::default()
                    }),
                    ..Default::default()
                }),
            },
            ..Default::default()
        },
        status: None,
    })
}

pub fn service(pdp: &PermitPDP) -> Result<Service, RenderError> {
    Ok(Service {
        metadata: child_meta(pdp)?,
        spec: Some(ServiceSpec {
            type_: Some("ClusterIP".into()),
            selector: Some(selector_labels(pdp)),
            ports: Some(vec![ServicePort {
                name: Some("http".into()),
                port: SERVICE_PORT,
                target_port: Some(IntOrString::Int(CONTAINER_PORT)),
                protocol: Some("TCP".into()),
                ..Default::default()
            }]),
            ..Default::default()
        }),
        status: None,
    })
}

/// A PodDisruptionBudget when there is more than one replica (with one, it would block drains).
pub fn pdb(pdp: &PermitPDP) -> Result<Option<PodDisruptionBudget>, RenderError> {
    if replicas(&pdp.spec)? <= 1 {
        return Ok(None);
    }
    Ok(Some(PodDisruptionBudget {
        metadata: child_meta(pdp)?,
        spec: Some(PodDisruptionBudgetSpec {
            max_unavailable: Some(IntOrString::Int(1)),
            selector: Some(LabelSelector {
                match_labels: Some(selector_labels(pdp)),
                ..Default::default()
            }),
            ..Default::default()
        }),
        status: None,
    }))
}

/// Everything one `PermitPDP` owns. `api_url` is the Permit API permit-sync uses: when it is not
/// Permit's default, the PDP is pointed at the same control plane.
pub fn render(pdp: &PermitPDP, api_url: Option<&str>) -> Result<Children, RenderError> {
    Ok(Children {
        deployment: deployment(pdp, api_url)?,
        service: service(pdp)?,
        pdb: pdb(pdp)?,
    })
}
