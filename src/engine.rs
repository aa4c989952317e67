//! The engine of the one-shot commands: plan against Permit, then apply with ownership recorded
//! (`plan`/`apply`; the watcher's drift check, the tests and the fuzz targets use `plan_against`).
//! The long-running modes plan and execute through `crate::reconcile`.

use crate::desired::Desired;
use crate::exec::{self, ExecOptions, Report};
use crate::inventory::{Inventory, Loaded, StateFile};
use crate::model::State;
use crate::permit::{PermitClient, live};
use crate::plan::{self, Ownership, Plan, PlanOptions, Scope};
use anyhow::Context;

/// A plan with the inputs it was computed from.
#[derive(Clone, Debug)]
pub struct Planned {
    pub plan: Plan,
    pub live: State,
    pub inventory: Loaded,
}

/// Lists Permit and plans `desired` against it.
pub async fn plan(
    client: &PermitClient,
    desired: &Desired,
    state_file: &StateFile,
    options: &PlanOptions,
) -> anyhow::Result<Planned> {
    let (live, inventory) = read(client, desired, state_file, options).await?;
    let plan = plan_against(desired, &live, &inventory, options)?;
    crate::memory::log_phase("planning");
    Ok(Planned {
        plan,
        live,
        inventory,
    })
}

/// [`plan`] for a one-shot run, which has no use for the model once planned: it is consumed,
/// each declared object moving into the op that writes it (see [`plan::Model`]).
pub async fn plan_once(
    client: &PermitClient,
    desired: Desired,
    state_file: &StateFile,
    options: &PlanOptions,
) -> anyhow::Result<Planned> {
    let (live, inventory) = read(client, &desired, state_file, options).await?;
    let plan = plan::plan(
        desired,
        &live,
        Ownership::of(&inventory),
        options,
        Scope::All,
    )?;
    crate::memory::log_phase("planning");
    Ok(Planned {
        plan,
        live,
        inventory,
    })
}

/// What a plan is made against: Permit as listed now, and the inventory.
async fn read(
    client: &PermitClient,
    desired: &Desired,
    state_file: &StateFile,
    options: &PlanOptions,
) -> anyhow::Result<(State, Loaded)> {
    plan::check_source(desired, options)?;
    let live = live::read(client)
        .await
        .context("reading the Permit environment")?;
    // Loaded after reading Permit: at scale the listing's garbage is freed by then, and the
    // inventory (an entry per object) takes its place instead of adding to the listing's peak.
    let inventory = state_file.load(Some(&client.scope().id()));
    crate::memory::log_phase("loading the inventory");
    Ok((live, inventory))
}

/// Plans against a live state already known (a watcher's cache): no API call.
pub fn plan_against(
    desired: &Desired,
    live: &State,
    inventory: &Loaded,
    options: &PlanOptions,
) -> Result<Plan, plan::PlanError> {
    plan::plan(desired, live, Ownership::of(inventory), options, Scope::All)
}

/// The outcome of an apply.
#[derive(Debug)]
pub struct Applied {
    pub report: Report,
    pub inventory: Inventory,
    /// Permit as it is now, projected from the plan and its outcome (no relist).
    pub live: State,
}

/// Executes a plan, recording ownership before (so a crash never loses track of what we create)
/// and after (deletions done, stale entries gone; a failed delete stays). Callers that may run
/// side by side hold `StateFile::lock` from before planning.
pub async fn apply(
    client: &PermitClient,
    planned: &Planned,
    state_file: &StateFile,
    options: &ExecOptions,
) -> anyhow::Result<Applied> {
    let (report, inventory) = execute_recorded(
        client,
        &planned.plan,
        planned.inventory.clone(),
        state_file,
        options,
    )
    .await?;
    let mut live = planned.live.clone();
    planned.plan.clone().project(&mut live, synced(&report));
    Ok(Applied {
        report,
        inventory,
        live,
    })
}

/// [`apply`] for a one-shot run: the report (the inventory is written). It has no use for the
/// live state once planned (nor for a projection of it), so that is dropped before executing:
/// at scale, a whole copy of the environment. Nor, when the plan removes nothing from the
/// inventory, for the inventory itself once written.
pub async fn apply_once(
    client: &PermitClient,
    planned: Planned,
    state_file: &StateFile,
    options: &ExecOptions,
) -> anyhow::Result<Report> {
    let Planned {
        plan,
        live,
        inventory,
    } = planned;
    drop(live);
    crate::memory::log_phase("dropping the live state");
    let before = if plan.deletions() > 0 || !plan.stale.is_empty() {
        Some(record_before(client, &plan, inventory, state_file)?)
    } else {
        // Nothing leaves the inventory after executing: written straight from the old one and
        // the plan, and neither a merged copy nor the old one kept while executing.
        let trusted = trusted_or_set_aside(inventory, state_file)?;
        let environment = Some(client.scope().id());
        save(
            &plan.inventory_overlay(trusted.as_ref(), environment),
            state_file,
        )?;
        None
    };
    let executed = exec::run(client, &plan, options).await;
    if let Some(before) = before {
        let synced = |op: &plan::Op| executed.synced(op.index);
        record_after(&plan, synced, before, state_file)?;
    }
    let report = executed.into_report(plan);
    crate::memory::log_phase("reporting");
    Ok(report)
}

/// Executes `plan` with ownership recorded in `state_file` before and after.
async fn execute_recorded(
    client: &PermitClient,
    plan: &Plan,
    inventory: Loaded,
    state_file: &StateFile,
    options: &ExecOptions,
) -> anyhow::Result<(Report, Inventory)> {
    let before = record_before(client, plan, inventory, state_file)?;
    let report = exec::execute(client, plan, options).await;
    let after = record_after(plan, synced(&report), before, state_file)?;
    Ok((report, after))
}

/// Writes the inventory as it must be before executing `plan`: everything it will create owned
/// already, so a crash never loses track of an object.
fn record_before(
    client: &PermitClient,
    plan: &Plan,
    inventory: Loaded,
    state_file: &StateFile,
) -> anyhow::Result<Inventory> {
    let trusted = trusted_or_set_aside(inventory, state_file)?;
    let before = plan.inventory_before_owned(trusted, Some(client.scope().id()));
    save(&before, state_file)?;
    Ok(before)
}

/// The trusted inventory, if there is one. An untrusted state file is kept for a person to look
/// at, moved aside; a fresh inventory is then started.
pub(crate) fn trusted_or_set_aside(
    inventory: Loaded,
    state_file: &StateFile,
) -> anyhow::Result<Option<Inventory>> {
    match inventory {
        Loaded::Ok(inventory) => Ok(Some(inventory)),
        Loaded::Unusable(why) if state_file.path.exists() => {
            let aside = state_file.path.with_extension(format!(
                "unusable-{}",
                chrono::Utc::now().format("%Y%m%dT%H%M%SZ")
            ));
            std::fs::rename(&state_file.path, &aside)
                .with_context(|| format!("moving aside {}", state_file.path.display()))?;
            tracing::warn!(
                "{why}; moved it to {} and started a new inventory",
                aside.display()
            );
            Ok(None)
        }
        _ => Ok(None),
    }
}

/// Writes the inventory after executing: deletions done and stale entries gone; a failed
/// delete stays.
fn record_after(
    plan: &Plan,
    synced: impl Fn(&plan::Op) -> bool,
    before: Inventory,
    state_file: &StateFile,
) -> anyhow::Result<Inventory> {
    let after = plan.inventory_after(before, synced);
    save(&after, state_file)?;
    Ok(after)
}

fn save(inventory: &impl serde::Serialize, state_file: &StateFile) -> anyhow::Result<()> {
    state_file
        .save(inventory)
        .with_context(|| format!("writing inventory {}", state_file.path.display()))
}

/// Whether the report marks an op synced. The report lists the plan's ops in order, so this is
/// a lookup by the op's index (a set of kinds and keys, per op, weighed tens of megabytes).
pub(crate) fn synced(report: &Report) -> impl Fn(&plan::Op) -> bool + '_ {
    move |op| report.objects.get(op.index).is_some_and(|o| o.synced)
}

/// The controller and the watcher run these on spawned tasks: they must stay `Send`.
#[allow(dead_code)]
fn futures_are_send(
    client: &PermitClient,
    desired: &Desired,
    state_file: &StateFile,
    planned: &Planned,
) {
    fn send<T: Send>(_: T) {}
    send(plan(client, desired, state_file, &PlanOptions::default()));
    send(apply(client, planned, state_file, &ExecOptions::default()));
}
