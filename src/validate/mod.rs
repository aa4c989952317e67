//! Semantic validation: references between objects, checked against what the manifests declare.
//!
//! A `RoleAssignment` names a user, a role and a tenant (and optionally a resource instance);
//! a `PermitUser`'s inline `roles` name roles and tenants; a `PermitRole`'s permissions name
//! `resource:action` pairs and its `extends` names roles. A reference to an object the
//! manifests do not declare is an error, unless the referencing object carries the annotation
//! `permitsync.dev/external-references: "true"`: its references may name objects managed
//! outside these manifests (in the Permit UI, by another tool), and a dangling one is a
//! warning. The tenant `default` exists in every environment and always resolves.

pub mod command;

use crate::kinds::{DEFAULT_TENANT, Kind, Object, assignment_key};
use crate::manifest::{Diagnostic, LoadedObject, Severity};
use std::collections::{BTreeMap, BTreeSet};

/// Annotation marking an object whose references may name objects managed elsewhere.
pub const EXTERNAL_REFERENCES: &str = "permitsync.dev/external-references";

/// What the manifests declare, by Permit key.
#[derive(Default)]
struct Declared<'a> {
    users: BTreeSet<String>,
    tenants: BTreeSet<String>,
    roles: BTreeMap<String, &'a LoadedObject>,
    /// Resource key → its action keys.
    resources: BTreeMap<String, BTreeSet<String>>,
}

impl<'a> Declared<'a> {
    fn of(objects: &'a [LoadedObject]) -> Self {
        let mut d = Declared::default();
        d.tenants.insert(DEFAULT_TENANT.to_string());
        for loaded in objects {
            let key = loaded.object.permit_key();
            match &loaded.object {
                Object::User(_) => {
                    d.users.insert(key);
                }
                Object::Tenant(_) => {
                    d.tenants.insert(key);
                }
                Object::Role(_) => {
                    d.roles.insert(key, loaded);
                }
                Object::Resource(r) => {
                    d.resources
                        .insert(key, r.spec.actions.keys().cloned().collect());
                }
                Object::Assignment(_) | Object::Pdp(_) => {}
            }
        }
        d
    }
}

/// Whether `loaded` is marked as referring to objects managed elsewhere.
pub fn has_external_references(loaded: &LoadedObject) -> bool {
    let annotations = loaded.object.meta().annotations.as_ref();
    annotations
        .and_then(|a| a.get(EXTERNAL_REFERENCES))
        .is_some_and(|v| v == "true")
}

/// What references resolve against: the objects declared, by Permit key (the tenant `default`
/// always resolves).
pub trait Lookup {
    fn user(&self, key: &str) -> bool;
    fn tenant(&self, key: &str) -> bool;
    fn role(&self, key: &str) -> bool;
    fn resource(&self, key: &str) -> bool;
    /// Whether the declared resource `resource` has the action `action`.
    fn action(&self, resource: &str, action: &str) -> bool;
}

impl Lookup for Declared<'_> {
    fn user(&self, key: &str) -> bool {
        self.users.contains(key)
    }
    fn tenant(&self, key: &str) -> bool {
        self.tenants.contains(key)
    }
    fn role(&self, key: &str) -> bool {
        self.roles.contains_key(key)
    }
    fn resource(&self, key: &str) -> bool {
        self.resources.contains_key(key)
    }
    fn action(&self, resource: &str, action: &str) -> bool {
        self.resources
            .get(resource)
            .is_some_and(|a| a.contains(action))
    }
}

/// The reference checks of one object (the part of [`check`] that looks at one object at a
/// time), against what `lookup` says is declared.
pub fn check_references(loaded: &LoadedObject, lookup: &impl Lookup, out: &mut Vec<Diagnostic>) {
    let mut refs = References {
        loaded,
        out,
        severity: dangling_severity(loaded),
    };
    match &loaded.object {
        Object::Assignment(a) => {
            let s = &a.spec;
            refs.expect("spec.user", "user", &s.user, lookup.user(&s.user));
            let tenant = s.tenant.as_deref().unwrap_or(DEFAULT_TENANT);
            refs.expect("spec.tenant", "tenant", tenant, lookup.tenant(tenant));
            match s
                .resource_instance
                .as_deref()
                .and_then(|i| i.split_once(':'))
            {
                // Instance roles are resource roles, which these kinds do not declare; only
                // the resource type can be checked.
                Some((resource, _)) => {
                    let found = lookup.resource(resource);
                    refs.expect("spec.resourceInstance", "resource", resource, found);
                }
                None => refs.expect("spec.role", "role", &s.role, lookup.role(&s.role)),
            }
        }
        Object::User(u) => {
            for (i, inline) in u.spec.roles.iter().flatten().enumerate() {
                let role = &inline.role;
                refs.expect(
                    &format!("spec.roles[{i}].role"),
                    "role",
                    role,
                    lookup.role(role),
                );
                let tenant = inline.tenant.as_deref().unwrap_or(DEFAULT_TENANT);
                let found = lookup.tenant(tenant);
                refs.expect(&format!("spec.roles[{i}].tenant"), "tenant", tenant, found);
            }
        }
        Object::Role(r) => {
            for (i, permission) in r.spec.permissions.iter().enumerate() {
                let field = format!("spec.permissions[{i}]");
                let Some((resource, action)) = permission.split_once(':') else {
                    continue;
                };
                if !lookup.resource(resource) {
                    refs.expect(&field, "resource", resource, false);
                } else if !lookup.action(resource, action) {
                    let msg = format!("action {action:?} is not declared on resource {resource:?}");
                    refs.dangling(&field, msg);
                }
            }
            for (i, parent) in r.spec.extends.iter().enumerate() {
                refs.expect(
                    &format!("spec.extends[{i}]"),
                    "role",
                    parent,
                    lookup.role(parent),
                );
            }
        }
        Object::Tenant(_) | Object::Resource(_) | Object::Pdp(_) => {}
    }
}

/// The role hierarchy checks of [`check`] (cycles), which look at the roles only.
pub fn check_roles(objects: &[LoadedObject]) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    check_role_cycles(&Declared::of(objects), &mut out);
    out
}

/// Check the references of `objects` (the objects in force after loading).
pub fn check(objects: &[LoadedObject]) -> Vec<Diagnostic> {
    let declared = Declared::of(objects);
    let mut out = Vec::new();
    for loaded in objects {
        check_references(loaded, &declared, &mut out);
    }
    check_role_cycles(&declared, &mut out);
    check_inline_duplicates(objects, &mut out);
    out
}

/// An inline role that repeats a `RoleAssignment` (or another inline role) declares one Permit
/// role assignment twice; deleting either declaration would then not remove it.
fn check_inline_duplicates(objects: &[LoadedObject], out: &mut Vec<Diagnostic>) {
    let mut seen: BTreeMap<String, String> = BTreeMap::new();
    for loaded in objects {
        if let Object::Assignment(a) = &loaded.object
            && a.spec.resource_instance.is_none()
        {
            let place = format!(
                "{} {} at {}",
                Kind::RoleAssignment,
                loaded.object.name(),
                loaded.origin
            );
            seen.entry(loaded.object.permit_key()).or_insert(place);
        }
    }
    for loaded in objects {
        let Object::User(user) = &loaded.object else {
            continue;
        };
        let user_key = loaded.object.permit_key();
        for (i, inline) in user.spec.roles.iter().flatten().enumerate() {
            let tenant = inline.tenant.as_deref().unwrap_or(DEFAULT_TENANT);
            let key = assignment_key(&user_key, &inline.role, tenant, None);
            let field = format!("spec.roles[{i}]");
            let place = format!(
                "{field} of {} {} at {}",
                Kind::PermitUser,
                loaded.object.name(),
                loaded.origin
            );
            match seen.get(&key) {
                Some(first) => {
                    let message =
                        format!("role assignment {key:?} is declared twice; the first is {first}");
                    out.push(loaded.diagnostic(Severity::Error, &field, message));
                }
                None => {
                    seen.insert(key, place);
                }
            }
        }
    }
}

fn dangling_severity(loaded: &LoadedObject) -> Severity {
    if has_external_references(loaded) {
        Severity::Warning
    } else {
        Severity::Error
    }
}

struct References<'a, 'b> {
    loaded: &'a LoadedObject,
    out: &'b mut Vec<Diagnostic>,
    severity: Severity,
}

impl References<'_, '_> {
    fn expect(&mut self, field: &str, what: &str, key: &str, found: bool) {
        if !found {
            let kind = match what {
                "user" => Kind::PermitUser,
                "tenant" => Kind::PermitTenant,
                "role" => Kind::PermitRole,
                _ => Kind::PermitResource,
            };
            self.dangling(
                field,
                format!("{what} {key:?} is not declared (no {kind} with this key)"),
            );
        }
    }

    fn dangling(&mut self, field: &str, message: String) {
        let message = match self.severity {
            Severity::Warning => format!("{message}; allowed by {EXTERNAL_REFERENCES}"),
            Severity::Error => message,
        };
        self.out
            .push(self.loaded.diagnostic(self.severity, field, message));
    }
}

/// A role may not extend itself, directly or through others (Permit refuses such hierarchies).
fn check_role_cycles(declared: &Declared, out: &mut Vec<Diagnostic>) {
    for (start, loaded) in &declared.roles {
        let Object::Role(role) = &loaded.object else {
            continue;
        };
        for (i, parent) in role.spec.extends.iter().enumerate() {
            if let Some(path) = path_to(declared, parent, start, &mut BTreeSet::new()) {
                let chain = std::iter::once(start.as_str()).chain(path.iter().map(String::as_str));
                let message = format!(
                    "role hierarchy has a cycle: {}",
                    chain.collect::<Vec<_>>().join(" → ")
                );
                out.push(loaded.diagnostic(
                    Severity::Error,
                    &format!("spec.extends[{i}]"),
                    message,
                ));
            }
        }
    }
}

/// The chain of roles from `from` to `to` along `extends`, if there is one.
fn path_to(
    declared: &Declared,
    from: &str,
    to: &str,
    seen: &mut BTreeSet<String>,
) -> Option<Vec<String>> {
    if from == to {
        return Some(vec![to.to_string()]);
    }
    if !seen.insert(from.to_string()) {
        return None;
    }
    let Object::Role(role) = &declared.roles.get(from)?.object else {
        return None;
    };
    role.spec.extends.iter().find_map(|next| {
        path_to(declared, next, to, seen).map(|mut rest| {
            rest.insert(0, from.to_string());
            rest
        })
    })
}
