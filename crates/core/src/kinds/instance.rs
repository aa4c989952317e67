//! `PermitResourceInstance`: one instance of a resource (ReBAC's objects), in a tenant.

use super::common::{Attributes, DeletionPolicy, SyncStatus, attributes_schema};
use kube_derive::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The pattern of an instance reference, `type:key` (resource key, `:`, instance key).
pub const INSTANCE_REF_PATTERN: &str = r"^[A-Za-z0-9\-_]+:[A-Za-z0-9\-_.@|+]+$";

#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    crates(kube_core = "::kube_core"),
    group = "permitsync.dev",
    version = "v1alpha1",
    kind = "PermitResourceInstance",
    namespaced,
    status = "SyncStatus",
    shortname = "pri",
    category = "permit",
    printcolumn = r#"{"name":"Resource","type":"string","jsonPath":".spec.resource"}"#,
    printcolumn = r#"{"name":"Key","type":"string","jsonPath":".status.key"}"#,
    printcolumn = r#"{"name":"Tenant","type":"string","jsonPath":".spec.tenant"}"#,
    printcolumn = r#"{"name":"Synced","type":"string","jsonPath":".status.conditions[?(@.type==\"Synced\")].status"}"#,
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schemars(extend("x-kubernetes-validations" = [
    {"rule": "!has(oldSelf.key) || has(self.key)", "message": "spec.key cannot be removed once set"},
    {"rule": "self.resource == oldSelf.resource", "message": "spec.resource is immutable"}
]))]
pub struct PermitResourceInstanceSpec {
    /// The instance's resource key (`Post`).
    #[schemars(length(min = 1, max = 255), regex(pattern = r"^[A-Za-z0-9\-_]+$"))]
    pub resource: String,
    /// Instance key, unique within its resource; defaults to `metadata.name`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 255), regex(pattern = r"^[A-Za-z0-9\-_.@|+]+$"))]
    #[schemars(extend("x-kubernetes-validations" = [{"rule": "self == oldSelf", "message": "spec.key is immutable"}]))]
    pub key: Option<String>,
    /// Tenant key; defaults to `default`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 255), regex(pattern = r"^[A-Za-z0-9\-_]+$"))]
    pub tenant: Option<String>,
    /// Instance attributes, used by ABAC policies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "attributes_schema")]
    pub attributes: Option<Attributes>,
    /// `Delete` (default) removes the Permit instance with this object; `Orphan` leaves it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deletion_policy: Option<DeletionPolicy>,
}
