//! `RoleAssignment`: a role granted to a user in a tenant (or on a resource instance).

use super::common::{DeletionPolicy, SyncStatus};
use kube_derive::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    crates(kube_core = "::kube_core"),
    group = "permitsync.dev",
    version = "v1alpha1",
    kind = "RoleAssignment",
    namespaced,
    status = "SyncStatus",
    shortname = "ra",
    category = "permit",
    printcolumn = r#"{"name":"User","type":"string","jsonPath":".spec.user"}"#,
    printcolumn = r#"{"name":"Role","type":"string","jsonPath":".spec.role"}"#,
    printcolumn = r#"{"name":"Tenant","type":"string","jsonPath":".spec.tenant"}"#,
    printcolumn = r#"{"name":"Synced","type":"string","jsonPath":".status.conditions[?(@.type==\"Synced\")].status"}"#,
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schemars(extend("x-kubernetes-validations" = [
    {"rule": "self.user == oldSelf.user && self.role == oldSelf.role", "message": "user and role are immutable; create a new RoleAssignment instead"}
]))]
pub struct RoleAssignmentSpec {
    /// User key.
    #[schemars(length(min = 1, max = 255), regex(pattern = r"^[A-Za-z0-9|@+\-._]+$"))]
    pub user: String,
    /// Role key.
    #[schemars(length(min = 1, max = 255), regex(pattern = r"^[A-Za-z0-9\-_]+$"))]
    pub role: String,
    /// Tenant key; defaults to `default`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 255), regex(pattern = r"^[A-Za-z0-9\-_]+$"))]
    #[schemars(extend("x-kubernetes-validations" = [{"rule": "self == oldSelf", "message": "spec.tenant is immutable"}]))]
    pub tenant: Option<String>,
    /// Resource instance as `type:key`, for instance-level (ReBAC) roles.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        length(min = 3, max = 511),
        regex(pattern = r"^[A-Za-z0-9\-_]+:[A-Za-z0-9\-_.@|+]+$")
    )]
    #[schemars(extend("x-kubernetes-validations" = [{"rule": "self == oldSelf", "message": "spec.resourceInstance is immutable"}]))]
    pub resource_instance: Option<String>,
    /// `Delete` (default) unassigns the role with this object; `Orphan` leaves it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deletion_policy: Option<DeletionPolicy>,
}
