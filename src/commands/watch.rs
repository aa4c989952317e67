//! `permit-sync watch PATH`: keep Permit equal to a directory of manifests (see `crate::watch`).

use super::{OwnershipArgs, SyncArgs};
use crate::logging::LogFormat;
use crate::permit::ClientConfig;
use crate::watch::drift::DriftMode;
use crate::watch::state::Shared;
use crate::watch::{self, Config};
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// What `watch` and `dev` share besides the source and ownership.
#[derive(clap::Args, Debug, Clone)]
pub struct RunArgs {
    /// Changes arriving within this window after the first become one sync (bulk calls).
    #[arg(long, default_value = "500ms", value_parser = parse_duration, value_name = "DURATION")]
    pub batch_window: Duration,
    /// Rescan the files this often even without file events.
    #[arg(long, default_value = "60s", value_parser = parse_duration, value_name = "DURATION")]
    pub rescan_interval: Duration,
    /// List Permit this often to find changes made outside permit-sync.
    #[arg(long, default_value = "5m", value_parser = parse_duration, value_name = "DURATION")]
    pub drift_interval: Duration,
    /// What to do with changes made outside permit-sync.
    #[arg(long, value_enum, default_value_t = DriftMode::Correct)]
    pub drift: DriftMode,
    /// Longest wait between retries while Permit fails.
    #[arg(long, default_value = "60s", value_parser = parse_duration, value_name = "DURATION")]
    pub max_backoff: Duration,
    /// Serve /healthz, /readyz, /metrics and /status here (port 0: any free port).
    #[arg(
        long,
        env = "PERMIT_SYNC_METRICS_ADDR",
        default_value = "127.0.0.1:9090"
    )]
    pub metrics_addr: SocketAddr,
    /// Log lines as text or as JSON objects (stderr; RUST_LOG filters, default info).
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// API calls in flight at once.
    #[arg(long, default_value_t = 8)]
    pub concurrency: usize,
}

impl RunArgs {
    pub fn config(&self, path: &Path, ownership: &OwnershipArgs, client: ClientConfig) -> Config {
        let mut c = Config::new(path, &ownership.state_file, client);
        c.options = ownership.plan_options();
        c.batch_window = self.batch_window;
        c.rescan_interval = self.rescan_interval.max(Duration::from_millis(100));
        c.drift_interval = self.drift_interval.max(Duration::from_millis(100));
        c.drift = self.drift;
        c.max_backoff = self.max_backoff.max(Duration::from_millis(100));
        c.exec.concurrency = self.concurrency.max(1);
        c
    }
}

#[derive(clap::Args, Debug, Clone)]
pub struct WatchArgs {
    #[command(flatten)]
    pub sync: SyncArgs,
    #[command(flatten)]
    pub run: RunArgs,
}

pub async fn main(args: &WatchArgs) -> anyhow::Result<u8> {
    crate::logging::init(args.run.log_format);
    let client = args.sync.connection.config()?;
    let config = args
        .run
        .config(&args.sync.path, &args.sync.ownership, client);
    let cancel = shutdown_on_signal();
    serve_and_run(config, args.run.metrics_addr, cancel, |addr| {
        tracing::info!(path = %args.sync.path.display(), status = %format!("http://{addr}/status"), "watching");
    })
    .await?;
    Ok(0)
}

/// Serves the HTTP endpoints and runs the loop until `cancel` fires.
pub async fn serve_and_run(
    config: Config,
    metrics_addr: SocketAddr,
    cancel: CancellationToken,
    on_listening: impl FnOnce(SocketAddr),
) -> anyhow::Result<()> {
    let shared = Shared::default();
    let server_cancel = CancellationToken::new();
    let (addr, server) = crate::serve::start(
        metrics_addr,
        shared.clone(),
        crate::metrics::global(),
        server_cancel.clone(),
    )
    .await?;
    on_listening(addr);
    let result = watch::run(config, shared, cancel).await;
    server_cancel.cancel();
    let _ = server.await;
    result
}

/// A token cancelled by SIGTERM or SIGINT (Ctrl-C).
pub fn shutdown_on_signal() -> CancellationToken {
    let cancel = CancellationToken::new();
    let token = cancel.clone();
    tokio::spawn(async move {
        let ctrl_c = tokio::signal::ctrl_c();
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            match signal(SignalKind::terminate()) {
                Ok(mut term) => {
                    tokio::select! {
                        _ = ctrl_c => {}
                        _ = term.recv() => {}
                    }
                }
                Err(_) => {
                    let _ = ctrl_c.await;
                }
            }
        }
        #[cfg(not(unix))]
        let _ = ctrl_c.await;
        tracing::info!("shutting down: finishing the sync in flight");
        token.cancel();
    });
    cancel
}

/// `500ms`, `2s`, `1.5s`, `5m`, `1h`; a bare number is seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (number, unit) = s.split_at(split);
    let n: f64 = number
        .parse()
        .map_err(|_| format!("{s:?} is not a duration (e.g. 500ms, 2s, 5m)"))?;
    let secs = match unit.trim() {
        "ms" => n / 1000.0,
        "" | "s" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        other => return Err(format!("unknown unit {other:?} in {s:?} (ms, s, m or h)")),
    };
    Duration::try_from_secs_f64(secs).map_err(|e| format!("{s:?}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::parse_duration;
    use std::time::Duration;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2s"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("30"), Ok(Duration::from_secs(30)));
        assert!(parse_duration("5 parsecs").is_err());
        assert!(parse_duration("soon").is_err());
    }
}
