//! permit-sync's pure core: what a manifest declares ([`kinds`]), the normalised model
//! ([`model`]), the desired state built from the declared objects ([`desired`]), the planner and
//! its output ([`plan`]), the inventory's data ([`inventory`]). Nothing here does IO: the
//! `permit-sync` crate reads manifests, talks to Permit and Kubernetes, and re-exports these
//! modules under the same names.

/// The decision engine, its own crate (`crates/decide`, package `permit-decide`) so the local
/// Permit shares it; here under its old path.
pub use permit_decide as decide;
pub mod desired;
pub mod inventory;
pub mod kinds;
pub mod model;
pub mod plan;
pub mod text;
