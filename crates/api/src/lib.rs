//! Permit's REST wire format, typed once (ARCHITECTURE.md: Permit's API).
//!
//! - [`endpoint`]: every endpoint permit-sync calls, with its HTTP method, path, metric label and
//!   rate-limit class. Paths and labels exist only there.
//! - [`request`]: the bodies permit-sync sends, borrowed from the objects they describe.
//! - [`response`]: the read models Permit answers with (`UserRead`, `TenantRead`, ...), written by
//!   the embedded local Permit and read by the client's listings.
//!
//! Field names, `null` versus absent and the id form (32 lowercase hex digits) are part of the
//! contract: the shapes here are the ones Permit emits (permit-api.md).

pub mod endpoint;
pub mod request;
pub mod response;

pub use endpoint::{Area, Endpoint, Method, RateClass, seg};
