//! permit-sync: declarative GitOps sync for Permit.io authorization.

pub use permit_sync_core::{decide, desired, kinds, model, plan, text};

pub mod backoff;
pub mod cli;
/// `permit-sync check` and `crds` keep their old paths for library users.
pub use commands::{check, crds};
pub mod commands;
pub mod controller;
pub mod engine;
pub mod exec;
pub mod inventory;
/// The embedded local Permit (`crates/local`, package `permit-local`) under its old path.
pub use permit_local as local;
pub mod logging;
pub mod manifest;
pub mod memory;
pub mod metrics;
pub mod pdp;
pub mod permit;
pub mod reconcile;
pub mod serve;
pub mod source;
pub mod validate;
pub mod watch;
