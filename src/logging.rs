//! Logging of the long-running commands (`watch`, `dev`): tracing to stderr, as text or as one JSON
//! object per line (`--log-format json`, for log collectors). `RUST_LOG` filters (default `info`).
//!
//! Nothing logged carries an API key: the Permit client scrubs it from errors, and the sync logs
//! kinds, keys, counts and durations, never field values.

/// The shape of log lines.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

/// Installs the process's subscriber (once; later calls do nothing).
pub fn init(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
}
