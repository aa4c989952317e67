//! The pure core (`crates/core`, package `permit-sync-core`) stays free of IO and runtimes: no
//! async runtime, HTTP stack, Kubernetes client or command-line parser among its dependencies.

#[test]
fn the_core_depends_on_no_runtime_http_kube_client_or_cli() {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = std::process::Command::new(cargo)
        .args([
            "tree",
            "-p",
            "permit-sync-core",
            "-e",
            "normal",
            "--prefix",
            "none",
            "--offline",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo tree runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let tree = String::from_utf8(out.stdout).unwrap();
    let crates: Vec<&str> = tree
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert!(crates.contains(&"kube-core"), "{tree}");
    for forbidden in [
        "tokio",
        "reqwest",
        "hyper",
        "kube-client",
        "kube-runtime",
        "clap",
        "axum",
    ] {
        assert!(
            !crates.contains(&forbidden),
            "permit-sync-core depends on {forbidden}:\n{tree}"
        );
    }
}
