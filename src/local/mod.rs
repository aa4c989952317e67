//! The embedded local Permit: Permit's REST API (the subset permit-sync uses) and PDP decision
//! routes, in-process, with Permit's semantics (permit-api.md), so the official SDKs work against it.
//!
//! # Starting one in-process (tests, `permit-sync dev`)
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! use permit_sync::local::{LocalConfig, LocalPermit};
//! let permit = LocalPermit::start(LocalConfig::ephemeral()).await?; // ports 0, fresh key
//! let api = permit.api_url();   // e.g. http://127.0.0.1:40123 — the SDKs' `api_url`
//! let pdp = permit.pdp_url();   // the SDKs' `pdp`
//! let key = permit.api_key();   // send as `Authorization: Bearer <key>`
//! // ... drive it over HTTP ...
//! permit.shutdown().await?;     // stops both servers and saves `--state` if one was given
//! # let _ = (api, pdp, key); Ok(()) }
//! ```
//!
//! `permit.store()` gives direct read access to the data for assertions.
//!
//! # Semantics worth knowing
//! - One organization / project / environment (`GET /v2/api-key/scope`); paths take the project and
//!   environment by UUID or key (`default` / `local`). Every id in a path takes the key or the UUID.
//! - 401 without a key, 403 with a wrong one; 404 missing, 409 duplicate create, 422 FastAPI-style
//!   `detail[{loc,msg,type}]` for invalid bodies, keys and pagination (`per_page` ≤ 100).
//! - Unknown permission `res:action` on a role: 404; malformed permission: 400
//!   `INVALID_PERMISSION_FORMAT`; an `extends` cycle: 400.
//! - Bulk assign skips assignments that exist (`assignments_created` counts new ones); bulk
//!   unassign skips missing ones. Single unassign of a missing assignment: 404.
//! - Resource roles and resource instances (ReBAC) are not modeled: requests using them get a 422.

mod api;
mod auth;
pub mod cli;
pub mod error;
mod input;
mod pdp;
pub mod store;
mod table;
mod views;

use anyhow::Context;
use parking_lot::RwLock;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use store::{Scope, Store};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// The default addresses: the PDP where the SDKs look for it, the API next to it.
pub const DEFAULT_API_ADDR: &str = "127.0.0.1:7767";
pub const DEFAULT_PDP_ADDR: &str = "127.0.0.1:7766";

#[derive(Debug, Clone)]
pub struct LocalConfig {
    pub api_addr: SocketAddr,
    pub pdp_addr: SocketAddr,
    /// The environment API key; `None` generates one (or reuses the one saved in `state_file`).
    pub api_key: Option<String>,
    /// Where to keep the data across restarts.
    pub state_file: Option<PathBuf>,
}

impl Default for LocalConfig {
    fn default() -> Self {
        LocalConfig {
            api_addr: DEFAULT_API_ADDR.parse().expect("valid address"),
            pdp_addr: DEFAULT_PDP_ADDR.parse().expect("valid address"),
            api_key: None,
            state_file: None,
        }
    }
}

impl LocalConfig {
    /// Loopback, ports chosen by the OS, a fresh key, no persistence: what tests want.
    pub fn ephemeral() -> Self {
        let any: SocketAddr = "127.0.0.1:0".parse().expect("valid address");
        LocalConfig {
            api_addr: any,
            pdp_addr: any,
            ..LocalConfig::default()
        }
    }
}

/// State shared by both servers.
pub(crate) struct Shared {
    pub store: RwLock<Store>,
    pub api_key: String,
}

/// A fresh environment key in Permit's style.
pub fn generate_api_key() -> String {
    use rand::RngCore;
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    format!("permit_key_{}", hex::encode(bytes))
}

pub struct LocalPermit;

impl LocalPermit {
    /// Binds both listeners and starts serving; returns once they accept connections.
    pub async fn start(config: LocalConfig) -> anyhow::Result<LocalHandle> {
        let store = Store::new(Scope::new());
        let api_key = config.api_key.clone().unwrap_or_else(generate_api_key);
        let shared = Arc::new(Shared {
            store: RwLock::new(store),
            api_key,
        });

        let api_listener = TcpListener::bind(config.api_addr)
            .await
            .with_context(|| format!("binding the local Permit API to {}", config.api_addr))?;
        let pdp_listener = TcpListener::bind(config.pdp_addr)
            .await
            .with_context(|| format!("binding the local PDP to {}", config.pdp_addr))?;
        let api_addr = api_listener.local_addr()?;
        let pdp_addr = pdp_listener.local_addr()?;

        let api_app = api::router()
            .route_layer(axum::middleware::from_fn_with_state(
                shared.clone(),
                auth::rest,
            ))
            .with_state(shared.clone());
        let pdp_app = pdp::router()
            .route_layer(axum::middleware::from_fn_with_state(
                shared.clone(),
                auth::pdp,
            ))
            .merge(pdp::health_router())
            .with_state(shared.clone());

        let cancel = CancellationToken::new();
        let serve = |listener: TcpListener, app: axum::Router, cancel: CancellationToken| {
            tokio::spawn(async move {
                let _ = axum::serve(listener, app)
                    .with_graceful_shutdown(cancel.cancelled_owned())
                    .await;
            })
        };
        let tasks = vec![
            serve(api_listener, api_app, cancel.clone()),
            serve(pdp_listener, pdp_app, cancel.clone()),
        ];
        Ok(LocalHandle {
            shared,
            api_addr,
            pdp_addr,
            cancel,
            tasks,
        })
    }
}

/// A running local Permit. Dropping it stops the servers (without saving); prefer [`shutdown`].
///
/// [`shutdown`]: LocalHandle::shutdown
pub struct LocalHandle {
    shared: Arc<Shared>,
    api_addr: SocketAddr,
    pdp_addr: SocketAddr,
    cancel: CancellationToken,
    tasks: Vec<JoinHandle<()>>,
}

impl LocalHandle {
    pub fn api_url(&self) -> String {
        format!("http://{}", self.api_addr)
    }

    pub fn pdp_url(&self) -> String {
        format!("http://{}", self.pdp_addr)
    }

    pub fn api_addr(&self) -> SocketAddr {
        self.api_addr
    }

    pub fn pdp_addr(&self) -> SocketAddr {
        self.pdp_addr
    }

    /// The environment API key (a secret: do not log it).
    pub fn api_key(&self) -> &str {
        &self.shared.api_key
    }

    /// The organization, project and environment ids the key belongs to.
    pub fn scope(&self) -> Scope {
        self.shared.store.read().scope.clone()
    }

    /// Read access to the data, for assertions in tests.
    pub fn store(&self) -> parking_lot::RwLockReadGuard<'_, Store> {
        self.shared.store.read()
    }

    /// Stops both servers gracefully (in-flight requests finish).
    pub async fn shutdown(mut self) -> anyhow::Result<()> {
        self.cancel.cancel();
        for task in std::mem::take(&mut self.tasks) {
            let _ = task.await;
        }
        Ok(())
    }
}

impl Drop for LocalHandle {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}
