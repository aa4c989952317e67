//! Normalised Permit objects: the shape both desired and live state are reduced to before comparing.
//!
//! Optional fields are "unmanaged" when `None` on the desired side: the planner leaves whatever Permit
//! holds for them, so a manifest that omits `email` never erases one set elsewhere.

use crate::kinds::{Attributes, Kind, ObjectId, part_key};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// Attributes as compared: canonical JSON text (keys sorted at every level), so equal attributes
/// are equal strings. One allocation per object instead of a map per object: at 100,000 users
/// the maps alone were most of the model's memory.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Attrs(Box<str>);

impl Attrs {
    pub fn new(map: &Attributes) -> Attrs {
        Attrs(canonical(&serde_json::to_value(map).unwrap_or_default()).into())
    }

    /// The attributes of a JSON object as Permit lists them (the same text as [`Attrs::new`]).
    pub fn of_object(map: &serde_json::Map<String, serde_json::Value>) -> Attrs {
        let ordered: BTreeMap<&String, serde_json::Value> =
            map.iter().map(|(k, v)| (k, sorted(v))).collect();
        Attrs(
            serde_json::to_string(&ordered)
                .unwrap_or_else(|_| "{}".into())
                .into(),
        )
    }

    /// The attributes as a map (for request bodies and manifests).
    pub fn to_map(&self) -> Attributes {
        serde_json::from_str(&self.0).unwrap_or_default()
    }

    pub fn is_empty(&self) -> bool {
        &*self.0 == "{}"
    }
}

impl From<Attributes> for Attrs {
    fn from(map: Attributes) -> Attrs {
        Attrs::new(&map)
    }
}

impl<const N: usize> From<[(String, serde_json::Value); N]> for Attrs {
    fn from(entries: [(String, serde_json::Value); N]) -> Attrs {
        Attrs::new(&entries.into())
    }
}

impl std::fmt::Debug for Attrs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl Serialize for Attrs {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let raw: &serde_json::value::RawValue =
            serde_json::from_str(&self.0).map_err(serde::ser::Error::custom)?;
        raw.serialize(s)
    }
}

impl<'de> Deserialize<'de> for Attrs {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Attrs, D::Error> {
        Attributes::deserialize(d).map(|m| Attrs::new(&m))
    }
}

/// JSON text with object keys sorted at every level, whatever map order serde_json keeps.
fn sorted(v: &serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    match v {
        Value::Object(m) => {
            let ordered: BTreeMap<&String, Value> = m.iter().map(|(k, v)| (k, sorted(v))).collect();
            serde_json::to_value(ordered).unwrap_or_default()
        }
        Value::Array(items) => Value::Array(items.iter().map(sorted).collect()),
        other => other.clone(),
    }
}

fn canonical(v: &serde_json::Value) -> String {
    serde_json::to_string(&sorted(v)).unwrap_or_else(|_| "{}".into())
}

/// A resource action as compared: display name and optional description and attributes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Action {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attributes: Option<Attrs>,
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
    pub attributes: Option<Attrs>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tenant {
    pub key: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attributes: Option<Attrs>,
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
    pub attributes: Option<Attrs>,
}

/// A relation of an object resource to a subject resource (`Comment#parent` → `Post`). Permit
/// has no update for relations: only `subject` is compared (a change is a delete and a create,
/// which takes the relation's tuples with it); the name and description are set at creation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Relation {
    pub resource: String,
    pub key: String,
    pub subject: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// A role of a resource (identity `(resource, key)`; keyed `resource#key`). Permissions are the
/// resource's bare action keys; `extends` names roles of the same resource.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResourceRole {
    pub resource: String,
    pub key: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub permissions: BTreeSet<String>,
    pub extends: BTreeSet<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attributes: Option<Attrs>,
    /// `granted_to.when.no_direct_roles_on_object`; `None` on the desired side: unmanaged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub no_direct_roles_on_object: Option<bool>,
}

/// A role derivation (Permit's implicit grant): users with `source` (`Post#Author`) on an
/// instance that is `relation` (`parent`, a relation of `role`'s resource) of an instance get
/// `role` (`Comment#Moderator`) on it. Identity only, like an assignment.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Derivation {
    pub role: String,
    pub source: String,
    pub relation: String,
}

impl Derivation {
    pub fn key(&self) -> String {
        crate::kinds::derivation_key(&self.role, &self.source, &self.relation)
    }

    /// `(resource, role key)` of a `resource#role` name.
    pub fn split(role: &str) -> (&str, &str) {
        role.split_once('#').unwrap_or(("", role))
    }

    /// The relation as its own object's key: a relation of the derived role's resource.
    pub fn relation_key(&self) -> String {
        crate::kinds::part_key(Derivation::split(&self.role).0, &self.relation)
    }
}

/// A resource instance, keyed `resource:key`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Instance {
    pub resource: String,
    pub key: String,
    pub tenant: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attributes: Option<Attrs>,
}

impl Instance {
    pub fn reference(&self) -> String {
        crate::kinds::instance_ref(&self.resource, &self.key)
    }
}

/// A relationship tuple, keyed `subject/relation/object`: `subject` (`Post:post-1`) is
/// `relation` (`parent`) of `object` (`Comment:comment-1`). No update: a change is a delete and
/// a create.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tuple {
    pub subject: String,
    pub relation: String,
    pub object: String,
    pub tenant: String,
}

impl Tuple {
    pub fn key(&self) -> String {
        crate::kinds::tuple_key(&self.subject, &self.relation, &self.object)
    }

    /// The relation as its own object's key: a relation of the object's resource.
    pub fn relation_key(&self) -> String {
        let resource = self.object.split_once(':').map_or("", |(r, _)| r);
        crate::kinds::part_key(resource, &self.relation)
    }
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

impl Assignment {
    /// The assignment a key names. User, role and tenant keys cannot hold `/` (Permit's key
    /// patterns), so the first three parts are those and the rest is the resource instance.
    pub fn parse(key: &str) -> Option<Assignment> {
        AssignmentRef::parse(key).map(|a| a.to_owned())
    }
}

/// A role assignment borrowed from its key; serialised as Permit's assign and unassign calls
/// take it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct AssignmentRef<'a> {
    pub user: &'a str,
    pub role: &'a str,
    pub tenant: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resource_instance: Option<&'a str>,
}

impl<'a> AssignmentRef<'a> {
    pub fn parse(key: &'a str) -> Option<AssignmentRef<'a>> {
        let mut parts = key.splitn(4, '/');
        Some(AssignmentRef {
            user: parts.next()?,
            role: parts.next()?,
            tenant: parts.next()?,
            resource_instance: parts.next(),
        })
    }

    /// The objects Permit deletes this assignment with: its user, tenant and role (for an
    /// instance assignment, the instance and its resource's role).
    pub fn parents(&self) -> Vec<ObjectId> {
        let mut out = vec![
            (Kind::PermitUser, self.user.to_string()),
            (Kind::PermitTenant, self.tenant.to_string()),
        ];
        match self.resource_instance {
            None => out.push((Kind::PermitRole, self.role.to_string())),
            Some(instance) => {
                let resource = instance.split_once(':').map_or("", |(r, _)| r);
                out.push((
                    Kind::ResourceRole,
                    crate::kinds::part_key(resource, self.role),
                ));
                out.push((Kind::PermitResourceInstance, instance.to_string()));
            }
        }
        out
    }

    pub fn to_owned(self) -> Assignment {
        Assignment {
            user: self.user.into(),
            role: self.role.into(),
            tenant: self.tenant.into(),
            resource_instance: self.resource_instance.map(Into::into),
        }
    }
}

/// Role assignments, stored as their keys alone: an assignment is nothing but its key, and at
/// 300,000 assignments a struct of four strings beside each key tripled the memory.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Assignments(BTreeSet<Box<str>>);

impl Assignments {
    /// The assignments of these keys (in any order, repeats allowed), built in one go: full
    /// nodes, where inserting one at a time leaves them half empty.
    pub fn from_keys(keys: Vec<Box<str>>) -> Assignments {
        Assignments(keys.into_iter().collect())
    }

    pub fn insert(&mut self, a: &Assignment) {
        self.0.insert(a.key().into());
    }

    pub fn remove(&mut self, key: &str) -> Option<Assignment> {
        self.0.take(key).and_then(|k| Assignment::parse(&k))
    }

    pub fn get(&self, key: &str) -> Option<Assignment> {
        self.0.get(key).and_then(|k| Assignment::parse(k))
    }

    pub fn contains_key(&self, key: &str) -> bool {
        self.0.contains(key)
    }

    /// Keys in order.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(|k| &**k)
    }

    /// Each key with the assignment it names, borrowed.
    pub fn iter(&self) -> impl Iterator<Item = (&str, AssignmentRef<'_>)> {
        self.0
            .iter()
            .filter_map(|k| AssignmentRef::parse(k).map(|a| (&**k, a)))
    }

    pub fn values(&self) -> impl Iterator<Item = Assignment> + '_ {
        self.iter().map(|(_, a)| a.to_owned())
    }

    pub fn retain(&mut self, mut keep: impl FnMut(AssignmentRef<'_>) -> bool) {
        self.0
            .retain(|k| AssignmentRef::parse(k).is_none_or(&mut keep));
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn clear(&mut self) {
        self.0.clear();
    }

    /// See [`State::compact`].
    pub fn compact(&mut self) {
        self.0 = std::mem::take(&mut self.0).into_iter().collect();
    }
}

impl Serialize for Assignments {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(self.iter().map(|(k, a)| (k, a.to_owned())))
    }
}

impl<'de> Deserialize<'de> for Assignments {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Assignments, D::Error> {
        let map = BTreeMap::<String, Assignment>::deserialize(d)?;
        let mut out = Assignments::default();
        for a in map.values() {
            out.insert(a);
        }
        Ok(out)
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
    Relation(Relation),
    ResourceRole(ResourceRole),
    Derivation(Derivation),
    Instance(Instance),
    Tuple(Tuple),
}

impl Obj {
    pub fn kind(&self) -> Kind {
        match self {
            Obj::Resource(_) => Kind::PermitResource,
            Obj::Role(_) => Kind::PermitRole,
            Obj::Tenant(_) => Kind::PermitTenant,
            Obj::User(_) => Kind::PermitUser,
            Obj::Assignment(_) => Kind::RoleAssignment,
            Obj::Relation(_) => Kind::ResourceRelation,
            Obj::ResourceRole(_) => Kind::ResourceRole,
            Obj::Derivation(_) => Kind::RoleDerivation,
            Obj::Instance(_) => Kind::PermitResourceInstance,
            Obj::Tuple(_) => Kind::PermitRelationshipTuple,
        }
    }

    pub fn key(&self) -> String {
        match self {
            Obj::Resource(o) => o.key.clone(),
            Obj::Role(o) => o.key.clone(),
            Obj::Tenant(o) => o.key.clone(),
            Obj::User(o) => o.key.clone(),
            Obj::Assignment(o) => o.key(),
            Obj::Relation(o) => part_key(&o.resource, &o.key),
            Obj::ResourceRole(o) => part_key(&o.resource, &o.key),
            Obj::Derivation(o) => o.key(),
            Obj::Instance(o) => o.reference(),
            Obj::Tuple(o) => o.key(),
        }
    }

    /// The objects Permit deletes this one with (a cascade): deleting any of them takes it.
    pub fn parents(&self) -> Vec<ObjectId> {
        let resource_of = |r: &str| r.split_once(':').map_or("", |(t, _)| t).to_string();
        match self {
            Obj::Resource(_) | Obj::Role(_) | Obj::Tenant(_) | Obj::User(_) => Vec::new(),
            Obj::Assignment(a) => {
                AssignmentRef::parse(&a.key()).map_or_else(Vec::new, |a| a.parents())
            }
            Obj::Relation(o) => vec![
                (Kind::PermitResource, o.resource.clone()),
                (Kind::PermitResource, o.subject.clone()),
            ],
            Obj::ResourceRole(o) => vec![(Kind::PermitResource, o.resource.clone())],
            Obj::Derivation(o) => vec![
                (Kind::ResourceRole, o.role.clone()),
                (Kind::ResourceRole, o.source.clone()),
                (Kind::ResourceRelation, o.relation_key()),
            ],
            Obj::Instance(o) => vec![
                (Kind::PermitResource, o.resource.clone()),
                (Kind::PermitTenant, o.tenant.clone()),
            ],
            Obj::Tuple(o) => vec![
                (Kind::PermitResourceInstance, o.subject.clone()),
                (Kind::PermitResourceInstance, o.object.clone()),
                (Kind::ResourceRelation, o.relation_key()),
                (Kind::PermitResource, resource_of(&o.subject)),
            ],
        }
    }

    /// A stable hash of the object, recorded in the inventory as "what we last applied".
    pub fn spec_hash(&self) -> u64 {
        use sha2::{Digest, Sha256};
        // serde_json writes BTreeMaps and struct fields in a fixed order, so equal objects hash equally.
        let json = serde_json::to_vec(self).unwrap_or_default();
        let digest = Sha256::digest(&json);
        u64::from_be_bytes(
            digest[..8]
                .try_into()
                .expect("a SHA-256 digest has 32 bytes"),
        )
    }
}

/// The kinds whose deletion Permit cascades to other objects ([`Obj::parents`]).
pub const CASCADE_CAUSES: [Kind; 7] = [
    Kind::PermitResource,
    Kind::ResourceRelation,
    Kind::ResourceRole,
    Kind::PermitRole,
    Kind::PermitTenant,
    Kind::PermitUser,
    Kind::PermitResourceInstance,
];

/// The kinds the engine converges, in creation order (deletions run in reverse).
pub const SYNCED_KINDS: [Kind; 10] = [
    Kind::PermitResource,
    Kind::ResourceRelation,
    Kind::ResourceRole,
    Kind::RoleDerivation,
    Kind::PermitRole,
    Kind::PermitTenant,
    Kind::PermitUser,
    Kind::PermitResourceInstance,
    Kind::PermitRelationshipTuple,
    Kind::RoleAssignment,
];

/// A whole environment (desired or live), every kind keyed by its Permit key.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    pub resources: BTreeMap<String, Resource>,
    pub roles: BTreeMap<String, Role>,
    pub tenants: BTreeMap<String, Tenant>,
    pub users: BTreeMap<String, User>,
    pub assignments: Assignments,
    #[serde(default)]
    pub relations: BTreeMap<String, Relation>,
    #[serde(default)]
    pub resource_roles: BTreeMap<String, ResourceRole>,
    #[serde(default)]
    pub derivations: BTreeMap<String, Derivation>,
    #[serde(default)]
    pub instances: BTreeMap<String, Instance>,
    #[serde(default)]
    pub tuples: BTreeMap<String, Tuple>,
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
            Obj::Assignment(o) => self.assignments.insert(&o),
            Obj::Relation(o) => {
                self.relations.insert(part_key(&o.resource, &o.key), o);
            }
            Obj::ResourceRole(o) => {
                self.resource_roles.insert(part_key(&o.resource, &o.key), o);
            }
            Obj::Derivation(o) => {
                self.derivations.insert(o.key(), o);
            }
            Obj::Instance(o) => {
                self.instances.insert(o.reference(), o);
            }
            Obj::Tuple(o) => {
                self.tuples.insert(o.key(), o);
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
            Kind::ResourceRelation => self.relations.remove(key).map(Obj::Relation),
            Kind::ResourceRole => self.resource_roles.remove(key).map(Obj::ResourceRole),
            Kind::RoleDerivation => self.derivations.remove(key).map(Obj::Derivation),
            Kind::PermitResourceInstance => self.instances.remove(key).map(Obj::Instance),
            Kind::PermitRelationshipTuple => self.tuples.remove(key).map(Obj::Tuple),
            Kind::PermitPDP => None,
        }
    }

    pub fn get(&self, kind: Kind, key: &str) -> Option<Obj> {
        match kind {
            Kind::PermitResource => self.resources.get(key).cloned().map(Obj::Resource),
            Kind::PermitRole => self.roles.get(key).cloned().map(Obj::Role),
            Kind::PermitTenant => self.tenants.get(key).cloned().map(Obj::Tenant),
            Kind::PermitUser => self.users.get(key).cloned().map(Obj::User),
            Kind::RoleAssignment => self.assignments.get(key).map(Obj::Assignment),
            Kind::ResourceRelation => self.relations.get(key).cloned().map(Obj::Relation),
            Kind::ResourceRole => self.resource_roles.get(key).cloned().map(Obj::ResourceRole),
            Kind::RoleDerivation => self.derivations.get(key).cloned().map(Obj::Derivation),
            Kind::PermitResourceInstance => self.instances.get(key).cloned().map(Obj::Instance),
            Kind::PermitRelationshipTuple => self.tuples.get(key).cloned().map(Obj::Tuple),
            Kind::PermitPDP => None,
        }
    }

    /// Whether an object of `kind` has `key` (no copy of it, unlike [`State::get`]).
    pub fn contains(&self, kind: Kind, key: &str) -> bool {
        match kind {
            Kind::PermitResource => self.resources.contains_key(key),
            Kind::PermitRole => self.roles.contains_key(key),
            Kind::PermitTenant => self.tenants.contains_key(key),
            Kind::PermitUser => self.users.contains_key(key),
            Kind::RoleAssignment => self.assignments.contains_key(key),
            Kind::ResourceRelation => self.relations.contains_key(key),
            Kind::ResourceRole => self.resource_roles.contains_key(key),
            Kind::RoleDerivation => self.derivations.contains_key(key),
            Kind::PermitResourceInstance => self.instances.contains_key(key),
            Kind::PermitRelationshipTuple => self.tuples.contains_key(key),
            Kind::PermitPDP => false,
        }
    }

    /// [`Obj::parents`] of the object of `kind` with `key`, without copying it: kinds with no
    /// parents answer at once and an assignment from its key (the cascade passes ask this of
    /// every live object; a copy of each was most of their cost at 300,000 assignments).
    pub fn parents(&self, kind: Kind, key: &str) -> Vec<ObjectId> {
        match kind {
            Kind::PermitResource
            | Kind::PermitRole
            | Kind::PermitTenant
            | Kind::PermitUser
            | Kind::PermitPDP => Vec::new(),
            Kind::RoleAssignment => {
                AssignmentRef::parse(key).map_or_else(Vec::new, |a| a.parents())
            }
            Kind::ResourceRelation
            | Kind::ResourceRole
            | Kind::RoleDerivation
            | Kind::PermitResourceInstance
            | Kind::PermitRelationshipTuple => {
                self.get(kind, key).map_or_else(Vec::new, |o| o.parents())
            }
        }
    }

    /// Keys of one kind, sorted, borrowed (at 300,000 assignments a list of copies is tens of
    /// megabytes).
    pub fn key_refs(&self, kind: Kind) -> Box<dyn Iterator<Item = &str> + '_> {
        match kind {
            Kind::PermitResource => Box::new(self.resources.keys().map(String::as_str)),
            Kind::PermitRole => Box::new(self.roles.keys().map(String::as_str)),
            Kind::PermitTenant => Box::new(self.tenants.keys().map(String::as_str)),
            Kind::PermitUser => Box::new(self.users.keys().map(String::as_str)),
            Kind::RoleAssignment => Box::new(self.assignments.keys()),
            Kind::ResourceRelation => Box::new(self.relations.keys().map(String::as_str)),
            Kind::ResourceRole => Box::new(self.resource_roles.keys().map(String::as_str)),
            Kind::RoleDerivation => Box::new(self.derivations.keys().map(String::as_str)),
            Kind::PermitResourceInstance => Box::new(self.instances.keys().map(String::as_str)),
            Kind::PermitRelationshipTuple => Box::new(self.tuples.keys().map(String::as_str)),
            Kind::PermitPDP => Box::new(std::iter::empty()),
        }
    }

    /// Takes every object of one kind out, in key order: the map is emptied at once and its
    /// memory freed as the iterator goes (a planner that consumes the model uses this).
    pub fn take(&mut self, kind: Kind) -> Box<dyn Iterator<Item = (String, Obj)> + Send> {
        fn each<V: Send + 'static>(
            map: BTreeMap<String, V>,
            obj: fn(V) -> Obj,
        ) -> Box<dyn Iterator<Item = (String, Obj)> + Send> {
            Box::new(map.into_iter().map(move |(key, v)| (key, obj(v))))
        }
        match kind {
            Kind::PermitResource => each(std::mem::take(&mut self.resources), Obj::Resource),
            Kind::PermitRole => each(std::mem::take(&mut self.roles), Obj::Role),
            Kind::PermitTenant => each(std::mem::take(&mut self.tenants), Obj::Tenant),
            Kind::PermitUser => each(std::mem::take(&mut self.users), Obj::User),
            Kind::ResourceRelation => each(std::mem::take(&mut self.relations), Obj::Relation),
            Kind::ResourceRole => each(std::mem::take(&mut self.resource_roles), Obj::ResourceRole),
            Kind::RoleDerivation => each(std::mem::take(&mut self.derivations), Obj::Derivation),
            Kind::PermitResourceInstance => {
                each(std::mem::take(&mut self.instances), Obj::Instance)
            }
            Kind::PermitRelationshipTuple => each(std::mem::take(&mut self.tuples), Obj::Tuple),
            Kind::RoleAssignment => Box::new(
                std::mem::take(&mut self.assignments)
                    .0
                    .into_iter()
                    .filter_map(|key| {
                        let a = Assignment::parse(&key)?;
                        Some((String::from(key), Obj::Assignment(a)))
                    }),
            ),
            Kind::PermitPDP => Box::new(std::iter::empty()),
        }
    }

    /// Keys of one kind, sorted.
    pub fn keys(&self, kind: Kind) -> Vec<String> {
        match kind {
            Kind::PermitResource => self.resources.keys().cloned().collect(),
            Kind::PermitRole => self.roles.keys().cloned().collect(),
            Kind::PermitTenant => self.tenants.keys().cloned().collect(),
            Kind::PermitUser => self.users.keys().cloned().collect(),
            Kind::RoleAssignment => self.assignments.keys().map(String::from).collect(),
            Kind::ResourceRelation => self.relations.keys().cloned().collect(),
            Kind::ResourceRole => self.resource_roles.keys().cloned().collect(),
            Kind::RoleDerivation => self.derivations.keys().cloned().collect(),
            Kind::PermitResourceInstance => self.instances.keys().cloned().collect(),
            Kind::PermitRelationshipTuple => self.tuples.keys().cloned().collect(),
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
            + self.relations.len()
            + self.resource_roles.len()
            + self.derivations.len()
            + self.instances.len()
            + self.tuples.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Rebuilds every map from its sorted contents. Maps grown one insert at a time in key order
    /// (manifests, listings) leave their nodes about half full; built in one go they are full:
    /// at 400,000 objects, tens of megabytes.
    pub fn compact(&mut self) {
        compact(&mut self.resources);
        compact(&mut self.roles);
        compact(&mut self.tenants);
        compact(&mut self.users);
        self.assignments.compact();
        compact(&mut self.relations);
        compact(&mut self.resource_roles);
        compact(&mut self.derivations);
        compact(&mut self.instances);
        compact(&mut self.tuples);
    }
}

/// See [`State::compact`].
pub fn compact<K: Ord, V>(map: &mut BTreeMap<K, V>) {
    *map = std::mem::take(map).into_iter().collect();
}
