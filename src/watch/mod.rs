//! Directory mode as a long-running process (`watch`, `dev`): keeps Permit equal to a directory of
//! manifests.
//!
//! The loop ([`run`]) waits for file events ([`debounce`]), a periodic rescan, a periodic relist
//! (drift, [`drift`]) or a retry, then syncs once:
//!
//! 1. **Scan** ([`scan::FileSet`]): re-read every file, re-parse the changed ones; a file that stops
//!    parsing keeps its last good objects in force and reports its errors.
//! 2. **Plan** against the cached live state (`engine::plan_against`): a change to one object
//!    plans that object only, with no API read. The cache is listed at start, after a failed
//!    apply (its outcome may be unknown) and by the drift relist; otherwise it is the state
//!    `engine::apply` projects from what it did.
//! 3. **Apply** (`engine::apply`): bulk calls, inventory written before and after, so a kill at
//!    any point converges on restart. Changes arriving within the batching window share one plan,
//!    hence one bulk call per kind.
//!
//! Timing hooks (for the change-to-write benchmark): `permit_sync_change_to_write_seconds` (first
//! file event of a batch to its writes done), `permit_sync_sync_duration_seconds`, and the phases
//! of the last sync (`batch_wait_ms`, `scan_ms`, `plan_ms`, `apply_ms`) in `/status`.
//!
//! Connect, the cached live state and its relist rules, plan → execute → project, the failure
//! classes and their backoff are the reconcile loop's ([`crate::reconcile`]), shared with the
//! controller; the directory is its [`crate::reconcile::Source`] (`apply.rs`: the inventory file
//! and the object table). Failures (Permit unreachable, per-object errors) are retried with
//! exponential backoff (1 s doubling up to `max_backoff`, jittered); meanwhile `/readyz` says not
//! ready and every object not synced carries the error. Objects Permit rejects (4xx) get no
//! backoff retries: they are tried again by the next sync (an edit, the relist). Cancellation
//! interrupts waiting and reading, never an apply: the batch in flight finishes and the inventory
//! is never half-written.

mod apply;
pub mod debounce;
pub mod drift;
pub mod scan;
pub mod sources;
pub mod state;

use crate::desired::Desired;
use crate::engine;
use crate::exec::ExecOptions;
use crate::inventory::{Loaded, StateFile};
use crate::kinds::{Object, PermitPDP};
use crate::manifest::{Diagnostic, LoadedObject};
use crate::metrics::{KindLabels, PdpMetrics, ResultLabels, SyncMetrics};
use crate::model::State;
use crate::permit::ClientConfig;
use crate::plan::{Action, Mode, Plan, PlanOptions};
use crate::reconcile::ms;
use crate::reconcile::{Class, LoopConfig, Reconciler};
use anyhow::Context as _;
use debounce::{Batch, FsWatch, Signal};
use drift::DriftMode;
use sources::Key;
use state::{FileProblem, ObjectState, PdpState, Shared, SyncTiming};
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::Duration;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// Everything the loop needs.
#[derive(Clone)]
pub struct Config {
    pub path: PathBuf,
    pub options: PlanOptions,
    pub state_file: PathBuf,
    pub client: ClientConfig,
    /// Changes arriving within this window after the first become one sync.
    pub batch_window: Duration,
    /// Full rescan of the files even without events.
    pub rescan_interval: Duration,
    /// Relist of Permit to find drift.
    pub drift_interval: Duration,
    pub drift: DriftMode,
    pub exec: ExecOptions,
    /// Longest wait between retries.
    pub max_backoff: Duration,
    pub metrics: SyncMetrics,
    pub pdp_metrics: PdpMetrics,
}

impl Config {
    /// Defaults for everything but the source and the connection.
    pub fn new(
        path: impl Into<PathBuf>,
        state_file: impl Into<PathBuf>,
        client: ClientConfig,
    ) -> Config {
        let metrics = crate::metrics::global();
        Config {
            path: path.into(),
            options: PlanOptions::default(),
            state_file: state_file.into(),
            client,
            batch_window: Duration::from_millis(500),
            rescan_interval: Duration::from_secs(60),
            drift_interval: Duration::from_secs(300),
            drift: DriftMode::Correct,
            exec: ExecOptions::default(),
            max_backoff: Duration::from_secs(60),
            metrics: metrics.sync.clone(),
            pdp_metrics: metrics.pdp.clone(),
        }
    }
}

/// Runs until `cancel` fires; the sync in flight when it fires finishes first.
pub async fn run(config: Config, shared: Shared, cancel: CancellationToken) -> anyhow::Result<()> {
    shared.update(|r| {
        r.path = config.path.display().to_string();
        r.api_url = config.client.api_url.clone();
        r.message = Some("starting: no sync has run yet".into());
    });
    // One writer per inventory: a second `watch` or an `apply` on the same state file is refused.
    let _lock = StateFile::new(&config.state_file)
        .lock()
        .with_context(|| format!("locking inventory {}", config.state_file.display()))?;
    let signal = Signal::new();
    let mut fs_watch = start_watch(&config, &signal);
    let window = config.batch_window;
    let mut sync = Syncer::new(config.clone(), shared, cancel.clone());
    let start = Instant::now();
    // The first sync runs at once.
    let mut batch: Option<Batch> = Some(Batch::open(start, Duration::ZERO));
    let mut retry_at: Option<Instant> = None;
    let mut next_rescan = start + config.rescan_interval;
    loop {
        // The drift relist is the loop's (counted from the last listing).
        let next_relist = sync.core.next_relist();
        // While backing off, the periodic relist and rescan wait for the retry: a Permit outage
        // sees one attempt per backoff step, not one per drift or rescan interval on top.
        let relist_at = retry_at.map_or(next_relist, |t| next_relist.max(t));
        let rescan_at = retry_at.map_or(next_rescan, |t| next_rescan.max(t));
        let wake = [
            batch.map(|b| b.deadline()),
            retry_at,
            Some(relist_at),
            Some(rescan_at),
        ]
        .into_iter()
        .flatten()
        .min()
        .expect("timers are set");
        tokio::select! {
            biased;
            _ = cancel.cancelled() => break,
            _ = signal.wait() => {
                let now = Instant::now();
                match &mut batch {
                    Some(b) => b.event(now),
                    None => batch = Some(Batch::open(now, window)),
                }
                continue;
            }
            _ = tokio::time::sleep_until(wake) => {}
        }
        let now = Instant::now();
        if now >= rescan_at {
            next_rescan = now + config.rescan_interval;
            batch.get_or_insert(Batch::open(now, Duration::ZERO));
        }
        let relist = now >= relist_at;
        let batch_due = batch.is_some_and(|b| now >= b.deadline());
        let retry_due = retry_at.is_some_and(|t| now >= t);
        if !(relist || batch_due || retry_due) {
            continue;
        }
        // The path appeared, vanished or now leads elsewhere (a symlink swapped): watch anew.
        if fs_watch.as_ref().is_none_or(FsWatch::moved) {
            fs_watch = start_watch(&config, &signal);
        }
        let trigger = if batch_due { batch.take() } else { None };
        retry_at = None;
        if sync.once(trigger, relist).await {
            // The loop's backoff: 1 s doubling to `max_backoff`, jittered.
            let at = sync
                .core
                .retry_at()
                .unwrap_or_else(|| Instant::now() + Duration::from_secs(1));
            tracing::info!(
                retry_in_ms = ms(at.saturating_duration_since(Instant::now())),
                failures = sync.core.failures(),
                "sync incomplete; retrying later"
            );
            retry_at = Some(at);
        }
    }
    sync.stop_pdps();
    tracing::info!("stopped");
    Ok(())
}

fn start_watch(config: &Config, signal: &std::sync::Arc<Signal>) -> Option<FsWatch> {
    match FsWatch::start(&config.path, signal.clone()) {
        Ok(w) => Some(w),
        Err(e) => {
            tracing::warn!(path = %config.path.display(), error = %e,
                "cannot watch the path for changes; relying on the periodic rescan");
            None
        }
    }
}

/// The reconcile loop's settings for directory mode.
fn loop_config(config: &Config) -> LoopConfig {
    LoopConfig {
        client: config.client.clone(),
        drift_interval: config.drift_interval,
        backoff: crate::backoff::Backoff::new(Duration::from_secs(1), config.max_backoff),
        jitter: true,
        exec: config.exec.clone(),
        metrics: config.metrics.clone(),
        ids: false,
    }
}

struct PdpMonitor {
    spec: String,
    cancel: CancellationToken,
}

/// The state carried from one sync to the next.
struct Syncer {
    config: Config,
    shared: Shared,
    cancel: CancellationToken,
    files: scan::FileSet,
    /// Connect, the live cache, plan → execute → project, backoff, API metrics.
    core: Reconciler,
    inventory: Option<Loaded>,
    objects: state::Objects,
    held: drift::Held,
    pdps: BTreeMap<String, PdpMonitor>,
    hold_reported: Option<String>,
    /// The declared objects, updated file by file.
    sources: sources::Sources,
}

impl Syncer {
    fn new(config: Config, shared: Shared, cancel: CancellationToken) -> Syncer {
        Syncer {
            objects: shared.objects(),
            files: scan::FileSet::new(config.path.clone()),
            core: Reconciler::new(loop_config(&config)),
            config,
            shared,
            cancel,
            inventory: None,
            held: Default::default(),
            pdps: BTreeMap::new(),
            hold_reported: None,
            sources: Default::default(),
        }
    }

    /// One sync. Returns true when it should be retried (Permit failed, some object failed).
    async fn once(&mut self, trigger: Option<Batch>, relist: bool) -> bool {
        let started = Instant::now();
        let mut timing = SyncTiming {
            batch_wait_ms: trigger.map_or(0, |b| ms(started - b.first)),
            ..SyncTiming::default()
        };
        let changes = self.files.rescan();
        crate::memory::log_phase("scanning the manifests");
        let dirty = self.files.take_dirty();
        // The object table follows the declarations at once, whatever happens next; it lists
        // the model's keys and origins, and lets go of the model while it changes.
        let declaring = self.objects.declaring();
        let synced = self.sources.sync(&self.files, &dirty);
        let model = self.sources.model();
        match &synced {
            Ok(None) => declaring.all(model),
            Ok(Some(touched)) => declaring.keys(model, touched),
            Err(_) => declaring.unchanged(model),
        }
        crate::memory::log_phase("building the desired model");
        let diagnostics = self.sources.diagnostics(&self.files);
        crate::memory::log_phase("declaring the objects");
        timing.scan_ms = ms(started.elapsed());
        if changes.any() {
            log_diagnostics(&diagnostics);
            tracing::info!(
                added = changes.added,
                changed = changes.changed,
                removed = changes.removed,
                files = self.files.len(),
                "manifests changed"
            );
        }
        self.report_files(&diagnostics);
        if changes.any() || self.pdps.is_empty() {
            let pdps: Vec<LoadedObject> = self
                .sources
                .pdps(&self.files)
                .into_iter()
                .cloned()
                .collect();
            self.update_pdps(&pdps);
        }

        if let Some(why) = self.files.unreadable() {
            let message = format!("cannot read the manifests: {why}");
            tracing::error!("{message}");
            self.finish_failed(&message, false, &timing);
            self.publish(|r| r.ready = false);
            return false;
        }

        let touched = match synced {
            Ok(touched) => touched,
            Err(errors) => {
                let lines: Vec<String> = errors.iter().map(ToString::to_string).collect();
                let message = format!("manifests not synced: {}", lines.join("; "));
                tracing::error!("{message}");
                self.finish_failed(&message, false, &timing);
                return false;
            }
        };
        // The declarations are read from here on while `self` changes: set them aside.
        let sources = std::mem::take(&mut self.sources);
        let retry = self
            .plan_and_apply(sources.desired(), touched, trigger, relist, timing, started)
            .await;
        self.sources = sources;
        retry
    }

    /// Plans `desired` (only the `touched` keys when the state left by a clean sync allows it)
    /// and applies the plan, through the reconcile loop.
    async fn plan_and_apply(
        &mut self,
        desired: &Desired,
        touched: Option<BTreeSet<Key>>,
        trigger: Option<Batch>,
        relist: bool,
        mut timing: SyncTiming,
        started: Instant,
    ) -> bool {
        let mut options = self.config.options.clone();
        let hold = self.files.prune_hold();
        if options.prunes()
            && let Some(why) = &hold
        {
            if self.hold_reported.as_ref() != Some(why) {
                tracing::warn!("prune held until the manifests load without errors: {why}");
            }
            options.prune = false;
            options.mode = Mode::Owned;
        }
        self.hold_reported = hold;

        // Permit: connect, list when the cache cannot be trusted or drift is due.
        // Reading is safe to abandon on shutdown; writing (below) is not.
        let cancel = self.cancel.clone();
        let listing = match self.core.connect_and_list(relist, &cancel).await {
            Ok(l) => l,
            Err(Class::Cancelled) => return false,
            Err(class) => {
                let message = match class {
                    Class::Unreachable(m) => m,
                    other => format!("{other:?}"),
                };
                self.finish_failed(&message, true, &timing);
                return true;
            }
        };
        if self.inventory.is_none() {
            self.inventory = Some(
                StateFile::new(&self.config.state_file).load(Some(&listing.client.scope().id())),
            );
        }
        // Whatever made us list, a difference the cached plan did not expect is drift.
        let mut drift_found = Vec::new();
        if let (Some(cached), Some(fresh), Some(inventory)) =
            (&listing.previous, self.core.live(), &self.inventory)
        {
            drift_found = find_drift(
                &self.config,
                &mut self.held,
                desired,
                cached,
                fresh,
                inventory,
                &options,
            );
        }

        let mut dir = apply::Directory {
            desired,
            options,
            inventory: self.inventory.take(),
            state_file: StateFile::new(&self.config.state_file),
            held: &mut self.held,
            files: &self.files,
            objects: &self.objects,
            shared: &self.shared,
            metrics: &self.config.metrics,
        };
        let synced = self.core.reconcile(&mut dir, &listing, touched).await;
        self.inventory = dir.inventory.take();
        drop(listing);
        timing.plan_ms = synced.plan_ms;
        timing.apply_ms = synced.apply_ms;
        timing.ops = synced.plan.as_ref().map_or(0, |p| p.ops.len());
        timing.requests = synced.requests;
        let retry = match &synced.class {
            // Deterministic (an empty source, too many deletions): wait for the files to change.
            Class::Refused(message) => Some((message.clone(), false)),
            // The inventory could not be written: nothing was executed after that.
            Class::Failed(message) => Some((message.clone(), true)),
            Class::Unreachable(message) => Some((message.clone(), true)),
            Class::Cancelled => return false,
            _ => None,
        };
        if let Some((message, retry)) = retry {
            tracing::error!("{message}");
            self.finish_failed(&message, false, &timing);
            return retry;
        }
        if let (Some(report), Some(plan)) = (&synced.report, &synced.plan) {
            for o in &report.objects {
                let (state, message) = if o.synced {
                    (ObjectState::Synced, None)
                } else {
                    (ObjectState::Error, o.message.clone())
                };
                self.objects.set(o.kind, &o.key, state, message);
            }
            for (kind, key, _) in &drift_found {
                if report.succeeded(*kind, key) {
                    self.config
                        .metrics
                        .drift_corrected
                        .get_or_create(&KindLabels {
                            kind: kind.to_string(),
                        })
                        .inc();
                }
            }
            log_applied(plan, report, Duration::from_millis(synced.apply_ms));
            if let Some(b) = trigger
                && plan.has_changes()
            {
                self.config
                    .metrics
                    .change_to_write
                    .observe(b.first.elapsed().as_secs_f64());
            }
        }
        match synced.class {
            Class::Trouble { failed, first } => {
                // Unanswered, throttled or 5xx: outcomes may be unknown. The loop lists Permit
                // again before the retry plans, and retries with backoff.
                let message =
                    format!("{failed} object(s) failed, retrying with backoff; first: {first}");
                tracing::warn!("{message}");
                self.finish(Some(message), false, "failure", &timing, started);
                true
            }
            Class::Rejected { failed, first } => {
                // Permit refused them (4xx): retrying unchanged would be refused again. The next
                // edit of the files, or the drift relist, tries again.
                let message = format!("{failed} object(s) refused by Permit; first: {first}");
                tracing::warn!("{message}");
                self.finish(Some(message), true, "failure", &timing, started);
                false
            }
            _ => {
                let result = if synced.applied { "success" } else { "noop" };
                self.finish(None, true, result, &timing, started);
                crate::memory::log_phase("the sync");
                false
            }
        }
    }

    fn report_files(&self, diagnostics: &[Diagnostic]) {
        let problems: Vec<FileProblem> = diagnostics
            .iter()
            .map(|d| FileProblem {
                severity: d.severity.to_string(),
                file: d.file.display().to_string(),
                line: d.line,
                column: d.column,
                message: d.to_string(),
            })
            .collect();
        let errors = diagnostics.iter().filter(|d| d.is_error()).count();
        self.config.metrics.manifest_errors.set(errors as i64);
        self.shared.update(|r| r.files = problems);
    }

    /// A sync that could not run to the end.
    fn finish_failed(&mut self, message: &str, unreachable: bool, timing: &SyncTiming) {
        if unreachable {
            tracing::warn!("{message}");
            self.objects.fail_all(message);
        } else {
            self.objects.fail_unsynced(message);
        }
        let ready = self.core.completed() && !unreachable;
        self.config
            .metrics
            .syncs
            .get_or_create(&ResultLabels {
                result: "failure".into(),
            })
            .inc();
        self.publish(|r| {
            r.ready = ready;
            r.message = Some(message.to_string());
            r.syncs += 1;
            r.last_sync = Some(chrono::Utc::now());
            r.last_timing = Some(timing.clone());
        });
    }

    fn finish(
        &mut self,
        message: Option<String>,
        reachable: bool,
        result: &str,
        timing: &SyncTiming,
        started: Instant,
    ) {
        let m = &self.config.metrics;
        m.syncs
            .get_or_create(&ResultLabels {
                result: result.into(),
            })
            .inc();
        m.sync_duration.observe(started.elapsed().as_secs_f64());
        let now = chrono::Utc::now();
        let success = message.is_none();
        if success {
            m.last_success.set(now.timestamp_millis() as f64 / 1000.0);
        }
        let ready = self.core.completed() && reachable;
        if result != "noop" {
            tracing::debug!(?timing, "sync timing");
        }
        self.publish(|r| {
            r.ready = ready;
            r.message = message;
            r.syncs += 1;
            r.last_sync = Some(now);
            if success {
                r.last_success = Some(now);
            }
            r.last_timing = Some(timing.clone());
        });
    }

    /// Publishes whatever `f` changes to the status, and the object table's counts to the metrics.
    fn publish(&mut self, f: impl FnOnce(&mut state::WatchStatus)) {
        publish(&self.shared, &self.config.metrics, f);
    }

    /// Starts, restarts or stops the monitors of `PermitPDP`s with a `url` (or a runtime).
    fn update_pdps(&mut self, objects: &[LoadedObject]) {
        let mut wanted: BTreeMap<String, PermitPDP> = BTreeMap::new();
        for l in objects {
            if let Object::Pdp(p) = &l.object
                && (p.spec.url.is_some() || p.spec.runtime.is_some())
            {
                wanted.insert(l.object.name().to_string(), p.clone());
            }
        }
        let spec_of = |p: &PermitPDP| serde_json::to_string(&p.spec).unwrap_or_default();
        self.pdps.retain(|name, m| {
            let keep = wanted.get(name).is_some_and(|p| spec_of(p) == m.spec);
            if !keep {
                m.cancel.cancel();
            }
            keep
        });
        let names: Vec<String> = wanted.keys().cloned().collect();
        self.shared
            .update(|r| r.pdps.retain(|p| names.contains(&p.name)));
        for (name, pdp) in wanted {
            if self.pdps.contains_key(&name) {
                continue;
            }
            let cancel = self.cancel.child_token();
            self.pdps.insert(
                name.clone(),
                PdpMonitor {
                    spec: spec_of(&pdp),
                    cancel: cancel.clone(),
                },
            );
            let opts = crate::pdp::monitor::WatchOptions {
                api_key: Some(self.config.client.api_key.expose().to_string()),
                api_url: Some(self.config.client.api_url.clone()),
                metrics: self.config.pdp_metrics.clone(),
                ..Default::default()
            };
            let shared = self.shared.clone();
            let stopped = cancel.clone();
            tokio::spawn(async move {
                let report = |state: PdpState| {
                    // A monitor stopped because its manifest went away reports nothing more.
                    if stopped.is_cancelled() {
                        return;
                    }
                    shared.update(|r| {
                        r.pdps.retain(|p| p.name != state.name);
                        r.pdps.push(state);
                        r.pdps.sort_by(|a, b| a.name.cmp(&b.name));
                    })
                };
                let on_update = |u: &crate::pdp::monitor::Update| {
                    let healthy = u
                        .status
                        .conditions
                        .iter()
                        .find(|c| c.type_ == crate::pdp::status::HEALTHY);
                    report(PdpState {
                        name: name.clone(),
                        healthy: healthy.is_some_and(|c| c.status == "True"),
                        message: healthy.and_then(|c| c.message.clone()),
                    });
                };
                if let Err(e) = crate::pdp::watch_url(&pdp, opts, on_update, cancel).await {
                    tracing::warn!(pdp = %name, error = %e, "PDP monitor stopped");
                    report(PdpState {
                        name: name.clone(),
                        healthy: false,
                        message: Some(e.to_string()),
                    });
                }
            });
        }
    }

    fn stop_pdps(&mut self) {
        for m in self.pdps.values() {
            m.cancel.cancel();
        }
        self.pdps.clear();
    }
}

/// Compares the plan against the cache with the plan against Permit as listed.
fn find_drift(
    config: &Config,
    held: &mut drift::Held,
    desired: &Desired,
    cached: &State,
    fresh: &State,
    inventory: &Loaded,
    options: &PlanOptions,
) -> Vec<drift::OpId> {
    let (Ok(before), Ok(after)) = (
        engine::plan_against(desired, cached, inventory, options),
        engine::plan_against(desired, fresh, inventory, options),
    ) else {
        return Vec::new();
    };
    let found = drift::found(&before, &after);
    for (kind, key, action) in &found {
        tracing::warn!(kind = %kind, key = %key, action = ?action,
            correct = config.drift == DriftMode::Correct,
            "drift: Permit was changed outside permit-sync");
        config
            .metrics
            .drift_found
            .get_or_create(&KindLabels {
                kind: kind.to_string(),
            })
            .inc();
    }
    if config.drift == DriftMode::Report {
        held.hold(&found, desired);
    }
    found
}

/// Publishes whatever `f` changes to the status, and the object table's counts to the metrics.
fn publish(shared: &Shared, metrics: &SyncMetrics, f: impl FnOnce(&mut state::WatchStatus)) {
    let counts = shared.objects().counts();
    shared.update(|r| {
        f(r);
        metrics.set_objects(&counts);
        metrics.ready.set(i64::from(r.ready));
    });
}

fn log_diagnostics(diagnostics: &[Diagnostic]) {
    for d in diagnostics {
        if d.is_error() {
            tracing::error!("{d}");
        } else {
            tracing::warn!("{d}");
        }
    }
}

fn log_applied(plan: &Plan, report: &crate::exec::Report, took: Duration) {
    let count = |a: Action| plan.ops.iter().filter(|o| o.action == a).count();
    let (created, updated, deleted, adopted) = (
        count(Action::Create),
        count(Action::Update),
        count(Action::Delete),
        count(Action::Adopt),
    );
    if created + updated + deleted + adopted == 0 {
        return;
    }
    tracing::info!(
        created,
        updated,
        deleted,
        adopted,
        failed = report.failed().count(),
        requests = report.metrics.total(),
        took_ms = took.as_millis() as u64,
        "synced"
    );
    for o in report.failed() {
        tracing::warn!(kind = %o.kind, key = %o.key, action = ?o.action,
            "{}", o.message.as_deref().unwrap_or("failed"));
    }
}
