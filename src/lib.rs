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
pub mod metrics;
pub mod model;
pub mod pdp;
pub mod permit;
pub mod plan;
pub mod serve;
pub mod source;
pub mod validate;
pub mod watch;

/// TEMP: RSS trace.
pub fn memtrace(what: &str) {
    if std::env::var_os("PS_MEMTRACE").is_some() {
        let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
        let rss = status
            .lines()
            .find(|l| l.starts_with("VmRSS"))
            .unwrap_or("");
        let hwm = status
            .lines()
            .find(|l| l.starts_with("VmHWM"))
            .unwrap_or("");
        eprintln!("MEMTRACE {what}: {rss} {hwm}");
    }
}
