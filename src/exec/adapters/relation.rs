//! Relations (`resource#relation`): single calls. Permit has no update for a relation, so a
//! changed subject is a delete and a create (the plan warns that the relation's tuples go).

use super::super::body;
use super::super::strategy::{Single, create};
use super::{Adapter, desired};
use crate::kinds::Kind;
use crate::model::Obj;
use crate::permit::{Call, PermitClient};
use crate::plan::{Action, Op};
use permit_api::endpoint as ep;

pub struct Relations;

fn parts(key: &str) -> (&str, &str) {
    key.split_once('#').unwrap_or(("", key))
}

impl Adapter for Relations {
    fn kind(&self) -> Kind {
        Kind::ResourceRelation
    }

    fn label(&self) -> &'static str {
        "relations"
    }

    fn write<'a>(&'a self, client: &'a PermitClient, op: &'a Op) -> Single<'a> {
        Box::pin(async move {
            let Obj::Relation(r) = desired(op) else {
                unreachable!("relation op")
            };
            if op.action == Action::Update {
                match client.call(self.delete(client, op)).await {
                    Err(e) if !e.is_not_found() => return Err(e),
                    _ => {}
                }
            }
            let call = client
                .to(&ep::RELATION_CREATE, &[&r.resource], op.subject())
                .body(body::relation_create(r));
            // One that exists already is as good as made (the next plan compares its subject).
            create(client, call).await.map(drop)
        })
    }

    fn delete(&self, client: &PermitClient, op: &Op) -> Call {
        let (resource, key) = parts(&op.key);
        client.to(&ep::RELATION_DELETE, &[resource, key], op.subject())
    }
}
