//! `PermitResource`: a resource type of the policy, with its actions and attributes.

use super::common::{Attributes, DeletionPolicy, SyncStatus, attributes_schema};
use kube_derive::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    crates(kube_core = "::kube_core"),
    group = "permitsync.dev",
    version = "v1alpha1",
    kind = "PermitResource",
    namespaced,
    status = "SyncStatus",
    shortname = "pres",
    category = "permit",
    printcolumn = r#"{"name":"Key","type":"string","jsonPath":".status.key"}"#,
    printcolumn = r#"{"name":"Synced","type":"string","jsonPath":".status.conditions[?(@.type==\"Synced\")].status"}"#,
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schemars(extend("x-kubernetes-validations" = [
    {"rule": "!has(oldSelf.key) || has(self.key)", "message": "spec.key cannot be removed once set"}
]))]
pub struct PermitResourceSpec {
    /// Resource key (the `type` in checks); defaults to `metadata.name`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 255), regex(pattern = r"^[A-Za-z0-9\-_]+$"))]
    #[schemars(extend("x-kubernetes-validations" = [{"rule": "self == oldSelf", "message": "spec.key is immutable"}]))]
    pub key: Option<String>,
    /// Display name; defaults to the key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 255))]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 2048))]
    pub description: Option<String>,
    /// Actions by key, e.g. `read: {}`.
    #[schemars(extend("maxProperties" = 500))]
    pub actions: BTreeMap<String, ActionSpec>,
    /// Attribute definitions by key, e.g. `owner: {type: string}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("maxProperties" = 500))]
    pub attributes: Option<BTreeMap<String, AttributeSpec>>,
    /// Relations by key: `parent: {subject: Post}` says a `Post` may be this resource's `parent`
    /// (Permit: the relation's `subject_resource`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("maxProperties" = 100))]
    pub relations: Option<BTreeMap<String, RelationSpec>>,
    /// Resource roles by key; a resource role's identity is (resource, key), so `Author` may be
    /// a tenant role and a role of several resources at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("maxProperties" = 500))]
    pub roles: Option<BTreeMap<String, ResourceRoleSpec>>,
    /// `Delete` (default) removes the Permit resource with this object; `Orphan` leaves it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deletion_policy: Option<DeletionPolicy>,
}

/// One action of a resource.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ActionSpec {
    /// Display name; defaults to the action key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 255))]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 2048))]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "attributes_schema")]
    pub attributes: Option<Attributes>,
}

/// Type of a resource attribute, as Permit names it.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum AttributeType {
    Bool,
    Number,
    String,
    Time,
    Array,
    Json,
    Object,
    ObjectArray,
}

/// A resource attribute definition.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AttributeSpec {
    #[serde(rename = "type")]
    pub type_: AttributeType,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 2048))]
    pub description: Option<String>,
}

/// A relation of this (object) resource to a subject resource.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RelationSpec {
    /// The subject resource's key.
    #[schemars(length(min = 1, max = 255), regex(pattern = r"^[A-Za-z0-9\-_]+$"))]
    pub subject: String,
    /// Display name; defaults to the relation key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 255))]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 2048))]
    pub description: Option<String>,
}

/// A role of this resource, granted on its instances.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ResourceRoleSpec {
    /// Display name; defaults to the role key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 255))]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 2048))]
    pub description: Option<String>,
    /// Actions of this resource the role grants (bare action keys: `read`, not `Post:read`).
    #[serde(default)]
    #[schemars(length(max = 500))]
    pub permissions: Vec<String>,
    /// Other roles of this resource whose permissions this one has too.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 100))]
    pub extends: Vec<String>,
    /// Role derivations: users with `role` on an instance of `onResource` that is related to
    /// an instance of this resource by `linkedBy` get this role on it (Permit:
    /// `granted_to.users_with_role`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 100))]
    pub granted_to: Vec<DerivationSpec>,
    /// The derivation options (Permit: `granted_to.when`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub granted_to_when: Option<DerivationWhen>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "attributes_schema")]
    pub attributes: Option<Attributes>,
}

/// One role derivation onto a resource role.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DerivationSpec {
    /// The role users hold on the related instance: a role of `onResource`.
    #[schemars(length(min = 1, max = 255), regex(pattern = r"^[A-Za-z0-9\-_]+$"))]
    pub role: String,
    /// The related instance's resource.
    #[schemars(length(min = 1, max = 255), regex(pattern = r"^[A-Za-z0-9\-_]+$"))]
    pub on_resource: String,
    /// The relation of this resource whose subject is the related instance.
    #[schemars(length(min = 1, max = 255), regex(pattern = r"^[A-Za-z0-9\-_]+$"))]
    pub linked_by: String,
}

/// When a resource role's derivations apply (Permit: `granted_to.when`).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DerivationWhen {
    /// Derive the role only for users with no direct role on the instance.
    #[serde(default)]
    pub no_direct_roles_on_object: bool,
}
