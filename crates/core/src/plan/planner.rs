//! The planner, once: desired + live + ownership → ordered ops, over every key or only the keys a
//! change touched ([`Scope`]).
//!
//! Order: creates, updates and adoptions by kind (resources → roles → tenants → users →
//! assignments), then deletions in the reverse kind order; within a kind, by key. A scoped plan
//! gives, for every key it covers, exactly the ops the whole plan gives for that key, in the same
//! order (cascades included: whether a user's or tenant's deletion takes an assignment with it is
//! asked of that user or tenant, covered or not). Only the global checks differ: `--max-deletions`
//! counts the deletions among the covered keys, and the warnings speak of those keys only. A
//! scoped plan costs the keys it covers, plus one pass over the declared assignments and roles when
//! one of them is a deletion candidate (whether declared objects still refer to it).

use super::ownership::Ownership;
use super::{Mode, Plan, PlanError, PlanOptions, Warning, diff};
use crate::desired::Desired;
use crate::inventory::Entry;
use crate::kinds::{DEFAULT_TENANT, Kind, ObjectId, Origin};
use crate::model::{CASCADE_CAUSES, Obj, SYNCED_KINDS, State};
use crate::plan::{Action, Op};
use std::collections::{BTreeMap, BTreeSet};

/// Which keys a plan covers.
#[derive(Clone, Copy, Debug)]
pub enum Scope<'k> {
    /// Everything declared, live or owned.
    All,
    /// Only these (declared, live or owned): a watcher's plan after a change, when its cached
    /// live state and ownership can be trusted.
    Keys(&'k BTreeSet<ObjectId>),
}

/// The declared state a plan is made from: borrowed (a long-running mode keeps it), or given
/// (a one-shot `apply`, which has no use for it once planned: each declared object moves into
/// the op that writes it, and the model's memory is freed as planning goes; at 400,000 objects,
/// holding it whole beside a cold plan's ops was the run's peak).
pub enum Model<'d> {
    Borrowed(&'d Desired),
    Owned(Box<Desired>),
}

impl<'d> From<&'d Desired> for Model<'d> {
    fn from(d: &'d Desired) -> Model<'d> {
        Model::Borrowed(d)
    }
}

impl From<Desired> for Model<'_> {
    fn from(d: Desired) -> Model<'static> {
        Model::Owned(Box::new(d))
    }
}

impl Model<'_> {
    fn desired(&self) -> &Desired {
        match self {
            Model::Borrowed(d) => d,
            Model::Owned(d) => d,
        }
    }
}

/// The plan of `desired` against `live`, for the keys `scope` covers.
pub fn plan<'d>(
    desired: impl Into<Model<'d>>,
    live: &State,
    ownership: Ownership<'_>,
    options: &PlanOptions,
    scope: Scope<'_>,
) -> Result<Plan, PlanError> {
    let model = desired.into();
    let undeclared = Undeclared::plan(model.desired(), live, ownership, options, scope)?;
    let mut plan = Plan::default();
    let each = |plan: &mut Plan, notes: Notes<'_>, want: Obj, key: String| {
        plan_declared(plan, notes, live, ownership, want, key)
    };
    match (model, scope) {
        (Model::Borrowed(d), Scope::All) => {
            for kind in SYNCED_KINDS {
                for key in d.state.key_refs(kind) {
                    let want = d.state.get(kind, key).expect("key listed");
                    each(&mut plan, Notes::of(d), want, key.to_string());
                }
            }
        }
        (Model::Borrowed(d), Scope::Keys(keys)) => {
            for kind in SYNCED_KINDS {
                for key in of_kind(keys, kind) {
                    if let Some(want) = d.state.get(kind, key) {
                        each(&mut plan, Notes::of(d), want, key.clone());
                    }
                }
            }
        }
        (Model::Owned(d), scope) => {
            let Desired {
                mut state,
                origins,
                orphans,
            } = *d;
            let notes = Notes {
                origins: &origins,
                orphans: &orphans,
            };
            for kind in SYNCED_KINDS {
                match scope {
                    Scope::All => {
                        for (key, want) in state.take(kind) {
                            each(&mut plan, notes, want, key);
                        }
                    }
                    Scope::Keys(keys) => {
                        for key in of_kind(keys, kind) {
                            if let Some(want) = state.remove(kind, key) {
                                each(&mut plan, notes, want, key.clone());
                            }
                        }
                    }
                }
            }
        }
    }
    Ok(undeclared.finish(plan))
}

/// The keys of one kind in a scope, in key order.
fn of_kind(keys: &BTreeSet<ObjectId>, kind: Kind) -> impl Iterator<Item = &String> {
    keys.range((kind, String::new())..)
        .take_while(move |(k, _)| *k == kind)
        .map(|(_, key)| key)
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
/// ownership records gone stale, and the warnings. Worked out before the declared objects, so a
/// planner that consumes the model can still ask it what is declared.
struct Undeclared {
    deletions: Vec<Op>,
    stale: Vec<ObjectId>,
    warnings: Vec<Warning>,
}

impl Undeclared {
    fn plan(
        desired: &Desired,
        live: &State,
        ownership: Ownership<'_>,
        options: &PlanOptions,
        scope: Scope<'_>,
    ) -> Result<Undeclared, PlanError> {
        let permits_own =
            |kind: Kind, key: &str| kind == Kind::PermitTenant && key == DEFAULT_TENANT;
        // Live, not declared, and not Permit's own `default` tenant: a deletion candidate.
        let undeclared = |kind: Kind, key: &str| {
            !permits_own(kind, key)
                && live.contains(kind, key)
                && !desired.state.contains(kind, key)
        };
        // Which objects declared ones refer to, worked out only once some candidate is deleted.
        let mut referenced: Option<BTreeSet<ObjectId>> = None;
        let mut is_referenced = |kind: Kind, key: &str| {
            referenced
                .get_or_insert_with(|| references(&desired.state, live))
                .contains(&(kind, key.to_string()))
        };
        let candidates = |kind: Kind| -> Box<dyn Iterator<Item = &str> + '_> {
            match scope {
                Scope::All => live.key_refs(kind),
                Scope::Keys(keys) => Box::new(of_kind(keys, kind).map(String::as_str)),
            }
        };

        let mut warnings = Vec::new();
        let mut owned_undeclared = 0usize;
        let mut deletions: Vec<ObjectId> = Vec::new();
        for kind in SYNCED_KINDS.into_iter().rev() {
            for key in candidates(kind).filter(|key| undeclared(kind, key)) {
                let (delete, ours) = deletion_wanted(ownership, options, kind, key);
                if delete && is_referenced(kind, key) {
                    // Deleting it would take declared objects with it (Permit cascades), or
                    // break them.
                    warnings.push(Warning::KeptForReferences {
                        kind,
                        key: key.to_string(),
                    });
                } else if delete {
                    deletions.push((kind, key.to_string()));
                } else if ours {
                    owned_undeclared += 1;
                }
            }
        }
        let gone =
            |kind: Kind, key: &str| !desired.state.contains(kind, key) && !live.contains(kind, key);
        let stale = match (scope, ownership.inventory()) {
            (_, None) => Vec::new(),
            (Scope::All, Some(inventory)) => inventory
                .iter()
                .filter(|(kind, key, _)| gone(*kind, key))
                .map(|(kind, key, _)| (kind, key.clone()))
                .collect(),
            (Scope::Keys(keys), Some(_)) => keys
                .iter()
                .filter(|(kind, key)| ownership.records(*kind, key) && gone(*kind, key))
                .cloned()
                .collect(),
        };

        check_guards(desired, options, deletions.len())?;

        // Permit deletes a user's or tenant's role assignments with it: whether that user or
        // tenant is deleted is asked of it directly, whether or not the scope covers it.
        let mut deleted = |kind: Kind, key: &str| {
            undeclared(kind, key)
                && deletion_wanted(ownership, options, kind, key).0
                && !is_referenced(kind, key)
        };
        let deletions_ops = deletions
            .iter()
            .map(|(kind, key)| {
                let have = live.get(*kind, key);
                let cascaded_by = cascade(&have, &mut deleted);
                delete_op(*kind, key.clone(), have, cascaded_by)
            })
            .collect();
        warnings.extend(cascade_warnings(
            live,
            deletions.iter().map(|(kind, key)| (*kind, key.as_str())),
            &mut deleted,
        ));
        ownership_warnings(&mut warnings, ownership, options, owned_undeclared);
        Ok(Undeclared {
            deletions: deletions_ops,
            stale,
            warnings,
        })
    }

    /// `plan` (its declared objects planned) with the deletions after them, each op numbered.
    fn finish(self, mut plan: Plan) -> Plan {
        plan.ops.extend(self.deletions);
        plan.stale = self.stale;
        let recreated = std::mem::take(&mut plan.warnings);
        plan.warnings = self.warnings;
        plan.warnings.extend(recreated);
        plan.number_ops();
        // Grown by doubling, the two lists can be nearly half spare capacity; large buffers
        // shrink in place.
        plan.ops.shrink_to_fit();
        plan.declared.shrink_to_fit();
        plan
    }
}

/// One declared object: the ownership entry to record, and the op that makes Permit hold it
/// (none when it already does and is ours).
fn plan_declared(
    plan: &mut Plan,
    notes: Notes<'_>,
    live: &State,
    ownership: Ownership<'_>,
    want: Obj,
    key: String,
) {
    let kind = want.kind();
    let held = ownership.declared(kind, &key);
    let orphan = !notes.orphans.is_empty() && notes.orphans.contains(&(kind, key.clone()));
    // The inventory records the spec last applied: recorded anew for what this plan writes or
    // adopts, or when the deletion policy changes. Hashing every unchanged object (a JSON dump
    // and a digest each) was half of a re-plan at 400,000 objects.
    let record = |want: &Obj| {
        if !held.records {
            return None;
        }
        let entry = Entry {
            hash: want.spec_hash(),
            orphan,
        };
        (held.entry != Some(&entry)).then_some(entry)
    };
    let have = live.get(kind, &key);
    let (action, diffs) = match &have {
        None => (Action::Create, Vec::new()),
        Some(have) => {
            let diffs = diff::diff(&want, have);
            match (diffs.is_empty(), held.owned) {
                (true, true) => {
                    if held.entry.is_some_and(|e| e.orphan != orphan)
                        && let Some(entry) = record(&want)
                    {
                        plan.declared.push((kind, key, entry));
                    }
                    plan.unchanged += 1;
                    return;
                }
                (true, false) => (Action::Adopt, diffs),
                (false, _) => {
                    if recreates(kind, &diffs) {
                        plan.warnings.push(Warning::Recreated {
                            kind,
                            key: key.clone(),
                        });
                    }
                    (Action::Update, diffs)
                }
            }
        }
    };
    let record = record(&want);
    let origin = crate::desired::origin_of(notes.origins, kind, &key).cloned();
    plan.ops.push(Op {
        kind,
        index: 0,
        adopted: action != Action::Create && !held.owned,
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

/// Whether Permit has no update for this change, so the executor deletes the object and creates
/// it again: a relation's subject, a tuple's tenant, an instance's tenant.
pub(super) fn recreates(kind: Kind, diffs: &[super::FieldDiff]) -> bool {
    use super::field::{Field, InstanceField};
    match kind {
        Kind::ResourceRelation | Kind::PermitRelationshipTuple => !diffs.is_empty(),
        Kind::PermitResourceInstance => diffs
            .iter()
            .any(|d| d.field == Field::Instance(InstanceField::Tenant)),
        _ => false,
    }
}

/// Whether an undeclared live object is to be deleted, and whether it is ours.
fn deletion_wanted(
    ownership: Ownership<'_>,
    options: &PlanOptions,
    kind: Kind,
    key: &str,
) -> (bool, bool) {
    let (ours, orphan) = ownership.undeclared(kind, key);
    let delete = match options.mode {
        // `deletionPolicy: Orphan` holds in mirror mode too: it was declared to outlive its
        // manifest.
        Mode::Mirror => !orphan,
        Mode::Owned => options.prune && ours,
    };
    (delete, ours)
}

fn delete_op(kind: Kind, key: String, have: Option<Obj>, cascaded_by: Option<ObjectId>) -> Op {
    Op {
        kind,
        index: 0,
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

/// The deletion an object goes with (Permit deletes a user's or tenant's assignments, an
/// instance's tuples, a resource's roles... with it: [`Obj::parents`]), if `deleted` says one of
/// its parents is deleted.
fn cascade(have: &Option<Obj>, mut deleted: impl FnMut(Kind, &str) -> bool) -> Option<ObjectId> {
    let have = have.as_ref()?;
    // A role's assignments are not cascaded: the planner keeps roles declared ones use, and
    // the others are deleted one by one (the role is deleted after them).
    have.parents()
        .into_iter()
        .filter(|(kind, _)| *kind != Kind::PermitRole)
        .find(|(kind, key)| deleted(*kind, key))
}

/// The objects Permit deletes with the objects the plan deletes (`causes`) although the plan
/// does not delete them itself (`gone` says what it deletes): someone else's, or declared to be
/// left. One warning per cause, so a reviewer sees what goes.
fn cascade_warnings<'a>(
    live: &State,
    causes: impl Iterator<Item = (Kind, &'a str)>,
    mut gone: impl FnMut(Kind, &str) -> bool,
) -> Vec<Warning> {
    let causes: BTreeSet<ObjectId> = causes
        .filter(|(kind, _)| CASCADE_CAUSES.contains(kind))
        .map(|(kind, key)| (kind, key.to_string()))
        .collect();
    if causes.is_empty() {
        return Vec::new();
    }
    let mut taken: BTreeMap<ObjectId, Vec<ObjectId>> = BTreeMap::new();
    for kind in SYNCED_KINDS {
        for key in live.key_refs(kind) {
            if let Some(cause) = live
                .parents(kind, key)
                .into_iter()
                .find(|c| causes.contains(c))
                && !gone(kind, key)
            {
                taken
                    .entry(cause)
                    .or_default()
                    .push((kind, key.to_string()));
            }
        }
    }
    taken
        .into_iter()
        .map(|((kind, key), objects)| Warning::CascadeDeletes {
            kind,
            key,
            count: objects.len(),
            example: objects[0].1.clone(),
            example_kind: objects[0].0,
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
        && let Some(why) = ownership.untrusted()
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

/// Objects the declared ones depend on: assignment users, tenants, roles and instances;
/// extended roles; resources named in permissions; what resource parts, instances and tuples
/// name.
fn references(state: &State, live: &State) -> BTreeSet<ObjectId> {
    let mut refs = BTreeSet::new();
    for (_, a) in state.assignments.iter() {
        refs.extend(a.parents());
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
    for r in state.resource_roles.values() {
        for parent in &r.extends {
            refs.insert((
                Kind::ResourceRole,
                crate::kinds::part_key(&r.resource, parent),
            ));
        }
    }
    let parts = state
        .relations
        .values()
        .map(|o| Obj::Relation(o.clone()).parents())
        .chain(
            state
                .resource_roles
                .values()
                .map(|o| vec![(Kind::PermitResource, o.resource.clone())]),
        )
        .chain(
            state
                .derivations
                .values()
                .map(|o| Obj::Derivation(o.clone()).parents()),
        )
        .chain(
            state
                .instances
                .values()
                .map(|o| Obj::Instance(o.clone()).parents()),
        )
        .chain(
            state
                .tuples
                .values()
                .map(|o| Obj::Tuple(o.clone()).parents()),
        );
    for p in parts {
        refs.extend(p);
    }
    // What a referenced part or instance needs in turn: its resource (a derivation naming a
    // role keeps the role's resource too), and an instance its tenant (as declared, or as Permit
    // holds it: a tuple on a live instance keeps that instance's tenant).
    let mut needed: Vec<ObjectId> = Vec::new();
    for (kind, key) in &refs {
        let resource = match kind {
            Kind::ResourceRole | Kind::ResourceRelation => key.split_once('#').map(|p| p.0),
            Kind::PermitResourceInstance => {
                let tenant = state.instances.get(key).or_else(|| live.instances.get(key));
                if let Some(i) = tenant {
                    needed.push((Kind::PermitTenant, i.tenant.clone()));
                }
                key.split_once(':').map(|p| p.0)
            }
            _ => None,
        };
        if let Some(resource) = resource {
            needed.push((Kind::PermitResource, resource.to_string()));
        }
    }
    refs.extend(needed);
    refs
}
