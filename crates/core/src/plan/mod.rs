//! The planner: desired + live + ownership → ordered operations. Pure: no IO, no clock, no randomness,
//! so the same inputs always give the same plan and every rule is testable without a server.

pub mod diff;
pub mod field;
pub mod keys;
pub mod ops;
pub mod render;
pub mod warning;

pub use field::{Field, FieldOf, ResourceField, RoleField, TenantField, UserField};
pub use keys::plan_keys;
pub use ops::{Action, FieldDiff, Op};
pub use warning::Warning;

use crate::desired::Desired;
use crate::inventory::{Entry, Inventory};
use crate::kinds::Origin;
use crate::kinds::{DEFAULT_TENANT, Kind, ObjectId};
use crate::model::{ASSIGNMENT_PARENTS, Obj, SYNCED_KINDS, State};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};

/// Which live objects prune may delete.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Only objects in the inventory (created or adopted by permit-sync) that are no longer declared.
    #[default]
    Owned,
    /// Everything in Permit that is not declared (except the `default` tenant and objects declared
    /// `deletionPolicy: Orphan`): Permit equals the manifests exactly. Implies prune.
    Mirror,
}

impl Mode {
    /// Each mode with its name and a line of help, for command lines.
    pub const VALUES: [(Mode, &'static str, &'static str); 2] = [
        (
            Mode::Owned,
            "owned",
            "Only objects in the inventory (created or adopted by permit-sync) that are no longer declared",
        ),
        (
            Mode::Mirror,
            "mirror",
            "Everything in Permit that is not declared (except the `default` tenant and objects \
             declared `deletionPolicy: Orphan`): Permit equals the manifests exactly. Implies prune",
        ),
    ];
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PlanOptions {
    pub prune: bool,
    pub mode: Mode,
    /// Allow prune when the source declares nothing (otherwise an empty checkout would wipe Permit).
    pub allow_empty: bool,
    /// Refuse plans that delete more objects than this.
    pub max_deletions: Option<usize>,
}

impl PlanOptions {
    pub fn prunes(&self) -> bool {
        self.prune || self.mode == Mode::Mirror
    }
}

/// Ownership as the planner sees it.
#[derive(Clone, Copy, Debug)]
pub struct Ownership<'a> {
    /// The trusted inventory, or `None` when there is none (first run) or it cannot be trusted.
    pub inventory: Option<&'a Inventory>,
    /// Why the inventory cannot be trusted, if it cannot.
    pub untrusted: Option<&'a str>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    #[error(
        "refusing to prune: the source declares no objects, which would delete everything permit-sync \
         owns (pass --allow-empty if that is intended)"
    )]
    EmptySource,
    #[error("refusing to delete {count} objects: more than --max-deletions {max}")]
    TooManyDeletions { count: usize, max: usize },
}

/// The plan: ordered operations plus what the inventory must record.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Plan {
    pub ops: Vec<Op>,
    /// How many objects are declared, owned and already as declared.
    pub unchanged: usize,
    /// Declared objects the inventory must record anew without an op writing them (an orphan
    /// flag or a hash changed): those with an op carry their entry ([`Op::record`]), so a cold
    /// plan does not list every key twice. [`Plan::entries`] gives both.
    #[serde(skip)]
    pub declared: Vec<(Kind, String, Entry)>,
    /// Inventory entries neither declared nor in Permit any more: dropped from the inventory.
    #[serde(skip)]
    pub stale: Vec<(Kind, String)>,
    pub warnings: Vec<Warning>,
}

impl Plan {
    /// Every declared object the inventory does not hold exactly so yet, with its entry: the
    /// ops' ones in plan order, then the others.
    pub fn entries(&self) -> impl Iterator<Item = (Kind, &str, &Entry)> {
        let ops = self.ops.iter().filter_map(|op| {
            op.record
                .as_ref()
                .map(|entry| (op.kind, op.key.as_str(), entry))
        });
        ops.chain(
            self.declared
                .iter()
                .map(|(kind, key, entry)| (*kind, key.as_str(), entry)),
        )
    }

    /// Whether applying the plan writes to Permit.
    pub fn has_changes(&self) -> bool {
        self.ops.iter().any(|o| o.action.writes())
    }

    pub fn count(&self, kind: Kind, action: Action) -> usize {
        self.ops
            .iter()
            .filter(|o| o.kind == kind && o.action == action)
            .count()
    }

    pub fn deletions(&self) -> usize {
        self.ops
            .iter()
            .filter(|o| o.action == Action::Delete)
            .count()
    }

    /// Permit as it will be once the ops that `succeeded` are done (cascades included): the live
    /// state a watcher keeps between relists instead of listing Permit again after every apply.
    pub fn project(&self, live: &State, succeeded: impl Fn(&Op) -> bool) -> State {
        let mut s = live.clone();
        for op in self.ops.iter().filter(|o| succeeded(o)) {
            match op.action {
                Action::Create => s.insert(
                    op.desired
                        .as_deref()
                        .cloned()
                        .or_else(|| op.assignment().map(Obj::Assignment))
                        .expect("ops that write carry the desired object"),
                ),
                Action::Adopt => {}
                Action::Update => {
                    let want = op
                        .desired
                        .as_deref()
                        .cloned()
                        .expect("ops that write carry the desired object");
                    let Some(current) = s.get(op.kind, &op.key) else {
                        s.insert(want);
                        continue;
                    };
                    let merged = match (want, current) {
                        (Obj::Resource(d), Obj::Resource(mut l)) => {
                            l.name = d.name;
                            if op.changed(ResourceField::Description) {
                                l.description = d.description;
                            }
                            if op.changed(ResourceField::Actions) {
                                l.actions = d.actions;
                            }
                            if op.changed(ResourceField::Attributes) {
                                l.attributes = d.attributes;
                            }
                            Obj::Resource(l)
                        }
                        (Obj::Role(d), Obj::Role(mut l)) => {
                            l.name = d.name;
                            if op.changed(RoleField::Description) {
                                l.description = d.description;
                            }
                            // Incremental: add the missing, remove the extra.
                            let add: Vec<_> =
                                d.permissions.difference(&l.permissions).cloned().collect();
                            let remove: Vec<_> =
                                l.permissions.difference(&d.permissions).cloned().collect();
                            l.permissions.extend(add);
                            for p in remove {
                                l.permissions.remove(&p);
                            }
                            l.extends = d.extends;
                            if op.changed(RoleField::Attributes) {
                                l.attributes = d.attributes;
                            }
                            Obj::Role(l)
                        }
                        (Obj::Tenant(d), Obj::Tenant(mut l)) => {
                            l.name = d.name;
                            for f in op.fields::<TenantField>() {
                                match f {
                                    TenantField::Description => {
                                        l.description = d.description.clone()
                                    }
                                    TenantField::Attributes => l.attributes = d.attributes.clone(),
                                    TenantField::Name => {}
                                }
                            }
                            Obj::Tenant(l)
                        }
                        (Obj::User(d), Obj::User(mut l)) => {
                            // The executor upserts the live user with the declared fields laid over it.
                            l.email = d.email.or(l.email);
                            l.first_name = d.first_name.or(l.first_name);
                            l.last_name = d.last_name.or(l.last_name);
                            l.attributes = d.attributes.or(l.attributes);
                            Obj::User(l)
                        }
                        // Every kind listed, so that a new one is a compile error here. Assignments
                        // are identity only: never updated.
                        (
                            Obj::Resource(_)
                            | Obj::Role(_)
                            | Obj::Tenant(_)
                            | Obj::User(_)
                            | Obj::Assignment(_),
                            _,
                        ) => unreachable!("an update keeps its kind"),
                    };
                    s.insert(merged);
                }
                Action::Delete => {
                    s.remove(op.kind, &op.key);
                    // Permit deletes the role assignments of a user, tenant or role with it
                    // (a role's may be someone else's: the planner keeps roles declared ones use).
                    if ASSIGNMENT_PARENTS.contains(&op.kind) {
                        let deleted = (op.kind, op.key.as_str());
                        s.assignments.retain(|a| !a.parents().contains(&deleted));
                    }
                }
            }
        }
        s
    }

    /// The inventory to write before executing: what we had plus everything declared. Recording
    /// ownership first means a crash mid-apply never leaves an object we created but do not own;
    /// an entry for an object that was never created is harmless (its delete meets 404).
    pub fn inventory_before(
        &self,
        old: Option<&Inventory>,
        environment: Option<String>,
    ) -> Inventory {
        self.inventory_before_owned(old.cloned(), environment)
    }

    /// [`Plan::inventory_before`], updating `old` in place rather than a copy of it.
    pub fn inventory_before_owned(
        &self,
        old: Option<Inventory>,
        environment: Option<String>,
    ) -> Inventory {
        let mut inv = old.unwrap_or_else(|| Inventory::new(environment.clone()));
        if inv.environment.is_none() {
            inv.environment = environment;
        }
        for kind in SYNCED_KINDS {
            let mut entries = self.entries().filter(|(k, _, _)| *k == kind).peekable();
            if entries.peek().is_none() {
                continue;
            }
            let map = inv.objects.entry(kind).or_default();
            let mut new: std::collections::BTreeMap<String, Entry> = entries
                .map(|(_, key, entry)| (key.to_string(), entry.clone()))
                .collect();
            // Many entries are merged in one go: inserted one by one in key order, a map's nodes
            // stay half empty (tens of megabytes at 400,000 entries). A few are inserted, as a
            // merge rebuilds the whole map.
            if new.len() > map.len() / 8 {
                map.append(&mut new);
            } else {
                map.extend(new);
            }
        }
        inv
    }

    /// [`Plan::inventory_before`] as it is written, without building it: for a plan that
    /// removes nothing, whose inventory need not be kept once written.
    pub fn inventory_overlay<'a>(
        &'a self,
        old: Option<&'a Inventory>,
        environment: Option<String>,
    ) -> crate::inventory::Overlay<'a> {
        let mut entries: BTreeMap<Kind, Vec<(&str, &Entry)>> = BTreeMap::new();
        for (kind, key, entry) in self.entries() {
            entries.entry(kind).or_default().push((key, entry));
        }
        for list in entries.values_mut() {
            list.sort_unstable_by_key(|(key, _)| *key);
        }
        crate::inventory::Overlay {
            base: old,
            environment,
            entries,
        }
    }

    /// The inventory after executing: deletions that succeeded (and their cascades) and stale
    /// entries leave it; a failed deletion stays.
    pub fn inventory_after(&self, before: Inventory, succeeded: impl Fn(&Op) -> bool) -> Inventory {
        let mut inv = before;
        for op in self.ops.iter().filter(|o| o.action == Action::Delete) {
            if succeeded(op) {
                inv.remove(op.kind, &op.key);
            }
        }
        for (kind, key) in &self.stale {
            inv.remove(*kind, key);
        }
        inv
    }
}

/// Where `op` is in `ops`, when it is a reference into them: how the executor and the engine
/// match outcomes to ops without a map keyed by kind and key (at 400,000 objects such maps
/// weighed more than the plan).
pub fn position(ops: &[Op], op: &Op) -> Option<usize> {
    let size = std::mem::size_of::<Op>();
    let at = (op as *const Op as usize).wrapping_sub(ops.as_ptr() as usize) / size;
    ops.get(at).filter(|o| std::ptr::eq(*o, op)).map(|_| at)
}

fn ordered_kinds() -> impl DoubleEndedIterator<Item = Kind> {
    SYNCED_KINDS.into_iter()
}

/// The empty-source guard, on its own so callers can refuse before reading Permit at all.
pub fn check_source(desired: &Desired, options: &PlanOptions) -> Result<(), PlanError> {
    if options.prunes() && desired.state.is_empty() && !options.allow_empty {
        return Err(PlanError::EmptySource);
    }
    Ok(())
}

/// The guards every plan passes: the empty source, and `--max-deletions`.
fn check_guards(
    desired: &Desired,
    options: &PlanOptions,
    deletions: usize,
) -> Result<(), PlanError> {
    check_source(desired, options)?;
    match options.max_deletions {
        Some(max) if deletions > max => Err(PlanError::TooManyDeletions {
            count: deletions,
            max,
        }),
        _ => Ok(()),
    }
}

/// Computes the plan. Order: creates/updates/adoptions by kind (resources → roles → tenants → users →
/// assignments), then deletions in the reverse kind order; within a kind, by key.
pub fn plan(
    desired: &Desired,
    live: &State,
    ownership: Ownership<'_>,
    options: &PlanOptions,
) -> Result<Plan, PlanError> {
    let undeclared = plan_undeclared(desired, live, ownership, options)?;
    let notes = Notes::of(desired);
    let mut plan = Plan::default();
    for kind in ordered_kinds() {
        for key in desired.state.key_refs(kind) {
            let want = desired.state.get(kind, key).expect("key listed");
            plan_declared(
                &mut plan,
                notes,
                live,
                ownership.inventory,
                want,
                key.to_string(),
            );
        }
    }
    Ok(undeclared.finish(plan))
}

/// [`plan`], taking the model: each declared object moves into the op that writes it rather
/// than being copied, and the model's memory is freed as planning goes, for the ops to reuse.
/// A one-shot `apply` has no use for the model once planned; at 400,000 objects, holding it
/// whole beside a cold plan's ops was the run's peak.
pub fn plan_owned(
    desired: Desired,
    live: &State,
    ownership: Ownership<'_>,
    options: &PlanOptions,
) -> Result<Plan, PlanError> {
    let undeclared = plan_undeclared(&desired, live, ownership, options)?;
    let Desired {
        mut state,
        origins,
        orphans,
    } = desired;
    let notes = Notes {
        origins: &origins,
        orphans: &orphans,
    };
    let mut plan = Plan::default();
    for kind in ordered_kinds() {
        for (key, want) in state.take(kind) {
            plan_declared(&mut plan, notes, live, ownership.inventory, want, key);
        }
    }
    Ok(undeclared.finish(plan))
}

/// What the model records about its objects beside the objects themselves.
#[derive(Clone, Copy)]
struct Notes<'a> {
    origins: &'a BTreeMap<(Kind, String), Origin>,
    orphans: &'a BTreeSet<(Kind, String)>,
}

impl<'a> Notes<'a> {
    fn of(desired: &'a Desired) -> Notes<'a> {
        Notes {
            origins: &desired.origins,
            orphans: &desired.orphans,
        }
    }
}

/// The part of a plan about live objects that are not declared: deletions (last in the plan),
/// inventory entries gone stale, and the warnings. Worked out before the declared objects, so a
/// planner that consumes the model can still ask it what is declared.
struct Undeclared {
    deletions: Vec<Op>,
    stale: Vec<(Kind, String)>,
    warnings: Vec<Warning>,
}

impl Undeclared {
    /// `plan` (its declared objects planned) with the deletions after them.
    fn finish(self, mut plan: Plan) -> Plan {
        plan.ops.extend(self.deletions);
        plan.stale = self.stale;
        plan.warnings = self.warnings;
        // Grown by doubling, the two lists can be nearly half spare capacity; large buffers
        // shrink in place.
        plan.ops.shrink_to_fit();
        plan.declared.shrink_to_fit();
        plan
    }
}

fn plan_undeclared(
    desired: &Desired,
    live: &State,
    ownership: Ownership<'_>,
    options: &PlanOptions,
) -> Result<Undeclared, PlanError> {
    let inventory = ownership.inventory;
    let mut warnings = Vec::new();
    // Candidates for deletion: live, not declared, and ours (or anything in mirror mode).
    let mut owned_undeclared = 0usize;
    let mut wanted: Vec<(Kind, String)> = Vec::new();
    for kind in ordered_kinds().rev() {
        // The `default` tenant is Permit's own: never a deletion candidate.
        let undeclared = live.key_refs(kind).filter(|k| {
            let permits_own = kind == Kind::PermitTenant && *k == DEFAULT_TENANT;
            !permits_own && !desired.state.contains(kind, k)
        });
        for key in undeclared {
            let (delete, ours) = deletion_wanted(inventory, options, kind, key);
            if delete {
                wanted.push((kind, key.to_string()));
            } else if ours {
                owned_undeclared += 1;
            }
        }
    }
    let mut deletions: Vec<(Kind, String)> = Vec::new();
    if !wanted.is_empty() {
        let referenced = references(&desired.state);
        for (kind, key) in wanted {
            if referenced.contains(&(kind, key.clone())) {
                // Deleting it would take declared objects with it (Permit cascades), or break them.
                warnings.push(Warning::KeptForReferences { kind, key });
            } else {
                deletions.push((kind, key));
            }
        }
    }
    let mut stale = Vec::new();
    if let Some(inv) = inventory {
        for (kind, key, _) in inv.iter() {
            if !desired.state.contains(kind, key) && !live.contains(kind, key) {
                stale.push((kind, key.clone()));
            }
        }
    }

    check_guards(desired, options, deletions.len())?;

    // Permit deletes a user's or tenant's role assignments with it.
    let deleted: BTreeSet<(Kind, String)> = deletions.iter().cloned().collect();
    let deletions = deletions
        .into_iter()
        .map(|(kind, key)| {
            let have = live.get(kind, &key);
            let cascaded_by = cascade(&have, |kind, key| {
                deleted.contains(&(kind, key.to_string()))
            });
            delete_op(kind, key, have, cascaded_by)
        })
        .collect();
    warnings.extend(cascade_warnings(
        live,
        deleted.iter().map(|(kind, key)| (*kind, key.as_str())),
        |kind, key| deleted.contains(&(kind, key.to_string())),
    ));
    ownership_warnings(&mut warnings, ownership, options, owned_undeclared);
    Ok(Undeclared {
        deletions,
        stale,
        warnings,
    })
}

/// One declared object: the inventory entry to record, and the op that makes Permit hold it
/// (none when it already does and is ours). Shared by [`plan`] and [`keys::plan_keys`].
fn plan_declared(
    plan: &mut Plan,
    notes: Notes<'_>,
    live: &State,
    inventory: Option<&Inventory>,
    want: Obj,
    key: String,
) {
    let kind = want.kind();
    let recorded = inventory.and_then(|i| i.get(kind, &key));
    let owned = recorded.is_some();
    let orphan = !notes.orphans.is_empty() && notes.orphans.contains(&(kind, key.clone()));
    // The inventory records the spec last applied: recorded anew for what this plan writes or
    // adopts, or when the deletion policy changes. Hashing every unchanged object (a JSON dump
    // and a digest each) was half of a re-plan at 400,000 objects.
    let record = |want: &Obj| {
        let entry = Entry {
            hash: want.spec_hash(),
            orphan,
        };
        (recorded != Some(&entry)).then_some(entry)
    };
    let have = live.get(kind, &key);
    let (action, diffs) = match &have {
        None => (Action::Create, Vec::new()),
        Some(have) => {
            let diffs = diff::diff(&want, have);
            match (diffs.is_empty(), recorded) {
                (true, Some(entry)) => {
                    if entry.orphan != orphan
                        && let Some(entry) = record(&want)
                    {
                        plan.declared.push((kind, key, entry));
                    }
                    plan.unchanged += 1;
                    return;
                }
                (true, None) => (Action::Adopt, diffs),
                (false, _) => (Action::Update, diffs),
            }
        }
    };
    let record = record(&want);
    let origin = crate::desired::origin_of(notes.origins, kind, &key).cloned();
    plan.ops.push(Op {
        kind,
        adopted: action != Action::Create && !owned,
        key,
        action,
        cascaded_by: None,
        diffs,
        origin,
        desired: Op::carried(Some(want)),
        live: Op::carried(have),
        record,
    });
}

/// Whether an undeclared live object is to be deleted, and whether it is ours.
fn deletion_wanted(
    inventory: Option<&Inventory>,
    options: &PlanOptions,
    kind: Kind,
    key: &str,
) -> (bool, bool) {
    let entry = inventory.and_then(|i| i.get(kind, key));
    let ours = entry.is_some_and(|e| !e.orphan);
    // `deletionPolicy: Orphan` holds in mirror mode too: it was declared to outlive its manifest.
    let orphan = entry.is_some_and(|e| e.orphan);
    let delete = match options.mode {
        Mode::Mirror => !orphan,
        Mode::Owned => options.prune && ours,
    };
    (delete, ours)
}

fn delete_op(kind: Kind, key: String, have: Option<Obj>, cascaded_by: Option<ObjectId>) -> Op {
    Op {
        kind,
        key,
        action: Action::Delete,
        adopted: false,
        cascaded_by,
        diffs: Vec::new(),
        origin: None,
        desired: None,
        live: Op::carried(have),
        record: None,
    }
}

/// The deletion a role assignment goes with (Permit deletes a user's or tenant's assignments
/// with it), if `deleted` says its user or tenant is deleted.
fn cascade(have: &Option<Obj>, mut deleted: impl FnMut(Kind, &str) -> bool) -> Option<ObjectId> {
    let Some(Obj::Assignment(a)) = have else {
        return None;
    };
    if deleted(Kind::PermitUser, &a.user) {
        Some((Kind::PermitUser, a.user.clone()))
    } else if deleted(Kind::PermitTenant, &a.tenant) {
        Some((Kind::PermitTenant, a.tenant.clone()))
    } else {
        None
    }
}

/// The role assignments Permit deletes with the users, tenants and roles the plan deletes
/// (`causes`) although the plan does not delete them itself (`gone` says what it deletes):
/// someone else's, or declared to be left. One warning per cause, so a reviewer sees what goes.
fn cascade_warnings<'a>(
    live: &State,
    causes: impl Iterator<Item = (Kind, &'a str)>,
    mut gone: impl FnMut(Kind, &str) -> bool,
) -> Vec<Warning> {
    let causes: BTreeSet<(Kind, &str)> = causes
        .filter(|(kind, _)| ASSIGNMENT_PARENTS.contains(kind))
        .collect();
    if causes.is_empty() {
        return Vec::new();
    }
    let mut taken: BTreeMap<(Kind, &str), Vec<&str>> = BTreeMap::new();
    for (key, a) in live.assignments.iter() {
        if let Some(cause) = a.parents().into_iter().find(|c| causes.contains(c))
            && !gone(Kind::RoleAssignment, key)
        {
            taken.entry(cause).or_default().push(key);
        }
    }
    taken
        .into_iter()
        .map(|((kind, key), assignments)| Warning::CascadeDeletes {
            kind,
            key: key.to_string(),
            count: assignments.len(),
            example: assignments[0].to_string(),
        })
        .collect()
}

/// What the plan says about ownership: prune skipped for want of a trusted inventory, or owned
/// objects left behind without `--prune`.
fn ownership_warnings(
    warnings: &mut Vec<Warning>,
    ownership: Ownership<'_>,
    options: &PlanOptions,
    owned_undeclared: usize,
) {
    if options.prunes()
        && options.mode == Mode::Owned
        && let Some(why) = ownership.untrusted
    {
        warnings.push(Warning::PruneSkipped {
            why: why.to_string(),
        });
    }
    if !options.prunes() && owned_undeclared > 0 {
        warnings.push(Warning::OwnedUndeclared {
            count: owned_undeclared,
        });
    }
}

/// Objects the declared ones depend on: assignment users, tenants and roles; extended roles;
/// resources named in permissions.
fn references(state: &State) -> BTreeSet<(Kind, String)> {
    let mut refs = BTreeSet::new();
    for (_, a) in state.assignments.iter() {
        refs.insert((Kind::PermitUser, a.user.to_string()));
        refs.insert((Kind::PermitTenant, a.tenant.to_string()));
        refs.insert((Kind::PermitRole, a.role.to_string()));
    }
    for r in state.roles.values() {
        for parent in &r.extends {
            refs.insert((Kind::PermitRole, parent.clone()));
        }
        for p in &r.permissions {
            if let Some((resource, _)) = p.split_once(':') {
                refs.insert((Kind::PermitResource, resource.to_string()));
            }
        }
    }
    refs
}

#[cfg(test)]
mod tests;
