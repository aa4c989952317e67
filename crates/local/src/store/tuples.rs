//! Relationship tuples `(subject, relation, object)` between instances of one tenant
//! (permit-python `permit/api/relationship_tuples.py`: create `{subject, relation, object,
//! tenant?}` where "tenant is … optional if at least one of subject/object already exists" and
//! "subject and object must both be resource instances *in the same tenant*"; delete `{subject,
//! relation, object}`; bulk create `{operations}`, bulk delete `{idents}`). A tuple naming an
//! instance that does not exist creates it in the tuple's tenant (Permit's docs,
//! `overview/sync-applications-data.mdx`, via permit-model.md §3.2).

use super::*;
use serde_json::Value;

/// A tuple checked against the store, before anything is written.
struct Planned {
    subject: (String, String),
    relation: String,
    object: (String, String),
    tenant_id: Uuid,
}

/// Instances a batch creates implicitly, with their tenant.
type Pending = HashMap<(String, String), Uuid>;

impl Store {
    pub(super) fn index_tuple(&mut self, t: &Tuple) {
        self.tuples_by_subject
            .entry(t.subject_id)
            .or_default()
            .insert(t.id);
        self.tuples_by_object
            .entry(t.object_id)
            .or_default()
            .insert(t.id);
    }

    pub(super) fn remove_tuple_by_id(&mut self, id: Uuid) {
        let Some(idx) = self.tuples.position_of_id(id) else {
            return;
        };
        let t = self.tuples.remove_at(idx);
        unindex(&mut self.tuples_by_subject, t.subject_id, t.id);
        unindex(&mut self.tuples_by_object, t.object_id, t.id);
    }

    /// `type:key` → (resource key, key), the type existing (404); malformed is a 422 at `loc`.
    fn instance_ref(&self, text: &str, field: &str) -> ApiResult<(String, String)> {
        if let Ok(id) = Uuid::parse_str(text)
            && let Some(i) = self.instances.get_by_id(id)
        {
            return Ok(i.key());
        }
        let Some((resource, key)) = text
            .split_once(':')
            .filter(|(r, k)| !r.is_empty() && !k.is_empty())
        else {
            return Err(ApiError::validation(
                vec!["body".into(), field.into()],
                format!(
                    "'{text}' is not a resource instance: expected 'resource_type:instance_key'"
                ),
                "value_error",
            ));
        };
        Ok((self.resource_key(resource)?, key.to_string()))
    }

    /// Checks one tuple: the relation exists on the object's type with the subject's type as its
    /// subject (404 / 400); the tenant is the existing instances' (or the one given), the same for
    /// both (400 `MISMATCH_RESOURCE_INSTANCES_TENANTS`); a missing instance needs a tenant (422).
    fn plan_tuple(&self, r: &TupleRef, loc: &[Value], pending: &mut Pending) -> ApiResult<Planned> {
        let subject = self.instance_ref(&r.subject, "subject")?;
        let object = self.instance_ref(&r.object, "object")?;
        let relation = self.relation(&object.0, &r.relation)?;
        if relation.subject_resource != subject.0 {
            return Err(ApiError::BadRequest(
                "INVALID_INPUT",
                format!(
                    "Relation '{}' of '{}' has subjects of type '{}', not '{}'",
                    relation.key, object.0, relation.subject_resource, subject.0
                ),
            ));
        }
        let relation = relation.key.clone();
        let given = match &r.tenant {
            Some(t) => Some(
                self.tenants
                    .get(t)
                    .ok_or_else(|| ApiError::not_found("tenant", t))?
                    .id,
            ),
            None => None,
        };
        let tenant_of = |k: &(String, String)| {
            self.instances
                .position_of_key(k)
                .map(|i| self.instances.at(i).tenant_id)
                .or_else(|| pending.get(k).copied())
        };
        let known = [tenant_of(&subject), tenant_of(&object)];
        let mut tenant = given;
        for ((side, k), t) in [("subject", &subject), ("object", &object)]
            .into_iter()
            .zip(known)
        {
            if let Some(t) = t {
                match tenant {
                    Some(want) if want != t => {
                        return Err(ApiError::BadRequest(
                            "MISMATCH_RESOURCE_INSTANCES_TENANTS",
                            format!(
                                "The {side} '{}:{}' of the tuple is in another tenant than the tuple",
                                k.0, k.1
                            ),
                        ));
                    }
                    _ => tenant = Some(t),
                }
            }
        }
        let Some(tenant_id) = tenant else {
            let mut at = loc.to_vec();
            at.push("tenant".into());
            return Err(ApiError::validation(
                at,
                "field required: neither the subject nor the object exists yet",
                "value_error.missing",
            ));
        };
        for (k, t) in [&subject, &object].into_iter().zip(known) {
            if t.is_none() {
                pending.insert(k.clone(), tenant_id);
            }
        }
        Ok(Planned {
            subject,
            relation,
            object,
            tenant_id,
        })
    }

    /// The instance `k`, created in `tenant_id` when missing.
    fn ensure_instance(&mut self, k: &(String, String), tenant_id: Uuid) -> Uuid {
        match self.instances.position_of_key(k) {
            Some(idx) => self.instances.at(idx).id,
            None => {
                let idx = self.insert_instance(k.0.clone(), k.1.clone(), tenant_id, None);
                self.instances.at(idx).id
            }
        }
    }

    fn existing_tuple(&self, p: &Planned) -> Option<usize> {
        let s = self.instances.position_of_key(&p.subject)?;
        let o = self.instances.position_of_key(&p.object)?;
        self.tuples.position_of_key(&(
            self.instances.at(s).id,
            p.relation.clone(),
            self.instances.at(o).id,
        ))
    }

    fn insert_planned(&mut self, p: Planned) -> usize {
        let subject_id = self.ensure_instance(&p.subject, p.tenant_id);
        let object_id = self.ensure_instance(&p.object, p.tenant_id);
        let t = Tuple {
            id: Uuid::new_v4(),
            subject_id,
            relation: p.relation,
            object_id,
            tenant_id: p.tenant_id,
            created_at: now(),
        };
        self.index_tuple(&t);
        self.tuples.insert(t)
    }

    fn duplicate_tuple(r: &TupleRef) -> ApiError {
        ApiError::Duplicate(format!(
            "The relationship tuple ({}, {}, {}) already exists",
            r.subject, r.relation, r.object
        ))
    }

    /// `POST relationship_tuples`: 409 when the tuple exists.
    pub fn create_tuple(&mut self, r: &TupleRef) -> ApiResult<&Tuple> {
        let planned = self.plan_tuple(r, &["body".into()], &mut Pending::new())?;
        if self.existing_tuple(&planned).is_some() {
            return Err(Self::duplicate_tuple(r));
        }
        let idx = self.insert_planned(planned);
        self.touch();
        Ok(self.tuples.at(idx))
    }

    /// `POST relationship_tuples/bulk`: all or nothing, as the bulk creates of users and tenants:
    /// every tuple checked first, an existing one (or one given twice) a 409 (chosen, README).
    pub fn bulk_create_tuples(&mut self, refs: &[TupleRef]) -> ApiResult<()> {
        let mut pending = Pending::new();
        let mut planned = Vec::with_capacity(refs.len());
        let mut batch = HashSet::new();
        for (i, r) in refs.iter().enumerate() {
            let loc = [Value::from("body"), "operations".into(), i.into()];
            let p = self.plan_tuple(r, &loc, &mut pending)?;
            let identity = (p.subject.clone(), p.relation.clone(), p.object.clone());
            if self.existing_tuple(&p).is_some() || !batch.insert(identity) {
                return Err(Self::duplicate_tuple(r));
            }
            planned.push(p);
        }
        for p in planned {
            self.insert_planned(p);
        }
        self.touch();
        Ok(())
    }

    fn find_tuple(&self, r: &TupleRef) -> Option<usize> {
        let s = self.find_instance(&r.subject)?;
        let o = self.find_instance(&r.object)?;
        self.tuples.position_of_key(&(
            self.instances.at(s).id,
            r.relation.clone(),
            self.instances.at(o).id,
        ))
    }

    /// `DELETE relationship_tuples`: 404 when there is no such tuple.
    pub fn delete_tuple(&mut self, r: &TupleRef) -> ApiResult<()> {
        let idx = self.find_tuple(r).ok_or_else(|| {
            ApiError::NotFound(format!(
                "The relationship tuple ({}, {}, {}) does not exist",
                r.subject, r.relation, r.object
            ))
        })?;
        let id = self.tuples.at(idx).id;
        self.remove_tuple_by_id(id);
        self.touch();
        Ok(())
    }

    /// `DELETE relationship_tuples/bulk`: missing tuples are skipped.
    pub fn bulk_delete_tuples(&mut self, refs: &[TupleRef]) {
        for r in refs {
            if let Some(idx) = self.find_tuple(r) {
                let id = self.tuples.at(idx).id;
                self.remove_tuple_by_id(id);
            }
        }
        self.touch();
    }

    /// `GET relationship_tuples` with `subject`, `relation`, `object`, `tenant` filters; a subject
    /// or object filter reads its instance's index.
    pub fn list_tuples(&self, f: &TupleFilter, page: Page) -> (Vec<&Tuple>, usize) {
        if f.subject.is_none() && f.relation.is_none() && f.object.is_none() && f.tenant.is_none() {
            return (
                page.slice(self.tuples.rows()).iter().collect(),
                self.tuples.len(),
            );
        }
        let instance = |ident: &Option<String>| -> Result<Option<Uuid>, ()> {
            match ident {
                None => Ok(None),
                Some(i) => self
                    .find_instance(i)
                    .map(|idx| Some(self.instances.at(idx).id))
                    .ok_or(()),
            }
        };
        let (Ok(subject), Ok(object)) = (instance(&f.subject), instance(&f.object)) else {
            return (Vec::new(), 0);
        };
        let tenant = match &f.tenant {
            Some(t) => match self.tenants.get(t) {
                Some(t) => Some(t.id),
                None => return (Vec::new(), 0),
            },
            None => None,
        };
        let candidates: Vec<&Tuple> = match (subject, object) {
            (Some(s), _) => self.tuples_of(&self.tuples_by_subject, s),
            (None, Some(o)) => self.tuples_of(&self.tuples_by_object, o),
            (None, None) => self.tuples.rows().iter().collect(),
        };
        let all: Vec<&Tuple> = candidates
            .into_iter()
            .filter(|t| subject.is_none_or(|s| t.subject_id == s))
            .filter(|t| object.is_none_or(|o| t.object_id == o))
            .filter(|t| f.relation.as_ref().is_none_or(|r| t.relation == *r))
            .filter(|t| tenant.is_none_or(|id| t.tenant_id == id))
            .collect();
        let total = all.len();
        (page.slice(&all).to_vec(), total)
    }

    pub(super) fn tuples_of<'a>(
        &'a self,
        index: &HashMap<Uuid, IdSet>,
        id: Uuid,
    ) -> Vec<&'a Tuple> {
        index
            .get(&id)
            .map(IdSet::as_slice)
            .unwrap_or_default()
            .iter()
            .filter_map(|t| self.tuples.get_by_id(*t))
            .collect()
    }
}
