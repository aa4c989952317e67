//! permit-sync: declarative GitOps sync for Permit.io authorization.

pub mod cli;
pub mod crds;
pub mod kinds;
pub mod manifest;
pub mod validate;
