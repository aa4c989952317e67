//! Normalised Permit objects: the shape both desired and live state are reduced to before comparing.
//!
//! Optional fields are "unmanaged" when `None` on the desired side: the planner leaves whatever Permit
//! holds for them, so a manifest that omits `email` never erases one set elsewhere.

use crate::kinds::{Attributes, Kind};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// A resource action as compared: display name and optional description and attributes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Action {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attributes: Option<Attributes>,
}

/// A resource attribute definition (`type` as Permit names it: `string`, `bool`, ...).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct AttributeDef {
    #[serde(rename = "type")]
    pub type_: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resource {
    pub key: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub actions: BTreeMap<String, Action>,
    /// `None`: not declared (desired) or not reported by the server (live); either way not compared.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attributes: Option<BTreeMap<String, AttributeDef>>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Role {
    pub key: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub permissions: BTreeSet<String>,
    pub extends: BTreeSet<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attributes: Option<Attributes>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tenant {
    pub key: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attributes: Option<Attributes>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    pub key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attributes: Option<Attributes>,
}

/// A role granted to a user in a tenant, optionally on a resource instance (`type:key`).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Assignment {
    pub user: String,
    pub role: String,
    pub tenant: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_instance: Option<String>,
}

impl Assignment {
    pub fn key(&self) -> String {
        crate::kinds::assignment_key(
            &self.user,
            &self.role,
            &self.tenant,
            self.resource_instance.as_deref(),
        )
    }
}

/// One Permit object of any synced kind.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "spec")]
pub enum Obj {
    Resource(Resource),
    Role(Role),
    Tenant(Tenant),
    User(User),
    Assignment(Assignment),
}

impl Obj {
    pub fn kind(&self) -> Kind {
        match self {
            Obj::Resource(_) => Kind::PermitResource,
            Obj::Role(_) => Kind::PermitRole,
            Obj::Tenant(_) => Kind::PermitTenant,
            Obj::User(_) => Kind::PermitUser,
            Obj::Assignment(_) => Kind::RoleAssignment,
        }
    }

    pub fn key(&self) -> String {
        match self {
            Obj::Resource(o) => o.key.clone(),
            Obj::Role(o) => o.key.clone(),
            Obj::Tenant(o) => o.key.clone(),
            Obj::User(o) => o.key.clone(),
            Obj::Assignment(o) => o.key(),
        }
    }

    /// A stable hash of the object, recorded in the inventory as "what we last applied".
    pub fn spec_hash(&self) -> String {
        use sha2::{Digest, Sha256};
        // serde_json writes BTreeMaps and struct fields in a fixed order, so equal objects hash equally.
        let json = serde_json::to_vec(self).unwrap_or_default();
        hex::encode(Sha256::digest(&json))[..16].to_string()
    }
}

/// The kinds the engine converges, in creation order (deletions run in reverse).
pub const SYNCED_KINDS: [Kind; 5] = [
    Kind::PermitResource,
    Kind::PermitRole,
    Kind::PermitTenant,
    Kind::PermitUser,
    Kind::RoleAssignment,
];

/// A whole environment (desired or live), every kind keyed by its Permit key.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    pub resources: BTreeMap<String, Resource>,
    pub roles: BTreeMap<String, Role>,
    pub tenants: BTreeMap<String, Tenant>,
    pub users: BTreeMap<String, User>,
    pub assignments: BTreeMap<String, Assignment>,
}

impl State {
    pub fn insert(&mut self, obj: Obj) {
        match obj {
            Obj::Resource(o) => {
                self.resources.insert(o.key.clone(), o);
            }
            Obj::Role(o) => {
                self.roles.insert(o.key.clone(), o);
            }
            Obj::Tenant(o) => {
                self.tenants.insert(o.key.clone(), o);
            }
            Obj::User(o) => {
                self.users.insert(o.key.clone(), o);
            }
            Obj::Assignment(o) => {
                self.assignments.insert(o.key(), o);
            }
        }
    }

    pub fn remove(&mut self, kind: Kind, key: &str) -> Option<Obj> {
        match kind {
            Kind::PermitResource => self.resources.remove(key).map(Obj::Resource),
            Kind::PermitRole => self.roles.remove(key).map(Obj::Role),
            Kind::PermitTenant => self.tenants.remove(key).map(Obj::Tenant),
            Kind::PermitUser => self.users.remove(key).map(Obj::User),
            Kind::RoleAssignment => self.assignments.remove(key).map(Obj::Assignment),
            Kind::PermitPDP => None,
        }
    }

    pub fn get(&self, kind: Kind, key: &str) -> Option<Obj> {
        match kind {
            Kind::PermitResource => self.resources.get(key).cloned().map(Obj::Resource),
            Kind::PermitRole => self.roles.get(key).cloned().map(Obj::Role),
            Kind::PermitTenant => self.tenants.get(key).cloned().map(Obj::Tenant),
            Kind::PermitUser => self.users.get(key).cloned().map(Obj::User),
            Kind::RoleAssignment => self.assignments.get(key).cloned().map(Obj::Assignment),
            Kind::PermitPDP => None,
        }
    }

    /// Keys of one kind, sorted.
    pub fn keys(&self, kind: Kind) -> Vec<String> {
        match kind {
            Kind::PermitResource => self.resources.keys().cloned().collect(),
            Kind::PermitRole => self.roles.keys().cloned().collect(),
            Kind::PermitTenant => self.tenants.keys().cloned().collect(),
            Kind::PermitUser => self.users.keys().cloned().collect(),
            Kind::RoleAssignment => self.assignments.keys().cloned().collect(),
            Kind::PermitPDP => Vec::new(),
        }
    }

    /// Number of objects across all kinds.
    pub fn len(&self) -> usize {
        self.resources.len()
            + self.roles.len()
            + self.tenants.len()
            + self.users.len()
            + self.assignments.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
