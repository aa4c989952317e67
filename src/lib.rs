//! permit-sync: declarative GitOps sync for Permit.io authorization.

pub mod cli;
pub mod crds;
pub mod desired;
pub mod inventory;
pub mod kinds;
pub mod model;
pub mod plan;
