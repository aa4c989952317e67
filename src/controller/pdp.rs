//! `PermitPDP` objects → [`crate::pdp::reconcile`], on kube's `Controller` with `.owns(Deployment)`
//! so a Deployment's status change reconciles its PDP at once. The finalizer only drops the PDP's
//! metric series: its Deployment, Service and PDB go with the garbage collector (ownerReferences).

use super::batch::FINALIZER;
use crate::kinds::PermitPDP;
use futures::StreamExt;
use k8s_openapi::api::apps::v1::Deployment;
use kube::api::Api;
use kube::core::DeserializeGuard;
use kube::runtime::controller::{Action, Controller};
use kube::runtime::finalizer::{Event, finalizer};
use kube::runtime::watcher;
use kube::{Client, ResourceExt};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

struct Ctx {
    client: Client,
    pdp: crate::pdp::Context,
}

#[derive(Debug, thiserror::Error)]
enum Error {
    #[error(transparent)]
    Finalizer(#[from] Box<kube::runtime::finalizer::Error<crate::pdp::Error>>),
}

/// Runs until `shutdown`; one controller per watched namespace (or one for all).
pub async fn run(
    client: Client,
    namespaces: Vec<String>,
    api_url: Option<String>,
    shutdown: CancellationToken,
) {
    let ctx = Arc::new(Ctx {
        pdp: crate::pdp::Context::new(
            client.clone(),
            api_url,
            crate::metrics::global().pdp.clone(),
        ),
        client: client.clone(),
    });
    let scopes: Vec<Option<String>> = if namespaces.is_empty() {
        vec![None]
    } else {
        namespaces.into_iter().map(Some).collect()
    };
    let controllers = scopes.into_iter().map(|ns| {
        let (pdps, deployments): (Api<DeserializeGuard<PermitPDP>>, Api<Deployment>) = match &ns {
            None => (Api::all(client.clone()), Api::all(client.clone())),
            Some(ns) => (
                Api::namespaced(client.clone(), ns),
                Api::namespaced(client.clone(), ns),
            ),
        };
        Controller::new(pdps, watcher::Config::default())
            .owns(deployments, watcher::Config::default())
            .graceful_shutdown_on(shutdown.clone().cancelled_owned())
            .run(reconcile, error_policy, ctx.clone())
            .for_each(|r| async move {
                if let Err(e) = r {
                    tracing::debug!(error = %e, "PermitPDP reconcile");
                }
            })
    });
    futures::future::join_all(controllers).await;
}

async fn reconcile(
    guard: Arc<DeserializeGuard<PermitPDP>>,
    ctx: Arc<Ctx>,
) -> Result<Action, Error> {
    let pdp = match &guard.0 {
        Ok(p) => Arc::new(p.clone()),
        Err(invalid) => {
            // Malformed: reported and left alone; the other PDPs go on.
            tracing::warn!(
                object = %format!("{}/{}", invalid.metadata.namespace.as_deref().unwrap_or(""),
                    invalid.metadata.name.as_deref().unwrap_or("")),
                error = %invalid.error, "PermitPDP cannot be read");
            return Ok(Action::await_change());
        }
    };
    let api: Api<PermitPDP> =
        Api::namespaced(ctx.client.clone(), &pdp.namespace().unwrap_or_default());
    finalizer(&api, FINALIZER, pdp, |event| async {
        match event {
            Event::Apply(p) => crate::pdp::reconcile(&ctx.client, &p, &ctx.pdp).await,
            Event::Cleanup(p) => {
                crate::pdp::forget(&p, &ctx.pdp);
                Ok(Action::await_change())
            }
        }
    })
    .await
    .map_err(|e| Error::Finalizer(Box::new(e)))
}

fn error_policy(guard: Arc<DeserializeGuard<PermitPDP>>, error: &Error, _: Arc<Ctx>) -> Action {
    let name = match &guard.0 {
        Ok(p) => format!("{}/{}", p.namespace().unwrap_or_default(), p.name_any()),
        Err(i) => i.metadata.name.clone().unwrap_or_default(),
    };
    tracing::warn!(object = %name, error = %error, "PermitPDP reconcile failed; retrying");
    Action::requeue(Duration::from_secs(10))
}
