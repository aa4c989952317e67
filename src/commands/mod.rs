//! The `plan`, `apply` and `export` commands: arguments and the steps around the engine.

pub mod apply;
pub mod check;
pub mod controller;
pub mod crds;
pub mod dev;
pub mod export;
pub mod local;
pub mod plan;
pub mod progress;
pub mod status;
pub mod validate;
pub mod watch;

use crate::desired::Desired;
use crate::kinds::{Object, Origin};
use crate::permit::{ApiKey, ClientConfig, DEFAULT_API_URL, Limits, PermitClient};
use crate::plan::{Mode, PlanOptions};
use anyhow::Context;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Logs to stderr (`RUST_LOG`, default `warn`), never to the stdout that carries plans.
pub fn init_logging() {
    crate::logging::init_with_default(crate::logging::LogFormat::Text, "warn");
}

/// How to reach Permit.
#[derive(clap::Args, Debug, Clone)]
pub struct ConnectionArgs {
    /// Permit API base URL.
    #[arg(long, env = "PERMIT_API_URL", default_value = DEFAULT_API_URL)]
    pub api_url: String,
    /// File holding the environment API key (default: the PERMIT_API_KEY environment variable).
    #[arg(long, env = "PERMIT_API_KEY_FILE", value_name = "FILE")]
    pub api_key_file: Option<PathBuf>,
    /// Override a client-side rate limit: CLASS=N/SECONDS or CLASS=off, where CLASS is one of
    /// bulk, schema_write, delete, write, all. Defaults to Permit's documented limits.
    #[arg(long = "rate-limit", value_name = "CLASS=N/SECONDS")]
    pub rate_limits: Vec<String>,
    /// Timeout of each API request, in seconds.
    #[arg(long, default_value_t = 30, value_name = "SECONDS")]
    pub timeout: u64,
}

impl ConnectionArgs {
    pub fn api_key(&self) -> anyhow::Result<ApiKey> {
        if let Some(file) = &self.api_key_file {
            let key = std::fs::read_to_string(file)
                .with_context(|| format!("reading the API key file {}", file.display()))?;
            return Ok(ApiKey::new(key));
        }
        match std::env::var("PERMIT_API_KEY") {
            Ok(k) if !k.trim().is_empty() => Ok(ApiKey::new(k)),
            _ => anyhow::bail!("no Permit API key: set PERMIT_API_KEY or pass --api-key-file"),
        }
    }

    pub fn config(&self) -> anyhow::Result<ClientConfig> {
        let mut config = ClientConfig::new(self.api_url.clone(), self.api_key()?);
        let mut limits = Limits::default();
        for spec in &self.rate_limits {
            limits.set(spec).map_err(anyhow::Error::msg)?;
        }
        config.limits = limits;
        config.timeout = Duration::from_secs(self.timeout.max(1));
        Ok(config)
    }

    pub async fn connect(&self) -> anyhow::Result<PermitClient> {
        let config = self.config()?;
        PermitClient::connect(config)
            .await
            .with_context(|| format!("connecting to Permit at {}", self.api_url))
    }
}

/// Prune and ownership settings: what `plan`, `apply`, `watch` and `dev` share, with the same guards.
#[derive(clap::Args, Debug, Clone)]
pub struct OwnershipArgs {
    /// Delete objects permit-sync manages (the inventory) that are no longer declared.
    #[arg(long)]
    pub prune: bool,
    /// `owned`: prune touches only the inventory; `mirror`: Permit must equal the manifests
    /// exactly (deletes everything undeclared except the `default` tenant and `Orphan` objects;
    /// implies --prune).
    #[arg(long, value_parser = crate::cli::mode_parser(), default_value = "owned")]
    pub mode: Mode,
    /// Allow prune when the manifests declare nothing.
    #[arg(long)]
    pub allow_empty: bool,
    /// Refuse to run a plan that deletes more than N objects.
    #[arg(long, value_name = "N")]
    pub max_deletions: Option<usize>,
    /// Inventory of the objects permit-sync manages (keep it outside the manifests, one per
    /// environment).
    #[arg(
        long,
        env = "PERMIT_SYNC_STATE_FILE",
        default_value = ".permit-sync/inventory.json",
        value_name = "FILE"
    )]
    pub state_file: PathBuf,
}

impl OwnershipArgs {
    pub fn plan_options(&self) -> PlanOptions {
        PlanOptions {
            prune: self.prune,
            mode: self.mode,
            allow_empty: self.allow_empty,
            max_deletions: self.max_deletions,
        }
    }
}

/// What `plan`, `apply` and `watch` share: the source, prune and ownership settings, the connection.
#[derive(clap::Args, Debug, Clone)]
pub struct SyncArgs {
    /// Manifest directory or file.
    pub path: PathBuf,
    #[command(flatten)]
    pub ownership: OwnershipArgs,
    #[command(flatten)]
    pub connection: ConnectionArgs,
}

impl SyncArgs {
    pub fn plan_options(&self) -> PlanOptions {
        self.ownership.plan_options()
    }
}

/// Loads the manifests at `path` with the loader and its reference checks. Any error stops here:
/// an unreadable or invalid file must never turn into deletions. Warnings go to stderr.
pub fn load(path: &Path) -> anyhow::Result<Vec<(Origin, Object)>> {
    use crate::manifest::{self, LoadOptions};
    let set = manifest::load_paths(&[path.to_path_buf()], &LoadOptions::default());
    let mut diagnostics = set.diagnostics.clone();
    diagnostics.extend(crate::validate::check(&set.objects));
    diagnostics.sort_by(|a, b| (&a.file, a.line, a.column).cmp(&(&b.file, b.line, b.column)));
    for d in &diagnostics {
        eprintln!("{}: {d}", d.severity);
    }
    let errors = diagnostics.iter().filter(|d| d.is_error()).count();
    if errors > 0 {
        anyhow::bail!(
            "{errors} error(s) in the manifests at {}; nothing was planned",
            path.display()
        );
    }
    Ok(set
        .objects
        .into_iter()
        .map(|loaded| (loaded.origin, loaded.object))
        .collect())
}

/// Loads the manifests at `path` straight into the desired model, file by file (see
/// [`crate::source`]): what `plan` and `apply` use, so memory follows the model, not the
/// manifests. Any error stops here, as with [`load`]; warnings go to stderr.
pub fn load_desired(path: &Path) -> anyhow::Result<Desired> {
    use crate::manifest::LoadOptions;
    init_logging();
    let mut source = crate::source::load(&[path.to_path_buf()], &LoadOptions::default());
    source
        .diagnostics
        .sort_by(|a, b| (&a.file, a.line, a.column).cmp(&(&b.file, b.line, b.column)));
    for d in &source.diagnostics {
        eprintln!("{}: {d}", d.severity);
    }
    let errors = source.diagnostics.iter().filter(|d| d.is_error()).count();
    if errors > 0 {
        anyhow::bail!(
            "{errors} error(s) in the manifests at {}; nothing was planned",
            path.display()
        );
    }
    Ok(source.desired)
}

/// The desired model of loaded objects; duplicate declarations are an error naming both places.
pub fn desired(objects: &[(Origin, Object)]) -> anyhow::Result<Desired> {
    Desired::from_objects(objects.iter().map(|(o, x)| (o, x))).map_err(|errors| {
        let lines: Vec<String> = errors.iter().map(ToString::to_string).collect();
        anyhow::anyhow!("{}", lines.join("\n"))
    })
}
