//! A user's roles on resource instances in a tenant: the direct ones, and those derived through
//! relationship tuples, recursively.
//!
//! Computed forwards from the direct roles (breadth first): each role held on `S:j` is looked up
//! as the source of derivations, and each tuple `(S:j, relation, T:k)` of that relation gives the
//! derived role on `T:k`. Every `(instance, role)` is entered once, so chains of any length end
//! and cycles in the tuple graph terminate; breadth first, the path kept for a role is a
//! shortest one. A derivation with `no_direct_roles_on_object` gives nothing on an object the
//! user holds a direct role on (permitio/permit-python `tests/test_rebac_e2e.py`: "permissions
//! from higher level blocked by condition on role derivation" and "… derivation rule").
//! Only the check's tenant counts: its assignments and its tuples (the same test: an account
//! admin in one tenant reaches nothing of another tenant's account).

use super::{Facts, Hop, Instance, Schema};
use std::collections::{HashMap, HashSet};
use std::hash::{Hash, Hasher};

#[derive(Debug, Clone, Copy)]
struct Held<'a> {
    on: Instance<'a>,
    role: &'a str,
    /// The entry this one was derived from and the relation that linked them; `None`: direct.
    from: Option<(usize, &'a str)>,
}

/// The instance roles of one user in one tenant, each with how it was reached.
#[derive(Debug, Default)]
pub struct InstanceGrants<'a> {
    held: Vec<Held<'a>>,
    seen: HashSet<(Instance<'a>, &'a str)>,
    /// By the instance's hash (lookups come with instances of any lifetime); entries are
    /// compared on the instance itself, so a collision costs a comparison.
    by_instance: HashMap<u64, Vec<usize>>,
}

fn hash(on: Instance<'_>) -> u64 {
    let mut h = std::hash::DefaultHasher::new();
    on.hash(&mut h);
    h.finish()
}

/// Every role `user` holds on instances in `tenant`, direct or derived.
pub fn instance_roles<'a>(
    schema: &'a impl Schema,
    facts: &'a impl Facts,
    user: &str,
    tenant: &str,
) -> InstanceGrants<'a> {
    let mut grants = InstanceGrants::default();
    let direct = facts.direct_instance_roles(user, tenant);
    let directly_on: HashSet<Instance<'a>> = direct.iter().map(|(on, _)| *on).collect();
    for (on, role) in direct {
        grants.add(on, role, None);
    }
    let mut next = 0;
    while next < grants.held.len() {
        let Held { on, role, .. } = grants.held[next];
        for derivation in schema.derived_from(on.resource, role) {
            for object in facts.objects(on, derivation.relation, tenant) {
                // A relation key names a relation of the object's resource; another resource may
                // have a relation of the same key from the same subject type.
                if object.resource != derivation.resource {
                    continue;
                }
                if derivation.no_direct_roles_on_object && directly_on.contains(&object) {
                    continue;
                }
                grants.add(object, derivation.role, Some((next, derivation.relation)));
            }
        }
        next += 1;
    }
    grants
}

impl<'a> InstanceGrants<'a> {
    fn add(&mut self, on: Instance<'a>, role: &'a str, from: Option<(usize, &'a str)>) {
        if !self.seen.insert((on, role)) {
            return;
        }
        self.by_instance
            .entry(hash(on))
            .or_default()
            .push(self.held.len());
        self.held.push(Held { on, role, from });
    }

    fn slots(&self, on: Instance<'_>) -> impl Iterator<Item = usize> {
        let slots = self
            .by_instance
            .get(&hash(on))
            .map_or(&[][..], Vec::as_slice);
        slots
            .iter()
            .copied()
            .filter(move |&i| self.held[i].on == on)
    }

    /// The roles held on `on`, direct ones first.
    pub fn roles_on(&self, on: Instance<'_>) -> impl Iterator<Item = &'a str> {
        self.slots(on).map(|i| self.held[i].role)
    }

    /// `on` as stored, when any role is held on it.
    pub fn instance(&self, on: Instance<'_>) -> Option<Instance<'a>> {
        self.slots(on).next().map(|i| self.held[i].on)
    }

    /// How `role` on `on` was reached: the hops from the direct role, empty when it is direct
    /// or not held.
    pub fn path(&self, on: Instance<'_>, role: &str) -> Vec<Hop<'a>> {
        let Some(start) = self.slots(on).find(|&i| self.held[i].role == role) else {
            return Vec::new();
        };
        let mut hops = Vec::new();
        let mut at = start;
        while let Some((from, relation)) = self.held[at].from {
            let source = self.held[from];
            hops.push(Hop {
                role: source.role,
                on: source.on,
                relation,
            });
            at = from;
        }
        hops.reverse();
        hops
    }

    /// Every `(instance, role)` held, in the order reached.
    pub fn iter(&self) -> impl Iterator<Item = (Instance<'a>, &'a str)> + '_ {
        self.held.iter().map(|h| (h.on, h.role))
    }

    /// Whether `role` on `on` is held directly (not derived).
    pub fn is_direct(&self, on: Instance<'_>, role: &str) -> bool {
        self.slots(on)
            .any(|i| self.held[i].role == role && self.held[i].from.is_none())
    }
}
