//! The executor: runs a plan against Permit with bulk calls wherever Permit has them, single calls
//! elsewhere, bounded concurrency, and a per-object status for every operation.
//!
//! Stages follow the plan's order (creates and updates by kind, then deletions in reverse), because
//! later kinds refer to earlier ones. A create that meets 409 becomes an update, a delete that meets
//! 404 is done. A bulk create whose outcome is unknown (5xx, dropped connection) or that conflicts
//! (409: part of it exists) is never replayed as is: the kind is re-read and what is still missing
//! is planned again.

mod body;
pub mod summary;

use crate::backoff::Backoff;
use crate::kinds::Kind;
use crate::model::{Obj, Role, Tenant, User};
use crate::permit::{Call, Metrics, PermitClient, PermitError, live};
use crate::plan::{Action, Op, Plan, ResourceField, RoleField, TenantField, diff, field};
use futures::StreamExt;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use permit_api::{Endpoint, endpoint as ep};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Permit's per-call item limits (permit-api.md: bulk operations).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BatchSizes {
    pub roles: usize,
    pub users: usize,
    pub tenants: usize,
    pub assignments: usize,
}

impl Default for BatchSizes {
    fn default() -> BatchSizes {
        BatchSizes {
            roles: 2000,
            users: 3000,
            tenants: 2000,
            assignments: 2000,
        }
    }
}

#[derive(Clone, Debug)]
pub struct ExecOptions {
    /// Calls in flight at once (the rate limiter paces them further).
    pub concurrency: usize,
    /// Draw a progress bar on stderr.
    pub progress: bool,
    pub batch: BatchSizes,
}

impl Default for ExecOptions {
    fn default() -> ExecOptions {
        ExecOptions {
            concurrency: 8,
            progress: false,
            batch: BatchSizes::default(),
        }
    }
}

/// The outcome for one object: what the source reports as its status.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ObjectStatus {
    pub kind: Kind,
    pub key: String,
    pub action: Action,
    pub synced: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The HTTP status Permit answered a failed call with (none for transport failures), so a
    /// source can tell a rejected object (4xx: retry only once it changes) from a passing fault.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http_status: Option<u16>,
}

impl ObjectStatus {
    /// Permit refused the object itself (a 4xx other than 408/429): sending it again as it is
    /// cannot succeed.
    pub fn rejected(&self) -> bool {
        matches!(self.http_status, Some(s) if (400..500).contains(&s) && s != 408 && s != 429)
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub objects: Vec<ObjectStatus>,
    /// API use of this execution.
    pub metrics: Metrics,
    #[serde(skip)]
    pub elapsed: Duration,
}

impl Report {
    pub fn failed(&self) -> impl Iterator<Item = &ObjectStatus> {
        self.objects.iter().filter(|o| !o.synced)
    }

    pub fn succeeded(&self, kind: Kind, key: &str) -> bool {
        self.objects
            .iter()
            .any(|o| o.kind == kind && o.key == key && o.synced)
    }
}

type Outcome = Result<(), PermitError>;

/// What became of one op: done, or the error with the HTTP status Permit answered (if any).
type Recorded = Result<(), Box<(String, Option<u16>)>>;

struct Exec<'a> {
    client: &'a PermitClient,
    opts: &'a ExecOptions,
    /// The plan's ops: every op the stages get is one of these, and its outcome is recorded at its
    /// position (a map keyed by kind and key cost more than the plan itself at 400,000 objects).
    ops: &'a [Op],
    outcomes: Mutex<Vec<Option<Recorded>>>,
    progress: ProgressBar,
}

/// Runs the plan. Never fails as a whole: failures are reported per object.
pub async fn execute(client: &PermitClient, plan: &Plan, opts: &ExecOptions) -> Report {
    run(client, plan, opts).await.report(plan)
}

/// What running a plan did, op by op (by position in the plan), before it is a [`Report`].
pub struct Executed {
    /// Each op's outcome, cascades resolved: a failure boxed, so that at 400,000 ops, most of
    /// them done, this is 16 bytes an op.
    outcomes: Vec<Recorded>,
    metrics: Metrics,
    elapsed: Duration,
}

impl Executed {
    /// Whether the op at `at` in the plan is done.
    pub fn synced(&self, at: usize) -> bool {
        self.outcomes.get(at).is_some_and(Result::is_ok)
    }

    /// The report, each op's key copied.
    fn report(self, plan: &Plan) -> Report {
        let objects = plan
            .ops
            .iter()
            .zip(self.outcomes)
            .map(|(op, outcome)| status(op.kind, op.key.clone(), op.action, outcome))
            .collect();
        Report {
            objects,
            metrics: self.metrics,
            elapsed: self.elapsed,
        }
    }

    /// The report, taking the plan: its keys move into the report instead of being copied, and
    /// the statuses are written over the ops as they are read (the standard library collects a
    /// vector's mapped items into its own buffer), so that at 400,000 objects the report is not
    /// a second large list beside the plan's.
    pub fn into_report(self, plan: Plan) -> Report {
        let mut objects: Vec<ObjectStatus> = plan
            .ops
            .into_iter()
            .zip(self.outcomes)
            .map(|(op, outcome)| status(op.kind, op.key, op.action, outcome))
            .collect();
        objects.shrink_to_fit();
        Report {
            objects,
            metrics: self.metrics,
            elapsed: self.elapsed,
        }
    }
}

fn status(kind: Kind, key: String, action: Action, outcome: Recorded) -> ObjectStatus {
    let (message, http_status) = match outcome {
        Ok(()) => (None, None),
        Err(failed) => {
            let (message, status) = *failed;
            (Some(message), status)
        }
    };
    ObjectStatus {
        kind,
        key,
        action,
        synced: message.is_none(),
        http_status,
        message,
    }
}

/// Runs the plan; [`Executed::into_report`] or [`execute`] make the report.
pub async fn run(client: &PermitClient, plan: &Plan, opts: &ExecOptions) -> Executed {
    let start = Instant::now();
    let before = client.metrics();
    let work: Vec<&Op> = plan.ops.iter().filter(|o| o.calls_api()).collect();
    let progress = if opts.progress && !work.is_empty() {
        let pb =
            ProgressBar::with_draw_target(Some(work.len() as u64), ProgressDrawTarget::stderr());
        if let Ok(style) =
            ProgressStyle::with_template("{spinner} {bar:30} {pos}/{len} {msg} [{elapsed}]")
        {
            pb.set_style(style);
        }
        pb
    } else {
        ProgressBar::hidden()
    };
    let ex = Exec {
        client,
        opts,
        ops: &plan.ops,
        outcomes: Mutex::new(vec![None; plan.ops.len()]),
        progress,
    };
    let of = |kind: Kind, actions: &[Action]| -> Vec<&Op> {
        work.iter()
            .copied()
            .filter(|o| o.kind == kind && actions.contains(&o.action))
            .collect()
    };
    // The memory log follows a large plan stage by stage; a watcher's or controller's small
    // syncs stay out of it.
    let logged = |stage: &str| {
        if plan.ops.len() >= 10_000 {
            crate::memory::log_phase(stage);
        }
    };
    let upsert = [Action::Create, Action::Update];
    let delete = [Action::Delete];

    ex.progress.set_message("resources");
    ex.resources(of(Kind::PermitResource, &upsert)).await;
    ex.progress.set_message("roles");
    ex.roles(of(Kind::PermitRole, &upsert)).await;
    ex.progress.set_message("tenants");
    ex.tenants(of(Kind::PermitTenant, &upsert)).await;
    logged("writing tenants");
    ex.progress.set_message("users");
    ex.users(of(Kind::PermitUser, &upsert)).await;
    logged("writing users");
    ex.progress.set_message("role assignments");
    ex.assign(of(Kind::RoleAssignment, &upsert)).await;
    logged("writing role assignments");
    ex.progress.set_message("deletions");
    ex.unassign(of(Kind::RoleAssignment, &delete)).await;
    ex.bulk_delete(
        of(Kind::PermitUser, &delete),
        (&ep::USERS_BULK_DELETE, &ep::USER_DELETE),
        "users",
        ex.opts.batch.users,
    )
    .await;
    ex.bulk_delete(
        of(Kind::PermitTenant, &delete),
        (&ep::TENANTS_BULK_DELETE, &ep::TENANT_DELETE),
        "tenants",
        ex.opts.batch.tenants,
    )
    .await;
    ex.singles(of(Kind::PermitRole, &delete), |op| {
        ex.delete(&ep::ROLE_DELETE, op)
    })
    .await;
    ex.singles(of(Kind::PermitResource, &delete), |op| {
        ex.delete(&ep::RESOURCE_DELETE, op)
    })
    .await;
    ex.progress.finish_and_clear();
    logged("executing the plan");

    let mut outcomes = ex.outcomes.into_inner().expect("outcomes lock");
    // The deletions a cascaded op rides on, by the subject its `cascaded_by` names.
    let causes: std::collections::HashMap<String, usize> =
        if plan.ops.iter().any(|o| o.cascaded_by.is_some()) {
            let deletions = plan
                .ops
                .iter()
                .enumerate()
                .filter(|(_, op)| op.action == Action::Delete && op.cascaded_by.is_none());
            deletions.map(|(i, op)| (op.subject(), i)).collect()
        } else {
            Default::default()
        };
    // Resolved in place: a cascaded op reads only its cause's outcome, which is never cascaded.
    for (at, op) in plan.ops.iter().enumerate() {
        let outcome = if !op.action.writes() {
            Some(Ok(()))
        } else if let Some(by) = &op.cascaded_by {
            // Done when the deletion it rides on is done.
            match causes.get(by).and_then(|&i| outcomes[i].as_ref()) {
                Some(Ok(())) => Some(Ok(())),
                _ => Some(Err(Box::new((format!("{by} was not deleted"), None)))),
            }
        } else if outcomes[at].is_none() {
            Some(Err(Box::new(("not executed".into(), None))))
        } else {
            continue;
        };
        outcomes[at] = outcome;
    }
    Executed {
        outcomes: outcomes
            .into_iter()
            .map(|o| o.expect("every outcome resolved"))
            .collect(),
        metrics: client.metrics().since(&before),
        elapsed: start.elapsed(),
    }
}

fn desired(op: &Op) -> &Obj {
    op.desired
        .as_deref()
        .expect("create and update ops carry the desired object")
}

impl Exec<'_> {
    fn record(&self, op: &Op, outcome: Outcome) {
        let recorded = outcome.map_err(|e| {
            tracing::warn!(error = %e, "{} {} failed", op.kind, op.key);
            Box::new((e.to_string(), e.status()))
        });
        let at = self.position(op);
        self.outcomes.lock().expect("outcomes lock")[at] = Some(recorded);
        self.progress.inc(1);
    }

    /// Where `op` is in the plan; the stages only ever get references into it.
    fn position(&self, op: &Op) -> usize {
        crate::plan::position(self.ops, op).expect("an op outside the plan was executed")
    }

    /// Runs futures `concurrency` at a time. The futures are built before the stream (not by a
    /// closure inside it), which keeps the executor's future `Send` for spawned tasks.
    async fn bounded<F: Future<Output = ()>>(&self, futures: Vec<F>) {
        futures::stream::iter(futures)
            .buffer_unordered(self.opts.concurrency.max(1))
            .collect::<Vec<()>>()
            .await;
    }

    /// Runs one call per op, `concurrency` at a time.
    async fn singles<'o, F, Fut>(&self, ops: Vec<&'o Op>, f: F)
    where
        F: Fn(&'o Op) -> Fut,
        Fut: Future<Output = Outcome>,
    {
        let f = &f;
        let futures: Vec<_> = ops
            .into_iter()
            .map(|op| async move {
                let r = f(op).await;
                self.record(op, r);
            })
            .collect();
        self.bounded(futures).await;
    }

    /// Records `err` for every op (a re-read failed) and leaves none to retry.
    fn fail_all<'o>(&self, ops: Vec<&'o Op>, err: &PermitError) -> Vec<&'o Op> {
        for op in ops {
            self.record(op, Err(err.clone().about(&op.subject())));
        }
        Vec::new()
    }

    /// One bulk create for `chunk`. A bulk create is not idempotent, so when it fails it is never
    /// replayed: `settle` re-reads Permit, records what landed and returns what is missing; on a
    /// conflict or an unknown outcome the missing ones get one more bulk call, then single calls.
    async fn bulk_create<'o, B, S, SFut, F, Fut>(
        &self,
        mut chunk: Vec<&'o Op>,
        bulk: B,
        settle: S,
        single: F,
    ) where
        B: Fn(&[&'o Op]) -> Call,
        S: Fn(Vec<&'o Op>) -> SFut,
        SFut: Future<Output = Vec<&'o Op>>,
        F: Fn(&'o Op) -> Fut,
        Fut: Future<Output = Outcome>,
    {
        let mut may_rebulk = true;
        loop {
            if chunk.len() == 1 {
                let r = single(chunk[0]).await;
                self.record(chunk[0], r);
                return;
            }
            let call = bulk(&chunk);
            let what = call.object.clone();
            let err = match self.client.call(call).await {
                Ok(_) => {
                    for op in chunk {
                        self.record(op, Ok(()));
                    }
                    return;
                }
                Err(e) => e,
            };
            tracing::info!(error = %err, "{what} did not complete; re-reading Permit");
            let missing = settle(chunk).await;
            let rebulk = may_rebulk && (err.is_conflict() || err.is_ambiguous());
            if rebulk && missing.len() > 1 {
                chunk = missing;
                may_rebulk = false;
                continue;
            }
            self.singles(missing, &single).await;
            return;
        }
    }

    /// Sends a single create: `Ok(true)` when created, `Ok(false)` when the key exists (409). An
    /// unknown outcome (5xx, dropped connection) is resolved by sending it again: had the first
    /// landed, the next one meets 409, so a key is never created twice.
    async fn create(&self, call: Call) -> Result<bool, PermitError> {
        let mut attempt = 0u32;
        loop {
            match self.client.call(call.clone()).await {
                Ok(_) => return Ok(true),
                Err(e) if e.is_conflict() => return Ok(false),
                Err(e) if e.is_ambiguous() && attempt < 3 => {
                    attempt += 1;
                    tracing::info!(error = %e, "create outcome unknown; sending it again");
                    let backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(1));
                    tokio::time::sleep(backoff.delay(attempt)).await;
                }
                Err(e) => return Err(e),
            }
        }
    }

    async fn delete(&self, endpoint: &'static Endpoint, op: &Op) -> Outcome {
        match self
            .client
            .call(self.client.to(endpoint, &[&op.key], op.subject()))
            .await
        {
            Err(e) if e.is_not_found() => Ok(()),
            r => r.map(drop),
        }
    }

    // ---- resources ----

    async fn resources(&self, ops: Vec<&Op>) {
        self.singles(ops, |op| async move {
            let Obj::Resource(r) = desired(op) else {
                unreachable!("resource op")
            };
            let patch = |fields: &[ResourceField]| {
                self.client
                    .to(&ep::RESOURCE_PATCH, &[&r.key], op.subject())
                    .body(body::resource_patch(r, fields))
            };
            match op.action {
                Action::Create => {
                    let call = self
                        .client
                        .to(&ep::RESOURCE_CREATE, &[], op.subject())
                        .body(body::resource_create(r));
                    if self.create(call).await? {
                        return Ok(());
                    }
                    self.client.call(patch(ResourceField::ALL)).await.map(drop)
                }
                _ => self.client.call(patch(&op.fields())).await.map(drop),
            }
        })
        .await;
    }

    // ---- roles ----

    async fn roles(&self, ops: Vec<&Op>) {
        // A role that extends another role of this plan waits for it: create in waves by depth.
        let in_plan: BTreeMap<&str, &Op> = ops.iter().map(|o| (o.key.as_str(), *o)).collect();
        let mut depth: BTreeMap<&str, usize> = BTreeMap::new();
        fn depth_of<'k>(
            key: &'k str,
            in_plan: &BTreeMap<&'k str, &'k Op>,
            memo: &mut BTreeMap<&'k str, usize>,
            seen: &mut BTreeSet<&'k str>,
        ) -> usize {
            if let Some(d) = memo.get(key) {
                return *d;
            }
            if !seen.insert(key) {
                return 0; // a cycle: Permit will refuse it, and say so
            }
            let mut d = 0;
            if let Some(Obj::Role(r)) = in_plan.get(key).and_then(|o| o.desired.as_deref()) {
                for parent in &r.extends {
                    if let Some((p, _)) = in_plan.get_key_value(parent.as_str()) {
                        d = d.max(1 + depth_of(p, in_plan, memo, seen));
                    }
                }
            }
            memo.insert(key, d);
            d
        }
        for key in in_plan.keys() {
            depth_of(key, &in_plan, &mut depth, &mut BTreeSet::new());
        }
        let max = depth.values().copied().max().unwrap_or(0);
        for wave in 0..=max {
            let batch: Vec<&Op> = ops
                .iter()
                .copied()
                .filter(|o| depth.get(o.key.as_str()).copied().unwrap_or(0) == wave)
                .collect();
            let (creates, updates): (Vec<&Op>, Vec<&Op>) =
                batch.into_iter().partition(|o| o.action == Action::Create);
            let creates = self.role_bulk_create(creates).await;
            self.singles(creates, |op| self.role(op)).await;
            self.singles(updates, |op| self.role(op)).await;
        }
    }

    /// New roles through the bulk upsert (`PUT bulk/roles`): one call instead of one schema write
    /// each, and schema writes are Permit's tightest limit (40/min). An upsert may be repeated, so
    /// the client retries it; if it still fails, the roles are returned for single creates, which
    /// name the role at fault.
    async fn role_bulk_create<'o>(&self, creates: Vec<&'o Op>) -> Vec<&'o Op> {
        if creates.len() < 2 {
            return creates;
        }
        let mut left = Vec::new();
        for chunk in creates.chunks(self.opts.batch.roles.max(1)) {
            let bodies: Vec<_> = chunk
                .iter()
                .map(|op| match desired(op) {
                    Obj::Role(r) => body::role_create(r),
                    _ => unreachable!("role op"),
                })
                .collect();
            let call = self
                .client
                .to(
                    &ep::ROLES_BULK_UPSERT,
                    &[],
                    format!("bulk upsert of {} roles", chunk.len()),
                )
                .body(body::Operations { operations: bodies });
            match self.client.call(call).await {
                Ok(_) => {
                    for op in chunk {
                        self.record(op, Ok(()));
                    }
                }
                Err(e) => {
                    tracing::info!(error = %e, "bulk role upsert failed; one by one");
                    left.extend_from_slice(chunk);
                }
            }
        }
        left
    }

    async fn role(&self, op: &Op) -> Outcome {
        let Obj::Role(want) = desired(op) else {
            unreachable!("role op")
        };
        match op.action {
            Action::Create => {
                let call = self
                    .client
                    .to(&ep::ROLE_CREATE, &[], op.subject())
                    .body(body::role_create(want));
                if self.create(call).await? {
                    return Ok(());
                }
                // It exists (someone else's, or our own earlier attempt): converge it.
                let v = self
                    .client
                    .call(self.client.to(&ep::ROLE_GET, &[&want.key], op.subject()))
                    .await?;
                let have = live::role(&v).ok_or_else(|| PermitError::Decode {
                    object: op.subject(),
                    method: ep::ROLE_GET.method.as_str().into(),
                    path: ep::ROLE_GET.fill(&[&want.key]),
                    message: "no role in the answer".into(),
                })?;
                let diffs = diff::role(want, &have);
                self.role_update(op, want, &have, &field::fields_of(&diffs))
                    .await
            }
            _ => {
                let Some(Obj::Role(have)) = op.live.as_deref() else {
                    unreachable!("updates carry the live object")
                };
                self.role_update(op, want, have, &op.fields()).await
            }
        }
    }

    /// PATCHes the plain fields; permissions change incrementally (add, remove), as Permit advises
    /// for large permission sets.
    async fn role_update(
        &self,
        op: &Op,
        want: &Role,
        have: &Role,
        fields: &[RoleField],
    ) -> Outcome {
        let plain: Vec<RoleField> = fields
            .iter()
            .copied()
            .filter(|f| *f != RoleField::Permissions)
            .collect();
        if !plain.is_empty() {
            let call = self
                .client
                .to(&ep::ROLE_PATCH, &[&want.key], op.subject())
                .body(body::role_patch(want, &plain));
            self.client.call(call).await?;
        }
        let add: Vec<&String> = want.permissions.difference(&have.permissions).collect();
        let remove: Vec<&String> = have.permissions.difference(&want.permissions).collect();
        if !add.is_empty() {
            // Adding permissions already present is skipped by Permit, so it may be repeated.
            let call = self
                .client
                .to(&ep::ROLE_ADD_PERMISSIONS, &[&want.key], op.subject())
                .body(body::permissions(&add))
                .idempotent(true);
            self.client.call(call).await?;
        }
        if !remove.is_empty() {
            let call = self
                .client
                .to(&ep::ROLE_REMOVE_PERMISSIONS, &[&want.key], op.subject())
                .body(body::permissions(&remove));
            self.client.call(call).await?;
        }
        Ok(())
    }

    // ---- tenants ----

    async fn tenants(&self, ops: Vec<&Op>) {
        let (creates, updates): (Vec<&Op>, Vec<&Op>) =
            ops.into_iter().partition(|o| o.action == Action::Create);
        let size = self.opts.batch.tenants.max(1);
        let chunks: Vec<Vec<&Op>> = creates.chunks(size).map(<[_]>::to_vec).collect();
        let futures: Vec<_> = chunks
            .into_iter()
            .map(|chunk| self.tenant_batch(chunk))
            .collect();
        self.bounded(futures).await;
        self.singles(updates, |op| {
            let Obj::Tenant(t) = desired(op) else {
                unreachable!("tenant op")
            };
            self.tenant_patch(op, t, op.fields())
        })
        .await;
    }

    async fn tenant_patch(&self, op: &Op, t: &Tenant, fields: Vec<TenantField>) -> Outcome {
        let call = self
            .client
            .to(&ep::TENANT_PATCH, &[&t.key], op.subject())
            .body(body::tenant_patch(t, &fields));
        self.client.call(call).await.map(drop)
    }

    async fn tenant_single(&self, op: &Op) -> Outcome {
        let Obj::Tenant(t) = desired(op) else {
            unreachable!("tenant op")
        };
        let call = self
            .client
            .to(&ep::TENANT_CREATE, &[], op.subject())
            .body(body::tenant_create(t));
        if self.create(call).await? {
            return Ok(());
        }
        self.tenant_patch(op, t, TenantField::ALL.to_vec()).await
    }

    /// Creates tenants in one bulk call; on conflict or an unknown outcome, re-reads the tenants
    /// and plans the rest once more (one more bulk call, then single calls).
    async fn tenant_batch<'o>(&self, chunk: Vec<&'o Op>) {
        let bulk = |chunk: &[&Op]| {
            let ops: Vec<_> = chunk
                .iter()
                .map(|op| match desired(op) {
                    Obj::Tenant(t) => body::tenant_create(t),
                    _ => unreachable!("tenant op"),
                })
                .collect();
            self.client
                .to(
                    &ep::TENANTS_BULK_CREATE,
                    &[],
                    format!("bulk create of {} tenants", chunk.len()),
                )
                .body(body::Operations { operations: ops })
        };
        let settle = |chunk: Vec<&'o Op>| async move {
            let live = match live::read_tenants(self.client).await {
                Ok(l) => l,
                Err(e) => return self.fail_all(chunk, &e),
            };
            let mut missing = Vec::new();
            for op in chunk {
                let Obj::Tenant(t) = desired(op) else {
                    unreachable!("tenant op")
                };
                match live.get(&t.key) {
                    Some(have) => {
                        let diffs = diff::tenant(t, have);
                        let fields: Vec<TenantField> = field::fields_of(&diffs);
                        let r = if fields.is_empty() {
                            Ok(())
                        } else {
                            self.tenant_patch(op, t, fields).await
                        };
                        self.record(op, r);
                    }
                    None => missing.push(op),
                }
            }
            missing
        };
        self.bulk_create(chunk, bulk, settle, |op| self.tenant_single(op))
            .await;
    }

    // ---- users ----

    /// Creates and updates alike go through the bulk upsert (`PUT bulk/users`): idempotent, so the
    /// client may repeat it, and one call covers up to 3,000 users.
    async fn users(&self, ops: Vec<&Op>) {
        let size = self.opts.batch.users.max(1);
        let chunks: Vec<Vec<&Op>> = ops.chunks(size).map(<[_]>::to_vec).collect();
        let futures: Vec<_> = chunks
            .into_iter()
            .map(|chunk| async move {
                if chunk.len() > 1 {
                    let bodies: Vec<_> = chunk.iter().map(|op| user_body(op)).collect();
                    let call = self
                        .client
                        .to(
                            &ep::USERS_BULK_UPSERT,
                            &[],
                            format!("bulk upsert of {} users", chunk.len()),
                        )
                        .body(body::Operations { operations: bodies });
                    match self.client.call(call).await {
                        Ok(_) => {
                            for op in &chunk {
                                self.record(op, Ok(()));
                            }
                            return;
                        }
                        // One bad user fails the batch: single calls tell which.
                        Err(e) => tracing::info!(error = %e, "bulk user upsert failed; one by one"),
                    }
                }
                self.singles(chunk, |op| async move {
                    let call = self
                        .client
                        .to(&ep::USER_UPSERT, &[&op.key], op.subject())
                        .body(user_body(op));
                    self.client.call(call).await.map(drop)
                })
                .await;
            })
            .collect();
        self.bounded(futures).await;
    }

    // ---- role assignments ----

    async fn assign(&self, ops: Vec<&Op>) {
        let size = self.opts.batch.assignments.max(1);
        let chunks: Vec<Vec<&Op>> = ops.chunks(size).map(<[_]>::to_vec).collect();
        let futures: Vec<_> = chunks
            .into_iter()
            .map(|chunk| self.assign_batch(chunk))
            .collect();
        self.bounded(futures).await;
    }

    async fn assign_single(&self, op: &Op) -> Outcome {
        let a = op.assignment_ref().expect("assignment op");
        let call = self
            .client
            .to(&ep::ROLE_ASSIGN, &[], op.subject())
            .body(body::assign(a));
        // Already assigned is as good as assigned.
        self.create(call).await.map(drop)
    }

    async fn assign_batch<'o>(&self, chunk: Vec<&'o Op>) {
        let bulk = |chunk: &[&Op]| {
            let bodies: Vec<_> = chunk
                .iter()
                .map(|op| body::assign(op.assignment_ref().expect("assignment op")))
                .collect();
            self.client
                .to(
                    &ep::ROLE_ASSIGNMENTS_BULK_ASSIGN,
                    &[],
                    format!("bulk assign of {} role assignments", chunk.len()),
                )
                .body(bodies)
        };
        let settle = |chunk: Vec<&'o Op>| async move {
            let live = match live::read_assignments(self.client).await {
                Ok(l) => l,
                Err(e) => return self.fail_all(chunk, &e),
            };
            let (present, missing): (Vec<&Op>, Vec<&Op>) =
                chunk.into_iter().partition(|op| live.contains_key(&op.key));
            for op in present {
                self.record(op, Ok(()));
            }
            missing
        };
        self.bulk_create(chunk, bulk, settle, |op| self.assign_single(op))
            .await;
    }

    async fn unassign(&self, ops: Vec<&Op>) {
        let size = self.opts.batch.assignments.max(1);
        let chunks: Vec<Vec<&Op>> = ops.chunks(size).map(<[_]>::to_vec).collect();
        let single = |op: &Op| {
            let body = op.assignment_ref().expect("assignment op");
            let call = self
                .client
                .to(&ep::ROLE_UNASSIGN, &[], op.subject())
                .body(body::assign(body));
            async move {
                match self.client.call(call).await {
                    Err(e) if e.is_not_found() => Ok(()),
                    r => r.map(drop),
                }
            }
        };
        let single = &single;
        let futures: Vec<_> = chunks
            .into_iter()
            .map(|chunk| async move {
                if chunk.len() > 1 {
                    let bodies: Vec<_> = chunk
                        .iter()
                        .filter_map(|op| op.assignment_ref())
                        .map(body::assign)
                        .collect();
                    let call = self
                        .client
                        .to(
                            &ep::ROLE_ASSIGNMENTS_BULK_UNASSIGN,
                            &[],
                            format!("bulk unassign of {} role assignments", chunk.len()),
                        )
                        .body(bodies);
                    match self.client.call(call).await {
                        Ok(_) => {
                            for op in &chunk {
                                self.record(op, Ok(()));
                            }
                            return;
                        }
                        Err(e) => tracing::info!(error = %e, "bulk unassign failed; one by one"),
                    }
                }
                self.singles(chunk, single).await;
            })
            .collect();
        self.bounded(futures).await;
    }

    // ---- deletions of users and tenants ----

    /// Bulk delete by key (`{"idents": [...]}`), single deletes for one object or when the bulk
    /// call fails (a missing object is then a 404, which counts as done).
    async fn bulk_delete(
        &self,
        ops: Vec<&Op>,
        (bulk_ep, single_ep): (&'static Endpoint, &'static Endpoint),
        what: &'static str,
        size: usize,
    ) {
        let chunks: Vec<Vec<&Op>> = ops.chunks(size.max(1)).map(<[_]>::to_vec).collect();
        let futures: Vec<_> = chunks
            .into_iter()
            .map(|chunk| async move {
                if chunk.len() > 1 {
                    let idents: Vec<&str> = chunk.iter().map(|o| o.key.as_str()).collect();
                    let call = self
                        .client
                        .to(
                            bulk_ep,
                            &[],
                            format!("bulk delete of {} {what}", chunk.len()),
                        )
                        .body(body::idents(idents));
                    match self.client.call(call).await {
                        Ok(_) => {
                            for op in &chunk {
                                self.record(op, Ok(()));
                            }
                            return;
                        }
                        Err(e) => tracing::info!(error = %e, "bulk delete failed; one by one"),
                    }
                }
                self.singles(chunk, |op| self.delete(single_ep, op)).await;
            })
            .collect();
        self.bounded(futures).await;
    }
}

fn user_body(op: &Op) -> body::UserUpsert<'_> {
    let Obj::User(want) = desired(op) else {
        unreachable!("user op")
    };
    let have: Option<&User> = match op.live.as_deref() {
        Some(Obj::User(u)) => Some(u),
        _ => None,
    };
    body::user_upsert(want, have)
}
