//! A real kube-apiserver + etcd for integration tests (issue 6).
//!
//! The binaries come from `tests/kube-testenv/build.sh` (Go module proxy, version-keyed cache).
//! Include with `#[macro_use] #[path = "support/kube_env.rs"] mod kube_env;` (the macro is
//! [`kube_env!`]).
//!
//! - [`shared`]: one environment per test binary, CRDs installed; every `#[tokio::test]` calls it
//!   and gets `None` (skip, outside CI only) when the binaries are missing.
//! - [`KubeEnv::start`]: a private environment, for tests that stop and restart the control plane.
//! - [`KubeEnv::client`], [`KubeEnv::kubeconfig`], [`KubeEnv::user`], [`KubeEnv::impersonating`],
//!   [`KubeEnv::service_account`], [`KubeEnv::kubectl`], [`KubeEnv::namespace`]; faults:
//!   [`KubeEnv::stop`], [`KubeEnv::stop_apiserver`], [`KubeEnv::start_again`], [`KubeEnv::restart`].
//!
//! Children are started in their own process group, from a thread that lives as long as the test
//! process and with a parent-death signal, so a killed or panicking test binary leaves no apiserver
//! behind. `KUBE_TESTENV_KEEP=1` keeps the temp dir (logs, certificates, kubeconfig) for a look.
#![allow(dead_code)]

/// The shared environment, or return from the test (a skip) when there is none. Bring it in with
/// `#[macro_use]` on the `mod kube_env;` line.
#[allow(unused_macros)]
macro_rules! kube_env {
    () => {
        match $crate::kube_env::shared() {
            Some(env) => env,
            None => return,
        }
    };
}

use anyhow::{Context, Result, anyhow, bail};
use base64::Engine as _;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, Patch, PatchParams};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use std::io::Write as _;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, Once, OnceLock, mpsc};
use std::time::{Duration, Instant};

/// Versions that `tests/kube-testenv/build.sh` builds; they key the cache folder.
pub const K8S_VERSION: &str = "1.37.2";
pub const HELM_VERSION: &str = "3.21.4";
/// How the binaries are built (from the repository root).
pub const BUILD_COMMAND: &str = "tests/kube-testenv/build.sh";
const BINARIES: [&str; 4] = ["etcd", "kube-apiserver", "kubectl", "helm"];
/// Field manager of the CRD install.
const MANAGER: &str = "permit-sync-testenv";

fn start_timeout() -> Duration {
    // 2 cores shared by several builds: the apiserver usually needs 2-10 s, allow far more.
    let secs = std::env::var("KUBE_TESTENV_START_TIMEOUT")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(120);
    Duration::from_secs(secs)
}

fn in_ci() -> bool {
    matches!(
        std::env::var("CI").as_deref(),
        Ok("true") | Ok("1") | Ok("TRUE") | Ok("True")
    )
}

/// Installs the ring rustls provider, as `main` does (kube is built on ring).
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// The folder holding etcd, kube-apiserver, kubectl and helm: `KUBE_TESTENV_BIN`, else the cache.
pub fn bin_dir() -> Result<PathBuf, String> {
    let dir = match std::env::var_os("KUBE_TESTENV_BIN") {
        Some(d) if !d.is_empty() => PathBuf::from(d),
        _ => {
            let cache = std::env::var_os("XDG_CACHE_HOME")
                .filter(|d| !d.is_empty())
                .map(PathBuf::from)
                .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
                .ok_or("neither KUBE_TESTENV_BIN nor HOME is set")?;
            cache.join(format!(
                "permit-sync/kube-testenv/v{K8S_VERSION}-helm{HELM_VERSION}"
            ))
        }
    };
    let missing: Vec<&str> = BINARIES
        .into_iter()
        .filter(|b| !dir.join(b).is_file())
        .collect();
    if missing.is_empty() {
        Ok(dir)
    } else {
        Err(format!(
            "{} missing in {}",
            missing.join(", "),
            dir.display()
        ))
    }
}

/// The binaries folder; `None` (after a visible note) when they are missing outside CI.
///
/// Under `CI=true` missing binaries fail the test: CI must never skip the Kubernetes tests.
pub fn bin_dir_or_skip() -> Option<PathBuf> {
    match bin_dir() {
        Ok(dir) => Some(dir),
        Err(why) if in_ci() => panic!(
            "Kubernetes test environment: {why}. Under CI=true these tests must run: \
             build the binaries with `{BUILD_COMMAND}` and export KUBE_TESTENV_BIN to the folder \
             it prints (scripts/test.sh does both)."
        ),
        Err(why) => {
            static NOTE: Once = Once::new();
            NOTE.call_once(|| {
                // Straight to stderr: `eprintln!` output of passing tests is captured and lost.
                let _ = writeln!(
                    std::io::stderr(),
                    "SKIPPING Kubernetes tests: {why}. Build them with `{BUILD_COMMAND}` \
                     (or set KUBE_TESTENV_BIN); under CI=true this is an error."
                );
            });
            None
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The shared environment

static SHARED: OnceLock<std::result::Result<KubeEnv, String>> = OnceLock::new();

/// The environment shared by all tests of this binary, CRDs installed and `Established`.
///
/// `None` means: skip (binaries missing, not under CI). Started on first use; torn down when the
/// test process exits (statics are never dropped, so an `atexit` hook does it). A failed start
/// fails every test that asks, with the logs' tails. Do not `stop`/`restart` the shared
/// environment: tests run in parallel on it; start a private [`KubeEnv`] for that.
pub fn shared() -> Option<ControllerState> {
    install_crypto_provider();
    let bin = bin_dir_or_skip()?;
    let env = SHARED.get_or_init(|| {
        // Own thread and runtime: the caller is usually inside a tokio runtime, where `block_on`
        // panics, and the shared clients must not depend on one test's runtime.
        let started = std::thread::spawn(move || -> Result<KubeEnv> {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            rt.block_on(KubeEnv::start_in(bin, Options::default()))
        })
        .join()
        .map_err(|_| anyhow!("the start-up thread panicked"))
        .and_then(|r| r);
        match started {
            Ok(env) => {
                // SAFETY: registers a plain `extern "C"` function without arguments.
                unsafe { libc::atexit(teardown_shared) };
                Ok(env)
            }
            Err(e) => Err(format!("{e:#}")),
        }
    });
    match env {
        Ok(env) => Some(ControllerState(env)),
        Err(e) => panic!("the shared Kubernetes test environment did not start: {e}"),
    }
}

extern "C" fn teardown_shared() {
    if let Some(Ok(env)) = SHARED.get() {
        env.teardown();
    }
}

/// A test's handle on the shared environment: prints the control plane's log tails when the test
/// fails (panics) while holding it.
pub struct ControllerState(&'static KubeEnv);

impl std::ops::Deref for ControllerState {
    type Target = KubeEnv;
    fn deref(&self) -> &KubeEnv {
        self.0
    }
}

impl Drop for ControllerState {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("{}", self.0.log_tails(30));
        }
    }
}

// ---------------------------------------------------------------------------------------------
// One environment

/// Start options.
#[derive(Clone, Debug)]
pub struct Options {
    /// Install the permit-sync CRDs and wait for `Established`.
    pub install_crds: bool,
    /// Extra kube-apiserver flags (`--flag=value`), e.g. feature gates or audit settings.
    pub extra_apiserver_args: Vec<String>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            install_crds: true,
            extra_apiserver_args: Vec::new(),
        }
    }
}

/// etcd and kube-apiserver on loopback, with their certificates, logs and kubeconfig in a temp dir.
pub struct KubeEnv {
    bin: PathBuf,
    dir: PathBuf,
    temp: Mutex<Option<tempfile::TempDir>>,
    etcd_port: u16,
    etcd_peer_port: u16,
    api_port: u16,
    options: Options,
    ca_der: Vec<u8>,
    client_ca: Issuer<'static, KeyPair>,
    procs: Mutex<Procs>,
    admin_kubeconfig: PathBuf,
    admin: kube::Config,
}

#[derive(Default)]
struct Procs {
    etcd: Option<Child>,
    apiserver: Option<Child>,
}

/// A user authenticated by a client certificate (CN = name, O = groups).
pub struct User {
    pub name: String,
    pub groups: Vec<String>,
    /// A kubeconfig with the certificate embedded, for kubectl and helm.
    pub kubeconfig: PathBuf,
    pub config: kube::Config,
}

impl User {
    /// A client for this user; call inside the tokio runtime that will use it.
    pub fn client(&self) -> kube::Client {
        kube::Client::try_from(self.config.clone()).expect("a client from a valid config")
    }
}

impl KubeEnv {
    /// A private environment (with the CRDs), e.g. for a test that stops and restarts it.
    ///
    /// `Ok(None)` means skip (binaries missing, not under CI).
    pub async fn start() -> Result<Option<KubeEnv>> {
        Self::start_with(Options::default()).await
    }

    pub async fn start_with(options: Options) -> Result<Option<KubeEnv>> {
        install_crypto_provider();
        let Some(bin) = bin_dir_or_skip() else {
            return Ok(None);
        };
        Self::start_in(bin, options).await.map(Some)
    }

    async fn start_in(bin: PathBuf, options: Options) -> Result<KubeEnv> {
        let started = Instant::now();
        // Free ports are picked by binding port 0 and letting go; another process may take one
        // before etcd or the apiserver binds it, so a clash is retried with fresh ports.
        let mut attempt = 0;
        let env = loop {
            attempt += 1;
            let env = Self::prepare(&bin, options.clone())?;
            match env.start_processes().await {
                Ok(()) => break env,
                Err(e) if attempt < 3 && env.log_mentions("address already in use") => {
                    eprintln!("kube testenv: port clash, retrying with new ports: {e:#}");
                }
                Err(e) => return Err(e),
            }
        };
        if env.options.install_crds {
            env.install_crds().await?;
        }
        eprintln!(
            "kube testenv: kube-apiserver v{K8S_VERSION} at {} ready in {:.1}s ({})",
            env.url(),
            started.elapsed().as_secs_f64(),
            env.dir.display()
        );
        Ok(env)
    }

    /// Certificates, ports and kubeconfig; no process yet.
    fn prepare(bin: &Path, options: Options) -> Result<KubeEnv> {
        sweep_stale_dirs();
        let temp = tempfile::Builder::new()
            .prefix(TEMP_PREFIX)
            .tempdir()
            .context("creating the test environment's temp dir")?;
        let dir = temp.path().to_path_buf();
        write(&dir.join(OWNER_FILE), &std::process::id().to_string())?;
        let pki = dir.join("pki");
        std::fs::create_dir_all(&pki)?;
        std::fs::create_dir_all(dir.join("etcd"))?;
        std::fs::create_dir_all(dir.join("users"))?;

        // Serving CA and certificate (SANs localhost and 127.0.0.1).
        let (serving_ca, serving_ca_pem) = new_ca("permit-sync-testenv-serving-ca")?;
        let serving_key = KeyPair::generate()?;
        let mut params = CertificateParams::new(vec!["localhost".into(), "127.0.0.1".into()])?;
        params
            .distinguished_name
            .push(DnType::CommonName, "kube-apiserver");
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let serving = params.signed_by(&serving_key, &serving_ca)?;
        write(&pki.join("serving-ca.crt"), &serving_ca_pem)?;
        write(&pki.join("apiserver.crt"), &serving.pem())?;
        write_secret(&pki.join("apiserver.key"), &serving_key.serialize_pem())?;

        // Client CA: the apiserver trusts certificates it signs (CN = user, O = groups).
        let (client_ca, client_ca_pem) = new_ca("permit-sync-testenv-client-ca")?;
        write(&pki.join("client-ca.crt"), &client_ca_pem)?;

        // Service-account token signing key.
        let sa = KeyPair::generate()?;
        write_secret(&pki.join("sa-signer.key"), &sa.serialize_pem())?;
        write(&pki.join("sa-signer.pub"), &sa.public_key_pem())?;

        let etcd_port = free_port()?;
        let etcd_peer_port = free_port()?;
        let api_port = free_port()?;
        let url = format!("https://127.0.0.1:{api_port}");
        let ca_der = pem_to_der(&serving_ca_pem)?;

        let mut env = KubeEnv {
            bin: bin.to_path_buf(),
            dir,
            temp: Mutex::new(Some(temp)),
            etcd_port,
            etcd_peer_port,
            api_port,
            options,
            ca_der,
            client_ca,
            procs: Mutex::new(Procs::default()),
            admin_kubeconfig: PathBuf::new(),
            admin: kube::Config::new(url.parse()?),
        };
        let admin = env.user("admin", &["system:masters"])?;
        env.admin_kubeconfig = admin.kubeconfig;
        env.admin = admin.config;
        Ok(env)
    }

    // -- what tests use -----------------------------------------------------------------------

    /// `https://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("https://127.0.0.1:{}", self.api_port)
    }

    /// The folder with etcd, kube-apiserver, kubectl and helm.
    pub fn bin_dir(&self) -> &Path {
        &self.bin
    }

    /// The temp dir (pki/, etcd/, users/, *.log, kubeconfig).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The admin kubeconfig (CN admin, O system:masters), certificates embedded.
    pub fn kubeconfig(&self) -> &Path {
        &self.admin_kubeconfig
    }

    /// The admin `kube::Config`; change it freely (timeouts, headers) before building a client.
    pub fn config(&self) -> kube::Config {
        self.admin.clone()
    }

    /// An admin client. Build one per test: a client belongs to the tokio runtime it was built in.
    pub fn client(&self) -> kube::Client {
        kube::Client::try_from(self.config()).expect("a client from a valid config")
    }

    /// A new user with a client certificate (CN = `name`, O = the group, if any) and its own
    /// kubeconfig. At most one group: rcgen writes one O per subject; for more, use
    /// [`KubeEnv::impersonating`].
    pub fn user(&self, name: &str, groups: &[&str]) -> Result<User> {
        if groups.len() > 1 {
            bail!("a certificate user takes at most one group; impersonate for {groups:?}");
        }
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params.distinguished_name.push(DnType::CommonName, name);
        if let Some(group) = groups.first() {
            params
                .distinguished_name
                .push(DnType::OrganizationName, *group);
        }
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let cert = params.signed_by(&key, &self.client_ca)?;
        let file = sanitize(name);
        let users = self.dir.join("users");
        let (cert_path, key_path) = (
            users.join(format!("{file}.crt")),
            users.join(format!("{file}.key")),
        );
        write(&cert_path, &cert.pem())?;
        write_secret(&key_path, &key.serialize_pem())?;
        let kubeconfig = if name == "admin" {
            self.dir.join("kubeconfig")
        } else {
            users.join(format!("{file}.kubeconfig"))
        };
        write_secret(
            &kubeconfig,
            &self.kubeconfig_yaml(&cert.pem(), &key.serialize_pem()),
        )?;
        let mut config = kube::Config::new(self.url().parse()?);
        config.root_cert = Some(vec![self.ca_der.clone()]);
        config.auth_info.client_certificate = Some(cert_path.to_string_lossy().into_owned());
        config.auth_info.client_key = Some(key_path.to_string_lossy().into_owned());
        // Bounded calls: a test must fail, not hang, when the apiserver stops answering.
        config.read_timeout = Some(Duration::from_secs(60));
        Ok(User {
            name: name.to_string(),
            groups: groups.iter().map(|g| g.to_string()).collect(),
            kubeconfig,
            config,
        })
    }

    /// The admin config, impersonating `user` with `groups` (Impersonate-User/-Group headers).
    pub fn impersonating(&self, user: &str, groups: &[&str]) -> kube::Config {
        let mut config = self.config();
        config.auth_info.impersonate = Some(user.to_string());
        config.auth_info.impersonate_groups = if groups.is_empty() {
            None
        } else {
            Some(groups.iter().map(|g| g.to_string()).collect())
        };
        config
    }

    /// The admin config, impersonating ServiceAccount `namespace/name`, as the apiserver would
    /// see the controller's token (user and groups as the token authenticator sets them).
    pub fn service_account(&self, namespace: &str, name: &str) -> kube::Config {
        let user = format!("system:serviceaccount:{namespace}:{name}");
        let ns_group = format!("system:serviceaccounts:{namespace}");
        let mut config = self.impersonating(
            &user,
            &["system:serviceaccounts", &ns_group, "system:authenticated"],
        );
        config.default_namespace = namespace.to_string();
        config
    }

    /// Runs kubectl with the admin kubeconfig; returns its output whatever the exit status.
    pub fn kubectl(&self, args: &[&str]) -> std::process::Output {
        self.kubectl_as(&self.admin_kubeconfig, args)
    }

    /// Runs kubectl with the given kubeconfig (e.g. a [`User`]'s).
    pub fn kubectl_as(&self, kubeconfig: &Path, args: &[&str]) -> std::process::Output {
        Command::new(self.bin.join("kubectl"))
            .arg("--kubeconfig")
            .arg(kubeconfig)
            .arg("--request-timeout=60s")
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("kubectl runs")
    }

    /// Path of helm (charts are tested with `--kubeconfig` [`KubeEnv::kubeconfig`]).
    pub fn helm(&self) -> PathBuf {
        self.bin.join("helm")
    }

    /// A client and a fresh namespace `<prefix>-<random>`: what most tests start with.
    pub async fn setup(&self, prefix: &str) -> (kube::Client, String) {
        let client = self.client();
        let ns = self.namespace(&client, prefix).await.expect("namespace");
        (client, ns)
    }

    /// Creates namespace `<prefix>-<random>` and returns its name (namespaces are never removed:
    /// without a controller-manager they stay `Terminating`).
    pub async fn namespace(&self, client: &kube::Client, prefix: &str) -> Result<String> {
        use k8s_openapi::api::core::v1::Namespace;
        let name = format!("{prefix}-{:08x}", rand::random::<u32>());
        let ns: Namespace = serde_json::from_value(serde_json::json!({
            "apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}
        }))?;
        Api::<Namespace>::all(client.clone())
            .create(&Default::default(), &ns)
            .await
            .with_context(|| format!("creating namespace {name}"))?;
        Ok(name)
    }

    /// Stops kube-apiserver, then etcd (SIGTERM, SIGKILL after 10 s). Ports and data stay.
    pub fn stop(&self) {
        let mut procs = self.procs.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(child) = procs.apiserver.take() {
            stop_group(child);
        }
        if let Some(child) = procs.etcd.take() {
            stop_group(child);
        }
    }

    /// Stops only kube-apiserver (etcd keeps running): clients see connection refused.
    pub fn stop_apiserver(&self) {
        let child = self
            .procs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .apiserver
            .take();
        if let Some(child) = child {
            stop_group(child);
        }
    }

    /// Starts what is stopped (etcd, kube-apiserver) on the same ports and data dir; waits for
    /// `/readyz`.
    pub async fn start_again(&self) -> Result<()> {
        self.start_processes().await
    }

    /// [`KubeEnv::stop`] then [`KubeEnv::start_again`].
    pub async fn restart(&self) -> Result<()> {
        self.stop();
        self.start_again().await
    }

    /// Whether etcd and the apiserver are both running.
    pub fn is_running(&self) -> bool {
        let mut guard = self.procs.lock().unwrap_or_else(|p| p.into_inner());
        let procs = &mut *guard;
        let alive =
            |c: &mut Option<Child>| c.as_mut().is_some_and(|c| matches!(c.try_wait(), Ok(None)));
        alive(&mut procs.etcd) && alive(&mut procs.apiserver)
    }

    /// The last `n` lines of the etcd and kube-apiserver logs.
    pub fn log_tails(&self, n: usize) -> String {
        let mut out = String::new();
        for name in ["etcd.log", "apiserver.log"] {
            let path = self.dir.join(name);
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            let tail = &lines[lines.len().saturating_sub(n)..];
            out.push_str(&format!(
                "----- last {} lines of {} -----\n{}\n",
                tail.len(),
                path.display(),
                tail.join("\n")
            ));
        }
        out
    }

    // -- processes ----------------------------------------------------------------------------

    /// Starts whichever of etcd and kube-apiserver is not running, then waits for `/readyz`.
    async fn start_processes(&self) -> Result<()> {
        let (etcd_up, apiserver_up) = {
            let procs = self.procs.lock().unwrap_or_else(|p| p.into_inner());
            (procs.etcd.is_some(), procs.apiserver.is_some())
        };
        if !etcd_up {
            self.start_etcd()?;
        }
        if !apiserver_up {
            self.start_apiserver()?;
        }
        let timeout = start_timeout();
        self.wait_ready(timeout).await.map_err(|e| {
            anyhow!(
                "{e:#}\n{}\n(temp dir {}; KUBE_TESTENV_START_TIMEOUT sets the {}s limit)",
                self.log_tails(40),
                self.dir.display(),
                timeout.as_secs()
            )
        })
    }

    fn start_etcd(&self) -> Result<()> {
        let etcd = self.spawn_logged(
            "etcd",
            "etcd.log",
            &[
                format!("--data-dir={}", self.dir.join("etcd").display()),
                format!("--listen-client-urls=http://127.0.0.1:{}", self.etcd_port),
                format!(
                    "--advertise-client-urls=http://127.0.0.1:{}",
                    self.etcd_port
                ),
                format!(
                    "--listen-peer-urls=http://127.0.0.1:{}",
                    self.etcd_peer_port
                ),
                format!(
                    "--initial-advertise-peer-urls=http://127.0.0.1:{}",
                    self.etcd_peer_port
                ),
                format!(
                    "--initial-cluster=default=http://127.0.0.1:{}",
                    self.etcd_peer_port
                ),
                // Test data need not survive a machine crash; fsync dominates etcd's latency.
                "--unsafe-no-fsync=true".into(),
            ],
        )?;
        self.procs.lock().unwrap_or_else(|p| p.into_inner()).etcd = Some(etcd);
        Ok(())
    }

    fn start_apiserver(&self) -> Result<()> {
        let pki = self.dir.join("pki");
        let p = |f: &str| pki.join(f).display().to_string();
        // The envtest flag set (controller-runtime's control plane defaults).
        let mut args = vec![
            format!("--etcd-servers=http://127.0.0.1:{}", self.etcd_port),
            format!("--cert-dir={}", pki.display()),
            format!("--tls-cert-file={}", p("apiserver.crt")),
            format!("--tls-private-key-file={}", p("apiserver.key")),
            format!("--client-ca-file={}", p("client-ca.crt")),
            format!("--secure-port={}", self.api_port),
            "--bind-address=127.0.0.1".into(),
            "--service-cluster-ip-range=10.0.0.0/24".into(),
            "--allow-privileged=true".into(),
            // No controller-manager creates the default ServiceAccounts.
            "--disable-admission-plugins=ServiceAccount".into(),
            "--authorization-mode=RBAC".into(),
            format!(
                "--service-account-issuer=https://127.0.0.1:{}/",
                self.api_port
            ),
            format!("--service-account-key-file={}", p("sa-signer.pub")),
            format!("--service-account-signing-key-file={}", p("sa-signer.key")),
        ];
        args.extend(self.options.extra_apiserver_args.iter().cloned());
        let apiserver = self.spawn_logged("kube-apiserver", "apiserver.log", &args)?;
        self.procs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .apiserver = Some(apiserver);
        Ok(())
    }

    fn spawn_logged(&self, binary: &str, log: &str, args: &[String]) -> Result<Child> {
        let log_path = self.dir.join(log);
        // Append: a restart keeps the earlier run's lines for the post-mortem.
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .with_context(|| format!("opening {}", log_path.display()))?;
        let mut cmd = Command::new(self.bin.join(binary));
        cmd.args(args)
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out)
            .process_group(0);
        set_parent_death_signal(&mut cmd);
        spawn_supervised(cmd)
            .with_context(|| format!("starting {}", self.bin.join(binary).display()))
    }

    /// Polls `/readyz` (which includes etcd) until it answers `ok`, a process exits, or time runs out.
    async fn wait_ready(&self, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        let client = kube::Client::try_from(self.admin.clone())?;
        loop {
            {
                let mut guard = self.procs.lock().unwrap_or_else(|p| p.into_inner());
                let procs = &mut *guard;
                for (name, child) in [
                    ("etcd", &mut procs.etcd),
                    ("kube-apiserver", &mut procs.apiserver),
                ] {
                    if let Some(c) = child.as_mut()
                        && let Ok(Some(status)) = c.try_wait()
                    {
                        bail!("{name} exited during start-up ({status})");
                    }
                }
            }
            let req = http::Request::get("/readyz").body(Vec::new())?;
            let last = match tokio::time::timeout(Duration::from_secs(5), client.request_text(req))
                .await
            {
                Ok(Ok(body)) if body.trim() == "ok" => return Ok(()),
                Ok(Ok(body)) => body,
                Ok(Err(e)) => e.to_string(),
                Err(_) => "/readyz did not answer within 5s".into(),
            };
            if Instant::now() >= deadline {
                bail!(
                    "kube-apiserver not ready within {}s; last /readyz: {last}",
                    timeout.as_secs()
                );
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// Server-side applies `permit_sync::kinds::crds()` and waits until each is `Established`.
    async fn install_crds(&self) -> Result<()> {
        let client = kube::Client::try_from(self.admin.clone())?;
        let api = Api::<CustomResourceDefinition>::all(client);
        let params = PatchParams::apply(MANAGER).force();
        for crd in permit_sync::kinds::crds() {
            let name = crd.metadata.name.clone().expect("CRDs are named");
            api.patch(&name, &params, &Patch::Apply(&crd))
                .await
                .with_context(|| format!("installing CRD {name}"))?;
        }
        for crd in permit_sync::kinds::crds() {
            let name = crd.metadata.name.clone().expect("CRDs are named");
            let established = kube::runtime::wait::await_condition(
                api.clone(),
                &name,
                kube::runtime::wait::conditions::is_crd_established(),
            );
            tokio::time::timeout(Duration::from_secs(60), established)
                .await
                .map_err(|_| anyhow!("CRD {name} not Established within 60s"))?
                .with_context(|| format!("waiting for CRD {name}"))?;
        }
        Ok(())
    }

    fn log_mentions(&self, needle: &str) -> bool {
        ["etcd.log", "apiserver.log"]
            .iter()
            .any(|f| std::fs::read_to_string(self.dir.join(f)).is_ok_and(|t| t.contains(needle)))
    }

    fn kubeconfig_yaml(&self, cert_pem: &str, key_pem: &str) -> String {
        let b64 = |s: &[u8]| base64::engine::general_purpose::STANDARD.encode(s);
        let ca_pem = der_to_pem(&self.ca_der);
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: envtest\n  cluster:\n    server: {}\n    \
             certificate-authority-data: {}\nusers:\n- name: envtest\n  user:\n    \
             client-certificate-data: {}\n    client-key-data: {}\ncontexts:\n- name: envtest\n  \
             context:\n    cluster: envtest\n    user: envtest\n    namespace: default\n\
             current-context: envtest\n",
            self.url(),
            b64(ca_pem.as_bytes()),
            b64(cert_pem.as_bytes()),
            b64(key_pem.as_bytes()),
        )
    }

    /// Stops the processes and removes the temp dir (unless `KUBE_TESTENV_KEEP` is set).
    fn teardown(&self) {
        self.stop();
        let temp = self.temp.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(temp) = temp
            && std::env::var_os("KUBE_TESTENV_KEEP").is_some()
        {
            // Without an owner the sweep of later runs leaves it alone.
            let _ = std::fs::remove_file(temp.path().join(OWNER_FILE));
            let _ = temp.keep();
        }
    }
}

impl Drop for KubeEnv {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("{}", self.log_tails(30));
        }
        self.teardown();
    }
}

// ---------------------------------------------------------------------------------------------
// Helpers

fn new_ca(cn: &str) -> Result<(Issuer<'static, KeyPair>, String)> {
    let key = KeyPair::generate()?;
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    params.distinguished_name.push(DnType::CommonName, cn);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let cert = params.self_signed(&key)?;
    Ok((Issuer::new(params, key), cert.pem()))
}

fn pem_to_der(pem: &str) -> Result<Vec<u8>> {
    let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    Ok(base64::engine::general_purpose::STANDARD.decode(body)?)
}

fn der_to_pem(der: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = String::from("-----BEGIN CERTIFICATE-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(chunk).expect("base64 is ASCII"));
        out.push('\n');
    }
    out.push_str("-----END CERTIFICATE-----\n");
    out
}

fn write(path: &Path, text: &str) -> Result<()> {
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}

fn write_secret(path: &Path, text: &str) -> Result<()> {
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("writing {}", path.display()))?;
    f.write_all(text.as_bytes())?;
    Ok(())
}

fn sanitize(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

const TEMP_PREFIX: &str = "permit-sync-kube-";
/// Holds the pid of the test process that owns a temp dir.
const OWNER_FILE: &str = "owner.pid";

/// Removes temp dirs left by test processes that were killed (no `Drop`, no `atexit`).
fn sweep_stale_dirs() {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let named = entry.file_name().to_string_lossy().starts_with(TEMP_PREFIX);
        let owner = std::fs::read_to_string(path.join(OWNER_FILE))
            .ok()
            .and_then(|s| s.trim().parse::<libc::pid_t>().ok());
        if let (true, Some(pid)) = (named, owner) {
            // SAFETY: signal 0 only checks whether the process exists.
            let gone = unsafe { libc::kill(pid, 0) } != 0
                && std::io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH);
            if gone {
                let _ = std::fs::remove_dir_all(&path);
            }
        }
    }
}

fn free_port() -> Result<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0").context("finding a free loopback port")?;
    Ok(l.local_addr()?.port())
}

/// SIGTERM to the child's process group, SIGKILL after 10 s, then reap.
fn stop_group(mut child: Child) {
    let pgid = child.id() as libc::pid_t;
    // SAFETY: kill(2) on a process group we created (process_group(0) makes pgid == pid).
    unsafe { libc::kill(-pgid, libc::SIGTERM) };
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if matches!(child.try_wait(), Ok(Some(_))) {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    // SAFETY: as above.
    unsafe { libc::kill(-pgid, libc::SIGKILL) };
    let _ = child.wait();
}

/// The child gets SIGKILL when the thread that forked it dies (Linux ties it to the thread), so a
/// test binary that is killed leaves no control plane behind. See [`spawn_supervised`].
fn set_parent_death_signal(cmd: &mut Command) {
    #[cfg(target_os = "linux")]
    {
        let parent = std::process::id() as libc::pid_t;
        // SAFETY: only async-signal-safe calls (prctl, getppid) between fork and exec.
        unsafe {
            cmd.pre_exec(move || {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                // The parent died between fork and prctl: the signal would never come.
                if libc::getppid() != parent {
                    return Err(std::io::Error::other("parent exited during spawn"));
                }
                Ok(())
            });
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = cmd;
}

type SpawnRequest = (Command, mpsc::Sender<std::io::Result<Child>>);

/// Spawns from one thread that lives as long as the process: the parent-death signal follows
/// the forking *thread*, and test threads (or the shared environment's start-up thread) end early.
fn spawn_supervised(cmd: Command) -> std::io::Result<Child> {
    static SPAWNER: OnceLock<Mutex<mpsc::Sender<SpawnRequest>>> = OnceLock::new();
    let tx = SPAWNER.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<SpawnRequest>();
        std::thread::Builder::new()
            .name("kube-testenv-spawner".into())
            .spawn(move || {
                for (mut cmd, reply) in rx {
                    let _ = reply.send(cmd.spawn());
                }
            })
            .expect("spawning the kube-testenv spawner thread");
        Mutex::new(tx)
    });
    let (reply_tx, reply_rx) = mpsc::channel();
    tx.lock()
        .unwrap_or_else(|p| p.into_inner())
        .send((cmd, reply_tx))
        .map_err(|_| std::io::Error::other("the spawner thread is gone"))?;
    reply_rx
        .recv()
        .map_err(|_| std::io::Error::other("the spawner thread is gone"))?
}
