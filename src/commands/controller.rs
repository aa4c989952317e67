//! `permit-sync controller`: the Kubernetes controller (see [`crate::controller`]) with the flags the
//! Helm chart passes (`charts/permit-sync/templates/deployment.yaml`).

use crate::controller::{self, Config, ControllerState, leader::LeaseConfig};
use crate::logging::LogFormat;
use crate::permit::{ApiKey, ClientConfig, DEFAULT_API_URL, Limits};
use anyhow::Context;
use k8s_openapi::api::core::v1::Secret;
use kube::api::Api;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

#[derive(clap::Args, Debug, Clone)]
pub struct ControllerArgs {
    /// Namespace to watch (repeatable, or comma-separated); default: all namespaces.
    #[arg(long = "namespace", value_name = "NAMESPACE", value_delimiter = ',')]
    pub namespaces: Vec<String>,
    /// Permit API base URL.
    #[arg(long, env = "PERMIT_API_URL", default_value = DEFAULT_API_URL)]
    pub api_url: String,
    /// Read the Permit API key from this Secret (key `api-key`) instead of PERMIT_API_KEY.
    #[arg(long, value_name = "NAMESPACE/NAME")]
    pub api_key_secret: Option<String>,
    /// The key of the Secret's data that holds the API key.
    #[arg(long, default_value = "api-key", value_name = "KEY")]
    pub api_key_secret_key: String,
    /// Elect a leader through a Lease: only the leader writes (Permit, status, finalizers).
    #[arg(long)]
    pub leader_elect: bool,
    #[arg(long, default_value = "permit-sync", value_name = "NAME")]
    pub lease_name: String,
    /// Namespace of the Lease (default: POD_NAMESPACE, else `default`).
    #[arg(long, value_name = "NAMESPACE")]
    pub lease_namespace: Option<String>,
    /// Seconds a Lease lasts without renewal.
    #[arg(long, default_value_t = 15, value_name = "SECONDS")]
    pub lease_duration: u64,
    /// `/healthz`, `/readyz` and `/metrics` listen here.
    #[arg(long, default_value = "0.0.0.0:9090", value_name = "ADDR")]
    pub metrics_addr: SocketAddr,
    #[arg(long, value_enum, default_value = "text")]
    pub log_format: LogFormat,
    /// Kubeconfig to use outside a cluster (default: KUBECONFIG, ~/.kube/config, in-cluster).
    #[arg(long, value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,
    /// Act as this user (impersonation; e.g. system:serviceaccount:NS:NAME to run as the chart's
    /// ServiceAccount from outside the cluster).
    #[arg(long = "as", value_name = "USER")]
    pub as_user: Option<String>,
    /// Groups to impersonate along with --as (repeatable).
    #[arg(long = "as-group", value_name = "GROUP")]
    pub as_groups: Vec<String>,
    /// Quiet time, in milliseconds, that closes a batch of changes.
    #[arg(long, default_value_t = 300, value_name = "MS")]
    pub batch_window_ms: u64,
    /// Relist Permit this often, in seconds (corrects drift made elsewhere).
    #[arg(long, default_value_t = 600, value_name = "SECONDS")]
    pub resync_seconds: u64,
    /// Override a client-side rate limit: CLASS=N/SECONDS or CLASS=off.
    #[arg(long = "rate-limit", value_name = "CLASS=N/SECONDS")]
    pub rate_limits: Vec<String>,
    /// Do not run the PermitPDP controller.
    #[arg(long)]
    pub no_pdp: bool,
}

/// The Kubernetes client: a kubeconfig when given, else the usual inference; impersonation on top.
pub async fn kube_client(args: &ControllerArgs) -> anyhow::Result<kube::Client> {
    let mut config = match &args.kubeconfig {
        Some(path) => {
            let kc = kube::config::Kubeconfig::read_from(path)
                .with_context(|| format!("reading kubeconfig {}", path.display()))?;
            kube::Config::from_custom_kubeconfig(kc, &Default::default())
                .await
                .with_context(|| format!("using kubeconfig {}", path.display()))?
        }
        None => kube::Config::infer()
            .await
            .context("finding the cluster (in-cluster, KUBECONFIG or ~/.kube/config)")?,
    };
    if let Some(user) = &args.as_user {
        config.auth_info.impersonate = Some(user.clone());
        if !args.as_groups.is_empty() {
            config.auth_info.impersonate_groups = Some(args.as_groups.clone());
        }
    }
    kube::Client::try_from(config).context("building the Kubernetes client")
}

/// The API key: from the Secret named by `--api-key-secret`, else PERMIT_API_KEY. Never logged.
pub async fn api_key(client: &kube::Client, args: &ControllerArgs) -> anyhow::Result<ApiKey> {
    let Some(reference) = &args.api_key_secret else {
        return match std::env::var("PERMIT_API_KEY") {
            Ok(k) if !k.trim().is_empty() => Ok(ApiKey::new(k.trim())),
            _ => anyhow::bail!("no Permit API key: set PERMIT_API_KEY or pass --api-key-secret"),
        };
    };
    let (ns, name) = reference
        .split_once('/')
        .filter(|(n, s)| !n.is_empty() && !s.is_empty())
        .with_context(|| format!("--api-key-secret {reference:?}: expected NAMESPACE/NAME"))?;
    let secret = Api::<Secret>::namespaced(client.clone(), ns)
        .get(name)
        .await
        .with_context(|| format!("reading the API key Secret {ns}/{name}"))?;
    let value = secret
        .data
        .as_ref()
        .and_then(|d| d.get(&args.api_key_secret_key))
        .with_context(|| {
            format!(
                "Secret {ns}/{name} has no key {:?}",
                args.api_key_secret_key
            )
        })?;
    let key = String::from_utf8(value.0.clone())
        .with_context(|| format!("Secret {ns}/{name}: the API key is not UTF-8"))?;
    Ok(ApiKey::new(key.trim()))
}

pub fn config(args: &ControllerArgs, key: ApiKey) -> anyhow::Result<Config> {
    let mut permit = ClientConfig::new(args.api_url.clone(), key);
    let mut limits = Limits::default();
    for spec in &args.rate_limits {
        limits.set(spec).map_err(anyhow::Error::msg)?;
    }
    permit.limits = limits;
    let mut config = Config::new(permit);
    config.namespaces = args.namespaces.clone();
    if let Ok(pod) = std::env::var("POD_NAME")
        && !pod.is_empty()
    {
        config.identity = pod;
    }
    config.batch_window = Duration::from_millis(args.batch_window_ms.max(1));
    config.resync = Duration::from_secs(args.resync_seconds.max(10));
    config.pdp = !args.no_pdp;
    if args.leader_elect {
        let namespace = args
            .lease_namespace
            .clone()
            .or_else(|| {
                std::env::var("POD_NAMESPACE")
                    .ok()
                    .filter(|s| !s.is_empty())
            })
            .unwrap_or_else(|| "default".into());
        let duration = Duration::from_secs(args.lease_duration.max(3));
        config.leader = Some(LeaseConfig {
            name: args.lease_name.clone(),
            namespace,
            identity: config.identity.clone(),
            duration,
            grace: (duration / 3).max(Duration::from_secs(1)),
        });
    }
    Ok(config)
}

pub async fn run(args: &ControllerArgs) -> anyhow::Result<()> {
    crate::logging::init(args.log_format);
    let client = kube_client(args).await?;
    let key = api_key(&client, args).await?;
    let config = config(args, key)?;
    let shutdown = CancellationToken::new();
    let shared = Arc::new(ControllerState::default());
    let (addr, _server) = crate::serve::start(
        args.metrics_addr,
        shared.clone(),
        crate::metrics::global(),
        shutdown.clone(),
    )
    .await?;
    tracing::info!(
        metrics = %addr,
        namespaces = ?config.namespaces,
        leader_election = config.leader.is_some(),
        identity = %config.identity,
        api_url = %args.api_url,
        "controller starting"
    );
    let signals = shutdown.clone();
    tokio::spawn(async move {
        wait_for_signal().await;
        tracing::info!("shutting down");
        signals.cancel();
    });
    controller::run(client, config, shared, shutdown).await
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
        tokio::select! {
            _ = term.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = tokio::signal::ctrl_c().await;
}
