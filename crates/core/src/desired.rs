//! Declared manifests (`Object`s with their `Origin`s) → the desired model, inline roles expanded.

use crate::kinds::{self, DeletionPolicy, Kind, Object, Origin};
use crate::model::{
    Action, Assignment, AttributeDef, Attrs, Derivation, Instance, Obj, Relation, Resource,
    ResourceRole, Role, State, Tenant, Tuple, User,
};
use std::collections::{BTreeMap, BTreeSet};

/// What the source declares, normalised, with where each object came from.
#[derive(Clone, Debug, Default)]
pub struct Desired {
    pub state: State,
    /// Where each object was first declared. Role assignments declared inline on a user are not
    /// listed (hundreds of thousands of entries at scale): [`Desired::origin`] gives their user's.
    pub origins: BTreeMap<(Kind, String), Origin>,
    /// Objects declared with `deletionPolicy: Orphan`: never deleted when their manifest goes away.
    pub orphans: BTreeSet<(Kind, String)>,
}

/// Two manifests declare the same Permit object.
#[derive(Debug, thiserror::Error)]
#[error("{kind} {key:?} is declared twice: at {first} and at {second}")]
pub struct DuplicateError {
    pub kind: Kind,
    pub key: String,
    pub first: Origin,
    pub second: Origin,
}

impl Desired {
    /// Builds the desired model. `PermitPDP` objects are not Permit API objects and are skipped.
    /// A role assignment declared both inline and as a `RoleAssignment` is the same grant, so that
    /// duplicate is accepted; any other duplicate key is an error naming both places.
    pub fn from_objects<'a>(
        objects: impl IntoIterator<Item = (&'a Origin, &'a Object)>,
    ) -> Result<Desired, Vec<DuplicateError>> {
        let mut builder = Builder::default();
        for (origin, object) in objects {
            builder.add(origin, object);
        }
        builder.finish()
    }

    /// Where the object was declared: its own declaration, or for an inline role assignment the
    /// user that declares it.
    pub fn origin(&self, kind: Kind, key: &str) -> Option<&Origin> {
        let declared = kind != Kind::RoleAssignment || self.state.assignments.contains_key(key);
        declared
            .then(|| origin_of(&self.origins, kind, key))
            .flatten()
    }

    /// Every declared object with where it was declared, kind by kind in key order.
    pub fn declared(&self) -> impl Iterator<Item = (Kind, String, Option<&Origin>)> + '_ {
        crate::model::SYNCED_KINDS
            .into_iter()
            .flat_map(move |kind| {
                self.state.keys(kind).into_iter().map(move |key| {
                    let origin = self.origin(kind, &key);
                    (kind, key, origin)
                })
            })
    }
}

/// Where a declared object of `kind` with `key` was declared, looked up in a model's origins:
/// its own entry, or for an inline role assignment (not listed) its user's.
pub fn origin_of<'a>(
    origins: &'a BTreeMap<(Kind, String), Origin>,
    kind: Kind,
    key: &str,
) -> Option<&'a Origin> {
    if let Some(origin) = origins.get(&(kind, key.to_string())) {
        return Some(origin);
    }
    if kind.is_part() {
        // Declared inside its resource: `resource#...`.
        let resource = key.split_once('#')?.0;
        return origins.get(&(Kind::PermitResource, resource.to_string()));
    }
    if kind != Kind::RoleAssignment {
        return None;
    }
    let user = crate::model::AssignmentRef::parse(key)?.user;
    origins.get(&(Kind::PermitUser, user.to_string()))
}

/// Builds a [`Desired`] one object at a time, so a source can stream its files and keep only
/// the normalised model, never every parsed manifest at once.
#[derive(Debug, Default)]
pub struct Builder {
    desired: Desired,
    errors: Vec<DuplicateError>,
}

/// A role assignment declared again (inline and as a `RoleAssignment`, or twice inline): the
/// model keeps the first; validation reports the repetition.
#[derive(Debug)]
pub struct RepeatedAssignment {
    pub key: String,
    pub first: Option<Origin>,
}

impl Builder {
    /// Where an object of `kind` with `key` was first declared, if it was (not inline roles).
    pub fn declared_at(&self, kind: Kind, key: &str) -> Option<&Origin> {
        self.desired.origins.get(&(kind, key.to_string()))
    }

    /// Adds one declared object; returns the role assignments it repeats.
    pub fn add(&mut self, origin: &Origin, object: &Object) -> Vec<RepeatedAssignment> {
        let d = &mut self.desired;
        let mut repeated = Vec::new();
        let orphan = object.deletion_policy() == Some(DeletionPolicy::Orphan);
        for obj in normalise_all(object) {
            let id = (obj.kind(), obj.key());
            let inline = id.0 != object.kind();
            if id.0 == Kind::RoleAssignment && d.state.assignments.contains_key(&id.1) {
                let first = d.origin(id.0, &id.1).cloned();
                repeated.push(RepeatedAssignment { key: id.1, first });
                continue;
            }
            if let Some(first) = d.origins.get(&id) {
                self.errors.push(DuplicateError {
                    kind: id.0,
                    key: id.1,
                    first: first.clone(),
                    second: origin.clone(),
                });
                continue;
            }
            if orphan && (!inline || id.0.is_part()) {
                d.orphans.insert(id.clone());
            }
            if !inline {
                d.origins.insert(id, origin.clone());
            }
            d.state.insert(obj);
        }
        repeated
    }

    pub fn finish(self) -> Result<Desired, Vec<DuplicateError>> {
        if self.errors.is_empty() {
            Ok(self.desired)
        } else {
            Err(self.errors)
        }
    }
}

/// Empty strings mean "none" on both sides, so `description: ""` and a missing one compare equal.
pub fn non_empty(s: &Option<String>) -> Option<String> {
    s.as_ref().filter(|s| !s.is_empty()).cloned()
}

/// Every model object one manifest declares: itself, and what it holds inline (a user's
/// roles as role assignments; a resource's relations, roles and their derivations).
pub fn normalise_all(object: &Object) -> Vec<Obj> {
    let Some(own) = normalise(object) else {
        return Vec::new();
    };
    let mut objs = vec![own];
    match object {
        Object::User(u) => {
            let key = object.permit_key();
            objs.extend(u.spec.inline_grants().map(|grant| {
                Obj::Assignment(Assignment {
                    user: key.clone(),
                    role: grant.role.into(),
                    tenant: grant.tenant.into(),
                    resource_instance: grant.resource_instance.map(Into::into),
                })
            }));
        }
        Object::Resource(r) => objs.extend(resource_parts(&object.permit_key(), &r.spec)),
        _ => {}
    }
    objs
}

/// A resource's relations, roles and derivations, in that order.
pub fn resource_parts(resource: &str, spec: &kinds::PermitResourceSpec) -> Vec<Obj> {
    let mut out = Vec::new();
    for (key, r) in spec.relations.iter().flatten() {
        out.push(Obj::Relation(Relation {
            resource: resource.into(),
            key: key.clone(),
            subject: r.subject.clone(),
            name: non_empty(&r.name).unwrap_or_else(|| key.clone()),
            description: non_empty(&r.description),
        }));
    }
    for (key, r) in spec.roles.iter().flatten() {
        out.push(Obj::ResourceRole(ResourceRole {
            resource: resource.into(),
            key: key.clone(),
            name: non_empty(&r.name).unwrap_or_else(|| key.clone()),
            description: non_empty(&r.description),
            permissions: r
                .permissions
                .iter()
                .map(|p| bare_action(resource, p).to_string())
                .collect(),
            extends: r.extends.iter().cloned().collect(),
            attributes: r.attributes.as_ref().map(Attrs::new),
            no_direct_roles_on_object: r
                .granted_to_when
                .as_ref()
                .map(|w| w.no_direct_roles_on_object),
        }));
    }
    for (key, r) in spec.roles.iter().flatten() {
        for d in &r.granted_to {
            out.push(Obj::Derivation(Derivation {
                role: kinds::part_key(resource, key),
                source: kinds::part_key(&d.on_resource, &d.role),
                relation: d.linked_by.clone(),
            }));
        }
    }
    out
}

/// A resource role's permission as a bare action key: `read`, or `Post:read` on `Post`.
pub fn bare_action<'a>(resource: &str, permission: &'a str) -> &'a str {
    match permission.split_once(':') {
        Some((r, action)) if r == resource => action,
        _ => permission,
    }
}

/// One manifest object as the model compares it (`None` for `PermitPDP`).
pub fn normalise(object: &Object) -> Option<Obj> {
    let key = object.permit_key();
    let name = |n: &Option<String>| non_empty(n).unwrap_or_else(|| key.clone());
    Some(match object {
        Object::Resource(o) => Obj::Resource(Resource {
            name: name(&o.spec.name),
            description: non_empty(&o.spec.description),
            actions: o
                .spec
                .actions
                .iter()
                .map(|(k, a)| {
                    let action = Action {
                        name: non_empty(&a.name).unwrap_or_else(|| k.clone()),
                        description: non_empty(&a.description),
                        attributes: a.attributes.as_ref().map(Attrs::new),
                    };
                    (k.clone(), action)
                })
                .collect(),
            attributes: o.spec.attributes.as_ref().map(|attrs| {
                attrs
                    .iter()
                    .map(|(k, a)| {
                        let type_ = serde_json::to_value(a.type_)
                            .ok()
                            .and_then(|v| v.as_str().map(str::to_string))
                            .unwrap_or_default();
                        let def = AttributeDef {
                            type_,
                            description: non_empty(&a.description),
                        };
                        (k.clone(), def)
                    })
                    .collect()
            }),
            key: key.clone(),
        }),
        Object::Role(o) => Obj::Role(Role {
            name: name(&o.spec.name),
            description: non_empty(&o.spec.description),
            permissions: o.spec.permissions.iter().cloned().collect(),
            extends: o.spec.extends.iter().cloned().collect(),
            attributes: o.spec.attributes.as_ref().map(Attrs::new),
            key: key.clone(),
        }),
        Object::Tenant(o) => Obj::Tenant(Tenant {
            name: name(&o.spec.name),
            description: non_empty(&o.spec.description),
            attributes: o.spec.attributes.as_ref().map(Attrs::new),
            key: key.clone(),
        }),
        Object::User(o) => Obj::User(User {
            email: non_empty(&o.spec.email),
            first_name: non_empty(&o.spec.first_name),
            last_name: non_empty(&o.spec.last_name),
            attributes: o.spec.attributes.as_ref().map(Attrs::new),
            key: key.clone(),
        }),
        Object::Assignment(o) => Obj::Assignment(Assignment {
            user: o.spec.user.clone(),
            role: o.spec.role.clone(),
            tenant: o
                .spec
                .tenant
                .clone()
                .unwrap_or_else(|| kinds::DEFAULT_TENANT.into()),
            resource_instance: o.spec.resource_instance.clone(),
        }),
        Object::Instance(o) => Obj::Instance(Instance {
            resource: o.spec.resource.clone(),
            key: o
                .spec
                .key
                .clone()
                .unwrap_or_else(|| object.name().to_string()),
            tenant: o
                .spec
                .tenant
                .clone()
                .unwrap_or_else(|| kinds::DEFAULT_TENANT.into()),
            attributes: o.spec.attributes.as_ref().map(Attrs::new),
        }),
        Object::Tuple(o) => Obj::Tuple(Tuple {
            subject: o.spec.subject.clone(),
            relation: o.spec.relation.clone(),
            object: o.spec.object.clone(),
            tenant: o
                .spec
                .tenant
                .clone()
                .unwrap_or_else(|| kinds::DEFAULT_TENANT.into()),
        }),
        Object::Pdp(_) => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kinds::{
        InlineRole, PermitUser, PermitUserSpec, RoleAssignment, RoleAssignmentSpec,
    };

    fn at(line: usize) -> Origin {
        Origin::File {
            path: std::sync::Arc::from(std::path::Path::new("users.yaml")),
            line,
            column: 1,
        }
    }

    fn bob() -> Object {
        Object::User(PermitUser::new(
            "bob",
            PermitUserSpec {
                email: Some("bob@example.com".into()),
                roles: Some(vec![InlineRole {
                    role: "editor".into(),
                    tenant: Some("acme".into()),
                    resource_instance: None,
                }]),
                ..Default::default()
            },
        ))
    }

    #[test]
    fn inline_roles_become_assignments_and_duplicates_are_reported() {
        let explicit = Object::Assignment(RoleAssignment::new(
            "bob-editor",
            RoleAssignmentSpec {
                user: "bob".into(),
                role: "editor".into(),
                tenant: Some("acme".into()),
                ..Default::default()
            },
        ));
        let objects = [(at(1), bob()), (at(9), explicit)];
        let d = Desired::from_objects(objects.iter().map(|(o, x)| (o, x))).unwrap();
        assert_eq!(
            d.state.users["bob"].email.as_deref(),
            Some("bob@example.com")
        );
        assert_eq!(
            d.state.assignments.keys().collect::<Vec<_>>(),
            ["bob/editor/acme"]
        );
        assert_eq!(
            d.origin(Kind::RoleAssignment, "bob/editor/acme"),
            Some(&at(1))
        );

        let twice = [(at(1), bob()), (at(20), bob())];
        let errs = Desired::from_objects(twice.iter().map(|(o, x)| (o, x))).unwrap_err();
        assert_eq!(errs.len(), 1);
        assert!(errs[0].to_string().contains("users.yaml:1:1"));
        assert!(errs[0].to_string().contains("users.yaml:20:1"));
    }
}
