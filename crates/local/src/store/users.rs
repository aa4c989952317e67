//! Users: create, PUT upsert, PATCH, delete (with their assignments), bulk, listing.

use super::*;

impl Store {
    pub fn create_user(&mut self, input: UserInput) -> ApiResult<&User> {
        if self.users.find(&input.key).is_some() {
            return Err(ApiError::duplicate("user", &input.key));
        }
        let idx = self.insert_user(input);
        self.touch();
        Ok(self.users.at(idx))
    }

    pub(super) fn insert_user(&mut self, input: UserInput) -> usize {
        let t = now();
        self.users.insert(User {
            id: Uuid::new_v4(),
            key: input.key,
            email: input.email,
            first_name: input.first_name,
            last_name: input.last_name,
            attributes_set: input.attributes.is_some(),
            attributes: input.attributes.unwrap_or_default(),
            created_at: t,
            updated_at: t,
        })
    }

    /// PUT: replaces the user named by `ident` (key or id), or creates it. Returns whether it was created.
    pub fn put_user(&mut self, ident: &str, input: UserInput) -> ApiResult<(&User, bool)> {
        let (idx, created) = self.upsert_user(ident, input);
        self.touch();
        Ok((self.users.at(idx), created))
    }

    pub(super) fn upsert_user(&mut self, ident: &str, input: UserInput) -> (usize, bool) {
        match self.users.find(ident) {
            Some(idx) => {
                let user = self.users.at_mut(idx);
                user.email = input.email;
                user.first_name = input.first_name;
                user.last_name = input.last_name;
                user.set_attributes(input.attributes);
                user.updated_at = now();
                (idx, false)
            }
            None => (self.insert_user(input), true),
        }
    }

    pub fn patch_user(&mut self, ident: &str, patch: UserPatch) -> ApiResult<&User> {
        let idx = self
            .users
            .find(ident)
            .ok_or_else(|| ApiError::not_found("user", ident))?;
        let user = self.users.at_mut(idx);
        if let Some(v) = patch.email {
            user.email = v;
        }
        if let Some(v) = patch.first_name {
            user.first_name = v;
        }
        if let Some(v) = patch.last_name {
            user.last_name = v;
        }
        if let Some(v) = patch.attributes {
            user.set_attributes(v);
        }
        user.updated_at = now();
        self.touch();
        Ok(self.users.at(idx))
    }

    pub fn delete_user(&mut self, ident: &str) -> ApiResult<()> {
        let idx = self
            .users
            .find(ident)
            .ok_or_else(|| ApiError::not_found("user", ident))?;
        self.remove_user_at(idx);
        self.touch();
        Ok(())
    }

    pub(super) fn remove_user_at(&mut self, idx: usize) {
        let user = self.users.remove_at(idx);
        let held = self.by_user.remove(&user.id);
        self.remove_assignments(held);
        self.remove_user_instance_assignments(user.id);
    }

    /// `POST /bulk/users`: all new, or 409 and nothing created.
    pub fn bulk_create_users(&mut self, inputs: Vec<UserInput>) -> ApiResult<()> {
        if let Some(key) = self
            .users
            .first_taken(inputs.iter().map(|i| i.key.as_str()))
        {
            return Err(ApiError::duplicate("user", key));
        }
        for input in inputs {
            self.insert_user(input);
        }
        self.touch();
        Ok(())
    }

    /// `PUT /bulk/users`: upsert each.
    pub fn bulk_put_users(&mut self, inputs: Vec<UserInput>) {
        for input in inputs {
            let key = input.key.clone();
            self.upsert_user(&key, input);
        }
        self.touch();
    }

    /// `DELETE /bulk/users`: deletes those that exist.
    pub fn bulk_delete_users(&mut self, idents: &[String]) {
        for ident in idents {
            if let Some(idx) = self.users.find(ident) {
                self.remove_user_at(idx);
            }
        }
        self.touch();
    }

    /// Users, optionally narrowed by a text `search` (key, e-mail, names) or a role key.
    pub fn list_users(
        &self,
        search: Option<&str>,
        role: Option<&str>,
        page: Page,
    ) -> (Vec<&User>, usize) {
        if search.is_none() && role.is_none() {
            return (
                page.slice(self.users.rows()).iter().collect(),
                self.users.len(),
            );
        }
        let mut candidates: Vec<&User> = match role {
            Some(role) => {
                let Some(role) = self.roles.get(role) else {
                    return (Vec::new(), 0);
                };
                let mut seen = HashSet::new();
                self.by_role
                    .get(&role.id)
                    .map(IdSet::as_slice)
                    .unwrap_or_default()
                    .iter()
                    .filter_map(|aid| self.assignments.get_by_id(*aid))
                    .filter(|a| seen.insert(a.user_id))
                    .filter_map(|a| self.users.get_by_id(a.user_id))
                    .collect()
            }
            None => self.users.rows().iter().collect(),
        };
        if let Some(search) = search {
            let needle = search.to_lowercase();
            candidates.retain(|u| {
                u.key.to_lowercase().contains(&needle)
                    || [&u.email, &u.first_name, &u.last_name].iter().any(|f| {
                        f.as_deref()
                            .is_some_and(|s| s.to_lowercase().contains(&needle))
                    })
            });
        }
        let total = candidates.len();
        (page.slice(&candidates).to_vec(), total)
    }

    /// The user's assignments, as (role key, tenant key) pairs.
    pub fn user_roles(&self, user_id: Uuid) -> Vec<(&str, &str)> {
        self.by_user
            .get(&user_id)
            .map(IdSet::as_slice)
            .unwrap_or_default()
            .iter()
            .filter_map(|aid| self.assignments.get_by_id(*aid))
            .filter_map(|a| {
                Some((
                    self.roles.get_by_id(a.role_id)?.key.as_str(),
                    self.tenants.get_by_id(a.tenant_id)?.key.as_str(),
                ))
            })
            .collect()
    }
}
