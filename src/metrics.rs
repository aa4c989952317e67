//! Prometheus metrics of the process: one registry, one struct of metric families per area.
//!
//! Add an area by adding a field to [`Metrics`] and registering it in [`Metrics::new`]; serve
//! [`Metrics::encode`] on `/metrics`. [`global`] is the process-wide instance; tests build their own.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use std::sync::OnceLock;

/// Labels of per-PDP metrics.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PdpLabels {
    pub namespace: String,
    pub name: String,
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

fn latency_histogram() -> Histogram {
    // 1 ms … ~4 s: a PDP's health answer is fast unless something is wrong.
    Histogram::new(exponential_buckets(0.001, 2.0, 13))
}

/// PDP monitoring.
#[derive(Clone)]
pub struct PdpMetrics {
    /// `permit_pdp_up{namespace,name}`: 1 when the last probe of `/healthy` answered 2xx.
    pub up: Family<PdpLabels, Gauge>,
    /// `permit_pdp_probe_duration_seconds{namespace,name}`: latency of the health probes.
    pub probe_duration: HistogramFamily<PdpLabels>,
}

impl PdpMetrics {
    fn new() -> Self {
        PdpMetrics {
            up: Family::default(),
            probe_duration: Family::new_with_constructor(latency_histogram),
        }
    }

    fn register(&self, registry: &mut Registry) {
        registry.register(
            "permit_pdp_up",
            "Whether the PDP's health endpoint answered healthy at the last probe",
            self.up.clone(),
        );
        registry.register(
            "permit_pdp_probe_duration_seconds",
            "Latency of the controller's probes of the PDP's health endpoint",
            self.probe_duration.clone(),
        );
    }

    /// Records one probe.
    pub fn observe(&self, labels: &PdpLabels, healthy: bool, latency: std::time::Duration) {
        self.up.get_or_create(labels).set(i64::from(healthy));
        self.probe_duration
            .get_or_create(labels)
            .observe(latency.as_secs_f64());
    }

    /// Drops a PDP's series (it was deleted).
    pub fn forget(&self, labels: &PdpLabels) {
        self.up.remove(labels);
        self.probe_duration.remove(labels);
    }
}

/// Labels of per-kind counts.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabels {
    pub kind: String,
}

/// Labels of the object gauge: kind and state (`synced`, `pending`, `error`, `drifted`).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ObjectLabels {
    pub kind: String,
    pub state: String,
}

/// Labels of API request counts: limit class and HTTP status (`0`: no answer).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub class: String,
    pub status: String,
}

/// Labels of sync counts: `success`, `failure` (some object or Permit failed) or `noop`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabels {
    pub result: String,
}

fn sync_histogram() -> Histogram {
    // 5 ms … ~80 s: a sync is a few calls, a large one thousands of objects in bulk.
    Histogram::new(exponential_buckets(0.005, 2.0, 15))
}

/// The reconcile loop's metrics, the same for every mode (`watch`, `dev`, `controller`): syncs,
/// API use; and the directory's objects and drift.
#[derive(Clone)]
pub struct SyncMetrics {
    /// `permit_sync_syncs_total{result}`
    pub syncs: Family<ResultLabels, Counter>,
    /// `permit_sync_sync_duration_seconds`: scan, plan and apply of one batch.
    pub sync_duration: Histogram,
    /// `permit_sync_change_to_write_seconds`: first file event of a batch to its writes done.
    pub change_to_write: Histogram,
    /// `permit_sync_api_requests_total{class,status}`
    pub api_requests: Family<RequestLabels, Counter>,
    /// `permit_sync_api_retries_total`
    pub api_retries: Counter,
    /// `permit_sync_connect_failures_total`: attempts to reach Permit (key scope) that failed.
    pub connect_failures: Counter,
    /// `permit_sync_rate_limit_waits_total`, `permit_sync_rate_limit_wait_seconds_total`
    pub rate_limit_waits: Counter,
    pub rate_limit_wait_seconds: Counter<f64, std::sync::atomic::AtomicU64>,
    /// `permit_sync_objects{kind,state}`
    pub objects: Family<ObjectLabels, Gauge>,
    /// `permit_sync_drift_found_total{kind}`, `permit_sync_drift_corrected_total{kind}`
    pub drift_found: Family<KindLabels, Counter>,
    pub drift_corrected: Family<KindLabels, Counter>,
    /// `permit_sync_manifest_errors`: errors in the manifest files now.
    pub manifest_errors: Gauge,
    /// `permit_sync_ready`: 1 once a sync completed and Permit answers.
    pub ready: Gauge,
    /// `permit_sync_last_success_timestamp_seconds`
    pub last_success: Gauge<f64, std::sync::atomic::AtomicU64>,
}

impl SyncMetrics {
    fn new() -> Self {
        SyncMetrics {
            syncs: Family::default(),
            sync_duration: sync_histogram(),
            change_to_write: sync_histogram(),
            api_requests: Family::default(),
            api_retries: Counter::default(),
            connect_failures: Counter::default(),
            rate_limit_waits: Counter::default(),
            rate_limit_wait_seconds: Counter::default(),
            objects: Family::default(),
            drift_found: Family::default(),
            drift_corrected: Family::default(),
            manifest_errors: Gauge::default(),
            ready: Gauge::default(),
            last_success: Gauge::default(),
        }
    }

    fn register(&self, r: &mut Registry) {
        r.register(
            "permit_sync_syncs",
            "Syncs run, by result",
            self.syncs.clone(),
        );
        r.register(
            "permit_sync_sync_duration_seconds",
            "Duration of a sync: scan, plan and apply",
            self.sync_duration.clone(),
        );
        r.register(
            "permit_sync_change_to_write_seconds",
            "Time from the first file event of a batch to its writes done in Permit",
            self.change_to_write.clone(),
        );
        r.register(
            "permit_sync_api_requests",
            "Permit API requests by limit class and status (0: no answer)",
            self.api_requests.clone(),
        );
        r.register(
            "permit_sync_api_retries",
            "Permit API requests sent again (429, 5xx, dropped connections)",
            self.api_retries.clone(),
        );
        r.register(
            "permit_sync_connect_failures",
            "Attempts to reach Permit (reading the API key's scope) that failed",
            self.connect_failures.clone(),
        );
        r.register(
            "permit_sync_rate_limit_waits",
            "Requests that waited for the client-side rate limiter",
            self.rate_limit_waits.clone(),
        );
        r.register(
            "permit_sync_rate_limit_wait_seconds",
            "Time spent waiting for the client-side rate limiter",
            self.rate_limit_wait_seconds.clone(),
        );
        r.register(
            "permit_sync_objects",
            "Declared objects by kind and state",
            self.objects.clone(),
        );
        r.register(
            "permit_sync_drift_found",
            "Changes made outside permit-sync found by the periodic relist",
            self.drift_found.clone(),
        );
        r.register(
            "permit_sync_drift_corrected",
            "Changes made outside permit-sync reverted",
            self.drift_corrected.clone(),
        );
        r.register(
            "permit_sync_manifest_errors",
            "Errors in the manifest files (their last valid versions stay in force)",
            self.manifest_errors.clone(),
        );
        r.register(
            "permit_sync_ready",
            "1 once a complete sync has run and Permit answers",
            self.ready.clone(),
        );
        r.register(
            "permit_sync_last_success_timestamp_seconds",
            "Unix time of the last sync that left every object synced",
            self.last_success.clone(),
        );
    }

    /// One sync (a watcher's sync, a controller's batch) ended with `result` (`success`, `noop`,
    /// `failure`) after `took`.
    pub fn record_sync(&self, result: &str, took: std::time::Duration) {
        self.syncs
            .get_or_create(&ResultLabels {
                result: result.into(),
            })
            .inc();
        self.sync_duration.observe(took.as_secs_f64());
    }

    /// Adds API use since the last call (`delta` from `permit::Metrics::since`).
    pub fn record_api(&self, delta: &crate::permit::Metrics) {
        for (class, by_status) in &delta.requests {
            for (status, n) in by_status {
                self.api_requests
                    .get_or_create(&RequestLabels {
                        class: class.clone(),
                        status: status.to_string(),
                    })
                    .inc_by(*n);
            }
        }
        self.api_retries.inc_by(delta.retries);
        self.rate_limit_waits.inc_by(delta.rate_limit_waits);
        self.rate_limit_wait_seconds
            .inc_by(delta.rate_limit_wait_ms as f64 / 1000.0);
    }

    /// Replaces the object gauge with these counts.
    pub fn set_objects(&self, counts: &std::collections::BTreeMap<(String, String), i64>) {
        self.objects.clear();
        for ((kind, state), n) in counts {
            self.objects
                .get_or_create(&ObjectLabels {
                    kind: kind.clone(),
                    state: state.clone(),
                })
                .set(*n);
        }
    }
}

/// Labels of the controller's per-kind counters.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabels {
    pub kind: String,
    /// `synced`, `failed`, `rejected`, `deleted`, `invalid`, ...
    pub outcome: String,
}

/// The Kubernetes controller.
#[derive(Clone)]
pub struct ControllerMetrics {
    /// `permit_sync_batches_total`: batches run (gather → plan → execute → status).
    pub batches: prometheus_client::metrics::counter::Counter,
    /// `permit_sync_batch_duration_seconds`.
    pub batch_duration: Histogram,
    /// `permit_sync_reconciles_total{kind,outcome}`: per custom resource and batch, when it changed.
    pub reconciles: Family<OutcomeLabels, prometheus_client::metrics::counter::Counter>,
    /// `permit_sync_leader`: 1 while this instance holds the lease (or runs without election).
    pub leader: Gauge,
}

impl ControllerMetrics {
    fn new() -> Self {
        ControllerMetrics {
            batches: Default::default(),
            // 10 ms … ~80 s.
            batch_duration: Histogram::new(exponential_buckets(0.01, 2.0, 14)),
            reconciles: Family::default(),
            leader: Gauge::default(),
        }
    }

    fn register(&self, registry: &mut Registry) {
        registry.register(
            "permit_sync_batches",
            "Batches run by the controller",
            self.batches.clone(),
        );
        registry.register(
            "permit_sync_batch_duration_seconds",
            "Duration of a controller batch",
            self.batch_duration.clone(),
        );
        registry.register(
            "permit_sync_reconciles",
            "Custom resources reconciled, by kind and outcome",
            self.reconciles.clone(),
        );
        registry.register(
            "permit_sync_leader",
            "Whether this controller instance is the leader",
            self.leader.clone(),
        );
    }
}

pub struct Metrics {
    registry: Registry,
    pub pdp: PdpMetrics,
    pub sync: SyncMetrics,
    pub controller: ControllerMetrics,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let pdp = PdpMetrics::new();
        pdp.register(&mut registry);
        let sync = SyncMetrics::new();
        sync.register(&mut registry);
        let controller = ControllerMetrics::new();
        controller.register(&mut registry);
        Metrics {
            registry,
            pdp,
            sync,
            controller,
        }
    }

    /// The text exposition format (what `/metrics` serves).
    pub fn encode(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .expect("writing to a String cannot fail");
        out
    }
}

/// The process-wide metrics.
pub fn global() -> &'static Metrics {
    static GLOBAL: OnceLock<Metrics> = OnceLock::new();
    GLOBAL.get_or_init(Metrics::new)
}
