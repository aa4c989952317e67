//! Semantic validation: references between objects, checked against what the manifests declare.
//!
//! A `RoleAssignment` names a user, a role and a tenant (and optionally a resource instance);
//! a `PermitUser`'s inline `roles` name roles and tenants; a `PermitRole`'s permissions name
//! `resource:action` pairs and its `extends` names roles. A reference to an object the
//! manifests do not declare is an error, unless the referencing object carries the annotation
//! `permitsync.dev/external-references: "true"`: its references may name objects managed
//! outside these manifests (in the Permit UI, by another tool), and a dangling one is a
//! warning. The tenant `default` exists in every environment and always resolves.

use crate::desired::Desired;
use crate::kinds::{DEFAULT_TENANT, Kind, Object, Origin};
use crate::manifest::{Diagnostic, LoadedObject, Severity};
use crate::model::{AssignmentRef, Role};
use std::collections::{BTreeMap, BTreeSet};

/// Annotation marking an object whose references may name objects managed elsewhere.
pub const EXTERNAL_REFERENCES: &str = "permitsync.dev/external-references";

/// What the manifests declare, by Permit key: what references are checked against.
#[derive(Clone, Debug, Default)]
pub struct Declared {
    users: BTreeSet<String>,
    tenants: BTreeSet<String>,
    /// Role key → the roles it extends, in the order written.
    roles: BTreeMap<String, Vec<String>>,
    /// Resource key → its action keys.
    resources: BTreeMap<String, BTreeSet<String>>,
}

impl Declared {
    /// What `objects` declare.
    pub fn of<'a>(objects: impl IntoIterator<Item = &'a LoadedObject>) -> Self {
        let mut d = Declared::default();
        for loaded in objects {
            d.add(&loaded.object);
        }
        d.tenants.insert(DEFAULT_TENANT.to_string());
        d
    }

    /// What a desired model declares; `extends` gives each role's parents in the order written
    /// (the model keeps them sorted), so cycle messages follow the manifest.
    pub fn of_desired(desired: &Desired, extends: &BTreeMap<String, Vec<String>>) -> Self {
        let state = &desired.state;
        let mut d = Declared {
            users: state.users.keys().cloned().collect(),
            tenants: state.tenants.keys().cloned().collect(),
            roles: state
                .roles
                .iter()
                .map(|(key, role)| {
                    let parents = extends
                        .get(key)
                        .cloned()
                        .unwrap_or_else(|| role.extends.iter().cloned().collect());
                    (key.clone(), parents)
                })
                .collect(),
            resources: state
                .resources
                .iter()
                .map(|(key, r)| (key.clone(), r.actions.keys().cloned().collect()))
                .collect(),
        };
        d.tenants.insert(DEFAULT_TENANT.to_string());
        d
    }

    fn add(&mut self, object: &Object) {
        let key = object.permit_key();
        match object {
            Object::User(_) => {
                self.users.insert(key);
            }
            Object::Tenant(_) => {
                self.tenants.insert(key);
            }
            Object::Role(r) => {
                self.roles.insert(key, r.spec.extends.clone());
            }
            Object::Resource(r) => {
                self.resources
                    .insert(key, r.spec.actions.keys().cloned().collect());
            }
            Object::Assignment(_) | Object::Instance(_) | Object::Tuple(_) | Object::Pdp(_) => {}
        }
    }

    /// Whether a role assignment's references all resolve.
    fn resolves(&self, a: &AssignmentRef<'_>) -> bool {
        let target = match a.resource_instance.and_then(|i| i.split_once(':')) {
            Some((resource, _)) => self.resources.contains_key(resource),
            None => self.roles.contains_key(a.role),
        };
        target && self.users.contains(a.user) && self.tenants.contains(a.tenant)
    }

    /// Whether a role's permissions and parents all resolve.
    fn role_resolves(&self, role: &Role) -> bool {
        let permission = |p: &String| match p.split_once(':') {
            Some((resource, action)) => self
                .resources
                .get(resource)
                .is_some_and(|actions| actions.contains(action)),
            None => true,
        };
        role.permissions.iter().all(permission)
            && role.extends.iter().all(|r| self.roles.contains_key(r))
    }

    /// Roles on a cycle of `extends`.
    fn roles_on_cycles(&self) -> Vec<&String> {
        self.roles
            .keys()
            .filter(|start| {
                self.roles[*start]
                    .iter()
                    .any(|parent| path_to(self, parent, start, &mut BTreeSet::new()).is_some())
            })
            .collect()
    }
}

/// The declarations of a desired model whose references do not resolve (dangling, on a role
/// cycle): where to look again with [`check_with`] for the exact field. Cheap enough for
/// hundreds of thousands of objects, so a source need not keep every manifest in memory.
pub fn suspects<'a>(desired: &'a Desired, declared: &Declared) -> BTreeSet<&'a Origin> {
    let mut out = BTreeSet::new();
    for (key, a) in desired.state.assignments.iter() {
        if !declared.resolves(&a)
            && let Some(origin) = desired.origin(Kind::RoleAssignment, key)
        {
            out.insert(origin);
        }
    }
    for (key, role) in &desired.state.roles {
        if !declared.role_resolves(role)
            && let Some(origin) = desired.origin(Kind::PermitRole, key)
        {
            out.insert(origin);
        }
    }
    for key in declared.roles_on_cycles() {
        out.extend(desired.origin(Kind::PermitRole, key));
    }
    out
}

/// Whether `loaded` is marked as referring to objects managed elsewhere.
pub fn has_external_references(loaded: &LoadedObject) -> bool {
    let annotations = loaded.object.meta().annotations.as_ref();
    annotations
        .and_then(|a| a.get(EXTERNAL_REFERENCES))
        .is_some_and(|v| v == "true")
}

/// What references resolve against (the tenant `default` always resolves).
impl Declared {
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
    /// Whether the declared resource `resource` has the action `action`.
    fn action(&self, resource: &str, action: &str) -> bool {
        self.resources
            .get(resource)
            .is_some_and(|a| a.contains(action))
    }
}

/// The reference checks of one object (the part of [`check`] that looks at one object at a
/// time), against what `lookup` says is declared.
pub fn check_references(loaded: &LoadedObject, lookup: &Declared, out: &mut Vec<Diagnostic>) {
    let mut refs = References {
        loaded,
        out,
        severity: dangling_severity(loaded),
    };
    match &loaded.object {
        Object::Assignment(a) => {
            let s = &a.spec;
            refs.expect("spec.user", Kind::PermitUser, &s.user, lookup.user(&s.user));
            let tenant = s.tenant.as_deref().unwrap_or(DEFAULT_TENANT);
            refs.expect(
                "spec.tenant",
                Kind::PermitTenant,
                tenant,
                lookup.tenant(tenant),
            );
            match s
                .resource_instance
                .as_deref()
                .and_then(|i| i.split_once(':'))
            {
                // Instance roles are resource roles, which these kinds do not declare; only
                // the resource type can be checked.
                Some((resource, _)) => {
                    let found = lookup.resource(resource);
                    refs.expect(
                        "spec.resourceInstance",
                        Kind::PermitResource,
                        resource,
                        found,
                    );
                }
                None => refs.expect("spec.role", Kind::PermitRole, &s.role, lookup.role(&s.role)),
            }
        }
        Object::User(u) => {
            for grant in u.spec.inline_grants() {
                let i = grant.index;
                refs.expect(
                    &format!("spec.roles[{i}].role"),
                    Kind::PermitRole,
                    grant.role,
                    lookup.role(grant.role),
                );
                let found = lookup.tenant(grant.tenant);
                refs.expect(
                    &format!("spec.roles[{i}].tenant"),
                    Kind::PermitTenant,
                    grant.tenant,
                    found,
                );
            }
        }
        Object::Instance(_) | Object::Tuple(_) => {}
        Object::Role(r) => {
            for (i, permission) in r.spec.permissions.iter().enumerate() {
                let field = format!("spec.permissions[{i}]");
                let Some((resource, action)) = permission.split_once(':') else {
                    continue;
                };
                if !lookup.resource(resource) {
                    refs.expect(&field, Kind::PermitResource, resource, false);
                } else if !lookup.action(resource, action) {
                    let msg = format!("action {action:?} is not declared on resource {resource:?}");
                    refs.dangling(&field, msg);
                }
            }
            for (i, parent) in r.spec.extends.iter().enumerate() {
                refs.expect(
                    &format!("spec.extends[{i}]"),
                    Kind::PermitRole,
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
    check_role_cycles(objects, &Declared::of(objects), &mut out);
    out
}

/// Check the references of `objects` (the objects in force after loading).
pub fn check(objects: &[LoadedObject]) -> Vec<Diagnostic> {
    check_with(objects, &Declared::of(objects))
}

/// Check the references of `objects` against what `declared` holds (a whole source, of which
/// `objects` may be a part).
pub fn check_with(objects: &[LoadedObject], declared: &Declared) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    for loaded in objects {
        check_references(loaded, declared, &mut out);
    }
    check_role_cycles(objects, declared, &mut out);
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
        for grant in user.spec.inline_grants() {
            let key = grant.key(&user_key);
            let field = format!("spec.roles[{}]", grant.index);
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
    fn expect(&mut self, field: &str, kind: Kind, key: &str, found: bool) {
        if !found {
            let what = match kind {
                Kind::PermitUser => "user",
                Kind::PermitTenant => "tenant",
                Kind::PermitRole => "role",
                Kind::PermitResource => "resource",
                Kind::RoleAssignment => "role assignment",
                Kind::PermitPDP => "PDP",
                Kind::ResourceRelation => "relation",
                Kind::ResourceRole => "resource role",
                Kind::RoleDerivation => "role derivation",
                Kind::PermitResourceInstance => "resource instance",
                Kind::PermitRelationshipTuple => "relationship tuple",
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
fn check_role_cycles(objects: &[LoadedObject], declared: &Declared, out: &mut Vec<Diagnostic>) {
    let mut roles: Vec<(String, &LoadedObject)> = objects
        .iter()
        .filter(|l| matches!(l.object, Object::Role(_)))
        .map(|l| (l.object.permit_key(), l))
        .collect();
    roles.sort_by(|a, b| a.0.cmp(&b.0));
    for (start, loaded) in roles {
        let Object::Role(role) = &loaded.object else {
            continue;
        };
        for (i, parent) in role.spec.extends.iter().enumerate() {
            if let Some(path) = path_to(declared, parent, &start, &mut BTreeSet::new()) {
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
    declared.roles.get(from)?.iter().find_map(|next| {
        path_to(declared, next, to, seen).map(|mut rest| {
            rest.insert(0, from.to_string());
            rest
        })
    })
}
