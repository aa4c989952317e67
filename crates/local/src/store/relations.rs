//! Relations: an object resource's named link to a subject resource (`Comment.parent → Post`).
//! No update (permit-python `permit/api/resource_relations.py` has list, get, create, delete).

use super::*;

impl Store {
    fn find_relation(&self, object_resource: &str, relation: &str) -> Option<usize> {
        let object = self.resources.get(object_resource)?;
        self.relations
            .position_of_key(&(object.key.clone(), relation.to_string()))
            .or_else(|| {
                let idx = self
                    .relations
                    .position_of_id(Uuid::parse_str(relation).ok()?)?;
                (self.relations.at(idx).object_resource == object.key).then_some(idx)
            })
    }

    /// A relation of `object_resource` by key or id: 404 for a missing resource or relation.
    pub fn relation(&self, object_resource: &str, relation: &str) -> ApiResult<&Relation> {
        let object = self.resource_key(object_resource)?;
        self.find_relation(object_resource, relation)
            .map(|i| self.relations.at(i))
            .ok_or_else(|| ApiError::not_found("relation", &format!("{object}:{relation}")))
    }

    /// The relations of one resource (as the object), in creation order.
    pub fn relations_of(&self, object_resource: &str) -> Vec<&Relation> {
        self.relations
            .rows()
            .iter()
            .filter(|r| r.object_resource == object_resource)
            .collect()
    }

    /// `POST resources/{object}/relations`: both resources must exist (404); a key the object
    /// resource has already is a 409.
    pub fn create_relation(
        &mut self,
        object_resource: &str,
        input: RelationInput,
    ) -> ApiResult<&Relation> {
        let object = self.resource_key(object_resource)?;
        let subject = self.resource_key(&input.subject_resource)?;
        if self
            .relations
            .position_of_key(&(object.clone(), input.key.clone()))
            .is_some()
        {
            return Err(ApiError::duplicate(
                "relation",
                &format!("{object}:{}", input.key),
            ));
        }
        let t = now();
        let idx = self.relations.insert(Relation {
            id: Uuid::new_v4(),
            object_resource: object,
            key: input.key,
            name: input.name,
            description: input.description,
            subject_resource: subject,
            created_at: t,
            updated_at: t,
        });
        self.touch();
        Ok(self.relations.at(idx))
    }

    /// Deletes a relation with the tuples of it and the derivations that follow it (what it
    /// links is gone; Permit does not document the cascade: chosen, README).
    pub fn delete_relation(&mut self, object_resource: &str, relation: &str) -> ApiResult<()> {
        let object = self.resource_key(object_resource)?;
        let idx = self
            .find_relation(object_resource, relation)
            .ok_or_else(|| ApiError::not_found("relation", &format!("{object}:{relation}")))?;
        self.remove_relation_at(idx);
        self.touch();
        Ok(())
    }

    pub(super) fn remove_relation_at(&mut self, idx: usize) {
        let rel = self.relations.remove_at(idx);
        let gone: Vec<Uuid> = self
            .tuples
            .rows()
            .iter()
            .filter(|t| {
                t.relation == rel.key
                    && self
                        .instances
                        .get_by_id(t.object_id)
                        .is_some_and(|o| o.resource == rel.object_resource)
            })
            .map(|t| t.id)
            .collect();
        for id in gone {
            self.remove_tuple_by_id(id);
        }
        for i in 0..self.resource_roles.len() {
            let r = self.resource_roles.at_mut(i);
            if r.resource == rel.object_resource {
                r.granted_to.retain(|g| g.linked_by_relation != rel.key);
            }
        }
    }
}
