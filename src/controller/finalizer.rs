//! Adding and removing the finalizer, and writing status, on any of the synced kinds (as dynamic
//! objects, so a resource that does not deserialise can still be patched).

use super::batch::FINALIZER;
use super::sources::Cr;
use crate::kinds::{
    Kind, PermitPDP, PermitRelationshipTuple, PermitResource, PermitResourceInstance, PermitRole,
    PermitTenant, PermitUser, RoleAssignment, SyncStatus,
};
use kube::Client;
use kube::api::{Api, ApiResource, DynamicObject, Patch, PatchParams};
use serde_json::json;

/// The custom resource of a manifest kind (a resource's parts are its `PermitResource`'s).
pub fn api_resource(kind: Kind) -> ApiResource {
    match kind {
        Kind::PermitResource
        | Kind::ResourceRelation
        | Kind::ResourceRole
        | Kind::RoleDerivation => ApiResource::erase::<PermitResource>(&()),
        Kind::PermitResourceInstance => ApiResource::erase::<PermitResourceInstance>(&()),
        Kind::PermitRelationshipTuple => ApiResource::erase::<PermitRelationshipTuple>(&()),
        Kind::PermitRole => ApiResource::erase::<PermitRole>(&()),
        Kind::PermitTenant => ApiResource::erase::<PermitTenant>(&()),
        Kind::PermitUser => ApiResource::erase::<PermitUser>(&()),
        Kind::RoleAssignment => ApiResource::erase::<RoleAssignment>(&()),
        Kind::PermitPDP => ApiResource::erase::<PermitPDP>(&()),
    }
}

fn api(client: &Client, cr: &Cr) -> Api<DynamicObject> {
    Api::namespaced_with(client.clone(), cr.namespace(), &api_resource(cr.kind))
}

/// An error of a write, naming the resource.
#[derive(Debug, thiserror::Error)]
#[error("{object}: {action}: {source}")]
pub struct WriteError {
    pub object: String,
    pub action: &'static str,
    #[source]
    pub source: kube::Error,
}

impl WriteError {
    /// 403: the ServiceAccount lacks a permission (the chart's RBAC was changed).
    pub fn forbidden(&self) -> bool {
        matches!(&self.source, kube::Error::Api(s) if s.code == 403)
    }

    pub fn conflict(&self) -> bool {
        matches!(&self.source, kube::Error::Api(s) if s.code == 409)
    }
}

/// Merge patches carry the `resourceVersion` we saw: a concurrent change makes them fail with 409
/// (and the next batch sees the new list) instead of overwriting another writer's finalizers.
pub async fn add(client: &Client, cr: &Cr) -> Result<(), WriteError> {
    let mut list = cr.meta.finalizers.clone().unwrap_or_default();
    list.push(FINALIZER.to_string());
    send(client, cr, list, Change::Add).await
}

pub async fn remove(client: &Client, cr: &Cr) -> Result<(), WriteError> {
    let mut list = cr.meta.finalizers.clone().unwrap_or_default();
    list.retain(|f| f != FINALIZER);
    send(client, cr, list, Change::Remove).await
}

/// What a finalizer patch does: a removal that finds the object gone has nothing left to do.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Change {
    Add,
    Remove,
}

impl Change {
    fn action(self) -> &'static str {
        match self {
            Change::Add => "adding the finalizer",
            Change::Remove => "removing the finalizer",
        }
    }
}

async fn send(
    client: &Client,
    cr: &Cr,
    finalizers: Vec<String>,
    change: Change,
) -> Result<(), WriteError> {
    let patch = json!({"metadata": {
        "finalizers": finalizers,
        "resourceVersion": cr.meta.resource_version,
    }});
    match api(client, cr)
        .patch(cr.name(), &PatchParams::default(), &Patch::Merge(patch))
        .await
    {
        Ok(_) => Ok(()),
        // Gone already: the finalizer went with it.
        Err(kube::Error::Api(s)) if s.code == 404 && change == Change::Remove => Ok(()),
        Err(source) => Err(WriteError {
            object: cr.subject(),
            action: change.action(),
            source,
        }),
    }
}

pub async fn write_status(client: &Client, cr: &Cr, status: &SyncStatus) -> Result<(), WriteError> {
    api(client, cr)
        .patch_status(
            cr.name(),
            &PatchParams::default(),
            &Patch::Merge(json!({ "status": status })),
        )
        .await
        .map(drop)
        .map_err(|source| WriteError {
            object: cr.subject(),
            action: "writing status",
            source,
        })
}
