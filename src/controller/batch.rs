//! The pure core of one batch: custom resources → desired state and ownership → (plan, executed
//! elsewhere) → one verdict per custom resource. No IO, so the rules are tested without servers.
//!
//! Ownership is the custom resources themselves: every declared object is ours, and the only
//! deletions are those of resources being deleted with our finalizer (plus the old assignment of a
//! `RoleAssignment` whose spec changed). Nothing else in Permit is ever pruned.

use super::sources::{Cr, CrId};
use crate::desired::Desired;
use crate::exec::{ObjectStatus, Report};
use crate::kinds::{DeletionPolicy, Kind, Object, Origin};
use crate::model::State;
use crate::plan::{Action, Plan};
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// The controller's finalizer: the Permit object is deleted before the resource goes.
pub const FINALIZER: &str = "permitsync.dev/cleanup";
/// `permitsync.dev/reconcile: disabled` pauses one object.
pub const RECONCILE_ANNOTATION: &str = "permitsync.dev/reconcile";

pub use crate::kinds::ObjectId as Id;

/// What a custom resource asks for in this batch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Disposition {
    /// Could not be read as its kind (the message says why).
    Invalid(String),
    /// Paused by the annotation: no Permit call, no finalizer change.
    Paused,
    /// Declares a Permit object that an older custom resource declares already.
    Conflict(String),
    /// Declares these Permit objects: its own first, then a user's inline role assignments.
    /// `stale`: grants it declared before and no longer does, to delete: a `RoleAssignment`'s
    /// old grant after its spec changed (from `status.key`), a user's removed inline roles.
    Declared { ids: Vec<Id>, stale: Vec<Id> },
    /// Being deleted with our finalizer: delete this Permit object first (`None`: nothing to
    /// delete — `deletionPolicy: Orphan`, paused, unreadable, or declared by another resource).
    Deleting(Option<Id>),
    /// Being deleted without our finalizer: not ours to act on.
    Ignored,
}

/// The inputs of the plan, and each resource's part in it.
#[derive(Debug)]
pub struct Prepared {
    pub desired: Desired,
    /// The undeclared Permit objects that are ours to delete (the ownership the plan is made
    /// with, `plan::Ownership::Declared`): every declared object is ours besides.
    pub deleting: BTreeSet<Id>,
    pub items: Vec<(Cr, Disposition)>,
}

fn paused(cr: &Cr) -> bool {
    cr.annotation(RECONCILE_ANNOTATION)
        .is_some_and(|v| v.eq_ignore_ascii_case("disabled"))
}

fn orphan(object: &Object) -> bool {
    object.deletion_policy() == Some(DeletionPolicy::Orphan)
}

fn origin(cr: &Cr) -> Origin {
    Origin::Cluster {
        namespace: cr.namespace().to_string(),
        name: cr.name().to_string(),
    }
}

/// The Permit objects a readable resource declares: its own first, then a user's inline role
/// assignments or a resource's relations, roles and derivations (`desired::normalise_all`).
fn declared_ids(object: &Object) -> Vec<Id> {
    let own = (object.kind(), object.permit_key());
    let parts = crate::desired::normalise_all(object)
        .into_iter()
        .skip(1)
        .map(|o| (o.kind(), o.key()));
    std::iter::once(own).chain(parts).collect()
}

/// What a resource declared besides its own object and may drop from its spec while it stays:
/// a user's inline role assignments, a resource's parts.
fn dependent(cr: Kind, id: Kind) -> bool {
    match cr {
        Kind::PermitUser => id == Kind::RoleAssignment,
        Kind::PermitResource => id.is_part(),
        _ => false,
    }
}

/// Sorts out every resource's part and builds the desired state. The oldest resource wins a
/// duplicate key; the younger one gets a `Conflict` and declares nothing. `applied`: the ids each
/// resource had in Permit after its last successful batch (this process's memory), from which a
/// user's removed inline roles are found.
pub fn prepare(mut crs: Vec<Cr>, applied: &HashMap<CrId, Vec<Id>>) -> Prepared {
    crs.sort_by(|a, b| {
        let at = |c: &Cr| c.meta.creation_timestamp.as_ref().map(|t| t.0);
        (at(a), a.id()).cmp(&(at(b), b.id()))
    });
    let mut items: Vec<(Cr, Disposition)> = crs
        .into_iter()
        .map(|cr| {
            let d = match (&cr.object, cr.deleting()) {
                (_, true) if !cr.has_finalizer(FINALIZER) => Disposition::Ignored,
                (Ok(o), true) if !orphan(o) && !paused(&cr) => {
                    Disposition::Deleting(Some((o.kind(), o.permit_key())))
                }
                (_, true) => Disposition::Deleting(None),
                (Err(e), false) => Disposition::Invalid(e.clone()),
                (Ok(_), false) if paused(&cr) => Disposition::Paused,
                (Ok(o), false) => Disposition::Declared {
                    ids: declared_ids(o),
                    stale: Vec::new(),
                },
            };
            (cr, d)
        })
        .collect();

    // Duplicates: drop the younger declaration and try again (each round removes at least one).
    let desired = loop {
        let active: Vec<(Origin, &Object)> = items
            .iter()
            .filter(|(_, d)| matches!(d, Disposition::Declared { .. }))
            .filter_map(|(cr, _)| cr.object.as_ref().ok().map(|o| (origin(cr), o)))
            .collect();
        match Desired::from_objects(active.iter().map(|(o, x)| (o, *x))) {
            Ok(d) => break d,
            Err(errors) => {
                for e in errors {
                    let Origin::Cluster { namespace, name } = &e.second else {
                        continue;
                    };
                    let younger = CrId {
                        kind: e.kind,
                        namespace: namespace.clone(),
                        name: name.clone(),
                    };
                    if let Some((_, d)) = items.iter_mut().find(|(cr, _)| cr.id() == younger) {
                        *d = Disposition::Conflict(format!(
                            "{} {:?} is already declared by {} {}",
                            e.kind, e.key, e.kind, e.first
                        ));
                    }
                }
            }
        }
    };

    let declared = |id: &Id| desired.state.contains(id.0, &id.1);
    let mut deleting = BTreeSet::new();
    for (cr, d) in items.iter_mut() {
        match d {
            // Another resource still declares it: the Permit object is theirs now.
            Disposition::Deleting(Some(id)) if declared(id) => *d = Disposition::Deleting(None),
            Disposition::Deleting(Some(id)) => {
                deleting.insert(id.clone());
                // A resource's parts go with it (Permit deletes them with the resource): the
                // plan marks them cascaded, so they cost no call and leave the live state too.
                if let Ok(o @ Object::Resource(_)) = &cr.object {
                    let parts = declared_ids(o).into_iter().skip(1);
                    deleting.extend(parts.filter(|part| !declared(part)));
                }
            }
            Disposition::Declared { ids, stale } if cr.kind == Kind::RoleAssignment => {
                let old = cr.status.as_ref().and_then(|s| s.key.clone());
                let keep = cr.object.as_ref().is_ok_and(orphan);
                if let Some(old) = old
                    && old != ids[0].1
                    && !keep
                    && !declared(&(Kind::RoleAssignment, old.clone()))
                {
                    deleting.insert((Kind::RoleAssignment, old.clone()));
                    stale.push((Kind::RoleAssignment, old));
                }
            }
            Disposition::Declared { ids, stale }
                if matches!(cr.kind, Kind::PermitUser | Kind::PermitResource) =>
            {
                let removed =
                    applied.get(&cr.id()).into_iter().flatten().filter(|id| {
                        dependent(cr.kind, id.0) && !ids.contains(id) && !declared(id)
                    });
                for id in removed {
                    deleting.insert(id.clone());
                    stale.push(id.clone());
                }
            }
            _ => {}
        }
    }
    Prepared {
        desired,
        deleting,
        items,
    }
}

/// The Permit objects of a resource that must not be touched in this batch (backoff, rejected).
pub fn ids_of(d: &Disposition) -> Vec<Id> {
    match d {
        Disposition::Declared { ids, stale } => ids.iter().chain(stale).cloned().collect(),
        Disposition::Deleting(Some(id)) => vec![id.clone()],
        _ => Vec::new(),
    }
}

/// The outcome of a batch for one resource.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Permit holds what it declares; the message says what this batch did.
    Synced(String),
    /// A call failed. `rejected`: Permit refused the object (4xx), so it waits for a change.
    Failed {
        message: String,
        rejected: bool,
        exists: bool,
    },
    /// Nothing was done for it in this batch (backoff or rejected before): status unchanged.
    Held,
    /// The finalizer may go: the Permit object is deleted (`deleted`: by this batch), gone
    /// already, or to be left.
    Released {
        message: String,
        deleted: bool,
    },
    /// Its deletion waits: declared objects still refer to the Permit object.
    Blocked(String),
    Invalid(String),
    Paused,
    Conflict(String),
    Ignored,
}

impl Verdict {
    /// The outcome as metrics and logs name it.
    pub fn label(&self) -> &'static str {
        match self {
            Verdict::Synced(_) => "synced",
            Verdict::Failed { rejected: true, .. } => "rejected",
            Verdict::Failed { .. } => "failed",
            Verdict::Held => "held",
            Verdict::Released { .. } => "released",
            Verdict::Blocked(_) => "blocked",
            Verdict::Invalid(_) => "invalid",
            Verdict::Paused => "paused",
            Verdict::Conflict(_) => "conflict",
            Verdict::Ignored => "ignored",
        }
    }
}

/// The executed plan looked up by object: an op and its outcome in one step each (the report
/// holds one status per op, in the plan's order), so a batch's verdicts cost its size, not its
/// size squared.
pub struct Executed<'a> {
    plan: &'a Plan,
    report: &'a Report,
    at: HashMap<(Kind, &'a str), usize>,
}

impl<'a> Executed<'a> {
    pub fn new(plan: &'a Plan, report: &'a Report) -> Executed<'a> {
        let mut at = HashMap::with_capacity(plan.ops.len());
        for (i, op) in plan.ops.iter().enumerate() {
            at.entry((op.kind, op.key.as_str())).or_insert(i);
        }
        Executed { plan, report, at }
    }

    fn position(&self, id: &Id) -> Option<usize> {
        self.at.get(&(id.0, id.1.as_str())).copied()
    }

    fn op(&self, id: &Id) -> Option<&'a crate::plan::Op> {
        self.position(id).map(|i| &self.plan.ops[i])
    }

    fn outcome(&self, id: &Id) -> Option<&'a ObjectStatus> {
        self.position(id).and_then(|i| self.report.objects.get(i))
    }

    /// Whether the batch created anything (its ids are then known only to Permit).
    pub fn created(&self) -> bool {
        self.plan
            .ops
            .iter()
            .zip(&self.report.objects)
            .any(|(op, status)| op.action == Action::Create && status.synced)
    }
}

/// Maps the executed plan back to one resource.
pub fn verdict(
    d: &Disposition,
    held: bool,
    executed: &Executed<'_>,
    live_after: &State,
) -> Verdict {
    let op = |id: &Id| executed.op(id);
    let outcome = |id: &Id| executed.outcome(id);
    match d {
        Disposition::Invalid(m) => Verdict::Invalid(m.clone()),
        Disposition::Paused => Verdict::Paused,
        Disposition::Conflict(m) => Verdict::Conflict(m.clone()),
        Disposition::Ignored => Verdict::Ignored,
        Disposition::Deleting(None) => Verdict::Released {
            message: "left in Permit".into(),
            deleted: false,
        },
        _ if held => Verdict::Held,
        Disposition::Deleting(Some(id)) => match (op(id), outcome(id)) {
            (Some(_), Some(s)) if !s.synced => Verdict::Failed {
                message: s.message.clone().unwrap_or_default(),
                rejected: s.rejected(),
                exists: true,
            },
            (Some(_), _) => Verdict::Released {
                message: format!("deleted {} {} from Permit", id.0, id.1),
                deleted: true,
            },
            (None, _) if live_after.get(id.0, &id.1).is_some() => Verdict::Blocked(format!(
                "{} {} is still referred to by declared objects; it is deleted once they go",
                id.0, id.1
            )),
            (None, _) => Verdict::Released {
                message: format!("{} {} is not in Permit", id.0, id.1),
                deleted: false,
            },
        },
        Disposition::Declared { ids, stale } => {
            let mut failures = Vec::new();
            let mut rejected = false;
            for id in ids.iter().chain(stale) {
                if let Some(s) = outcome(id).filter(|s| !s.synced) {
                    rejected |= s.rejected();
                    failures.push(
                        s.message
                            .clone()
                            .unwrap_or_else(|| format!("{} {} failed", id.0, id.1)),
                    );
                }
            }
            let primary = &ids[0];
            if !failures.is_empty() {
                return Verdict::Failed {
                    message: failures.join("; "),
                    rejected,
                    exists: live_after.get(primary.0, &primary.1).is_some(),
                };
            }
            // A resource's parts changed alone: the resource was updated.
            let part_written = || ids[1..].iter().any(|id| id.0.is_part() && op(id).is_some());
            let what = match op(primary).map(|o| o.action) {
                Some(Action::Create) => "created in Permit",
                Some(Action::Update) => "updated in Permit",
                _ if part_written()
                    || stale.iter().any(|id| id.0.is_part() && op(id).is_some()) =>
                {
                    "updated in Permit"
                }
                _ => "in sync with Permit",
            };
            Verdict::Synced(what.into())
        }
    }
}

/// Failure memory of one resource: exponential backoff, and rejected specs held until they change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Retry {
    pub generation: Option<i64>,
    pub attempts: u32,
    pub not_before: std::time::Instant,
    pub rejected: bool,
}

impl Retry {
    /// Whether the resource sits this batch out.
    pub fn holds(&self, generation: Option<i64>, now: std::time::Instant) -> bool {
        if self.generation != generation {
            return false; // changed since: try at once
        }
        self.rejected || now < self.not_before
    }

    /// The failure after `previous`: base × 2^(attempts-1), capped.
    pub fn after(
        previous: Option<&Retry>,
        generation: Option<i64>,
        rejected: bool,
        now: std::time::Instant,
        base: std::time::Duration,
        max: std::time::Duration,
    ) -> Retry {
        let attempts = previous
            .filter(|p| p.generation == generation)
            .map_or(1, |p| p.attempts + 1);
        let delay = crate::backoff::Backoff::new(base, max).delay(attempts);
        Retry {
            generation,
            attempts,
            not_before: now + delay,
            rejected,
        }
    }
}

/// Which resources' ids are held this batch.
pub fn held_ids(items: &[(Cr, Disposition)], held: &BTreeSet<CrId>) -> BTreeSet<Id> {
    items
        .iter()
        .filter(|(cr, _)| held.contains(&cr.id()))
        .flat_map(|(_, d)| ids_of(d))
        .collect()
}

/// How many resources of a batch got each outcome, by [`Verdict::label`] (the debug log).
pub fn tally<'a>(verdicts: impl IntoIterator<Item = &'a Verdict>) -> BTreeMap<&'static str, usize> {
    let mut m = BTreeMap::new();
    for v in verdicts {
        *m.entry(v.label()).or_default() += 1;
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kinds::{
        PermitTenant, PermitTenantSpec, PermitUser, PermitUserSpec, RoleAssignment,
        RoleAssignmentSpec, SyncStatus,
    };
    use crate::model::{Obj, Tenant};
    use crate::plan::PlanOptions;
    use crate::plan::{Ownership, Scope};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
    use std::time::{Duration, Instant};

    fn cr(object: Object, ns: &str, age: i64) -> Cr {
        let mut meta = object.meta().clone();
        meta.namespace = Some(ns.into());
        meta.generation = Some(1);
        meta.creation_timestamp = Some(Time(
            k8s_openapi::jiff::Timestamp::from_second(1_700_000_000 + age).unwrap(),
        ));
        Cr {
            kind: object.kind(),
            meta,
            object: Ok(object),
            status: None,
        }
    }

    fn tenant(name: &str) -> Object {
        Object::Tenant(PermitTenant::new(name, PermitTenantSpec::default()))
    }

    fn options() -> PlanOptions {
        PlanOptions {
            prune: true,
            allow_empty: true,
            ..Default::default()
        }
    }

    fn live_tenant(key: &str) -> Obj {
        Obj::Tenant(Tenant {
            key: key.into(),
            name: key.into(),
            description: None,
            attributes: None,
        })
    }

    #[test]
    fn only_deleted_resources_are_deleted_and_others_in_permit_are_left() {
        let mut gone = cr(tenant("old"), "a", 1);
        gone.meta.deletion_timestamp = gone.meta.creation_timestamp.clone();
        gone.meta.finalizers = Some(vec![FINALIZER.into()]);
        let p = prepare(vec![cr(tenant("acme"), "a", 0), gone], &HashMap::new());
        let mut live = State::default();
        live.insert(live_tenant("old"));
        live.insert(live_tenant("someone-elses"));
        let ownership = Ownership::Declared {
            deleting: &p.deleting,
        };
        let plan = crate::plan::plan(&p.desired, &live, ownership, &options(), Scope::All).unwrap();
        let ops: Vec<_> = plan
            .ops
            .iter()
            .map(|o| (o.action, o.key.as_str()))
            .collect();
        assert_eq!(ops, [(Action::Create, "acme"), (Action::Delete, "old")]);
    }

    #[test]
    fn orphan_paused_and_foreign_finalizer_deletions_call_nothing() {
        let mut orphan = cr(
            Object::Tenant(PermitTenant::new(
                "kept",
                PermitTenantSpec {
                    deletion_policy: Some(DeletionPolicy::Orphan),
                    ..Default::default()
                },
            )),
            "a",
            0,
        );
        orphan.meta.deletion_timestamp = orphan.meta.creation_timestamp.clone();
        orphan.meta.finalizers = Some(vec![FINALIZER.into()]);
        let mut foreign = cr(tenant("x"), "a", 1);
        foreign.meta.deletion_timestamp = foreign.meta.creation_timestamp.clone();
        foreign.meta.finalizers = Some(vec!["other/finalizer".into()]);
        let mut paused = cr(tenant("p"), "a", 2);
        paused.meta.annotations = Some([(RECONCILE_ANNOTATION.into(), "disabled".into())].into());
        let p = prepare(vec![orphan, foreign, paused], &HashMap::new());
        let ds: Vec<_> = p.items.iter().map(|(_, d)| d.clone()).collect();
        assert_eq!(
            ds,
            [
                Disposition::Deleting(None),
                Disposition::Ignored,
                Disposition::Paused
            ]
        );
        assert!(p.deleting.is_empty());
    }

    #[test]
    fn the_younger_duplicate_is_a_conflict_and_the_older_still_syncs() {
        let p = prepare(
            vec![cr(tenant("acme"), "b", 5), cr(tenant("acme"), "a", 0)],
            &HashMap::new(),
        );
        assert_eq!(p.items[0].0.namespace(), "a");
        assert!(matches!(p.items[0].1, Disposition::Declared { .. }));
        match &p.items[1].1 {
            Disposition::Conflict(m) => assert!(m.contains("a/acme"), "{m}"),
            d => panic!("expected a conflict, got {d:?}"),
        }
        assert!(p.desired.state.tenants.contains_key("acme"));
    }

    #[test]
    fn a_changed_role_assignment_deletes_its_old_grant() {
        let ra = |role: &str| {
            Object::Assignment(RoleAssignment::new(
                "jane-role",
                RoleAssignmentSpec {
                    user: "jane".into(),
                    role: role.into(),
                    tenant: Some("acme".into()),
                    ..Default::default()
                },
            ))
        };
        let mut c = cr(ra("editor"), "a", 0);
        c.status = Some(SyncStatus {
            key: Some("jane/viewer/acme".into()),
            ..Default::default()
        });
        let p = prepare(vec![c], &HashMap::new());
        assert!(
            p.deleting
                .contains(&(Kind::RoleAssignment, "jane/viewer/acme".to_string()))
        );
        match &p.items[0].1 {
            Disposition::Declared { stale, .. } => assert_eq!(
                stale,
                &[(Kind::RoleAssignment, "jane/viewer/acme".to_string())]
            ),
            d => panic!("{d:?}"),
        }
    }

    #[test]
    fn a_removed_inline_role_is_unassigned_unless_declared_elsewhere() {
        let user = |roles: &[&str]| {
            Object::User(PermitUser::new(
                "jane",
                PermitUserSpec {
                    roles: Some(
                        roles
                            .iter()
                            .map(|r| crate::kinds::InlineRole {
                                role: r.to_string(),
                                tenant: None,
                                resource_instance: None,
                            })
                            .collect(),
                    ),
                    ..Default::default()
                },
            ))
        };
        let before = declared_ids(&user(&["viewer", "editor", "admin"]));
        let c = cr(user(&["viewer"]), "a", 0);
        let applied = HashMap::from([(c.id(), before)]);
        let explicit = Object::Assignment(RoleAssignment::new(
            "jane-admin",
            RoleAssignmentSpec {
                user: "jane".into(),
                role: "admin".into(),
                ..Default::default()
            },
        ));
        let p = prepare(vec![c, cr(explicit, "a", 1)], &applied);
        match &p.items[0].1 {
            Disposition::Declared { stale, .. } => assert_eq!(
                stale,
                &[(Kind::RoleAssignment, "jane/editor/default".to_string())],
                "admin is still declared by a RoleAssignment"
            ),
            d => panic!("{d:?}"),
        }
        assert!(
            p.deleting
                .contains(&(Kind::RoleAssignment, "jane/editor/default".to_string()))
        );
    }

    #[test]
    fn inline_roles_belong_to_their_user() {
        let user = Object::User(PermitUser::new(
            "jane",
            PermitUserSpec {
                roles: Some(vec![crate::kinds::InlineRole {
                    role: "viewer".into(),
                    tenant: None,
                    resource_instance: None,
                }]),
                ..Default::default()
            },
        ));
        assert_eq!(
            declared_ids(&user),
            [
                (Kind::PermitUser, "jane".to_string()),
                (Kind::RoleAssignment, "jane/viewer/default".to_string())
            ]
        );
    }

    #[test]
    fn backoff_doubles_up_to_the_cap_and_a_new_generation_retries_at_once() {
        let now = Instant::now();
        let (base, max) = (Duration::from_secs(1), Duration::from_secs(5));
        let r1 = Retry::after(None, Some(1), false, now, base, max);
        let r2 = Retry::after(Some(&r1), Some(1), false, now, base, max);
        let r4 = Retry::after(
            Some(&Retry::after(Some(&r2), Some(1), false, now, base, max)),
            Some(1),
            false,
            now,
            base,
            max,
        );
        assert_eq!(r1.not_before - now, Duration::from_secs(1));
        assert_eq!(r2.not_before - now, Duration::from_secs(2));
        assert_eq!(r4.not_before - now, Duration::from_secs(5));
        assert!(r2.holds(Some(1), now));
        assert!(!r2.holds(Some(1), now + Duration::from_secs(3)));
        assert!(!r2.holds(Some(2), now));
        let rejected = Retry::after(None, Some(1), true, now, base, max);
        assert!(rejected.holds(Some(1), now + Duration::from_secs(3600)));
        assert!(!rejected.holds(Some(2), now));
    }

    fn blog_resource(roles: &str) -> Object {
        let spec: crate::kinds::PermitResourceSpec = serde_saphyr::from_str(&format!(
            "key: Comment\nactions: {{read: {{}}}}\nrelations:\n  parent: {{subject: Post}}\nroles:\n{roles}"
        ))
        .unwrap();
        Object::Resource(crate::kinds::PermitResource::new("comment", spec))
    }

    const ROLES: &str = "  Author: {permissions: [read]}\n  Moderator:\n    grantedTo:\n      - {role: Author, onResource: Post, linkedBy: parent}\n";

    fn ids(list: &[(Kind, &str)]) -> Vec<Id> {
        list.iter().map(|(k, key)| (*k, key.to_string())).collect()
    }

    #[test]
    fn a_resource_declares_its_relations_roles_and_derivations() {
        assert_eq!(
            declared_ids(&blog_resource(ROLES)),
            ids(&[
                (Kind::PermitResource, "Comment"),
                (Kind::ResourceRelation, "Comment#parent"),
                (Kind::ResourceRole, "Comment#Author"),
                (Kind::ResourceRole, "Comment#Moderator"),
                (Kind::RoleDerivation, "Comment#Moderator/Post#Author/parent"),
            ])
        );
    }

    #[test]
    fn a_deleted_resource_takes_its_parts_and_a_removed_part_is_deleted() {
        let mut gone = cr(blog_resource(ROLES), "a", 0);
        gone.meta.deletion_timestamp = gone.meta.creation_timestamp.clone();
        gone.meta.finalizers = Some(vec![FINALIZER.into()]);
        let p = prepare(vec![gone], &HashMap::new());
        assert_eq!(
            p.items[0].1,
            Disposition::Deleting(Some((Kind::PermitResource, "Comment".into())))
        );
        assert_eq!(
            p.deleting.iter().cloned().collect::<Vec<_>>(),
            ids(&[
                (Kind::PermitResource, "Comment"),
                (Kind::ResourceRelation, "Comment#parent"),
                (Kind::ResourceRole, "Comment#Author"),
                (Kind::ResourceRole, "Comment#Moderator"),
                (Kind::RoleDerivation, "Comment#Moderator/Post#Author/parent"),
            ])
        );
        // In the plan the parts ride on the resource's deletion: no call of their own.
        let mut live = State::default();
        for obj in crate::desired::normalise_all(&blog_resource(ROLES)) {
            live.insert(obj);
        }
        let ownership = Ownership::Declared {
            deleting: &p.deleting,
        };
        let plan = crate::plan::plan(&p.desired, &live, ownership, &options(), Scope::All).unwrap();
        for op in &plan.ops {
            assert_eq!(op.action, Action::Delete, "{op:?}");
            // Cascaded by the resource, or by a role of it that goes with it.
            let by = op.cascaded_by.as_ref().map(|(_, key)| key.as_str());
            match op.kind {
                Kind::PermitResource => assert_eq!(by, None),
                _ => assert!(by.is_some_and(|k| k.starts_with("Comment")), "{op:?}"),
            }
        }
        assert_eq!(plan.ops.len(), 5);
        assert!(plan.warnings.is_empty(), "{:?}", plan.warnings);

        // A role dropped from a resource that stays: its role and derivation are deleted.
        let before = declared_ids(&blog_resource(ROLES));
        let c = cr(blog_resource("  Author: {permissions: [read]}\n"), "a", 0);
        let p = prepare(vec![c.clone()], &HashMap::from([(c.id(), before)]));
        let stale = ids(&[
            (Kind::ResourceRole, "Comment#Moderator"),
            (Kind::RoleDerivation, "Comment#Moderator/Post#Author/parent"),
        ]);
        match &p.items[0].1 {
            Disposition::Declared { stale: s, .. } => assert_eq!(s, &stale),
            d => panic!("{d:?}"),
        }
        assert_eq!(p.deleting.iter().cloned().collect::<Vec<_>>(), stale);
    }

    #[test]
    fn a_failed_part_fails_its_resource_and_a_written_part_updates_it() {
        let c = cr(blog_resource(ROLES), "a", 0);
        let p = prepare(vec![c], &HashMap::new());
        let mut live = State::default();
        for obj in
            crate::desired::normalise_all(&blog_resource("  Author: {permissions: [read]}\n"))
        {
            live.insert(obj);
        }
        let ownership = Ownership::Declared {
            deleting: &p.deleting,
        };
        let plan = crate::plan::plan(&p.desired, &live, ownership, &options(), Scope::All).unwrap();
        let keys: Vec<_> = plan.ops.iter().map(|o| o.key.as_str()).collect();
        assert_eq!(
            keys,
            ["Comment#Moderator", "Comment#Moderator/Post#Author/parent"]
        );
        let report = |failed: Option<&str>| Report {
            objects: plan
                .ops
                .iter()
                .map(|op| ObjectStatus {
                    kind: op.kind,
                    key: op.key.clone(),
                    action: op.action,
                    synced: Some(op.key.as_str()) != failed,
                    message: (Some(op.key.as_str()) == failed).then(|| "422: no such role".into()),
                    failure: (Some(op.key.as_str()) == failed)
                        .then_some(crate::exec::Failure::Rejected { http_status: 422 }),
                })
                .collect(),
            metrics: Default::default(),
            elapsed: Duration::ZERO,
        };
        let ok = report(None);
        let verdict_of =
            |r: &Report| verdict(&p.items[0].1, false, &Executed::new(&plan, r), &live);
        assert_eq!(verdict_of(&ok), Verdict::Synced("updated in Permit".into()));
        let failed = report(Some("Comment#Moderator/Post#Author/parent"));
        assert_eq!(
            verdict_of(&failed),
            Verdict::Failed {
                message: "422: no such role".into(),
                rejected: true,
                exists: true,
            }
        );
    }
}
