//! The manifest loader on arbitrary bytes: decoding, YAML with its limits, the schema, references,
//! the desired model, a first plan and its three renderings. Any panic is a crash (libFuzzer's
//! panic hook aborts, even inside the loader's parsing thread); so are broken invariants below.
#![no_main]

use libfuzzer_sys::fuzz_target;
use permit_sync::desired::Desired;
use permit_sync::inventory::Loaded;
use permit_sync::manifest::{self, read};
use permit_sync::model::State;
use permit_sync::plan::render::{self, Format, Redactor};
use permit_sync::plan::{Action, PlanOptions};
use std::path::Path;

const SECRET: &str = "permit_key_FUZZSECRET0123456789";

fuzz_target!(|data: &[u8]| {
    let path = Path::new("fuzz.yaml");
    let text = match read::decode(path, data.to_vec()) {
        Ok(text) => text,
        Err(d) => {
            assert!(d.is_error() && !d.message.is_empty());
            return;
        }
    };
    let lines = text.lines().count() + 1;
    let file = manifest::load_text(path, &text);
    for d in &file.diagnostics {
        assert!(!d.message.contains("internal error"), "{d}");
        // Positions point into the file (0 = the whole file).
        assert!(d.line <= lines, "line {} of {lines}: {d}", d.line);
        let _ = d.to_string();
    }
    // Same bytes, same result: a watcher reloading an unchanged file must see no change.
    let again = manifest::load_text(path, &text);
    assert_eq!(file.diagnostics, again.diagnostics);
    assert_eq!(file.objects.len(), again.objects.len());

    let set = manifest::combine(vec![file]);
    let problems = permit_sync::validate::check(&set.objects);
    if set.has_errors() || problems.iter().any(|d| d.is_error()) {
        return;
    }
    let Ok(desired) = Desired::from_objects(set.objects.iter().map(|o| (&o.origin, &o.object)))
    else {
        return;
    };
    // Against an empty environment with no inventory: only creates, never a delete.
    let plan = permit_sync::engine::plan_against(
        &desired,
        &State::default(),
        &Loaded::Missing,
        &PlanOptions::default(),
    )
    .expect("no prune, no error");
    assert!(plan.ops.iter().all(|o| o.action == Action::Create));
    let redactor = Redactor::new([SECRET.to_string()]);
    for format in [Format::Table, Format::Json, Format::Markdown] {
        let out = render::render(&plan, format, &redactor);
        assert!(!out.contains(SECRET));
    }
});
