//! The PDP: deploy it (Kubernetes), start it (directory mode with Docker) and monitor it.
//!
//! # Entry points
//!
//! **Kubernetes controller** — one [`Context`] per process, then per `PermitPDP` event:
//!
//! ```no_run
//! # async fn demo(client: kube::Client, pdp: std::sync::Arc<permit_sync::kinds::PermitPDP>) -> anyhow::Result<()> {
//! use permit_sync::pdp;
//! let ctx = pdp::Context::new(client.clone(), None, permit_sync::metrics::global().pdp.clone());
//! let action = pdp::reconcile(&client, &pdp, &ctx).await?; // apply children, probe, status
//! # let _ = action; Ok(()) }
//! ```
//!
//! [`reconcile`] server-side applies the Deployment, Service and PodDisruptionBudget (field manager
//! `permit-sync`, owned by the `PermitPDP`), probes `/healthy`, writes `Available`/`Healthy` when
//! they change, emits events on transitions, records metrics, and returns `requeue(probe interval)`:
//! the requeue *is* the periodic probe, so one writer owns the status. Wire it with
//! `Controller::new(Api<PermitPDP>).owns(Api<Deployment>)` so Deployment status changes reconcile at
//! once; on deletion call [`forget`] (children go with the garbage collector through their
//! ownerReferences). Without a controller, [`monitor::run`] loops over one object.
//!
//! **Directory mode** (`watch`, `dev`): [`monitor::watch_url`] monitors a PDP at `spec.url`; with
//! `runtime: Docker` it first starts `permitio/pdp-v2:<tag>` through [`docker`] (a clear error
//! when `docker` or its engine is missing) and removes the container when cancelled.
//! [`dev::start_embedded`] starts the embedded local Permit and records its PDP so that
//! `permit-sync check` works without flags.
//!
//! The API key never leaves the Secret (Kubernetes) or the `docker` process environment
//! (directory mode): it is in no argument, log line, error, status or event.

pub mod apply;
pub mod dev;
pub mod docker;
pub mod monitor;
pub mod probe;
pub mod render;
pub mod status;

use crate::kinds::PermitPDP;
use crate::metrics::{PdpLabels, PdpMetrics};
use kube::runtime::controller::Action;
use kube::runtime::events::{Recorder, Reporter};
use kube::{Client, ResourceExt};
use std::time::Duration;

pub use monitor::watch_url;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("PermitPDP {object}: {reason}")]
    InvalidSpec { object: String, reason: String },
    #[error("PermitPDP {object}: {action}: {source}")]
    Kube {
        object: String,
        action: String,
        #[source]
        source: kube::Error,
    },
    #[error(
        "PermitPDP {object}: {child} exists and is not controlled by this PermitPDP; \
         rename one of them"
    )]
    NotOwned { object: String, child: String },
    #[error("PermitPDP {object}: {source}")]
    Docker {
        object: String,
        #[source]
        source: docker::DockerError,
    },
}

impl Error {
    /// Label for an error-count metric.
    pub fn metric_label(&self) -> &'static str {
        match self {
            Error::InvalidSpec { .. } => "invalid_spec",
            Error::Kube { .. } => "kube",
            Error::NotOwned { .. } => "not_owned",
            Error::Docker { .. } => "docker",
        }
    }
}

/// What every reconcile shares.
#[derive(Clone)]
pub struct Context {
    /// The Permit API permit-sync talks to; a non-default one becomes the PDP's control plane.
    pub api_url: Option<String>,
    pub recorder: Recorder,
    pub metrics: PdpMetrics,
    pub http: reqwest::Client,
}

impl Context {
    pub fn new(client: Client, api_url: Option<String>, metrics: PdpMetrics) -> Self {
        Context {
            api_url,
            recorder: Recorder::new(client, Reporter::from(render::FIELD_MANAGER)),
            metrics,
            http: probe::client(probe::DEFAULT_TIMEOUT),
        }
    }
}

pub(crate) fn labels(pdp: &PermitPDP) -> PdpLabels {
    PdpLabels {
        namespace: pdp.namespace().unwrap_or_default(),
        name: pdp.name_any(),
    }
}

/// Deploys and checks one `PermitPDP`; see the module doc.
pub async fn reconcile(client: &Client, pdp: &PermitPDP, ctx: &Context) -> Result<Action, Error> {
    let next: Duration = monitor::reconcile_once(client, pdp, ctx).await?;
    Ok(Action::requeue(next))
}

/// Drops a deleted `PermitPDP`'s metric series.
pub fn forget(pdp: &PermitPDP, ctx: &Context) {
    ctx.metrics.forget(&labels(pdp));
}
