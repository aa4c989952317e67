//! The embedded local Permit: Permit's REST API (the subset permit-sync uses) and PDP decision
//! routes, in-process, with Permit's semantics (permit-api.md), so the official SDKs work against it.
//!
//! # Starting one in-process (tests, `permit-sync dev`)
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! use permit_local::{LocalConfig, LocalPermit};
//! let permit = LocalPermit::start(LocalConfig::ephemeral()).await?; // ports 0, fresh key
//! let api = permit.api_url();   // e.g. http://127.0.0.1:40123 — the SDKs' `api_url`
//! let pdp = permit.pdp_url();   // the SDKs' `pdp`
//! let key = permit.api_key().to_string(); // send as `Authorization: Bearer <key>`
//! let users = format!("{}/users", permit.facts_url()); // {api}/v2/facts/{proj}/{env}
//! // ... drive it over HTTP ...
//! let writes = permit.counters().writes(); // or .class("bulk"), .endpoint("PUT bulk/users")
//! permit.shutdown().await?;     // stops both servers and saves `--state` if one was given
//! # let _ = (api, pdp, key, users, writes); Ok(()) }
//! ```
//!
//! `permit.store()` gives direct read access to the data for assertions.
//!
//! # Realism knobs ([`knobs`])
//! Added latency, Permit's rate limits (off by default; `scale` multiplies the counts,
//! `time_scale` the windows), and injected faults (5xx, 429 bursts with or without `Retry-After`,
//! dropped connections, slow answers), deterministic for a seed and request order. Set them with
//! [`LocalConfig::knobs`], the handle's setters, or the admin routes (API key required):
//! `GET|PUT /_local/knobs`, `GET /_local/counters`, `POST /_local/reset[?data=true]`.
//!
//! # Semantics worth knowing
//! - One organization / project / environment (`GET /v2/api-key/scope`); paths take the project and
//!   environment by UUID or key (`default` / `local`). Every id in a path takes the key or the UUID.
//! - 401 without a key, 403 with a wrong one; 404 missing, 409 duplicate create, 422 FastAPI-style
//!   `detail[{loc,msg,type}]` for invalid bodies, keys and pagination (`per_page` ≤ 100).
//! - Unknown permission `res:action` on a role: 404; malformed permission: 400
//!   `INVALID_PERMISSION_FORMAT`; an `extends` cycle: 400.
//! - Users: `PUT` upserts (201 created / 200 replaced, the whole user) and cannot rename; `PATCH`
//!   replaces each field sent (a sent `attributes` replaces the whole map). Bulk create of users or
//!   tenants is all-or-nothing (409 if any key exists). Deleting a user, tenant or role deletes its
//!   assignments; deleting a resource or action revokes the role permissions that named it.
//! - Bulk assign skips assignments that exist (`assignments_created` counts new ones); bulk
//!   unassign skips missing ones. Single unassign of a missing assignment: 404.
//! - The PDP serves the facts routes too (`/facts/...` and `/v2/facts/{proj}/{env}/...`), as
//!   Permit's PDP proxies them; they count under the REST classes.
//! - ReBAC: resource roles (identity `(resource, key)`, permissions as action keys, `extends`
//!   within the resource), relations, role derivations (`implicit_grants`, `granted_to`) and their
//!   conditions, resource instances, relationship tuples (a tuple or an instance role assignment
//!   with a tenant creates the instances it names) and instance role assignments; deleting an
//!   instance takes its tuples and instance assignments, a relation its tuples and derivations, a
//!   resource role its assignments and the derivations from it, a resource its roles, relations
//!   and instances, a tenant its instances. The PDP decides RBAC ∨ ReBAC with `permit-decide`.
//! - The routes of features not modeled (ABAC, action groups, …) answer 501 `NOT_IMPLEMENTED`
//!   with the feature named (`api::unmodelled_feature`); a path outside Permit's API is a 404.
//! - Ids come out as Permit writes them (32 hex digits, no dashes); paths take that form, the
//!   dashed one, or the key. Unset user and tenant `attributes` read back as `null`.

mod api;
mod auth;
pub mod error;
mod input;
pub mod knobs;
pub mod lag;
mod pdp;
mod persist;
pub mod store;
mod table;
mod views;

use anyhow::Context;
use knobs::{Counters, Faults, KnobState, Knobs, RateLimits};
use parking_lot::{Mutex, RwLock};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use store::{Scope, Store};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// The default addresses: the PDP where the SDKs look for it, the API next to it.
pub const DEFAULT_API_ADDR: &str = "127.0.0.1:7767";
pub const DEFAULT_PDP_ADDR: &str = "127.0.0.1:7766";

const MAX_BODY_BYTES: usize = 64 * 1024 * 1024;

#[derive(Debug, Clone)]
pub struct LocalConfig {
    pub api_addr: SocketAddr,
    pub pdp_addr: SocketAddr,
    /// The environment API key; `None` generates one (or reuses the one saved in `state_file`).
    pub api_key: Option<String>,
    /// Where to keep the data across restarts.
    pub state_file: Option<PathBuf>,
    /// Latency, rate limits and faults at start (all off by default).
    pub knobs: Knobs,
}

impl Default for LocalConfig {
    fn default() -> Self {
        LocalConfig {
            api_addr: DEFAULT_API_ADDR.parse().expect("valid address"),
            pdp_addr: DEFAULT_PDP_ADDR.parse().expect("valid address"),
            api_key: None,
            state_file: None,
            knobs: Knobs::default(),
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
pub(crate) struct LocalState {
    pub store: RwLock<Store>,
    pub api_key: String,
    pub knobs: Mutex<KnobState>,
    /// What the PDP decides on while `pdp_delay_ms` is set ([`lag`]).
    pub pdp_view: lag::PdpView,
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
        config.knobs.validate().map_err(anyhow::Error::msg)?;
        let saved = match &config.state_file {
            Some(path) => persist::load(path)?,
            None => None,
        };
        // A key given now wins; else the saved one (so clients keep working across restarts).
        let saved_key = saved.as_ref().map(|s| s.api_key.clone());
        let store = match saved {
            Some(snap) => Store::from_snapshot(snap),
            None => Store::new(Scope::new()),
        };
        let api_key = config
            .api_key
            .clone()
            .or(saved_key)
            .unwrap_or_else(generate_api_key);
        let shared = Arc::new(LocalState {
            store: RwLock::new(store),
            api_key,
            knobs: Mutex::new(KnobState::new(config.knobs.clone())),
            pdp_view: lag::PdpView::default(),
        });

        // Write the state once before serving: an unwritable --state is a start error, not a
        // warning repeated after every change.
        let saved_generation = match &config.state_file {
            Some(path) => persist::save_now(&shared, path).await?,
            None => 0,
        };

        let api_listener = TcpListener::bind(config.api_addr)
            .await
            .with_context(|| format!("binding the local Permit API to {}", config.api_addr))?;
        let pdp_listener = TcpListener::bind(config.pdp_addr)
            .await
            .with_context(|| format!("binding the local PDP to {}", config.pdp_addr))?;
        let api_addr = api_listener.local_addr()?;
        let pdp_addr = pdp_listener.local_addr()?;

        // Knobs wrap everything but the admin routes; auth sits inside them, so even refused
        // requests are delayed and counted.
        let rest_auth = axum::middleware::from_fn_with_state(shared.clone(), auth::rest);
        let track_writes = axum::middleware::from_fn_with_state(shared.clone(), lag::track_writes);
        let api_app = api::router()
            .route_layer(track_writes.clone())
            .route_layer(rest_auth.clone())
            .layer(axum::middleware::from_fn_with_state(
                shared.clone(),
                knobs::api_layer,
            ))
            .merge(knobs::admin_router().route_layer(rest_auth.clone()))
            // Bulk bodies of 3,000 users with attributes outgrow axum's 2 MB default.
            .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY_BYTES))
            .with_state(shared.clone());
        let pdp_app = pdp::router()
            .route_layer(axum::middleware::from_fn_with_state(
                shared.clone(),
                auth::pdp,
            ))
            .merge(
                api::pdp_facts_router()
                    .route_layer(track_writes)
                    .route_layer(rest_auth),
            )
            .merge(pdp::health_router())
            .layer(axum::middleware::from_fn_with_state(
                shared.clone(),
                knobs::pdp_layer,
            ))
            .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY_BYTES))
            .with_state(shared.clone());

        let cancel = CancellationToken::new();
        let serve = |listener: TcpListener, app: axum::Router, cancel: CancellationToken| {
            tokio::spawn(async move {
                let _ = axum::serve(listener, app)
                    .with_graceful_shutdown(cancel.cancelled_owned())
                    .await;
            })
        };
        let mut tasks = vec![
            serve(api_listener, api_app, cancel.clone()),
            serve(pdp_listener, pdp_app, cancel.clone()),
        ];
        if let Some(path) = config.state_file.clone() {
            tasks.push(tokio::spawn(persist::run_saver(
                shared.clone(),
                path,
                saved_generation,
                cancel.clone(),
            )));
        }
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
    shared: Arc<LocalState>,
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

    /// `{api}/v2/facts/{project_id}/{environment_id}`: users, tenants, role assignments.
    pub fn facts_url(&self) -> String {
        let scope = self.scope();
        format!(
            "{}/v2/facts/{}/{}",
            self.api_url(),
            scope.project_id,
            scope.environment_id
        )
    }

    /// `{api}/v2/schema/{project_id}/{environment_id}`: resources and roles.
    pub fn schema_url(&self) -> String {
        let scope = self.scope();
        format!(
            "{}/v2/schema/{}/{}",
            self.api_url(),
            scope.project_id,
            scope.environment_id
        )
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

    /// Request counts by class (`read`, `write`, `delete`, `bulk`, `schema_write`, `pdp`), status
    /// and endpoint, since start or the last reset.
    pub fn counters(&self) -> Counters {
        self.shared.knobs.lock().counters.clone()
    }

    pub fn knobs(&self) -> Knobs {
        self.shared.knobs.lock().knobs.clone()
    }

    /// Makes the PDP's health routes answer 503 (or 200 again).
    pub fn set_pdp_healthy(&self, healthy: bool) {
        let mut knobs = self.knobs();
        knobs.pdp_unhealthy = !healthy;
        self.shared.knobs.lock().set(knobs);
    }

    /// Replaces all knobs (the fault sequence restarts from its seed; counters are kept).
    pub fn set_knobs(&self, knobs: Knobs) -> anyhow::Result<()> {
        knobs.validate().map_err(anyhow::Error::msg)?;
        self.shared.knobs.lock().set(knobs);
        Ok(())
    }

    pub fn set_latency(&self, latency: Duration) {
        let mut knobs = self.knobs();
        knobs.latency_ms = latency.as_millis() as u64;
        self.shared.knobs.lock().set(knobs);
    }

    pub fn set_faults(&self, faults: Faults) -> anyhow::Result<()> {
        let mut knobs = self.knobs();
        knobs.faults = faults;
        self.set_knobs(knobs)
    }

    pub fn set_rate_limits(&self, limits: RateLimits) -> anyhow::Result<()> {
        let mut knobs = self.knobs();
        knobs.rate_limits = limits;
        self.set_knobs(knobs)
    }

    /// Delays the PDP's view of writes: decisions are taken on the data as it was `delay` ago
    /// (zero: at once, the default). See [`lag`].
    pub fn set_pdp_delay(&self, delay: Duration) -> anyhow::Result<()> {
        let mut knobs = self.knobs();
        knobs.pdp_delay_ms = delay.as_millis() as u64;
        self.set_knobs(knobs)
    }

    /// How far the PDP's decisions are behind the REST API now.
    pub fn pdp_lag(&self) -> lag::PdpLag {
        self.shared.pdp_lag()
    }

    /// A cloneable handle on [`LocalHandle::pdp_lag`], for a task that outlives a borrow.
    pub fn lag_probe(&self) -> lag::LagProbe {
        lag::LagProbe(self.shared.clone())
    }

    /// Starts (afresh) or stops logging REST requests with their arrival times; a counter reset
    /// restarts the log.
    pub fn record_requests(&self, on: bool) {
        self.shared.knobs.lock().record_requests(on);
    }

    /// The REST requests logged (see [`LocalHandle::record_requests`]), in arrival order.
    pub fn request_log(&self) -> Vec<knobs::LoggedRequest> {
        self.shared.knobs.lock().request_log()
    }

    /// Clears counters and rate-limit windows and restarts the fault sequence.
    pub fn reset_counters(&self) {
        self.shared.knobs.lock().reset();
    }

    /// Stops both servers gracefully (in-flight requests finish) and writes the state file.
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
