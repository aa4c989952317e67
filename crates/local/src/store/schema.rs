//! Policy schema: resources with actions, tenant roles with permissions and `extends`.

use super::*;

impl Store {
    pub(super) fn build_actions(inputs: Vec<ActionInput>, keep: &[Action]) -> Vec<Action> {
        let t = now();
        inputs
            .into_iter()
            .map(|a| {
                let old = keep.iter().find(|o| o.key == a.key);
                Action {
                    id: old.map_or_else(Uuid::new_v4, |o| o.id),
                    name: a.name.unwrap_or_else(|| a.key.clone()),
                    key: a.key,
                    description: a.description,
                    attributes: a.attributes,
                    created_at: old.map_or(t, |o| o.created_at),
                    updated_at: t,
                }
            })
            .collect()
    }

    pub fn create_resource(&mut self, input: ResourceInput) -> ApiResult<&Resource> {
        if self.resources.find(&input.key).is_some() {
            return Err(ApiError::duplicate("resource", &input.key));
        }
        let t = now();
        let idx = self.resources.insert(Resource {
            id: Uuid::new_v4(),
            actions: Self::build_actions(input.actions, &[]),
            key: input.key,
            name: input.name,
            description: input.description,
            urn: input.urn,
            attributes: input.attributes,
            type_attributes: input.type_attributes,
            created_at: t,
            updated_at: t,
        });
        self.touch();
        Ok(self.resources.at(idx))
    }

    /// PUT: replaces the resource (actions left out are deleted, revoking their permissions), or
    /// creates it. Returns whether it was created.
    pub fn replace_resource(
        &mut self,
        ident: &str,
        input: ResourceInput,
    ) -> ApiResult<(&Resource, bool)> {
        let Some(idx) = self.resources.find(ident) else {
            let key = input.key.clone();
            self.create_resource(input)?;
            let idx = self.resources.find(&key).expect("just created");
            return Ok((self.resources.at(idx), true));
        };
        let resource = self.resources.at_mut(idx);
        resource.actions = Self::build_actions(input.actions, &resource.actions);
        resource.name = input.name;
        resource.description = input.description;
        resource.urn = input.urn;
        resource.attributes = input.attributes;
        resource.type_attributes = input.type_attributes;
        resource.updated_at = now();
        let key = resource.key.clone();
        self.revoke_missing_actions(&key);
        self.touch();
        Ok((self.resources.at(idx), false))
    }

    pub fn patch_resource(&mut self, ident: &str, patch: ResourcePatch) -> ApiResult<&Resource> {
        let idx = self
            .resources
            .find(ident)
            .ok_or_else(|| ApiError::not_found("resource", ident))?;
        let resource = self.resources.at_mut(idx);
        if let Some(v) = patch.name {
            resource.name = v;
        }
        if let Some(v) = patch.description {
            resource.description = v;
        }
        if let Some(v) = patch.urn {
            resource.urn = v;
        }
        if let Some(v) = patch.attributes {
            resource.attributes = v;
        }
        if let Some(v) = patch.type_attributes {
            resource.type_attributes = v;
        }
        if let Some(actions) = patch.actions {
            resource.actions = Self::build_actions(actions, &resource.actions);
        }
        resource.updated_at = now();
        let key = resource.key.clone();
        self.revoke_missing_actions(&key);
        self.touch();
        Ok(self.resources.at(idx))
    }

    pub fn delete_resource(&mut self, ident: &str) -> ApiResult<()> {
        let idx = self
            .resources
            .find(ident)
            .ok_or_else(|| ApiError::not_found("resource", ident))?;
        let resource = self.resources.remove_at(idx);
        self.revoke_missing_actions(&resource.key);
        self.remove_resource_rebac(&resource.key);
        self.touch();
        Ok(())
    }

    pub fn create_action(&mut self, resource: &str, input: ActionInput) -> ApiResult<&Action> {
        let idx = self
            .resources
            .find(resource)
            .ok_or_else(|| ApiError::not_found("resource", resource))?;
        let r = self.resources.at_mut(idx);
        if r.action(&input.key).is_some() {
            return Err(ApiError::duplicate("action", &input.key));
        }
        let mut built = Self::build_actions(vec![input], &[]);
        r.actions.append(&mut built);
        r.updated_at = now();
        self.touch();
        Ok(self.resources.at(idx).actions.last().expect("just added"))
    }

    pub fn delete_action(&mut self, resource: &str, action: &str) -> ApiResult<()> {
        let idx = self
            .resources
            .find(resource)
            .ok_or_else(|| ApiError::not_found("resource", resource))?;
        let r = self.resources.at_mut(idx);
        let pos = r
            .actions
            .iter()
            .position(|a| a.key == action || same_id(a.id, action))
            .ok_or_else(|| ApiError::not_found("action", action))?;
        r.actions.remove(pos);
        r.updated_at = now();
        let key = r.key.clone();
        self.revoke_missing_actions(&key);
        self.touch();
        Ok(())
    }

    /// Removes from every role the `resource:action` permissions whose action no longer exists.
    pub(super) fn revoke_missing_actions(&mut self, resource_key: &str) {
        let live: HashSet<String> = self
            .resources
            .get(resource_key)
            .map(|r| {
                r.actions
                    .iter()
                    .map(|a| format!("{}:{}", r.key, a.key))
                    .collect()
            })
            .unwrap_or_default();
        let prefix = format!("{resource_key}:");
        let actions: HashSet<&str> = live.iter().map(|p| &p[prefix.len()..]).collect();
        for i in 0..self.resource_roles.len() {
            let role = self.resource_roles.at_mut(i);
            if role.resource == resource_key {
                role.permissions.retain(|a| actions.contains(a.as_str()));
            }
        }
        for i in 0..self.roles.len() {
            let role = self.roles.at_mut(i);
            let before = role.permissions.len();
            role.permissions
                .retain(|p| !p.starts_with(&prefix) || live.contains(p));
            if role.permissions.len() != before {
                role.updated_at = now();
            }
        }
    }

    /// What a deleted resource takes with it: its roles, the relations from or to it (with their
    /// tuples), its instances (with theirs) and the derivations whose source it was.
    fn remove_resource_rebac(&mut self, resource: &str) {
        while let Some(idx) = self
            .resource_roles
            .rows()
            .iter()
            .position(|r| r.resource == resource)
        {
            self.remove_resource_role_at(idx);
        }
        while let Some(idx) = self
            .relations
            .rows()
            .iter()
            .position(|r| r.object_resource == resource || r.subject_resource == resource)
        {
            self.remove_relation_at(idx);
        }
        self.remove_instances_where(|i| i.resource == resource);
        for i in 0..self.resource_roles.len() {
            self.resource_roles
                .at_mut(i)
                .granted_to
                .retain(|g| g.on_resource != resource);
        }
    }

    // ---------------------------------------------------------------- roles

    /// Normalizes permissions to `resource:action` (an action UUID is accepted too): a malformed
    /// string is a 400 `INVALID_PERMISSION_FORMAT`, an unknown resource or action a 404.
    pub(super) fn check_permissions(&self, perms: &[String]) -> ApiResult<Vec<String>> {
        let mut out: Vec<String> = Vec::with_capacity(perms.len());
        for p in perms {
            let normalized = match p.split_once(':') {
                Some((res, act)) if !res.is_empty() && !act.is_empty() && !act.contains(':') => {
                    let r = self
                        .resources
                        .get(res)
                        .ok_or_else(|| ApiError::not_found("resource", res))?;
                    let a = r
                        .action(act)
                        .ok_or_else(|| ApiError::not_found("action", p))?;
                    format!("{}:{}", r.key, a.key)
                }
                None if Uuid::parse_str(p).is_ok() => self
                    .resources
                    .rows()
                    .iter()
                    .find_map(|r| {
                        r.actions
                            .iter()
                            .find(|a| same_id(a.id, p))
                            .map(|a| format!("{}:{}", r.key, a.key))
                    })
                    .ok_or_else(|| ApiError::not_found("action", p))?,
                _ => {
                    return Err(ApiError::BadRequest(
                        "INVALID_PERMISSION_FORMAT",
                        format!("Invalid permission '{p}': expected 'resource:action'"),
                    ));
                }
            };
            if !out.contains(&normalized) {
                out.push(normalized);
            }
        }
        Ok(out)
    }

    /// Checks `extends` for `role_key`: every parent exists and no cycle forms.
    pub(super) fn check_extends(
        &self,
        role_key: &str,
        extends: &[String],
    ) -> ApiResult<Vec<String>> {
        let mut out: Vec<String> = Vec::new();
        for parent in extends {
            let p = self
                .roles
                .get(parent)
                .ok_or_else(|| ApiError::not_found("role", parent))?;
            if !out.contains(&p.key) {
                out.push(p.key.clone());
            }
        }
        // A cycle exists if role_key is reachable from one of its new parents.
        let extends_of = |k: &str| self.roles.get(k).map(|r| r.extends.as_slice());
        if extends_reaches(role_key, &out, extends_of) {
            return Err(ApiError::BadRequest(
                "INVALID_INPUT",
                format!("Role '{role_key}' cannot extend itself, directly or through another role"),
            ));
        }
        Ok(out)
    }

    pub fn create_role(&mut self, input: RoleInput) -> ApiResult<&Role> {
        if self.roles.find(&input.key).is_some() {
            return Err(ApiError::duplicate("role", &input.key));
        }
        let permissions = self.check_permissions(&input.permissions)?;
        let extends = self.check_extends(&input.key, &input.extends)?;
        let t = now();
        let idx = self.roles.insert(Role {
            id: Uuid::new_v4(),
            key: input.key,
            name: input.name,
            description: input.description,
            permissions,
            extends,
            attributes: input.attributes,
            created_at: t,
            updated_at: t,
        });
        self.touch();
        Ok(self.roles.at(idx))
    }

    pub fn patch_role(&mut self, ident: &str, patch: RolePatch) -> ApiResult<&Role> {
        let idx = self
            .roles
            .find(ident)
            .ok_or_else(|| ApiError::not_found("role", ident))?;
        let key = self.roles.at(idx).key.clone();
        let permissions = match &patch.permissions {
            Some(p) => Some(self.check_permissions(p)?),
            None => None,
        };
        let extends = match &patch.extends {
            Some(e) => Some(self.check_extends(&key, e)?),
            None => None,
        };
        let role = self.roles.at_mut(idx);
        if let Some(v) = patch.name {
            role.name = v;
        }
        if let Some(v) = patch.description {
            role.description = v;
        }
        if let Some(v) = patch.attributes {
            role.attributes = v;
        }
        if let Some(v) = permissions {
            role.permissions = v;
        }
        if let Some(v) = extends {
            role.extends = v;
        }
        role.updated_at = now();
        self.touch();
        Ok(self.roles.at(idx))
    }

    /// Deletes a role with its assignments, and drops it from other roles' `extends`.
    pub fn delete_role(&mut self, ident: &str) -> ApiResult<()> {
        let idx = self
            .roles
            .find(ident)
            .ok_or_else(|| ApiError::not_found("role", ident))?;
        let role = self.roles.remove_at(idx);
        let held = self.by_role.remove(&role.id);
        self.remove_assignments(held);
        for i in 0..self.roles.len() {
            self.roles.at_mut(i).extends.retain(|k| *k != role.key);
        }
        self.touch();
        Ok(())
    }

    /// Adds permissions (present ones are skipped).
    pub fn add_permissions(&mut self, ident: &str, perms: &[String]) -> ApiResult<&Role> {
        let idx = self
            .roles
            .find(ident)
            .ok_or_else(|| ApiError::not_found("role", ident))?;
        let perms = self.check_permissions(perms)?;
        let role = self.roles.at_mut(idx);
        for p in perms {
            if !role.permissions.contains(&p) {
                role.permissions.push(p);
            }
        }
        role.updated_at = now();
        self.touch();
        Ok(self.roles.at(idx))
    }

    /// Removes permissions (absent ones, even unknown ones, are skipped).
    pub fn remove_permissions(&mut self, ident: &str, perms: &[String]) -> ApiResult<&Role> {
        let idx = self
            .roles
            .find(ident)
            .ok_or_else(|| ApiError::not_found("role", ident))?;
        let role = self.roles.at_mut(idx);
        role.permissions.retain(|p| !perms.contains(p));
        role.updated_at = now();
        self.touch();
        Ok(self.roles.at(idx))
    }

    /// `PUT /bulk/roles`: creates or updates each role, all checked before any is written.
    /// Creates or replaces each role; returns the keys created and the keys updated, in order.
    pub fn bulk_upsert_roles(
        &mut self,
        inputs: Vec<RoleInput>,
    ) -> ApiResult<(Vec<String>, Vec<String>)> {
        // Parents may be created in the same batch, so check extends against batch + store.
        let batch: HashSet<&str> = inputs.iter().map(|r| r.key.as_str()).collect();
        let mut checked = Vec::with_capacity(inputs.len());
        for input in &inputs {
            let permissions = self.check_permissions(&input.permissions)?;
            for parent in &input.extends {
                if self.roles.find(parent).is_none() && !batch.contains(parent.as_str()) {
                    return Err(ApiError::not_found("role", parent));
                }
            }
            checked.push(permissions);
        }
        // The hierarchy after the batch (batch entries override stored roles) must stay acyclic.
        let parents = |key: &str| -> Vec<String> {
            match inputs.iter().rev().find(|r| r.key == key) {
                Some(r) => r.extends.clone(),
                None => self
                    .roles
                    .get(key)
                    .map(|r| r.extends.clone())
                    .unwrap_or_default(),
            }
        };
        for input in &inputs {
            let mut stack = parents(&input.key);
            let mut seen = HashSet::new();
            while let Some(k) = stack.pop() {
                if k == input.key {
                    return Err(ApiError::BadRequest(
                        "INVALID_INPUT",
                        format!(
                            "Role '{}' cannot extend itself, directly or through another role",
                            input.key
                        ),
                    ));
                }
                if seen.insert(k.clone()) {
                    stack.extend(parents(&k));
                }
            }
        }
        let t = now();
        let (mut created, mut updated) = (Vec::new(), Vec::new());
        let mut listed = HashSet::new();
        for (input, permissions) in inputs.into_iter().zip(checked) {
            match self.roles.find(&input.key) {
                Some(idx) => {
                    // A key given twice in one batch is listed once, where it first appears.
                    if listed.insert(input.key.clone()) {
                        updated.push(input.key.clone());
                    }
                    let role = self.roles.at_mut(idx);
                    role.name = input.name;
                    role.description = input.description;
                    role.permissions = permissions;
                    role.extends = input.extends;
                    if input.attributes.is_some() {
                        role.attributes = input.attributes;
                    }
                    role.updated_at = t;
                }
                None => {
                    listed.insert(input.key.clone());
                    created.push(input.key.clone());
                    self.roles.insert(Role {
                        id: Uuid::new_v4(),
                        key: input.key,
                        name: input.name,
                        description: input.description,
                        permissions,
                        extends: input.extends,
                        attributes: input.attributes,
                        created_at: t,
                        updated_at: t,
                    });
                }
            }
        }
        self.touch();
        Ok((created, updated))
    }
}
