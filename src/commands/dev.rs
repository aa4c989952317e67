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
}

pub async fn main(args: &DevArgs) -> anyhow::Result<u8> {
    crate::logging::init(args.run.log_format);
    let dev = crate::pdp::dev::start_embedded(LocalConfig {
        api_addr: args.api_addr,
        pdp_addr: args.pdp_addr,
        api_key: args.api_key.clone(),
        state_file: args.local_state.clone(),
        ..LocalConfig::default()
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
        let _ = writeln!(out, "watching {path}; press Ctrl-C to stop");
        let _ = out.flush();
    })
    .await;
    dev.shutdown().await?;
    if let Some(dir) = temp_inventory {
        let _ = std::fs::remove_dir_all(dir);
    }
    result.map(|_| 0)
}
