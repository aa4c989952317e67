//! The permit-sync kinds. One set of types derives the CRDs (kube + schemars) and parses manifest files.

pub mod assignment;
pub mod common;
pub mod instance;
pub mod object;
pub mod pdp;
pub mod resource;
pub mod role;
pub mod tenant;
pub mod tuple;
pub mod user;

pub use assignment::{RoleAssignment, RoleAssignmentSpec};
pub use common::{Attributes, Condition, DeletionPolicy, SyncStatus};
pub use instance::{PermitResourceInstance, PermitResourceInstanceSpec};
pub use object::{
    Object, Origin, assignment_key, derivation_key, instance_ref, part_key, tuple_key,
};
pub use pdp::{PdpStatus, PermitPDP, PermitPDPSpec};
pub use resource::{PermitResource, PermitResourceSpec};
pub use role::{PermitRole, PermitRoleSpec};
pub use tenant::{PermitTenant, PermitTenantSpec};
pub use tuple::{PermitRelationshipTuple, PermitRelationshipTupleSpec};
pub use user::{InlineGrant, InlineRole, PermitUser, PermitUserSpec};

/// A Permit object's identity: its kind and Permit key.
pub type ObjectId = (Kind, String);

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube_core::CustomResourceExt;

/// The tenant every Permit environment has; role assignments default to it and it is never pruned.
pub const DEFAULT_TENANT: &str = "default";

/// The kinds, in the order Permit objects must be created (deletions run in reverse). Three are
/// not manifest kinds but parts of a `PermitResource` ([`Kind::is_part`]): its relations, its
/// roles and their derivations, each a Permit object of its own with its own calls.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub enum Kind {
    PermitResource,
    /// `resource#relation`: created once both resources exist.
    ResourceRelation,
    /// `resource#role`: a role on the resource's instances.
    ResourceRole,
    /// `resource#role/onResource#role/relation`: after both roles and the relation.
    RoleDerivation,
    PermitRole,
    PermitTenant,
    PermitUser,
    PermitResourceInstance,
    PermitRelationshipTuple,
    RoleAssignment,
    PermitPDP,
}

impl Kind {
    /// The kinds manifests declare, in creation order.
    pub const ALL: [Kind; 8] = [
        Kind::PermitResource,
        Kind::PermitRole,
        Kind::PermitTenant,
        Kind::PermitUser,
        Kind::PermitResourceInstance,
        Kind::PermitRelationshipTuple,
        Kind::RoleAssignment,
        Kind::PermitPDP,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::PermitResource => "PermitResource",
            Kind::ResourceRelation => "ResourceRelation",
            Kind::ResourceRole => "ResourceRole",
            Kind::RoleDerivation => "RoleDerivation",
            Kind::PermitRole => "PermitRole",
            Kind::PermitTenant => "PermitTenant",
            Kind::PermitUser => "PermitUser",
            Kind::PermitResourceInstance => "PermitResourceInstance",
            Kind::PermitRelationshipTuple => "PermitRelationshipTuple",
            Kind::RoleAssignment => "RoleAssignment",
            Kind::PermitPDP => "PermitPDP",
        }
    }

    /// A manifest kind's name (parts of a resource are not manifest kinds).
    pub fn parse(s: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// Declared inside a `PermitResource`, keyed `resource#...`.
    pub fn is_part(self) -> bool {
        matches!(
            self,
            Kind::ResourceRelation | Kind::ResourceRole | Kind::RoleDerivation
        )
    }
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The CRDs of all kinds, in `Kind::ALL` order. Use these, not `K::crd()`: they add the rules
/// that need `metadata` (see [`key_added_rule`]).
pub fn crds() -> Vec<CustomResourceDefinition> {
    let mut crds = vec![
        PermitResource::crd(),
        PermitRole::crd(),
        PermitTenant::crd(),
        PermitUser::crd(),
        PermitResourceInstance::crd(),
        PermitRelationshipTuple::crd(),
        RoleAssignment::crd(),
        PermitPDP::crd(),
    ];
    crds.iter_mut().for_each(key_added_rule);
    crds
}

/// `spec.key` may be added after create only with the key already in force, `metadata.name`:
/// the field's own `self == oldSelf` rule has no old value to compare then, so without this rule
/// adding `spec.key` would rename the Permit object. Root level, as only the root sees `metadata`.
fn key_added_rule(crd: &mut CustomResourceDefinition) {
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::ValidationRule;
    let Some(root) = crd.spec.versions[0]
        .schema
        .as_mut()
        .and_then(|s| s.open_api_v3_schema.as_mut())
    else {
        return;
    };
    let spec = root.properties.as_ref().and_then(|p| p.get("spec"));
    let has_key = spec
        .and_then(|s| s.properties.as_ref())
        .is_some_and(|p| p.contains_key("key"));
    if !has_key {
        return;
    }
    root.x_kubernetes_validations
        .get_or_insert_with(Vec::new)
        .push(ValidationRule {
        rule: "has(oldSelf.spec.key) || !has(self.spec.key) || self.spec.key == self.metadata.name"
            .into(),
        message: Some(
            "spec.key is immutable: it was metadata.name, so it may only be set to metadata.name"
                .into(),
        ),
        field_path: Some(".spec.key".into()),
        ..Default::default()
    });
}

/// All CRDs as one multi-document YAML stream, as `permit-sync crds` prints and `crds/` holds.
pub fn crds_yaml() -> String {
    let mut out = String::new();
    for crd in crds() {
        out.push_str("---\n");
        out.push_str(&serde_saphyr::to_string(&crd).expect("CRDs serialise"));
    }
    out
}
