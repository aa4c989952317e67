//! The scale benchmark's scenarios (issue 9), shared by `benches/scale/main.rs` (full size) and
//! `tests/bench_small.rs` (1/100 size, call counts asserted).
//!
//! Every contender talks to the same embedded local Permit, started with added latency and
//! Permit's documented rate limits multiplied by `rate_scale`; the client-side limiter of every
//! contender gets the same scaled limits. Call counts come from the server's counters, so they are
//! what Permit would see. `permit-sync apply` runs as a child process (the real binary), so its peak
//! RSS is its own (`wait4` rusage, `ru_maxrss`). Wall-time figures are reported as ratios against the
//! baseline measured in the same process: the machines are shared and noisy.

#![allow(dead_code)] // each includer uses a different part

use permit_sync::commands;
use permit_sync::engine;
use permit_sync::inventory::StateFile;
use permit_sync::kinds::Kind;
use permit_sync::local::knobs::{Counters, Knobs, LoggedRequest, RateLimits};
use permit_sync::local::{LocalConfig, LocalHandle, LocalPermit};
use permit_sync::model::State;
use permit_sync::permit::window::Windows;
use permit_sync::permit::{ApiKey, Call, ClientConfig, LimitClass, Limits, PermitClient, seg};
use permit_sync::plan::{Action, Mode, Plan, PlanOptions};
use reqwest::Method;
use serde::Serialize;
use serde_json::json;
use std::collections::{BTreeMap, VecDeque};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// Permit's per-call bulk limits (permit-api.md §7) and page size.
pub const BULK_USERS: u64 = 3000;
pub const BULK_TENANTS: u64 = 2000;
pub const BULK_ASSIGNMENTS: u64 = 2000;
pub const BULK_ROLES: u64 = 2000;
pub const BULK_INSTANCES: u64 = 3000;
pub const BULK_TUPLES: u64 = 1000;
pub const PER_PAGE: u64 = 100;
/// Calls the Terraform provider keeps in flight by default (`-parallelism=10`).
pub const BASELINE_IN_FLIGHT: usize = 10;

#[derive(Clone, Debug)]
pub struct Settings {
    /// Multiplies every scenario's object counts (1.0 = the sizes).
    pub size: f64,
    pub latency_ms: u64,
    /// Multiplies Permit's rate-limit counts, on the server and in every contender's client.
    pub rate_scale: f64,
    /// Objects the baseline creates before its time is extrapolated (0: all of them).
    pub baseline_sample: usize,
    /// The `permit-sync` binary.
    pub bin: PathBuf,
    /// Manifests, inventories and reports go here.
    pub work: PathBuf,
    /// Scenarios to run: `S`, `L`, `W`, `R` (and `K`, which needs the Kubernetes harness).
    pub scenarios: Vec<String>,
}

/// One measured run of one contender.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Run {
    pub scenario: String,
    pub contender: String,
    /// Requests as the server counted them, by class (`read`, `write`, `delete`, `bulk`,
    /// `schema_write`).
    pub calls: BTreeMap<String, u64>,
    pub total_calls: u64,
    pub writes: u64,
    /// The fewest calls Permit's API allows for this change, and how it adds up.
    pub bound: u64,
    pub bound_detail: BTreeMap<String, u64>,
    pub calls_per_bound: f64,
    pub wall_s: f64,
    /// The wall time is extrapolated from a sample (the baseline at full size).
    pub extrapolated: bool,
    /// Wall time ÷ the baseline's wall time for the same objects, same limits.
    pub wall_vs_baseline: Option<f64>,
    /// Time at Permit's real limits: the wall time plus what permit-sync's limiter would hold
    /// these requests at Permit's documented limits (the run's requests replayed through it).
    pub projected_real_s: f64,
    /// The least time Permit's windows allow for the same requests: the wall time plus the waits
    /// that spending every window exactly needs (none when the calls fit in one window).
    pub floor_s: Option<f64>,
    /// `projected_real_s ÷ floor_s`.
    pub at_limits_per_floor: Option<f64>,
    pub peak_rss_mb: Option<f64>,
    /// Time of the pure planning step (desired vs live vs inventory), in-process.
    pub plan_ms: Option<f64>,
    pub exit_code: Option<i32>,
    /// Watch mode: from a file's write to the API's write.
    pub latency_p50_ms: Option<f64>,
    pub latency_p99_ms: Option<f64>,
    pub note: String,
}

/// Object counts of a scenario.
#[derive(Clone, Copy, Debug)]
pub struct Shape {
    pub tenants: usize,
    pub users: usize,
    /// Role assignments per user (each in a different tenant).
    pub roles_per_user: usize,
}

impl Shape {
    pub fn s(size: f64) -> Shape {
        Shape {
            tenants: scaled(1_000, size),
            users: scaled(10_000, size),
            roles_per_user: 3,
        }
    }

    pub fn l(size: f64) -> Shape {
        Shape {
            tenants: scaled(10_000, size),
            users: scaled(100_000, size),
            roles_per_user: 3,
        }
    }
}

fn scaled(n: usize, size: f64) -> usize {
    ((n as f64 * size).round() as usize).max(3)
}

/// What a generated change touches: every `every`-th tenant renamed and user's attribute changed,
/// and the roles of every `every`-th user (offset by half) rotated.
#[derive(Clone, Copy, Debug, Default)]
pub struct Change {
    pub every: Option<usize>,
}

const RESOURCES: [&str; 2] = ["document", "folder"];
const ACTIONS: [&str; 4] = ["read", "create", "update", "delete"];
const ROLES: [&str; 3] = ["viewer", "editor", "admin"];

/// Writes the scenario as manifest files: the policy, tenants, and users with inline roles, in
/// files of at most 10,000 documents.
pub fn generate(dir: &Path, shape: Shape, change: Change) -> anyhow::Result<()> {
    if dir.exists() {
        std::fs::remove_dir_all(dir)?;
    }
    std::fs::create_dir_all(dir)?;
    let mut policy = String::new();
    for r in RESOURCES {
        let _ = write!(
            policy,
            "apiVersion: permitsync.dev/v1alpha1\nkind: PermitResource\nmetadata:\n  name: {r}\n\
             spec:\n  name: {r}\n  actions:\n"
        );
        for a in ACTIONS {
            let _ = writeln!(policy, "    {a}: {{}}");
        }
        policy.push_str("---\n");
    }
    for (i, role) in ROLES.iter().enumerate() {
        let _ = write!(
            policy,
            "apiVersion: permitsync.dev/v1alpha1\nkind: PermitRole\nmetadata:\n  name: {role}\n\
             spec:\n  name: {role}\n  permissions:\n"
        );
        // viewer reads; editor also creates and updates; admin does everything.
        for r in RESOURCES {
            for a in &ACTIONS[..[1, 3, 4][i]] {
                let _ = writeln!(policy, "    - {r}:{a}");
            }
        }
        policy.push_str("---\n");
    }
    std::fs::write(dir.join("policy.yaml"), policy)?;

    let hit = |i: usize, offset: usize| change.every.is_some_and(|e| i % e == offset % e);
    const PER_FILE: usize = 10_000;
    let mut buf = String::new();
    for t in 0..shape.tenants {
        let name = if hit(t, 0) {
            format!("Tenant {t} (renamed)")
        } else {
            format!("Tenant {t}")
        };
        let _ = write!(
            buf,
            "apiVersion: permitsync.dev/v1alpha1\nkind: PermitTenant\nmetadata:\n  name: {}\n\
             spec:\n  name: {name}\n  attributes:\n    plan: free\n---\n",
            tenant_key(t)
        );
        if (t + 1) % PER_FILE == 0 || t + 1 == shape.tenants {
            std::fs::write(dir.join(format!("tenants-{:03}.yaml", t / PER_FILE)), &buf)?;
            buf.clear();
        }
    }
    for u in 0..shape.users {
        let dept = if hit(u, 0) { "changed" } else { "d" };
        let _ = write!(
            buf,
            "apiVersion: permitsync.dev/v1alpha1\nkind: PermitUser\nmetadata:\n  name: user-{u}\n\
             spec:\n  key: {key}\n  email: {key}\n  firstName: User\n  lastName: N{u}\n  \
             attributes:\n    dept: {dept}{m}\n  roles:\n",
            key = user_key(u),
            m = u % 10,
        );
        // User u belongs to a run of consecutive tenants, so a prefix of the users references a
        // prefix of the tenants (the baseline's sample stays self-contained).
        let first = u * shape.tenants / shape.users;
        let rotate = usize::from(hit(u, change.every.unwrap_or(1) / 2));
        for k in 0..shape.roles_per_user {
            let role = ROLES[(u + k + rotate) % ROLES.len()];
            let tenant = tenant_key((first + k) % shape.tenants);
            let _ = writeln!(buf, "    - role: {role}\n      tenant: {tenant}");
        }
        buf.push_str("---\n");
        if (u + 1) % PER_FILE == 0 || u + 1 == shape.users {
            std::fs::write(dir.join(format!("users-{:03}.yaml", u / PER_FILE)), &buf)?;
            buf.clear();
        }
    }
    Ok(())
}

/// ReBAC data on top of a generated S directory (scenario R): resource roles on both resources,
/// a relation `document#parent` (subject `folder`) with a derivation `folder#owner` →
/// `document#owner`, `instances` instances (a quarter folders), `tuples_per_document` parent
/// folders per document (as `kind: List` documents of 1,000 items), and `instance_roles` instance
/// role assignments (a `RoleAssignment` each), all in the `default` tenant.
#[derive(Clone, Copy, Debug)]
pub struct Rebac {
    pub instances: usize,
    pub tuples_per_document: usize,
    pub instance_roles: usize,
    pub users: usize,
}

impl Rebac {
    pub fn r(size: f64) -> Rebac {
        Rebac {
            instances: scaled(10_000, size).max(8),
            tuples_per_document: 4,
            instance_roles: scaled(30_000, size),
            users: Shape::s(size).users,
        }
    }

    fn folders(&self) -> usize {
        self.instances / 4
    }

    fn documents(&self) -> usize {
        self.instances - self.folders()
    }
}

pub fn generate_rebac(dir: &Path, r: Rebac) -> anyhow::Result<()> {
    let policy = "\
apiVersion: permitsync.dev/v1alpha1
kind: PermitResource
metadata: {name: folder-rebac}
spec:
  key: folder
  actions: {read: {}, create: {}, update: {}, delete: {}}
  roles:
    viewer: {permissions: [read]}
    owner: {permissions: [read, create, update, delete], extends: [viewer]}
---
apiVersion: permitsync.dev/v1alpha1
kind: PermitResource
metadata: {name: document-rebac}
spec:
  key: document
  actions: {read: {}, create: {}, update: {}, delete: {}}
  relations:
    parent: {subject: folder}
  roles:
    viewer: {permissions: [read]}
    owner:
      permissions: [read, create, update, delete]
      extends: [viewer]
      grantedTo:
        - {role: owner, onResource: folder, linkedBy: parent}
";
    // The ReBAC policy replaces S's two resources (same keys, now with roles).
    let s_policy = std::fs::read_to_string(dir.join("policy.yaml"))?;
    let kept: Vec<&str> = s_policy
        .split("---\n")
        .filter(|d| !d.contains("kind: PermitResource\n"))
        .collect();
    std::fs::write(
        dir.join("policy.yaml"),
        format!("{policy}---\n{}", kept.join("---\n")),
    )?;
    let folder = |f: usize| format!("folder-{f:06}");
    let document = |d: usize| format!("doc-{d:06}");
    let mut buf = String::new();
    for f in 0..r.folders() {
        let _ = write!(
            buf,
            "apiVersion: permitsync.dev/v1alpha1\nkind: PermitResourceInstance\nmetadata:\n  \
             name: {k}\nspec:\n  resource: folder\n  key: {k}\n---\n",
            k = folder(f)
        );
    }
    for d in 0..r.documents() {
        let _ = write!(
            buf,
            "apiVersion: permitsync.dev/v1alpha1\nkind: PermitResourceInstance\nmetadata:\n  \
             name: {k}\nspec:\n  resource: document\n  key: {k}\n  attributes:\n    \
             size: {d}\n---\n",
            k = document(d)
        );
    }
    std::fs::write(dir.join("instances.yaml"), &buf)?;
    buf.clear();
    let mut items = 0usize;
    let mut file = 0usize;
    let flush = |buf: &mut String, file: &mut usize| -> anyhow::Result<()> {
        if !buf.is_empty() {
            std::fs::write(dir.join(format!("tuples-{:03}.yaml", *file)), &*buf)?;
            buf.clear();
            *file += 1;
        }
        Ok(())
    };
    let folders = r.folders().max(1);
    for d in 0..r.documents() {
        for k in 0..r.tuples_per_document.min(folders) {
            if items % 1000 == 0 {
                if items > 0 && items % 10_000 == 0 {
                    flush(&mut buf, &mut file)?;
                }
                buf.push_str("apiVersion: v1\nkind: List\nitems:\n");
            }
            let f = (d + k * folders / r.tuples_per_document.max(1)) % folders;
            let _ = write!(
                buf,
                "- apiVersion: permitsync.dev/v1alpha1\n  kind: PermitRelationshipTuple\n  \
                 metadata: {{name: t-{d}-{k}}}\n  spec: {{subject: \"folder:{}\", relation: parent, \
                 object: \"document:{}\"}}\n",
                folder(f),
                document(d)
            );
            items += 1;
            if items % 1000 == 0 {
                buf.push_str("---\n");
            }
        }
    }
    flush(&mut buf, &mut file)?;
    for a in 0..r.instance_roles {
        let user = user_key(a % r.users);
        // Each user's grants on consecutive instances: distinct while grants ≤ instances.
        let i = (a / r.users + a * 7) % r.instances;
        let (role, instance) = if i < r.folders() {
            ("owner", format!("folder:{}", folder(i)))
        } else {
            ("viewer", format!("document:{}", document(i - r.folders())))
        };
        let _ = write!(
            buf,
            "apiVersion: permitsync.dev/v1alpha1\nkind: RoleAssignment\nmetadata:\n  \
             name: ira-{a}\nspec:\n  user: {user}\n  role: {role}\n  resourceInstance: \
             \"{instance}\"\n---\n"
        );
        if (a + 1) % 10_000 == 0 || a + 1 == r.instance_roles {
            std::fs::write(
                dir.join(format!("instance-roles-{:03}.yaml", a / 10_000)),
                &buf,
            )?;
            buf.clear();
        }
    }
    Ok(())
}

fn tenant_key(t: usize) -> String {
    format!("tenant-{t:06}")
}

fn user_key(u: usize) -> String {
    format!("user{u:07}@example.com")
}

// ---- the stage: the local Permit with latency and scaled limits ----

pub struct Stage {
    pub rt: tokio::runtime::Runtime,
    pub permit: LocalHandle,
    pub settings: Settings,
}

impl Stage {
    pub fn start(settings: &Settings) -> anyhow::Result<Stage> {
        // reqwest is built without a crypto provider; the binary installs ring, so do we.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()?;
        let mut config = LocalConfig::ephemeral();
        config.knobs = stage_knobs(settings);
        let permit = rt.block_on(LocalPermit::start(config))?;
        // Every run's requests are replayed at Permit's real limits (`replay`).
        permit.record_requests(true);
        Ok(Stage {
            rt,
            permit,
            settings: settings.clone(),
        })
    }

    /// A fresh, empty environment with fresh rate-limit windows.
    pub fn reset(&self) -> anyhow::Result<()> {
        let url = format!("{}/_local/reset?data=true", self.permit.api_url());
        self.rt.block_on(async {
            reqwest::Client::new()
                .post(url)
                .bearer_auth(self.permit.api_key())
                .send()
                .await?
                .error_for_status()
        })?;
        Ok(())
    }

    /// Client-side limits: Permit's documented ones, scaled like the server's.
    pub fn client_limits(&self) -> Limits {
        scaled_limits(self.settings.rate_scale)
    }

    pub fn rate_limit_flags(&self) -> Vec<String> {
        self.client_limits()
            .classes
            .iter()
            .flat_map(|(class, l)| {
                [
                    "--rate-limit".to_string(),
                    format!("{}={}/{}", class.as_str(), l.count, l.period.as_secs()),
                ]
            })
            .collect()
    }

    async fn client(&self, limits: Limits) -> anyhow::Result<PermitClient> {
        let mut config =
            ClientConfig::new(self.permit.api_url(), ApiKey::new(self.permit.api_key()));
        config.limits = limits;
        config.timeout = Duration::from_secs(300);
        Ok(PermitClient::connect(config).await?)
    }

    /// Plans `dir` as `apply` will, off the clock: no latency, no limits, counters reset after.
    /// Returns the plan, the live state it saw and the time of the pure planning step.
    pub fn plan(
        &self,
        dir: &Path,
        state_file: &Path,
        options: &PlanOptions,
    ) -> anyhow::Result<(Plan, State, Duration)> {
        let knobs = self.permit.knobs();
        self.permit.set_knobs(Knobs::default())?;
        let result = self.rt.block_on(async {
            let desired = commands::load_desired(dir)?;
            let client = self.client(Limits::unlimited()).await?;
            let state = StateFile::new(state_file);
            let planned = engine::plan(&client, &desired, &state, options).await?;
            let start = Instant::now();
            let plan = engine::plan_against(&desired, &planned.live, &planned.inventory, options)?;
            let took = start.elapsed();
            anyhow::Ok((plan, planned.live, took))
        });
        self.permit.set_knobs(knobs)?;
        self.permit.reset_counters();
        result
    }

    /// Runs `permit-sync apply DIR` as a child process against the stage.
    pub fn apply(&self, dir: &Path, state_file: &Path, extra: &[&str]) -> anyhow::Result<Child> {
        self.permit.reset_counters();
        let mut cmd = Command::new(&self.settings.bin);
        cmd.arg("apply")
            .arg(dir)
            .arg("--state-file")
            .arg(state_file)
            .arg("--api-url")
            .arg(self.permit.api_url())
            .args(self.rate_limit_flags())
            .args(["--timeout", "300", "--output", "json"])
            .args(extra)
            .env("PERMIT_API_KEY", self.permit.api_key())
            .env_remove("PERMIT_API_KEY_FILE")
            .env_remove("PERMIT_SYNC_STATE_FILE")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped());
        let child = run_child(cmd)?;
        Ok(Child {
            counters: self.permit.counters(),
            requests: self.permit.request_log(),
            ..child
        })
    }
}

pub fn stage_knobs(settings: &Settings) -> Knobs {
    Knobs {
        latency_ms: settings.latency_ms,
        rate_limits: RateLimits {
            enabled: true,
            scale: settings.rate_scale,
            time_scale: 1.0,
            retry_after: true,
        },
        ..Knobs::default()
    }
}

/// Permit's documented limits with the counts multiplied by `scale`, as the server scales them.
pub fn scaled_limits(scale: f64) -> Limits {
    let mut limits = Limits::default();
    for (_, l) in &mut limits.classes {
        l.count = ((f64::from(l.count) * scale).round() as u32).max(1);
    }
    limits
}

/// A finished child process.
#[derive(Debug, Default)]
pub struct Child {
    pub wall: Duration,
    pub max_rss_kb: u64,
    pub exit_code: i32,
    pub stderr: String,
    pub counters: Counters,
    /// The requests the local Permit received, with their arrival times.
    pub requests: Vec<LoggedRequest>,
}

/// The child's peak resident set so far (`VmHWM`), in KiB; `None` once it has exited.
///
/// Not `wait4`'s `ru_maxrss`: Linux carries the high-water mark of the memory a process had
/// before `exec` into it, and a child forked from the benchmark (which hosts the local Permit and
/// its data) starts with the benchmark's size.
pub fn vm_hwm_kb(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// Spawns the child and waits for it, sampling its `VmHWM` every 10 ms (the last sample before it
/// exits is its peak, give or take the last 10 ms).
pub fn run_child(mut cmd: Command) -> anyhow::Result<Child> {
    let start = Instant::now();
    let mut child = cmd.spawn()?;
    // Drain stderr on a thread so a chatty child never blocks on a full pipe.
    let mut err = child.stderr.take();
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        if let Some(e) = err.as_mut() {
            let _ = std::io::Read::read_to_string(e, &mut s);
        }
        s
    });
    let mut peak = 0;
    let status = loop {
        if let Some(kb) = vm_hwm_kb(child.id()) {
            peak = peak.max(kb);
        }
        if let Some(status) = child.try_wait()? {
            break status;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    Ok(Child {
        wall: start.elapsed(),
        max_rss_kb: peak,
        exit_code: status.code().unwrap_or(-1),
        stderr: reader.join().unwrap_or_default(),
        counters: Counters::default(),
        requests: Vec::new(),
    })
}

/// Stops a long-running child (SIGTERM) after reading its peak RSS; returns it in MiB.
pub fn stop_child(mut child: std::process::Child) -> f64 {
    let peak = vm_hwm_kb(child.id()).unwrap_or(0);
    // SAFETY: signalling our own child, still unreaped, so its pid is ours.
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
    let _ = child.wait();
    peak as f64 / 1024.0
}

// ---- bounds ----

fn pages(n: usize) -> u64 {
    (n as u64).div_ceil(PER_PAGE).max(1)
}

/// The fewest calls Permit's API allows: one scope lookup, every list page the live data needs
/// (at least one per kind), the changed objects of each kind ÷ Permit's bulk size for that kind,
/// and one call per object where Permit has no bulk endpoint (resources, tenant updates, role
/// deletions). Deletions Permit cascades by itself cost nothing.
pub fn bound(plan: &Plan, live: &State) -> (u64, BTreeMap<String, u64>) {
    let mut d = BTreeMap::new();
    d.insert("scope".to_string(), 1);
    let list = pages(live.resources.len())
        + pages(live.roles.len())
        + pages(live.tenants.len())
        + pages(live.users.len())
        + pages(live.assignments.len())
        + pages(live.instances.len())
        + pages(live.tuples.len());
    d.insert("list pages".to_string(), list);
    let n = |kind: Kind, actions: &[Action]| -> u64 {
        plan.ops
            .iter()
            .filter(|o| o.calls_api() && o.kind == kind && actions.contains(&o.action))
            .count() as u64
    };
    let up = [Action::Create, Action::Update];
    let del = [Action::Delete];
    let mut add = |name: &str, v: u64| {
        if v > 0 {
            d.insert(name.to_string(), v);
        }
    };
    add(
        "resources (single)",
        n(
            Kind::PermitResource,
            &[Action::Create, Action::Update, Action::Delete],
        ),
    );
    add(
        "resource roles, relations, derivations (single)",
        n(
            Kind::ResourceRole,
            &[Action::Create, Action::Update, Action::Delete],
        ) + n(Kind::ResourceRelation, &[Action::Create, Action::Delete])
            + 2 * n(Kind::ResourceRelation, &[Action::Update])
            + n(Kind::RoleDerivation, &[Action::Create, Action::Delete]),
    );
    add(
        "instances upsert (bulk)",
        n(Kind::PermitResourceInstance, &[Action::Create]).div_ceil(BULK_INSTANCES),
    );
    add(
        "instances update (single)",
        n(Kind::PermitResourceInstance, &[Action::Update]),
    );
    add(
        "instances delete (bulk)",
        n(Kind::PermitResourceInstance, &del).div_ceil(BULK_INSTANCES),
    );
    add(
        "tuples create (bulk)",
        n(Kind::PermitRelationshipTuple, &[Action::Create]).div_ceil(BULK_TUPLES),
    );
    add(
        "tuples delete (bulk)",
        n(Kind::PermitRelationshipTuple, &del).div_ceil(BULK_TUPLES),
    );
    add(
        "roles upsert (bulk)",
        n(Kind::PermitRole, &up).div_ceil(BULK_ROLES),
    );
    add("roles delete (single)", n(Kind::PermitRole, &del));
    add(
        "tenants create (bulk)",
        n(Kind::PermitTenant, &[Action::Create]).div_ceil(BULK_TENANTS),
    );
    add(
        "tenants update (single)",
        n(Kind::PermitTenant, &[Action::Update]),
    );
    add(
        "tenants delete (bulk)",
        n(Kind::PermitTenant, &del).div_ceil(BULK_TENANTS),
    );
    add(
        "users upsert (bulk)",
        n(Kind::PermitUser, &up).div_ceil(BULK_USERS),
    );
    add(
        "users delete (bulk)",
        n(Kind::PermitUser, &del).div_ceil(BULK_USERS),
    );
    add(
        "assign (bulk)",
        n(Kind::RoleAssignment, &up).div_ceil(BULK_ASSIGNMENTS),
    );
    add(
        "unassign (bulk)",
        n(Kind::RoleAssignment, &del).div_ceil(BULK_ASSIGNMENTS),
    );
    (d.values().sum(), d)
}

// ---- projection to Permit's real limits ----

/// Requests per Permit limit, from the server's per-endpoint counters (`"DELETE bulk/users"`).
pub fn per_limit(c: &Counters) -> BTreeMap<&'static str, u64> {
    let mut m = BTreeMap::new();
    let non_get: u64 = c
        .by_endpoint
        .iter()
        .filter(|(e, _)| !e.starts_with("GET ") && !e.starts_with("HEAD "))
        .map(|(_, n)| n)
        .sum();
    let deletes: u64 = c
        .by_endpoint
        .iter()
        .filter(|(e, _)| e.starts_with("DELETE "))
        .map(|(_, n)| n)
        .sum();
    m.insert("all", c.total);
    m.insert("write", non_get);
    m.insert("delete", deletes);
    m.insert("schema_write", c.class("schema_write"));
    m.insert("bulk", c.class("bulk"));
    m
}

/// The least wait Permit's windows need for these requests when they are sent at once: the
/// slowest class decides (for runs without a request log: the baseline's extrapolated figures).
pub fn window_floor(per_limit: &BTreeMap<&'static str, u64>) -> Duration {
    let mut worst = Duration::ZERO;
    for (class, l) in Limits::default().classes {
        let n = per_limit.get(class.as_str()).copied().unwrap_or(0);
        let windows = n.saturating_sub(1) / u64::from(l.count);
        worst = worst.max(l.period * windows as u32);
    }
    worst
}

/// What a run's requests wait at Permit's documented limits, replayed in their arrival order.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AtLimits {
    /// The wait permit-sync's limiter (`permit::window`) imposes.
    pub limiter: Duration,
    /// The wait Permit's windows require, spent exactly (no margin): the floor.
    pub floor: Duration,
}

/// Replays `requests` through the client's limiter and through exact windows. A request is sent
/// no earlier than it was in the run, and never before the one sent before it: a wait shifts every
/// later request, the same rule for both, so the ratio compares the limiters alone.
pub fn replay(requests: &[LoggedRequest]) -> AtLimits {
    let limits = Limits::default();
    let mut ours = Windows::new(&limits);
    let mut exact = ExactWindows::new(&limits);
    let (mut limiter, mut floor) = (Duration::ZERO, Duration::ZERO);
    for r in requests {
        let method = Method::from_bytes(r.method.as_bytes()).unwrap_or(Method::GET);
        let classes = LimitClass::of(&method, &r.path);
        let ready = r.at + limiter;
        limiter += ours.admit_at(&classes, ready) - ready;
        let ready = r.at + floor;
        floor += exact.admit_at(&classes, ready) - ready;
    }
    AtLimits { limiter, floor }
}

/// Permit's windows spent exactly, written apart from the client's limiter so that the floor
/// does not depend on the code it measures: a request goes when every class it belongs to has had
/// fewer than `count` requests in the last `period`.
struct ExactWindows {
    classes: Vec<(LimitClass, u32, Duration, VecDeque<Duration>)>,
}

impl ExactWindows {
    fn new(limits: &Limits) -> ExactWindows {
        let classes = limits
            .classes
            .iter()
            .map(|(c, l)| (*c, l.count, l.period, VecDeque::new()))
            .collect();
        ExactWindows { classes }
    }

    fn admit_at(&mut self, classes: &[LimitClass], mut at: Duration) -> Duration {
        loop {
            let mut later = at;
            for (class, count, period, sent) in &mut self.classes {
                if !classes.contains(class) {
                    continue;
                }
                while sent.front().is_some_and(|t| *t + *period <= at) {
                    sent.pop_front();
                }
                if sent.len() >= *count as usize {
                    later = later.max(sent[sent.len() - *count as usize] + *period);
                }
            }
            if later == at {
                break;
            }
            at = later;
        }
        for (class, _, _, sent) in &mut self.classes {
            if classes.contains(class) {
                sent.push_back(at);
            }
        }
        at
    }
}

fn calls_by_class(c: &Counters) -> BTreeMap<String, u64> {
    c.by_class
        .iter()
        .map(|(k, v)| (k.clone(), v.total))
        .collect()
}

/// Fills in the counts and times. With the run's `requests`, "at Permit's limits" and its floor
/// come from replaying them (`replay`); without (an extrapolated baseline), from the counts.
pub fn finish(
    mut run: Run,
    counters: &Counters,
    requests: Option<&[LoggedRequest]>,
    wall: Duration,
) -> Run {
    run.calls = calls_by_class(counters);
    run.total_calls = counters.total;
    run.writes = counters.writes();
    run.calls_per_bound = run.total_calls as f64 / run.bound.max(1) as f64;
    run.wall_s = wall.as_secs_f64();
    match requests {
        Some(requests) => {
            let at = replay(requests);
            run.projected_real_s = (wall + at.limiter).as_secs_f64();
            let floor = (wall + at.floor).as_secs_f64();
            run.floor_s = Some(floor);
            run.at_limits_per_floor = Some(run.projected_real_s / floor.max(1e-9));
        }
        None => {
            run.projected_real_s = (wall + window_floor(&per_limit(counters))).as_secs_f64();
        }
    }
    run
}

// ---- contenders ----

/// `permit-sync apply` on a directory: plans off the clock for the bound, then runs the binary.
pub fn apply_run(
    stage: &Stage,
    scenario: &str,
    contender: &str,
    dir: &Path,
    state_file: &Path,
    extra: &[&str],
) -> anyhow::Result<Run> {
    let options = PlanOptions {
        prune: extra.contains(&"--prune"),
        mode: Mode::Owned,
        ..PlanOptions::default()
    };
    let (plan, live, plan_time) = stage.plan(dir, state_file, &options)?;
    let (bound, bound_detail) = bound(&plan, &live);
    drop((plan, live));
    let child = stage.apply(dir, state_file, extra)?;
    let mut note = String::new();
    if child.exit_code != 0 {
        note = format!(
            "exit {}: {}",
            child.exit_code,
            child.stderr.lines().last().unwrap_or("")
        );
    }
    let run = Run {
        scenario: scenario.into(),
        contender: contender.into(),
        bound,
        bound_detail,
        peak_rss_mb: Some(child.max_rss_kb as f64 / 1024.0),
        plan_ms: Some(plan_time.as_secs_f64() * 1000.0),
        exit_code: Some(child.exit_code),
        note,
        ..Run::default()
    };
    Ok(finish(
        run,
        &child.counters,
        Some(&child.requests),
        child.wall,
    ))
}

/// One object as the baseline sends it: one call each, as an SDK loop or the Terraform provider.
struct Single {
    method: Method,
    path: String,
    body: serde_json::Value,
}

fn singles(client: &PermitClient, desired: &State) -> Vec<Vec<Single>> {
    let resources = desired
        .resources
        .values()
        .map(|r| Single {
            method: Method::POST,
            path: client.schema("resources"),
            body: json!({
                "key": r.key, "name": r.name,
                "actions": r.actions.keys().map(|a| (a.clone(), json!({"name": a}))).collect::<serde_json::Map<_, _>>(),
            }),
        })
        .collect();
    let roles = desired
        .roles
        .values()
        .map(|r| Single {
            method: Method::POST,
            path: client.schema("roles"),
            body: json!({"key": r.key, "name": r.name, "permissions": r.permissions, "extends": r.extends}),
        })
        .collect();
    let tenants = desired
        .tenants
        .values()
        .map(|t| Single {
            method: Method::POST,
            path: client.facts("tenants"),
            body: json!({"key": t.key, "name": t.name, "attributes": t.attributes}),
        })
        .collect();
    let users = desired
        .users
        .values()
        .map(|u| Single {
            method: Method::PUT,
            path: client.facts(&format!("users/{}", seg(&u.key))),
            body: json!({
                "key": u.key, "email": u.email, "first_name": u.first_name,
                "last_name": u.last_name, "attributes": u.attributes,
            }),
        })
        .collect();
    let assignments = desired
        .assignments
        .values()
        .map(|a| Single {
            method: Method::POST,
            path: client.facts("role_assignments"),
            body: json!({"user": a.user, "role": a.role, "tenant": a.tenant}),
        })
        .collect();
    vec![resources, roles, tenants, users, assignments]
}

/// A self-contained prefix of `desired` holding about `n` objects: the first users, their
/// assignments, the tenants those name, and the whole policy.
pub fn sample(desired: &State, n: usize) -> State {
    let total = desired.len();
    if n == 0 || n >= total {
        return desired.clone();
    }
    let f = n as f64 / total as f64;
    let mut s = State {
        resources: desired.resources.clone(),
        roles: desired.roles.clone(),
        ..State::default()
    };
    let users = ((desired.users.len() as f64 * f).ceil() as usize).max(1);
    for (k, u) in desired.users.iter().take(users) {
        s.users.insert(k.clone(), u.clone());
    }
    for a in desired.assignments.values() {
        if s.users.contains_key(&a.user) {
            s.assignments.insert(&a);
            if let Some(t) = desired.tenants.get(&a.tenant) {
                s.tenants.insert(t.key.clone(), t.clone());
            }
        }
    }
    let tenants = (desired.tenants.len() as f64 * f).ceil() as usize;
    for (k, t) in desired.tenants.iter().take(tenants) {
        s.tenants.insert(k.clone(), t.clone());
    }
    s
}

/// The baseline: one API call per object, `BASELINE_IN_FLIGHT` in flight, kind after kind in
/// dependency order, through the same client (reqwest, limiter with the same scaled limits).
/// Returns the wall time and the calls that failed.
pub async fn baseline_calls(
    api_url: &str,
    api_key: &str,
    limits: Limits,
    objects: &State,
) -> anyhow::Result<(Duration, u64)> {
    use futures::StreamExt;
    let mut config = ClientConfig::new(api_url, ApiKey::new(api_key));
    config.limits = limits;
    config.timeout = Duration::from_secs(300);
    let start = Instant::now();
    let client = PermitClient::connect(config).await?;
    let mut failed = 0;
    for kind in singles(&client, objects) {
        let results: Vec<bool> = futures::stream::iter(kind)
            .map(|s| {
                let client = client.clone();
                async move {
                    let call = Call::new(s.method, s.path, "baseline", "baseline").body(s.body);
                    client.call(call).await.is_ok()
                }
            })
            .buffer_unordered(BASELINE_IN_FLIGHT)
            .collect()
            .await;
        failed += results.iter().filter(|ok| !**ok).count() as u64;
    }
    Ok((start.elapsed(), failed))
}

/// Runs the baseline on a sample of `dir` (all of it when the sample covers it) and extrapolates
/// the wall time by calls; the call counts are exact (one per object plus the scope lookup).
pub fn baseline_run(
    stage: &Stage,
    scenario: &str,
    dir: &Path,
    bound: (u64, BTreeMap<String, u64>),
) -> anyhow::Result<Run> {
    let desired = commands::load_desired(dir)?.state;
    let sampled = sample(&desired, stage.settings.baseline_sample);
    stage.reset()?;
    stage.permit.reset_counters();
    let (wall, failed) = stage.rt.block_on(baseline_calls(
        &stage.permit.api_url(),
        stage.permit.api_key(),
        stage.client_limits(),
        &sampled,
    ))?;
    let counters = stage.permit.counters();
    let sample_calls = counters.total;
    let full_calls = desired.len() as u64 + 1;
    // Exact counts for the full run: one schema POST per resource and role, one write per tenant,
    // user and assignment, one scope read.
    let schema = (desired.resources.len() + desired.roles.len()) as u64;
    let writes = (desired.tenants.len() + desired.users.len() + desired.assignments.len()) as u64;
    let mut full = Counters {
        total: full_calls,
        ..Counters::default()
    };
    for (class, n) in [("read", 1), ("schema_write", schema), ("write", writes)] {
        full.by_class.entry(class.into()).or_default().total = n;
    }
    full.by_endpoint.insert("GET scope".into(), 1);
    full.by_endpoint.insert("POST schema".into(), schema);
    full.by_endpoint.insert("POST/PUT facts".into(), writes);
    let extrapolated = sample_calls < full_calls;
    let wall = wall.mul_f64(full_calls as f64 / sample_calls.max(1) as f64);
    let mut note = if extrapolated {
        format!(
            "wall time extrapolated from a sample of {sample_calls} calls ({:.1}%)",
            100.0 * sample_calls as f64 / full_calls as f64
        )
    } else {
        String::new()
    };
    if failed > 0 {
        let _ = write!(note, "; {failed} calls failed");
    }
    let run = Run {
        scenario: scenario.into(),
        contender: "baseline: 1 call/object, 10 in flight".into(),
        bound: bound.0,
        bound_detail: bound.1,
        extrapolated,
        note,
        ..Run::default()
    };
    Ok(finish(run, &full, None, wall))
}

// ---- scenarios ----

/// Scenario S: cold apply, re-apply with nothing changed, 1% changed, and the baseline.
pub fn scenario_s(stage: &Stage) -> anyhow::Result<Vec<Run>> {
    let size = stage.settings.size;
    let shape = Shape::s(size);
    let dir = stage.settings.work.join("S");
    let changed = stage.settings.work.join("S-1pct");
    let state = stage.settings.work.join("S-inventory.json");
    let _ = std::fs::remove_file(&state);
    generate(&dir, shape, Change::default())?;
    generate(&changed, shape, Change { every: Some(100) })?;
    stage.reset()?;
    let cold = apply_run(stage, "S", "permit-sync apply (cold)", &dir, &state, &[])?;
    let again = apply_run(
        stage,
        "S",
        "permit-sync apply (no change)",
        &dir,
        &state,
        &[],
    )?;
    let change = apply_run(
        stage,
        "S",
        "permit-sync apply --prune (1% changed)",
        &changed,
        &state,
        &["--prune", "--yes"],
    )?;
    let mut base = baseline_run(stage, "S", &dir, (cold.bound, cold.bound_detail.clone()))?;
    base.wall_vs_baseline = Some(1.0);
    let mut runs = vec![base.clone(), cold, again, change];
    runs[1].wall_vs_baseline = Some(runs[1].wall_s / base.wall_s);
    Ok(runs)
}

/// Scenario L: cold apply and re-apply of 10,000 tenants, 100,000 users, 300,000 assignments
/// (planning time and the apply's memory).
pub fn scenario_l(stage: &Stage) -> anyhow::Result<Vec<Run>> {
    let shape = Shape::l(stage.settings.size);
    let dir = stage.settings.work.join("L");
    let state = stage.settings.work.join("L-inventory.json");
    let _ = std::fs::remove_file(&state);
    generate(&dir, shape, Change::default())?;
    stage.reset()?;
    let cold = apply_run(stage, "L", "permit-sync apply (cold)", &dir, &state, &[])?;
    let again = apply_run(
        stage,
        "L",
        "permit-sync apply (no change)",
        &dir,
        &state,
        &[],
    )?;
    Ok(vec![cold, again])
}

/// Scenario R: S's policy and data plus ReBAC ([`Rebac::r`]: 10,000 instances, 30,000 tuples,
/// 30,000 instance role assignments): cold apply and re-apply.
pub fn scenario_r(stage: &Stage) -> anyhow::Result<Vec<Run>> {
    let size = stage.settings.size;
    let dir = stage.settings.work.join("R");
    let state = stage.settings.work.join("R-inventory.json");
    let _ = std::fs::remove_file(&state);
    generate(&dir, Shape::s(size), Change::default())?;
    generate_rebac(&dir, Rebac::r(size))?;
    stage.reset()?;
    let cold = apply_run(stage, "R", "permit-sync apply (cold)", &dir, &state, &[])?;
    let again = apply_run(
        stage,
        "R",
        "permit-sync apply (no change)",
        &dir,
        &state,
        &[],
    )?;
    Ok(vec![cold, again])
}

/// Scenarios a caller adds (K, which needs the Kubernetes harness): `None` when unknown.
pub type Extra<'a> = &'a dyn Fn(&Stage, &str) -> Option<anyhow::Result<Vec<Run>>>;

/// Scenario W: `permit-sync watch` on the S directory plus one small file, changed `changes`
/// times, one change at a time: the time from the file's write (atomic rename) to the tenant's
/// new name being in Permit. Calls are counted once the watcher is ready (its first full sync done).
pub fn scenario_w(stage: &Stage, changes: usize) -> anyhow::Result<Vec<Run>> {
    const WINDOW_MS: u64 = 500;
    let shape = Shape::s(stage.settings.size);
    let dir = stage.settings.work.join("W");
    let state = stage.settings.work.join("W-inventory.json");
    let _ = std::fs::remove_file(&state);
    generate(&dir, shape, Change::default())?;
    let tenant = |name: &str| {
        format!(
            "apiVersion: permitsync.dev/v1alpha1\nkind: PermitTenant\nmetadata:\n  name: lat\n\
             spec:\n  name: {name}\n"
        )
    };
    let write = |name: &str| -> std::io::Result<()> {
        let tmp = dir.join(".lat.yaml.tmp");
        std::fs::write(&tmp, tenant(name))?;
        std::fs::rename(&tmp, dir.join("lat.yaml"))
    };
    write("Latency start")?;
    stage.reset()?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let mut cmd = Command::new(&stage.settings.bin);
    cmd.arg("watch")
        .arg(&dir)
        .arg("--state-file")
        .arg(&state)
        .arg("--api-url")
        .arg(stage.permit.api_url())
        .args(stage.rate_limit_flags())
        .arg(format!("--batch-window={WINDOW_MS}ms"))
        .arg(format!("--metrics-addr=127.0.0.1:{port}"))
        .env("PERMIT_API_KEY", stage.permit.api_key())
        .env_remove("PERMIT_API_KEY_FILE")
        .env_remove("PERMIT_SYNC_STATE_FILE")
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(
            stage.settings.work.join("W-watch.log"),
        )?);
    let child = cmd.spawn()?;
    let name_of = |key: &str| {
        let store = stage.permit.store();
        store
            .tenants
            .rows()
            .iter()
            .find(|t| t.key == key)
            .map(|t| t.name.clone())
    };
    let measured = stage.rt.block_on(async {
        let http = reqwest::Client::new();
        let ready = format!("http://127.0.0.1:{port}/readyz");
        let deadline = Instant::now() + Duration::from_secs(600);
        while !http
            .get(&ready)
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            anyhow::ensure!(
                Instant::now() < deadline,
                "the watcher is not ready after 600 s"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        stage.permit.reset_counters();
        let started = Instant::now();
        let mut samples = Vec::with_capacity(changes);
        for i in 0..changes {
            let name = format!("Latency {i}");
            let written = Instant::now();
            write(&name)?;
            while name_of("lat").as_deref() != Some(name.as_str()) {
                anyhow::ensure!(
                    written.elapsed() < Duration::from_secs(60),
                    "change {i} never landed"
                );
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            samples.push(written.elapsed());
        }
        // Let a trailing call land before counting.
        tokio::time::sleep(Duration::from_millis(WINDOW_MS + 200)).await;
        anyhow::Ok((started.elapsed(), samples))
    });
    let peak_mb = stop_child(child);
    let (wall, mut samples) = measured?;
    samples.sort();
    let p = |q: usize| samples[(samples.len() * q).div_ceil(100).max(1) - 1].as_secs_f64() * 1000.0;
    let (p50, p99) = (p(50), p(99));
    let counters = stage.permit.counters();
    let requests = stage.permit.request_log();
    let mut d = BTreeMap::new();
    // Permit has no bulk update for tenants: one PATCH per change is the floor.
    d.insert("tenants update (single)".to_string(), changes as u64);
    let run = Run {
        scenario: "W".into(),
        contender: format!("permit-sync watch ({changes} single-file changes)"),
        bound: changes as u64,
        bound_detail: d,
        peak_rss_mb: Some(peak_mb),
        latency_p50_ms: Some(p50),
        latency_p99_ms: Some(p99),
        note: format!(
            "change-to-write p50 {p50:.0} ms, p99 {p99:.0} ms (batch window {WINDOW_MS} ms; target p99 ≤ {} ms); calls counted after the first sync",
            WINDOW_MS + 100
        ),
        ..Run::default()
    };
    Ok(vec![finish(run, &counters, Some(&requests), wall)])
}

pub fn run_all(settings: &Settings, extra: Extra<'_>) -> anyhow::Result<Vec<Run>> {
    std::fs::create_dir_all(&settings.work)?;
    let stage = Stage::start(settings)?;
    let mut runs = Vec::new();
    for s in &settings.scenarios {
        match s.as_str() {
            "S" => runs.extend(scenario_s(&stage)?),
            "L" => runs.extend(scenario_l(&stage)?),
            "R" => runs.extend(scenario_r(&stage)?),
            "W" => runs.extend(scenario_w(
                &stage,
                ((200.0 * settings.size).round() as usize).max(10),
            )?),
            other => match extra(&stage, other) {
                Some(result) => runs.extend(result?),
                None => runs.push(Run {
                    scenario: other.into(),
                    contender: "-".into(),
                    note: "not run: this scenario needs a source not on this branch".into(),
                    ..Run::default()
                }),
            },
        }
    }
    let permit = stage.permit;
    stage.rt.block_on(permit.shutdown())?;
    Ok(runs)
}

// ---- output ----

pub fn table(settings: &Settings, runs: &[Run]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "size ×{}, latency {} ms/request, Permit's rate limits ×{} (server and every client)\n",
        settings.size, settings.latency_ms, settings.rate_scale
    );
    let _ = writeln!(
        out,
        "| scen. | contender | calls: read / write / bulk / schema / delete | total | bound | calls ÷ bound | wall s | wall ÷ baseline | at Permit's limits | at Permit's limits ÷ floor | peak RSS MB | plan ms |"
    );
    let _ = writeln!(
        out,
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    );
    for r in runs {
        let c = |k: &str| r.calls.get(k).copied().unwrap_or(0);
        let opt = |v: Option<f64>, p: usize| v.map_or("–".to_string(), |v| format!("{v:.p$}"));
        let _ = writeln!(
            out,
            "| {} | {} | {} / {} / {} / {} / {} | {} | {} | {:.3} | {}{:.2} | {} | {} | {} | {} | {} |",
            r.scenario,
            r.contender,
            c("read"),
            c("write"),
            c("bulk"),
            c("schema_write"),
            c("delete"),
            r.total_calls,
            r.bound,
            r.calls_per_bound,
            if r.extrapolated { "~" } else { "" },
            r.wall_s,
            r.wall_vs_baseline.map_or("–".to_string(), |v| if v >= 1.0 {
                format!("{v:.2}")
            } else {
                format!("1/{:.0}", 1.0 / v)
            }),
            human(r.projected_real_s),
            opt(r.at_limits_per_floor, 2),
            opt(r.peak_rss_mb, 1),
            opt(r.plan_ms, 1),
        );
    }
    for r in runs.iter().filter(|r| !r.note.is_empty()) {
        let _ = writeln!(out, "- {} / {}: {}", r.scenario, r.contender, r.note);
    }
    out
}

fn human(s: f64) -> String {
    if s >= 3600.0 {
        format!("{:.2} h", s / 3600.0)
    } else if s >= 60.0 {
        format!("{:.1} min", s / 60.0)
    } else {
        format!("{s:.1} s")
    }
}
