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
    let classes: Vec<String> = m
        .by_class()
        .into_iter()
        .map(|(class, n)| format!("{n} {class}"))
        .collect();
    let _ = writeln!(
        out,
        "Applied: {} created, {} updated, {} deleted, {} adopted; {} failed, in {:.1}s. {} API calls ({}; {} retries, {} rate-limit waits).",
        count(Action::Create),
        count(Action::Update),
        count(Action::Delete),
        count(Action::Adopt),
        failed.len(),
        report.elapsed.as_secs_f64(),
        m.total(),
        if classes.is_empty() {
            "none".to_string()
        } else {
            classes.join(", ")
        },
        m.retries,
        m.rate_limit_waits,
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
