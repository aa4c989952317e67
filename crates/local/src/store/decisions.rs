//! RBAC decisions: a user's roles in a tenant, expanded through `extends`.

use super::*;

impl Store {
    /// The permissions of a set of roles, following `extends` transitively.
    pub fn effective_permissions<'a>(
        &'a self,
        roles: impl IntoIterator<Item = &'a str>,
    ) -> HashSet<&'a str> {
        let mut perms = HashSet::new();
        let mut seen = HashSet::new();
        let mut stack: Vec<&str> = roles.into_iter().collect();
        while let Some(k) = stack.pop() {
            if !seen.insert(k) {
                continue;
            }
            if let Some(role) = self.roles.get(k) {
                perms.extend(role.permissions.iter().map(String::as_str));
                stack.extend(role.extends.iter().map(String::as_str));
            }
        }
        perms
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

    /// RBAC: allowed when a role the user holds in the tenant (or a role it extends) grants
    /// `resource_type:action`.
    pub fn allowed(&self, user: &str, action: &str, resource_type: &str, tenant: &str) -> bool {
        let wanted = format!("{resource_type}:{action}");
        self.effective_permissions(self.roles_in_tenant(user, tenant))
            .contains(wanted.as_str())
    }
}
