//! The GitHub Actions example: parses, runs `plan --output markdown` on pull requests and `apply` on
//! merges to main, its shell steps parse, and actionlint accepts it.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

const WORKFLOW: &str = "examples/github-actions/permit-sync.yml";

fn workflow() -> Value {
    let text = std::fs::read_to_string(WORKFLOW).unwrap();
    serde_saphyr::from_str(&text).expect("the workflow is valid YAML")
}

fn runs(job: &Value) -> Vec<String> {
    job["steps"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s["run"].as_str().map(str::to_string))
        .collect()
}

#[test]
fn plans_pull_requests_and_applies_merges_to_main() {
    let w = workflow();
    let on = &w["on"];
    assert!(on["pull_request"].is_object(), "{on}");
    assert_eq!(on["push"]["branches"], serde_json::json!(["main"]));

    let plan = &w["jobs"]["plan"];
    assert_eq!(plan["if"], "github.event_name == 'pull_request'");
    let plan_runs = runs(plan).join("\n");
    assert!(plan_runs.contains("permit-sync plan"), "{plan_runs}");
    assert!(plan_runs.contains("--output markdown"), "{plan_runs}");
    assert!(plan_runs.contains("--detailed-exitcode"), "{plan_runs}");
    assert!(plan_runs.contains("gh pr comment"), "{plan_runs}");
    assert!(!plan_runs.contains("permit-sync apply"), "{plan_runs}");

    let apply = &w["jobs"]["apply"];
    assert!(
        apply["if"].as_str().unwrap().contains("refs/heads/main"),
        "{apply}"
    );
    let apply_runs = runs(apply).join("\n");
    assert!(apply_runs.contains("permit-sync apply"), "{apply_runs}");
    // Not a terminal: deletions need --yes; the inventory is saved even when apply fails.
    assert!(apply_runs.contains("--yes"), "{apply_runs}");

    // The API key comes from a secret, never from the file itself.
    let text = std::fs::read_to_string(WORKFLOW).unwrap();
    assert!(text.contains("${{ secrets.PERMIT_API_KEY }}"));
    assert!(!text.contains("permit_key_"));
}

#[test]
fn shell_steps_parse() {
    let w = workflow();
    for (name, job) in w["jobs"].as_object().unwrap() {
        for script in runs(job) {
            let out = Command::new("bash")
                .args(["-n", "-c", &script])
                .output()
                .expect("bash runs");
            assert!(
                out.status.success(),
                "job {name}: {script}\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
}

/// actionlint from ACTIONLINT, PATH, or the cache scripts/test.sh installs it into.
fn actionlint() -> Option<PathBuf> {
    if let Ok(p) = std::env::var("ACTIONLINT") {
        return Some(PathBuf::from(p));
    }
    let home = std::env::var("HOME").unwrap_or_default();
    let cached = Path::new(&home).join(".cache/permit-sync/actionlint-v1.7.12/actionlint");
    if cached.exists() {
        return Some(cached);
    }
    Command::new("actionlint")
        .arg("-version")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|_| PathBuf::from("actionlint"))
}

#[test]
fn actionlint_accepts_the_workflow() {
    let Some(bin) = actionlint() else {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "actionlint is missing under CI=true (scripts/test.sh installs it)"
        );
        eprintln!("skipped: actionlint not found (scripts/test.sh installs it)");
        return;
    };
    let out = Command::new(&bin)
        .arg(WORKFLOW)
        .output()
        .expect("actionlint runs");
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
