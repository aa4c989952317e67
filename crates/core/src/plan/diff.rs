//! Field-level differences between a desired object and the live one.
//!
//! A desired field that is `None` is not managed and never differs. Fields are typed per object
//! type ([`super::field`]) and stand for Permit's fields in request bodies, because PATCH replaces
//! whole fields: the executor sends the full desired value of each field listed here.

use super::field::{
    Field, InstanceField, RelationField, ResourceField, ResourceRoleField, RoleField, TenantField,
    TupleField, UserField,
};
use super::ops::FieldDiff;
use crate::model::{
    Action, Instance, Obj, Relation, Resource, ResourceRole, Role, Tenant, Tuple, User,
};
use serde::Serialize;
use serde_json::Value;
use std::collections::BTreeMap;

fn json<T: Serialize>(v: &T) -> Value {
    serde_json::to_value(v).unwrap_or(Value::Null)
}

/// Compares a required field.
fn field<T: PartialEq + Serialize>(
    out: &mut Vec<FieldDiff>,
    name: impl Into<Field>,
    desired: &T,
    live: &T,
) {
    if desired != live {
        out.push(FieldDiff {
            field: name.into(),
            before: json(live),
            after: json(desired),
        });
    }
}

/// Compares an optional field; `None` on the desired side means "not managed".
fn managed<T: PartialEq + Serialize>(
    out: &mut Vec<FieldDiff>,
    name: impl Into<Field>,
    desired: &Option<T>,
    live: &Option<T>,
) {
    if let Some(d) = desired
        && live.as_ref() != Some(d)
    {
        out.push(FieldDiff {
            field: name.into(),
            before: json(live),
            after: json(d),
        });
    }
}

/// Compares declared `attributes` with live ones, where Permit's `null` and `{}` are one value.
/// Permit answers `null` for the attributes of a user or tenant created without any (permit-node's
/// e2e test against the live API: `t.is(tenant.attributes, null)`, permitio/permit-node
/// `src/tests/e2e/rbac.e2e.spec.ts`), and a manifest's `attributes: {}` declares exactly that: no
/// attributes. An update there would change nothing a decision reads, and, should Permit store `{}`
/// back as `null`, would be planned again on every run. So no diff. Any other difference is one,
/// and shows the live value as Permit sent it (`null` when unset).
fn managed_attrs(
    out: &mut Vec<FieldDiff>,
    name: impl Into<Field>,
    desired: &Option<crate::model::Attrs>,
    live: &Option<crate::model::Attrs>,
) {
    if desired.as_ref().is_some_and(|d| d.is_empty()) && live.is_none() {
        return;
    }
    managed(out, name, desired, live);
}

/// Whether a live action satisfies the declared one.
pub fn action_matches(desired: &Action, live: &Action) -> bool {
    desired.name == live.name
        && desired
            .description
            .as_ref()
            .is_none_or(|d| live.description.as_ref() == Some(d))
        && desired
            .attributes
            .as_ref()
            .is_none_or(|d| live.attributes.as_ref() == Some(d))
}

fn actions_match(desired: &BTreeMap<String, Action>, live: &BTreeMap<String, Action>) -> bool {
    desired.len() == live.len()
        && desired
            .iter()
            .all(|(k, d)| live.get(k).is_some_and(|l| action_matches(d, l)))
}

pub fn resource(d: &Resource, l: &Resource) -> Vec<FieldDiff> {
    let mut out = Vec::new();
    field(&mut out, ResourceField::Name, &d.name, &l.name);
    managed(
        &mut out,
        ResourceField::Description,
        &d.description,
        &l.description,
    );
    if !actions_match(&d.actions, &l.actions) {
        out.push(FieldDiff {
            field: ResourceField::Actions.into(),
            before: json(&l.actions),
            after: json(&d.actions),
        });
    }
    // A server that does not report attribute definitions cannot be compared against.
    if l.attributes.is_some() {
        managed(
            &mut out,
            ResourceField::Attributes,
            &d.attributes,
            &l.attributes,
        );
    }
    out
}

pub fn role(d: &Role, l: &Role) -> Vec<FieldDiff> {
    let mut out = Vec::new();
    field(&mut out, RoleField::Name, &d.name, &l.name);
    managed(
        &mut out,
        RoleField::Description,
        &d.description,
        &l.description,
    );
    field(
        &mut out,
        RoleField::Permissions,
        &d.permissions,
        &l.permissions,
    );
    field(&mut out, RoleField::Extends, &d.extends, &l.extends);
    managed_attrs(
        &mut out,
        RoleField::Attributes,
        &d.attributes,
        &l.attributes,
    );
    out
}

pub fn tenant(d: &Tenant, l: &Tenant) -> Vec<FieldDiff> {
    let mut out = Vec::new();
    field(&mut out, TenantField::Name, &d.name, &l.name);
    managed(
        &mut out,
        TenantField::Description,
        &d.description,
        &l.description,
    );
    managed_attrs(
        &mut out,
        TenantField::Attributes,
        &d.attributes,
        &l.attributes,
    );
    out
}

pub fn user(d: &User, l: &User) -> Vec<FieldDiff> {
    let mut out = Vec::new();
    managed(&mut out, UserField::Email, &d.email, &l.email);
    managed(&mut out, UserField::FirstName, &d.first_name, &l.first_name);
    managed(&mut out, UserField::LastName, &d.last_name, &l.last_name);
    managed_attrs(
        &mut out,
        UserField::Attributes,
        &d.attributes,
        &l.attributes,
    );
    out
}

pub fn relation(d: &Relation, l: &Relation) -> Vec<FieldDiff> {
    let mut out = Vec::new();
    field(&mut out, RelationField::Subject, &d.subject, &l.subject);
    out
}

pub fn resource_role(d: &ResourceRole, l: &ResourceRole) -> Vec<FieldDiff> {
    let mut out = Vec::new();
    field(&mut out, ResourceRoleField::Name, &d.name, &l.name);
    managed(
        &mut out,
        ResourceRoleField::Description,
        &d.description,
        &l.description,
    );
    field(
        &mut out,
        ResourceRoleField::Permissions,
        &d.permissions,
        &l.permissions,
    );
    field(&mut out, ResourceRoleField::Extends, &d.extends, &l.extends);
    managed_attrs(
        &mut out,
        ResourceRoleField::Attributes,
        &d.attributes,
        &l.attributes,
    );
    // Permit reports `false` for a role whose option was never set: the same as declaring none.
    let live_when = Some(l.no_direct_roles_on_object.unwrap_or(false));
    managed(
        &mut out,
        ResourceRoleField::NoDirectRolesOnObject,
        &d.no_direct_roles_on_object,
        &live_when,
    );
    out
}

pub fn instance(d: &Instance, l: &Instance) -> Vec<FieldDiff> {
    let mut out = Vec::new();
    field(&mut out, InstanceField::Tenant, &d.tenant, &l.tenant);
    managed_attrs(
        &mut out,
        InstanceField::Attributes,
        &d.attributes,
        &l.attributes,
    );
    out
}

pub fn tuple(d: &Tuple, l: &Tuple) -> Vec<FieldDiff> {
    let mut out = Vec::new();
    field(&mut out, TupleField::Tenant, &d.tenant, &l.tenant);
    out
}

/// Differences of two objects of the same kind (assignments are identity only: never any).
pub fn diff(desired: &Obj, live: &Obj) -> Vec<FieldDiff> {
    match (desired, live) {
        (Obj::Resource(d), Obj::Resource(l)) => resource(d, l),
        (Obj::Role(d), Obj::Role(l)) => role(d, l),
        (Obj::Tenant(d), Obj::Tenant(l)) => tenant(d, l),
        (Obj::User(d), Obj::User(l)) => user(d, l),
        (Obj::Assignment(_), Obj::Assignment(_)) => Vec::new(),
        (Obj::Relation(d), Obj::Relation(l)) => relation(d, l),
        (Obj::ResourceRole(d), Obj::ResourceRole(l)) => resource_role(d, l),
        (Obj::Derivation(_), Obj::Derivation(_)) => Vec::new(),
        (Obj::Instance(d), Obj::Instance(l)) => instance(d, l),
        (Obj::Tuple(d), Obj::Tuple(l)) => tuple(d, l),
        // Every kind listed, so that a new one is a compile error here: objects of two kinds
        // are not compared.
        (
            Obj::Resource(_)
            | Obj::Role(_)
            | Obj::Tenant(_)
            | Obj::User(_)
            | Obj::Assignment(_)
            | Obj::Relation(_)
            | Obj::ResourceRole(_)
            | Obj::Derivation(_)
            | Obj::Instance(_)
            | Obj::Tuple(_),
            _,
        ) => Vec::new(),
    }
}
