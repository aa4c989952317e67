//! The six permit-sync kinds. One set of types derives the CRDs (kube + schemars) and parses manifest files.

pub mod assignment;
pub mod common;
pub mod object;
pub mod pdp;
pub mod resource;
pub mod role;
pub mod tenant;
pub mod user;

pub use assignment::{RoleAssignment, RoleAssignmentSpec};
pub use common::{Attributes, Condition, DeletionPolicy, SyncStatus};
pub use object::{Object, Origin, assignment_key};
pub use pdp::{PdpStatus, PermitPDP, PermitPDPSpec};
pub use resource::{PermitResource, PermitResourceSpec};
pub use role::{PermitRole, PermitRoleSpec};
pub use tenant::{PermitTenant, PermitTenantSpec};
pub use user::{InlineRole, PermitUser, PermitUserSpec};

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::CustomResourceExt;

/// The tenant every Permit environment has; role assignments default to it and it is never pruned.
pub const DEFAULT_TENANT: &str = "default";

/// The kinds, in the order Permit objects must be created (deletions run in reverse).
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub enum Kind {
    PermitResource,
    PermitRole,
    PermitTenant,
    PermitUser,
    RoleAssignment,
    PermitPDP,
}

impl Kind {
    pub const ALL: [Kind; 6] = [
        Kind::PermitResource,
        Kind::PermitRole,
        Kind::PermitTenant,
        Kind::PermitUser,
        Kind::RoleAssignment,
        Kind::PermitPDP,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::PermitResource => "PermitResource",
            Kind::PermitRole => "PermitRole",
            Kind::PermitTenant => "PermitTenant",
            Kind::PermitUser => "PermitUser",
            Kind::RoleAssignment => "RoleAssignment",
            Kind::PermitPDP => "PermitPDP",
        }
    }

    pub fn parse(s: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The CRDs of all kinds, in `Kind::ALL` order.
pub fn crds() -> Vec<CustomResourceDefinition> {
    vec![
        PermitResource::crd(),
        PermitRole::crd(),
        PermitTenant::crd(),
        PermitUser::crd(),
        RoleAssignment::crd(),
        PermitPDP::crd(),
    ]
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
