//! `PermitRelationshipTuple`: a relation between two resource instances (ReBAC's facts).

use super::common::{DeletionPolicy, SyncStatus};
use kube_derive::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    crates(kube_core = "::kube_core"),
    group = "permitsync.dev",
    version = "v1alpha1",
    kind = "PermitRelationshipTuple",
    namespaced,
    status = "SyncStatus",
    shortname = "prt",
    category = "permit",
    printcolumn = r#"{"name":"Subject","type":"string","jsonPath":".spec.subject"}"#,
    printcolumn = r#"{"name":"Relation","type":"string","jsonPath":".spec.relation"}"#,
    printcolumn = r#"{"name":"Object","type":"string","jsonPath":".spec.object"}"#,
    printcolumn = r#"{"name":"Synced","type":"string","jsonPath":".status.conditions[?(@.type==\"Synced\")].status"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schemars(extend("x-kubernetes-validations" = [
    {"rule": "self.subject == oldSelf.subject && self.relation == oldSelf.relation && self.object == oldSelf.object", "message": "a tuple has no update: subject, relation and object are immutable; create a new PermitRelationshipTuple instead"}
]))]
pub struct PermitRelationshipTupleSpec {
    /// The subject instance, `type:key` (`Post:post-1`).
    #[schemars(
        length(min = 3, max = 511),
        regex(pattern = r"^[A-Za-z0-9\-_]+:[A-Za-z0-9\-_.@|+]+$")
    )]
    pub subject: String,
    /// A relation of the object's resource whose subject resource is the subject's.
    #[schemars(length(min = 1, max = 255), regex(pattern = r"^[A-Za-z0-9\-_]+$"))]
    pub relation: String,
    /// The object instance, `type:key` (`Comment:comment-1`).
    #[schemars(
        length(min = 3, max = 511),
        regex(pattern = r"^[A-Za-z0-9\-_]+:[A-Za-z0-9\-_.@|+]+$")
    )]
    pub object: String,
    /// Tenant key; defaults to `default`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 255), regex(pattern = r"^[A-Za-z0-9\-_]+$"))]
    pub tenant: Option<String>,
    /// `Delete` (default) removes the Permit tuple with this object; `Orphan` leaves it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deletion_policy: Option<DeletionPolicy>,
}
