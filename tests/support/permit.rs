//! The embedded local Permit, as the Kubernetes tests start it.
//! Include with `#[path = "support/permit.rs"] mod permit;`.

use permit_sync::local::{LocalConfig, LocalHandle, LocalPermit};

/// A fresh, in-memory local Permit for one test.
pub async fn local() -> LocalHandle {
    LocalPermit::start(LocalConfig::ephemeral())
        .await
        .expect("local Permit starts")
}
