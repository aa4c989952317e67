//! ReBAC read models: `ResourceRoleRead` (with `granted_to`), `RelationRead`,
//! `DerivedRoleRuleRead`, `ResourceInstanceRead` and `RelationshipTupleRead`, with the fields
//! permit 3.0.0's models require.

use super::{id, opt, stamp, text};
use crate::store::{DerivationRule, Instance, Relation, ResourceRole, Store, Tuple};
use permit_api::response::{self as wire, Str};
use serde_json::{Value, json};
use std::borrow::Cow;

fn when(no_direct_roles_on_object: bool) -> Option<Value> {
    Some(json!({ "no_direct_roles_on_object": no_direct_roles_on_object }))
}

pub fn derivation<'a>(
    store: &'a Store,
    on: &ResourceRole,
    g: &'a DerivationRule,
) -> wire::DerivationRead<'a> {
    let source = store
        .find_resource_role(&g.on_resource, &g.role)
        .map(|i| store.resource_roles.at(i));
    let relation = store.relation(&on.resource, &g.linked_by_relation).ok();
    wire::DerivationRead {
        linked_by_relation: text(&g.linked_by_relation),
        on_resource: text(&g.on_resource),
        relation_id: relation.and_then(|r| id(r.id)),
        resource_id: store.resources.get(&g.on_resource).and_then(|r| id(r.id)),
        role: text(&g.role),
        role_id: source.and_then(|r| id(r.id)),
        when: when(g.no_direct_roles_on_object),
    }
}

pub fn resource_role<'a>(store: &'a Store, r: &'a ResourceRole) -> wire::ResourceRoleRead<'a> {
    let s = &store.scope;
    let strs = |v: &'a Vec<String>| v.iter().map(|s| Str::from(s.as_str())).collect();
    wire::ResourceRoleRead {
        attributes: r.attributes.as_ref().map(Cow::Borrowed),
        created_at: stamp(&r.created_at),
        description: opt(&r.description),
        environment_id: id(s.environment_id),
        extends: strs(&r.extends),
        granted_to: Some(wire::GrantedTo {
            id: id(r.granted_to_id),
            users_with_role: r
                .granted_to
                .iter()
                .map(|g| derivation(store, r, g))
                .collect(),
            when: when(r.no_direct_roles_on_object),
        }),
        id: id(r.id),
        key: text(&r.key),
        name: text(&r.name),
        organization_id: id(s.organization_id),
        permissions: strs(&r.permissions),
        project_id: id(s.project_id),
        resource: text(&r.resource),
        resource_id: store.resources.get(&r.resource).and_then(|x| id(x.id)),
        updated_at: stamp(&r.updated_at),
    }
}

pub fn relation<'a>(store: &'a Store, r: &'a Relation) -> wire::RelationRead<'a> {
    let s = &store.scope;
    let rid = |k: &str| store.resources.get(k).and_then(|x| id(x.id));
    wire::RelationRead {
        created_at: stamp(&r.created_at),
        description: opt(&r.description),
        environment_id: id(s.environment_id),
        id: id(r.id),
        key: text(&r.key),
        name: text(&r.name),
        object_resource: text(&r.object_resource),
        object_resource_id: rid(&r.object_resource),
        organization_id: id(s.organization_id),
        project_id: id(s.project_id),
        subject_resource: text(&r.subject_resource),
        subject_resource_id: rid(&r.subject_resource),
        updated_at: stamp(&r.updated_at),
    }
}

pub fn relation_brief<'a>(store: &'a Store, r: &'a Relation) -> wire::RelationBrief<'a> {
    wire::RelationBrief {
        description: opt(&r.description),
        relation_name: text(&r.name),
        resource: text(&r.subject_resource),
        resource_id: store
            .resources
            .get(&r.subject_resource)
            .and_then(|x| id(x.id)),
    }
}

pub fn instance<'a>(store: &'a Store, i: &'a Instance) -> wire::InstanceRead<'a> {
    let s = &store.scope;
    let tenant = store.tenants.get_by_id(i.tenant_id);
    wire::InstanceRead {
        attributes: i.attributes.as_ref().map(Cow::Borrowed),
        created_at: stamp(&i.created_at),
        environment_id: id(s.environment_id),
        id: id(i.id),
        key: text(&i.key),
        organization_id: id(s.organization_id),
        project_id: id(s.project_id),
        resource: text(&i.resource),
        resource_id: store.resources.get(&i.resource).and_then(|x| id(x.id)),
        tenant: tenant.map(|t| Str::from(t.key.as_str())),
        tenant_id: id(i.tenant_id),
        updated_at: stamp(&i.updated_at),
    }
}

pub fn tuple<'a>(store: &'a Store, t: &'a Tuple) -> wire::TupleRead<'a> {
    let s = &store.scope;
    let name = |iid| {
        store
            .instances
            .get_by_id(iid)
            .map(|i| Str::from(Store::instance_name(i)))
    };
    let object = store.instances.get_by_id(t.object_id);
    let relation = object.and_then(|o| store.relation(&o.resource, &t.relation).ok());
    wire::TupleRead {
        created_at: stamp(&t.created_at),
        environment_id: id(s.environment_id),
        id: id(t.id),
        object: name(t.object_id),
        object_id: id(t.object_id),
        organization_id: id(s.organization_id),
        project_id: id(s.project_id),
        relation: text(&t.relation),
        relation_id: relation.and_then(|r| id(r.id)),
        subject: name(t.subject_id),
        subject_id: id(t.subject_id),
        tenant: store
            .tenants
            .get_by_id(t.tenant_id)
            .map(|x| Str::from(x.key.as_str())),
        tenant_id: id(t.tenant_id),
        // Tuples are never updated.
        updated_at: stamp(&t.created_at),
    }
}
