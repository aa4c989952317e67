//! Role derivations (Permit's implicit grants): single calls on the derived role, identity only.

use super::super::body;
use super::super::strategy::{Single, create};
use super::Adapter;
use crate::kinds::Kind;
use crate::model::{Derivation, Obj};
use crate::permit::{Call, PermitClient};
use crate::plan::Op;
use permit_api::endpoint as ep;

pub struct Derivations;

/// The derivation an op names: the desired one, else the live one (deletions).
fn derivation(op: &Op) -> Derivation {
    match op.desired.as_deref().or(op.live.as_deref()) {
        Some(Obj::Derivation(d)) => d.clone(),
        _ => parse(&op.key),
    }
}

/// A derivation from its key, `resource#role/onResource#role/relation`.
fn parse(key: &str) -> Derivation {
    let mut it = key.splitn(3, '/');
    let mut next = || it.next().unwrap_or_default().to_string();
    Derivation {
        role: next(),
        source: next(),
        relation: next(),
    }
}

impl Adapter for Derivations {
    fn kind(&self) -> Kind {
        Kind::RoleDerivation
    }

    fn label(&self) -> &'static str {
        "role derivations"
    }

    fn write<'a>(&'a self, client: &'a PermitClient, op: &'a Op) -> Single<'a> {
        Box::pin(async move {
            let d = derivation(op);
            let (resource, role) = Derivation::split(&d.role);
            let call = client
                .to(&ep::DERIVATION_CREATE, &[resource, role], op.subject())
                .body(body::derivation(&d));
            // One that exists already is as good as made.
            create(client, call).await.map(drop)
        })
    }

    fn delete(&self, client: &PermitClient, op: &Op) -> Call {
        let d = derivation(op);
        let (resource, role) = Derivation::split(&d.role);
        client
            .to(&ep::DERIVATION_DELETE, &[resource, role], op.subject())
            .body(body::derivation(&d))
    }
}
