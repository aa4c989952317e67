//! The planner on arbitrary desired, live and owned states (keys from small alphabets, so they
//! collide), every mode and inventory condition. Checks the properties the planner promises:
//! applying the plan gives the desired state, the plan on the result is empty, nothing outside
//! the inventory is deleted (owned mode), no orphan or `default` tenant is ever deleted, objects
//! neither declared nor deleted are left as they were, and a missing or untrusted inventory
//! deletes nothing.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use permit_sync::desired::Desired;
use permit_sync::inventory::{Entry, Inventory, Loaded};
use permit_sync::kinds::Kind;
use permit_sync::model::{
    Action as Act, Assignment, Obj, Resource, Role, SYNCED_KINDS, State, Tenant, User,
};
use permit_sync::plan::{Action, Mode, PlanOptions, diff};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

const KEYS: [&str; 5] = ["a", "b", "c", "default", "jane@example.com"];
const TEXTS: [&str; 3] = ["x", "y", "Zz"];
const ACTIONS: [&str; 3] = ["read", "write", "delete"];

fn key(i: u8) -> String {
    KEYS[i as usize % KEYS.len()].to_string()
}
fn text(i: u8) -> String {
    TEXTS[i as usize % TEXTS.len()].to_string()
}

#[derive(Arbitrary, Debug)]
enum O {
    Resource {
        key: u8,
        name: u8,
        desc: Option<u8>,
        actions: Vec<u8>,
    },
    Role {
        key: u8,
        name: u8,
        desc: Option<u8>,
        perms: Vec<(u8, u8)>,
        extends: Vec<u8>,
        attrs: Option<Vec<(u8, u8)>>,
    },
    Tenant {
        key: u8,
        name: u8,
        desc: Option<u8>,
        attrs: Option<Vec<(u8, u8)>>,
    },
    User {
        key: u8,
        email: Option<u8>,
        first: Option<u8>,
        last: Option<u8>,
        attrs: Option<Vec<(u8, u8)>>,
    },
    Assignment {
        user: u8,
        role: u8,
        tenant: u8,
    },
}

#[derive(Arbitrary, Debug)]
enum InventoryCondition {
    Trusted,
    Missing,
    Untrusted,
}

#[derive(Arbitrary, Debug)]
struct Input {
    desired: Vec<O>,
    live: Vec<O>,
    /// (kind, key, orphan)
    owned: Vec<(u8, u8, bool)>,
    orphans: Vec<(u8, u8)>,
    inventory: InventoryCondition,
    prune: bool,
    mirror: bool,
    allow_empty: bool,
}

fn attrs(a: &Option<Vec<(u8, u8)>>) -> Option<BTreeMap<String, Value>> {
    a.as_ref().map(|kv| {
        kv.iter()
            .map(|(k, v)| {
                (
                    ["plan", "tier"][*k as usize % 2].to_string(),
                    Value::from(*v % 3),
                )
            })
            .collect()
    })
}

fn state(objs: &[O]) -> State {
    let mut s = State::default();
    for o in objs {
        s.insert(match o {
            O::Resource {
                key: k,
                name,
                desc,
                actions,
            } => Obj::Resource(Resource {
                key: key(*k),
                name: text(*name),
                description: desc.map(text),
                actions: actions
                    .iter()
                    .map(|a| {
                        let a = ACTIONS[*a as usize % ACTIONS.len()];
                        (
                            a.to_string(),
                            Act {
                                name: a.to_string(),
                                description: None,
                                attributes: None,
                            },
                        )
                    })
                    .collect(),
                attributes: None,
            }),
            O::Role {
                key: k,
                name,
                desc,
                perms,
                extends,
                attrs: a,
            } => Obj::Role(Role {
                key: key(*k),
                name: text(*name),
                description: desc.map(text),
                permissions: perms
                    .iter()
                    .map(|(r, a)| format!("{}:{}", key(*r), ACTIONS[*a as usize % ACTIONS.len()]))
                    .collect(),
                extends: extends
                    .iter()
                    .map(|e| key(*e))
                    .filter(|e| *e != key(*k))
                    .collect(),
                attributes: attrs(a),
            }),
            O::Tenant {
                key: k,
                name,
                desc,
                attrs: a,
            } => Obj::Tenant(Tenant {
                key: key(*k),
                name: text(*name),
                description: desc.map(text),
                attributes: attrs(a),
            }),
            O::User {
                key: k,
                email,
                first,
                last,
                attrs: a,
            } => Obj::User(User {
                key: key(*k),
                email: email.map(|e| format!("{}@example.com", text(e))),
                first_name: first.map(text),
                last_name: last.map(text),
                attributes: attrs(a),
            }),
            O::Assignment { user, role, tenant } => Obj::Assignment(Assignment {
                user: key(*user),
                role: key(*role),
                tenant: key(*tenant),
                resource_instance: None,
            }),
        });
    }
    s
}

fn kind(i: u8) -> Kind {
    SYNCED_KINDS[i as usize % SYNCED_KINDS.len()]
}

/// Every declared object is in `have` with no field difference.
fn satisfies(want: &State, have: &State) -> Result<(), String> {
    for kind in SYNCED_KINDS {
        for key in want.keys(kind) {
            let w = want.get(kind, &key).unwrap();
            match have.get(kind, &key) {
                None => return Err(format!("{kind} {key} missing")),
                Some(h) if !diff::diff(&w, &h).is_empty() => {
                    return Err(format!("{kind} {key} differs: {:?}", diff::diff(&w, &h)));
                }
                Some(_) => {}
            }
        }
    }
    Ok(())
}

fuzz_target!(|input: Input| {
    let want = state(&input.desired);
    let live = state(&input.live);
    let mut inv = Inventory::new(None);
    // Keys for the inventory come from live objects or the alphabet (some owned keys are gone).
    for (k, key_i, orphan) in &input.owned {
        inv.insert(
            kind(*k),
            key(*key_i),
            Entry {
                hash: String::new(),
                orphan: *orphan,
            },
        );
    }
    let mut d = Desired {
        state: want.clone(),
        ..Default::default()
    };
    for (k, key_i) in &input.orphans {
        let (kind, key) = (kind(*k), key(*key_i));
        if want.get(kind, &key).is_some() {
            d.orphans.insert((kind, key));
        }
    }
    let loaded = match input.inventory {
        InventoryCondition::Trusted => Loaded::Ok(inv.clone()),
        InventoryCondition::Missing => Loaded::Missing,
        InventoryCondition::Untrusted => Loaded::Unusable("inventory x is corrupt".into()),
    };
    let options = PlanOptions {
        prune: input.prune,
        mode: if input.mirror {
            Mode::Mirror
        } else {
            Mode::Owned
        },
        allow_empty: input.allow_empty,
        max_deletions: None,
    };
    let plan = match permit_sync::engine::plan_against(&d, &live, &loaded, &options) {
        Ok(p) => p,
        Err(e) => {
            // The only refusal without --max-deletions: prune of an empty source.
            assert!(
                options.prunes() && want.is_empty() && !input.allow_empty,
                "{e}"
            );
            return;
        }
    };
    // Deterministic.
    let again = permit_sync::engine::plan_against(&d, &live, &loaded, &options).unwrap();
    assert_eq!(plan, again);

    let trusted = loaded.trusted();
    let deleted: BTreeSet<(Kind, String)> = plan
        .ops
        .iter()
        .filter(|o| o.action == Action::Delete)
        .map(|o| (o.kind, o.key.clone()))
        .collect();
    for (kind, key) in &deleted {
        assert!(
            want.get(*kind, key).is_none(),
            "deletes declared {kind} {key}"
        );
        assert!(
            live.get(*kind, key).is_some(),
            "deletes absent {kind} {key}"
        );
        assert!(
            !(*kind == Kind::PermitTenant && key == "default"),
            "deletes the default tenant"
        );
        let entry = trusted.and_then(|i| i.get(*kind, key));
        assert!(
            !entry.is_some_and(|e| e.orphan),
            "deletes orphan {kind} {key}"
        );
        if !input.mirror {
            assert!(input.prune, "deletes {kind} {key} without prune");
            assert!(
                entry.is_some(),
                "deletes {kind} {key}, not in the trusted inventory"
            );
        }
    }

    // Applying the plan gives the desired state.
    let mut after = live.clone();
    plan.clone().project(&mut after, |_| true);
    if let Err(e) = satisfies(&want, &after) {
        panic!("after the plan: {e}");
    }
    // Undeclared objects are deleted (or cascaded with their user or tenant) or left as they were.
    for kind in SYNCED_KINDS {
        for key in live.keys(kind) {
            if want.get(kind, &key).is_some() || deleted.contains(&(kind, key.clone())) {
                continue;
            }
            let before = live.get(kind, &key);
            let now = after.get(kind, &key);
            let cascaded = match &before {
                Some(Obj::Assignment(a)) => {
                    deleted.contains(&(Kind::PermitUser, a.user.clone()))
                        || deleted.contains(&(Kind::PermitTenant, a.tenant.clone()))
                }
                _ => false,
            };
            assert!(
                cascaded || now == before,
                "undeclared {kind} {key} changed: {before:?} -> {now:?}"
            );
        }
    }

    // Planning again on the result, with the inventory the apply wrote, changes nothing.
    let before_inv = plan.inventory_before(trusted, None);
    let after_inv = plan.inventory_after(before_inv.clone(), |_| true);
    let replan =
        permit_sync::engine::plan_against(&d, &after, &Loaded::Ok(after_inv.clone()), &options)
            .unwrap();
    assert!(replan.ops.is_empty(), "second plan: {:?}", replan.ops);
    for kind in SYNCED_KINDS {
        for key in want.keys(kind) {
            assert!(
                after_inv.contains(kind, &key),
                "declared {kind} {key} not owned"
            );
        }
    }
});
