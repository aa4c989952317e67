//! `PermitPDP`: a policy decision point that permit-sync deploys (Kubernetes) or monitors (directory mode).

use super::common::Condition;
use k8s_openapi::api::core::v1::ResourceRequirements;
use kube_derive::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Image repository of Permit's PDP.
pub const DEFAULT_PDP_IMAGE: &str = "permitio/pdp-v2";
/// The PDP version deployed when `spec.image` is unset: pinned, so an upgrade is a visible change.
pub const DEFAULT_PDP_TAG: &str = "0.9.6";
/// Permit's control plane; `PDP_CONTROL_PLANE` is only set for other URLs.
pub const DEFAULT_CONTROL_PLANE: &str = "https://api.permit.io";

#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    crates(kube_core = "::kube_core"),
    group = "permitsync.dev",
    version = "v1alpha1",
    kind = "PermitPDP",
    namespaced,
    status = "PdpStatus",
    shortname = "pdp",
    category = "permit",
    printcolumn = r#"{"name":"Replicas","type":"integer","jsonPath":".spec.replicas"}"#,
    printcolumn = r#"{"name":"Ready","type":"integer","jsonPath":".status.readyReplicas"}"#,
    printcolumn = r#"{"name":"Available","type":"string","jsonPath":".status.conditions[?(@.type==\"Available\")].status"}"#,
    printcolumn = r#"{"name":"Healthy","type":"string","jsonPath":".status.conditions[?(@.type==\"Healthy\")].status"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PermitPDPSpec {
    /// Number of PDP pods (Kubernetes); a PodDisruptionBudget is added above 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 100))]
    pub replicas: Option<i32>,
    /// The PDP image; the tag is pinned (never `latest`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<PdpImage>,
    /// Secret holding the environment API key (Kubernetes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key_secret_ref: Option<SecretKeyRef>,
    /// Permit control plane URL, when not `https://api.permit.io`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(url, length(max = 2048))]
    pub control_plane_url: Option<String>,
    /// Container resources; Permit's recommended values when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,
    /// Offline mode: the PDP starts from its last backup when the control plane is unreachable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offline_mode: Option<OfflineMode>,
    /// Directory mode: URL of an existing PDP to monitor instead of deploying one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(url, length(max = 2048))]
    pub url: Option<String>,
    /// Directory mode: start the PDP with a local container runtime.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runtime: Option<ContainerRuntime>,
    /// Health probing of the PDP.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub probe: Option<ProbeSpec>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PdpImage {
    /// Defaults to `permitio/pdp-v2`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 512))]
    pub repository: Option<String>,
    /// A pinned tag; `latest` is refused.
    #[schemars(
        length(min = 1, max = 128),
        regex(pattern = r"^[A-Za-z0-9_][A-Za-z0-9_.\-]*$")
    )]
    #[schemars(extend("x-kubernetes-validations" = [{"rule": "self != 'latest'", "message": "pin the PDP image to a version; 'latest' is not allowed"}]))]
    pub tag: String,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SecretKeyRef {
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    /// Key in the Secret; defaults to `api-key`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253))]
    pub key: Option<String>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OfflineMode {
    pub enabled: bool,
    /// Size of the backup volume (an emptyDir), e.g. `100Mi`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size_limit: Option<String>,
}

/// Local container runtime used in directory mode.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum ContainerRuntime {
    /// Do not start a container; monitor `url` only.
    None,
    /// Start and stop the PDP with the `docker` command.
    Docker,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ProbeSpec {
    /// Seconds between health probes; default 30.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    // Kubernetes knows no `uint32` format (the apiserver warns on it); the range keeps it in int32.
    #[schemars(range(min = 1, max = 3600), extend("format" = "int32"))]
    pub interval_seconds: Option<u32>,
    /// Probe this URL instead of the Service (tests, external PDPs); `/healthy` is appended when
    /// the URL has no path.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(url, length(max = 2048))]
    pub url: Option<String>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PdpStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ready_replicas: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_probe_time: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    // Kubernetes knows no `uint64` format; `int64` with a minimum of 0 says the same.
    #[schemars(extend("format" = "int64"))]
    pub last_probe_latency_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
}
