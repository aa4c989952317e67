//! The Kubernetes controller: the custom resources are a *source* for the same engine as directory
//! mode.
//!
//! ```text
//! watches (sources) ─► stores ─► batch window ─► prepare (batch) ─► plan ─► execute (bulk)
//!                                                                  └──► status, finalizers, events
//! ```
//!
//! - **One batch for everything.** Any watch event wakes the loop; after a short quiet window
//!   (`batch_window`, at most `batch_max_wait`) the stores are read whole, planned against a cached
//!   live state (listed when leadership starts, after failures and every `resync`; otherwise
//!   projected from each plan's outcome) and executed with the engine's bulk calls.
//! - **Ownership** is the custom resources and the finalizer `permitsync.dev/cleanup`: deletions
//!   happen only for resources being deleted (see [`batch`]); nothing else in Permit is pruned.
//! - **Status** (`Synced`, `Ready`, `observedGeneration`, the key) is written only on change.
//! - **Failures** back off per resource (exponential); Permit's 4xx rejections wait for a new
//!   generation; Permit or the apiserver being unreachable only delays (watches back off and resume).
//! - **Leader election** ([`leader`]): only the leader writes (Permit, finalizers, status, events,
//!   the PDP controller); the others keep their watches warm.
//!
//! Connect, the cached live state and its relist rules, plan → execute → project, the failure
//! classes, the backoff of an unreachable Permit and the Permit API metrics are the reconcile
//! loop's ([`crate::reconcile`]), shared with directory mode; the custom resources are its
//! [`crate::reconcile::Source`] ([`Resources`]).

pub mod batch;
pub mod events;
pub mod finalizer;
pub mod leader;
pub mod pdp;
pub mod sources;
pub mod status;

use crate::desired::Desired;
use crate::exec::{ExecOptions, Report};
use crate::kinds::ObjectId;
use crate::permit::ClientConfig;
use crate::plan::{Ownership, Plan, PlanOptions};
use crate::reconcile::{Class, LoopConfig, Reconciler};
use batch::{Disposition, Retry, Verdict};
use futures::StreamExt;
use kube::Client;
use kube::runtime::events::{Recorder, Reporter};
use sources::{Cr, CrId, Stores};
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::{Notify, watch};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// Field manager and event reporter name.
pub const MANAGER: &str = "permit-sync";

#[derive(Clone, Debug)]
pub struct Config {
    /// Namespaces to watch; empty: all.
    pub namespaces: Vec<String>,
    pub permit: ClientConfig,
    pub leader: Option<leader::LeaseConfig>,
    /// This instance's name in events and the Lease.
    pub identity: String,
    /// Quiet time that closes a batch window.
    pub batch_window: Duration,
    /// Longest a batch waits for quiet once it has something to do.
    pub batch_max_wait: Duration,
    /// Relist Permit this often (drift made outside permit-sync).
    pub resync: Duration,
    pub backoff_base: Duration,
    pub backoff_max: Duration,
    /// Run the `PermitPDP` controller too.
    pub pdp: bool,
    pub exec: ExecOptions,
    /// Kubernetes writes (finalizers, status, events) in flight at once.
    pub kube_concurrency: usize,
}

impl Config {
    pub fn new(permit: ClientConfig) -> Config {
        Config {
            namespaces: Vec::new(),
            permit,
            leader: None,
            identity: format!(
                "{MANAGER}-{}",
                &uuid::Uuid::new_v4().simple().to_string()[..8]
            ),
            batch_window: Duration::from_millis(300),
            batch_max_wait: Duration::from_secs(3),
            resync: Duration::from_secs(600),
            backoff_base: Duration::from_secs(1),
            backoff_max: Duration::from_secs(300),
            pdp: true,
            exec: ExecOptions::default(),
            kube_concurrency: 16,
        }
    }
}

/// What the health server and tests read from a running controller.
#[derive(Debug, Default)]
pub struct ControllerState {
    /// Every watch has listed once.
    pub ready: AtomicBool,
    pub leader: AtomicBool,
    pub batches: AtomicU64,
    /// Permit API writes this instance made (counted by its client).
    pub permit_writes: AtomicU64,
    pub status_writes: AtomicU64,
}

/// The controller: ready once every watch has listed.
impl crate::reconcile::Readiness for ControllerState {
    fn readiness(&self) -> (bool, Option<String>) {
        if self.ready.load(Ordering::Relaxed) {
            (true, None)
        } else {
            (false, Some("watches not synced yet".into()))
        }
    }
}

/// Runs until `shutdown` (then releases the Lease) or until a watch dies for good.
pub async fn run(
    client: Client,
    config: Config,
    shared: Arc<ControllerState>,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let wake = Arc::new(Notify::new());
    let mut tasks: JoinSet<anyhow::Result<()>> = JoinSet::new();
    let stores = Stores::start(&client, &config.namespaces, wake.clone(), &mut tasks);

    // Without election this instance always leads; the sender lives as long as `run`.
    let (_always, always) = watch::channel(true);
    let (leading, election) = match &config.leader {
        Some(lease) => {
            let (rx, task) = leader::campaign(client.clone(), lease.clone(), shutdown.clone());
            (rx, Some(task))
        }
        None => (always, None),
    };

    let ready_stores = stores.clone();
    let ready_shared = shared.clone();
    let ready_wake = wake.clone();
    tasks.spawn(async move {
        ready_stores.ready().await;
        ready_shared.ready.store(true, Ordering::Relaxed);
        ready_wake.notify_one();
        tracing::info!("watches synced");
        std::future::pending::<()>().await;
        Ok(())
    });

    let core = Reconciler::new(LoopConfig {
        client: config.permit.clone(),
        drift_interval: config.resync,
        // Permit unreachable: doubling from `backoff_base` to four times it (an outage is
        // noticed within a few seconds of its end).
        backoff: crate::backoff::Backoff::new(
            config.backoff_base,
            (config.backoff_base * 4).min(config.backoff_max),
        ),
        jitter: false,
        exec: config.exec.clone(),
        metrics: crate::metrics::global().sync.clone(),
        ids: true,
    });
    let mut controller = Controller {
        recorder: Recorder::new(
            client.clone(),
            Reporter {
                controller: MANAGER.into(),
                instance: Some(config.identity.clone()),
            },
        ),
        client,
        stores,
        config,
        shared: shared.clone(),
        core,
        retries: HashMap::new(),
        applied: HashMap::new(),
        invalid_reported: HashMap::new(),
    };
    let result = tokio::select! {
        r = controller.lead(leading, wake, shutdown.clone()) => r,
        Some(done) = tasks.join_next() => match done {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(e),
            Err(e) => Err(anyhow::anyhow!("a controller task panicked: {e}")),
        },
    };
    // Critical task gone or shutdown: stop everything, release the Lease.
    shutdown.cancel();
    tasks.abort_all();
    if let Some(election) = election {
        let _ = tokio::time::timeout(Duration::from_secs(6), election).await;
    }
    shared.leader.store(false, Ordering::Relaxed);
    result
}

/// The custom resources as a source of the reconcile loop: one batch's desired state, its
/// ownership (the declared objects, and the undeclared ones being deleted) and the ops of held
/// resources.
struct Resources<'a> {
    desired: &'a Desired,
    deleting: &'a BTreeSet<ObjectId>,
    options: PlanOptions,
    held: &'a BTreeSet<ObjectId>,
}

impl crate::reconcile::Source for Resources<'_> {
    fn desired(&self) -> &Desired {
        self.desired
    }

    fn ownership(&self) -> Ownership<'_> {
        Ownership::Declared {
            deleting: self.deleting,
        }
    }

    fn options(&self) -> &PlanOptions {
        &self.options
    }

    fn hold(&mut self, plan: &mut Plan) -> Vec<ObjectId> {
        let mut held = Vec::new();
        plan.retain_ops(|op| {
            let id = (op.kind, op.key.clone());
            let keep = !self.held.contains(&id);
            if !keep {
                held.push(id);
            }
            keep
        });
        held
    }
}

struct Controller {
    client: Client,
    stores: Stores,
    config: Config,
    shared: Arc<ControllerState>,
    recorder: Recorder,
    /// Connect, the live cache (listed with ids: `status.permitId`), plan → execute → project,
    /// backoff of an unreachable Permit, API metrics.
    core: Reconciler,
    retries: HashMap<CrId, Retry>,
    /// The Permit objects each resource had after its last successful batch: a user's inline
    /// roles removed since are unassigned. Process memory: after a restart, roles removed while
    /// the controller was down are left (never deleted without knowing they were ours).
    applied: HashMap<CrId, Vec<batch::Id>>,
    /// Malformed resources have no typed status to compare with: what we last wrote, by uid.
    invalid_reported: HashMap<String, String>,
}

impl Controller {
    /// Waits for leadership, then batches until it is lost; again until shutdown.
    async fn lead(
        &mut self,
        mut leading: watch::Receiver<bool>,
        wake: Arc<Notify>,
        shutdown: CancellationToken,
    ) -> anyhow::Result<()> {
        loop {
            while !*leading.borrow_and_update() {
                tokio::select! {
                    _ = shutdown.cancelled() => return Ok(()),
                    r = leading.changed() => if r.is_err() { return Ok(()) },
                }
            }
            self.set_leader(true);
            let pdp_stop = shutdown.child_token();
            let pdp_task = self.config.pdp.then(|| {
                tokio::spawn(pdp::run(
                    self.client.clone(),
                    self.config.namespaces.clone(),
                    Some(self.config.permit.api_url.clone()),
                    pdp_stop.clone(),
                ))
            });
            // A new term starts from Permit as it is, not as a previous term left it.
            self.core.invalidate();
            let lost = self.term(&mut leading, &wake, &shutdown).await;
            pdp_stop.cancel();
            if let Some(t) = pdp_task {
                let _ = tokio::time::timeout(Duration::from_secs(5), t).await;
            }
            self.set_leader(false);
            if !lost {
                return Ok(());
            }
            tracing::warn!("leadership lost; writes stop until it is regained");
        }
    }

    fn set_leader(&self, yes: bool) {
        self.shared.leader.store(yes, Ordering::Relaxed);
        crate::metrics::global()
            .controller
            .leader
            .set(i64::from(yes));
    }

    /// One leadership term. Returns true when leadership was lost, false on shutdown.
    async fn term(
        &mut self,
        leading: &mut watch::Receiver<bool>,
        wake: &Notify,
        shutdown: &CancellationToken,
    ) -> bool {
        let mut first = true;
        loop {
            if !first {
                let deadline = self.next_deadline();
                tokio::select! {
                    _ = shutdown.cancelled() => return false,
                    r = leading.changed() => if r.is_err() || !*leading.borrow() { return true },
                    _ = wake.notified() => self.gather(wake).await,
                    _ = tokio::time::sleep_until(deadline.into()) => {}
                }
            }
            first = false;
            if !self.shared.ready.load(Ordering::Relaxed) {
                continue; // the watches' first lists wake us when done
            }
            let lost = tokio::select! {
                _ = shutdown.cancelled() => return false,
                // Mid-batch: what ran is unknown, so the next term lists Permit again.
                r = leading.changed() => r.is_err() || !*leading.borrow(),
                _ = self.batch() => false,
            };
            self.core.record_api();
            if lost {
                return true;
            }
        }
    }

    /// The batch window: wait until events stop for `batch_window`, at most `batch_max_wait`.
    async fn gather(&self, wake: &Notify) {
        let until = Instant::now() + self.config.batch_max_wait;
        loop {
            let quiet = tokio::time::timeout(self.config.batch_window, wake.notified());
            if quiet.await.is_err() || Instant::now() >= until {
                return;
            }
        }
    }

    fn next_deadline(&self) -> Instant {
        let now = Instant::now();
        // The drift relist and the retry of an unreachable Permit are the loop's.
        let mut next = now + self.config.resync;
        next = next.min(self.core.next_relist().into_std());
        if let Some(at) = self.core.retry_at() {
            next = next.min(at.into_std());
        }
        for r in self.retries.values().filter(|r| !r.rejected) {
            next = next.min(r.not_before);
        }
        next.max(now + Duration::from_millis(50))
    }

    async fn batch(&mut self) {
        let started = Instant::now();
        let metrics = &crate::metrics::global().controller;
        metrics.batches.inc();
        self.shared.batches.fetch_add(1, Ordering::Relaxed);

        // Permit: connect and list when needed (the loop's relist policy). Failures keep
        // finalizers and statuses as they are; the loop backs off. The batch is dropped, not
        // cancelled, on shutdown or lost leadership.
        let listing = match self
            .core
            .connect_and_list(false, &CancellationToken::new())
            .await
        {
            Ok(l) => l,
            Err(class) => {
                let step = self
                    .core
                    .retry_at()
                    .map(|t| t.saturating_duration_since(tokio::time::Instant::now()))
                    .unwrap_or_default();
                let error = match class {
                    Class::Unreachable(m) => m,
                    other => format!("{other:?}"),
                };
                tracing::warn!(error = %error, "cannot reach Permit; retrying in {step:?}");
                self.core
                    .config()
                    .metrics
                    .record_sync("failure", started.elapsed());
                return;
            }
        };

        let prepared = batch::prepare(self.stores.snapshot(), &self.applied);
        let now = Instant::now();

        // Finalizers first, so nothing is created in Permit that a deletion could miss.
        let need: Vec<&Cr> = prepared
            .items
            .iter()
            .filter(|(cr, d)| {
                matches!(d, Disposition::Declared { .. }) && !cr.has_finalizer(batch::FINALIZER)
            })
            .map(|(cr, _)| cr)
            .collect();
        let added = self
            .each(need, |c, cr| async move {
                let r = finalizer::add(&c, cr).await;
                (cr.id(), r)
            })
            .await;
        let mut held: BTreeSet<CrId> = BTreeSet::new();
        for (id, r) in added {
            if let Err(e) = r {
                self.kube_error(&e);
                held.insert(id);
            }
        }
        for (cr, _) in &prepared.items {
            // A rejected object that is being deleted is tried again (with backoff): the delete
            // is a different request from the one Permit refused.
            let holds = |r: &Retry| {
                r.holds(cr.generation(), now) && !(cr.deleting() && now >= r.not_before)
            };
            if self.retries.get(&cr.id()).is_some_and(holds) {
                held.insert(cr.id());
            }
        }
        let held_ids = batch::held_ids(&prepared.items, &held);

        let options = PlanOptions {
            prune: true,
            allow_empty: true,
            ..Default::default()
        };
        let mut source = Resources {
            desired: &prepared.desired,
            deleting: &prepared.deleting,
            options,
            held: &held_ids,
        };
        let synced = self.core.reconcile(&mut source, &listing, None).await;
        drop(listing);
        self.core
            .config()
            .metrics
            .record_sync(synced.result(), started.elapsed());
        if let Class::Refused(e) | Class::Failed(e) = &synced.class {
            tracing::error!(error = %e, "planning failed");
            return;
        }
        let plan = synced.plan.unwrap_or_default();
        let report = synced.report.unwrap_or_else(|| Report {
            objects: Vec::new(),
            metrics: Default::default(),
            elapsed: Duration::ZERO,
        });
        if plan.has_changes() {
            self.shared
                .permit_writes
                .fetch_add(report.metrics.writes(), Ordering::Relaxed);
            tracing::info!(
                operations = plan.ops.len(),
                calls = report.metrics.total(),
                failed = report.failed().count(),
                elapsed_ms = report.elapsed.as_millis() as u64,
                "batch executed"
            );
        }
        // After a failure of unknown outcome (a bulk call may have half-landed) the loop lists
        // again before the next plan; the cache is the outcome projected.
        let executed = batch::Executed::new(&plan, &report);
        let created = executed.created();
        let live_after = self.core.live().expect("listed above");
        let mut applied = HashMap::new();
        let verdicts: Vec<(Cr, Verdict)> = prepared
            .items
            .into_iter()
            .map(|(cr, d)| {
                let v = batch::verdict(&d, held.contains(&cr.id()), &executed, live_after);
                match (&v, &d) {
                    (Verdict::Synced(_), Disposition::Declared { ids, .. }) => {
                        applied.insert(cr.id(), ids.clone());
                    }
                    _ => {
                        if let Some(before) = self.applied.remove(&cr.id()) {
                            applied.insert(cr.id(), before);
                        }
                    }
                }
                (cr, v)
            })
            .collect();
        self.applied = applied;
        // New objects have ids only Permit knows (bulk answers do not carry them): list once now,
        // so the status is written once, complete.
        if created && let Err(e) = self.core.relist().await {
            tracing::debug!(error = %e, "listing ids after creates");
        }
        tracing::debug!(tally = ?batch::tally(verdicts.iter().map(|(_, v)| v)), "batch verdicts");
        self.remember(&verdicts, now);
        self.write_back(verdicts).await;
        metrics
            .batch_duration
            .observe(started.elapsed().as_secs_f64());
    }

    /// Backoff memory: failures extend it, success clears it, vanished resources are forgotten.
    fn remember(&mut self, verdicts: &[(Cr, Verdict)], now: Instant) {
        let present: BTreeSet<CrId> = verdicts.iter().map(|(cr, _)| cr.id()).collect();
        self.retries.retain(|id, _| present.contains(id));
        for (cr, v) in verdicts {
            match v {
                Verdict::Failed { rejected, .. } => {
                    let next = Retry::after(
                        self.retries.get(&cr.id()),
                        cr.generation(),
                        *rejected,
                        now,
                        self.config.backoff_base,
                        self.config.backoff_max,
                    );
                    self.retries.insert(cr.id(), next);
                }
                Verdict::Held => {}
                _ => {
                    self.retries.remove(&cr.id());
                }
            }
        }
    }

    /// Status, finalizer removals and events, concurrently.
    async fn write_back(&mut self, verdicts: Vec<(Cr, Verdict)>) {
        let metrics = &crate::metrics::global().controller;
        let mut invalid_now = HashMap::new();
        let mut work: Vec<(Cr, Verdict, Option<crate::kinds::SyncStatus>)> = Vec::new();
        for (cr, v) in verdicts {
            let id = cr
                .object
                .as_ref()
                .ok()
                .and_then(|o| self.core.ids().get(&(o.kind(), o.permit_key())));
            let mut new = status::desired(&cr, &v, id.map(String::as_str));
            if let (Verdict::Invalid(m), Some(uid)) = (&v, cr.meta.uid.clone()) {
                // No typed status to compare with: write once per uid, generation and message.
                let seen = format!("{:?}/{m}", cr.generation());
                if self.invalid_reported.get(&uid) == Some(&seen) {
                    new = None;
                }
                invalid_now.insert(uid, seen);
            } else if new
                .as_ref()
                .is_some_and(|n| !status::changed(cr.status.as_ref(), n))
            {
                new = None;
            }
            let release = matches!(v, Verdict::Released { .. });
            if new.is_some() || release {
                work.push((cr, v, new));
            }
        }
        self.invalid_reported = invalid_now;
        let recorder = self.recorder.clone();
        let shared = self.shared.clone();
        let results = self
            .each(work.iter().collect(), |client, (cr, v, new)| {
                let recorder = recorder.clone();
                let shared = shared.clone();
                async move {
                    let label = v.label();
                    metrics
                        .reconciles
                        .get_or_create(&crate::metrics::OutcomeLabels {
                            kind: cr.kind.to_string(),
                            outcome: label.into(),
                        })
                        .inc();
                    if let Verdict::Released { message, deleted } = v {
                        let r = finalizer::remove(&client, cr).await;
                        if r.is_ok() && *deleted {
                            events::publish(&recorder, cr, false, "Deleted", message).await;
                        }
                        return r;
                    }
                    let Some(new) = new else { return Ok(()) };
                    finalizer::write_status(&client, cr, new).await?;
                    shared.status_writes.fetch_add(1, Ordering::Relaxed);
                    let before = status::synced(cr.status.as_ref());
                    let after = status::synced(Some(new));
                    let transition = before.map(|c| (&c.status, &c.reason, &c.message))
                        != after.map(|c| (&c.status, &c.reason, &c.message));
                    if transition && let Some(c) = after {
                        let warning = c.status == "False" && !matches!(v, Verdict::Paused);
                        if warning {
                            tracing::warn!(
                                object = %cr.subject(),
                                reason = c.reason.as_deref().unwrap_or(""),
                                message = c.message.as_deref().unwrap_or(""),
                                "not synced"
                            );
                        }
                        let note = match v {
                            Verdict::Synced(what) => what.as_str(),
                            _ => c.message.as_deref().unwrap_or(""),
                        };
                        events::publish(
                            &recorder,
                            cr,
                            warning,
                            c.reason.as_deref().unwrap_or(status::SYNCED),
                            note,
                        )
                        .await;
                    }
                    Ok(())
                }
            })
            .await;
        for r in results {
            if let Err(e) = r {
                self.kube_error(&e);
            }
        }
    }

    fn kube_error(&self, e: &finalizer::WriteError) {
        if e.conflict() {
            // Our view was behind (resourceVersion); the next batch sees the new object.
            tracing::debug!(error = %e, "Kubernetes write conflicted; retried at the next batch");
        } else if e.forbidden() {
            tracing::error!(error = %e, "permission denied: the controller's RBAC lacks this verb");
        } else {
            tracing::warn!(error = %e, "Kubernetes write failed; retried at the next batch");
        }
    }

    /// Runs `f` over `items`, `kube_concurrency` at a time.
    async fn each<'a, T, F, Fut, R>(&self, items: Vec<T>, f: F) -> Vec<R>
    where
        T: 'a,
        F: Fn(Client, T) -> Fut,
        Fut: std::future::Future<Output = R>,
    {
        let futures: Vec<Fut> = items
            .into_iter()
            .map(|item| f(self.client.clone(), item))
            .collect();
        futures::stream::iter(futures)
            .buffer_unordered(self.config.kube_concurrency.max(1))
            .collect()
            .await
    }
}
