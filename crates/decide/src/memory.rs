//! Policy and data held in memory, for deciding without a store: the tests, and decisions over
//! a declared model.

use super::{Derivation, Facts, Instance, InstanceError, RoleView, Schema};
use std::collections::HashMap;

#[derive(Debug, Default, Clone)]
struct Role {
    permissions: Vec<String>,
    extends: Vec<String>,
}

impl Role {
    fn new(permissions: &[&str], extends: &[&str]) -> Role {
        let owned = |v: &[&str]| v.iter().map(|s| s.to_string()).collect();
        Role {
            permissions: owned(permissions),
            extends: owned(extends),
        }
    }

    fn view(&self) -> RoleView<'_> {
        RoleView {
            permissions: &self.permissions,
            extends: &self.extends,
        }
    }
}

#[derive(Debug, Clone)]
struct Rule {
    resource: String,
    role: String,
    relation: String,
    no_direct_roles_on_object: bool,
}

/// An owned `type:key`.
type Key = (String, String);

fn key(text: &str) -> Result<Key, InstanceError> {
    let i = Instance::parse(text)?;
    Ok((i.resource.to_string(), i.key.to_string()))
}

fn borrowed(k: &Key) -> Instance<'_> {
    Instance::new(&k.0, &k.1)
}

/// Roles, derivations, assignments and tuples.
#[derive(Debug, Default, Clone)]
pub struct World {
    tenant_roles: HashMap<String, Role>,
    resource_roles: HashMap<String, HashMap<String, Role>>,
    /// By the source: resource, then role.
    derivations: HashMap<String, HashMap<String, Vec<Rule>>>,
    /// By user, then tenant: tenant roles.
    assigned: HashMap<String, HashMap<String, Vec<String>>>,
    /// By user, then tenant: instance roles.
    assigned_on: HashMap<String, HashMap<String, Vec<(Key, String)>>>,
    /// By tenant, then subject, then relation: objects.
    tuples: HashMap<String, HashMap<Key, HashMap<String, Vec<Key>>>>,
}

impl World {
    pub fn new() -> World {
        World::default()
    }

    /// A tenant role; `permissions` are `resource:action`.
    pub fn add_tenant_role(
        &mut self,
        key: &str,
        permissions: &[&str],
        extends: &[&str],
    ) -> &mut Self {
        self.tenant_roles
            .insert(key.into(), Role::new(permissions, extends));
        self
    }

    /// A role of `resource`; `permissions` are its action keys.
    pub fn add_resource_role(
        &mut self,
        resource: &str,
        key: &str,
        permissions: &[&str],
        extends: &[&str],
    ) -> &mut Self {
        let roles = self.resource_roles.entry(resource.into()).or_default();
        roles.insert(key.into(), Role::new(permissions, extends));
        self
    }

    /// `role` on `resource` is granted to users with `from_role` on `from_resource` linked by
    /// `relation` (Permit: `granted_to.users_with_role` on `resource#role`).
    pub fn add_derivation(
        &mut self,
        resource: &str,
        role: &str,
        from_resource: &str,
        from_role: &str,
        relation: &str,
        no_direct_roles_on_object: bool,
    ) -> &mut Self {
        let rules = self.derivations.entry(from_resource.into()).or_default();
        rules.entry(from_role.into()).or_default().push(Rule {
            resource: resource.into(),
            role: role.into(),
            relation: relation.into(),
            no_direct_roles_on_object,
        });
        self
    }

    /// A tenant role assignment.
    pub fn assign(&mut self, user: &str, role: &str, tenant: &str) -> &mut Self {
        let tenants = self.assigned.entry(user.into()).or_default();
        tenants.entry(tenant.into()).or_default().push(role.into());
        self
    }

    /// An instance role assignment on `type:key`.
    pub fn assign_on(
        &mut self,
        user: &str,
        role: &str,
        instance: &str,
        tenant: &str,
    ) -> Result<&mut Self, InstanceError> {
        let on = key(instance)?;
        let tenants = self.assigned_on.entry(user.into()).or_default();
        tenants
            .entry(tenant.into())
            .or_default()
            .push((on, role.into()));
        Ok(self)
    }

    /// A relationship tuple `(subject, relation, object)`, both `type:key`.
    pub fn tuple(
        &mut self,
        subject: &str,
        relation: &str,
        object: &str,
        tenant: &str,
    ) -> Result<&mut Self, InstanceError> {
        let (subject, object) = (key(subject)?, key(object)?);
        let subjects = self.tuples.entry(tenant.into()).or_default();
        let relations = subjects.entry(subject).or_default();
        relations.entry(relation.into()).or_default().push(object);
        Ok(self)
    }
}

impl Schema for World {
    fn tenant_role(&self, key: &str) -> Option<RoleView<'_>> {
        self.tenant_roles.get(key).map(Role::view)
    }

    fn resource_role(&self, resource: &str, key: &str) -> Option<RoleView<'_>> {
        self.resource_roles.get(resource)?.get(key).map(Role::view)
    }

    fn derived_from(&self, resource: &str, role: &str) -> Vec<Derivation<'_>> {
        let rules = self.derivations.get(resource).and_then(|r| r.get(role));
        rules
            .into_iter()
            .flatten()
            .map(|r| Derivation {
                resource: &r.resource,
                role: &r.role,
                relation: &r.relation,
                no_direct_roles_on_object: r.no_direct_roles_on_object,
            })
            .collect()
    }
}

impl Facts for World {
    fn tenant_roles(&self, user: &str, tenant: &str) -> Vec<&str> {
        let roles = self.assigned.get(user).and_then(|t| t.get(tenant));
        roles.into_iter().flatten().map(String::as_str).collect()
    }

    fn direct_instance_roles(&self, user: &str, tenant: &str) -> Vec<(Instance<'_>, &str)> {
        let roles = self.assigned_on.get(user).and_then(|t| t.get(tenant));
        roles
            .into_iter()
            .flatten()
            .map(|(on, role)| (borrowed(on), role.as_str()))
            .collect()
    }

    fn objects(&self, subject: Instance<'_>, relation: &str, tenant: &str) -> Vec<Instance<'_>> {
        let subject = (subject.resource.to_string(), subject.key.to_string());
        let objects = self
            .tuples
            .get(tenant)
            .and_then(|s| s.get(&subject))
            .and_then(|r| r.get(relation));
        objects.into_iter().flatten().map(borrowed).collect()
    }
}
