//! The middleware that applies the knobs to each request and counts it.

use super::Fault;
use super::counters::{count_class, endpoint};
use crate::LocalState;
use crate::error::ApiError;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::time::{Duration, Instant};

/// A response whose body fails at once: hyper then closes the connection without an answer.
fn dropped_connection() -> Response {
    let stream = futures::stream::once(async {
        Err::<axum::body::Bytes, std::io::Error>(std::io::Error::new(
            std::io::ErrorKind::ConnectionAborted,
            "injected dropped connection",
        ))
    });
    Response::new(Body::from_stream(stream))
}

async fn apply(shared: &LocalState, req: Request, next: Next, pdp: bool) -> Response {
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let arrived = Instant::now();
    let (latency, fault) = {
        let mut state = shared.knobs.lock();
        if !pdp {
            state.log_request(&method, &path, arrived);
        }
        (state.knobs.latency_ms, state.draw_fault(pdp))
    };
    if latency > 0 {
        tokio::time::sleep(Duration::from_millis(latency)).await;
    }
    let response = match fault {
        Fault::Error { status } => ApiError::Server(status).into_response(),
        Fault::RateLimited { retry_after } => ApiError::RateLimited { retry_after }.into_response(),
        Fault::Drop => dropped_connection(),
        Fault::Slow { ms } => {
            tokio::time::sleep(Duration::from_millis(ms)).await;
            limited_or_run(shared, req, next, &method, &path, pdp).await
        }
        Fault::None => limited_or_run(shared, req, next, &method, &path, pdp).await,
    };
    let status = if matches!(fault, Fault::Drop) {
        0 // no status was ever sent
    } else {
        response.status().as_u16()
    };
    shared.knobs.lock().counters.record(
        count_class(&method, &path, pdp),
        endpoint(&method, &path),
        status,
    );
    response
}

async fn limited_or_run(
    shared: &LocalState,
    req: Request,
    next: Next,
    method: &Method,
    path: &str,
    pdp: bool,
) -> Response {
    if !pdp {
        let verdict = {
            let mut state = shared.knobs.lock();
            let with_header = state.knobs.rate_limits.retry_after;
            state
                .admit(method, path, Instant::now())
                .map_err(|secs| with_header.then_some(secs))
        };
        if let Err(retry_after) = verdict {
            return ApiError::RateLimited { retry_after }.into_response();
        }
    }
    next.run(req).await
}

pub(crate) async fn api_layer(
    State(s): State<std::sync::Arc<LocalState>>,
    req: Request,
    next: Next,
) -> Response {
    apply(&s, req, next, false).await
}

pub(crate) async fn pdp_layer(
    State(s): State<std::sync::Arc<LocalState>>,
    req: Request,
    next: Next,
) -> Response {
    apply(&s, req, next, true).await
}
