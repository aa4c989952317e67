//! Markdown plan for a pull-request comment: counts by kind and action, then per-object field diffs.

use super::{NO_CHANGES, Redactor, compact, counts, fields, summary_line};
use crate::plan::{Action, Plan};
use std::fmt::Write;

/// Keeps table cells on one line and stops values from closing the table or code span.
fn cell(s: &str) -> String {
    let s = s.replace('|', "\\|").replace('\n', " ").replace('`', "'");
    if s.chars().count() > 200 {
        let cut: String = s.chars().take(200).collect();
        format!("{cut}…")
    } else {
        s
    }
}

pub fn render(plan: &Plan, redactor: &Redactor) -> String {
    let mut out = String::from("### permit-sync plan\n\n");
    for w in &plan.warnings {
        let _ = writeln!(
            out,
            "> **Warning:** {}\n",
            cell(&redactor.text(&w.to_string()))
        );
    }
    if plan.ops.is_empty() {
        let _ = writeln!(out, "{NO_CHANGES}");
        return out;
    }
    if !plan.has_changes() {
        let _ = writeln!(out, "{NO_CHANGES}\n");
    }
    let _ = writeln!(out, "**{}**\n", summary_line(plan));
    out.push_str("| kind | create | update | delete | adopt |\n|---|---:|---:|---:|---:|\n");
    for (kind, [c, u, a, d]) in counts(plan) {
        let _ = writeln!(out, "| {kind} | {c} | {u} | {d} | {a} |");
    }
    out.push_str("\n<details open><summary>Changes</summary>\n\n");
    for op in &plan.ops {
        let sign = match op.action {
            Action::Create => "➕",
            Action::Update => "✏️",
            Action::Adopt => "🤝",
            Action::Delete => "🗑️",
        };
        let mut line = format!(
            "{sign} **{}** `{}` — {}",
            op.kind,
            cell(&redactor.text(&op.key)),
            op.action.as_str()
        );
        if op.adopted && op.action == Action::Update {
            line.push_str(" (adopted)");
        }
        if let Some(by) = &op.cascaded_by {
            let _ = write!(line, " (with {})", super::cascade(by));
        }
        if let Some(origin) = &op.origin {
            let _ = write!(line, " · `{}`", cell(&origin.to_string()));
        }
        let _ = writeln!(out, "{line}\n");
        let rows = fields(op, redactor);
        if !rows.is_empty() {
            out.push_str("| field | before | after |\n|---|---|---|\n");
            for (field, before, after) in rows {
                let _ = writeln!(
                    out,
                    "| `{field}` | {} | {} |",
                    cell(&compact(&before)),
                    cell(&compact(&after))
                );
            }
            out.push('\n');
        }
    }
    out.push_str("</details>\n");
    out
}
