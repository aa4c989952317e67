//! Planner tests: the rules by example, then properties over arbitrary desired, live and owned states.

use super::*;
use crate::desired::Desired;
use crate::inventory::Inventory;
use crate::kinds::DEFAULT_TENANT;
use crate::model::{Action as Act, Assignment, Attrs, Resource, Role, Tenant, User};
use crate::model::{Obj, SYNCED_KINDS, State};
use proptest::prelude::*;
use std::collections::{BTreeMap, BTreeSet};

fn desired(state: State) -> Desired {
    Desired {
        state,
        ..Default::default()
    }
}

fn blog() -> State {
    let mut s = State::default();
    s.insert(Obj::Resource(Resource {
        key: "post".into(),
        name: "Post".into(),
        description: None,
        actions: ["read", "create"]
            .iter()
            .map(|a| {
                let act = Act {
                    name: a.to_string(),
                    description: None,
                    attributes: None,
                };
                (a.to_string(), act)
            })
            .collect(),
        attributes: None,
    }));
    s.insert(Obj::Role(Role {
        key: "viewer".into(),
        name: "Viewer".into(),
        description: None,
        permissions: ["post:read".to_string()].into(),
        extends: BTreeSet::new(),
        attributes: None,
    }));
    s.insert(Obj::Tenant(Tenant {
        key: "acme".into(),
        name: "Acme".into(),
        description: None,
        attributes: Some([("plan".to_string(), serde_json::json!("pro"))].into()),
    }));
    s.insert(Obj::User(User {
        key: "jane@example.com".into(),
        email: Some("jane@example.com".into()),
        first_name: Some("Jane".into()),
        last_name: None,
        attributes: None,
    }));
    s.insert(Obj::Assignment(Assignment {
        user: "jane@example.com".into(),
        role: "viewer".into(),
        tenant: "acme".into(),
        resource_instance: None,
    }));
    s
}

fn owning(state: &State) -> Inventory {
    let mut inv = Inventory::new(None);
    for kind in SYNCED_KINDS {
        for key in state.keys(kind) {
            inv.insert(
                kind,
                key,
                Entry {
                    hash: 0,
                    orphan: false,
                },
            );
        }
    }
    inv
}

fn own(inv: Option<&Inventory>) -> Ownership<'_> {
    match inv {
        Some(inv) => Ownership::Inventory(inv),
        None => Ownership::Untrusted(crate::inventory::NO_INVENTORY),
    }
}

fn plan_all(
    desired: &Desired,
    live: &State,
    ownership: Ownership<'_>,
    options: &PlanOptions,
) -> Result<Plan, PlanError> {
    plan(desired, live, ownership, options, Scope::All)
}

fn plan_owned(
    desired: Desired,
    live: &State,
    ownership: Ownership<'_>,
    options: &PlanOptions,
) -> Result<Plan, PlanError> {
    plan(desired, live, ownership, options, Scope::All)
}

fn plan_keys(
    desired: &Desired,
    live: &State,
    ownership: Ownership<'_>,
    options: &PlanOptions,
    keys: &BTreeSet<(Kind, String)>,
) -> Result<Plan, PlanError> {
    plan(desired, live, ownership, options, Scope::Keys(keys))
}

/// Ops as another plan holds them: their numbers differ when the plans cover different keys.
fn unnumbered<'a>(ops: impl IntoIterator<Item = &'a Op>) -> Vec<Op> {
    ops.into_iter()
        .map(|op| Op {
            index: 0,
            ..op.clone()
        })
        .collect()
}

fn prune() -> PlanOptions {
    PlanOptions {
        prune: true,
        ..Default::default()
    }
}

fn simulate(live: &State, plan: &Plan) -> State {
    let mut projected = live.clone();
    plan.clone().project(&mut projected, |_| true);
    projected
}

#[test]
fn creates_in_dependency_order_then_nothing() {
    let d = desired(blog());
    let p = plan_all(&d, &State::default(), own(None), &PlanOptions::default()).unwrap();
    let order: Vec<_> = p.ops.iter().map(|o| (o.kind, o.action)).collect();
    assert_eq!(
        order,
        [
            (Kind::PermitResource, Action::Create),
            (Kind::PermitRole, Action::Create),
            (Kind::PermitTenant, Action::Create),
            (Kind::PermitUser, Action::Create),
            (Kind::RoleAssignment, Action::Create),
        ]
    );
    let inv = p.inventory_before(None, None);
    let after = simulate(&State::default(), &p);
    let again = plan_all(&d, &after, own(Some(&inv)), &prune()).unwrap();
    assert!(again.ops.is_empty(), "{:?}", again.ops);
    assert_eq!(again.unchanged, 5);
}

#[test]
fn field_diffs_name_only_changed_fields_and_permissions_are_sets() {
    let d = desired(blog());
    let mut live = blog();
    let role = live.roles.get_mut("viewer").unwrap();
    role.permissions = ["post:create".to_string()].into();
    live.users.get_mut("jane@example.com").unwrap().last_name = Some("Doe".into());
    live.tenants.get_mut("acme").unwrap().attributes = Some(Attrs::new(&BTreeMap::new()));
    let inv = owning(&live);
    let p = plan_all(&d, &live, own(Some(&inv)), &PlanOptions::default()).unwrap();
    let updates: Vec<_> = p
        .ops
        .iter()
        .map(|o| {
            let fields: Vec<_> = o.diffs.iter().map(|d| d.field.as_str()).collect();
            (o.kind, o.action, fields)
        })
        .collect();
    // The user's last name is not declared, so it is not managed: no user update.
    assert_eq!(
        updates,
        [
            (Kind::PermitRole, Action::Update, vec!["permissions"]),
            (Kind::PermitTenant, Action::Update, vec!["attributes"]),
        ]
    );
}

#[test]
fn existing_objects_are_adopted_and_prune_only_touches_the_inventory() {
    let d = desired(blog());
    let mut live = blog();
    live.insert(Obj::User(User {
        key: "not-ours".into(),
        email: None,
        first_name: None,
        last_name: None,
        attributes: None,
    }));
    live.insert(Obj::User(User {
        key: "was-ours".into(),
        email: None,
        first_name: None,
        last_name: None,
        attributes: None,
    }));
    let mut inv = Inventory::new(None);
    inv.insert(
        Kind::PermitUser,
        "was-ours".into(),
        Entry {
            hash: 0,
            orphan: false,
        },
    );
    let p = plan_all(&d, &live, own(Some(&inv)), &prune()).unwrap();
    assert_eq!(p.count(Kind::PermitUser, Action::Adopt), 1);
    assert!(!p.has_changes() || p.deletions() == 1);
    let deletes: Vec<_> = p
        .ops
        .iter()
        .filter(|o| o.action == Action::Delete)
        .map(|o| o.key.as_str())
        .collect();
    assert_eq!(deletes, ["was-ours"]);

    // Without --prune nothing is deleted, and the plan says what prune would do.
    let p = plan_all(&d, &live, own(Some(&inv)), &PlanOptions::default()).unwrap();
    assert_eq!(p.deletions(), 0);
    assert!(
        p.warnings[0].to_string().contains("--prune"),
        "{:?}",
        p.warnings
    );

    // Mirror deletes everything undeclared.
    let mirror = PlanOptions {
        mode: Mode::Mirror,
        ..Default::default()
    };
    let p = plan_all(&d, &live, own(None), &mirror).unwrap();
    assert_eq!(p.deletions(), 2);
}

#[test]
fn guards_empty_source_and_max_deletions() {
    let live = blog();
    let inv = owning(&live);
    let empty = desired(State::default());
    assert_eq!(
        plan_all(&empty, &live, own(Some(&inv)), &prune()),
        Err(PlanError::EmptySource)
    );
    let allow = PlanOptions {
        allow_empty: true,
        ..prune()
    };
    let p = plan_all(&empty, &live, own(Some(&inv)), &allow).unwrap();
    assert_eq!(p.deletions(), 5);
    // The user's assignment goes with the user: no unassign call.
    let cascaded: Vec<_> = p.ops.iter().filter(|o| o.cascaded_by.is_some()).collect();
    assert_eq!(cascaded.len(), 1);
    assert_eq!(cascaded[0].kind, Kind::RoleAssignment);
    // Deletions run in reverse kind order.
    let kinds: Vec<_> = p.ops.iter().map(|o| o.kind).collect();
    assert_eq!(
        kinds,
        [
            Kind::RoleAssignment,
            Kind::PermitUser,
            Kind::PermitTenant,
            Kind::PermitRole,
            Kind::PermitResource
        ]
    );
    let capped = PlanOptions {
        max_deletions: Some(4),
        ..allow
    };
    assert_eq!(
        plan_all(&empty, &live, own(Some(&inv)), &capped),
        Err(PlanError::TooManyDeletions { count: 5, max: 4 })
    );
}

#[test]
fn referenced_and_orphaned_objects_are_kept_and_default_tenant_is_never_pruned() {
    let mut want = blog();
    want.users.clear(); // the assignment still names jane
    let mut live = blog();
    live.insert(Obj::Tenant(Tenant {
        key: DEFAULT_TENANT.into(),
        name: "Default".into(),
        description: None,
        attributes: None,
    }));
    let mut inv = owning(&live);
    inv.insert(
        Kind::PermitTenant,
        "acme".into(),
        Entry {
            hash: 0,
            orphan: true,
        },
    );
    let mirror = PlanOptions {
        mode: Mode::Mirror,
        ..Default::default()
    };
    let p = plan_all(&desired(want.clone()), &live, own(Some(&inv)), &mirror).unwrap();
    assert_eq!(p.deletions(), 0, "{:?}", p.ops);
    assert!(
        p.warnings
            .iter()
            .any(|w| w.to_string().contains("jane@example.com"))
    );

    want.tenants.clear();
    want.assignments.clear();
    want.users = blog().users;
    let p = plan_all(&desired(want), &live, own(Some(&inv)), &prune()).unwrap();
    // acme is orphaned (kept), its assignment is owned (deleted), default is never a candidate.
    let deleted: Vec<_> = p
        .ops
        .iter()
        .filter(|o| o.action == Action::Delete)
        .map(|o| o.subject())
        .collect();
    assert_eq!(deleted, ["RoleAssignment jane@example.com/viewer/acme"]);
}

#[test]
fn a_deletion_says_which_assignments_permit_deletes_with_it_that_the_plan_does_not() {
    // Ours: the blog, plus an auditor role and bob, both no longer declared.
    let mut live = blog();
    live.insert(Obj::Role(Role {
        key: "auditor".into(),
        name: "Auditor".into(),
        description: None,
        permissions: BTreeSet::new(),
        extends: BTreeSet::new(),
        attributes: None,
    }));
    live.insert(Obj::User(User {
        key: "bob".into(),
        email: None,
        first_name: None,
        last_name: None,
        attributes: None,
    }));
    let assignment = |user: &str, role: &str| Assignment {
        user: user.into(),
        role: role.into(),
        tenant: "acme".into(),
        resource_instance: None,
    };
    live.insert(Obj::Assignment(assignment("bob", "viewer")));
    let inv = owning(&live);
    // Someone else's: jane as auditor, bob as auditor.
    live.insert(Obj::Assignment(assignment("jane@example.com", "auditor")));
    live.insert(Obj::Assignment(assignment("bob", "auditor")));
    let d = desired(blog());

    let p = plan_all(&d, &live, own(Some(&inv)), &prune()).unwrap();
    let deleted: Vec<_> = p.ops.iter().map(|o| o.subject()).collect();
    assert_eq!(
        deleted,
        [
            "RoleAssignment bob/viewer/acme",
            "PermitUser bob",
            "PermitRole auditor"
        ]
    );
    // bob's own assignment is in the plan (cascaded); the two foreign ones are said, each
    // with the first deletion that takes it.
    let said: Vec<String> = p
        .warnings
        .iter()
        .map(|w| w.to_string())
        .filter(|w| w.contains("also deletes"))
        .collect();
    assert_eq!(said.len(), 2, "{said:?}");
    assert!(
        said[0].starts_with("deleting PermitRole auditor also deletes 1 role assignment(s)")
            && said[0].ends_with("e.g. jane@example.com/auditor/acme"),
        "{said:?}"
    );
    assert!(
        said[1].starts_with("deleting PermitUser bob also deletes 1 role assignment(s)")
            && said[1].ends_with("e.g. bob/auditor/acme"),
        "{said:?}"
    );
    // The watcher's plan for the role alone says it too; bob is not deleted in that plan, so
    // his grant as auditor goes with the role there.
    let keys: BTreeSet<(Kind, String)> = [(Kind::PermitRole, "auditor".to_string())].into();
    let some = plan_keys(&d, &live, own(Some(&inv)), &prune(), &keys).unwrap();
    assert!(
        some.warnings.iter().any(|w| w
            .to_string()
            .starts_with("deleting PermitRole auditor also deletes 2 role assignment(s)")),
        "{:?}",
        some.warnings
    );

    // Nothing deleted, nothing said.
    let kept = plan_all(&d, &live, own(Some(&inv)), &PlanOptions::default()).unwrap();
    assert!(
        !kept
            .warnings
            .iter()
            .any(|w| w.to_string().contains("also deletes"))
    );
}

#[test]
fn unusable_inventory_disables_prune_with_a_message() {
    let live = blog();
    let p = plan_all(
        &desired(State::default()),
        &live,
        Ownership::Untrusted("inventory x is corrupt"),
        &PlanOptions {
            allow_empty: true,
            ..prune()
        },
    )
    .unwrap();
    assert_eq!(p.deletions(), 0);
    assert!(p.warnings[0].to_string().contains("corrupt"));
}

#[test]
fn renders_are_deterministic_and_redacted() {
    let mut want = blog();
    want.tenants.get_mut("acme").unwrap().attributes = Some(
        [
            ("plan".to_string(), serde_json::json!("pro")),
            ("apiToken".to_string(), serde_json::json!("hunter2")),
        ]
        .into(),
    );
    let d = desired(want);
    let p1 = plan_all(&d, &blog(), own(None), &PlanOptions::default()).unwrap();
    let p2 = plan_all(&d, &blog(), own(None), &PlanOptions::default()).unwrap();
    let r = render::Redactor::new(["permit_key_SECRET123".to_string()]);
    for f in [
        render::Format::Table,
        render::Format::Json,
        render::Format::Markdown,
    ] {
        let a = render::render(&p1, f, &r);
        assert_eq!(a, render::render(&p2, f, &r));
        assert!(!a.contains("hunter2"), "{f:?}: {a}");
        assert!(a.contains("PermitTenant"), "{f:?}: {a}");
    }
    let md = render::render(&p1, render::Format::Markdown, &r);
    assert!(md.contains("| PermitTenant | 0 | 1 | 0 | 0 |"), "{md}");
    let empty = plan_all(
        &desired(blog()),
        &blog(),
        own(Some(&owning(&blog()))),
        &prune(),
    )
    .unwrap();
    assert!(render::render(&empty, render::Format::Table, &r).contains(render::NO_CHANGES));
}

#[test]
fn table_and_markdown_escape_terminal_controls_in_values() {
    let mut want = blog();
    let acme = want.tenants.get_mut("acme").unwrap();
    acme.name = "Acme\u{1b}[2J\u{202e}X".into();
    acme.description = Some("line\nerror: forged".into());
    let p = plan_all(
        &desired(want),
        &State::default(),
        own(None),
        &PlanOptions::default(),
    )
    .unwrap();
    let r = render::Redactor::new([]);
    for f in [render::Format::Table, render::Format::Markdown] {
        let out = render::render(&p, f, &r);
        assert!(
            !out.contains('\u{1b}') && !out.contains('\u{202e}'),
            "{f:?}: {out}"
        );
        assert!(
            !out.lines().any(|l| l.starts_with("error: forged")),
            "{f:?}: {out}"
        );
        assert!(out.contains("Acme\\u{1b}[2J\\u{202e}X"), "{f:?}: {out}");
    }
}

// ---- properties ----

fn arb_attrs() -> impl Strategy<Value = Option<BTreeMap<String, serde_json::Value>>> {
    proptest::option::of(proptest::collection::btree_map(
        prop::sample::select(vec!["plan", "tier"]).prop_map(String::from),
        (0..3i64).prop_map(serde_json::Value::from),
        0..2,
    ))
}

fn arb_text() -> impl Strategy<Value = Option<String>> {
    proptest::option::of(prop::sample::select(vec!["x", "y"]).prop_map(String::from))
}

fn arb_state() -> impl Strategy<Value = State> {
    let resources = proptest::collection::btree_map(
        prop::sample::select(vec!["doc", "post"]),
        (
            arb_text(),
            proptest::collection::btree_set(prop::sample::select(vec!["read", "write"]), 0..3),
            prop::bool::ANY,
        ),
        0..3,
    );
    let roles = proptest::collection::btree_map(
        prop::sample::select(vec!["viewer", "editor", "admin"]),
        (
            arb_text(),
            proptest::collection::btree_set(
                prop::sample::select(vec!["doc:read", "doc:write", "post:read"]),
                0..3,
            ),
            proptest::collection::btree_set(prop::sample::select(vec!["viewer", "editor"]), 0..2),
            arb_attrs(),
        ),
        0..3,
    );
    let tenants = proptest::collection::btree_map(
        prop::sample::select(vec!["default", "acme", "globex"]),
        (arb_text(), arb_attrs()),
        0..3,
    );
    let users = proptest::collection::btree_map(
        prop::sample::select(vec!["jane@example.com", "bob", "eve"]),
        (arb_text(), arb_text(), arb_attrs()),
        0..3,
    );
    let assignments = proptest::collection::btree_set(
        (
            prop::sample::select(vec!["jane@example.com", "bob", "eve"]),
            prop::sample::select(vec!["viewer", "editor"]),
            prop::sample::select(vec!["default", "acme", "globex"]),
        ),
        0..5,
    );
    (resources, roles, tenants, users, assignments).prop_map(|(res, roles, ten, users, asg)| {
        let mut s = State::default();
        for (k, (desc, actions, name_upper)) in res {
            s.insert(Obj::Resource(Resource {
                key: k.into(),
                name: if name_upper {
                    k.to_uppercase()
                } else {
                    k.into()
                },
                description: desc,
                actions: actions
                    .into_iter()
                    .map(|a| {
                        let act = Act {
                            name: a.into(),
                            description: None,
                            attributes: None,
                        };
                        (a.to_string(), act)
                    })
                    .collect(),
                attributes: None,
            }));
        }
        for (k, (desc, perms, extends, attrs)) in roles {
            s.insert(Obj::Role(Role {
                key: k.into(),
                name: k.into(),
                description: desc,
                permissions: perms.into_iter().map(String::from).collect(),
                extends: extends
                    .into_iter()
                    .filter(|e| *e != k)
                    .map(String::from)
                    .collect(),
                attributes: attrs.map(Attrs::from),
            }));
        }
        for (k, (desc, attrs)) in ten {
            s.insert(Obj::Tenant(Tenant {
                key: k.into(),
                name: k.into(),
                description: desc,
                attributes: attrs.map(Attrs::from),
            }));
        }
        for (k, (email, first, attrs)) in users {
            s.insert(Obj::User(User {
                key: k.into(),
                email,
                first_name: first,
                last_name: None,
                attributes: attrs.map(Attrs::from),
            }));
        }
        for (u, r, t) in asg {
            s.insert(Obj::Assignment(Assignment {
                user: u.into(),
                role: r.into(),
                tenant: t.into(),
                resource_instance: None,
            }));
        }
        s
    })
}

/// A random subset of the live objects (plus some that are gone) as the inventory.
fn arb_inventory(live: &State) -> impl Strategy<Value = Inventory> + use<> {
    let mut all: Vec<(Kind, String)> = Vec::new();
    for kind in SYNCED_KINDS {
        for key in live.keys(kind) {
            all.push((kind, key));
        }
    }
    all.push((Kind::PermitUser, "gone".into()));
    let n = all.len();
    proptest::collection::vec((prop::bool::ANY, prop::bool::weighted(0.1)), n).prop_map(
        move |picks| {
            let mut inv = Inventory::new(None);
            for ((kind, key), (pick, orphan)) in all.iter().zip(picks) {
                if pick {
                    inv.insert(*kind, key.clone(), Entry { hash: 0, orphan });
                }
            }
            inv
        },
    )
}

/// The state file's text of an inventory.
fn text(inventory: &impl Serialize) -> String {
    serde_json::to_string_pretty(inventory).expect("inventories serialise")
}

fn satisfies(want: &State, have: &State) -> Result<(), String> {
    for kind in SYNCED_KINDS {
        for key in want.keys(kind) {
            let w = want.get(kind, &key).unwrap();
            match have.get(kind, &key) {
                None => return Err(format!("{kind} {key} missing")),
                Some(h) => {
                    let d = diff::diff(&w, &h);
                    if !d.is_empty() {
                        return Err(format!("{kind} {key} differs: {d:?}"));
                    }
                }
            }
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn applying_the_plan_converges_and_never_deletes_what_we_do_not_own(
        (want, live, inv, mirror, pruning) in (arb_state(), arb_state()).prop_flat_map(|(w, l)| {
            let inv = arb_inventory(&l);
            (Just(w), Just(l), inv, prop::bool::weighted(0.2), prop::bool::ANY)
        })
    ) {
        let options = PlanOptions {
            prune: pruning,
            mode: if mirror { Mode::Mirror } else { Mode::Owned },
            allow_empty: true,
            max_deletions: None,
        };
        let d = desired(want.clone());
        let p = plan_all(&d, &live, own(Some(&inv)), &options).unwrap();

        // Deterministic, and the same when the planner takes the model.
        prop_assert_eq!(&p, &plan_all(&d, &live, own(Some(&inv)), &options).unwrap());
        prop_assert_eq!(&p, &plan_owned(d.clone(), &live, own(Some(&inv)), &options).unwrap());

        // No delete outside the inventory unless mirroring; never the default tenant or an orphan.
        for op in p.ops.iter().filter(|o| o.action == Action::Delete) {
            prop_assert!(want.get(op.kind, &op.key).is_none(), "deletes a declared {}", op.subject());
            prop_assert!(!(op.kind == Kind::PermitTenant && op.key == DEFAULT_TENANT));
            prop_assert!(!inv.get(op.kind, &op.key).is_some_and(|e| e.orphan), "deletes an orphan");
            if !mirror {
                prop_assert!(pruning);
                let e = inv.get(op.kind, &op.key);
                prop_assert!(e.is_some_and(|e| !e.orphan), "deletes unowned {}", op.subject());
            }
        }

        // Applying the plan gives the desired state.
        let after = simulate(&live, &p);
        if let Err(e) = satisfies(&want, &after) {
            return Err(TestCaseError::fail(e));
        }

        // Planning again on the result changes nothing.
        let before = p.inventory_before(Some(&inv), None);
        let inv2 = p.inventory_after(before.clone(), |_| true);
        // Written as an overlay, the inventory is the one built, byte for byte.
        prop_assert_eq!(text(&p.inventory_overlay(Some(&inv), None)), text(&before));
        prop_assert_eq!(
            text(&p.inventory_overlay(None, Some("o/p/e".into()))),
            text(&p.inventory_before(None, Some("o/p/e".into())))
        );
        let again = plan_all(&d, &after, own(Some(&inv2)), &options).unwrap();
        prop_assert!(again.ops.is_empty(), "second plan: {:?}", again.ops);

        // Every declared object is owned afterwards; deleted ones are not.
        for kind in SYNCED_KINDS {
            for key in want.keys(kind) {
                prop_assert!(inv2.contains(kind, &key));
            }
        }
        for op in p.ops.iter().filter(|o| o.action == Action::Delete) {
            prop_assert!(!inv2.contains(op.kind, &op.key));
        }
    }
}

#[test]
fn a_failed_delete_stays_in_the_inventory_and_stale_entries_go() {
    let live = blog();
    let mut inv = owning(&live);
    inv.insert(
        Kind::PermitTenant,
        "long-gone".into(),
        Entry {
            hash: 0,
            orphan: false,
        },
    );
    let mut want = blog();
    want.assignments.clear();
    let p = plan_all(&desired(want), &live, own(Some(&inv)), &prune()).unwrap();
    assert_eq!(p.deletions(), 1);
    let before = p.inventory_before(Some(&inv), None);
    let failed = p.inventory_after(before.clone(), |_| false);
    assert!(failed.contains(Kind::RoleAssignment, "jane@example.com/viewer/acme"));
    assert!(
        !failed.contains(Kind::PermitTenant, "long-gone"),
        "neither declared nor live"
    );
    let done = p.inventory_after(before, |_| true);
    assert!(!done.contains(Kind::RoleAssignment, "jane@example.com/viewer/acme"));
    assert!(done.contains(Kind::PermitUser, "jane@example.com"));
}

// ---- the plan restricted to some keys ----

fn all_keys(states: &[&State], inv: &Inventory) -> Vec<(Kind, String)> {
    let mut all: BTreeSet<(Kind, String)> = BTreeSet::new();
    for s in states {
        for kind in SYNCED_KINDS {
            all.extend(s.keys(kind).into_iter().map(|k| (kind, k)));
        }
    }
    all.extend(inv.iter().map(|(k, key, _)| (k, key.clone())));
    all.insert((Kind::PermitUser, "nobody".into()));
    all.into_iter().collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn the_plan_restricted_to_some_keys_is_the_full_plan_for_those_keys(
        (want, live, inv, mirror, pruning, picks, orphans) in (arb_state(), arb_state())
            .prop_flat_map(|(w, l)| {
                let inv = arb_inventory(&l);
                (
                    Just(w),
                    Just(l),
                    inv,
                    prop::bool::weighted(0.2),
                    prop::bool::ANY,
                    proptest::collection::vec(prop::bool::ANY, 64),
                    proptest::collection::vec(prop::bool::weighted(0.2), 64),
                )
            })
    ) {
        let options = PlanOptions {
            prune: pruning,
            mode: if mirror { Mode::Mirror } else { Mode::Owned },
            allow_empty: true,
            max_deletions: None,
        };
        let mut d = desired(want.clone());
        for (i, (kind, key)) in all_keys(&[&want], &Inventory::new(None)).into_iter().enumerate() {
            if orphans[i % orphans.len()] {
                d.orphans.insert((kind, key));
            }
        }
        let all = all_keys(&[&want, &live], &inv);
        let keys: BTreeSet<(Kind, String)> = all
            .iter()
            .enumerate()
            .filter(|(i, _)| picks[i % picks.len()])
            .map(|(_, k)| k.clone())
            .collect();
        let full = plan_all(&d, &live, own(Some(&inv)), &options).unwrap();
        let part = plan_keys(&d, &live, own(Some(&inv)), &options, &keys).unwrap();
        let within = |kind: &Kind, key: &str| keys.contains(&(*kind, key.to_string()));
        let ops: Vec<&Op> = full.ops.iter().filter(|o| within(&o.kind, &o.key)).collect();
        prop_assert_eq!(unnumbered(&part.ops), unnumbered(ops.iter().copied()));
        let declared: Vec<_> = full.entries().filter(|(k, key, _)| within(k, key)).collect();
        prop_assert_eq!(part.entries().collect::<Vec<_>>(), declared.clone());
        // Every declared key either has an op (create, update, adopt) or is unchanged.
        let declared_keys = keys
            .iter()
            .filter(|(k, key)| d.state.get(*k, key).is_some())
            .count();
        let unchanged = declared_keys - ops.iter().filter(|o| o.action != Action::Delete).count();
        prop_assert_eq!(part.unchanged, unchanged);
        let stale: BTreeSet<_> = full.stale.iter().filter(|(k, key)| within(k, key)).collect();
        prop_assert_eq!(part.stale.iter().collect::<BTreeSet<_>>(), stale);

        // Every key asked about: the same plan as the full one.
        let every: BTreeSet<(Kind, String)> = all.into_iter().collect();
        let whole = plan_keys(&d, &live, own(Some(&inv)), &options, &every).unwrap();
        prop_assert_eq!(&whole.ops, &full.ops);
        prop_assert_eq!(&whole.declared, &full.declared);
    }
}

fn projected_state() -> State {
    let mut s = State::default();
    for t in ["acme", "globex"] {
        s.insert(Obj::Tenant(Tenant {
            key: t.into(),
            name: t.into(),
            description: None,
            attributes: None,
        }));
    }
    for u in ["jane", "bob"] {
        s.insert(Obj::User(User {
            key: u.into(),
            email: None,
            first_name: Some(u.into()),
            last_name: None,
            attributes: None,
        }));
        for t in ["acme", "globex"] {
            s.insert(Obj::Assignment(Assignment {
                user: u.into(),
                role: "viewer".into(),
                tenant: t.into(),
                resource_instance: None,
            }));
        }
    }
    s
}

#[test]
fn the_projection_applies_what_succeeded_and_what_permit_deletes_with_it() {
    let mut live = projected_state();
    // An owned role on which someone else assigned jane: deleting the role deletes that
    // assignment in Permit, though it is not ours to delete.
    live.insert(Obj::Role(Role {
        key: "auditor".into(),
        name: "Auditor".into(),
        description: None,
        permissions: Default::default(),
        extends: Default::default(),
        attributes: None,
    }));
    let foreign = Assignment {
        user: "jane".into(),
        role: "auditor".into(),
        tenant: "acme".into(),
        resource_instance: None,
    };
    live.insert(Obj::Assignment(foreign.clone()));
    let mut want = projected_state();
    want.users.remove("bob");
    want.assignments.retain(|a| a.user != "bob");
    want.tenants.get_mut("acme").unwrap().name = "Acme Inc".into();
    want.tenants.remove("globex");
    want.assignments.retain(|a| a.tenant != "globex");
    want.insert(Obj::Tenant(Tenant {
        key: "initech".into(),
        name: "Initech".into(),
        description: None,
        attributes: None,
    }));
    let mut inv = Inventory::new(None);
    for kind in crate::model::SYNCED_KINDS {
        for key in live.keys(kind) {
            inv.insert(
                kind,
                key,
                crate::inventory::Entry {
                    hash: 0,
                    orphan: false,
                },
            );
        }
    }
    inv.remove(Kind::RoleAssignment, &foreign.key());
    let desired = crate::desired::Desired {
        state: want,
        ..Default::default()
    };
    let options = PlanOptions {
        prune: true,
        ..Default::default()
    };
    let plan = plan_all(&desired, &live, Ownership::Inventory(&inv), &options).unwrap();
    assert!(plan.deletions() > 0 && plan.has_changes());
    for fails in [None, Some("jane"), Some("globex"), Some("auditor")] {
        let ok = |op: &Op| Some(op.key.as_str()) != fails;
        let mut in_place = live.clone();
        plan.clone().project(&mut in_place, ok);
        // What failed is as it was; what succeeded is as declared.
        for op in &plan.ops {
            let now = in_place.get(op.kind, &op.key);
            if ok(op) {
                assert_eq!(now, desired.state.get(op.kind, &op.key), "{}", op.subject());
            } else {
                assert_eq!(now, live.get(op.kind, &op.key), "{}", op.subject());
            }
        }
        let role_deleted = fails != Some("auditor");
        assert_eq!(
            in_place.assignments.contains_key(&foreign.key()),
            !role_deleted,
            "the foreign assignment goes with its role, and only with it"
        );

        let mut inv2 = inv.clone();
        assert!(plan.record_declared(&mut inv2, Some("o/p/e".into())));
        assert_eq!(inv2.environment.as_deref(), Some("o/p/e"));
        assert!(
            !plan.record_declared(&mut inv2, Some("o/p/e".into())),
            "recorded once, nothing changes"
        );
        assert!(plan.drop_gone(&mut inv2, ok));
        // A failed deletion stays owned; a done one leaves the inventory.
        for op in plan.ops.iter().filter(|o| o.action == Action::Delete) {
            assert_eq!(inv2.contains(op.kind, &op.key), !ok(op), "{}", op.subject());
        }
    }
}

/// The blogging-platform objects (issue 18), as the desired model holds them.
fn rebac() -> State {
    use crate::model::{Derivation, Instance, Relation, ResourceRole, Tuple};
    let mut s = State::default();
    for key in ["Comment", "Post"] {
        s.insert(Obj::Resource(Resource {
            key: key.into(),
            name: key.into(),
            description: None,
            actions: BTreeMap::new(),
            attributes: None,
        }));
    }
    s.insert(Obj::Relation(Relation {
        resource: "Comment".into(),
        key: "parent".into(),
        subject: "Post".into(),
        name: "parent".into(),
        description: None,
    }));
    for (resource, key, extends) in [
        ("Comment", "Author", None),
        ("Comment", "Moderator", Some("Author")),
        ("Post", "Author", None),
    ] {
        s.insert(Obj::ResourceRole(ResourceRole {
            resource: resource.into(),
            key: key.into(),
            name: key.into(),
            description: None,
            permissions: BTreeSet::new(),
            extends: extends.into_iter().map(String::from).collect(),
            attributes: None,
            no_direct_roles_on_object: None,
        }));
    }
    s.insert(Obj::Derivation(Derivation {
        role: "Comment#Moderator".into(),
        source: "Post#Author".into(),
        relation: "parent".into(),
    }));
    for (resource, key) in [("Post", "post-1"), ("Comment", "comment-1")] {
        s.insert(Obj::Instance(Instance {
            resource: resource.into(),
            key: key.into(),
            tenant: DEFAULT_TENANT.into(),
            attributes: None,
        }));
    }
    s.insert(Obj::Tuple(Tuple {
        subject: "Post:post-1".into(),
        relation: "parent".into(),
        object: "Comment:comment-1".into(),
        tenant: DEFAULT_TENANT.into(),
    }));
    s.insert(Obj::User(User {
        key: "john".into(),
        email: None,
        first_name: None,
        last_name: None,
        attributes: None,
    }));
    s.insert(Obj::Assignment(Assignment {
        user: "john".into(),
        role: "Author".into(),
        tenant: DEFAULT_TENANT.into(),
        resource_instance: Some("Post:post-1".into()),
    }));
    s
}

#[test]
fn rebac_objects_are_created_in_dependency_order_and_their_cascades_followed() {
    let d = desired(rebac());
    let p = plan_all(&d, &State::default(), own(None), &PlanOptions::default()).unwrap();
    let order: Vec<String> = p.ops.iter().map(|o| o.subject()).collect();
    // Permit needs both resources before the relation, the relation and both roles before the
    // derivation, the instances before the tuple and the instance assignment.
    assert_eq!(
        order,
        [
            "PermitResource Comment",
            "PermitResource Post",
            "ResourceRelation Comment#parent",
            "ResourceRole Comment#Author",
            "ResourceRole Comment#Moderator",
            "ResourceRole Post#Author",
            "RoleDerivation Comment#Moderator/Post#Author/parent",
            "PermitUser john",
            "PermitResourceInstance Comment:comment-1",
            "PermitResourceInstance Post:post-1",
            "PermitRelationshipTuple Post:post-1/parent/Comment:comment-1",
            "RoleAssignment john/Author/default/Post:post-1",
        ]
    );
    let live = simulate(&State::default(), &p);
    let inv = owning(&live);
    let again = plan_all(&d, &live, own(Some(&inv)), &PlanOptions::default()).unwrap();
    assert!(again.ops.is_empty(), "{:?}", again.ops);

    // post-1 no longer declared: its deletion takes the tuple and John's role on it with it
    // (Permit deletes them with the instance), so neither costs a call of its own.
    let mut less = rebac();
    less.remove(Kind::PermitResourceInstance, "Post:post-1");
    less.remove(
        Kind::PermitRelationshipTuple,
        "Post:post-1/parent/Comment:comment-1",
    );
    less.remove(Kind::RoleAssignment, "john/Author/default/Post:post-1");
    let p = plan_all(&desired(less.clone()), &live, own(Some(&inv)), &prune()).unwrap();
    let cause = Some((Kind::PermitResourceInstance, "Post:post-1".to_string()));
    let deletions: Vec<(String, Option<crate::kinds::ObjectId>)> = p
        .ops
        .iter()
        .map(|o| (o.subject(), o.cascaded_by.clone()))
        .collect();
    assert_eq!(
        deletions,
        [
            (
                "RoleAssignment john/Author/default/Post:post-1".to_string(),
                cause.clone()
            ),
            (
                "PermitRelationshipTuple Post:post-1/parent/Comment:comment-1".to_string(),
                cause.clone()
            ),
            ("PermitResourceInstance Post:post-1".to_string(), None),
        ]
    );
    assert_eq!(simulate(&live, &p), less);

    // Someone else's tuple on post-1 is said, not deleted.
    let mut foreign = live.clone();
    foreign.insert(Obj::Tuple(crate::model::Tuple {
        subject: "Post:post-1".into(),
        relation: "parent".into(),
        object: "Comment:other".into(),
        tenant: DEFAULT_TENANT.into(),
    }));
    let p = plan_all(&desired(less), &foreign, own(Some(&inv)), &prune()).unwrap();
    let said: Vec<String> = p.warnings.iter().map(|w| w.to_string()).collect();
    assert!(
        said.iter().any(|w| w
            .contains("deleting PermitResourceInstance Post:post-1 also deletes 1 object(s)")
            && w.contains("PermitRelationshipTuple Post:post-1/parent/Comment:other")),
        "{said:?}"
    );

    // A relation's subject changed: no update in Permit, so a delete and a create, said.
    let mut moved = rebac();
    if let Some(r) = moved.relations.get_mut("Comment#parent") {
        r.subject = "Comment".into();
    }
    let p = plan_all(&desired(moved), &live, own(Some(&inv)), &prune()).unwrap();
    assert_eq!(p.ops.len(), 1, "{:?}", p.ops);
    assert_eq!(p.ops[0].action, Action::Update);
    assert!(
        p.warnings.iter().any(|w| matches!(
            w,
            Warning::Recreated {
                kind: Kind::ResourceRelation,
                ..
            }
        )),
        "{:?}",
        p.warnings
    );
    // Its tuple goes with it in Permit: the projection no longer holds it.
    let after = simulate(&live, &p);
    assert!(after.tuples.is_empty());
    assert!(after.derivations.is_empty());
}
