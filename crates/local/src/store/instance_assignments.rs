//! Instance role assignments: a resource role on one resource instance (`role_assignments` with
//! `resource_instance: "type:key"`; permit-node `RoleAssignmentCreate.resource_instance`: "accepts
//! either the resource instance id or key using this format resource_type:resource_instance").
//! The tenant is the instance's. An assignment naming an instance that does not exist, with a
//! tenant, creates the instance in that tenant (issue 18, after Permit's implicit creation of
//! instances named by tuples, docs `overview/sync-applications-data.mdx`); without a tenant it is
//! a 404.

use super::*;

/// A row of `GET role_assignments`: a tenant role or an instance role.
#[derive(Debug, Clone, Copy)]
pub enum Listed<'a> {
    Tenant(&'a Assignment),
    Instance(&'a InstanceAssignment),
}

/// An instance assignment checked against the store: user, role, and the instance or the
/// `(resource, key, tenant)` to create it from.
pub(super) struct PlannedInstanceRole {
    user_id: Uuid,
    role_id: Uuid,
    instance: Result<Uuid, (String, String, Uuid)>,
}

impl Store {
    pub(super) fn index_instance_assignment(&mut self, a: &InstanceAssignment) {
        self.ia_by_user.entry(a.user_id).or_default().insert(a.id);
        self.ia_by_instance
            .entry(a.instance_id)
            .or_default()
            .insert(a.id);
    }

    pub(super) fn remove_instance_assignment_by_id(&mut self, id: Uuid) {
        let Some(idx) = self.instance_assignments.position_of_id(id) else {
            return;
        };
        let a = self.instance_assignments.remove_at(idx);
        unindex(&mut self.ia_by_user, a.user_id, a.id);
        unindex(&mut self.ia_by_instance, a.instance_id, a.id);
    }

    pub(super) fn remove_user_instance_assignments(&mut self, user_id: Uuid) {
        if let Some(held) = self.ia_by_user.remove(&user_id) {
            for id in held.as_slice().to_vec() {
                self.remove_instance_assignment_by_id(id);
            }
        }
    }

    /// Checks an instance assignment: the user (404), then [`Store::instance_role_target`].
    pub(super) fn plan_instance_role(
        &self,
        r: &AssignmentRef,
        instance: &str,
        pending: &mut HashMap<(String, String), Uuid>,
    ) -> ApiResult<PlannedInstanceRole> {
        let user = self
            .users
            .get(&r.user)
            .ok_or_else(|| ApiError::not_found("user", &r.user))?;
        let (role_id, instance) = self.instance_role_target(r, instance, pending)?;
        Ok(PlannedInstanceRole {
            user_id: user.id,
            role_id,
            instance,
        })
    }

    /// The role and instance of an instance assignment: the instance's resource (404) and its
    /// role `resource#role` (404); an existing instance in another tenant than the one given is a
    /// 400 `MISMATCH_RESOURCE_INSTANCES_TENANTS`. `pending` holds the instances this call creates
    /// (a missing one is added when a tenant names where).
    #[allow(clippy::type_complexity)]
    pub(super) fn instance_role_target(
        &self,
        r: &AssignmentRef,
        instance: &str,
        pending: &mut HashMap<(String, String), Uuid>,
    ) -> ApiResult<(Uuid, Result<Uuid, (String, String, Uuid)>)> {
        let tenant = match &r.tenant {
            Some(t) => Some(
                self.tenants
                    .get(t)
                    .ok_or_else(|| ApiError::not_found("tenant", t))?
                    .id,
            ),
            None => None,
        };
        let (resource, key, existing) = match self.find_instance(instance) {
            Some(idx) => {
                let i = self.instances.at(idx);
                (i.resource.clone(), i.key.clone(), Some((i.id, i.tenant_id)))
            }
            None => {
                let (res, key) = instance
                    .split_once(':')
                    .filter(|(r, k)| !r.is_empty() && !k.is_empty())
                    .ok_or_else(|| ApiError::not_found("resource instance", instance))?;
                (self.resource_key(res)?, key.to_string(), None)
            }
        };
        let role = self.resource_role(&resource, &r.role)?;
        let mismatch = || {
            ApiError::BadRequest(
                "MISMATCH_RESOURCE_INSTANCES_TENANTS",
                format!(
                    "Resource instance '{resource}:{key}' is not in tenant '{}'",
                    r.tenant.as_deref().unwrap_or_default()
                ),
            )
        };
        let target = match existing {
            Some((id, t)) => {
                if tenant.is_some_and(|want| want != t) {
                    return Err(mismatch());
                }
                Ok(id)
            }
            None => {
                let named = (resource.clone(), key.clone());
                let t = match (tenant, pending.get(&named).copied()) {
                    (Some(want), Some(t)) if want != t => return Err(mismatch()),
                    (Some(t), _) | (None, Some(t)) => t,
                    (None, None) => return Err(ApiError::not_found("resource instance", instance)),
                };
                pending.insert(named, t);
                Err((resource, key, t))
            }
        };
        Ok((role.id, target))
    }

    /// The instance a planned assignment names, created now when missing.
    fn planned_instance(&mut self, p: &PlannedInstanceRole) -> Uuid {
        match &p.instance {
            Ok(id) => *id,
            Err((resource, key, tenant)) => {
                match self
                    .instances
                    .position_of_key(&(resource.clone(), key.clone()))
                {
                    Some(idx) => self.instances.at(idx).id,
                    None => {
                        let idx =
                            self.insert_instance(resource.clone(), key.clone(), *tenant, None);
                        self.instances.at(idx).id
                    }
                }
            }
        }
    }

    fn planned_key(&self, p: &PlannedInstanceRole) -> Option<(Uuid, Uuid, Uuid)> {
        match p.instance {
            Ok(id) => Some((p.user_id, p.role_id, id)),
            Err(_) => None,
        }
    }

    /// Writes a planned assignment; `false` when it existed.
    pub(super) fn apply_instance_role(&mut self, p: &PlannedInstanceRole) -> bool {
        let instance_id = self.planned_instance(p);
        let key = (p.user_id, p.role_id, instance_id);
        if self.instance_assignments.position_of_key(&key).is_some() {
            return false;
        }
        let a = InstanceAssignment {
            id: Uuid::new_v4(),
            user_id: p.user_id,
            role_id: p.role_id,
            instance_id,
            created_at: now(),
        };
        self.index_instance_assignment(&a);
        self.instance_assignments.insert(a);
        true
    }

    /// Assigns a resource role on an instance: 409 if assigned already.
    pub(super) fn assign_instance_role(
        &mut self,
        r: &AssignmentRef,
        instance: &str,
    ) -> ApiResult<Uuid> {
        let p = self.plan_instance_role(r, instance, &mut HashMap::new())?;
        if let Some(key) = self.planned_key(&p)
            && self.instance_assignments.position_of_key(&key).is_some()
        {
            return Err(ApiError::Duplicate(format!(
                "The role '{}' on '{instance}' is already assigned to user '{}'",
                r.role, r.user
            )));
        }
        self.apply_instance_role(&p);
        let instance_id = self.planned_instance(&p);
        let idx = self
            .instance_assignments
            .position_of_key(&(p.user_id, p.role_id, instance_id))
            .expect("just assigned");
        self.touch();
        Ok(self.instance_assignments.at(idx).id)
    }

    /// The assignment `r` names, if it exists (`None` also when a part is missing).
    fn find_instance_role(&self, r: &AssignmentRef, instance: &str) -> Option<Uuid> {
        let user = self.users.get(&r.user)?;
        let i = self.instances.at(self.find_instance(instance)?);
        if let Some(t) = &r.tenant
            && self.tenants.get(t).is_none_or(|t| t.id != i.tenant_id)
        {
            return None;
        }
        let role = self
            .resource_roles
            .at(self.find_resource_role(&i.resource, &r.role)?);
        let idx = self
            .instance_assignments
            .position_of_key(&(user.id, role.id, i.id))?;
        Some(self.instance_assignments.at(idx).id)
    }

    /// Unassigns a resource role on an instance: 404 when not assigned.
    pub(super) fn unassign_instance_role(
        &mut self,
        r: &AssignmentRef,
        instance: &str,
    ) -> ApiResult<()> {
        let id = self.find_instance_role(r, instance).ok_or_else(|| {
            ApiError::NotFound(format!(
                "The role '{}' on '{instance}' is not assigned to user '{}' in tenant '{}'",
                r.role,
                r.user,
                r.tenant.as_deref().unwrap_or(DEFAULT_TENANT)
            ))
        })?;
        self.remove_instance_assignment_by_id(id);
        self.touch();
        Ok(())
    }

    /// Bulk unassign of one instance role; `true` when it was removed.
    pub(super) fn bulk_unassign_instance_role(
        &mut self,
        r: &AssignmentRef,
        instance: &str,
    ) -> bool {
        match self.find_instance_role(r, instance) {
            Some(id) => {
                self.remove_instance_assignment_by_id(id);
                true
            }
            None => false,
        }
    }

    /// The instance assignments a listing filter selects, in table order.
    pub(super) fn instance_assignments_matching(
        &self,
        f: &AssignmentFilter,
    ) -> Vec<&InstanceAssignment> {
        let ids = |asked: &[String], find: &dyn Fn(&str) -> Option<Uuid>| -> Option<Vec<Uuid>> {
            (!asked.is_empty()).then(|| asked.iter().filter_map(|a| find(a)).collect())
        };
        let users = ids(&f.users, &|u| self.users.get(u).map(|u| u.id));
        let tenants = ids(&f.tenants, &|t| self.tenants.get(t).map(|t| t.id));
        let resource = f
            .resource
            .as_ref()
            .map(|r| self.resources.get(r).map(|r| r.key.as_str()));
        let instance = f
            .resource_instance
            .as_ref()
            .map(|i| self.find_instance(i).map(|idx| self.instances.at(idx).id));
        if matches!(resource, Some(None)) || matches!(instance, Some(None)) {
            return Vec::new();
        }
        let candidates: Vec<&InstanceAssignment> = match &users {
            Some(users) => users
                .iter()
                .flat_map(|u| {
                    self.ia_by_user
                        .get(u)
                        .map(IdSet::as_slice)
                        .unwrap_or_default()
                })
                .filter_map(|id| self.instance_assignments.get_by_id(*id))
                .collect(),
            None => self.instance_assignments.rows().iter().collect(),
        };
        let mut seen = HashSet::new();
        candidates
            .into_iter()
            .filter(|a| seen.insert(a.id))
            .filter(|a| {
                let Some(i) = self.instances.get_by_id(a.instance_id) else {
                    return false;
                };
                let role = self.resource_roles.get_by_id(a.role_id);
                tenants.as_ref().is_none_or(|t| t.contains(&i.tenant_id))
                    && resource.flatten().is_none_or(|r| i.resource == r)
                    && instance.flatten().is_none_or(|id| i.id == id)
                    && (f.roles.is_empty()
                        || role.is_some_and(|r| {
                            f.roles.iter().any(|k| *k == r.key || same_id(r.id, k))
                        }))
            })
            .collect()
    }

    /// The instance roles a user holds, as (role key, `type:key`, tenant key).
    pub fn user_instance_roles(&self, user_id: Uuid) -> Vec<(&str, &Instance, &str)> {
        self.ia_by_user
            .get(&user_id)
            .map(IdSet::as_slice)
            .unwrap_or_default()
            .iter()
            .filter_map(|id| self.instance_assignments.get_by_id(*id))
            .filter_map(|a| {
                let i = self.instances.get_by_id(a.instance_id)?;
                Some((
                    self.resource_roles.get_by_id(a.role_id)?.key.as_str(),
                    i,
                    self.tenants.get_by_id(i.tenant_id)?.key.as_str(),
                ))
            })
            .collect()
    }
}
