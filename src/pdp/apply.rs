//! Server-side apply of a `PermitPDP`'s children, with our field manager and `force` (the
//! `PermitPDP` is the source of truth for the fields we set; others' fields are left alone).

use super::Error;
use super::render::{Children, FIELD_MANAGER};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::api::{Api, DeleteParams, Patch, PatchParams};
use kube::{Client, Resource};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::fmt::Debug;

fn params() -> PatchParams {
    PatchParams::apply(FIELD_MANAGER).force()
}

async fn apply_one<K>(client: &Client, ns: &str, object: &str, child: &K) -> Result<K, Error>
where
    K: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
        + Serialize
        + DeserializeOwned
        + Clone
        + Debug,
{
    let name = child.meta().name.clone().unwrap_or_default();
    let uid = owner_uid(child.meta());
    // A forced apply would take over an object someone else made under the same name.
    if ownership::<K>(client, ns, &name, &uid, object).await? == Found::Foreign {
        return Err(Error::NotOwned {
            object: object.to_string(),
            child: format!("{} {ns}/{name}", K::kind(&())),
        });
    }
    Api::<K>::namespaced(client.clone(), ns)
        .patch(&name, &params(), &Patch::Apply(child))
        .await
        .map_err(|source| Error::Kube {
            object: object.to_string(),
            action: format!("applying {} {ns}/{name}", K::kind(&())),
            source,
        })
}

/// Deletes a child if it exists; gone already is success.
pub async fn delete_if_present<K>(
    client: &Client,
    ns: &str,
    name: &str,
    object: &str,
) -> Result<(), Error>
where
    K: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
        + DeserializeOwned
        + Clone
        + Debug,
{
    match Api::<K>::namespaced(client.clone(), ns)
        .delete(name, &DeleteParams::default())
        .await
    {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
        Err(source) => Err(Error::Kube {
            object: object.to_string(),
            action: format!("deleting {} {ns}/{name}", K::kind(&())),
            source,
        }),
    }
}

fn owner_uid(meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta) -> String {
    meta.owner_references
        .iter()
        .flatten()
        .find(|o| o.controller == Some(true))
        .map(|o| o.uid.clone())
        .unwrap_or_default()
}

/// The Deployment as the apiserver returned it after the apply (with its status).
pub struct Applied {
    pub deployment: Deployment,
}

/// Applies the Deployment, the Service and the PodDisruptionBudget; deletes the PDB when the
/// children no longer include one (replicas dropped to 1 or fewer).
pub async fn apply(
    client: &Client,
    ns: &str,
    object: &str,
    children: &Children,
) -> Result<Applied, Error> {
    let deployment = apply_one(client, ns, object, &children.deployment).await?;
    apply_one(client, ns, object, &children.service).await?;
    let name = children
        .deployment
        .metadata
        .name
        .clone()
        .unwrap_or_default();
    match &children.pdb {
        Some(pdb) => {
            apply_one(client, ns, object, pdb).await?;
        }
        None => {
            let uid = owner_uid(&children.deployment.metadata);
            delete_if_owned::<PodDisruptionBudget>(client, ns, &name, &uid, object).await?
        }
    }
    Ok(Applied { deployment })
}

#[derive(Debug, PartialEq, Eq)]
enum Found {
    Missing,
    Ours,
    Foreign,
}

/// Whether the child exists and whether this `PermitPDP` (by uid) controls it.
async fn ownership<K>(
    client: &Client,
    ns: &str,
    name: &str,
    uid: &str,
    object: &str,
) -> Result<Found, Error>
where
    K: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
        + DeserializeOwned
        + Clone
        + Debug,
{
    let found = Api::<K>::namespaced(client.clone(), ns)
        .get_opt(name)
        .await
        .map_err(|source| Error::Kube {
            object: object.to_string(),
            action: format!("reading {} {ns}/{name}", K::kind(&())),
            source,
        })?;
    Ok(match found {
        None => Found::Missing,
        Some(child)
            if child
                .meta()
                .owner_references
                .iter()
                .flatten()
                .any(|o| o.uid == uid && o.controller == Some(true)) =>
        {
            Found::Ours
        }
        Some(_) => Found::Foreign,
    })
}

/// Deletes a child only when this `PermitPDP` controls it (never someone else's object).
async fn delete_if_owned<K>(
    client: &Client,
    ns: &str,
    name: &str,
    uid: &str,
    object: &str,
) -> Result<(), Error>
where
    K: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
        + DeserializeOwned
        + Clone
        + Debug,
{
    if ownership::<K>(client, ns, name, uid, object).await? == Found::Ours {
        delete_if_present::<K>(client, ns, name, object).await?;
    }
    Ok(())
}

/// Removes the children this `PermitPDP` deployed (it now points at an external PDP, `spec.url`).
pub async fn remove_owned(
    client: &Client,
    ns: &str,
    name: &str,
    uid: Option<&str>,
    object: &str,
) -> Result<(), Error> {
    let Some(uid) = uid else { return Ok(()) };
    delete_if_owned::<PodDisruptionBudget>(client, ns, name, uid, object).await?;
    delete_if_owned::<Service>(client, ns, name, uid, object).await?;
    delete_if_owned::<Deployment>(client, ns, name, uid, object).await
}
