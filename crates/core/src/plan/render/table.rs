//! Plain-text plan for a terminal.

use super::{NO_CHANGES, Redactor, compact, fields, summary_line};
use crate::plan::{Action, Plan};
use crate::text::printable;
use std::fmt::Write;

fn sign(a: Action) -> &'static str {
    match a {
        Action::Create => "+",
        Action::Update => "~",
        Action::Adopt => "=",
        Action::Delete => "-",
    }
}

pub fn render(plan: &Plan, redactor: &Redactor) -> String {
    let mut out = String::new();
    for w in &plan.warnings {
        let _ = writeln!(
            out,
            "warning: {}",
            printable(&redactor.text(&w.to_string()))
        );
    }
    if plan.ops.is_empty() {
        let _ = writeln!(out, "{NO_CHANGES}");
        return out;
    }
    let width = plan
        .ops
        .iter()
        .map(|o| o.kind.as_str().len())
        .max()
        .unwrap_or(0);
    for op in &plan.ops {
        let mut note = String::new();
        if op.adopted && op.action == Action::Update {
            note.push_str(" (adopted)");
        }
        if let Some(by) = &op.cascaded_by {
            let _ = write!(note, " (with {})", super::cascade(by));
        }
        let _ = writeln!(
            out,
            "{} {:width$} {} {}{note}",
            sign(op.action),
            op.kind.as_str(),
            printable(&redactor.text(&op.key)),
            op.action.as_str(),
        );
        for (field, before, after) in fields(op, redactor) {
            match op.action {
                Action::Create => {
                    let _ = writeln!(out, "      {field}: {}", compact(&after));
                }
                _ => {
                    let _ = writeln!(
                        out,
                        "      {field}: {} -> {}",
                        compact(&before),
                        compact(&after)
                    );
                }
            }
        }
    }
    let _ = writeln!(out);
    if plan.has_changes() {
        let _ = writeln!(out, "{}", summary_line(plan));
    } else {
        let _ = writeln!(out, "{NO_CHANGES} {}", summary_line(plan));
    }
    out
}
