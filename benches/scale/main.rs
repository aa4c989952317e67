//! The scale benchmark (issue 9): permit-sync against one call per object, under the same latency
//! and the same (scaled) Permit rate limits. Prints a table and writes JSON.
//!
//! ```text
//! cargo bench --bench scale -- [--size 1] [--latency-ms 20] [--rate-scale 10]
//!     [--baseline-sample 4000] [--scenarios S,L,W,R,K] [--json target/bench-scale.json]
//! ```
//!
//! `cargo test --all-targets` also starts this binary, without cargo bench's `--bench` flag: it then
//! does nothing (the small run that `cargo test` checks is `tests/bench_small.rs`).

#[path = "harness.rs"]
mod harness;
#[path = "kube.rs"]
mod kube;
#[path = "../../tests/support/kube_env.rs"]
mod kube_env;

use std::path::PathBuf;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if !args.iter().any(|a| a == "--bench") {
        eprintln!("scale: run it with `cargo bench --bench scale`; nothing to do under cargo test");
        return Ok(());
    }
    let value = |name: &str| -> Option<String> {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1).cloned())
    };
    let num = |name: &str, default: f64| -> anyhow::Result<f64> {
        match value(name) {
            Some(v) => v
                .parse()
                .map_err(|_| anyhow::anyhow!("{name}: not a number: {v}")),
            None => Ok(default),
        }
    };
    let target = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target");
    let settings = harness::Settings {
        size: num("--size", 1.0)?,
        latency_ms: num("--latency-ms", 20.0)? as u64,
        rate_scale: num("--rate-scale", 10.0)?,
        baseline_sample: num("--baseline-sample", 4000.0)? as usize,
        bin: PathBuf::from(env!("CARGO_BIN_EXE_permit-sync")),
        work: value("--work")
            .map(PathBuf::from)
            .unwrap_or_else(|| target.join("bench-scale")),
        scenarios: value("--scenarios")
            .unwrap_or_else(|| "S,L,W,R,K".into())
            .split(',')
            .map(|s| s.trim().to_uppercase())
            .collect(),
    };
    let json_path = value("--json")
        .map(PathBuf::from)
        .unwrap_or_else(|| target.join("bench-scale.json"));
    let k_size = ((1000.0 * settings.size).round() as usize).max(10);
    let extra = |stage: &harness::Stage, scenario: &str| match scenario {
        "K" => Some(kube::scenario_k(stage, k_size)),
        _ => None,
    };
    let runs = harness::run_all(&settings, &extra)?;
    print!("{}", harness::table(&settings, &runs));
    let json = serde_json::json!({
        "settings": {
            "size": settings.size,
            "latency_ms": settings.latency_ms,
            "rate_scale": settings.rate_scale,
            "baseline_sample": settings.baseline_sample,
        },
        "runs": runs,
    });
    std::fs::write(&json_path, serde_json::to_string_pretty(&json)?)?;
    println!("JSON: {}", json_path.display());
    Ok(())
}
