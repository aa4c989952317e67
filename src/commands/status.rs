//! `permit-sync status`: the per-object status of a running `watch` or `dev`, as a table.

use crate::watch::state::{ObjectState, WatchStatus};
use anyhow::Context;
use std::fmt::Write as _;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum StatusFormat {
    #[default]
    Table,
    Json,
}

#[derive(clap::Args, Debug, Clone)]
pub struct StatusArgs {
    /// The `--metrics-addr` of the running `watch` or `dev` (host:port or a URL).
    #[arg(
        long,
        env = "PERMIT_SYNC_METRICS_ADDR",
        default_value = "127.0.0.1:9090"
    )]
    pub addr: String,
    #[arg(long, short, value_enum, default_value_t = StatusFormat::Table)]
    pub output: StatusFormat,
}

/// Exit 0 when ready with every object synced, 2 otherwise, 1 when the process cannot be asked.
pub async fn main(args: &StatusArgs) -> anyhow::Result<u8> {
    let base = if args.addr.contains("://") {
        args.addr.trim_end_matches('/').to_string()
    } else {
        format!("http://{}", args.addr)
    };
    let url = format!("{base}/status");
    let http = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(10))
        .build()?;
    let report: WatchStatus = http
        .get(&url)
        .send()
        .await
        .and_then(|r| r.error_for_status())
        .with_context(|| format!("asking {url} (is `permit-sync watch` or `dev` running there?)"))?
        .json()
        .await
        .with_context(|| format!("reading the status from {url}"))?;
    match args.output {
        StatusFormat::Json => println!("{}", serde_json::to_string_pretty(&report)?),
        StatusFormat::Table => print!("{}", table(&report)),
    }
    let all_synced = report
        .objects
        .iter()
        .all(|o| o.state == ObjectState::Synced);
    Ok(if report.ready && all_synced { 0 } else { 2 })
}

/// The report as text: a header, one row per object, then file problems and PDPs.
pub fn table(r: &WatchStatus) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{} {}  (Permit {}, {} sync{})",
        if r.ready { "ready:" } else { "NOT READY:" },
        r.path,
        r.api_url,
        r.syncs,
        if r.syncs == 1 { "" } else { "s" }
    );
    if let Some(m) = &r.message {
        let _ = writeln!(out, "  {m}");
    }
    if let Some(t) = r.last_success {
        let _ = writeln!(out, "last success: {}", t.to_rfc3339());
    }
    let kind_w = r
        .objects
        .iter()
        .map(|o| o.kind.as_str().len())
        .max()
        .unwrap_or(4)
        .max(4);
    let key_w = r
        .objects
        .iter()
        .map(|o| o.key.len())
        .max()
        .unwrap_or(3)
        .clamp(3, 60);
    let _ = writeln!(
        out,
        "\n{:kind_w$}  {:key_w$}  {:8}  MESSAGE",
        "KIND", "KEY", "STATE"
    );
    for o in &r.objects {
        let _ = writeln!(
            out,
            "{:kind_w$}  {:key_w$}  {:8}  {}",
            o.kind.as_str(),
            o.key,
            o.state.as_str(),
            o.message.as_deref().unwrap_or("")
        );
    }
    let synced = r
        .objects
        .iter()
        .filter(|o| o.state == ObjectState::Synced)
        .count();
    let _ = writeln!(out, "{synced}/{} synced", r.objects.len());
    if !r.files.is_empty() {
        let _ = writeln!(out, "\nmanifest problems:");
        for f in &r.files {
            let _ = writeln!(out, "  {}: {}", f.severity, f.message);
        }
    }
    if !r.pdps.is_empty() {
        let _ = writeln!(out, "\nPDPs:");
        for p in &r.pdps {
            let _ = writeln!(
                out,
                "  {}  {}  {}",
                p.name,
                if p.healthy { "healthy" } else { "unhealthy" },
                p.message.as_deref().unwrap_or("")
            );
        }
    }
    out
}
