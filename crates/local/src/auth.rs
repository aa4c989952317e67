//! API-key checks. One environment key opens everything; the REST API answers in `ErrorDetails`,
//! the PDP (like Permit's) in plain text. The key is compared, never logged or echoed.

use super::LocalState;
use super::error::ApiError;
use super::store::same_id;
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

/// The token of an `Authorization: Bearer <token>` header, the scheme matched in any case:
/// Permit's REST API and PDP take `bearer` as well as `Bearer` (the Python SDK `permit` 2.x sends
/// `bearer <key>`; Permit's PDP lowercases the header before matching the prefix:
/// permitio/PDP `pdp-server/src/api/authn_middleware.rs`,
/// `header_str.to_lowercase().starts_with("bearer ")`, tested there by
/// `test_lowercase_bearer_scheme_is_accepted`). The token itself is compared exactly.
pub fn bearer_token(value: &[u8]) -> Option<&[u8]> {
    const SCHEME: &[u8] = b"bearer ";
    (value.len() >= SCHEME.len() && value[..SCHEME.len()].eq_ignore_ascii_case(SCHEME))
        .then(|| &value[SCHEME.len()..])
}

pub fn check(req: &Request, key: &str) -> KeyCheck {
    let Some(value) = req.headers().get(header::AUTHORIZATION) else {
        return KeyCheck::Missing;
    };
    match bearer_token(value.as_bytes()) {
        Some(token) if same(token, key.as_bytes()) => KeyCheck::Ok,
        _ => KeyCheck::Wrong,
    }
}

/// REST: 401 without a key, 403 with a wrong one; then the `{proj}/{env}` of facts and schema paths
/// must name this key's project and environment (by key or UUID).
pub async fn rest(State(s): State<Arc<LocalState>>, req: Request, next: Next) -> Response {
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
        let proj_ok = *proj == scope.project_key || same_id(scope.project_id, proj);
        let env_ok = *env == scope.environment_key || same_id(scope.environment_id, env);
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
pub async fn pdp(State(s): State<Arc<LocalState>>, req: Request, next: Next) -> Response {
    match check(&req, &s.api_key) {
        KeyCheck::Missing => {
            (StatusCode::UNAUTHORIZED, "Missing Authorization header").into_response()
        }
        KeyCheck::Wrong => (StatusCode::FORBIDDEN, "Invalid API key").into_response(),
        KeyCheck::Ok => next.run(req).await,
    }
}

#[cfg(test)]
mod tests {
    use super::bearer_token;

    #[test]
    fn the_bearer_scheme_matches_in_any_case_and_the_token_exactly() {
        for header in ["Bearer k1", "bearer k1", "BEARER k1", "bEaReR k1"] {
            assert_eq!(
                bearer_token(header.as_bytes()),
                Some(&b"k1"[..]),
                "{header}"
            );
        }
        for header in ["Basic k1", "Bearerk1", "Bearer", "k1", ""] {
            assert_eq!(bearer_token(header.as_bytes()), None, "{header}");
        }
        assert_eq!(bearer_token(b"bearer K1"), Some(&b"K1"[..]));
    }
}
