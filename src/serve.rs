//! The HTTP endpoints of the long-running commands, on `--metrics-addr`:
//! `/healthz` (the process runs), `/readyz` (a complete sync has run and Permit answers: 200,
//! else 503 with the reason), `/metrics` (Prometheus text format, the process registry) and
//! `/status` (per-object status as JSON, what `permit-sync status` prints).

use crate::metrics::Metrics;
use crate::watch::state::Shared;
use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use std::net::SocketAddr;
use tokio_util::sync::CancellationToken;

#[derive(Clone)]
struct AppState {
    status: Shared,
    metrics: &'static Metrics,
}

pub fn router(status: Shared, metrics: &'static Metrics) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_text))
        .route("/status", get(status_json))
        .with_state(AppState { status, metrics })
}

async fn readyz(State(s): State<AppState>) -> Response {
    match s.status.ready() {
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

async fn status_json(State(s): State<AppState>) -> Response {
    axum::Json(s.status.snapshot()).into_response()
}

/// Binds `addr` and serves until `cancel` fires; returns the bound address (port 0 picks one).
pub async fn start(
    addr: SocketAddr,
    status: Shared,
    metrics: &'static Metrics,
    cancel: CancellationToken,
) -> anyhow::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    use anyhow::Context as _;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding --metrics-addr {addr}"))?;
    let bound = listener.local_addr()?;
    let app = router(status, metrics);
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app)
            .with_graceful_shutdown(cancel.cancelled_owned())
            .await;
    });
    Ok((bound, task))
}
