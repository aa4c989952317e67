//! `permit-sync local`: the local Permit as a standalone server.

use super::{LocalConfig, LocalPermit};
use clap::Args;
use std::net::SocketAddr;
use std::path::PathBuf;

#[derive(Args, Debug, Clone)]
pub struct LocalArgs {
    /// Address of the REST API (the SDKs' `api_url`).
    #[arg(long, default_value = super::DEFAULT_API_ADDR)]
    pub api_addr: SocketAddr,
    /// Address of the PDP (the SDKs' `pdp`).
    #[arg(long, default_value = super::DEFAULT_PDP_ADDR)]
    pub pdp_addr: SocketAddr,
    /// The environment API key clients must send; generated when absent.
    #[arg(long, env = "PERMIT_LOCAL_API_KEY", hide_env_values = true)]
    pub api_key: Option<String>,
    /// Keep the data in this file across restarts.
    #[arg(long = "state")]
    pub state: Option<PathBuf>,
}

impl LocalArgs {
    pub fn config(&self) -> LocalConfig {
        LocalConfig {
            api_addr: self.api_addr,
            pdp_addr: self.pdp_addr,
            api_key: self.api_key.clone(),
            state_file: self.state.clone(),
        }
    }
}

/// Runs until Ctrl-C (or SIGTERM), then shuts down gracefully.
pub async fn run(args: &LocalArgs) -> anyhow::Result<()> {
    let permit = LocalPermit::start(args.config()).await?;
    // The key is printed here only, to the person who started the server.
    println!("local Permit running");
    println!("  API:     {}", permit.api_url());
    println!("  PDP:     {}", permit.pdp_url());
    println!("  API key: {}", permit.api_key());
    if let Some(state) = &args.state {
        println!("  state:   {}", state.display());
    }
    println!("press Ctrl-C to stop");
    shutdown_signal().await;
    permit.shutdown().await
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = tokio::signal::ctrl_c().await;
}
