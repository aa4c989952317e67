//! The pure crates stay free of IO and runtimes: the core (`crates/core`, package
//! `permit-sync-core`), the decision engine (`crates/decide`, package `permit-decide`, std and thiserror only) and the wire format (`crates/api`, package `permit-api`) have no async
//! runtime, HTTP stack, Kubernetes client or command-line parser among their dependencies.

const FORBIDDEN: [&str; 7] = [
    "tokio",
    "reqwest",
    "hyper",
    "kube-client",
    "kube-runtime",
    "clap",
    "axum",
];

/// The crates `package` depends on (normal dependencies, transitively), and the tree as text.
fn dependencies(package: &str) -> (Vec<String>, String) {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = std::process::Command::new(cargo)
        .args([
            "tree",
            "-p",
            package,
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
    let crates = tree
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_string)
        .collect();
    (crates, tree)
}

#[test]
fn the_wire_format_depends_on_serde_only() {
    let (crates, tree) = dependencies("permit-api");
    for forbidden in FORBIDDEN {
        assert!(
            !crates.iter().any(|c| c == forbidden),
            "permit-api depends on {forbidden}:\n{tree}"
        );
    }
    // serde, serde_json and what they are built from.
    let allowed = [
        "permit-api",
        "serde",
        "serde_core",
        "serde_derive",
        "serde_json",
        "proc-macro2",
        "quote",
        "syn",
        "unicode-ident",
        "itoa",
        "memchr",
        "ryu",
        "zmij",
    ];
    for c in &crates {
        assert!(
            allowed.contains(&c.as_str()),
            "permit-api depends on {c}, not serde:\n{tree}"
        );
    }
}

#[test]
fn the_decision_engine_depends_on_thiserror_only() {
    let (crates, tree) = dependencies("permit-decide");
    let allowed = [
        "permit-decide",
        "thiserror",
        "thiserror-impl",
        "proc-macro2",
        "quote",
        "syn",
        "unicode-ident",
    ];
    for c in &crates {
        assert!(
            allowed.contains(&c.as_str()),
            "permit-decide depends on {c}:\n{tree}"
        );
    }
}

#[test]
fn the_core_depends_on_no_runtime_http_kube_client_or_cli() {
    let (crates, tree) = dependencies("permit-sync-core");
    assert!(crates.iter().any(|c| c == "kube-core"), "{tree}");
    for forbidden in FORBIDDEN {
        assert!(
            !crates.iter().any(|c| c == forbidden),
            "permit-sync-core depends on {forbidden}:\n{tree}"
        );
    }
}
