//! Admin routes: `GET/PUT /_local/knobs`, `GET /_local/counters`, `POST /_local/reset[?data=true]`.

use super::{Counters, Knobs};
use crate::LocalState;
use crate::error::ApiError;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use std::sync::Arc;

pub const PREFIX: &str = "/_local";

pub(crate) fn router() -> Router<Arc<LocalState>> {
    Router::new()
        .route(&format!("{PREFIX}/knobs"), get(get_knobs).put(put_knobs))
        .route(&format!("{PREFIX}/counters"), get(counters))
        .route(&format!("{PREFIX}/reset"), post(reset))
}

async fn get_knobs(State(s): State<Arc<LocalState>>) -> Json<Knobs> {
    Json(s.knobs.lock().knobs.clone())
}

async fn put_knobs(State(s): State<Arc<LocalState>>, body: Bytes) -> Result<Json<Knobs>, ApiError> {
    let knobs: Knobs = serde_json::from_slice(&body)
        .map_err(|e| ApiError::validation(vec!["body".into()], e.to_string(), "value_error"))?;
    knobs
        .validate()
        .map_err(|msg| ApiError::validation(vec!["body".into()], msg, "value_error"))?;
    s.knobs.lock().set(knobs.clone());
    Ok(Json(knobs))
}

async fn counters(State(s): State<Arc<LocalState>>) -> Json<Counters> {
    Json(s.knobs.lock().counters.clone())
}

/// Clears counters, rate-limit windows and the fault sequence; with `?data=true` also empties
/// the environment (back to the `default` tenant).
async fn reset(State(s): State<Arc<LocalState>>, RawQuery(q): RawQuery) -> StatusCode {
    s.knobs.lock().reset();
    if q.as_deref()
        .is_some_and(|q| q.split('&').any(|p| p == "data=true"))
    {
        s.store.write().clear();
    }
    StatusCode::NO_CONTENT
}
