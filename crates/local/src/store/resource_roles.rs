//! Resource roles (identity `(resource, key)`), their permissions (action keys of their resource),
//! `extends` within the resource, and their derivations (`granted_to.users_with_role`, Permit's
//! implicit grants).
//!
//! Permit's shapes: permit-python `permit/api/resource_roles.py` and its models `ResourceRoleCreate`
//! (`permissions`, `extends`, `granted_to: DerivedRoleBlockEdit`), `DerivedRoleRuleCreate`
//! (`role`, `on_resource`, `linked_by_relation`, `when`); its live `tests/test_rebac_e2e.py` grants
//! resource roles bare action keys (`permissions=["read"]`) and reads the same count back.

use super::*;

/// `Post#Author`, how errors name a resource role.
pub fn role_name(resource: &str, key: &str) -> String {
    format!("{resource}#{key}")
}

impl Store {
    /// A resource's key from a key or id: 404 when it does not exist.
    pub fn resource_key(&self, ident: &str) -> ApiResult<String> {
        self.resources
            .get(ident)
            .map(|r| r.key.clone())
            .ok_or_else(|| ApiError::not_found("resource", ident))
    }

    /// The position of `resource#role` (each by key or id).
    pub fn find_resource_role(&self, resource: &str, role: &str) -> Option<usize> {
        let resource = self.resources.get(resource)?;
        self.resource_roles
            .position_of_key(&(resource.key.clone(), role.to_string()))
            .or_else(|| {
                let idx = self
                    .resource_roles
                    .position_of_id(Uuid::parse_str(role).ok()?)?;
                (self.resource_roles.at(idx).resource == resource.key).then_some(idx)
            })
    }

    pub fn resource_role(&self, resource: &str, role: &str) -> ApiResult<&ResourceRole> {
        let resource_key = self.resource_key(resource)?;
        self.find_resource_role(resource, role)
            .map(|i| self.resource_roles.at(i))
            .ok_or_else(|| ApiError::not_found("resource role", &role_name(&resource_key, role)))
    }

    /// A resource role's permissions as action keys: `action` or `resource:action` of its own
    /// resource (Permit's SDK tests grant bare keys; tenant roles' `resource:action` form names
    /// the resource). Another resource is a 400 `INVALID_PERMISSION_FORMAT`, an unknown action 404.
    fn check_action_permissions(&self, resource: &str, perms: &[String]) -> ApiResult<Vec<String>> {
        let r = self
            .resources
            .get(resource)
            .ok_or_else(|| ApiError::not_found("resource", resource))?;
        let mut out: Vec<String> = Vec::with_capacity(perms.len());
        for p in perms {
            let action = match p.split_once(':') {
                None => p.as_str(),
                Some((res, act)) if res == r.key && !act.is_empty() => act,
                Some(_) => {
                    return Err(ApiError::BadRequest(
                        "INVALID_PERMISSION_FORMAT",
                        format!(
                            "Invalid permission '{p}' for a role of resource '{}': expected an \
                             action of '{}' or '{}:action'",
                            r.key, r.key, r.key
                        ),
                    ));
                }
            };
            let a = r
                .action(action)
                .ok_or_else(|| ApiError::not_found("action", &format!("{}:{action}", r.key)))?;
            if !out.contains(&a.key) {
                out.push(a.key.clone());
            }
        }
        Ok(out)
    }

    /// `extends` of `resource#role`: roles of the same resource, no cycle (400).
    fn check_resource_extends(
        &self,
        resource: &str,
        role: &str,
        extends: &[String],
    ) -> ApiResult<Vec<String>> {
        let get = |k: &str| {
            self.resource_roles
                .position_of_key(&(resource.to_string(), k.to_string()))
                .map(|i| self.resource_roles.at(i))
        };
        let mut out: Vec<String> = Vec::new();
        for parent in extends {
            let p = get(parent).ok_or_else(|| {
                ApiError::not_found("resource role", &role_name(resource, parent))
            })?;
            if !out.contains(&p.key) {
                out.push(p.key.clone());
            }
        }
        if extends_reaches(role, &out, |k| get(k).map(|r| r.extends.as_slice())) {
            return Err(ApiError::BadRequest(
                "INVALID_INPUT",
                format!(
                    "Role '{}' cannot extend itself, directly or through another role",
                    role_name(resource, role)
                ),
            ));
        }
        Ok(out)
    }

    /// A derivation onto a role of `resource`: `on_resource` and its role exist, the relation is
    /// one of `resource`'s and its subject is `on_resource` (else 400: the tuples it follows
    /// could never link the two).
    pub(super) fn check_derivation(
        &self,
        resource: &str,
        rule: &DerivationRule,
    ) -> ApiResult<DerivationRule> {
        let on = self.resource_key(&rule.on_resource)?;
        let source = self.resource_role(&on, &rule.role)?;
        let relation = self.relation(resource, &rule.linked_by_relation)?;
        if relation.subject_resource != on {
            return Err(ApiError::BadRequest(
                "INVALID_INPUT",
                format!(
                    "Relation '{}' of resource '{resource}' links '{}' to it, not '{on}'",
                    relation.key, relation.subject_resource
                ),
            ));
        }
        Ok(DerivationRule {
            role: source.key.clone(),
            on_resource: on,
            linked_by_relation: relation.key.clone(),
            no_direct_roles_on_object: rule.no_direct_roles_on_object,
        })
    }

    fn check_granted_to(
        &self,
        resource: &str,
        rules: &[DerivationRule],
    ) -> ApiResult<Vec<DerivationRule>> {
        let mut out: Vec<DerivationRule> = Vec::new();
        for rule in rules {
            let checked = self.check_derivation(resource, rule)?;
            if !out.iter().any(|r| same_rule(r, &checked)) {
                out.push(checked);
            }
        }
        Ok(out)
    }

    pub fn create_resource_role(
        &mut self,
        resource: &str,
        input: ResourceRoleInput,
    ) -> ApiResult<&ResourceRole> {
        let resource = self.resource_key(resource)?;
        if self
            .resource_roles
            .position_of_key(&(resource.clone(), input.key.clone()))
            .is_some()
        {
            return Err(ApiError::duplicate(
                "resource role",
                &role_name(&resource, &input.key),
            ));
        }
        let permissions = self.check_action_permissions(&resource, &input.permissions)?;
        let extends = self.check_resource_extends(&resource, &input.key, &input.extends)?;
        let (granted_to, when) = match &input.granted_to {
            Some(g) => (
                self.check_granted_to(&resource, &g.users_with_role)?,
                g.no_direct_roles_on_object.unwrap_or(false),
            ),
            None => (Vec::new(), false),
        };
        let t = now();
        let idx = self.resource_roles.insert(ResourceRole {
            id: Uuid::new_v4(),
            resource,
            key: input.key,
            name: input.name,
            description: input.description,
            permissions,
            extends,
            attributes: input.attributes,
            granted_to,
            no_direct_roles_on_object: when,
            granted_to_id: Uuid::new_v4(),
            created_at: t,
            updated_at: t,
        });
        self.touch();
        Ok(self.resource_roles.at(idx))
    }

    fn resource_role_index(&self, resource: &str, role: &str) -> ApiResult<usize> {
        let resource_key = self.resource_key(resource)?;
        self.find_resource_role(resource, role)
            .ok_or_else(|| ApiError::not_found("resource role", &role_name(&resource_key, role)))
    }

    pub fn patch_resource_role(
        &mut self,
        resource: &str,
        role: &str,
        patch: ResourceRolePatch,
    ) -> ApiResult<&ResourceRole> {
        let idx = self.resource_role_index(resource, role)?;
        let (res, key) = self.resource_roles.at(idx).key();
        let permissions = match &patch.permissions {
            Some(p) => Some(self.check_action_permissions(&res, p)?),
            None => None,
        };
        let extends = match &patch.extends {
            Some(e) => Some(self.check_resource_extends(&res, &key, e)?),
            None => None,
        };
        let granted = match &patch.granted_to {
            Some(g) => Some((
                self.check_granted_to(&res, &g.users_with_role)?,
                g.no_direct_roles_on_object,
            )),
            None => None,
        };
        let r = self.resource_roles.at_mut(idx);
        if let Some(v) = patch.name {
            r.name = v;
        }
        if let Some(v) = patch.description {
            r.description = v;
        }
        if let Some(v) = patch.attributes {
            r.attributes = v;
        }
        if let Some(v) = permissions {
            r.permissions = v;
        }
        if let Some(v) = extends {
            r.extends = v;
        }
        if let Some((rules, when)) = granted {
            r.granted_to = rules;
            if let Some(when) = when {
                r.no_direct_roles_on_object = when;
            }
        }
        r.updated_at = now();
        self.touch();
        Ok(self.resource_roles.at(idx))
    }

    /// Deletes `resource#role` with its instance role assignments, the derivations it is the
    /// source of, and its place in its siblings' `extends` (as deleting a tenant role takes its
    /// assignments; Permit does not document the cascade: chosen, README).
    pub fn delete_resource_role(&mut self, resource: &str, role: &str) -> ApiResult<()> {
        let idx = self.resource_role_index(resource, role)?;
        self.remove_resource_role_at(idx);
        self.touch();
        Ok(())
    }

    pub(super) fn remove_resource_role_at(&mut self, idx: usize) {
        let role = self.resource_roles.remove_at(idx);
        let held: Vec<Uuid> = self
            .instance_assignments
            .rows()
            .iter()
            .filter(|a| a.role_id == role.id)
            .map(|a| a.id)
            .collect();
        for id in held {
            self.remove_instance_assignment_by_id(id);
        }
        for i in 0..self.resource_roles.len() {
            let r = self.resource_roles.at_mut(i);
            if r.resource == role.resource {
                r.extends.retain(|k| *k != role.key);
            }
            r.granted_to
                .retain(|g| !(g.on_resource == role.resource && g.role == role.key));
        }
    }

    pub fn add_resource_role_permissions(
        &mut self,
        resource: &str,
        role: &str,
        perms: &[String],
    ) -> ApiResult<&ResourceRole> {
        let idx = self.resource_role_index(resource, role)?;
        let res = self.resource_roles.at(idx).resource.clone();
        let perms = self.check_action_permissions(&res, perms)?;
        let r = self.resource_roles.at_mut(idx);
        for p in perms {
            if !r.permissions.contains(&p) {
                r.permissions.push(p);
            }
        }
        r.updated_at = now();
        self.touch();
        Ok(self.resource_roles.at(idx))
    }

    /// Removes permissions, in either form; absent ones are skipped.
    pub fn remove_resource_role_permissions(
        &mut self,
        resource: &str,
        role: &str,
        perms: &[String],
    ) -> ApiResult<&ResourceRole> {
        let idx = self.resource_role_index(resource, role)?;
        let r = self.resource_roles.at_mut(idx);
        let prefix = format!("{}:", r.resource);
        let gone: Vec<&str> = perms
            .iter()
            .map(|p| p.strip_prefix(&prefix).unwrap_or(p))
            .collect();
        r.permissions.retain(|p| !gone.contains(&p.as_str()));
        r.updated_at = now();
        self.touch();
        Ok(self.resource_roles.at(idx))
    }

    /// `POST …/roles/{role}/implicit_grants`: adds a derivation onto `resource#role`; the same
    /// rule twice is a 409.
    pub fn add_derivation(
        &mut self,
        resource: &str,
        role: &str,
        rule: DerivationRule,
    ) -> ApiResult<(&ResourceRole, usize)> {
        let idx = self.resource_role_index(resource, role)?;
        let res = self.resource_roles.at(idx).resource.clone();
        let rule = self.check_derivation(&res, &rule)?;
        let r = self.resource_roles.at_mut(idx);
        if r.granted_to.iter().any(|g| same_rule(g, &rule)) {
            return Err(ApiError::Duplicate(format!(
                "Role '{}' is already derived from '{}' through relation '{}'",
                role_name(&r.resource, &r.key),
                role_name(&rule.on_resource, &rule.role),
                rule.linked_by_relation
            )));
        }
        r.granted_to.push(rule);
        r.updated_at = now();
        let at = r.granted_to.len() - 1;
        self.touch();
        Ok((self.resource_roles.at(idx), at))
    }

    /// `DELETE …/implicit_grants` with the rule: 404 when the role has no such derivation.
    pub fn remove_derivation(
        &mut self,
        resource: &str,
        role: &str,
        rule: &DerivationRule,
    ) -> ApiResult<()> {
        let idx = self.resource_role_index(resource, role)?;
        let on = self.resources.get(&rule.on_resource).map(|r| r.key.clone());
        let r = self.resource_roles.at_mut(idx);
        let wanted = DerivationRule {
            on_resource: on.unwrap_or_else(|| rule.on_resource.clone()),
            ..rule.clone()
        };
        let Some(pos) = r.granted_to.iter().position(|g| same_rule(g, &wanted)) else {
            return Err(ApiError::NotFound(format!(
                "Role '{}' is not derived from '{}' through relation '{}'",
                role_name(&r.resource, &r.key),
                role_name(&wanted.on_resource, &wanted.role),
                wanted.linked_by_relation
            )));
        };
        r.granted_to.remove(pos);
        r.updated_at = now();
        self.touch();
        Ok(())
    }

    /// `PUT …/implicit_grants/conditions`: the role's `granted_to.when`.
    pub fn set_derivation_conditions(
        &mut self,
        resource: &str,
        role: &str,
        no_direct_roles_on_object: bool,
    ) -> ApiResult<&ResourceRole> {
        let idx = self.resource_role_index(resource, role)?;
        let r = self.resource_roles.at_mut(idx);
        r.no_direct_roles_on_object = no_direct_roles_on_object;
        r.updated_at = now();
        self.touch();
        Ok(self.resource_roles.at(idx))
    }

    /// The roles of one resource, in creation order (until one is deleted).
    pub fn roles_of_resource(&self, resource: &str) -> Vec<&ResourceRole> {
        self.resource_roles
            .rows()
            .iter()
            .filter(|r| r.resource == resource)
            .collect()
    }
}

/// The same derivation: source role, its resource and the relation (`when` is not identity).
fn same_rule(a: &DerivationRule, b: &DerivationRule) -> bool {
    a.role == b.role
        && a.on_resource == b.on_resource
        && a.linked_by_relation == b.linked_by_relation
}
