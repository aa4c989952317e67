//! Semantic validation: references between objects, checked against what the manifests declare.
//!
//! A `RoleAssignment` names a user, a role and a tenant (and optionally a resource instance);
//! a `PermitUser`'s inline `roles` name roles and tenants; a `PermitRole`'s permissions name
//! `resource:action` pairs and its `extends` names roles. ReBAC: a `PermitResource`'s relations
//! name subject resources, its roles name its own actions (`permissions`) and roles
//! (`extends`), and its derivations (`grantedTo`) a role of another resource and a relation of
//! its own whose subject is that resource; a `PermitResourceInstance` names its resource; a
//! `PermitRelationshipTuple` names two instances and a relation of the object's resource whose
//! subject is the subject's resource; an instance role (`resourceInstance`) is a role of the
//! instance's resource, on a declared instance. A reference to an object the
//! manifests do not declare is an error, unless the referencing object carries the annotation
//! `permitsync.dev/external-references: "true"`: its references may name objects managed
//! outside these manifests (in the Permit UI, by another tool), and a dangling one is a
//! warning. The tenant `default` exists in every environment and always resolves.

use crate::desired::Desired;
use crate::kinds::{DEFAULT_TENANT, Kind, Object, Origin};
use crate::manifest::{Diagnostic, LoadedObject, Severity};
use crate::model::{AssignmentRef, Derivation, ResourceRole, Role, Tuple};
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
    /// Resource key → its actions, roles and relations.
    resources: BTreeMap<String, ResourceFacts>,
    /// Resource instances, as `resource:key`.
    instances: BTreeSet<String>,
}

/// What a declared resource holds that references name: its action keys, its role keys and its
/// relations (key → subject resource).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct ResourceFacts {
    pub actions: BTreeSet<String>,
    pub roles: BTreeSet<String>,
    pub relations: BTreeMap<String, String>,
}

impl ResourceFacts {
    /// What the resource `spec` declares.
    pub fn of(spec: &crate::kinds::PermitResourceSpec) -> ResourceFacts {
        ResourceFacts {
            actions: spec.actions.keys().cloned().collect(),
            roles: spec
                .roles
                .iter()
                .flatten()
                .map(|(k, _)| k.clone())
                .collect(),
            relations: spec
                .relations
                .iter()
                .flatten()
                .map(|(k, r)| (k.clone(), r.subject.clone()))
                .collect(),
        }
    }
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
                .map(|(key, r)| {
                    let facts = ResourceFacts {
                        actions: r.actions.keys().cloned().collect(),
                        ..ResourceFacts::default()
                    };
                    (key.clone(), facts)
                })
                .collect(),
            instances: state.instances.keys().cloned().collect(),
        };
        for role in state.resource_roles.values() {
            if let Some(r) = d.resources.get_mut(&role.resource) {
                r.roles.insert(role.key.clone());
            }
        }
        for relation in state.relations.values() {
            if let Some(r) = d.resources.get_mut(&relation.resource) {
                r.relations
                    .insert(relation.key.clone(), relation.subject.clone());
            }
        }
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
                self.resources.insert(key, ResourceFacts::of(&r.spec));
            }
            Object::Instance(_) => {
                self.instances.insert(key);
            }
            Object::Assignment(_) | Object::Tuple(_) | Object::Pdp(_) => {}
        }
    }

    /// Whether a role assignment's references all resolve.
    fn resolves(&self, a: &AssignmentRef<'_>) -> bool {
        let target = match a.resource_instance {
            Some(instance) => self.instance_role(instance, a.role),
            None => self.roles.contains_key(a.role),
        };
        target && self.users.contains(a.user) && self.tenants.contains(a.tenant)
    }

    /// Whether `instance` (`type:key`) is declared and `role` is a role of its resource.
    fn instance_role(&self, instance: &str, role: &str) -> bool {
        let resource = instance.split_once(':').map_or("", |(r, _)| r);
        self.resource_role(resource, role) && self.instances.contains(instance)
    }

    /// Whether a resource role's permissions and parents are its resource's.
    fn resource_role_resolves(&self, role: &ResourceRole) -> bool {
        let Some(facts) = self.resources.get(&role.resource) else {
            return false;
        };
        role.permissions.iter().all(|p| facts.actions.contains(p))
            && role.extends.iter().all(|r| facts.roles.contains(r))
    }

    /// Whether a derivation's source role exists and its relation links the source's resource.
    fn derivation_resolves(&self, d: &Derivation) -> bool {
        let (resource, _) = Derivation::split(&d.role);
        let (on, role) = Derivation::split(&d.source);
        self.resource_role(on, role) && self.relation_subject(resource, &d.relation) == Some(on)
    }

    /// Whether a tuple's instances are declared and its relation joins their resources.
    fn tuple_resolves(&self, t: &Tuple) -> bool {
        let subject = t.subject.split_once(':').map_or("", |(r, _)| r);
        let object = t.object.split_once(':').map_or("", |(r, _)| r);
        self.relation_subject(object, &t.relation) == Some(subject)
            && self.instances.contains(&t.subject)
            && self.instances.contains(&t.object)
    }

    /// Whether a role's permissions and parents all resolve.
    fn role_resolves(&self, role: &Role) -> bool {
        let permission = |p: &String| match p.split_once(':') {
            Some((resource, action)) => self
                .resources
                .get(resource)
                .is_some_and(|r| r.actions.contains(action)),
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
    let state = &desired.state;
    let mut suspect = |kind: Kind, key: &str, resolves: bool| {
        if !resolves && let Some(origin) = desired.origin(kind, key) {
            out.insert(origin);
        }
    };
    for (key, r) in &state.relations {
        suspect(Kind::ResourceRelation, key, declared.resource(&r.subject));
    }
    for (key, r) in &state.resource_roles {
        suspect(Kind::ResourceRole, key, declared.resource_role_resolves(r));
    }
    for (key, d) in &state.derivations {
        suspect(Kind::RoleDerivation, key, declared.derivation_resolves(d));
    }
    for (key, i) in &state.instances {
        suspect(
            Kind::PermitResourceInstance,
            key,
            declared.resource(&i.resource),
        );
    }
    for (key, t) in &state.tuples {
        suspect(
            Kind::PermitRelationshipTuple,
            key,
            declared.tuple_resolves(t),
        );
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
            .is_some_and(|r| r.actions.contains(action))
    }
    /// Whether the declared resource `resource` has the role `role`.
    fn resource_role(&self, resource: &str, role: &str) -> bool {
        self.resources
            .get(resource)
            .is_some_and(|r| r.roles.contains(role))
    }
    /// The subject resource of the relation `relation` of the declared resource `resource`.
    fn relation_subject(&self, resource: &str, relation: &str) -> Option<&str> {
        let r = self.resources.get(resource)?;
        r.relations.get(relation).map(String::as_str)
    }
    fn instance(&self, reference: &str) -> bool {
        self.instances.contains(reference)
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
            match s.resource_instance.as_deref() {
                Some(instance) => refs.instance_role(
                    lookup,
                    ("spec.role", &s.role),
                    ("spec.resourceInstance", instance),
                ),
                None => refs.expect("spec.role", Kind::PermitRole, &s.role, lookup.role(&s.role)),
            }
        }
        Object::User(u) => {
            for grant in u.spec.inline_grants() {
                let i = grant.index;
                let role = format!("spec.roles[{i}].role");
                match grant.resource_instance {
                    Some(instance) => refs.instance_role(
                        lookup,
                        (&role, grant.role),
                        (&format!("spec.roles[{i}].resourceInstance"), instance),
                    ),
                    None => {
                        refs.expect(&role, Kind::PermitRole, grant.role, lookup.role(grant.role))
                    }
                }
                let found = lookup.tenant(grant.tenant);
                refs.expect(
                    &format!("spec.roles[{i}].tenant"),
                    Kind::PermitTenant,
                    grant.tenant,
                    found,
                );
            }
        }
        Object::Instance(i) => {
            let resource = &i.spec.resource;
            let found = lookup.resource(resource);
            refs.expect("spec.resource", Kind::PermitResource, resource, found);
        }
        Object::Tuple(t) => refs.tuple(lookup, &t.spec),
        Object::Resource(r) => refs.resource(lookup, &loaded.object.permit_key(), &r.spec),
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
        Object::Tenant(_) | Object::Pdp(_) => {}
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

    /// An instance role: `role` must be a role of the instance's resource, the instance declared.
    fn instance_role(&mut self, lookup: &Declared, role: (&str, &str), instance: (&str, &str)) {
        let ((role_field, role), (field, instance)) = (role, instance);
        let Some((resource, _)) = instance.split_once(':') else {
            return; // the schema refuses it
        };
        if !lookup.resource(resource) {
            return self.expect(field, Kind::PermitResource, resource, false);
        }
        if !lookup.resource_role(resource, role) {
            let msg = format!("role {role:?} is not a role of resource {resource:?}");
            self.dangling(role_field, msg);
        }
        self.expect(
            field,
            Kind::PermitResourceInstance,
            instance,
            lookup.instance(instance),
        );
    }

    /// A tuple: both instances declared, its relation a relation of the object's resource whose
    /// subject is the subject's resource.
    fn tuple(&mut self, lookup: &Declared, t: &crate::kinds::PermitRelationshipTupleSpec) {
        let (Some((subject, _)), Some((object, _))) =
            (t.subject.split_once(':'), t.object.split_once(':'))
        else {
            return; // the schema refuses them
        };
        let (has_subject, has_object) = (lookup.resource(subject), lookup.resource(object));
        if !has_subject {
            self.expect("spec.subject", Kind::PermitResource, subject, false);
        }
        if !has_object {
            self.expect("spec.object", Kind::PermitResource, object, false);
        } else {
            match lookup.relation_subject(object, &t.relation) {
                None => {
                    let msg = format!(
                        "relation {:?} is not declared on resource {object:?}",
                        t.relation
                    );
                    self.dangling("spec.relation", msg);
                }
                Some(wanted) if wanted != subject => {
                    let msg = format!(
                        "relation {:?} of resource {object:?} takes a subject of resource {wanted:?}, not {subject:?}",
                        t.relation
                    );
                    self.dangling("spec.subject", msg);
                }
                Some(_) => {}
            }
        }
        if has_subject {
            let found = lookup.instance(&t.subject);
            self.expect(
                "spec.subject",
                Kind::PermitResourceInstance,
                &t.subject,
                found,
            );
        }
        if has_object {
            let found = lookup.instance(&t.object);
            self.expect(
                "spec.object",
                Kind::PermitResourceInstance,
                &t.object,
                found,
            );
        }
    }

    /// A resource's relations (subjects declared) and roles (its own actions and roles; each
    /// derivation a role of a declared resource, through a relation of this resource to it).
    fn resource(&mut self, lookup: &Declared, key: &str, spec: &crate::kinds::PermitResourceSpec) {
        let own = ResourceFacts::of(spec);
        for (relation, r) in spec.relations.iter().flatten() {
            let found = lookup.resource(&r.subject);
            let field = format!("spec.relations.{relation}.subject");
            self.expect(&field, Kind::PermitResource, &r.subject, found);
        }
        for (role, r) in spec.roles.iter().flatten() {
            let at = format!("spec.roles.{role}");
            for (i, p) in r.permissions.iter().enumerate() {
                let action = crate::desired::bare_action(key, p);
                if !own.actions.contains(action) {
                    let msg = format!("action {action:?} is not declared on resource {key:?}");
                    self.dangling(&format!("{at}.permissions[{i}]"), msg);
                }
            }
            for (i, parent) in r.extends.iter().enumerate() {
                if !own.roles.contains(parent) {
                    let msg = format!("role {parent:?} is not a role of resource {key:?}");
                    self.dangling(&format!("{at}.extends[{i}]"), msg);
                }
            }
            for (i, d) in r.granted_to.iter().enumerate() {
                let at = format!("{at}.grantedTo[{i}]");
                let on = &d.on_resource;
                if !lookup.resource(on) {
                    self.expect(&format!("{at}.onResource"), Kind::PermitResource, on, false);
                } else if !lookup.resource_role(on, &d.role) {
                    let msg = format!("role {:?} is not a role of resource {on:?}", d.role);
                    self.dangling(&format!("{at}.role"), msg);
                }
                match own.relations.get(&d.linked_by) {
                    None => {
                        let msg = format!(
                            "relation {:?} is not declared on resource {key:?}",
                            d.linked_by
                        );
                        self.dangling(&format!("{at}.linkedBy"), msg);
                    }
                    Some(subject) if subject != on => {
                        let msg = format!(
                            "relation {:?} of resource {key:?} links a {subject:?}, not a {on:?} (onResource)",
                            d.linked_by
                        );
                        self.dangling(&format!("{at}.linkedBy"), msg);
                    }
                    Some(_) => {}
                }
            }
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    const HEAD: &str = "apiVersion: permitsync.dev/v1alpha1\n";

    fn object(kind: &str, name: &str, spec: &str) -> String {
        format!("{HEAD}kind: {kind}\nmetadata:\n  name: {name}\nspec:\n{spec}---\n")
    }

    /// Each ReBAC reference broken once, by one object each, beside objects that resolve.
    fn objects() -> Vec<LoadedObject> {
        let text = [
            object(
                "PermitResource",
                "post",
                "  key: Post\n  actions: {read: {}}\n  roles:\n    Author: {permissions: [read]}\n    Bad: {permissions: [write]}\n",
            ),
            object(
                "PermitResource",
                "comment",
                "  key: Comment\n  actions: {read: {}}\n  relations:\n    parent: {subject: Post}\n  roles:\n    Moderator:\n      grantedTo:\n        - {role: Author, onResource: Post, linkedBy: parent}\n",
            ),
            object(
                "PermitResource",
                "page",
                "  key: Page\n  actions: {read: {}}\n  relations:\n    parent: {subject: Post}\n  roles:\n    Editor:\n      extends: [Nobody]\n",
            ),
            object(
                "PermitResource",
                "space",
                "  key: Space\n  actions: {read: {}}\n  relations:\n    parent: {subject: Ghost}\n",
            ),
            object(
                "PermitResource",
                "blog",
                "  key: Blog\n  actions: {read: {}}\n  relations:\n    parent: {subject: Page}\n  roles:\n    Owner:\n      grantedTo:\n        - {role: Author, onResource: Post, linkedBy: parent}\n",
            ),
            object("PermitResourceInstance", "post-1", "  resource: Post\n"),
            object("PermitResourceInstance", "comment-1", "  resource: Comment\n"),
            object("PermitResourceInstance", "ghost-1", "  resource: Ghost\n"),
            object(
                "PermitRelationshipTuple",
                "good",
                "  subject: \"Post:post-1\"\n  relation: parent\n  object: \"Comment:comment-1\"\n",
            ),
            object(
                "PermitRelationshipTuple",
                "bad",
                "  subject: \"Comment:comment-1\"\n  relation: parent\n  object: \"Comment:comment-1\"\n",
            ),
            object("PermitUser", "john", "  roles:\n    - {role: Author, resourceInstance: \"Post:post-1\"}\n"),
            object("PermitUser", "emma", "  roles:\n    - {role: Moderator, resourceInstance: \"Post:post-1\"}\n"),
            object(
                "RoleAssignment",
                "a",
                "  user: john\n  role: Moderator\n  resourceInstance: \"Comment:comment-2\"\n",
            ),
        ]
        .concat();
        let load = crate::manifest::load_text(Path::new("m.yaml"), &text);
        assert!(load.diagnostics.is_empty(), "{:?}", load.diagnostics);
        load.objects
    }

    #[test]
    fn the_model_suspects_exactly_the_objects_with_dangling_rebac_references() {
        let objects = objects();
        let desired =
            Desired::from_objects(objects.iter().map(|l| (&l.origin, &l.object))).unwrap();
        let from_model = Declared::of_desired(&desired, &BTreeMap::new());
        let from_objects = Declared::of(&objects);
        let names = |origins: BTreeSet<&Origin>| -> Vec<String> {
            objects
                .iter()
                .filter(|l| origins.contains(&l.origin))
                .map(|l| l.object.name().to_string())
                .collect()
        };
        let with_diagnostics = |declared: &Declared| -> Vec<String> {
            objects
                .iter()
                .filter(|l| {
                    let mut out = Vec::new();
                    check_references(l, declared, &mut out);
                    !out.is_empty()
                })
                .map(|l| l.object.name().to_string())
                .collect()
        };
        let want = [
            "post", "page", "space", "blog", "ghost-1", "bad", "emma", "a",
        ];
        assert_eq!(with_diagnostics(&from_objects), want);
        assert_eq!(with_diagnostics(&from_model), want);
        assert_eq!(names(suspects(&desired, &from_model)), want);
    }
}
