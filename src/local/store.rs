//! The local Permit's data: one environment's users, tenants, role assignments, resources and roles,
//! with the indexes that keep listing and decisions proportional to what they return.
//!
//! Every write checks first and changes after, so a failed call (404, 409, 422) changes nothing, and
//! a bulk call is all-or-nothing.

use super::error::{ApiError, ApiResult};
use super::table::{IdSet, Row, Table};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::{HashMap, HashSet};
use uuid::Uuid;

pub type Attrs = Map<String, Value>;

/// The tenant every environment has from the start.
pub const DEFAULT_TENANT: &str = "default";

/// Who the API key belongs to: one organization, project and environment.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Scope {
    pub organization_id: Uuid,
    pub project_id: Uuid,
    pub environment_id: Uuid,
    pub project_key: String,
    pub environment_key: String,
}

impl Scope {
    pub fn new() -> Self {
        Scope {
            organization_id: Uuid::new_v4(),
            project_id: Uuid::new_v4(),
            environment_id: Uuid::new_v4(),
            project_key: "default".into(),
            environment_key: "local".into(),
        }
    }
}

impl Default for Scope {
    fn default() -> Self {
        Scope::new()
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct User {
    pub id: Uuid,
    pub key: String,
    pub email: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub attributes: Attrs,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Tenant {
    pub id: Uuid,
    pub key: String,
    pub name: String,
    pub description: Option<String>,
    pub attributes: Attrs,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub last_action_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Action {
    pub id: Uuid,
    pub key: String,
    pub name: String,
    pub description: Option<String>,
    pub attributes: Option<Attrs>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Resource {
    pub id: Uuid,
    pub key: String,
    pub name: String,
    pub description: Option<String>,
    pub urn: Option<String>,
    pub actions: Vec<Action>,
    pub attributes: Option<Value>,
    pub type_attributes: Option<Value>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Resource {
    pub fn action(&self, ident: &str) -> Option<&Action> {
        self.actions
            .iter()
            .find(|a| a.key == ident || a.id.to_string() == ident)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Role {
    pub id: Uuid,
    pub key: String,
    pub name: String,
    pub description: Option<String>,
    /// `resource:action` strings, in the order they were granted.
    pub permissions: Vec<String>,
    /// Keys of the roles whose permissions this role inherits.
    pub extends: Vec<String>,
    pub attributes: Option<Attrs>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Assignment {
    pub id: Uuid,
    pub user_id: Uuid,
    pub role_id: Uuid,
    pub tenant_id: Uuid,
    pub created_at: DateTime<Utc>,
}

macro_rules! keyed_row {
    ($($t:ty),*) => {$(
        impl Row for $t {
            type Key = String;
            fn key(&self) -> String { self.key.clone() }
            fn id(&self) -> Uuid { self.id }
        }
    )*};
}
keyed_row!(User, Tenant, Resource, Role);

impl Row for Assignment {
    type Key = (Uuid, Uuid, Uuid);
    fn key(&self) -> Self::Key {
        (self.user_id, self.role_id, self.tenant_id)
    }
    fn id(&self) -> Uuid {
        self.id
    }
}

// ---- inputs (already validated for shape by the API layer) ----

#[derive(Debug, Clone, Default)]
pub struct UserInput {
    pub key: String,
    pub email: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub attributes: Attrs,
}

/// A PATCH: `Some` for each field sent, which replaces the stored value entirely.
#[derive(Debug, Clone, Default)]
pub struct UserPatch {
    pub email: Option<Option<String>>,
    pub first_name: Option<Option<String>>,
    pub last_name: Option<Option<String>>,
    pub attributes: Option<Attrs>,
}

#[derive(Debug, Clone, Default)]
pub struct TenantInput {
    pub key: String,
    pub name: String,
    pub description: Option<String>,
    pub attributes: Attrs,
}

#[derive(Debug, Clone, Default)]
pub struct TenantPatch {
    pub name: Option<String>,
    pub description: Option<Option<String>>,
    pub attributes: Option<Attrs>,
}

#[derive(Debug, Clone, Default)]
pub struct ActionInput {
    pub key: String,
    pub name: Option<String>,
    pub description: Option<String>,
    pub attributes: Option<Attrs>,
}

#[derive(Debug, Clone, Default)]
pub struct ResourceInput {
    pub key: String,
    pub name: String,
    pub description: Option<String>,
    pub urn: Option<String>,
    pub actions: Vec<ActionInput>,
    pub attributes: Option<Value>,
    pub type_attributes: Option<Value>,
}

#[derive(Debug, Clone, Default)]
pub struct ResourcePatch {
    pub name: Option<String>,
    pub description: Option<Option<String>>,
    pub urn: Option<Option<String>>,
    pub actions: Option<Vec<ActionInput>>,
    pub attributes: Option<Option<Value>>,
    pub type_attributes: Option<Option<Value>>,
}

#[derive(Debug, Clone, Default)]
pub struct RoleInput {
    pub key: String,
    pub name: String,
    pub description: Option<String>,
    pub permissions: Vec<String>,
    pub extends: Vec<String>,
    pub attributes: Option<Attrs>,
}

#[derive(Debug, Clone, Default)]
pub struct RolePatch {
    pub name: Option<String>,
    pub description: Option<Option<String>>,
    pub permissions: Option<Vec<String>>,
    pub extends: Option<Vec<String>>,
    pub attributes: Option<Option<Attrs>>,
}

/// One assignment as the caller names it (keys or UUIDs).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AssignmentRef {
    pub user: String,
    pub role: String,
    pub tenant: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MissingUserPolicy {
    #[default]
    Fail,
    Ignore,
    Create,
}

/// Filters of `GET /role_assignments`: each list is "any of"; empty means no filter.
#[derive(Debug, Clone, Default)]
pub struct AssignmentFilter {
    pub users: Vec<String>,
    pub roles: Vec<String>,
    pub tenants: Vec<String>,
}

/// The whole state as it is saved to disk (indexes are rebuilt on load).
#[derive(Debug, Serialize, Deserialize)]
pub struct Snapshot {
    pub format: u32,
    pub scope: Scope,
    pub api_key: String,
    pub users: Vec<User>,
    pub tenants: Vec<Tenant>,
    pub resources: Vec<Resource>,
    pub roles: Vec<Role>,
    pub assignments: Vec<Assignment>,
}

pub const SNAPSHOT_FORMAT: u32 = 1;

#[derive(Debug)]
pub struct Store {
    pub scope: Scope,
    pub users: Table<User>,
    pub tenants: Table<Tenant>,
    pub resources: Table<Resource>,
    pub roles: Table<Role>,
    pub assignments: Table<Assignment>,
    by_user: HashMap<Uuid, IdSet>,
    by_tenant: HashMap<Uuid, IdSet>,
    by_role: HashMap<Uuid, IdSet>,
    /// Bumped by every successful write; persistence saves when it moves.
    pub generation: u64,
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
            by_user: HashMap::new(),
            by_tenant: HashMap::new(),
            by_role: HashMap::new(),
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
        }
    }

    /// Rebuilds a store (and its indexes) from a snapshot, dropping assignments that point nowhere.
    pub fn from_snapshot(snap: Snapshot) -> Self {
        let mut store = Store {
            scope: snap.scope,
            users: Table::from_rows(snap.users),
            tenants: Table::from_rows(snap.tenants),
            resources: Table::from_rows(snap.resources),
            roles: Table::from_rows(snap.roles),
            assignments: Table::default(),
            by_user: HashMap::new(),
            by_tenant: HashMap::new(),
            by_role: HashMap::new(),
            generation: 0,
        };
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

    // ---------------------------------------------------------------- users

    pub fn create_user(&mut self, input: UserInput) -> ApiResult<&User> {
        if self.users.find(&input.key).is_some() {
            return Err(ApiError::duplicate("user", &input.key));
        }
        let idx = self.insert_user(input);
        self.touch();
        Ok(self.users.at(idx))
    }

    fn insert_user(&mut self, input: UserInput) -> usize {
        let t = now();
        self.users.insert(User {
            id: Uuid::new_v4(),
            key: input.key,
            email: input.email,
            first_name: input.first_name,
            last_name: input.last_name,
            attributes: input.attributes,
            created_at: t,
            updated_at: t,
        })
    }

    /// PUT: replaces the user named by `ident` (key or id), or creates it. Returns whether it was created.
    pub fn put_user(&mut self, ident: &str, input: UserInput) -> ApiResult<(&User, bool)> {
        let (idx, created) = self.upsert_user(ident, input);
        self.touch();
        Ok((self.users.at(idx), created))
    }

    fn upsert_user(&mut self, ident: &str, input: UserInput) -> (usize, bool) {
        match self.users.find(ident) {
            Some(idx) => {
                let user = self.users.at_mut(idx);
                user.email = input.email;
                user.first_name = input.first_name;
                user.last_name = input.last_name;
                user.attributes = input.attributes;
                user.updated_at = now();
                (idx, false)
            }
            None => (self.insert_user(input), true),
        }
    }

    pub fn patch_user(&mut self, ident: &str, patch: UserPatch) -> ApiResult<&User> {
        let idx = self
            .users
            .find(ident)
            .ok_or_else(|| ApiError::not_found("user", ident))?;
        let user = self.users.at_mut(idx);
        if let Some(v) = patch.email {
            user.email = v;
        }
        if let Some(v) = patch.first_name {
            user.first_name = v;
        }
        if let Some(v) = patch.last_name {
            user.last_name = v;
        }
        if let Some(v) = patch.attributes {
            user.attributes = v;
        }
        user.updated_at = now();
        self.touch();
        Ok(self.users.at(idx))
    }

    pub fn delete_user(&mut self, ident: &str) -> ApiResult<()> {
        let idx = self
            .users
            .find(ident)
            .ok_or_else(|| ApiError::not_found("user", ident))?;
        self.remove_user_at(idx);
        self.touch();
        Ok(())
    }

    fn remove_user_at(&mut self, idx: usize) {
        let user = self.users.remove_at(idx);
        if let Some(set) = self.by_user.remove(&user.id) {
            for aid in set.as_slice().to_vec() {
                self.remove_assignment_by_id(aid);
            }
        }
    }

    /// `POST /bulk/users`: all new, or 409 and nothing created.
    pub fn bulk_create_users(&mut self, inputs: Vec<UserInput>) -> ApiResult<()> {
        let mut seen = HashSet::new();
        for input in &inputs {
            if self.users.find(&input.key).is_some() || !seen.insert(input.key.as_str()) {
                return Err(ApiError::duplicate("user", &input.key));
            }
        }
        for input in inputs {
            self.insert_user(input);
        }
        self.touch();
        Ok(())
    }

    /// `PUT /bulk/users`: upsert each.
    pub fn bulk_put_users(&mut self, inputs: Vec<UserInput>) {
        for input in inputs {
            let key = input.key.clone();
            self.upsert_user(&key, input);
        }
        self.touch();
    }

    /// `DELETE /bulk/users`: deletes those that exist.
    pub fn bulk_delete_users(&mut self, idents: &[String]) {
        for ident in idents {
            if let Some(idx) = self.users.find(ident) {
                self.remove_user_at(idx);
            }
        }
        self.touch();
    }

    /// Users, optionally narrowed by a text `search` (key, e-mail, names) or a role key.
    pub fn list_users(
        &self,
        search: Option<&str>,
        role: Option<&str>,
        page: super::input::Page,
    ) -> (Vec<&User>, usize) {
        if search.is_none() && role.is_none() {
            return (
                page.slice(self.users.rows()).iter().collect(),
                self.users.len(),
            );
        }
        let mut candidates: Vec<&User> = match role {
            Some(role) => {
                let Some(role) = self.roles.get(role) else {
                    return (Vec::new(), 0);
                };
                let mut seen = HashSet::new();
                self.by_role
                    .get(&role.id)
                    .map(IdSet::as_slice)
                    .unwrap_or_default()
                    .iter()
                    .filter_map(|aid| self.assignments.get_by_id(*aid))
                    .filter(|a| seen.insert(a.user_id))
                    .filter_map(|a| self.users.get_by_id(a.user_id))
                    .collect()
            }
            None => self.users.rows().iter().collect(),
        };
        if let Some(search) = search {
            let needle = search.to_lowercase();
            candidates.retain(|u| {
                u.key.to_lowercase().contains(&needle)
                    || [&u.email, &u.first_name, &u.last_name].iter().any(|f| {
                        f.as_deref()
                            .is_some_and(|s| s.to_lowercase().contains(&needle))
                    })
            });
        }
        let total = candidates.len();
        (page.slice(&candidates).to_vec(), total)
    }

    /// The user's assignments, as (role key, tenant key) pairs.
    pub fn user_roles(&self, user_id: Uuid) -> Vec<(&str, &str)> {
        self.by_user
            .get(&user_id)
            .map(IdSet::as_slice)
            .unwrap_or_default()
            .iter()
            .filter_map(|aid| self.assignments.get_by_id(*aid))
            .filter_map(|a| {
                Some((
                    self.roles.get_by_id(a.role_id)?.key.as_str(),
                    self.tenants.get_by_id(a.tenant_id)?.key.as_str(),
                ))
            })
            .collect()
    }

    // ---------------------------------------------------------------- tenants

    pub fn create_tenant(&mut self, input: TenantInput) -> ApiResult<&Tenant> {
        if self.tenants.find(&input.key).is_some() {
            return Err(ApiError::duplicate("tenant", &input.key));
        }
        let idx = self.insert_tenant(input);
        self.touch();
        Ok(self.tenants.at(idx))
    }

    fn insert_tenant(&mut self, input: TenantInput) -> usize {
        let t = now();
        self.tenants.insert(Tenant {
            id: Uuid::new_v4(),
            key: input.key,
            name: input.name,
            description: input.description,
            attributes: input.attributes,
            created_at: t,
            updated_at: t,
            last_action_at: t,
        })
    }

    pub fn patch_tenant(&mut self, ident: &str, patch: TenantPatch) -> ApiResult<&Tenant> {
        let idx = self
            .tenants
            .find(ident)
            .ok_or_else(|| ApiError::not_found("tenant", ident))?;
        let tenant = self.tenants.at_mut(idx);
        if let Some(v) = patch.name {
            tenant.name = v;
        }
        if let Some(v) = patch.description {
            tenant.description = v;
        }
        if let Some(v) = patch.attributes {
            tenant.attributes = v;
        }
        tenant.updated_at = now();
        tenant.last_action_at = tenant.updated_at;
        self.touch();
        Ok(self.tenants.at(idx))
    }

    pub fn delete_tenant(&mut self, ident: &str) -> ApiResult<()> {
        let idx = self
            .tenants
            .find(ident)
            .ok_or_else(|| ApiError::not_found("tenant", ident))?;
        self.remove_tenant_at(idx);
        self.touch();
        Ok(())
    }

    fn remove_tenant_at(&mut self, idx: usize) {
        let tenant = self.tenants.remove_at(idx);
        if let Some(set) = self.by_tenant.remove(&tenant.id) {
            for aid in set.as_slice().to_vec() {
                self.remove_assignment_by_id(aid);
            }
        }
    }

    pub fn bulk_create_tenants(&mut self, inputs: Vec<TenantInput>) -> ApiResult<()> {
        let mut seen = HashSet::new();
        for input in &inputs {
            if self.tenants.find(&input.key).is_some() || !seen.insert(input.key.as_str()) {
                return Err(ApiError::duplicate("tenant", &input.key));
            }
        }
        for input in inputs {
            self.insert_tenant(input);
        }
        self.touch();
        Ok(())
    }

    pub fn bulk_delete_tenants(&mut self, idents: &[String]) {
        for ident in idents {
            if let Some(idx) = self.tenants.find(ident) {
                self.remove_tenant_at(idx);
            }
        }
        self.touch();
    }

    pub fn list_tenants(
        &self,
        search: Option<&str>,
        page: super::input::Page,
    ) -> (Vec<&Tenant>, usize) {
        match search {
            None => (
                page.slice(self.tenants.rows()).iter().collect(),
                self.tenants.len(),
            ),
            Some(search) => {
                let needle = search.to_lowercase();
                let all: Vec<&Tenant> = self
                    .tenants
                    .rows()
                    .iter()
                    .filter(|t| {
                        t.key.to_lowercase().contains(&needle)
                            || t.name.to_lowercase().contains(&needle)
                    })
                    .collect();
                let total = all.len();
                (page.slice(&all).to_vec(), total)
            }
        }
    }

    /// Users holding at least one role in the tenant.
    pub fn tenant_users(&self, tenant_id: Uuid, page: super::input::Page) -> (Vec<&User>, usize) {
        let mut seen = HashSet::new();
        let users: Vec<&User> = self
            .by_tenant
            .get(&tenant_id)
            .map(IdSet::as_slice)
            .unwrap_or_default()
            .iter()
            .filter_map(|aid| self.assignments.get_by_id(*aid))
            .filter(|a| seen.insert(a.user_id))
            .filter_map(|a| self.users.get_by_id(a.user_id))
            .collect();
        let total = users.len();
        (page.slice(&users).to_vec(), total)
    }

    // ---------------------------------------------------------------- role assignments

    fn index_assignment(&mut self, a: &Assignment) {
        self.by_user.entry(a.user_id).or_default().insert(a.id);
        self.by_tenant.entry(a.tenant_id).or_default().insert(a.id);
        self.by_role.entry(a.role_id).or_default().insert(a.id);
    }

    fn remove_assignment_by_id(&mut self, id: Uuid) {
        let Some(idx) = self.assignments.position_of_id(id) else {
            return;
        };
        let a = self.assignments.remove_at(idx);
        for (index, owner) in [
            (&mut self.by_user, a.user_id),
            (&mut self.by_tenant, a.tenant_id),
            (&mut self.by_role, a.role_id),
        ] {
            if let Some(set) = index.get_mut(&owner) {
                set.remove(a.id);
                if set.is_empty() {
                    index.remove(&owner);
                }
            }
        }
    }

    /// Resolves an assignment's names to ids: 404 for a missing user, role or tenant.
    fn resolve(&self, r: &AssignmentRef) -> ApiResult<(Uuid, Uuid, Uuid)> {
        let tenant = r.tenant.as_deref().unwrap_or(DEFAULT_TENANT);
        let user = self
            .users
            .get(&r.user)
            .ok_or_else(|| ApiError::not_found("user", &r.user))?;
        let role = self
            .roles
            .get(&r.role)
            .ok_or_else(|| ApiError::not_found("role", &r.role))?;
        let tenant = self
            .tenants
            .get(tenant)
            .ok_or_else(|| ApiError::not_found("tenant", tenant))?;
        Ok((user.id, role.id, tenant.id))
    }

    fn insert_assignment(&mut self, (user_id, role_id, tenant_id): (Uuid, Uuid, Uuid)) -> usize {
        let a = Assignment {
            id: Uuid::new_v4(),
            user_id,
            role_id,
            tenant_id,
            created_at: now(),
        };
        self.index_assignment(&a);
        self.assignments.insert(a)
    }

    /// Assigns a role: 404 if the user, role or tenant is missing, 409 if already assigned.
    pub fn assign(&mut self, r: &AssignmentRef) -> ApiResult<&Assignment> {
        let ids = self.resolve(r)?;
        if self.assignments.position_of_key(&ids).is_some() {
            return Err(ApiError::Duplicate(format!(
                "The role '{}' is already assigned to user '{}' in tenant '{}'",
                r.role,
                r.user,
                r.tenant.as_deref().unwrap_or(DEFAULT_TENANT)
            )));
        }
        let idx = self.insert_assignment(ids);
        self.touch();
        Ok(self.assignments.at(idx))
    }

    /// Unassigns: 404 if the assignment (or any of its parts) does not exist.
    pub fn unassign(&mut self, r: &AssignmentRef) -> ApiResult<()> {
        let ids = self.resolve(r)?;
        let Some(idx) = self.assignments.position_of_key(&ids) else {
            return Err(ApiError::NotFound(format!(
                "The role '{}' is not assigned to user '{}' in tenant '{}'",
                r.role,
                r.user,
                r.tenant.as_deref().unwrap_or(DEFAULT_TENANT)
            )));
        };
        let id = self.assignments.at(idx).id;
        self.remove_assignment_by_id(id);
        self.touch();
        Ok(())
    }

    /// Bulk assign: already-present assignments are skipped; returns how many were created.
    /// A missing role or tenant fails the whole call (404); a missing user depends on `policy`.
    pub fn bulk_assign(
        &mut self,
        refs: &[AssignmentRef],
        policy: MissingUserPolicy,
    ) -> ApiResult<usize> {
        let mut new_users = Vec::new();
        for r in refs {
            if self.users.find(&r.user).is_none() {
                match policy {
                    MissingUserPolicy::Fail => return Err(ApiError::not_found("user", &r.user)),
                    MissingUserPolicy::Ignore => continue,
                    MissingUserPolicy::Create => new_users.push(r.user.clone()),
                }
            }
            let tenant = r.tenant.as_deref().unwrap_or(DEFAULT_TENANT);
            if self.roles.find(&r.role).is_none() {
                return Err(ApiError::not_found("role", &r.role));
            }
            if self.tenants.find(tenant).is_none() {
                return Err(ApiError::not_found("tenant", tenant));
            }
        }
        for key in new_users {
            if self.users.find(&key).is_none() {
                self.insert_user(UserInput {
                    key,
                    ..Default::default()
                });
            }
        }
        let mut created = 0;
        for r in refs {
            let Ok(ids) = self.resolve(r) else { continue };
            if self.assignments.position_of_key(&ids).is_none() {
                self.insert_assignment(ids);
                created += 1;
            }
        }
        self.touch();
        Ok(created)
    }

    /// Bulk unassign: missing assignments are skipped; returns how many were removed.
    pub fn bulk_unassign(&mut self, refs: &[AssignmentRef]) -> usize {
        let mut removed = 0;
        for r in refs {
            let Ok(ids) = self.resolve(r) else { continue };
            if let Some(idx) = self.assignments.position_of_key(&ids) {
                let id = self.assignments.at(idx).id;
                self.remove_assignment_by_id(id);
                removed += 1;
            }
        }
        self.touch();
        removed
    }

    /// Lists assignments. With one filter value the page is a slice of that value's index; with
    /// several, the smallest index is scanned, so the cost follows the matches, not the table.
    pub fn list_assignments(
        &self,
        filter: &AssignmentFilter,
        page: super::input::Page,
    ) -> (Vec<&Assignment>, usize) {
        if filter.users.is_empty() && filter.roles.is_empty() && filter.tenants.is_empty() {
            return (
                page.slice(self.assignments.rows()).iter().collect(),
                self.assignments.len(),
            );
        }
        let users: Vec<Uuid> = filter
            .users
            .iter()
            .filter_map(|u| self.users.get(u).map(|u| u.id))
            .collect();
        let roles: Vec<Uuid> = filter
            .roles
            .iter()
            .filter_map(|r| self.roles.get(r).map(|r| r.id))
            .collect();
        let tenants: Vec<Uuid> = filter
            .tenants
            .iter()
            .filter_map(|t| self.tenants.get(t).map(|t| t.id))
            .collect();
        let dims = [
            (&filter.users, &users, &self.by_user),
            (&filter.roles, &roles, &self.by_role),
            (&filter.tenants, &tenants, &self.by_tenant),
        ];
        // A filter whose values all name nothing matches nothing.
        if dims
            .iter()
            .any(|(asked, found, _)| !asked.is_empty() && found.is_empty())
        {
            return (Vec::new(), 0);
        }
        let size = |ids: &Vec<Uuid>, index: &HashMap<Uuid, IdSet>| -> usize {
            ids.iter()
                .map(|id| index.get(id).map_or(0, IdSet::len))
                .sum()
        };
        let (_, driver_ids, driver_index) = dims
            .iter()
            .filter(|(asked, _, _)| !asked.is_empty())
            .min_by_key(|(_, ids, index)| size(ids, index))
            .copied()
            .expect("at least one filter is set");
        let active = dims
            .iter()
            .filter(|(asked, _, _)| !asked.is_empty())
            .count();
        if active == 1 && driver_ids.len() == 1 {
            let set = driver_index
                .get(&driver_ids[0])
                .map(IdSet::as_slice)
                .unwrap_or_default();
            let rows = page
                .slice(set)
                .iter()
                .filter_map(|id| self.assignments.get_by_id(*id))
                .collect();
            return (rows, set.len());
        }
        let matches: Vec<&Assignment> = driver_ids
            .iter()
            .flat_map(|id| {
                driver_index
                    .get(id)
                    .map(IdSet::as_slice)
                    .unwrap_or_default()
            })
            .filter_map(|aid| self.assignments.get_by_id(*aid))
            .filter(|a| users.is_empty() || users.contains(&a.user_id))
            .filter(|a| roles.is_empty() || roles.contains(&a.role_id))
            .filter(|a| tenants.is_empty() || tenants.contains(&a.tenant_id))
            .collect();
        let total = matches.len();
        (page.slice(&matches).to_vec(), total)
    }

    // ---------------------------------------------------------------- resources

    fn build_actions(inputs: Vec<ActionInput>, keep: &[Action]) -> Vec<Action> {
        let t = now();
        inputs
            .into_iter()
            .map(|a| {
                let old = keep.iter().find(|o| o.key == a.key);
                Action {
                    id: old.map_or_else(Uuid::new_v4, |o| o.id),
                    name: a.name.unwrap_or_else(|| a.key.clone()),
                    key: a.key,
                    description: a.description,
                    attributes: a.attributes,
                    created_at: old.map_or(t, |o| o.created_at),
                    updated_at: t,
                }
            })
            .collect()
    }

    pub fn create_resource(&mut self, input: ResourceInput) -> ApiResult<&Resource> {
        if self.resources.find(&input.key).is_some() {
            return Err(ApiError::duplicate("resource", &input.key));
        }
        let t = now();
        let idx = self.resources.insert(Resource {
            id: Uuid::new_v4(),
            actions: Self::build_actions(input.actions, &[]),
            key: input.key,
            name: input.name,
            description: input.description,
            urn: input.urn,
            attributes: input.attributes,
            type_attributes: input.type_attributes,
            created_at: t,
            updated_at: t,
        });
        self.touch();
        Ok(self.resources.at(idx))
    }

    /// PUT: replaces the resource (actions left out are deleted, revoking their permissions), or
    /// creates it. Returns whether it was created.
    pub fn replace_resource(
        &mut self,
        ident: &str,
        input: ResourceInput,
    ) -> ApiResult<(&Resource, bool)> {
        let Some(idx) = self.resources.find(ident) else {
            let key = input.key.clone();
            self.create_resource(input)?;
            let idx = self.resources.find(&key).expect("just created");
            return Ok((self.resources.at(idx), true));
        };
        let resource = self.resources.at_mut(idx);
        resource.actions = Self::build_actions(input.actions, &resource.actions);
        resource.name = input.name;
        resource.description = input.description;
        resource.urn = input.urn;
        resource.attributes = input.attributes;
        resource.type_attributes = input.type_attributes;
        resource.updated_at = now();
        let key = resource.key.clone();
        self.revoke_missing_actions(&key);
        self.touch();
        Ok((self.resources.at(idx), false))
    }

    pub fn patch_resource(&mut self, ident: &str, patch: ResourcePatch) -> ApiResult<&Resource> {
        let idx = self
            .resources
            .find(ident)
            .ok_or_else(|| ApiError::not_found("resource", ident))?;
        let resource = self.resources.at_mut(idx);
        if let Some(v) = patch.name {
            resource.name = v;
        }
        if let Some(v) = patch.description {
            resource.description = v;
        }
        if let Some(v) = patch.urn {
            resource.urn = v;
        }
        if let Some(v) = patch.attributes {
            resource.attributes = v;
        }
        if let Some(v) = patch.type_attributes {
            resource.type_attributes = v;
        }
        if let Some(actions) = patch.actions {
            resource.actions = Self::build_actions(actions, &resource.actions);
        }
        resource.updated_at = now();
        let key = resource.key.clone();
        self.revoke_missing_actions(&key);
        self.touch();
        Ok(self.resources.at(idx))
    }

    pub fn delete_resource(&mut self, ident: &str) -> ApiResult<()> {
        let idx = self
            .resources
            .find(ident)
            .ok_or_else(|| ApiError::not_found("resource", ident))?;
        let resource = self.resources.remove_at(idx);
        self.revoke_missing_actions(&resource.key);
        self.touch();
        Ok(())
    }

    pub fn create_action(&mut self, resource: &str, input: ActionInput) -> ApiResult<&Action> {
        let idx = self
            .resources
            .find(resource)
            .ok_or_else(|| ApiError::not_found("resource", resource))?;
        let r = self.resources.at_mut(idx);
        if r.action(&input.key).is_some() {
            return Err(ApiError::duplicate("action", &input.key));
        }
        let mut built = Self::build_actions(vec![input], &[]);
        r.actions.append(&mut built);
        r.updated_at = now();
        self.touch();
        Ok(self.resources.at(idx).actions.last().expect("just added"))
    }

    pub fn delete_action(&mut self, resource: &str, action: &str) -> ApiResult<()> {
        let idx = self
            .resources
            .find(resource)
            .ok_or_else(|| ApiError::not_found("resource", resource))?;
        let r = self.resources.at_mut(idx);
        let pos = r
            .actions
            .iter()
            .position(|a| a.key == action || a.id.to_string() == action)
            .ok_or_else(|| ApiError::not_found("action", action))?;
        r.actions.remove(pos);
        r.updated_at = now();
        let key = r.key.clone();
        self.revoke_missing_actions(&key);
        self.touch();
        Ok(())
    }

    /// Removes from every role the `resource:action` permissions whose action no longer exists.
    fn revoke_missing_actions(&mut self, resource_key: &str) {
        let live: HashSet<String> = self
            .resources
            .get(resource_key)
            .map(|r| {
                r.actions
                    .iter()
                    .map(|a| format!("{}:{}", r.key, a.key))
                    .collect()
            })
            .unwrap_or_default();
        let prefix = format!("{resource_key}:");
        for i in 0..self.roles.len() {
            let role = self.roles.at_mut(i);
            let before = role.permissions.len();
            role.permissions
                .retain(|p| !p.starts_with(&prefix) || live.contains(p));
            if role.permissions.len() != before {
                role.updated_at = now();
            }
        }
    }

    // ---------------------------------------------------------------- roles

    /// Normalizes permissions to `resource:action` (an action UUID is accepted too): a malformed
    /// string is a 400 `INVALID_PERMISSION_FORMAT`, an unknown resource or action a 404.
    fn check_permissions(&self, perms: &[String]) -> ApiResult<Vec<String>> {
        let mut out: Vec<String> = Vec::with_capacity(perms.len());
        for p in perms {
            let normalized = match p.split_once(':') {
                Some((res, act)) if !res.is_empty() && !act.is_empty() && !act.contains(':') => {
                    let r = self
                        .resources
                        .get(res)
                        .ok_or_else(|| ApiError::not_found("resource", res))?;
                    let a = r
                        .action(act)
                        .ok_or_else(|| ApiError::not_found("action", p))?;
                    format!("{}:{}", r.key, a.key)
                }
                None if Uuid::parse_str(p).is_ok() => self
                    .resources
                    .rows()
                    .iter()
                    .find_map(|r| {
                        r.actions
                            .iter()
                            .find(|a| a.id.to_string() == *p)
                            .map(|a| format!("{}:{}", r.key, a.key))
                    })
                    .ok_or_else(|| ApiError::not_found("action", p))?,
                _ => {
                    return Err(ApiError::BadRequest(
                        "INVALID_PERMISSION_FORMAT",
                        format!("Invalid permission '{p}': expected 'resource:action'"),
                    ));
                }
            };
            if !out.contains(&normalized) {
                out.push(normalized);
            }
        }
        Ok(out)
    }

    /// Checks `extends` for `role_key`: every parent exists and no cycle forms.
    fn check_extends(&self, role_key: &str, extends: &[String]) -> ApiResult<Vec<String>> {
        let mut out: Vec<String> = Vec::new();
        for parent in extends {
            let p = self
                .roles
                .get(parent)
                .ok_or_else(|| ApiError::not_found("role", parent))?;
            if !out.contains(&p.key) {
                out.push(p.key.clone());
            }
        }
        // A cycle exists if role_key is reachable from one of its new parents.
        let mut stack: Vec<&str> = out.iter().map(String::as_str).collect();
        let mut seen = HashSet::new();
        while let Some(k) = stack.pop() {
            if k == role_key {
                return Err(ApiError::BadRequest(
                    "INVALID_INPUT",
                    format!(
                        "Role '{role_key}' cannot extend itself, directly or through another role"
                    ),
                ));
            }
            if seen.insert(k)
                && let Some(r) = self.roles.get(k)
            {
                stack.extend(r.extends.iter().map(String::as_str));
            }
        }
        Ok(out)
    }

    pub fn create_role(&mut self, input: RoleInput) -> ApiResult<&Role> {
        if self.roles.find(&input.key).is_some() {
            return Err(ApiError::duplicate("role", &input.key));
        }
        let permissions = self.check_permissions(&input.permissions)?;
        let extends = self.check_extends(&input.key, &input.extends)?;
        let t = now();
        let idx = self.roles.insert(Role {
            id: Uuid::new_v4(),
            key: input.key,
            name: input.name,
            description: input.description,
            permissions,
            extends,
            attributes: input.attributes,
            created_at: t,
            updated_at: t,
        });
        self.touch();
        Ok(self.roles.at(idx))
    }

    pub fn patch_role(&mut self, ident: &str, patch: RolePatch) -> ApiResult<&Role> {
        let idx = self
            .roles
            .find(ident)
            .ok_or_else(|| ApiError::not_found("role", ident))?;
        let key = self.roles.at(idx).key.clone();
        let permissions = match &patch.permissions {
            Some(p) => Some(self.check_permissions(p)?),
            None => None,
        };
        let extends = match &patch.extends {
            Some(e) => Some(self.check_extends(&key, e)?),
            None => None,
        };
        let role = self.roles.at_mut(idx);
        if let Some(v) = patch.name {
            role.name = v;
        }
        if let Some(v) = patch.description {
            role.description = v;
        }
        if let Some(v) = patch.attributes {
            role.attributes = v;
        }
        if let Some(v) = permissions {
            role.permissions = v;
        }
        if let Some(v) = extends {
            role.extends = v;
        }
        role.updated_at = now();
        self.touch();
        Ok(self.roles.at(idx))
    }

    /// Deletes a role with its assignments, and drops it from other roles' `extends`.
    pub fn delete_role(&mut self, ident: &str) -> ApiResult<()> {
        let idx = self
            .roles
            .find(ident)
            .ok_or_else(|| ApiError::not_found("role", ident))?;
        let role = self.roles.remove_at(idx);
        if let Some(set) = self.by_role.remove(&role.id) {
            for aid in set.as_slice().to_vec() {
                self.remove_assignment_by_id(aid);
            }
        }
        for i in 0..self.roles.len() {
            self.roles.at_mut(i).extends.retain(|k| *k != role.key);
        }
        self.touch();
        Ok(())
    }

    /// Adds permissions (present ones are skipped).
    pub fn add_permissions(&mut self, ident: &str, perms: &[String]) -> ApiResult<&Role> {
        let idx = self
            .roles
            .find(ident)
            .ok_or_else(|| ApiError::not_found("role", ident))?;
        let perms = self.check_permissions(perms)?;
        let role = self.roles.at_mut(idx);
        for p in perms {
            if !role.permissions.contains(&p) {
                role.permissions.push(p);
            }
        }
        role.updated_at = now();
        self.touch();
        Ok(self.roles.at(idx))
    }

    /// Removes permissions (absent ones, even unknown ones, are skipped).
    pub fn remove_permissions(&mut self, ident: &str, perms: &[String]) -> ApiResult<&Role> {
        let idx = self
            .roles
            .find(ident)
            .ok_or_else(|| ApiError::not_found("role", ident))?;
        let role = self.roles.at_mut(idx);
        role.permissions.retain(|p| !perms.contains(p));
        role.updated_at = now();
        self.touch();
        Ok(self.roles.at(idx))
    }

    /// `PUT /bulk/roles`: creates or updates each role, all checked before any is written.
    pub fn bulk_upsert_roles(&mut self, inputs: Vec<RoleInput>) -> ApiResult<()> {
        // Parents may be created in the same batch, so check extends against batch + store.
        let batch: HashSet<&str> = inputs.iter().map(|r| r.key.as_str()).collect();
        let mut checked = Vec::with_capacity(inputs.len());
        for input in &inputs {
            let permissions = self.check_permissions(&input.permissions)?;
            for parent in &input.extends {
                if self.roles.find(parent).is_none() && !batch.contains(parent.as_str()) {
                    return Err(ApiError::not_found("role", parent));
                }
            }
            checked.push(permissions);
        }
        let t = now();
        for (input, permissions) in inputs.into_iter().zip(checked) {
            match self.roles.find(&input.key) {
                Some(idx) => {
                    let role = self.roles.at_mut(idx);
                    role.name = input.name;
                    role.description = input.description;
                    role.permissions = permissions;
                    role.extends = input.extends;
                    if input.attributes.is_some() {
                        role.attributes = input.attributes;
                    }
                    role.updated_at = t;
                }
                None => {
                    self.roles.insert(Role {
                        id: Uuid::new_v4(),
                        key: input.key,
                        name: input.name,
                        description: input.description,
                        permissions,
                        extends: input.extends,
                        attributes: input.attributes,
                        created_at: t,
                        updated_at: t,
                    });
                }
            }
        }
        self.touch();
        Ok(())
    }

    // ---------------------------------------------------------------- decisions

    /// The permissions of a set of roles, following `extends` transitively.
    pub fn effective_permissions<'a>(
        &'a self,
        roles: impl IntoIterator<Item = &'a str>,
    ) -> HashSet<&'a str> {
        let mut perms = HashSet::new();
        let mut seen = HashSet::new();
        let mut stack: Vec<&str> = roles.into_iter().collect();
        while let Some(k) = stack.pop() {
            if !seen.insert(k) {
                continue;
            }
            if let Some(role) = self.roles.get(k) {
                perms.extend(role.permissions.iter().map(String::as_str));
                stack.extend(role.extends.iter().map(String::as_str));
            }
        }
        perms
    }

    /// The role keys a user holds in a tenant (keys or UUIDs accepted for both).
    pub fn roles_in_tenant(&self, user: &str, tenant: &str) -> Vec<&str> {
        let (Some(user), Some(tenant)) = (self.users.get(user), self.tenants.get(tenant)) else {
            return Vec::new();
        };
        self.by_user
            .get(&user.id)
            .map(IdSet::as_slice)
            .unwrap_or_default()
            .iter()
            .filter_map(|aid| self.assignments.get_by_id(*aid))
            .filter(|a| a.tenant_id == tenant.id)
            .filter_map(|a| self.roles.get_by_id(a.role_id))
            .map(|r| r.key.as_str())
            .collect()
    }

    /// RBAC: allowed when a role the user holds in the tenant (or a role it extends) grants
    /// `resource_type:action`.
    pub fn allowed(&self, user: &str, action: &str, resource_type: &str, tenant: &str) -> bool {
        let wanted = format!("{resource_type}:{action}");
        self.effective_permissions(self.roles_in_tenant(user, tenant))
            .contains(wanted.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::local::input::Page;

    fn page() -> Page {
        Page {
            page: 1,
            per_page: 100,
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
            tenants: vec!["nope".into()],
            ..Default::default()
        };
        assert_eq!(s.list_assignments(&f, page()).1, 0);
        assert_eq!(s.list_users(None, Some("editor"), page()).1, 1);
    }
}
