//! permit-sync: declarative GitOps sync for Permit.io authorization.

pub mod check;
pub mod cli;
pub mod crds;
pub mod kinds;
pub mod local;
pub mod manifest;
pub mod metrics;
pub mod pdp;
pub mod validate;
