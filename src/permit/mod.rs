//! Talking to Permit: the REST client (limits, retries, errors) and the live-state reader.

pub mod client;
pub mod error;
pub mod limits;
pub mod live;
pub mod retry;
pub mod window;

pub use client::{ApiKey, Call, ClientConfig, DEFAULT_API_URL, Metrics, PermitClient, Scope, seg};
pub use error::PermitError;
pub use limits::{LimitClass, Limits};
pub use retry::RetryPolicy;
