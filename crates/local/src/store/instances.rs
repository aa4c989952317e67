//! Resource instances: `resource:key` in one tenant, with attributes (permit-python
//! `permit/api/resource_instances.py`: `ResourceInstanceCreate {key, tenant, resource,
//! attributes}` with `tenant` required, `ResourceInstanceUpdate {attributes}`, bulk replace
//! `PUT bulk/resource_instances {operations}` and bulk delete `{idents: ["type:key" | id]}`).

use super::*;

impl Store {
    /// An instance by `type:key` (the type by key or id) or by its id.
    pub fn find_instance(&self, ident: &str) -> Option<usize> {
        if let Ok(id) = Uuid::parse_str(ident)
            && let Some(idx) = self.instances.position_of_id(id)
        {
            return Some(idx);
        }
        let (resource, key) = ident.split_once(':')?;
        let resource = self.resources.get(resource)?;
        self.instances
            .position_of_key(&(resource.key.clone(), key.to_string()))
    }

    pub fn instance(&self, ident: &str) -> ApiResult<&Instance> {
        self.find_instance(ident)
            .map(|i| self.instances.at(i))
            .ok_or_else(|| ApiError::not_found("resource instance", ident))
    }

    /// `type:key` of a stored instance.
    pub fn instance_name(i: &Instance) -> String {
        format!("{}:{}", i.resource, i.key)
    }

    pub(super) fn insert_instance(
        &mut self,
        resource: String,
        key: String,
        tenant_id: Uuid,
        attributes: Option<Attrs>,
    ) -> usize {
        let t = now();
        self.instances.insert(Instance {
            id: Uuid::new_v4(),
            resource,
            key,
            tenant_id,
            attributes,
            created_at: t,
            updated_at: t,
        })
    }

    /// Resolves an input's resource and tenant (404 each).
    fn instance_parts(&self, input: &InstanceInput) -> ApiResult<(String, Uuid)> {
        let resource = self.resource_key(&input.resource)?;
        let tenant = self
            .tenants
            .get(&input.tenant)
            .ok_or_else(|| ApiError::not_found("tenant", &input.tenant))?;
        Ok((resource, tenant.id))
    }

    /// `POST resource_instances`: 404 for a missing resource or tenant, 409 for an existing
    /// `type:key`.
    pub fn create_instance(&mut self, input: InstanceInput) -> ApiResult<&Instance> {
        let (resource, tenant_id) = self.instance_parts(&input)?;
        if self
            .instances
            .position_of_key(&(resource.clone(), input.key.clone()))
            .is_some()
        {
            return Err(ApiError::duplicate(
                "resource instance",
                &format!("{resource}:{}", input.key),
            ));
        }
        let idx = self.insert_instance(resource, input.key, tenant_id, input.attributes);
        self.touch();
        Ok(self.instances.at(idx))
    }

    /// `PATCH resource_instances/{id}`: a sent `attributes` replaces the map (`null` unsets).
    pub fn patch_instance(
        &mut self,
        ident: &str,
        attributes: Option<Option<Attrs>>,
    ) -> ApiResult<&Instance> {
        let idx = self
            .find_instance(ident)
            .ok_or_else(|| ApiError::not_found("resource instance", ident))?;
        let i = self.instances.at_mut(idx);
        if let Some(v) = attributes {
            i.attributes = v;
        }
        i.updated_at = now();
        self.touch();
        Ok(self.instances.at(idx))
    }

    /// Deletes an instance with its tuples (either side) and its instance role assignments
    /// (permit-api.md "Corrections": a bulk delete of instances removes their instance role
    /// assignments, tenant-level ones stay; the tuples go as the instance they name does).
    pub fn delete_instance(&mut self, ident: &str) -> ApiResult<()> {
        let idx = self
            .find_instance(ident)
            .ok_or_else(|| ApiError::not_found("resource instance", ident))?;
        self.remove_instance_at(idx);
        self.touch();
        Ok(())
    }

    pub(super) fn remove_instance_at(&mut self, idx: usize) {
        let instance = self.instances.remove_at(idx);
        let tuples: Vec<Uuid> = [&self.tuples_by_subject, &self.tuples_by_object]
            .iter()
            .filter_map(|index| index.get(&instance.id))
            .flat_map(|set| set.as_slice().to_vec())
            .collect();
        for id in tuples {
            self.remove_tuple_by_id(id);
        }
        if let Some(held) = self.ia_by_instance.remove(&instance.id) {
            for id in held.as_slice().to_vec() {
                self.remove_instance_assignment_by_id(id);
            }
        }
    }

    /// Removes every instance matching `gone` (a deleted resource's or tenant's).
    pub(super) fn remove_instances_where(&mut self, gone: impl Fn(&Instance) -> bool) {
        let ids: Vec<Uuid> = self
            .instances
            .rows()
            .iter()
            .filter(|i| gone(i))
            .map(|i| i.id)
            .collect();
        for id in ids {
            if let Some(idx) = self.instances.position_of_id(id) {
                self.remove_instance_at(idx);
            }
        }
    }

    /// `PUT bulk/resource_instances`: creates or replaces each (all checked first: a missing
    /// resource or tenant fails the call with 404). Replacing keeps an instance's tuples and
    /// assignments; moving one to another tenant is refused (400), as its tuples and
    /// assignments live in its tenant (chosen, README).
    pub fn bulk_upsert_instances(&mut self, inputs: Vec<InstanceInput>) -> ApiResult<()> {
        let mut parts = Vec::with_capacity(inputs.len());
        let mut batch: HashMap<(String, String), Uuid> = HashMap::new();
        for input in &inputs {
            let (resource, tenant_id) = self.instance_parts(input)?;
            let named = (resource.clone(), input.key.clone());
            let before = self
                .instances
                .position_of_key(&named)
                .map(|idx| self.instances.at(idx).tenant_id)
                .or_else(|| batch.get(&named).copied());
            batch.insert(named, tenant_id);
            if before.is_some_and(|t| t != tenant_id) {
                return Err(ApiError::BadRequest(
                    "MISMATCH_RESOURCE_INSTANCES_TENANTS",
                    format!(
                        "Resource instance '{resource}:{}' is in another tenant than '{}'; \
                         delete it to move it",
                        input.key, input.tenant
                    ),
                ));
            }
            parts.push((resource, tenant_id));
        }
        for (input, (resource, tenant_id)) in inputs.into_iter().zip(parts) {
            match self
                .instances
                .position_of_key(&(resource.clone(), input.key.clone()))
            {
                Some(idx) => {
                    let i = self.instances.at_mut(idx);
                    i.attributes = input.attributes;
                    i.updated_at = now();
                }
                None => {
                    self.insert_instance(resource, input.key, tenant_id, input.attributes);
                }
            }
        }
        self.touch();
        Ok(())
    }

    /// `DELETE bulk/resource_instances`: deletes those that exist (with their tuples and
    /// assignments), skips the others.
    pub fn bulk_delete_instances(&mut self, idents: &[String]) {
        for ident in idents {
            if let Some(idx) = self.find_instance(ident) {
                self.remove_instance_at(idx);
            }
        }
        self.touch();
    }

    pub fn list_instances(&self, f: &InstanceFilter, page: Page) -> (Vec<&Instance>, usize) {
        if f.tenant.is_none() && f.resource.is_none() && f.search.is_none() {
            return (
                page.slice(self.instances.rows()).iter().collect(),
                self.instances.len(),
            );
        }
        let tenant = match &f.tenant {
            Some(t) => match self.tenants.get(t) {
                Some(t) => Some(t.id),
                None => return (Vec::new(), 0),
            },
            None => None,
        };
        let resource = match &f.resource {
            Some(r) => match self.resources.get(r) {
                Some(r) => Some(r.key.as_str()),
                None => return (Vec::new(), 0),
            },
            None => None,
        };
        let all: Vec<&Instance> = self
            .instances
            .rows()
            .iter()
            .filter(|i| tenant.is_none_or(|t| i.tenant_id == t))
            .filter(|i| resource.is_none_or(|r| i.resource == r))
            .filter(|i| f.search.as_ref().is_none_or(|s| i.key.contains(s.as_str())))
            .collect();
        let total = all.len();
        (page.slice(&all).to_vec(), total)
    }

    /// Loads the ReBAC rows of a snapshot (after resources, tenants, users), dropping rows whose
    /// resource, tenant, instance, user or role is gone.
    pub(super) fn load_rebac(
        &mut self,
        roles: Vec<ResourceRole>,
        relations: Vec<Relation>,
        instances: Vec<Instance>,
        tuples: Vec<Tuple>,
        assignments: Vec<InstanceAssignment>,
    ) {
        let has = |s: &Store, r: &str| s.resources.find(r).is_some();
        for r in roles {
            if has(self, &r.resource) && self.resource_roles.position_of_key(&r.key()).is_none() {
                self.resource_roles.insert(r);
            }
        }
        for r in relations {
            if has(self, &r.object_resource)
                && has(self, &r.subject_resource)
                && self.relations.position_of_key(&r.key()).is_none()
            {
                self.relations.insert(r);
            }
        }
        for i in instances {
            if has(self, &i.resource)
                && self.tenants.get_by_id(i.tenant_id).is_some()
                && self.instances.position_of_key(&i.key()).is_none()
            {
                self.instances.insert(i);
            }
        }
        for t in tuples {
            let live = self.instances.get_by_id(t.subject_id).is_some()
                && self.instances.get_by_id(t.object_id).is_some();
            if live && self.tuples.position_of_key(&t.key()).is_none() {
                self.index_tuple(&t);
                self.tuples.insert(t);
            }
        }
        for a in assignments {
            let live = self.users.get_by_id(a.user_id).is_some()
                && self.resource_roles.get_by_id(a.role_id).is_some()
                && self.instances.get_by_id(a.instance_id).is_some();
            if live
                && self
                    .instance_assignments
                    .position_of_key(&a.key())
                    .is_none()
            {
                self.index_instance_assignment(&a);
                self.instance_assignments.insert(a);
            }
        }
    }
}
