//! Monitoring one PDP: probe, conditions, status writes, events and metrics, for Kubernetes
//! (`reconcile_once` behind [`super::reconcile`], and the loop [`run`]) and directory mode
//! ([`observe_url`], [`watch_url`]).

use super::docker::{Container, Docker};
use super::probe::{self, ProbeResult};
use super::status::{self, AVAILABLE, HEALTHY, Transition};
use super::{Context, Error, apply, render};
use crate::kinds::PermitPDP;
use crate::kinds::pdp::{ContainerRuntime, PdpStatus};
use crate::metrics::PdpMetrics;
use chrono::Utc;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::events::{Event, EventType};
use kube::{Client, Resource, ResourceExt};
use serde_json::json;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// One pass over a `PermitPDP` in Kubernetes; returns the time until the next probe.
pub(crate) async fn reconcile_once(
    client: &Client,
    pdp: &PermitPDP,
    ctx: &Context,
) -> Result<Duration, Error> {
    let object = render::object_name(pdp);
    let ns = pdp.namespace().ok_or_else(|| Error::InvalidSpec {
        object: object.clone(),
        reason: "a PermitPDP in Kubernetes must be namespaced".into(),
    })?;
    let name = pdp.name_any();
    let generation = pdp.metadata.generation;

    let (available, ready) = if pdp.spec.url.is_some() {
        // An external PDP: nothing to deploy; remove what an earlier spec deployed.
        apply::remove_owned(client, &ns, &name, pdp.metadata.uid.as_deref(), &object).await?;
        (None, None)
    } else {
        match render::render(pdp, ctx.api_url.as_deref()) {
            Ok(children) => {
                let applied = match apply::apply(client, &ns, &object, &children).await {
                    Err(err @ Error::NotOwned { .. }) => {
                        let conditions = vec![
                            status::not_owned(&err.to_string(), generation),
                            status::healthy(None, generation),
                        ];
                        update_status(client, pdp, ctx, conditions, None, None).await?;
                        return Err(err);
                    }
                    other => other?,
                };
                let dep = applied.deployment;
                let ready = dep
                    .status
                    .as_ref()
                    .and_then(|s| s.ready_replicas)
                    .unwrap_or(0);
                let cond = status::available_from_deployment(Some(&dep), &object, generation);
                (Some(cond), Some(ready))
            }
            Err(err) => {
                let reason = err.to_string();
                let conditions = vec![
                    status::invalid_spec(&reason, generation),
                    status::healthy(None, generation),
                ];
                update_status(client, pdp, ctx, conditions, None, None).await?;
                return Err(Error::InvalidSpec { object, reason });
            }
        }
    };

    let result = probe::probe(&ctx.http, &probe::target(pdp)).await;
    ctx.metrics
        .observe(&super::labels(pdp), result.healthy(), result.latency);
    let available = available.unwrap_or_else(|| status::available_from_probe(&result, generation));
    let conditions = vec![available, status::healthy(Some(&result), generation)];
    update_status(client, pdp, ctx, conditions, ready, Some(&result)).await?;
    Ok(probe::interval(pdp))
}

async fn update_status(
    client: &Client,
    pdp: &PermitPDP,
    ctx: &Context,
    conditions: Vec<crate::kinds::Condition>,
    ready: Option<i32>,
    result: Option<&ProbeResult>,
) -> Result<(), Error> {
    let now = Utc::now();
    let old = pdp.status.as_ref();
    let new = status::desired(old, pdp.metadata.generation, ready, conditions, result, now);
    let object = render::object_name(pdp);
    if status::needs_write(old, &new, now) {
        let ns = pdp.namespace().unwrap_or_default();
        let body = json!({
            "apiVersion": PermitPDP::api_version(&()),
            "kind": PermitPDP::kind(&()),
            "status": new,
        });
        Api::<PermitPDP>::namespaced(client.clone(), &ns)
            .patch_status(
                &pdp.name_any(),
                &PatchParams::apply(render::FIELD_MANAGER).force(),
                &Patch::Apply(&body),
            )
            .await
            .map_err(|source| Error::Kube {
                object: object.clone(),
                action: "writing the status".into(),
                source,
            })?;
    }
    for t in status::transitions(old, &new) {
        log_transition(&object, &t);
        if let Some(event) = event_for(&t) {
            // An event that cannot be written must not fail the reconcile; the status has it.
            if let Err(err) = ctx.recorder.publish(&event, &pdp.object_ref(&())).await {
                tracing::warn!(pdp = %object, error = %err, "cannot publish an event");
            }
        }
    }
    Ok(())
}

/// The event for a transition: Normal when it became true, Warning when it became false.
pub fn event_for(t: &Transition) -> Option<Event> {
    let up = match t.to.status.as_str() {
        "True" => true,
        "False" => false,
        _ => return None,
    };
    let reason = match (t.type_.as_str(), up) {
        (HEALTHY, true) => "PdpHealthy",
        (HEALTHY, false) => "PdpUnhealthy",
        (AVAILABLE, true) => "PdpAvailable",
        (AVAILABLE, false) if t.to.reason.as_deref() == Some("InvalidSpec") => "InvalidSpec",
        (AVAILABLE, false) if t.to.reason.as_deref() == Some("NotOwned") => "NotOwned",
        (AVAILABLE, false) => "PdpUnavailable",
        _ => return None,
    };
    Some(Event {
        type_: if up {
            EventType::Normal
        } else {
            EventType::Warning
        },
        reason: reason.into(),
        note: t.to.message.clone(),
        action: if t.type_ == HEALTHY {
            "Probe"
        } else {
            "Deploy"
        }
        .into(),
        secondary: None,
    })
}

fn log_transition(object: &str, t: &Transition) {
    let message = t.to.message.as_deref().unwrap_or("");
    if t.to.status == "False" {
        tracing::warn!(pdp = %object, condition = %t.type_, status = %t.to.status, "{message}");
    } else {
        tracing::info!(pdp = %object, condition = %t.type_, status = %t.to.status, "{message}");
    }
}

/// Reconciles one `PermitPDP` until it is deleted or `cancel` fires (for callers without a
/// `Controller`; a controller calls [`super::reconcile`] instead).
pub async fn run(
    client: Client,
    namespace: String,
    name: String,
    ctx: Context,
    cancel: CancellationToken,
) {
    let api = Api::<PermitPDP>::namespaced(client.clone(), &namespace);
    loop {
        let wait = match api.get_opt(&name).await {
            Ok(Some(pdp)) => match reconcile_once(&client, &pdp, &ctx).await {
                Ok(next) => next,
                Err(err) => {
                    tracing::warn!(error = %err, "PDP reconcile failed");
                    probe::interval(&pdp)
                }
            },
            Ok(None) => {
                ctx.metrics.forget(&crate::metrics::PdpLabels {
                    namespace: namespace.clone(),
                    name: name.clone(),
                });
                return;
            }
            Err(err) => {
                tracing::warn!(pdp = %format!("{namespace}/{name}"), error = %err, "cannot read the PermitPDP");
                probe::DEFAULT_INTERVAL
            }
        };
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(wait) => {}
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Directory mode

/// What directory mode needs besides the manifest.
#[derive(Clone)]
pub struct WatchOptions {
    /// The environment API key, needed only to start a container.
    pub api_key: Option<String>,
    /// The Permit API in use; a non-default one becomes the container's control plane.
    pub api_url: Option<String>,
    pub docker: Docker,
    pub metrics: PdpMetrics,
    pub timeout: Duration,
}

impl Default for WatchOptions {
    fn default() -> Self {
        WatchOptions {
            api_key: None,
            api_url: None,
            docker: Docker::default(),
            metrics: crate::metrics::global().pdp.clone(),
            timeout: probe::DEFAULT_TIMEOUT,
        }
    }
}

/// A status report of directory mode (what Kubernetes would hold in `.status`).
#[derive(Clone, Debug)]
pub struct Update {
    pub status: PdpStatus,
    pub transitions: Vec<Transition>,
    /// The container started for `runtime: Docker`.
    pub container: Option<Container>,
}

/// One probe of the PDP at `url`: the new status and its transitions from `old`.
pub async fn observe_url(
    pdp: &PermitPDP,
    url: &str,
    old: Option<&PdpStatus>,
    http: &reqwest::Client,
    metrics: &PdpMetrics,
) -> (PdpStatus, Vec<Transition>) {
    let target = match pdp.spec.probe.as_ref().and_then(|p| p.url.as_deref()) {
        Some(u) => probe::health_url(u),
        None => probe::health_url(url),
    };
    let result = probe::probe(http, &target).await;
    metrics.observe(&super::labels(pdp), result.healthy(), result.latency);
    let generation = pdp.metadata.generation;
    let conditions = vec![
        status::available_from_probe(&result, generation),
        status::healthy(Some(&result), generation),
    ];
    let new = status::desired(old, generation, None, conditions, Some(&result), Utc::now());
    let transitions = status::transitions(old, &new);
    (new, transitions)
}

/// Monitors a directory-mode `PermitPDP` until `cancel` fires, calling `on_update` whenever the
/// status changes (see [`status::needs_write`]). With `runtime: Docker` the PDP container is
/// started first and removed at the end. Returns the last status.
pub async fn watch_url(
    pdp: &PermitPDP,
    opts: WatchOptions,
    mut on_update: impl FnMut(&Update),
    cancel: CancellationToken,
) -> Result<PdpStatus, Error> {
    let object = render::object_name(pdp);
    let container = match pdp.spec.runtime {
        Some(ContainerRuntime::Docker) => Some(
            opts.docker
                .start(pdp, opts.api_key.as_deref(), opts.api_url.as_deref())
                .await
                .map_err(|source| Error::Docker {
                    object: object.clone(),
                    source,
                })?,
        ),
        _ => None,
    };
    let url = match (pdp.spec.url.clone(), &container) {
        (Some(u), _) => u,
        (None, Some(c)) => c.url.clone(),
        (None, None) => {
            return Err(Error::InvalidSpec {
                object,
                reason: "directory mode needs spec.url (a running PDP) or runtime: Docker".into(),
            });
        }
    };
    let http = probe::client(opts.timeout);
    let mut reported: Option<PdpStatus> = pdp.status.clone();
    loop {
        let (new, transitions) =
            observe_url(pdp, &url, reported.as_ref(), &http, &opts.metrics).await;
        for t in &transitions {
            log_transition(&object, t);
        }
        if status::needs_write(reported.as_ref(), &new, Utc::now()) {
            on_update(&Update {
                status: new.clone(),
                transitions,
                container: container.clone(),
            });
            reported = Some(new);
        }
        tokio::select! {
            _ = cancel.cancelled() => break,
            _ = tokio::time::sleep(probe::interval(pdp)) => {}
        }
    }
    if let Some(c) = &container {
        opts.docker
            .stop(&c.name)
            .await
            .map_err(|source| Error::Docker {
                object: object.clone(),
                source,
            })?;
    }
    Ok(reported.unwrap_or_default())
}
