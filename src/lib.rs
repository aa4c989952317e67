//! permit-sync: declarative GitOps sync for Permit.io authorization.

pub mod check;
pub mod cli;
pub mod commands;
pub mod controller;
pub mod crds;
pub mod desired;
pub mod engine;
pub mod exec;
pub mod inventory;
pub mod kinds;
pub mod local;
pub mod logging;
pub mod manifest;
pub mod memory;
pub mod metrics;
pub mod model;
pub mod pdp;
pub mod permit;
pub mod plan;
pub mod serve;
pub mod source;
pub mod validate;
pub mod watch;
