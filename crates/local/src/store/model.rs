//! Records (what is stored and saved), inputs (what the API layer hands in) and the snapshot.

use crate::table::Row;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use uuid::Uuid;

pub type Attrs = Map<String, Value>;

/// Whether `ident` names `id`: Permit emits ids as 32 hex digits without dashes (its captured
/// responses, permit-api.md "Corrections"), while older clients and the docs use the dashed form, so
/// a path may carry either (`Uuid::parse_str` takes both, in any case).
pub fn same_id(id: Uuid, ident: &str) -> bool {
    Uuid::parse_str(ident).is_ok_and(|x| x == id)
}

/// The tenant every environment has from the start.
pub const DEFAULT_TENANT: &str = "default";

/// Who the API key belongs to: one organization, project and environment.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Scope {
    pub organization_id: Uuid,
    pub project_id: Uuid,
    pub environment_id: Uuid,
    pub project_key: String,
    pub environment_key: String,
}

impl Scope {
    pub fn new() -> Self {
        Scope {
            organization_id: Uuid::new_v4(),
            project_id: Uuid::new_v4(),
            environment_id: Uuid::new_v4(),
            project_key: "default".into(),
            environment_key: "local".into(),
        }
    }
}

impl Default for Scope {
    fn default() -> Self {
        Scope::new()
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct User {
    pub id: Uuid,
    pub key: String,
    pub email: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub attributes: Attrs,
    /// Whether attributes were ever sent ([`Unset`]).
    #[serde(default)]
    pub attributes_set: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Tenant {
    pub id: Uuid,
    pub key: String,
    pub name: String,
    pub description: Option<String>,
    pub attributes: Attrs,
    /// Whether attributes were ever sent ([`Unset`]).
    #[serde(default)]
    pub attributes_set: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub last_action_at: DateTime<Utc>,
}

/// Users' and tenants' `attributes` as Permit keeps them: never sent (or sent as `null`) reads back
/// as `null`, not `{}`. permit-node's e2e test creates a tenant without attributes against the live
/// API and asserts `t.is(tenant.attributes, null)` (permitio/permit-node
/// `src/tests/e2e/rbac.e2e.spec.ts`). A map that was sent, `{}` included, reads back as sent. The
/// map stays in `attributes` (empty when unset) for the PDP; `attributes_set` says which it is.
/// Snapshots written before the flag existed load with it false, so their empty maps read as
/// `null` and the others as they are.
pub trait Unset {
    fn attributes_slot(&mut self) -> (&mut Attrs, &mut bool);

    /// Stores what a request sent: `None` unsets.
    fn set_attributes(&mut self, attributes: Option<Attrs>) {
        let (map, set) = self.attributes_slot();
        *set = attributes.is_some();
        *map = attributes.unwrap_or_default();
    }
}

impl Unset for User {
    fn attributes_slot(&mut self) -> (&mut Attrs, &mut bool) {
        (&mut self.attributes, &mut self.attributes_set)
    }
}

impl Unset for Tenant {
    fn attributes_slot(&mut self) -> (&mut Attrs, &mut bool) {
        (&mut self.attributes, &mut self.attributes_set)
    }
}

/// The `attributes` a read model shows: `null` when never set (see [`Unset`]).
pub fn shown_attributes(map: &Attrs, set: bool) -> Value {
    if set || !map.is_empty() {
        Value::Object(map.clone())
    } else {
        Value::Null
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Action {
    pub id: Uuid,
    pub key: String,
    pub name: String,
    pub description: Option<String>,
    pub attributes: Option<Attrs>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Resource {
    pub id: Uuid,
    pub key: String,
    pub name: String,
    pub description: Option<String>,
    pub urn: Option<String>,
    pub actions: Vec<Action>,
    pub attributes: Option<Value>,
    pub type_attributes: Option<Value>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Resource {
    pub fn action(&self, ident: &str) -> Option<&Action> {
        self.actions
            .iter()
            .find(|a| a.key == ident || same_id(a.id, ident))
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Role {
    pub id: Uuid,
    pub key: String,
    pub name: String,
    pub description: Option<String>,
    /// `resource:action` strings, in the order they were granted.
    pub permissions: Vec<String>,
    /// Keys of the roles whose permissions this role inherits.
    pub extends: Vec<String>,
    pub attributes: Option<Attrs>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Assignment {
    pub id: Uuid,
    pub user_id: Uuid,
    pub role_id: Uuid,
    pub tenant_id: Uuid,
    pub created_at: DateTime<Utc>,
}

macro_rules! keyed_row {
    ($($t:ty),*) => {$(
        impl Row for $t {
            type Key = String;
            fn key(&self) -> String { self.key.clone() }
            fn id(&self) -> Uuid { self.id }
        }
    )*};
}
keyed_row!(User, Tenant, Resource, Role);

/// A role of one resource (ReBAC): its identity is `(resource, key)`, so `Author` may be a tenant
/// role and a role of several resources at once (permit-cli's `blogging-platform` template).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ResourceRole {
    pub id: Uuid,
    /// The resource's key (resource keys never change).
    pub resource: String,
    pub key: String,
    pub name: String,
    pub description: Option<String>,
    /// Action keys of its resource, in the order granted.
    pub permissions: Vec<String>,
    /// Keys of roles of the same resource whose permissions this role inherits.
    pub extends: Vec<String>,
    pub attributes: Option<Attrs>,
    /// Its derivations (`granted_to.users_with_role`).
    pub granted_to: Vec<DerivationRule>,
    /// `granted_to.when.no_direct_roles_on_object`, set by `PUT …/implicit_grants/conditions`.
    pub no_direct_roles_on_object: bool,
    /// The id of the `granted_to` block (`DerivedRoleBlockRead.id`, required by the SDK).
    pub granted_to_id: Uuid,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl ResourceRole {
    /// `(resource, key)`: its identity.
    pub fn key_pair(&self) -> (String, String) {
        (self.resource.clone(), self.key.clone())
    }
}

/// One derivation of a resource role: users with `role` on an instance of `on_resource` that is
/// the subject of a `linked_by_relation` tuple to an instance of the role's resource get the role.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DerivationRule {
    pub role: String,
    pub on_resource: String,
    pub linked_by_relation: String,
    /// The rule's own `when.no_direct_roles_on_object`.
    #[serde(default)]
    pub no_direct_roles_on_object: bool,
}

/// A relation of an object resource to a subject resource (`a Post is a Comment's parent`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Relation {
    pub id: Uuid,
    pub object_resource: String,
    pub key: String,
    pub name: String,
    pub description: Option<String>,
    pub subject_resource: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A resource instance, `resource:key`, living in one tenant.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Instance {
    pub id: Uuid,
    pub resource: String,
    pub key: String,
    pub tenant_id: Uuid,
    pub attributes: Option<Attrs>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A relationship tuple between two instances of one tenant (the subject's).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Tuple {
    pub id: Uuid,
    pub subject_id: Uuid,
    pub relation: String,
    pub object_id: Uuid,
    pub tenant_id: Uuid,
    pub created_at: DateTime<Utc>,
}

/// A resource role assigned to a user on one instance (the tenant is the instance's).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct InstanceAssignment {
    pub id: Uuid,
    pub user_id: Uuid,
    pub role_id: Uuid,
    pub instance_id: Uuid,
    pub created_at: DateTime<Utc>,
}

macro_rules! pair_row {
    ($($t:ty => $a:ident),*) => {$(
        impl Row for $t {
            type Key = (String, String);
            fn key(&self) -> Self::Key { (self.$a.clone(), self.key.clone()) }
            fn id(&self) -> Uuid { self.id }
        }
    )*};
}
pair_row!(ResourceRole => resource, Relation => object_resource, Instance => resource);

impl Row for Tuple {
    type Key = (Uuid, String, Uuid);
    fn key(&self) -> Self::Key {
        (self.subject_id, self.relation.clone(), self.object_id)
    }
    fn id(&self) -> Uuid {
        self.id
    }
}

impl Row for InstanceAssignment {
    type Key = (Uuid, Uuid, Uuid);
    fn key(&self) -> Self::Key {
        (self.user_id, self.role_id, self.instance_id)
    }
    fn id(&self) -> Uuid {
        self.id
    }
}

impl Row for Assignment {
    type Key = (Uuid, Uuid, Uuid);
    fn key(&self) -> Self::Key {
        (self.user_id, self.role_id, self.tenant_id)
    }
    fn id(&self) -> Uuid {
        self.id
    }
}

// ---- inputs (already validated for shape by the API layer) ----

#[derive(Debug, Clone, Default)]
pub struct UserInput {
    pub key: String,
    pub email: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    /// `None`: not sent (or `null`), which Permit keeps as `null`.
    pub attributes: Option<Attrs>,
}

/// A PATCH: `Some` for each field sent, which replaces the stored value entirely.
#[derive(Debug, Clone, Default)]
pub struct UserPatch {
    pub email: Option<Option<String>>,
    pub first_name: Option<Option<String>>,
    pub last_name: Option<Option<String>>,
    /// `Some(None)`: sent as `null`, which unsets.
    pub attributes: Option<Option<Attrs>>,
}

#[derive(Debug, Clone, Default)]
pub struct TenantInput {
    pub key: String,
    pub name: String,
    pub description: Option<String>,
    pub attributes: Option<Attrs>,
}

#[derive(Debug, Clone, Default)]
pub struct TenantPatch {
    pub name: Option<String>,
    pub description: Option<Option<String>>,
    pub attributes: Option<Option<Attrs>>,
}

#[derive(Debug, Clone, Default)]
pub struct ActionInput {
    pub key: String,
    pub name: Option<String>,
    pub description: Option<String>,
    pub attributes: Option<Attrs>,
}

#[derive(Debug, Clone, Default)]
pub struct ResourceInput {
    pub key: String,
    pub name: String,
    pub description: Option<String>,
    pub urn: Option<String>,
    pub actions: Vec<ActionInput>,
    pub attributes: Option<Value>,
    pub type_attributes: Option<Value>,
}

#[derive(Debug, Clone, Default)]
pub struct ResourcePatch {
    pub name: Option<String>,
    pub description: Option<Option<String>>,
    pub urn: Option<Option<String>>,
    pub actions: Option<Vec<ActionInput>>,
    pub attributes: Option<Option<Value>>,
    pub type_attributes: Option<Option<Value>>,
}

#[derive(Debug, Clone, Default)]
pub struct RoleInput {
    pub key: String,
    pub name: String,
    pub description: Option<String>,
    pub permissions: Vec<String>,
    pub extends: Vec<String>,
    pub attributes: Option<Attrs>,
}

#[derive(Debug, Clone, Default)]
pub struct RolePatch {
    pub name: Option<String>,
    pub description: Option<Option<String>>,
    pub permissions: Option<Vec<String>>,
    pub extends: Option<Vec<String>>,
    pub attributes: Option<Option<Attrs>>,
}

/// One assignment as the caller names it (keys or UUIDs); `resource_instance` (`type:key` or an
/// instance id) makes it an instance role assignment of a resource role.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AssignmentRef {
    pub user: String,
    pub role: String,
    pub tenant: Option<String>,
    pub resource_instance: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct ResourceRoleInput {
    pub key: String,
    pub name: String,
    pub description: Option<String>,
    pub permissions: Vec<String>,
    pub extends: Vec<String>,
    pub attributes: Option<Attrs>,
    /// `granted_to`: its derivations and the block's `when`.
    pub granted_to: Option<GrantedToInput>,
}

#[derive(Debug, Clone, Default)]
pub struct GrantedToInput {
    pub users_with_role: Vec<DerivationRule>,
    pub no_direct_roles_on_object: Option<bool>,
}

#[derive(Debug, Clone, Default)]
pub struct ResourceRolePatch {
    pub name: Option<String>,
    pub description: Option<Option<String>>,
    pub permissions: Option<Vec<String>>,
    pub extends: Option<Vec<String>>,
    pub attributes: Option<Option<Attrs>>,
    pub granted_to: Option<GrantedToInput>,
}

#[derive(Debug, Clone, Default)]
pub struct RelationInput {
    pub key: String,
    pub name: String,
    pub description: Option<String>,
    pub subject_resource: String,
}

#[derive(Debug, Clone, Default)]
pub struct InstanceInput {
    pub key: String,
    pub resource: String,
    pub tenant: String,
    pub attributes: Option<Attrs>,
}

/// A tuple as the caller names it: subject and object `type:key` (or instance ids).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TupleRef {
    pub subject: String,
    pub relation: String,
    pub object: String,
    pub tenant: Option<String>,
}

/// Filters of `GET /resource_instances`.
#[derive(Debug, Clone, Default)]
pub struct InstanceFilter {
    pub tenant: Option<String>,
    pub resource: Option<String>,
    pub search: Option<String>,
}

/// Filters of `GET /relationship_tuples`.
#[derive(Debug, Clone, Default)]
pub struct TupleFilter {
    pub subject: Option<String>,
    pub relation: Option<String>,
    pub object: Option<String>,
    pub tenant: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MissingUserPolicy {
    #[default]
    Fail,
    Ignore,
    Create,
}

/// Filters of `GET /role_assignments`: each list is "any of"; empty means no filter.
#[derive(Debug, Clone, Default)]
pub struct AssignmentFilter {
    pub users: Vec<String>,
    pub roles: Vec<String>,
    pub tenants: Vec<String>,
    /// `resource`: only instance assignments on instances of this type.
    pub resource: Option<String>,
    /// `resource_instance` (`type:key` or id): only instance assignments on it.
    pub resource_instance: Option<String>,
}

/// The whole state as it is saved to disk (indexes are rebuilt on load).
#[derive(Debug, Serialize, Deserialize)]
pub struct Snapshot {
    pub format: u32,
    pub scope: Scope,
    pub api_key: String,
    pub users: Vec<User>,
    pub tenants: Vec<Tenant>,
    pub resources: Vec<Resource>,
    pub roles: Vec<Role>,
    pub assignments: Vec<Assignment>,
    // ReBAC rows (format 2); a format-1 file reads with none.
    #[serde(default)]
    pub resource_roles: Vec<ResourceRole>,
    #[serde(default)]
    pub relations: Vec<Relation>,
    #[serde(default)]
    pub instances: Vec<Instance>,
    #[serde(default)]
    pub tuples: Vec<Tuple>,
    #[serde(default)]
    pub instance_assignments: Vec<InstanceAssignment>,
}

/// 2: resource roles, relations, instances, tuples and instance assignments. Format 1 still loads.
pub const SNAPSHOT_FORMAT: u32 = 2;
