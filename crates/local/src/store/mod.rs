//! The local Permit's data: one environment's users, tenants, role assignments, resources and roles,
//! and ReBAC's resource roles, relations, derivations, resource instances, relationship tuples and
//! instance role assignments, with the indexes that keep listing and decisions proportional to
//! what they return.
//!
//! Every write checks first and changes after, so a failed call (404, 409, 422) changes nothing, and
//! a bulk call is all-or-nothing.

mod assignments;
mod decisions;
mod instance_assignments;
mod instances;
mod model;
mod relations;
mod resource_roles;
mod schema;
mod tenants;
mod tuples;
mod users;

pub use decisions::InstancePermissions;
pub use instance_assignments::Listed;

pub use model::*;

use super::error::{ApiError, ApiResult};
use super::input::Page;
use super::table::{IdSet, Row, Table};
use chrono::{DateTime, Utc};
use std::collections::{HashMap, HashSet};
use uuid::Uuid;

#[derive(Debug)]
pub struct Store {
    pub scope: Scope,
    pub users: Table<User>,
    pub tenants: Table<Tenant>,
    pub resources: Table<Resource>,
    pub roles: Table<Role>,
    pub assignments: Table<Assignment>,
    pub resource_roles: Table<ResourceRole>,
    pub relations: Table<Relation>,
    pub instances: Table<Instance>,
    pub tuples: Table<Tuple>,
    pub instance_assignments: Table<InstanceAssignment>,
    by_user: HashMap<Uuid, IdSet>,
    by_tenant: HashMap<Uuid, IdSet>,
    by_role: HashMap<Uuid, IdSet>,
    /// Instance assignments by user and by instance; tuples by subject and by object instance.
    ia_by_user: HashMap<Uuid, IdSet>,
    ia_by_instance: HashMap<Uuid, IdSet>,
    tuples_by_subject: HashMap<Uuid, IdSet>,
    tuples_by_object: HashMap<Uuid, IdSet>,
    /// Bumped by every successful write; persistence saves when it moves.
    pub generation: u64,
}

/// Takes `id` out of `owner`'s set in a secondary index (assignments by user, tuples by
/// subject, ...), dropping the set once empty.
fn unindex(index: &mut HashMap<Uuid, IdSet>, owner: Uuid, id: Uuid) {
    if let Some(set) = index.get_mut(&owner) {
        set.remove(id);
        if set.is_empty() {
            index.remove(&owner);
        }
    }
}

/// Whether `role` is reachable from `parents` through `extends_of` (a role's own parents): the
/// cycle `role` extending `parents` would make. Tenant roles and resource roles alike.
fn extends_reaches<'a>(
    role: &str,
    parents: &'a [String],
    extends_of: impl Fn(&str) -> Option<&'a [String]>,
) -> bool {
    let mut stack: Vec<&str> = parents.iter().map(String::as_str).collect();
    let mut seen = HashSet::new();
    while let Some(k) = stack.pop() {
        if k == role {
            return true;
        }
        if seen.insert(k)
            && let Some(next) = extends_of(k)
        {
            stack.extend(next.iter().map(String::as_str));
        }
    }
    false
}

/// Microsecond precision, as Permit's API writes timestamps (some ISO parsers reject nanoseconds).
fn now() -> DateTime<Utc> {
    use chrono::SubsecRound;
    Utc::now().trunc_subsecs(6)
}

impl Store {
    /// A fresh environment: no data but the `default` tenant.
    pub fn new(scope: Scope) -> Self {
        let mut store = Store {
            scope,
            users: Table::default(),
            tenants: Table::default(),
            resources: Table::default(),
            roles: Table::default(),
            assignments: Table::default(),
            resource_roles: Table::default(),
            relations: Table::default(),
            instances: Table::default(),
            tuples: Table::default(),
            instance_assignments: Table::default(),
            by_user: HashMap::new(),
            by_tenant: HashMap::new(),
            by_role: HashMap::new(),
            ia_by_user: HashMap::new(),
            ia_by_instance: HashMap::new(),
            tuples_by_subject: HashMap::new(),
            tuples_by_object: HashMap::new(),
            generation: 0,
        };
        store.insert_default_tenant();
        store
    }

    fn insert_default_tenant(&mut self) {
        let t = now();
        self.tenants.insert(Tenant {
            id: Uuid::new_v4(),
            key: DEFAULT_TENANT.into(),
            name: "Default Tenant".into(),
            description: None,
            attributes: Attrs::new(),
            attributes_set: false,
            created_at: t,
            updated_at: t,
            last_action_at: t,
        });
    }

    /// Empties the environment (keeps its scope), back to the `default` tenant alone.
    pub fn clear(&mut self) {
        let scope = self.scope.clone();
        let generation = self.generation + 1;
        *self = Store::new(scope);
        self.generation = generation;
    }

    pub fn snapshot(&self, api_key: &str) -> Snapshot {
        Snapshot {
            format: SNAPSHOT_FORMAT,
            scope: self.scope.clone(),
            api_key: api_key.to_string(),
            users: self.users.rows().to_vec(),
            tenants: self.tenants.rows().to_vec(),
            resources: self.resources.rows().to_vec(),
            roles: self.roles.rows().to_vec(),
            assignments: self.assignments.rows().to_vec(),
            resource_roles: self.resource_roles.rows().to_vec(),
            relations: self.relations.rows().to_vec(),
            instances: self.instances.rows().to_vec(),
            tuples: self.tuples.rows().to_vec(),
            instance_assignments: self.instance_assignments.rows().to_vec(),
        }
    }

    /// Rebuilds a store (and its indexes) from a snapshot, dropping rows that point nowhere.
    pub fn from_snapshot(snap: Snapshot) -> Self {
        let mut store = Store::new(snap.scope.clone());
        store.users = Table::from_rows(snap.users);
        store.tenants = Table::from_rows(snap.tenants);
        store.resources = Table::from_rows(snap.resources);
        store.roles = Table::from_rows(snap.roles);
        store.load_rebac(
            snap.resource_roles,
            snap.relations,
            snap.instances,
            snap.tuples,
            snap.instance_assignments,
        );
        for a in snap.assignments {
            let dangling = store.users.get_by_id(a.user_id).is_none()
                || store.roles.get_by_id(a.role_id).is_none()
                || store.tenants.get_by_id(a.tenant_id).is_none();
            if !dangling && store.assignments.position_of_key(&a.key()).is_none() {
                store.index_assignment(&a);
                store.assignments.insert(a);
            }
        }
        store
    }

    fn touch(&mut self) {
        self.generation += 1;
    }

    /// Objects created again under a key that was deleted before (`user jane`, `role assignment
    /// jane/viewer/acme`, `resource instance Post:p1`), one entry per re-creation: a sync that never deletes what it declares
    /// leaves this empty.
    pub fn recreated(&self) -> Vec<String> {
        let name = |key: Option<String>, id: Uuid| key.unwrap_or_else(|| id.to_string());
        let mut out = Vec::new();
        out.extend(
            self.resources
                .recreated()
                .iter()
                .map(|k| format!("resource {k}")),
        );
        out.extend(self.roles.recreated().iter().map(|k| format!("role {k}")));
        out.extend(
            self.tenants
                .recreated()
                .iter()
                .map(|k| format!("tenant {k}")),
        );
        out.extend(self.users.recreated().iter().map(|k| format!("user {k}")));
        for (u, r, t) in self.assignments.recreated() {
            out.push(format!(
                "role assignment {}/{}/{}",
                name(self.users.get_by_id(*u).map(|x| x.key.clone()), *u),
                name(self.roles.get_by_id(*r).map(|x| x.key.clone()), *r),
                name(self.tenants.get_by_id(*t).map(|x| x.key.clone()), *t),
            ));
        }
        let pairs = [
            ("resource role", self.resource_roles.recreated(), "#"),
            ("relation", self.relations.recreated(), ":"),
            ("resource instance", self.instances.recreated(), ":"),
        ];
        for (what, keys, sep) in pairs {
            out.extend(keys.iter().map(|(a, b)| format!("{what} {a}{sep}{b}")));
        }
        let instance =
            |id: &Uuid| name(self.instances.get_by_id(*id).map(Store::instance_name), *id);
        for (s, rel, o) in self.tuples.recreated() {
            out.push(format!(
                "relationship tuple {} {rel} {}",
                instance(s),
                instance(o)
            ));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::input::Page;

    fn page() -> Page {
        Page {
            page: 1,
            per_page: 100,
        }
    }

    impl Store {
        fn allowed_via(&self, roles: &[&str], perm: &str) -> bool {
            self.effective_permissions(roles.iter().copied())
                .contains(perm)
        }
    }

    fn blog() -> Store {
        let mut s = Store::new(Scope::new());
        s.create_resource(ResourceInput {
            key: "post".into(),
            name: "Post".into(),
            actions: ["read", "update"]
                .iter()
                .map(|k| ActionInput {
                    key: k.to_string(),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        })
        .unwrap();
        s.create_role(RoleInput {
            key: "viewer".into(),
            name: "Viewer".into(),
            permissions: vec!["post:read".into()],
            ..Default::default()
        })
        .unwrap();
        s.create_role(RoleInput {
            key: "editor".into(),
            name: "Editor".into(),
            permissions: vec!["post:update".into()],
            extends: vec!["viewer".into()],
            ..Default::default()
        })
        .unwrap();
        s.create_user(UserInput {
            key: "jane@example.com".into(),
            ..Default::default()
        })
        .unwrap();
        s
    }

    fn r(user: &str, role: &str, tenant: &str) -> AssignmentRef {
        AssignmentRef {
            user: user.into(),
            role: role.into(),
            tenant: Some(tenant.into()),
            resource_instance: None,
        }
    }

    #[test]
    fn rbac_with_extends_and_unassign() {
        let mut s = blog();
        let jane = "jane@example.com";
        assert!(!s.allowed(jane, "read", "post", "default"));
        s.assign(&r(jane, "editor", "default")).unwrap();
        assert!(s.allowed(jane, "read", "post", "default"));
        assert!(s.allowed(jane, "update", "post", "default"));
        assert!(!s.allowed(jane, "delete", "post", "default"));
        assert_eq!(
            s.assign(&r(jane, "editor", "default"))
                .unwrap_err()
                .status(),
            409
        );
        s.unassign(&r(jane, "editor", "default")).unwrap();
        assert!(!s.allowed(jane, "read", "post", "default"));
        assert_eq!(
            s.unassign(&r(jane, "editor", "default"))
                .unwrap_err()
                .status(),
            404
        );
    }

    #[test]
    fn deletes_cascade() {
        let mut s = blog();
        s.assign(&r("jane@example.com", "viewer", "default"))
            .unwrap();
        s.delete_resource("post").unwrap();
        assert!(s.roles.get("viewer").unwrap().permissions.is_empty());
        s.delete_user("jane@example.com").unwrap();
        assert_eq!(s.assignments.len(), 0);
        assert!(s.by_user.is_empty() && s.by_role.is_empty() && s.by_tenant.is_empty());
    }

    #[test]
    fn extends_cycle_is_refused() {
        let mut s = blog();
        let err = s
            .patch_role(
                "viewer",
                RolePatch {
                    extends: Some(vec!["editor".into()]),
                    ..Default::default()
                },
            )
            .unwrap_err();
        assert_eq!(err.status(), 400);
    }

    #[test]
    fn bulk_roles_refuse_a_cycle_inside_the_batch() {
        let mut s = blog();
        let role = |key: &str, extends: &str| RoleInput {
            key: key.into(),
            name: key.into(),
            extends: vec![extends.into()],
            ..Default::default()
        };
        let err = s
            .bulk_upsert_roles(vec![role("a", "b"), role("b", "a")])
            .unwrap_err();
        assert_eq!(err.status(), 400);
        assert!(s.roles.get("a").is_none(), "nothing written");
        s.bulk_upsert_roles(vec![role("a", "viewer"), role("b", "a")])
            .unwrap();
        assert!(s.allowed_via(&["b"], "post:read"));
    }

    /// The blogging-platform template's ReBAC part, written through the store.
    fn blogging() -> Store {
        let mut s = Store::new(Scope::new());
        for key in ["Post", "Comment"] {
            let actions = ["read", "delete"].map(|k| ActionInput {
                key: k.into(),
                ..Default::default()
            });
            s.create_resource(ResourceInput {
                key: key.into(),
                name: key.into(),
                actions: actions.into(),
                ..Default::default()
            })
            .unwrap();
        }
        for (resource, role) in [("Post", "Author"), ("Comment", "Moderator")] {
            s.create_resource_role(
                resource,
                ResourceRoleInput {
                    key: role.into(),
                    name: role.into(),
                    permissions: vec!["read".into(), "delete".into()],
                    ..Default::default()
                },
            )
            .unwrap();
        }
        s.create_relation(
            "Comment",
            RelationInput {
                key: "parent".into(),
                name: "parent".into(),
                subject_resource: "Post".into(),
                ..Default::default()
            },
        )
        .unwrap();
        let rule = DerivationRule {
            role: "Author".into(),
            on_resource: "Post".into(),
            linked_by_relation: "parent".into(),
            no_direct_roles_on_object: false,
        };
        s.add_derivation("Comment", "Moderator", rule).unwrap();
        s.create_user(UserInput {
            key: "john".into(),
            ..Default::default()
        })
        .unwrap();
        let mut a = r("john", "Author", "default");
        a.resource_instance = Some("Post:post-1".into());
        s.assign_any(&a).unwrap();
        let tuple = TupleRef {
            subject: "Post:post-1".into(),
            relation: "parent".into(),
            object: "Comment:comment-1".into(),
            tenant: None,
        };
        s.create_tuple(&tuple).unwrap();
        s
    }

    /// The PDP's delayed view and `--state` copy the store through a snapshot: the ReBAC rows,
    /// their indexes and so the decisions survive it.
    #[test]
    fn rebac_rows_survive_a_snapshot() {
        let s = blogging();
        let john =
            |s: &Store| s.allowed_on("john", "delete", "Comment", Some("comment-1"), "default");
        assert!(john(&s));
        let copy = Store::from_snapshot(s.snapshot("key"));
        assert!(john(&copy));
        assert!(copy.recreated().is_empty());
        assert_eq!(
            (
                copy.instances.len(),
                copy.tuples.len(),
                copy.instance_assignments.len()
            ),
            (2, 1, 1)
        );
        let mut copy = copy;
        copy.delete_instance("Post:post-1").unwrap();
        assert!(!john(&copy));
        assert!(copy.tuples.is_empty() && copy.instance_assignments.is_empty());
        assert!(copy.tuples_by_subject.is_empty() && copy.ia_by_user.is_empty());
        copy.create_instance(InstanceInput {
            key: "post-1".into(),
            resource: "Post".into(),
            tenant: "default".into(),
            attributes: None,
        })
        .unwrap();
        assert_eq!(copy.recreated(), ["resource instance Post:post-1"]);
    }

    /// A snapshot whose rows point at what it lacks loads without them.
    #[test]
    fn dangling_rebac_rows_are_dropped_on_load() {
        let s = blogging();
        let mut snap = s.snapshot("key");
        snap.resources.retain(|r| r.key != "Post");
        let copy = Store::from_snapshot(snap);
        assert_eq!(copy.resource_roles.len(), 1, "Post#Author dropped");
        assert!(
            copy.relations.is_empty(),
            "Comment.parent's subject is gone"
        );
        assert_eq!(copy.instances.len(), 1, "Comment:comment-1 stays");
        assert!(copy.tuples.is_empty() && copy.instance_assignments.is_empty());
    }

    #[test]
    fn filtered_listing_uses_indexes() {
        let mut s = blog();
        for i in 0..50 {
            s.create_user(UserInput {
                key: format!("u{i}"),
                ..Default::default()
            })
            .unwrap();
            s.assign(&r(&format!("u{i}"), "viewer", "default")).unwrap();
        }
        s.assign(&r("u3", "editor", "default")).unwrap();
        let f = AssignmentFilter {
            users: vec!["u3".into()],
            ..Default::default()
        };
        assert_eq!(s.list_assignments(&f, page()).1, 2);
        let f = AssignmentFilter {
            users: vec!["u3".into(), "u4".into()],
            roles: vec!["viewer".into()],
            ..Default::default()
        };
        assert_eq!(s.list_assignments(&f, page()).1, 2);
        let f = AssignmentFilter {
            roles: vec!["viewer".into()],
            ..Default::default()
        };
        let (rows, total) = s.list_assignments(
            &f,
            Page {
                page: 2,
                per_page: 20,
            },
        );
        assert_eq!((rows.len(), total), (20, 50));
        let f = AssignmentFilter {
            users: vec!["u3".into(), "u3".into()],
            ..Default::default()
        };
        assert_eq!(
            s.list_assignments(&f, page()).1,
            2,
            "a repeated value counts once"
        );
        let f = AssignmentFilter {
            tenants: vec!["nope".into()],
            ..Default::default()
        };
        assert_eq!(s.list_assignments(&f, page()).1, 0);
        assert_eq!(s.list_users(None, Some("editor"), page()).1, 1);
    }
}
