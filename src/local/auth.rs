//! API-key checks. One environment key opens everything; the REST API answers in `ErrorDetails`,
//! the PDP (like Permit's) in plain text. The key is compared, never logged or echoed.

use super::Shared;
use super::error::ApiError;
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::sync::Arc;

pub enum KeyCheck {
    Missing,
    Wrong,
    Ok,
}

/// Compares in constant time so the key cannot be guessed byte by byte from response timings.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

pub fn check(req: &Request, key: &str) -> KeyCheck {
    let Some(value) = req.headers().get(header::AUTHORIZATION) else {
        return KeyCheck::Missing;
    };
    match value.as_bytes().strip_prefix(b"Bearer ") {
        Some(token) if same(token, key.as_bytes()) => KeyCheck::Ok,
        _ => KeyCheck::Wrong,
    }
}

/// REST: 401 without a key, 403 with a wrong one; then the `{proj}/{env}` of facts and schema paths
/// must name this key's project and environment (by key or UUID).
pub async fn rest(State(s): State<Arc<Shared>>, req: Request, next: Next) -> Response {
    match check(&req, &s.api_key) {
        KeyCheck::Missing => return ApiError::Unauthorized.into_response(),
        KeyCheck::Wrong => {
            return ApiError::Forbidden("The API key is not valid for this environment".into())
                .into_response();
        }
        KeyCheck::Ok => {}
    }
    let segments: Vec<&str> = req.uri().path().split('/').collect();
    if let ["", "v2", "facts" | "schema", proj, env, ..] = segments.as_slice() {
        let scope = s.store.read().scope.clone();
        let proj_ok = *proj == scope.project_key || *proj == scope.project_id.to_string();
        let env_ok = *env == scope.environment_key || *env == scope.environment_id.to_string();
        if !proj_ok || !env_ok {
            return ApiError::Forbidden(format!(
                "The API key has no access to project '{proj}' / environment '{env}'"
            ))
            .into_response();
        }
    }
    next.run(req).await
}

/// PDP: 401 without a header, 403 plain text with a wrong key (as Permit's PDP answers).
pub async fn pdp(State(s): State<Arc<Shared>>, req: Request, next: Next) -> Response {
    match check(&req, &s.api_key) {
        KeyCheck::Missing => {
            (StatusCode::UNAUTHORIZED, "Missing Authorization header").into_response()
        }
        KeyCheck::Wrong => (StatusCode::FORBIDDEN, "Invalid API key").into_response(),
        KeyCheck::Ok => next.run(req).await,
    }
}
