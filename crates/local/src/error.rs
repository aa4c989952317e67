//! Errors in Permit's wire formats: `ErrorDetails` for most statuses, FastAPI's `detail[]` for 422.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// One FastAPI-style validation error: where (`loc`), what (`msg`) and its kind (`type`).
#[derive(Debug, Clone, PartialEq)]
pub struct FieldError {
    pub loc: Vec<Value>,
    pub msg: String,
    pub kind: &'static str,
}

impl FieldError {
    pub fn new(loc: Vec<Value>, msg: impl Into<String>, kind: &'static str) -> Self {
        Self {
            loc,
            msg: msg.into(),
            kind,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum ApiError {
    /// 404 `NOT_FOUND`.
    NotFound(String),
    /// 409 `DUPLICATE_ENTITY`.
    Duplicate(String),
    /// 422 with `detail[]`.
    Validation(Vec<FieldError>),
    /// 400 with an error code (`INVALID_PERMISSION_FORMAT`, `INVALID_INPUT`, ...).
    BadRequest(&'static str, String),
    /// 401 `UNAUTHORIZED`: no credentials.
    Unauthorized,
    /// 403 `FORBIDDEN_ACCESS`: credentials that do not open this door.
    Forbidden(String),
    /// 429, optionally with `Retry-After` seconds.
    RateLimited { retry_after: Option<u64> },
    /// An injected or real server error with the given 5xx status.
    Server(u16),
    /// 501 `NOT_IMPLEMENTED`: a route of Permit's API that the local Permit does not model.
    NotImplemented(String),
}

pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    pub fn validation(loc: Vec<Value>, msg: impl Into<String>, kind: &'static str) -> Self {
        ApiError::Validation(vec![FieldError::new(loc, msg, kind)])
    }

    pub fn not_found(what: &str, ident: &str) -> Self {
        ApiError::NotFound(format!(
            "The requested data could not be found: {what} '{ident}'"
        ))
    }

    pub fn duplicate(what: &str, key: &str) -> Self {
        ApiError::Duplicate(format!(
            "A {what} with the key '{key}' already exists in this environment"
        ))
    }

    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Duplicate(_) => StatusCode::CONFLICT,
            ApiError::Validation(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::BadRequest(..) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Server(code) => {
                StatusCode::from_u16(*code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
            }
            ApiError::NotImplemented(_) => StatusCode::NOT_IMPLEMENTED,
        }
    }

    fn details(&self) -> (&'static str, &'static str, String) {
        match self {
            ApiError::NotFound(m) => ("Not Found", "NOT_FOUND", m.clone()),
            ApiError::Duplicate(m) => ("Conflict", "DUPLICATE_ENTITY", m.clone()),
            ApiError::BadRequest(code, m) => ("Bad Request", code, m.clone()),
            ApiError::Unauthorized => (
                "Unauthorized",
                "UNAUTHORIZED",
                "Missing API key: send 'Authorization: Bearer <api key>'".into(),
            ),
            ApiError::Forbidden(m) => ("Forbidden", "FORBIDDEN_ACCESS", m.clone()),
            ApiError::RateLimited { .. } => (
                "Too Many Requests",
                "TOO_MANY_REQUESTS",
                "Rate limit exceeded, slow down".into(),
            ),
            ApiError::Server(_) => (
                "Internal Server Error",
                "UNEXPECTED_ERROR",
                "An unexpected error occurred".into(),
            ),
            ApiError::Validation(_) => ("Unprocessable Entity", "INVALID_INPUT", String::new()),
            ApiError::NotImplemented(m) => ("Not Implemented", "NOT_IMPLEMENTED", m.clone()),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let body = match &self {
            ApiError::Validation(errors) => json!({
                "detail": errors
                    .iter()
                    .map(|e| json!({"loc": e.loc, "msg": e.msg, "type": e.kind}))
                    .collect::<Vec<_>>()
            }),
            _ => {
                let (title, code, message) = self.details();
                json!({
                    "id": uuid::Uuid::new_v4().simple().to_string(),
                    "title": title,
                    "error_code": code,
                    "message": message,
                    "support_link": null,
                    "additional_info": null,
                })
            }
        };
        let mut response = (status, axum::Json(body)).into_response();
        if let ApiError::RateLimited {
            retry_after: Some(secs),
        } = self
        {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}
