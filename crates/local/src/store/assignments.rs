//! Role assignments and their indexes by user, tenant and role.

use super::*;

impl Store {
    pub(super) fn index_assignment(&mut self, a: &Assignment) {
        self.by_user.entry(a.user_id).or_default().insert(a.id);
        self.by_tenant.entry(a.tenant_id).or_default().insert(a.id);
        self.by_role.entry(a.role_id).or_default().insert(a.id);
    }

    /// Removes the assignments of a deleted user, tenant or role (its entry, taken from its index).
    pub(super) fn remove_assignments(&mut self, held: Option<IdSet>) {
        for aid in held.iter().flat_map(|set| set.as_slice().to_vec()) {
            self.remove_assignment_by_id(aid);
        }
    }

    pub(super) fn remove_assignment_by_id(&mut self, id: Uuid) {
        let Some(idx) = self.assignments.position_of_id(id) else {
            return;
        };
        let a = self.assignments.remove_at(idx);
        unindex(&mut self.by_user, a.user_id, a.id);
        unindex(&mut self.by_tenant, a.tenant_id, a.id);
        unindex(&mut self.by_role, a.role_id, a.id);
    }

    /// Resolves an assignment's names to ids: 404 for a missing user, role or tenant.
    pub(super) fn resolve(&self, r: &AssignmentRef) -> ApiResult<(Uuid, Uuid, Uuid)> {
        let tenant = r.tenant.as_deref().unwrap_or(DEFAULT_TENANT);
        let user = self
            .users
            .get(&r.user)
            .ok_or_else(|| ApiError::not_found("user", &r.user))?;
        let role = self
            .roles
            .get(&r.role)
            .ok_or_else(|| ApiError::not_found("role", &r.role))?;
        let tenant = self
            .tenants
            .get(tenant)
            .ok_or_else(|| ApiError::not_found("tenant", tenant))?;
        Ok((user.id, role.id, tenant.id))
    }

    pub(super) fn insert_assignment(
        &mut self,
        (user_id, role_id, tenant_id): (Uuid, Uuid, Uuid),
    ) -> usize {
        let a = Assignment {
            id: Uuid::new_v4(),
            user_id,
            role_id,
            tenant_id,
            created_at: now(),
        };
        self.index_assignment(&a);
        self.assignments.insert(a)
    }

    /// Assigns a tenant role, or with `resource_instance` a resource role on an instance; returns
    /// the assignment's id.
    pub fn assign_any(&mut self, r: &AssignmentRef) -> ApiResult<Uuid> {
        match &r.resource_instance {
            Some(instance) => self.assign_instance_role(r, instance),
            None => self.assign(r).map(|a| a.id),
        }
    }

    /// Assigns a role: 404 if the user, role or tenant is missing, 409 if already assigned.
    pub fn assign(&mut self, r: &AssignmentRef) -> ApiResult<&Assignment> {
        let ids = self.resolve(r)?;
        if self.assignments.position_of_key(&ids).is_some() {
            return Err(ApiError::Duplicate(format!(
                "The role '{}' is already assigned to user '{}' in tenant '{}'",
                r.role,
                r.user,
                r.tenant.as_deref().unwrap_or(DEFAULT_TENANT)
            )));
        }
        let idx = self.insert_assignment(ids);
        self.touch();
        Ok(self.assignments.at(idx))
    }

    /// Unassigns: 404 if the assignment (or any of its parts) does not exist.
    pub fn unassign(&mut self, r: &AssignmentRef) -> ApiResult<()> {
        if let Some(instance) = &r.resource_instance {
            return self.unassign_instance_role(r, instance);
        }
        let ids = self.resolve(r)?;
        let Some(idx) = self.assignments.position_of_key(&ids) else {
            return Err(ApiError::NotFound(format!(
                "The role '{}' is not assigned to user '{}' in tenant '{}'",
                r.role,
                r.user,
                r.tenant.as_deref().unwrap_or(DEFAULT_TENANT)
            )));
        };
        let id = self.assignments.at(idx).id;
        self.remove_assignment_by_id(id);
        self.touch();
        Ok(())
    }

    /// Bulk assign: already-present assignments are skipped; returns how many were created.
    /// A missing role or tenant fails the whole call (404); a missing user depends on `policy`.
    pub fn bulk_assign(
        &mut self,
        refs: &[AssignmentRef],
        policy: MissingUserPolicy,
    ) -> ApiResult<usize> {
        let mut new_users = Vec::new();
        for r in refs {
            if self.users.find(&r.user).is_none() {
                match policy {
                    MissingUserPolicy::Fail => return Err(ApiError::not_found("user", &r.user)),
                    MissingUserPolicy::Ignore => continue,
                    MissingUserPolicy::Create => new_users.push(r.user.clone()),
                }
            }
            if r.resource_instance.is_some() {
                continue; // checked below, once the missing users exist
            }
            let tenant = r.tenant.as_deref().unwrap_or(DEFAULT_TENANT);
            if self.roles.find(&r.role).is_none() {
                return Err(ApiError::not_found("role", &r.role));
            }
            if self.tenants.find(tenant).is_none() {
                return Err(ApiError::not_found("tenant", tenant));
            }
        }
        // Instance roles: all checked before any user or instance is created.
        let mut pending = HashMap::new();
        for r in refs {
            if let Some(instance) = &r.resource_instance
                && !(policy == MissingUserPolicy::Ignore && self.users.find(&r.user).is_none())
            {
                let _checked = self.instance_role_target(r, instance, &mut pending)?;
            }
        }
        for key in new_users {
            if self.users.find(&key).is_none() {
                self.insert_user(UserInput {
                    key,
                    ..Default::default()
                });
            }
        }
        let mut created = 0;
        for r in refs {
            if let Some(instance) = &r.resource_instance {
                if let Ok(p) = self.plan_instance_role(r, instance, &mut HashMap::new())
                    && self.apply_instance_role(&p)
                {
                    created += 1;
                }
                continue;
            }
            let Ok(ids) = self.resolve(r) else { continue };
            if self.assignments.position_of_key(&ids).is_none() {
                self.insert_assignment(ids);
                created += 1;
            }
        }
        self.touch();
        Ok(created)
    }

    /// Bulk unassign: missing assignments are skipped; returns how many were removed.
    pub fn bulk_unassign(&mut self, refs: &[AssignmentRef]) -> usize {
        let mut removed = 0;
        for r in refs {
            if let Some(instance) = &r.resource_instance {
                if self.bulk_unassign_instance_role(r, instance) {
                    removed += 1;
                }
                continue;
            }
            let Ok(ids) = self.resolve(r) else { continue };
            if let Some(idx) = self.assignments.position_of_key(&ids) {
                let id = self.assignments.at(idx).id;
                self.remove_assignment_by_id(id);
                removed += 1;
            }
        }
        self.touch();
        removed
    }

    /// Lists assignments: the tenant roles, then the instance roles (`resource` and
    /// `resource_instance` select instance roles only: Permit's "only roles granted on instances
    /// of this resource type", permit 3.0.0 `RoleAssignmentsApi.list`).
    pub fn list_assignments(
        &self,
        filter: &AssignmentFilter,
        page: Page,
    ) -> (Vec<Listed<'_>>, usize) {
        let instance_only = filter.resource.is_some() || filter.resource_instance.is_some();
        let (tenant_rows, tenant_total) = if instance_only {
            (Vec::new(), 0)
        } else {
            self.list_tenant_assignments(filter, page)
        };
        let instance_rows = self.instance_assignments_matching(filter);
        let total = tenant_total + instance_rows.len();
        let mut rows: Vec<Listed> = tenant_rows.into_iter().map(Listed::Tenant).collect();
        // The instance rows continue where the tenant rows end.
        let start = page.offset().saturating_sub(tenant_total);
        let want = page.per_page - rows.len();
        rows.extend(
            instance_rows
                .into_iter()
                .skip(start)
                .take(want)
                .map(Listed::Instance),
        );
        (rows, total)
    }

    /// Lists tenant role assignments. With one filter value the page is a slice of that value's
    /// index; with several, the smallest index is scanned, so the cost follows the matches.
    fn list_tenant_assignments(
        &self,
        filter: &AssignmentFilter,
        page: Page,
    ) -> (Vec<&Assignment>, usize) {
        if filter.users.is_empty() && filter.roles.is_empty() && filter.tenants.is_empty() {
            return (
                page.slice(self.assignments.rows()).iter().collect(),
                self.assignments.len(),
            );
        }
        // Distinct ids: a value repeated in the query must not repeat its matches.
        fn distinct(ids: impl Iterator<Item = Uuid>) -> Vec<Uuid> {
            let mut seen = HashSet::new();
            ids.filter(|id| seen.insert(*id)).collect()
        }
        let users = distinct(
            filter
                .users
                .iter()
                .filter_map(|u| self.users.get(u).map(|u| u.id)),
        );
        let roles = distinct(
            filter
                .roles
                .iter()
                .filter_map(|r| self.roles.get(r).map(|r| r.id)),
        );
        let tenants = distinct(
            filter
                .tenants
                .iter()
                .filter_map(|t| self.tenants.get(t).map(|t| t.id)),
        );
        let dims = [
            (&filter.users, &users, &self.by_user),
            (&filter.roles, &roles, &self.by_role),
            (&filter.tenants, &tenants, &self.by_tenant),
        ];
        // A filter whose values all name nothing matches nothing.
        if dims
            .iter()
            .any(|(asked, found, _)| !asked.is_empty() && found.is_empty())
        {
            return (Vec::new(), 0);
        }
        let size = |ids: &Vec<Uuid>, index: &HashMap<Uuid, IdSet>| -> usize {
            ids.iter()
                .map(|id| index.get(id).map_or(0, IdSet::len))
                .sum()
        };
        let (_, driver_ids, driver_index) = dims
            .iter()
            .filter(|(asked, _, _)| !asked.is_empty())
            .min_by_key(|(_, ids, index)| size(ids, index))
            .copied()
            .expect("at least one filter is set");
        let active = dims
            .iter()
            .filter(|(asked, _, _)| !asked.is_empty())
            .count();
        if active == 1 && driver_ids.len() == 1 {
            let set = driver_index
                .get(&driver_ids[0])
                .map(IdSet::as_slice)
                .unwrap_or_default();
            let rows = page
                .slice(set)
                .iter()
                .filter_map(|id| self.assignments.get_by_id(*id))
                .collect();
            return (rows, set.len());
        }
        let matches: Vec<&Assignment> = driver_ids
            .iter()
            .flat_map(|id| {
                driver_index
                    .get(id)
                    .map(IdSet::as_slice)
                    .unwrap_or_default()
            })
            .filter_map(|aid| self.assignments.get_by_id(*aid))
            .filter(|a| users.is_empty() || users.contains(&a.user_id))
            .filter(|a| roles.is_empty() || roles.contains(&a.role_id))
            .filter(|a| tenants.is_empty() || tenants.contains(&a.tenant_id))
            .collect();
        let total = matches.len();
        (page.slice(&matches).to_vec(), total)
    }
}
