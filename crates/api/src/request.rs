//! Request bodies, in the field names Permit's API takes, borrowed from the objects they describe.
//! Attribute maps are free-form (`A`: whatever serialises as Permit's JSON object).
//! An `Option` field that is `None` is left out of the body (never sent as `null`). Fields are in
//! alphabetical order (the order the bodies were written in as JSON maps), but for the user's.

use serde::Serialize;
use std::collections::BTreeMap;

/// An action of a resource, as `POST resources` and `PATCH resources/{}` take it (keyed by its
/// action key in `actions`).
#[derive(Debug, Serialize)]
pub struct ActionWrite<'a, A: Serialize> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attributes: Option<&'a A>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<&'a str>,
    pub name: &'a str,
}

/// `POST resources`.
#[derive(Debug, Serialize)]
pub struct ResourceCreate<'a, A: Serialize, D: Serialize> {
    pub actions: BTreeMap<&'a str, ActionWrite<'a, A>>,
    /// The resource's attribute definitions (`key → {type, description}`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attributes: Option<&'a D>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<&'a str>,
    pub key: &'a str,
    pub name: &'a str,
}

/// `PATCH resources/{}`: each field sent is replaced whole.
#[derive(Debug, Serialize)]
pub struct ResourcePatch<'a, A: Serialize, D: Serialize> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub actions: Option<BTreeMap<&'a str, ActionWrite<'a, A>>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attributes: Option<&'a D>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<&'a str>,
}

/// `POST roles`, and each operation of `PUT bulk/roles`.
#[derive(Debug, Serialize)]
pub struct RoleCreate<'a, A: Serialize> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attributes: Option<&'a A>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<&'a str>,
    pub extends: Vec<&'a str>,
    pub key: &'a str,
    pub name: &'a str,
    pub permissions: Vec<&'a str>,
}

/// `PATCH roles/{}` (permissions change through [`Permissions`]).
#[derive(Debug, Serialize)]
pub struct RolePatch<'a, A: Serialize> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attributes: Option<&'a A>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub extends: Option<Vec<&'a str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<&'a str>,
}

/// `POST|DELETE roles/{}/permissions`.
#[derive(Debug, Serialize)]
pub struct Permissions<'a> {
    pub permissions: Vec<&'a str>,
}

/// `POST tenants`, and each operation of `POST bulk/tenants`.
#[derive(Debug, Serialize)]
pub struct TenantCreate<'a, A: Serialize> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attributes: Option<&'a A>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<&'a str>,
    pub key: &'a str,
    pub name: &'a str,
}

/// `PATCH tenants/{}`.
#[derive(Debug, Serialize)]
pub struct TenantPatch<'a, A: Serialize> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attributes: Option<&'a A>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<&'a str>,
}

/// `PUT users/{}`, and each operation of `PUT bulk/users`: the whole user.
#[derive(Debug, Serialize)]
pub struct UserUpsert<'a, A: Serialize> {
    pub key: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attributes: Option<&'a A>,
}

/// `POST|DELETE role_assignments`, and each item of the bulk assign and unassign (which take a
/// bare array of them).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Assign<'a> {
    pub user: &'a str,
    pub role: &'a str,
    pub tenant: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resource_instance: Option<&'a str>,
}

/// A bulk body: `{"operations": [...]}`, written straight from the items (no JSON tree of
/// thousands of objects built first).
#[derive(Debug, Serialize)]
pub struct Operations<T: Serialize> {
    pub operations: Vec<T>,
}

/// `DELETE bulk/users` and `DELETE bulk/tenants`: the keys to delete.
#[derive(Debug, Serialize)]
pub struct Idents<'a> {
    pub idents: Vec<&'a str>,
}

// ReBAC (issue 18): the bodies of permit-python's `ResourceRoleCreate`, `RelationCreate`,
// `DerivedRoleRuleCreate`, `ResourceInstanceCreate`, `RelationshipTupleCreate` and their deletes.
// A resource role is created with [`RoleCreate`] and patched with [`RolePatch`] under
// `resources/{}/roles`; its permissions change through [`Permissions`].

/// `POST resources/{}/relations`: a relation of the object resource to a subject resource.
#[derive(Debug, Serialize)]
pub struct RelationCreate<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<&'a str>,
    pub key: &'a str,
    pub name: &'a str,
    /// The subject resource's key (a `Post` is a `Comment`'s `parent`).
    pub subject_resource: &'a str,
}

/// `POST|DELETE resources/{resource}/roles/{role}/implicit_grants`: users with `role` on an
/// instance of `on_resource` that is `linked_by_relation` to an instance of `resource` get
/// `resource#role` on it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct DerivationWrite<'a> {
    pub linked_by_relation: &'a str,
    pub on_resource: &'a str,
    pub role: &'a str,
}

/// `PUT resources/{}/roles/{}/implicit_grants/conditions`: the derivation options.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct DerivationConditions {
    /// Derive the role only for users with no direct role on the object instance.
    pub no_direct_roles_on_object: bool,
}

/// `POST resource_instances`, and each operation of `PUT bulk/resource_instances`
/// (`{"operations": [...]}`). `tenant` is required (permit 3.0.0 `ResourceInstanceCreate.tenant:
/// str`).
#[derive(Debug, Serialize)]
pub struct InstanceCreate<'a, A: Serialize> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attributes: Option<&'a A>,
    pub key: &'a str,
    pub resource: &'a str,
    pub tenant: &'a str,
}

/// `PATCH resource_instances/{}`.
#[derive(Debug, Serialize)]
pub struct InstancePatch<'a, A: Serialize> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attributes: Option<&'a A>,
}

/// `POST relationship_tuples`, and each operation of `POST relationship_tuples/bulk`
/// (`{"operations": [...]}`, permit 3.0.0 `RelationshipTupleCreateBulkOperation`); subject and
/// object are `type:key`; `tenant` may be left out when one of them exists.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct TupleCreate<'a> {
    pub object: &'a str,
    pub relation: &'a str,
    pub subject: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tenant: Option<&'a str>,
}

/// `DELETE relationship_tuples`, and each ident of `DELETE relationship_tuples/bulk`
/// (`{"idents": [...]}`, permit 3.0.0 `RelationshipTupleDeleteBulkOperation`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct TupleDelete<'a> {
    pub object: &'a str,
    pub relation: &'a str,
    pub subject: &'a str,
}

/// `DELETE relationship_tuples/bulk`: the tuples to delete.
#[derive(Debug, Serialize)]
pub struct TupleIdents<'a> {
    pub idents: Vec<TupleDelete<'a>>,
}
