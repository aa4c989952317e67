//! The closing summary of an apply.

use super::Report;
use crate::plan::Action;
use std::fmt::Write;

pub fn render(report: &Report) -> String {
    let count = |a: Action| {
        report
            .objects
            .iter()
            .filter(|o| o.action == a && o.synced)
            .count()
    };
    let failed: Vec<_> = report.failed().collect();
    let m = &report.metrics;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Applied: {} created, {} updated, {} deleted, {} adopted; {} failed. {} API calls ({} retries, {} rate-limit waits) in {:.1}s.",
        count(Action::Create),
        count(Action::Update),
        count(Action::Delete),
        count(Action::Adopt),
        failed.len(),
        m.total(),
        m.retries,
        m.rate_limit_waits,
        report.elapsed.as_secs_f64()
    );
    for f in failed {
        let _ = writeln!(
            out,
            "  failed: {} {} ({}): {}",
            f.kind,
            f.key,
            f.action.as_str(),
            f.message.as_deref().unwrap_or("unknown error")
        );
    }
    out
}
