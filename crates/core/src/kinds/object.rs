//! Any one permit-sync object, with where it came from: the unit the loader yields and the engine consumes.

use super::{
    Kind, PermitPDP, PermitRelationshipTuple, PermitResource, PermitResourceInstance, PermitRole,
    PermitTenant, PermitUser, RoleAssignment,
};
use std::fmt;
use std::path::Path;
use std::sync::Arc;

/// Where an object was declared, for messages that point the user at it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Origin {
    /// A document in a manifest file; line and column of the document start (1-based).
    File {
        /// Shared by every object of the file: one allocation per file, not per object.
        path: Arc<Path>,
        line: usize,
        column: usize,
    },
    /// A custom resource in a cluster.
    Cluster { namespace: String, name: String },
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::File { path, line, column } => write!(f, "{}:{line}:{column}", path.display()),
            Origin::Cluster { namespace, name } => write!(f, "{namespace}/{name}"),
        }
    }
}

/// One declared object of any kind.
#[derive(Clone, Debug)]
pub enum Object {
    Resource(PermitResource),
    Role(PermitRole),
    Tenant(PermitTenant),
    User(PermitUser),
    Assignment(RoleAssignment),
    Instance(PermitResourceInstance),
    Tuple(PermitRelationshipTuple),
    Pdp(PermitPDP),
}

impl Object {
    pub fn kind(&self) -> Kind {
        match self {
            Object::Resource(_) => Kind::PermitResource,
            Object::Role(_) => Kind::PermitRole,
            Object::Tenant(_) => Kind::PermitTenant,
            Object::User(_) => Kind::PermitUser,
            Object::Assignment(_) => Kind::RoleAssignment,
            Object::Instance(_) => Kind::PermitResourceInstance,
            Object::Tuple(_) => Kind::PermitRelationshipTuple,
            Object::Pdp(_) => Kind::PermitPDP,
        }
    }

    pub fn meta(&self) -> &kube_core::ObjectMeta {
        match self {
            Object::Resource(o) => &o.metadata,
            Object::Role(o) => &o.metadata,
            Object::Tenant(o) => &o.metadata,
            Object::User(o) => &o.metadata,
            Object::Assignment(o) => &o.metadata,
            Object::Instance(o) => &o.metadata,
            Object::Tuple(o) => &o.metadata,
            Object::Pdp(o) => &o.metadata,
        }
    }

    /// `spec.deletionPolicy` of the kinds that have one.
    pub fn deletion_policy(&self) -> Option<super::DeletionPolicy> {
        match self {
            Object::Resource(o) => o.spec.deletion_policy,
            Object::Role(o) => o.spec.deletion_policy,
            Object::Tenant(o) => o.spec.deletion_policy,
            Object::User(o) => o.spec.deletion_policy,
            Object::Assignment(o) => o.spec.deletion_policy,
            Object::Instance(o) => o.spec.deletion_policy,
            Object::Tuple(o) => o.spec.deletion_policy,
            Object::Pdp(_) => None,
        }
    }

    /// `metadata.name` (empty when missing; the loader refuses such documents).
    pub fn name(&self) -> &str {
        self.meta().name.as_deref().unwrap_or("")
    }

    /// The identity of the object in Permit: its key; for a role assignment
    /// `user/role/tenant[/resourceInstance]`, an instance `resource:key`, a tuple
    /// `subject/relation/object`.
    pub fn permit_key(&self) -> String {
        let or_name = |key: &Option<String>| key.clone().unwrap_or_else(|| self.name().to_string());
        match self {
            Object::Resource(o) => or_name(&o.spec.key),
            Object::Role(o) => or_name(&o.spec.key),
            Object::Tenant(o) => or_name(&o.spec.key),
            Object::User(o) => or_name(&o.spec.key),
            Object::Assignment(o) => assignment_key(
                &o.spec.user,
                &o.spec.role,
                o.spec.tenant.as_deref().unwrap_or(super::DEFAULT_TENANT),
                o.spec.resource_instance.as_deref(),
            ),
            Object::Instance(o) => instance_ref(&o.spec.resource, &or_name(&o.spec.key)),
            Object::Tuple(o) => tuple_key(&o.spec.subject, &o.spec.relation, &o.spec.object),
            Object::Pdp(_) => self.name().to_string(),
        }
    }
}

/// Identity of a role assignment: `user/role/tenant[/resourceInstance]`.
pub fn assignment_key(user: &str, role: &str, tenant: &str, instance: Option<&str>) -> String {
    match instance {
        Some(i) => format!("{user}/{role}/{tenant}/{i}"),
        None => format!("{user}/{role}/{tenant}"),
    }
}

/// An instance's reference, `resource:key`: how checks, tuples and assignments name it.
pub fn instance_ref(resource: &str, key: &str) -> String {
    format!("{resource}:{key}")
}

/// Identity of a relationship tuple: `subject/relation/object` (instance keys hold no `/`).
pub fn tuple_key(subject: &str, relation: &str, object: &str) -> String {
    format!("{subject}/{relation}/{object}")
}

/// A part of a resource (relation, role): `resource#key`.
pub fn part_key(resource: &str, key: &str) -> String {
    format!("{resource}#{key}")
}

/// Identity of a role derivation: `resource#role/onResource#role/relation`.
pub fn derivation_key(role: &str, source: &str, relation: &str) -> String {
    format!("{role}/{source}/{relation}")
}
