//! Types shared by every kind: status, conditions, deletion policy and schema helpers.

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// API group of every permit-sync kind.
pub const GROUP: &str = "permitsync.dev";
/// API version of every permit-sync kind.
pub const VERSION: &str = "v1alpha1";
/// `apiVersion` as written in manifests.
pub const API_VERSION: &str = "permitsync.dev/v1alpha1";

/// Free-form attributes, stored as Permit stores them (ABAC input).
pub type Attributes = BTreeMap<String, serde_json::Value>;

/// What happens to the Permit object when its manifest goes away.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum DeletionPolicy {
    /// Delete the Permit object (default).
    #[default]
    Delete,
    /// Leave the Permit object in place.
    Orphan,
}

/// A status condition, in the shape Kubernetes tools (kstatus, kubectl wait) understand.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    /// `Synced`, `Ready`, `Available`, `Healthy`.
    #[serde(rename = "type")]
    pub type_: String,
    /// `True`, `False` or `Unknown`.
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_transition_time: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
}

/// Status of the kinds that map to one Permit object.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SyncStatus {
    /// The Permit key in force (`spec.key`, or `metadata.name` when unset).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// The Permit id (UUID) of the object.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub permit_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
}

/// Schema for free-form attributes: an object whose values Kubernetes keeps as given.
pub fn attributes_schema(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "object",
        "x-kubernetes-preserve-unknown-fields": true,
    })
}

/// Key pattern of tenants, resources, actions and roles (no dots, no colons).
pub const SLUG_PATTERN: &str = r"^[A-Za-z0-9\-_]+$";
/// Key pattern of users (e-mail addresses are valid keys).
pub const USER_KEY_PATTERN: &str = r"^[A-Za-z0-9|@+\-._]+$";

/// Group and plural of a CRD, which name its file in `crds/`.
pub struct CrdName {
    pub group: String,
    pub plural: String,
}
