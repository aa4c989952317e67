//! Request bodies, in the field names Permit's API takes: `permit_api::request`'s structs,
//! borrowed from the model's objects.

use crate::model::{
    Action, AttributeDef, Attrs, Derivation, Instance, Relation, Resource, ResourceRole, Role,
    Tenant, Tuple, User,
};
use crate::plan::{ResourceField, ResourceRoleField, RoleField, TenantField};
use permit_api::request as wire;
use std::collections::BTreeMap;

pub use wire::Operations;

/// The actions of a resource, keyed by action key.
type Actions<'a> = BTreeMap<&'a str, wire::ActionWrite<'a, Attrs>>;
/// A resource's attribute definitions.
type Defs = BTreeMap<String, AttributeDef>;

fn actions(r: &Resource) -> Actions<'_> {
    r.actions
        .iter()
        .map(|(k, a): (&String, &Action)| {
            let action = wire::ActionWrite {
                name: &a.name,
                description: a.description.as_deref(),
                attributes: a.attributes.as_ref(),
            };
            (k.as_str(), action)
        })
        .collect()
}

fn strs(set: &std::collections::BTreeSet<String>) -> Vec<&str> {
    set.iter().map(String::as_str).collect()
}

pub fn resource_create(r: &Resource) -> wire::ResourceCreate<'_, Attrs, Defs> {
    wire::ResourceCreate {
        key: &r.key,
        name: &r.name,
        description: r.description.as_deref(),
        actions: actions(r),
        attributes: r.attributes.as_ref(),
    }
}

/// PATCH body: the full desired value of each listed field (PATCH replaces whole fields).
pub fn resource_patch<'a>(
    r: &'a Resource,
    fields: &[ResourceField],
) -> wire::ResourcePatch<'a, Attrs, Defs> {
    let has = |f: ResourceField| fields.contains(&f);
    wire::ResourcePatch {
        name: has(ResourceField::Name).then_some(r.name.as_str()),
        description: r
            .description
            .as_deref()
            .filter(|_| has(ResourceField::Description)),
        actions: has(ResourceField::Actions).then(|| actions(r)),
        attributes: r
            .attributes
            .as_ref()
            .filter(|_| has(ResourceField::Attributes)),
    }
}

pub fn role_create(r: &Role) -> wire::RoleCreate<'_, Attrs> {
    role_body(role_parts(r), &r.permissions)
}

/// Role PATCH without permissions, which change through the add/remove endpoints.
pub fn role_patch<'a>(r: &'a Role, fields: &[RoleField]) -> wire::RolePatch<'a, Attrs> {
    let has = |f: RoleField| fields.contains(&f);
    patch_body(
        role_parts(r),
        [
            has(RoleField::Name),
            has(RoleField::Description),
            has(RoleField::Extends),
            has(RoleField::Attributes),
        ],
    )
}

fn role_parts(r: &Role) -> RoleParts<'_> {
    RoleParts {
        key: &r.key,
        name: &r.name,
        description: r.description.as_deref(),
        extends: &r.extends,
        attributes: r.attributes.as_ref(),
    }
}

/// The fields a tenant role and a resource role share, borrowed.
struct RoleParts<'a> {
    key: &'a str,
    name: &'a str,
    description: Option<&'a str>,
    extends: &'a std::collections::BTreeSet<String>,
    attributes: Option<&'a Attrs>,
}

fn role_body<'a>(
    r: RoleParts<'a>,
    permissions: &'a std::collections::BTreeSet<String>,
) -> wire::RoleCreate<'a, Attrs> {
    wire::RoleCreate {
        key: r.key,
        name: r.name,
        description: r.description,
        permissions: strs(permissions),
        extends: strs(r.extends),
        attributes: r.attributes,
    }
}

/// A PATCH of the fields `[name, description, extends, attributes]` marks.
fn patch_body(
    r: RoleParts<'_>,
    [name, description, extends, attributes]: [bool; 4],
) -> wire::RolePatch<'_, Attrs> {
    wire::RolePatch {
        name: name.then_some(r.name),
        description: r.description.filter(|_| description),
        extends: extends.then(|| strs(r.extends)),
        attributes: r.attributes.filter(|_| attributes),
    }
}

/// The permissions a role gains or loses (`POST|DELETE roles/{}/permissions`).
pub fn permissions<'a>(keys: &[&'a String]) -> wire::Permissions<'a> {
    wire::Permissions {
        permissions: keys.iter().map(|k| k.as_str()).collect(),
    }
}

pub fn tenant_create(t: &Tenant) -> wire::TenantCreate<'_, Attrs> {
    wire::TenantCreate {
        key: &t.key,
        name: &t.name,
        description: t.description.as_deref(),
        attributes: t.attributes.as_ref(),
    }
}

pub fn tenant_patch<'a>(t: &'a Tenant, fields: &[TenantField]) -> wire::TenantPatch<'a, Attrs> {
    let has = |f: TenantField| fields.contains(&f);
    wire::TenantPatch {
        name: has(TenantField::Name).then_some(t.name.as_str()),
        description: t
            .description
            .as_deref()
            .filter(|_| has(TenantField::Description)),
        attributes: t
            .attributes
            .as_ref()
            .filter(|_| has(TenantField::Attributes)),
    }
}

/// A user as a PUT sends it, borrowed from the op.
pub type UserUpsert<'a> = wire::UserUpsert<'a, Attrs>;

/// The user as it must be after an upsert: PUT replaces the whole user, so the undeclared fields
/// keep the values Permit holds.
pub fn user_upsert<'a>(desired: &'a User, live: Option<&'a User>) -> UserUpsert<'a> {
    let kept = |want: &'a Option<String>, have: fn(&'a User) -> &'a Option<String>| {
        want.as_deref()
            .or_else(|| live.and_then(|l| have(l).as_deref()))
    };
    UserUpsert {
        key: &desired.key,
        email: kept(&desired.email, |l| &l.email),
        first_name: kept(&desired.first_name, |l| &l.first_name),
        last_name: kept(&desired.last_name, |l| &l.last_name),
        attributes: desired
            .attributes
            .as_ref()
            .or_else(|| live.and_then(|l| l.attributes.as_ref())),
    }
}

/// A resource role as `POST resources/{}/roles` takes it (Permit's `ResourceRoleCreate`: the
/// tenant role's fields; its derivations are written on their own).
pub fn resource_role_create(r: &ResourceRole) -> wire::RoleCreate<'_, Attrs> {
    role_body(resource_role_parts(r), &r.permissions)
}

/// Resource role PATCH without permissions, which change through the add/remove endpoints.
pub fn resource_role_patch<'a>(
    r: &'a ResourceRole,
    fields: &[ResourceRoleField],
) -> wire::RolePatch<'a, Attrs> {
    let has = |f: ResourceRoleField| fields.contains(&f);
    patch_body(
        resource_role_parts(r),
        [
            has(ResourceRoleField::Name),
            has(ResourceRoleField::Description),
            has(ResourceRoleField::Extends),
            has(ResourceRoleField::Attributes),
        ],
    )
}

fn resource_role_parts(r: &ResourceRole) -> RoleParts<'_> {
    RoleParts {
        key: &r.key,
        name: &r.name,
        description: r.description.as_deref(),
        extends: &r.extends,
        attributes: r.attributes.as_ref(),
    }
}

pub fn relation_create(r: &Relation) -> wire::RelationCreate<'_> {
    wire::RelationCreate {
        key: &r.key,
        name: &r.name,
        description: r.description.as_deref(),
        subject_resource: &r.subject,
    }
}

/// The body of a derivation's create and delete: the source role, its resource, the relation.
pub fn derivation(d: &Derivation) -> wire::DerivationWrite<'_> {
    let (on_resource, role) = Derivation::split(&d.source);
    wire::DerivationWrite {
        linked_by_relation: &d.relation,
        on_resource,
        role,
    }
}

pub fn instance_create(i: &Instance) -> wire::InstanceCreate<'_, Attrs> {
    wire::InstanceCreate {
        key: &i.key,
        resource: &i.resource,
        tenant: &i.tenant,
        attributes: i.attributes.as_ref(),
    }
}

pub fn tuple_create(t: &Tuple) -> wire::TupleCreate<'_> {
    wire::TupleCreate {
        subject: &t.subject,
        relation: &t.relation,
        object: &t.object,
        tenant: Some(&t.tenant),
    }
}

pub fn tuple_delete(t: &Tuple) -> wire::TupleDelete<'_> {
    wire::TupleDelete {
        subject: &t.subject,
        relation: &t.relation,
        object: &t.object,
    }
}

/// A role assignment as the assign and unassign calls take it.
pub fn assign<'a>(a: crate::model::AssignmentRef<'a>) -> wire::Assign<'a> {
    wire::Assign {
        user: a.user,
        role: a.role,
        tenant: a.tenant,
        resource_instance: a.resource_instance,
    }
}

/// The keys of a bulk delete (`{"idents": [...]}`).
pub fn idents<'a>(keys: Vec<&'a str>) -> wire::Idents<'a> {
    wire::Idents { idents: keys }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_user_upsert_keeps_the_fields_the_manifest_leaves_out() {
        let live = User {
            key: "jane".into(),
            email: Some("old@example.com".into()),
            first_name: Some("Jane".into()),
            last_name: Some("Doe".into()),
            attributes: Some([("team".to_string(), json!("a"))].into()),
        };
        let want = User {
            key: "jane".into(),
            email: Some("jane@example.com".into()),
            first_name: None,
            last_name: None,
            attributes: None,
        };
        let body = serde_json::to_value(user_upsert(&want, Some(&live))).unwrap();
        assert_eq!(
            body,
            json!({"key": "jane", "email": "jane@example.com", "first_name": "Jane",
                   "last_name": "Doe", "attributes": {"team": "a"}})
        );
        // PATCH bodies carry whole fields, and only the changed ones.
        let t = Tenant {
            key: "acme".into(),
            name: "Acme".into(),
            description: None,
            attributes: Some([("plan".to_string(), json!("pro"))].into()),
        };
        assert_eq!(
            serde_json::to_value(tenant_patch(&t, &[TenantField::Attributes])).unwrap(),
            json!({"attributes": {"plan": "pro"}})
        );
    }
}
