//! Plan output for people (table), machines (json) and pull requests (markdown), with secrets redacted.

mod markdown;
mod redact;
mod table;

pub use redact::Redactor;

use super::{Action, Op, Plan};
use crate::kinds::{Kind, ObjectId};
use crate::model::SYNCED_KINDS;
use crate::text::printable;
use serde_json::{Value, json};

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Format {
    #[default]
    Table,
    Json,
    Markdown,
}

impl Format {
    /// Each format with its name, for command lines.
    pub const VALUES: [(Format, &'static str); 3] = [
        (Format::Table, "table"),
        (Format::Json, "json"),
        (Format::Markdown, "markdown"),
    ];
}

/// The line printed when there is nothing to write, which CI logs and tests look for.
pub const NO_CHANGES: &str = "No changes. Permit matches the manifests.";

pub fn render(plan: &Plan, format: Format, redactor: &Redactor) -> String {
    let mut out = Vec::new();
    write(plan, format, redactor, &mut out).expect("writing to memory does not fail");
    String::from_utf8(out).expect("plans render as UTF-8")
}

/// [`render`] straight to `out`. JSON is written one operation at a time: a plan of 400,000
/// operations never exists as one JSON tree or one string.
pub fn write(
    plan: &Plan,
    format: Format,
    redactor: &Redactor,
    out: &mut dyn std::io::Write,
) -> std::io::Result<()> {
    match format {
        Format::Table => out.write_all(table::render(plan, redactor).as_bytes()),
        Format::Json => {
            use std::io::Write as _;
            let mut out = std::io::BufWriter::new(out);
            serde_json::to_writer_pretty(&mut out, &JsonPlan::of(plan, redactor))?;
            out.write_all(b"\n")?;
            out.flush()
        }
        Format::Markdown => out.write_all(markdown::render(plan, redactor).as_bytes()),
    }
}

const ACTIONS: [Action; 4] = [
    Action::Create,
    Action::Update,
    Action::Adopt,
    Action::Delete,
];

/// Counts per kind (rows with no operation left out) and action.
fn counts(plan: &Plan) -> Vec<(Kind, [usize; 4])> {
    SYNCED_KINDS
        .iter()
        .map(|&k| (k, ACTIONS.map(|a| plan.count(k, a))))
        .filter(|(_, c)| c.iter().any(|&n| n > 0))
        .collect()
}

fn totals(plan: &Plan) -> [usize; 4] {
    ACTIONS.map(|a| plan.ops.iter().filter(|o| o.action == a).count())
}

fn summary_line(plan: &Plan) -> String {
    let [c, u, a, d] = totals(plan);
    let mut s = format!("Plan: {c} to create, {u} to update, {d} to delete");
    if a > 0 {
        s.push_str(&format!(", {a} to adopt"));
    }
    s.push('.');
    s
}

/// Field rows of an op: the diffs of an update; every declared field of a create.
fn fields(op: &Op, redactor: &Redactor) -> Vec<(String, Value, Value)> {
    let rows: Vec<(String, Value, Value)> = match op.action {
        Action::Update => op
            .diffs
            .iter()
            .map(|d| {
                (
                    d.field.as_str().to_string(),
                    d.before.clone(),
                    d.after.clone(),
                )
            })
            .collect(),
        Action::Create => match op.desired.as_ref().map(serde_json::to_value) {
            Some(Ok(Value::Object(m))) => match m.get("spec") {
                // An assignment's key already names all of it; empty values say nothing.
                Some(Value::Object(_)) if op.kind == Kind::RoleAssignment => Vec::new(),
                Some(Value::Object(spec)) => spec
                    .iter()
                    .filter(|(k, v)| *k != "key" && !is_empty(v))
                    .map(|(k, v)| (k.clone(), Value::Null, v.clone()))
                    .collect(),
                _ => Vec::new(),
            },
            _ => Vec::new(),
        },
        _ => Vec::new(),
    };
    rows.into_iter()
        .map(|(f, b, a)| {
            let b = redactor.value(&f, &b);
            let a = redactor.value(&f, &a);
            (f, b, a)
        })
        .collect()
}

/// The JSON plan; fields in alphabetical order, as a JSON object map writes them.
#[derive(serde::Serialize)]
struct JsonPlan<'a> {
    changes: bool,
    operations: JsonOps<'a>,
    summary: Value,
    warnings: Vec<String>,
}

impl<'a> JsonPlan<'a> {
    fn of(plan: &'a Plan, redactor: &'a Redactor) -> Self {
        let [c, u, a, d] = totals(plan);
        JsonPlan {
            changes: plan.has_changes(),
            operations: JsonOps { plan, redactor },
            summary: json!({"create": c, "update": u, "adopt": a, "delete": d, "unchanged": plan.unchanged}),
            warnings: plan
                .warnings
                .iter()
                .map(|w| redactor.text(&w.to_string()))
                .collect(),
        }
    }
}

/// The operations, each turned into JSON only as it is written.
struct JsonOps<'a> {
    plan: &'a Plan,
    redactor: &'a Redactor,
}

impl serde::Serialize for JsonOps<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.plan.ops.iter().map(|op| op_json(op, self.redactor)))
    }
}

fn op_json(op: &Op, redactor: &Redactor) -> Value {
    let mut v = json!({
        "kind": op.kind.as_str(),
        "key": redactor.text(&op.key),
        "action": op.action.as_str(),
    });
    if op.adopted {
        v["adopted"] = json!(true);
    }
    if let Some(c) = &op.cascaded_by {
        v["cascaded_by"] = json!(cascade(c));
    }
    if let Some(o) = &op.origin {
        v["origin"] = json!(o.to_string());
    }
    let f: Vec<Value> = fields(op, redactor)
        .into_iter()
        .map(|(field, before, after)| json!({"field": field, "before": before, "after": after}))
        .collect();
    if !f.is_empty() {
        v["fields"] = Value::Array(f);
    }
    v
}

fn is_empty(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Array(a) => a.is_empty(),
        Value::Object(m) => m.is_empty(),
        _ => false,
    }
}

/// Compact one-line JSON of a value, for table and markdown cells.
/// One value on one line, with control and bidi characters escaped: names and descriptions come
/// from manifests and from Permit, and must not drive the terminal or forge lines in a CI log.
fn compact(v: &Value) -> String {
    let text = match v {
        Value::Null => return "—".into(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    printable(&text).into_owned()
}

/// The deletion a cascaded op rides on, as the plan shows it: `<kind> <key>`.
pub fn cascade((kind, key): &ObjectId) -> String {
    format!("{kind} {key}")
}
