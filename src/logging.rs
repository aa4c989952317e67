//! Logging, for every command: tracing to stderr. The long-running ones (`watch`, `dev`,
//! `controller`) log text or one JSON object per line (`--log-format json`, for log collectors).
//! `RUST_LOG` filters (default `info`; `warn` for `plan`, `apply` and `export`).
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
    init_with_default(format, "info");
}

/// As [`init`], with `default` as the filter when `RUST_LOG` is unset (the one-shot commands use
/// `warn`: their stdout carries plans, and progress chatter would drown them on stderr).
pub fn init_with_default(format: LogFormat, default: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
}
