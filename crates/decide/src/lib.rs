//! How Permit's PDP decides `check(user, action, resource)`, written once and pure: RBAC (the
//! user's roles in the check's tenant) or ReBAC (the user's roles on the instance, direct or
//! derived through relationship tuples). Where the data lives is behind [`Schema`] and
//! [`Facts`], so the local PDP, access tests and plans' access diffs can all ask it (issues 18
//! and 20 move them onto it; today its callers are its tests).
//!
//! Sources for the semantics (cited where each rule is applied):
//! - Permit's generated policy decides `allow` as RBAC ∨ ABAC ∨ ReBAC (`permit/root.rego`,
//!   `policies.allow`); ABAC is not decided here yet.
//! - RBAC ignores the instance key: a tenant role granting `T:a` allows `a` on every `T:k` in
//!   the tenant (Permit docs, "RBAC"; permitio/permit-python `tests/test_rbac_e2e.py`).
//! - ReBAC: permitio/permit-python `tests/test_rebac_e2e.py` (Permit's live end-to-end test of the
//!   PDP) — direct instance roles, roles derived through `granted_to.users_with_role` over
//!   tuples, recursively (Account → Folder → Document), other tenants' instances not reached,
//!   and `when.no_direct_roles_on_object` blocking a derivation for a user who holds a direct
//!   role on the object. Its cases are this module's tests.

mod instance;
pub mod memory;
mod rebac;
#[cfg(test)]
mod tests;

pub use instance::{Instance, InstanceError};
pub use rebac::{InstanceGrants, instance_roles};

use std::collections::HashSet;

/// A role as a decision needs it: what it grants and which roles it extends. For a tenant role
/// the permissions are `resource:action`; for a resource role they are action keys of its
/// resource.
#[derive(Debug, Clone, Copy)]
pub struct RoleView<'a> {
    pub permissions: &'a [String],
    pub extends: &'a [String],
}

/// A role derivation read from its source's side: holding the source role on `S:j` gives `role`
/// on every `resource:k` that a tuple `(S:j, relation, resource:k)` links (Permit's
/// `granted_to.users_with_role` entry `{role, on_resource, linked_by_relation, when}` on the
/// derived role).
#[derive(Debug, Clone, Copy)]
pub struct Derivation<'a> {
    /// The derived role's resource (the tuple's object type).
    pub resource: &'a str,
    /// The derived role.
    pub role: &'a str,
    /// The relation linking the source instance (subject) to the object.
    pub relation: &'a str,
    /// `when.no_direct_roles_on_object`: the derivation gives nothing to a user holding any
    /// direct role on the object. The caller resolves the rule's own `when` and the block's.
    pub no_direct_roles_on_object: bool,
}

/// The policy: roles and derivations.
pub trait Schema {
    fn tenant_role(&self, key: &str) -> Option<RoleView<'_>>;
    fn resource_role(&self, resource: &str, key: &str) -> Option<RoleView<'_>>;
    /// Derivations whose source is `role` on `resource`.
    fn derived_from(&self, resource: &str, role: &str) -> Vec<Derivation<'_>>;
}

/// The data: role assignments and relationship tuples.
pub trait Facts {
    /// Keys of the tenant roles `user` holds in `tenant`.
    fn tenant_roles(&self, user: &str, tenant: &str) -> Vec<&str>;
    /// The instance roles `user` holds directly, on instances of `tenant`.
    fn direct_instance_roles(&self, user: &str, tenant: &str) -> Vec<(Instance<'_>, &str)>;
    /// The objects `o` of the tuples `(subject, relation, o)` in `tenant`.
    fn objects(&self, subject: Instance<'_>, relation: &str, tenant: &str) -> Vec<Instance<'_>>;
}

/// One check, as the PDP's `/allowed` takes it.
#[derive(Debug, Clone, Copy)]
pub struct Check<'q> {
    pub user: &'q str,
    pub action: &'q str,
    pub resource: &'q str,
    /// The instance key; `None` is a type-level check (RBAC only).
    pub key: Option<&'q str>,
    pub tenant: &'q str,
}

/// Why a check is allowed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Grant<'a> {
    /// RBAC: a tenant role the user holds (the role itself or one it extends grants it).
    TenantRole { role: &'a str },
    /// ReBAC: a role on the instance, held directly (`path` empty) or derived: `path` runs from
    /// the directly held role to the one before `role`.
    InstanceRole {
        role: &'a str,
        on: Instance<'a>,
        path: Vec<Hop<'a>>,
    },
}

/// One step of a derivation: `role` held on `on`, linked to the next instance by `relation`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hop<'a> {
    pub role: &'a str,
    pub on: Instance<'a>,
    pub relation: &'a str,
}

/// A decision and, when allowed, one grant that allows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision<'a> {
    pub allow: bool,
    pub grant: Option<Grant<'a>>,
}

impl Decision<'_> {
    fn deny() -> Self {
        Decision {
            allow: false,
            grant: None,
        }
    }
}

/// The permissions of `roles`, following `extends` transitively (cycles end).
pub fn expand<'a>(
    roles: impl IntoIterator<Item = &'a str>,
    lookup: impl Fn(&str) -> Option<RoleView<'a>>,
) -> HashSet<&'a str> {
    let mut permissions = HashSet::new();
    let mut seen = HashSet::new();
    let mut stack: Vec<&str> = roles.into_iter().collect();
    while let Some(key) = stack.pop() {
        if !seen.insert(key) {
            continue;
        }
        if let Some(role) = lookup(key) {
            permissions.extend(role.permissions.iter().map(String::as_str));
            stack.extend(role.extends.iter().map(String::as_str));
        }
    }
    permissions
}

/// Whether a role (or a role it extends) grants `permission`.
fn grants<'a>(
    role: &'a str,
    permission: &str,
    lookup: impl Fn(&str) -> Option<RoleView<'a>>,
) -> bool {
    expand([role], lookup).contains(permission)
}

/// RBAC ∨ ReBAC, as Permit's `policies.allow`.
pub fn decide<'a>(schema: &'a impl Schema, facts: &'a impl Facts, check: &Check) -> Decision<'a> {
    let rbac = decide_rbac(schema, facts, check);
    if rbac.allow {
        return rbac;
    }
    match check.key {
        Some(key) => decide_rebac(schema, facts, check, key),
        None => Decision::deny(),
    }
}

/// RBAC: a tenant role held in the check's tenant grants `resource:action`; the key is ignored.
pub fn decide_rbac<'a>(
    schema: &'a impl Schema,
    facts: &'a impl Facts,
    check: &Check,
) -> Decision<'a> {
    let wanted = format!("{}:{}", check.resource, check.action);
    facts
        .tenant_roles(check.user, check.tenant)
        .into_iter()
        .find(|role| grants(role, &wanted, |k| schema.tenant_role(k)))
        .map_or_else(Decision::deny, |role| Decision {
            allow: true,
            grant: Some(Grant::TenantRole { role }),
        })
}

/// ReBAC: a role on `resource:key`, direct or derived, whose permissions (with the resource
/// role's `extends`) include the action.
pub fn decide_rebac<'a>(
    schema: &'a impl Schema,
    facts: &'a impl Facts,
    check: &Check,
    key: &str,
) -> Decision<'a> {
    let held = instance_roles(schema, facts, check.user, check.tenant);
    let on = Instance::new(check.resource, key);
    let found = held.roles_on(on).find(|role| {
        grants(role, check.action, |k| {
            schema.resource_role(check.resource, k)
        })
    });
    match found {
        Some(role) => Decision {
            allow: true,
            grant: Some(Grant::InstanceRole {
                role,
                on: held.instance(on).expect("held roles are on held instances"),
                path: held.path(on, role),
            }),
        },
        None => Decision::deny(),
    }
}
