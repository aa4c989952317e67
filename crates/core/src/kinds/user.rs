//! `PermitUser`: a Permit user, optionally with inline role assignments.

use super::common::{Attributes, DeletionPolicy, SyncStatus, attributes_schema};
use kube_derive::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    crates(kube_core = "::kube_core"),
    group = "permitsync.dev",
    version = "v1alpha1",
    kind = "PermitUser",
    namespaced,
    status = "SyncStatus",
    shortname = "puser",
    category = "permit",
    printcolumn = r#"{"name":"Key","type":"string","jsonPath":".status.key"}"#,
    printcolumn = r#"{"name":"Email","type":"string","jsonPath":".spec.email"}"#,
    printcolumn = r#"{"name":"Synced","type":"string","jsonPath":".status.conditions[?(@.type==\"Synced\")].status"}"#,
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schemars(extend("x-kubernetes-validations" = [
    {"rule": "!has(oldSelf.key) || has(self.key)", "message": "spec.key cannot be removed once set"}
]))]
pub struct PermitUserSpec {
    /// Permit user key; defaults to `metadata.name`. May be an e-mail address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 255), regex(pattern = r"^[A-Za-z0-9|@+\-._]+$"))]
    #[schemars(extend("x-kubernetes-validations" = [{"rule": "self == oldSelf", "message": "spec.key is immutable"}]))]
    pub key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(email, length(max = 320))]
    pub email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 255))]
    pub first_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 255))]
    pub last_name: Option<String>,
    /// User attributes, used by ABAC policies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "attributes_schema")]
    pub attributes: Option<Attributes>,
    /// Roles granted to this user; each becomes a role assignment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 1000))]
    pub roles: Option<Vec<InlineRole>>,
    /// `Delete` (default) removes the Permit user with this object; `Orphan` leaves it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deletion_policy: Option<DeletionPolicy>,
}

/// A role granted inline on a `PermitUser`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct InlineRole {
    #[schemars(length(min = 1, max = 255), regex(pattern = r"^[A-Za-z0-9\-_]+$"))]
    pub role: String,
    /// Tenant key; defaults to `default`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 255), regex(pattern = r"^[A-Za-z0-9\-_]+$"))]
    pub tenant: Option<String>,
    /// Resource instance as `type:key`: the role is then a role of that instance's resource.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        length(min = 3, max = 511),
        regex(pattern = r"^[A-Za-z0-9\-_]+:[A-Za-z0-9\-_.@|+]+$")
    )]
    pub resource_instance: Option<String>,
}

/// One inline role of a `PermitUser`, expanded: the role assignment it declares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InlineGrant<'a> {
    /// Its position in `spec.roles`, for diagnostics (`spec.roles[i]`).
    pub index: usize,
    pub role: &'a str,
    /// The tenant, `default` when left out.
    pub tenant: &'a str,
    pub resource_instance: Option<&'a str>,
}

impl InlineGrant<'_> {
    /// The key of the role assignment it declares for `user`.
    pub fn key(&self, user: &str) -> String {
        super::assignment_key(user, self.role, self.tenant, self.resource_instance)
    }
}

impl PermitUserSpec {
    /// The role assignments the inline `roles` declare, in order: every place that expands
    /// inline roles (the desired state, references, the controller, the watcher) goes through here.
    pub fn inline_grants(&self) -> impl Iterator<Item = InlineGrant<'_>> {
        self.roles
            .iter()
            .flatten()
            .enumerate()
            .map(|(index, r)| InlineGrant {
                index,
                role: &r.role,
                tenant: r.tenant.as_deref().unwrap_or(super::DEFAULT_TENANT),
                resource_instance: r.resource_instance.as_deref(),
            })
    }
}
