//! The HTTP endpoints of the long-running commands (`watch`, `dev`, `controller`), on
//! `--metrics-addr`: `/healthz` (the process runs), `/readyz` (200, else 503 with the reason),
//! `/metrics` (Prometheus text format, the process registry) and, in directory mode, `/status`
//! (per-object status as JSON, what `permit-sync status` prints).

use crate::controller;
use crate::metrics::Metrics;
use crate::reconcile::Readiness;
use crate::watch::state::Shared;
use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// Where `/readyz` gets its answer, and whether there is a `/status`.
#[derive(Clone)]
pub enum Source {
    /// Directory mode: ready once a complete sync ran and Permit answers; serves `/status`.
    Sync(Shared),
    /// The controller: ready once every watch has listed. Its status lives on the custom
    /// resources, so no `/status` (the chart's NetworkPolicy counts on that).
    Controller(Arc<controller::ControllerState>),
}

impl From<Shared> for Source {
    fn from(s: Shared) -> Self {
        Source::Sync(s)
    }
}

impl From<Arc<controller::ControllerState>> for Source {
    fn from(s: Arc<controller::ControllerState>) -> Self {
        Source::Controller(s)
    }
}

impl Source {
    /// Both modes answer through [`Readiness`].
    fn ready(&self) -> (bool, Option<String>) {
        let readiness: &dyn Readiness = match self {
            Source::Sync(s) => s,
            Source::Controller(s) => s.as_ref(),
        };
        readiness.readiness()
    }
}

#[derive(Clone)]
struct AppState {
    source: Source,
    metrics: &'static Metrics,
}

pub fn router(source: impl Into<Source>, metrics: &'static Metrics) -> Router {
    let source = source.into();
    let mut router = Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_text));
    if let Source::Sync(status) = &source {
        let status = status.clone();
        router = router.route(
            "/status",
            get(move || async move { axum::Json(status.snapshot()) }),
        );
    }
    router.with_state(AppState { source, metrics })
}

async fn readyz(State(s): State<AppState>) -> Response {
    match s.source.ready() {
        (true, _) => (StatusCode::OK, "ready\n").into_response(),
        (false, why) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "not ready: {}\n",
                why.unwrap_or_else(|| "no sync yet".into())
            ),
        )
            .into_response(),
    }
}

async fn metrics_text(State(s): State<AppState>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        s.metrics.encode(),
    )
        .into_response()
}

/// Binds `addr` and serves until `cancel` fires; returns the bound address (port 0 picks one).
pub async fn start(
    addr: SocketAddr,
    source: impl Into<Source>,
    metrics: &'static Metrics,
    cancel: CancellationToken,
) -> anyhow::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    use anyhow::Context as _;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding --metrics-addr {addr}"))?;
    let bound = listener.local_addr()?;
    let app = router(source, metrics);
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app)
            .with_graceful_shutdown(cancel.cancelled_owned())
            .await;
    });
    Ok((bound, task))
}
