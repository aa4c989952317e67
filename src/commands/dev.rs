//! `permit-sync dev PATH`: the embedded local Permit (API + PDP) in-process, watching PATH.
//!
//! The PDP is started through `pdp::dev::start_embedded`, which records the session so that
//! `permit-sync check` works without flags. Without `--local-state` the local Permit starts
//! empty each run, so its inventory lives in a temporary folder removed at exit; with it, the
//! inventory is the `--state-file` (default `.permit-sync/inventory.json`) as for `watch`.

use super::OwnershipArgs;
use super::watch::{RunArgs, serve_and_run, shutdown_on_signal};
use crate::local::{DEFAULT_API_ADDR, DEFAULT_PDP_ADDR, LocalConfig};
use crate::permit::{ApiKey, ClientConfig, Limits};
use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;

#[derive(clap::Args, Debug, Clone)]
pub struct DevArgs {
    /// Manifest directory or file.
    pub path: PathBuf,
    #[command(flatten)]
    pub ownership: OwnershipArgs,
    #[command(flatten)]
    pub run: RunArgs,
    /// Address of the local Permit API.
    #[arg(long, default_value = DEFAULT_API_ADDR)]
    pub api_addr: SocketAddr,
    /// Address of the local PDP (7766 is where `check` and the SDKs look).
    #[arg(long, default_value = DEFAULT_PDP_ADDR)]
    pub pdp_addr: SocketAddr,
    /// The local environment API key; generated (and printed) when absent.
    #[arg(long, env = "PERMIT_LOCAL_API_KEY", hide_env_values = true)]
    pub api_key: Option<String>,
    /// Keep the local Permit's data in this file across runs.
    #[arg(long, value_name = "FILE")]
    pub local_state: Option<PathBuf>,
    /// Delay the local PDP's view of writes, as Permit's PDPs get them seconds after the API
    /// returns (e.g. `2s`): decisions are taken on the data as it was this long ago, and the log
    /// says after each sync when the PDP will have its writes.
    #[arg(long, value_name = "DURATION", default_value = "0", value_parser = super::watch::parse_duration)]
    pub pdp_delay: std::time::Duration,
}

pub async fn main(args: &DevArgs) -> anyhow::Result<u8> {
    crate::logging::init(args.run.log_format);
    let dev = crate::pdp::dev::start_embedded(LocalConfig {
        api_addr: args.api_addr,
        pdp_addr: args.pdp_addr,
        api_key: args.api_key.clone(),
        state_file: args.local_state.clone(),
        knobs: crate::local::knobs::Knobs {
            pdp_delay_ms: args.pdp_delay.as_millis() as u64,
            ..Default::default()
        },
    })
    .await?;
    let permit = dev.permit();
    let (api_url, pdp_url) = (permit.api_url(), permit.pdp_url());
    let key = permit.api_key().to_string();

    // A fresh local Permit owns nothing yet: an inventory from an earlier run would belong to
    // another environment, so keep this run's inventory aside unless the data persists.
    let temp_inventory = args
        .local_state
        .is_none()
        .then(|| std::env::temp_dir().join(format!("permit-sync-dev-{}", std::process::id())));
    let mut ownership = args.ownership.clone();
    if let Some(dir) = &temp_inventory {
        ownership.state_file = dir.join("inventory.json");
    }
    let mut client = ClientConfig::new(api_url.clone(), ApiKey::new(key.clone()));
    // The local Permit enforces no limits unless asked to: pacing would only slow dev down.
    client.limits = Limits::unlimited();
    let config = args.run.config(&args.path, &ownership, client);

    let cancel = shutdown_on_signal();
    let lag_log = (!args.pdp_delay.is_zero())
        .then(|| tokio::spawn(log_pdp_lag(permit.lag_probe(), cancel.clone())));
    let pdp_delay = args.pdp_delay;
    // The key is printed once, to the person who started `dev`, and only when it was generated:
    // a key passed in is known to its owner and stays out of the output.
    let shown_key = if args.api_key.is_some() {
        "(the one given with --api-key / PERMIT_LOCAL_API_KEY)".to_string()
    } else {
        key
    };
    let session = dev.session_file().map(|p| p.display().to_string());
    let path = args.path.display().to_string();
    let result = serve_and_run(config, args.run.metrics_addr, cancel, |addr| {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "permit-sync dev: embedded local Permit running");
        let _ = writeln!(out, "  API:     {api_url}");
        let _ = writeln!(out, "  PDP:     {pdp_url}");
        let _ = writeln!(out, "  API key: {shown_key}");
        let _ = writeln!(
            out,
            "  status:  http://{addr}/status (permit-sync status --addr {addr})"
        );
        if let Some(s) = &session {
            let _ = writeln!(out, "  session: {s} (permit-sync check uses it)");
        }
        if !pdp_delay.is_zero() {
            let _ = writeln!(
                out,
                "  PDP delay: {} ms (decisions see each write that late, as at Permit)",
                pdp_delay.as_millis()
            );
        }
        let _ = writeln!(out, "watching {path}; press Ctrl-C to stop");
        let _ = out.flush();
    })
    .await;
    if let Some(task) = lag_log {
        task.abort();
    }
    dev.shutdown().await?;
    if let Some(dir) = temp_inventory {
        let _ = std::fs::remove_dir_all(dir);
    }
    result.map(|_| 0)
}

/// While `--pdp-delay` is set: logs when writes (a sync's) are made and the local PDP does not
/// have them yet, with when it will, and when it has them all. Polls the PDP's lag every 50 ms.
async fn log_pdp_lag(
    probe: crate::local::lag::LagProbe,
    cancel: tokio_util::sync::CancellationToken,
) {
    let mut pending = false;
    let mut tick = tokio::time::interval(std::time::Duration::from_millis(50));
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tick.tick() => {}
        }
        let lag = probe.lag();
        match (pending, lag.up_to_date()) {
            (false, false) => tracing::info!(
                pdp_delay_ms = lag.delay.as_millis() as u64,
                in_ms = lag.pending.as_millis() as u64,
                "local PDP: the writes just made reach its decisions in {:.1}s (--pdp-delay); \
                 `permit-sync check --wait` waits for them",
                lag.pending.as_secs_f64()
            ),
            (true, true) => tracing::info!("local PDP: its decisions now include every write"),
            _ => {}
        }
        pending = !lag.up_to_date();
    }
}
