//! The one reconcile loop of the long-running modes: `watch` and `dev` (a directory of manifests)
//! and `controller` (the custom resources).
//!
//! A mode is a [`Source`]: it yields the desired state, its ownership and options, the ops it holds
//! back, and takes back the plan and each object's outcome (the watcher records them in its
//! inventory file and `/status`; the controller in each resource's status). Everything between is
//! [`Reconciler`]'s, once for both modes:
//!
//! - **Connect** to Permit (once; a failure is counted in `permit_sync_connect_failures_total`).
//! - **The live cache and its relist policy** ([`Reconciler::relist_due`]): Permit is listed at
//!   start (and whenever the cache was dropped: a new leadership term), after a sync whose outcome
//!   may be unknown (Permit unreachable, throttled, 5xx), when the caller forces it, and every
//!   `drift_interval`. Otherwise the cache is what the last outcome projected: a clean sync is not
//!   followed by a relist.
//! - **Plan → execute → project.** Only the touched keys are planned (`plan::Scope::Keys`, no API
//!   read) when the last sync ended clean with the same options, Permit was not listed since and
//!   the source allows it; otherwise everything. The outcome projects the cache in place.
//! - **Failure classes** ([`Class`]): unreachable (connect or list failed), trouble (some object
//!   failed with no answer, 429 or 5xx: relist and retry with backoff), rejected (4xx on some
//!   object: no backoff retry, the next change tries again), refused (the planner's guards), an
//!   ownership record that could not be written.
//! - **One backoff policy** ([`crate::backoff::Backoff`]): failures in a row double the wait to its
//!   cap; [`Reconciler::retry_at`] is when to try again.
//! - **One metrics set**: the Permit API requests, retries and rate-limit waits
//!   (`permit_sync_api_*`, [`Reconciler::record_api`]) and connect failures, the same for both modes.
//! - **Readiness** through [`Readiness`]: each mode's status implements it; the loop's own part is
//!   [`Reconciler::ready`] (a sync ran to the end and Permit answered the last one).

#[cfg(test)]
mod tests;

use crate::backoff::Backoff;
use crate::desired::Desired;
use crate::exec::{self, ExecOptions, Report};
use crate::kinds::ObjectId;
use crate::metrics::SyncMetrics;
use crate::model::State;
use crate::permit::{ClientConfig, PermitClient, live};
use crate::plan::{self, Ownership, Plan, PlanOptions, Scope, Warning};
use std::collections::BTreeSet;
use std::time::Duration;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// Whether a long-running mode is ready (`/readyz`), and if not, why.
pub trait Readiness: Send + Sync {
    fn readiness(&self) -> (bool, Option<String>);
}

/// What the loop needs.
#[derive(Clone)]
pub struct LoopConfig {
    pub client: ClientConfig,
    /// Relist Permit this often (drift made outside permit-sync).
    pub drift_interval: Duration,
    /// Waits between retries of a failed sync.
    pub backoff: Backoff,
    /// Spread the waits (±20 %) so processes failing together do not retry in step.
    pub jitter: bool,
    pub exec: ExecOptions,
    pub metrics: SyncMetrics,
    /// Keep the Permit ids of each listing ([`Reconciler::ids`]: the controller's status).
    pub ids: bool,
}

impl LoopConfig {
    pub fn new(client: ClientConfig) -> LoopConfig {
        LoopConfig {
            client,
            drift_interval: Duration::from_secs(300),
            backoff: Backoff::new(Duration::from_secs(1), Duration::from_secs(60)),
            jitter: true,
            exec: ExecOptions::default(),
            metrics: crate::metrics::global().sync.clone(),
            ids: false,
        }
    }
}

/// A mode's side of the loop: the desired objects in, the per-object results back.
pub trait Source {
    /// The declared state.
    fn desired(&self) -> &Desired;
    /// What permit-sync owns: the inventory, or (the controller) the custom resources.
    fn ownership(&self) -> Ownership<'_>;
    fn options(&self) -> &PlanOptions;
    /// Whether planning only the touched keys may be enough (nothing held back, ownership trusted).
    fn shortcut_allowed(&self) -> bool {
        true
    }
    /// Removes from `plan` the ops the source holds back (`Plan::retain_ops`); returns what it
    /// held.
    fn hold(&mut self, _plan: &mut Plan) -> Vec<ObjectId> {
        Vec::new()
    }
    /// The plan is made (`scope`: the keys it covers when only the touched ones were planned).
    fn planned(&mut self, _plan: &Plan, _scope: Option<&BTreeSet<ObjectId>>, _held: &[ObjectId]) {}
    /// Before any write (ownership recorded). An error stops the sync before executing.
    fn before_execute(&mut self, _plan: &Plan, _environment: &str) -> anyhow::Result<()> {
        Ok(())
    }
    /// The outcome: `synced` says which ops succeeded.
    fn after_execute(
        &mut self,
        _plan: &Plan,
        _synced: &dyn Fn(&plan::Op) -> bool,
    ) -> anyhow::Result<()> {
        Ok(())
    }
}

/// How a sync ended.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub enum Class {
    /// Everything planned is done.
    #[default]
    Clean,
    /// Permit refused some objects (4xx): sending them again unchanged cannot succeed, so no
    /// backoff retry; the next change (or relist) tries again.
    Rejected { failed: usize, first: String },
    /// Some objects got no answer, a 429 or a 5xx: outcomes may be unknown. Relist, retry with
    /// backoff.
    Trouble { failed: usize, first: String },
    /// Connecting or listing failed: retry with backoff, not ready.
    Unreachable(String),
    /// The planner's guards refused the plan (an empty source, too many deletions): deterministic,
    /// no retry until the source changes.
    Refused(String),
    /// Recording ownership failed (nothing written after that): relist, retry with backoff.
    Failed(String),
    /// Cancelled while connecting or reading (never while writing).
    Cancelled,
}

impl Class {
    /// Retried with backoff.
    pub fn retries(&self) -> bool {
        matches!(
            self,
            Class::Trouble { .. } | Class::Unreachable(_) | Class::Failed(_)
        )
    }
}

/// What one sync did.
#[derive(Debug, Default)]
pub struct Synced {
    pub class: Class,
    /// Permit was listed for this sync.
    pub listed: bool,
    /// The plan (none when the sync stopped before planning).
    pub plan: Option<Plan>,
    /// Only the touched keys were planned.
    pub scoped: bool,
    /// The plan was executed (or, empty, its ownership recorded).
    pub applied: bool,
    /// The per-object outcome (empty when nothing ran).
    pub report: Option<Report>,
    /// Nothing left undone: held back, kept for references, or pruned later.
    pub settled: bool,
    pub plan_ms: u64,
    pub apply_ms: u64,
    /// Permit API requests this sync made.
    pub requests: u64,
}

impl Synced {
    /// The sync's `result` label (`permit_sync_syncs_total`), the same for every mode: `success`
    /// (the plan was executed, nothing failed), `noop` (nothing to do), `failure`.
    pub fn result(&self) -> &'static str {
        match (&self.class, self.applied) {
            (Class::Clean, true) => "success",
            (Class::Clean, false) => "noop",
            _ => "failure",
        }
    }
}

/// Connected, and the cache listed if it had to be.
pub struct Listing {
    pub client: PermitClient,
    /// Permit was listed now.
    pub listed: bool,
    /// The cache before this listing (drift: what changed outside permit-sync).
    pub previous: Option<State>,
}

/// The loop's state from one sync to the next.
pub struct Reconciler {
    config: LoopConfig,
    client: Option<PermitClient>,
    /// API use already recorded in the metrics.
    api_seen: crate::permit::Metrics,
    /// Permit as we believe it is (`None`: list before the next plan).
    live: Option<State>,
    ids: live::Ids,
    /// List Permit before the next plan: an outcome may be unknown.
    relist_needed: bool,
    listed_at: Option<Instant>,
    /// Failed syncs in a row (backoff).
    failures: u32,
    retry_at: Option<Instant>,
    /// A sync has run to the end.
    completed: bool,
    /// Permit answered the last sync.
    reachable: bool,
    /// The last sync ended with nothing left to do: only what changes needs planning.
    clean: bool,
    /// The options the last clean sync planned with.
    last_options: Option<PlanOptions>,
    /// Requests counted at the start of the sync in flight.
    requests_before: u64,
}

impl Reconciler {
    pub fn new(config: LoopConfig) -> Reconciler {
        Reconciler {
            config,
            client: None,
            api_seen: Default::default(),
            live: None,
            ids: Default::default(),
            relist_needed: true,
            listed_at: None,
            failures: 0,
            retry_at: None,
            completed: false,
            reachable: false,
            clean: false,
            last_options: None,
            requests_before: 0,
        }
    }

    pub fn config(&self) -> &LoopConfig {
        &self.config
    }

    /// Permit as the loop believes it is.
    pub fn live(&self) -> Option<&State> {
        self.live.as_ref()
    }

    /// The Permit ids of the last listing (with [`LoopConfig::ids`]).
    pub fn ids(&self) -> &live::Ids {
        &self.ids
    }

    pub fn client(&self) -> Option<&PermitClient> {
        self.client.as_ref()
    }

    /// A sync has run to the end.
    pub fn completed(&self) -> bool {
        self.completed
    }

    /// The loop's part of readiness: a sync ran to the end and Permit answered the last one.
    pub fn ready(&self) -> bool {
        self.completed && self.reachable
    }

    /// When a failed sync is tried again.
    pub fn retry_at(&self) -> Option<Instant> {
        self.retry_at
    }

    /// Failed syncs in a row.
    pub fn failures(&self) -> u32 {
        self.failures
    }

    /// When the drift relist is due.
    pub fn next_relist(&self) -> Instant {
        self.listed_at.unwrap_or_else(Instant::now) + self.config.drift_interval
    }

    /// Whether the next sync lists Permit: at start, after a dropped cache or an unknown outcome,
    /// and on the drift interval.
    pub fn relist_due(&self) -> bool {
        self.live.is_none()
            || self.relist_needed
            || self
                .listed_at
                .is_none_or(|t| t.elapsed() >= self.config.drift_interval)
    }

    /// Drops the cache: the next sync lists Permit (a new leadership term starts from Permit as it
    /// is, not as a previous term left it).
    pub fn invalidate(&mut self) {
        self.live = None;
        self.clean = false;
    }

    /// One sync: [`Reconciler::connect_and_list`], then [`Reconciler::reconcile`].
    pub async fn sync<S: Source>(
        &mut self,
        source: &mut S,
        touched: Option<BTreeSet<ObjectId>>,
        relist: bool,
        cancel: &CancellationToken,
    ) -> Synced {
        match self.connect_and_list(relist, cancel).await {
            Ok(listing) => self.reconcile(source, &listing, touched).await,
            Err(class) => Synced {
                class,
                ..Default::default()
            },
        }
    }

    /// Connects (once) and lists Permit when [`Reconciler::relist_due`] or `relist`. Reading is
    /// safe to abandon on `cancel`. A failure is [`Class::Unreachable`], backoff scheduled.
    pub async fn connect_and_list(
        &mut self,
        relist: bool,
        cancel: &CancellationToken,
    ) -> Result<Listing, Class> {
        self.requests_before = self.api_seen.total();
        let client = tokio::select! {
            c = self.connect() => c,
            _ = cancel.cancelled() => return Err(Class::Cancelled),
        };
        let client = match client {
            Ok(c) => c,
            Err(message) => return Err(self.unreachable(message)),
        };
        self.requests_before = client.metrics().total();
        let listed = relist || self.relist_due();
        let mut previous = None;
        if listed {
            let read = tokio::select! {
                l = self.read(&client) => l,
                _ = cancel.cancelled() => return Err(Class::Cancelled),
            };
            match read {
                Ok((fresh, ids)) => {
                    previous = self.live.replace(fresh);
                    if self.config.ids {
                        self.ids = ids;
                    }
                    self.relist_needed = false;
                    self.listed_at = Some(Instant::now());
                }
                Err(e) => {
                    // Keep listing on each retry until it answers: the cache says nothing about
                    // whether Permit is back.
                    self.relist_needed = true;
                    self.record_api();
                    return Err(self.unreachable(format!("Permit unreachable: {e}")));
                }
            }
        }
        self.reachable = true;
        Ok(Listing {
            client,
            listed,
            previous,
        })
    }

    /// Lists Permit now (the controller, after creates: new objects' ids).
    pub async fn relist(&mut self) -> Result<(), crate::permit::PermitError> {
        let Some(client) = self.client.clone() else {
            return Ok(());
        };
        let (fresh, ids) = self.read(&client).await?;
        self.live = Some(fresh);
        if self.config.ids {
            self.ids = ids;
        }
        self.relist_needed = false;
        self.listed_at = Some(Instant::now());
        Ok(())
    }

    /// Plans the source against the cache, executes, projects the outcome and classifies it.
    pub async fn reconcile<S: Source>(
        &mut self,
        source: &mut S,
        listing: &Listing,
        touched: Option<BTreeSet<ObjectId>>,
    ) -> Synced {
        let clean = std::mem::take(&mut self.clean);
        let last_options = self.last_options.take();
        let client = &listing.client;
        let options = source.options().clone();
        let mut out = Synced {
            listed: listing.listed,
            ..Default::default()
        };
        // Plan only what changed when nothing else can be pending: the last sync left nothing
        // to do, Permit was not listed since, nothing is held back and the options are the same.
        let scope = touched.filter(|_| {
            clean
                && !listing.listed
                && self.completed
                && source.shortcut_allowed()
                && last_options.as_ref() == Some(&options)
        });
        let plan_started = Instant::now();
        let Some(live_state) = self.live.as_mut() else {
            // Not listed (a caller skipped `connect_and_list`): list first.
            self.relist_needed = true;
            out.class = Class::Failed("Permit not listed yet".into());
            return self.done(out);
        };
        let covered = match &scope {
            Some(keys) => Scope::Keys(keys),
            None => Scope::All,
        };
        let planned = plan::plan(
            source.desired(),
            live_state,
            source.ownership(),
            &options,
            covered,
        );
        let mut plan = match planned {
            Ok(p) => p,
            Err(e) => {
                out.class = Class::Refused(format!("plan refused: {e}"));
                return self.done(out);
            }
        };
        for w in &plan.warnings {
            tracing::warn!("{w}");
        }
        let held = source.hold(&mut plan);
        out.plan_ms = ms(plan_started.elapsed());
        out.scoped = scope.is_some();
        // Something the plan leaves undone (kept for references, prune skipped) may become due
        // through a change elsewhere: the next sync plans everything.
        out.settled = held.is_empty() && plan.warnings.iter().all(Warning::settled);
        source.planned(&plan, scope.as_ref(), &held);
        crate::memory::log_phase("planning");

        let must_apply = !plan.ops.is_empty() || !plan.stale.is_empty() || !self.completed;
        if must_apply {
            let apply_started = Instant::now();
            if let Err(e) = source.before_execute(&plan, &client.scope().id()) {
                // Nothing was executed.
                self.relist_needed = true;
                out.class = Class::Failed(format!("{e:#}"));
                out.plan = Some(plan);
                return self.done(out);
            }
            crate::memory::log_phase("recording the planned objects");
            let report = if plan.ops.is_empty() {
                Report {
                    objects: Vec::new(),
                    metrics: Default::default(),
                    elapsed: Duration::ZERO,
                }
            } else {
                exec::execute(client, &plan, &self.config.exec).await
            };
            let recorded = {
                // By op index, as the report lists the plan's ops: no set of every op's id.
                let ok = crate::engine::synced(&report);
                let live_state = self.live.as_mut().expect("checked above");
                plan.project(live_state, &ok);
                crate::memory::log_phase("projecting the live state");
                source.after_execute(&plan, &ok)
            };
            out.apply_ms = ms(apply_started.elapsed());
            out.applied = true;
            if let Err(e) = recorded {
                self.relist_needed = true;
                out.class = Class::Failed(format!("{e:#}"));
                out.report = Some(report);
                out.plan = Some(plan);
                return self.done(out);
            }
            let failed = report.failed().count();
            let first = report.failed().next().map(|f| {
                f.message
                    .clone()
                    .unwrap_or_else(|| format!("{} {} failed", f.kind, f.key))
            });
            // A rejected object (4xx) is its own problem; anything else (no answer, 429, 5xx) is
            // Permit's, and its outcome may be unknown.
            if report.failed().any(|o| !o.rejected()) {
                self.relist_needed = true;
                out.class = Class::Trouble {
                    failed,
                    first: first.unwrap_or_default(),
                };
            } else if failed > 0 {
                out.class = Class::Rejected {
                    failed,
                    first: first.unwrap_or_default(),
                };
            }
            out.report = Some(report);
        }
        if out.class == Class::Clean {
            self.clean = out.settled;
            self.last_options = Some(options);
        }
        out.plan = Some(plan);
        self.done(out)
    }

    /// Records the API use and the backoff of a finished sync.
    fn done(&mut self, mut out: Synced) -> Synced {
        self.record_api();
        out.requests = self.api_seen.total().saturating_sub(self.requests_before);
        match &out.class {
            Class::Clean | Class::Rejected { .. } => {
                self.completed = true;
                self.succeeded();
            }
            Class::Refused(_) => self.succeeded(),
            c if c.retries() => self.failed(),
            _ => {}
        }
        if matches!(out.class, Class::Trouble { .. }) {
            self.reachable = false;
        }
        out
    }

    fn succeeded(&mut self) {
        self.failures = 0;
        self.retry_at = None;
    }

    fn failed(&mut self) {
        self.failures = self.failures.saturating_add(1);
        let b = self.config.backoff;
        let wait = if self.config.jitter {
            b.jittered(self.failures)
        } else {
            b.delay(self.failures)
        };
        self.retry_at = Some(Instant::now() + wait);
    }

    /// Connecting or listing failed.
    fn unreachable(&mut self, message: String) -> Class {
        self.reachable = false;
        self.failed();
        Class::Unreachable(message)
    }

    async fn connect(&mut self) -> Result<PermitClient, String> {
        if let Some(c) = &self.client {
            return Ok(c.clone());
        }
        match PermitClient::connect(self.config.client.clone()).await {
            Ok(c) => {
                tracing::info!(api_url = %self.config.client.api_url, environment = %c.scope().id(), "connected to Permit");
                // A new client counts from zero (its scope lookup included).
                self.api_seen = Default::default();
                self.client = Some(c.clone());
                Ok(c)
            }
            Err(e) => {
                self.config.metrics.connect_failures.inc();
                Err(format!("Permit unreachable: {e}"))
            }
        }
    }

    async fn read(
        &self,
        client: &PermitClient,
    ) -> Result<(State, live::Ids), crate::permit::PermitError> {
        if self.config.ids {
            live::read_with_ids(client).await
        } else {
            Ok((live::read(client).await?, Default::default()))
        }
    }

    /// Adds the Permit API requests, retries and rate-limit waits since the last call to the
    /// process metrics (`permit_sync_api_requests_total` and the rest), for both modes.
    pub fn record_api(&mut self) {
        if let Some(client) = &self.client {
            let now = client.metrics();
            self.config.metrics.record_api(&now.since(&self.api_seen));
            self.api_seen = now;
        }
    }
}

/// A duration in whole milliseconds, as the status and logs report them.
pub(crate) fn ms(d: Duration) -> u64 {
    d.as_millis() as u64
}
