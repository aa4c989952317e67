//! Prometheus metrics of the process: one registry, one struct of metric families per area.
//!
//! Add an area by adding a field to [`Metrics`] and registering it in [`Metrics::new`]; serve
//! [`Metrics::encode`] on `/metrics`. [`global`] is the process-wide instance; tests build their own.

use prometheus_client::encoding::EncodeLabelSet;
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
        let controller = ControllerMetrics::new();
        controller.register(&mut registry);
        Metrics {
            registry,
            pdp,
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
