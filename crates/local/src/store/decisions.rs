//! The store as `permit-decide`'s [`Schema`] (tenant roles, resource roles, derivations) and
//! [`Facts`] (tenant and instance role assignments, tuples), so the local PDP decides as Permit's
//! does (RBAC ∨ ReBAC); and the RBAC helpers `/user-permissions` lists tenant entries with.

use super::*;
use permit_decide::{Derivation, Facts, Instance as On, RoleView, Schema};

impl Schema for Store {
    fn tenant_role(&self, key: &str) -> Option<RoleView<'_>> {
        self.roles.get(key).map(|r| RoleView {
            permissions: &r.permissions,
            extends: &r.extends,
        })
    }

    fn resource_role(&self, resource: &str, key: &str) -> Option<RoleView<'_>> {
        let idx = self
            .resource_roles
            .position_of_key(&(resource.to_string(), key.to_string()))?;
        let r = self.resource_roles.at(idx);
        Some(RoleView {
            permissions: &r.permissions,
            extends: &r.extends,
        })
    }

    /// Scans the resource roles' `granted_to`: derivations are few next to facts.
    fn derived_from(&self, resource: &str, role: &str) -> Vec<Derivation<'_>> {
        let mut out = Vec::new();
        for r in self.resource_roles.rows() {
            for g in &r.granted_to {
                if g.on_resource == resource && g.role == role {
                    out.push(Derivation {
                        resource: &r.resource,
                        role: &r.key,
                        relation: &g.linked_by_relation,
                        // The block's `when` and the rule's own: either blocks.
                        no_direct_roles_on_object: r.no_direct_roles_on_object
                            || g.no_direct_roles_on_object,
                    });
                }
            }
        }
        out
    }
}

impl Facts for Store {
    fn tenant_roles(&self, user: &str, tenant: &str) -> Vec<&str> {
        self.roles_in_tenant(user, tenant)
    }

    fn direct_instance_roles(&self, user: &str, tenant: &str) -> Vec<(On<'_>, &str)> {
        let (Some(user), Some(tenant)) = (self.users.get(user), self.tenants.get(tenant)) else {
            return Vec::new();
        };
        self.ia_by_user
            .get(&user.id)
            .map(IdSet::as_slice)
            .unwrap_or_default()
            .iter()
            .filter_map(|id| self.instance_assignments.get_by_id(*id))
            .filter_map(|a| {
                let i = self.instances.get_by_id(a.instance_id)?;
                let role = self.resource_roles.get_by_id(a.role_id)?;
                (i.tenant_id == tenant.id)
                    .then(|| (On::new(&i.resource, &i.key), role.key.as_str()))
            })
            .collect()
    }

    fn objects(&self, subject: On<'_>, relation: &str, tenant: &str) -> Vec<On<'_>> {
        let Some(tenant) = self.tenants.get(tenant) else {
            return Vec::new();
        };
        let Some(idx) = self
            .instances
            .position_of_key(&(subject.resource.to_string(), subject.key.to_string()))
        else {
            return Vec::new();
        };
        let subject_id = self.instances.at(idx).id;
        self.tuples_of(&self.tuples_by_subject, subject_id)
            .into_iter()
            .filter(|t| t.relation == relation && t.tenant_id == tenant.id)
            .filter_map(|t| self.instances.get_by_id(t.object_id))
            .map(|o| On::new(&o.resource, &o.key))
            .collect()
    }
}

impl Store {
    /// The permissions of a set of tenant roles, following `extends` transitively.
    pub fn effective_permissions<'a>(
        &'a self,
        roles: impl IntoIterator<Item = &'a str>,
    ) -> HashSet<&'a str> {
        permit_decide::expand(roles, |k| self.tenant_role(k))
    }

    /// The role keys a user holds in a tenant (keys or UUIDs accepted for both).
    pub fn roles_in_tenant(&self, user: &str, tenant: &str) -> Vec<&str> {
        let (Some(user), Some(tenant)) = (self.users.get(user), self.tenants.get(tenant)) else {
            return Vec::new();
        };
        self.by_user
            .get(&user.id)
            .map(IdSet::as_slice)
            .unwrap_or_default()
            .iter()
            .filter_map(|aid| self.assignments.get_by_id(*aid))
            .filter(|a| a.tenant_id == tenant.id)
            .filter_map(|a| self.roles.get_by_id(a.role_id))
            .map(|r| r.key.as_str())
            .collect()
    }

    /// A check as Permit's PDP decides it: RBAC (the tenant's roles grant `type:action`; the key
    /// is ignored) or ReBAC (a role on `type:key`, direct or derived).
    pub fn allowed_on(
        &self,
        user: &str,
        action: &str,
        resource_type: &str,
        key: Option<&str>,
        tenant: &str,
    ) -> bool {
        let check = permit_decide::Check {
            user,
            action,
            resource: resource_type,
            key,
            tenant,
        };
        permit_decide::decide(self, self, &check).allow
    }

    /// RBAC on a resource type (no instance).
    pub fn allowed(&self, user: &str, action: &str, resource_type: &str, tenant: &str) -> bool {
        self.allowed_on(user, action, resource_type, None, tenant)
    }
}

/// One instance a user holds roles on, for `/user-permissions`.
#[derive(Debug)]
pub struct InstancePermissions<'a> {
    pub instance: &'a Instance,
    /// Role keys (direct and derived), in the order reached.
    pub roles: Vec<&'a str>,
    /// `type:action`, sorted.
    pub permissions: Vec<String>,
}

impl Store {
    /// Every instance `user` holds a role on, direct or derived, in every tenant where the user
    /// holds an instance role (Permit's `permit/user_permissions.rego`: `__rebac_roles :=
    /// permit_rebac.all_roles(input)`, each entry's permissions the `type:action` grants of its
    /// roles).
    pub fn instance_permissions(&self, user: &str) -> Vec<InstancePermissions<'_>> {
        let Some(u) = self.users.get(user) else {
            return Vec::new();
        };
        let mut tenants: Vec<&str> = Vec::new();
        for (_, _, tenant) in self.user_instance_roles(u.id) {
            if !tenants.contains(&tenant) {
                tenants.push(tenant);
            }
        }
        let mut out: Vec<InstancePermissions> = Vec::new();
        for tenant in tenants {
            let grants = permit_decide::instance_roles(self, self, &u.key, tenant);
            for (on, role) in grants.iter() {
                let Some(idx) = self
                    .instances
                    .position_of_key(&(on.resource.to_string(), on.key.to_string()))
                else {
                    continue;
                };
                let instance = self.instances.at(idx);
                match out.iter_mut().find(|e| std::ptr::eq(e.instance, instance)) {
                    Some(e) if !e.roles.contains(&role) => e.roles.push(role),
                    Some(_) => {}
                    None => out.push(InstancePermissions {
                        instance,
                        roles: vec![role],
                        permissions: Vec::new(),
                    }),
                }
            }
        }
        for e in &mut out {
            let resource = e.instance.resource.as_str();
            let actions = permit_decide::expand(e.roles.iter().copied(), |k| {
                Schema::resource_role(self, resource, k)
            });
            e.permissions = actions.iter().map(|a| format!("{resource}:{a}")).collect();
            e.permissions.sort_unstable();
        }
        out
    }
}
