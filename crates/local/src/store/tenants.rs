//! Tenants: create, PATCH, delete (with their assignments), bulk, listing, members.

use super::*;

impl Store {
    pub fn create_tenant(&mut self, input: TenantInput) -> ApiResult<&Tenant> {
        if self.tenants.find(&input.key).is_some() {
            return Err(ApiError::duplicate("tenant", &input.key));
        }
        let idx = self.insert_tenant(input);
        self.touch();
        Ok(self.tenants.at(idx))
    }

    pub(super) fn insert_tenant(&mut self, input: TenantInput) -> usize {
        let t = now();
        self.tenants.insert(Tenant {
            id: Uuid::new_v4(),
            key: input.key,
            name: input.name,
            description: input.description,
            attributes_set: input.attributes.is_some(),
            attributes: input.attributes.unwrap_or_default(),
            created_at: t,
            updated_at: t,
            last_action_at: t,
        })
    }

    pub fn patch_tenant(&mut self, ident: &str, patch: TenantPatch) -> ApiResult<&Tenant> {
        let idx = self
            .tenants
            .find(ident)
            .ok_or_else(|| ApiError::not_found("tenant", ident))?;
        let tenant = self.tenants.at_mut(idx);
        if let Some(v) = patch.name {
            tenant.name = v;
        }
        if let Some(v) = patch.description {
            tenant.description = v;
        }
        if let Some(v) = patch.attributes {
            tenant.set_attributes(v);
        }
        tenant.updated_at = now();
        tenant.last_action_at = tenant.updated_at;
        self.touch();
        Ok(self.tenants.at(idx))
    }

    pub fn delete_tenant(&mut self, ident: &str) -> ApiResult<()> {
        let idx = self
            .tenants
            .find(ident)
            .ok_or_else(|| ApiError::not_found("tenant", ident))?;
        self.remove_tenant_at(idx);
        self.touch();
        Ok(())
    }

    pub(super) fn remove_tenant_at(&mut self, idx: usize) {
        let tenant = self.tenants.remove_at(idx);
        let held = self.by_tenant.remove(&tenant.id);
        self.remove_assignments(held);
        // "Deletes the tenant and all related data" (permit-api.md §4): its instances, with their
        // tuples and instance role assignments.
        self.remove_instances_where(|i| i.tenant_id == tenant.id);
    }

    pub fn bulk_create_tenants(&mut self, inputs: Vec<TenantInput>) -> ApiResult<()> {
        if let Some(key) = self
            .tenants
            .first_taken(inputs.iter().map(|i| i.key.as_str()))
        {
            return Err(ApiError::duplicate("tenant", key));
        }
        for input in inputs {
            self.insert_tenant(input);
        }
        self.touch();
        Ok(())
    }

    pub fn bulk_delete_tenants(&mut self, idents: &[String]) {
        for ident in idents {
            if let Some(idx) = self.tenants.find(ident) {
                self.remove_tenant_at(idx);
            }
        }
        self.touch();
    }

    pub fn list_tenants(&self, search: Option<&str>, page: Page) -> (Vec<&Tenant>, usize) {
        match search {
            None => (
                page.slice(self.tenants.rows()).iter().collect(),
                self.tenants.len(),
            ),
            Some(search) => {
                let needle = search.to_lowercase();
                let all: Vec<&Tenant> = self
                    .tenants
                    .rows()
                    .iter()
                    .filter(|t| {
                        t.key.to_lowercase().contains(&needle)
                            || t.name.to_lowercase().contains(&needle)
                    })
                    .collect();
                let total = all.len();
                (page.slice(&all).to_vec(), total)
            }
        }
    }

    /// Removes a user from a tenant: all its assignments there. 404 if the user or tenant is missing.
    pub fn remove_tenant_user(&mut self, tenant: &str, user: &str) -> ApiResult<()> {
        let tenant_id = self
            .tenants
            .get(tenant)
            .ok_or_else(|| ApiError::not_found("tenant", tenant))?
            .id;
        let user_id = self
            .users
            .get(user)
            .ok_or_else(|| ApiError::not_found("user", user))?
            .id;
        let ids: Vec<Uuid> = self
            .by_user
            .get(&user_id)
            .map(IdSet::as_slice)
            .unwrap_or_default()
            .iter()
            .filter(|aid| {
                self.assignments
                    .get_by_id(**aid)
                    .is_some_and(|a| a.tenant_id == tenant_id)
            })
            .copied()
            .collect();
        for id in ids {
            self.remove_assignment_by_id(id);
        }
        self.touch();
        Ok(())
    }

    /// Users holding at least one role in the tenant.
    pub fn tenant_users(&self, tenant_id: Uuid, page: Page) -> (Vec<&User>, usize) {
        let mut seen = HashSet::new();
        let users: Vec<&User> = self
            .by_tenant
            .get(&tenant_id)
            .map(IdSet::as_slice)
            .unwrap_or_default()
            .iter()
            .filter_map(|aid| self.assignments.get_by_id(*aid))
            .filter(|a| seen.insert(a.user_id))
            .filter_map(|a| self.users.get_by_id(a.user_id))
            .collect();
        let total = users.len();
        (page.slice(&users).to_vec(), total)
    }
}
