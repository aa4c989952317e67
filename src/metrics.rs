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

pub struct Metrics {
    registry: Registry,
    pub pdp: PdpMetrics,
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
        Metrics { registry, pdp }
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
