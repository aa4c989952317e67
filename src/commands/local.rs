//! `permit-sync local`: the local Permit as a standalone server.

use crate::local::knobs::{FaultTarget, Faults, Knobs, RateLimits};
use crate::local::{self, LocalConfig, LocalPermit};
use clap::Args;
use std::net::SocketAddr;
use std::path::PathBuf;

#[derive(Args, Debug, Clone)]
pub struct LocalArgs {
    /// Address of the REST API (the SDKs' `api_url`).
    #[arg(long, default_value = local::DEFAULT_API_ADDR)]
    pub api_addr: SocketAddr,
    /// Address of the PDP (the SDKs' `pdp`).
    #[arg(long, default_value = local::DEFAULT_PDP_ADDR)]
    pub pdp_addr: SocketAddr,
    /// The environment API key clients must send; generated when absent.
    #[arg(long, env = "PERMIT_LOCAL_API_KEY", hide_env_values = true)]
    pub api_key: Option<String>,
    /// Keep the data in this file across restarts.
    #[arg(long = "state")]
    pub state: Option<PathBuf>,
    /// Latency added to every request, in milliseconds.
    #[arg(long, default_value_t = 0)]
    pub latency_ms: u64,
    /// Delay the PDP's view of writes: decisions are taken on the data as it was this long ago,
    /// as Permit's PDPs get writes seconds after the API returns (e.g. `2s`; 0: at once).
    #[arg(long, value_name = "DURATION", default_value = "0", value_parser = crate::commands::watch::parse_duration)]
    pub pdp_delay: std::time::Duration,
    /// Enforce Permit's documented REST rate limits (off by default).
    #[arg(long)]
    pub rate_limits: bool,
    /// Multiply the rate limits' request counts by this factor.
    #[arg(long, default_value_t = 1.0)]
    pub rate_limit_scale: f64,
    /// Multiply the rate limits' windows by this factor (0.01: a minute lasts 0.6 s).
    #[arg(long, default_value_t = 1.0)]
    pub rate_limit_time_scale: f64,
    /// Seed of the fault sequence (same seed and request order, same faults).
    #[arg(long, default_value_t = 0)]
    pub fault_seed: u64,
    /// Which server the faults hit.
    #[arg(long, value_parser = ["api", "pdp", "both"], default_value = "api")]
    pub fault_target: String,
    /// Probability of an injected 5xx answer.
    #[arg(long, default_value_t = 0.0)]
    pub fault_5xx_rate: f64,
    /// Status of injected 5xx answers.
    #[arg(long, default_value_t = 503)]
    pub fault_5xx_status: u16,
    /// Probability that a burst of injected 429s starts.
    #[arg(long, default_value_t = 0.0)]
    pub fault_429_rate: f64,
    /// Length of each 429 burst, in requests.
    #[arg(long, default_value_t = 1)]
    pub fault_429_burst: u32,
    /// `Retry-After` seconds on injected 429s (none when absent).
    #[arg(long)]
    pub fault_retry_after: Option<u64>,
    /// Probability of a dropped connection.
    #[arg(long, default_value_t = 0.0)]
    pub fault_drop_rate: f64,
    /// Probability of a slow answer, delayed by --fault-slow-ms.
    #[arg(long, default_value_t = 0.0)]
    pub fault_slow_rate: f64,
    /// Delay of a slow answer, in milliseconds.
    #[arg(long, default_value_t = 1000)]
    pub fault_slow_ms: u64,
}

impl LocalArgs {
    pub fn config(&self) -> LocalConfig {
        LocalConfig {
            api_addr: self.api_addr,
            pdp_addr: self.pdp_addr,
            api_key: self.api_key.clone(),
            state_file: self.state.clone(),
            knobs: Knobs {
                latency_ms: self.latency_ms,
                pdp_unhealthy: false,
                pdp_delay_ms: self.pdp_delay.as_millis() as u64,
                rate_limits: RateLimits {
                    enabled: self.rate_limits,
                    scale: self.rate_limit_scale,
                    time_scale: self.rate_limit_time_scale,
                    ..RateLimits::default()
                },
                faults: Faults {
                    seed: self.fault_seed,
                    target: match self.fault_target.as_str() {
                        "pdp" => FaultTarget::Pdp,
                        "both" => FaultTarget::Both,
                        _ => FaultTarget::Api,
                    },
                    error_rate: self.fault_5xx_rate,
                    error_status: self.fault_5xx_status,
                    rate_limit_rate: self.fault_429_rate,
                    rate_limit_burst: self.fault_429_burst,
                    retry_after_secs: self.fault_retry_after,
                    drop_rate: self.fault_drop_rate,
                    slow_rate: self.fault_slow_rate,
                    slow_ms: self.fault_slow_ms,
                    ..Faults::default()
                },
            },
        }
    }
}

/// Runs until Ctrl-C (or SIGTERM), then shuts down gracefully.
pub async fn run(args: &LocalArgs) -> anyhow::Result<()> {
    let permit = LocalPermit::start(args.config()).await?;
    // A generated (or saved) key is printed here only, to the person who started the server; a
    // key they chose is not echoed, so a CI log never shows a key kept in a secret store.
    println!("local Permit running");
    println!("  API:     {}", permit.api_url());
    println!("  PDP:     {}", permit.pdp_url());
    if args.api_key.is_some() {
        println!("  API key: the one given (--api-key or PERMIT_LOCAL_API_KEY)");
    } else {
        println!("  API key: {}", permit.api_key());
    }
    if let Some(state) = &args.state {
        println!("  state:   {}", state.display());
    }
    if !args.pdp_delay.is_zero() {
        println!(
            "  PDP delay: {} ms (decisions see writes that late; header {})",
            args.pdp_delay.as_millis(),
            crate::local::lag::PENDING_HEADER
        );
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
