//! Reads the live environment: every synced kind, paged, concurrently, into the normalised model.

use super::{PermitClient, PermitError};
use crate::kinds::Kind;
use crate::model::{Action, Assignment, AttributeDef, Attrs, Resource, Role, State, Tenant, User};
use permit_api::endpoint as ep;
use permit_api::response::{self as wire, Str};
use serde::Deserialize;
use serde_json::Value;
use std::borrow::Cow;
use std::collections::BTreeMap;

/// A listed string as the model keeps it: absent, `null` and empty are all "not set".
fn s(v: &Option<Str<'_>>) -> Option<String> {
    v.as_deref().filter(|s| !s.is_empty()).map(str::to_string)
}

fn attrs(v: &Option<Cow<'_, wire::Attrs>>) -> Option<Attrs> {
    v.as_deref().map(Attrs::of_object)
}

fn strings(v: &[Str<'_>]) -> impl Iterator<Item = String> {
    v.iter().map(|s| s.to_string())
}

/// A listed object read into its wire struct, borrowing from the listing. One that is not in
/// Permit's shape is left out of the live state, with a warning naming it: the plan then treats
/// it as absent (a create that Permit may refuse), never as something to delete.
fn parsed<'v, T: Deserialize<'v>>(v: &'v Value) -> Option<T> {
    T::deserialize(v)
        .inspect_err(|error| {
            let key = v.get("key").and_then(Value::as_str).unwrap_or("(no key)");
            tracing::warn!(key, %error, "a listed object is not in the shape Permit documents; left out");
        })
        .ok()
}

pub fn resource(v: &Value) -> Option<Resource> {
    resource_of(&parsed(v)?)
}

fn resource_of(r: &wire::ResourceRead) -> Option<Resource> {
    let key = s(&r.key)?;
    let actions = r
        .actions
        .iter()
        .map(|(k, a)| {
            let action = Action {
                name: s(&a.name).unwrap_or_else(|| k.to_string()),
                description: s(&a.description),
                attributes: attrs(&a.attributes),
            };
            (k.to_string(), action)
        })
        .collect();
    // Attribute definitions are reported as a map `key → {type, description}` when at all.
    let attributes = match r.attributes.as_deref() {
        Some(Value::Object(m)) => Some(
            m.iter()
                .filter_map(|(k, a)| {
                    let text = |f: &str| a.get(f).and_then(Value::as_str).filter(|s| !s.is_empty());
                    let def = AttributeDef {
                        type_: text("type")?.to_string(),
                        description: text("description").map(str::to_string),
                    };
                    Some((k.clone(), def))
                })
                .collect(),
        ),
        _ => None,
    };
    Some(Resource {
        name: s(&r.name).unwrap_or_else(|| key.clone()),
        description: s(&r.description),
        actions,
        attributes,
        key,
    })
}

fn role_of(r: &wire::RoleRead) -> Option<Role> {
    let key = s(&r.key)?;
    Some(Role {
        name: s(&r.name).unwrap_or_else(|| key.clone()),
        description: s(&r.description),
        permissions: strings(&r.permissions).collect(),
        extends: strings(&r.extends).collect(),
        attributes: attrs(&r.attributes),
        key,
    })
}

pub fn role(v: &Value) -> Option<Role> {
    role_of(&parsed(v)?)
}

fn tenant_of(t: &wire::TenantRead) -> Option<Tenant> {
    let key = s(&t.key)?;
    Some(Tenant {
        name: s(&t.name).unwrap_or_else(|| key.clone()),
        description: s(&t.description),
        attributes: attrs(&t.attributes),
        key,
    })
}

pub fn tenant(v: &Value) -> Option<Tenant> {
    tenant_of(&parsed(v)?)
}

fn user_of(u: &wire::UserRead) -> Option<User> {
    Some(User {
        key: s(&u.key)?,
        email: s(&u.email),
        first_name: s(&u.first_name),
        last_name: s(&u.last_name),
        attributes: attrs(&u.attributes),
    })
}

pub fn user(v: &Value) -> Option<User> {
    user_of(&parsed(v)?)
}

fn assignment_of(a: &wire::RoleAssignmentRead) -> Option<Assignment> {
    Some(Assignment {
        user: s(&a.user)?,
        role: s(&a.role)?,
        tenant: s(&a.tenant).unwrap_or_else(|| crate::kinds::DEFAULT_TENANT.into()),
        resource_instance: s(&a.resource_instance),
    })
}

pub fn assignment(v: &Value) -> Option<Assignment> {
    assignment_of(&parsed(v)?)
}

/// Permit ids (UUIDs) by kind and key: what the Kubernetes controller reports in `status.permitId`.
pub type Ids = BTreeMap<(Kind, String), String>;

/// Every synced kind, the five listings run concurrently (the limiter paces them).
pub async fn read(client: &PermitClient) -> Result<State, PermitError> {
    read_listed(client, false).await.map(|(state, _)| state)
}

/// [`read`], keeping the id of every object too.
pub async fn read_with_ids(client: &PermitClient) -> Result<(State, Ids), PermitError> {
    read_listed(client, true).await
}

/// Each page is reduced to the model as it arrives: the raw JSON of a large environment (a
/// dozen fields per assignment) would otherwise be held whole, many times the model's size.
/// Role assignments, the most numerous, are listed once the kinds they point into are known, so
/// each page is resolved to keys and stored as it comes rather than held with its ids.
async fn read_listed(client: &PermitClient, with_ids: bool) -> Result<(State, Ids), PermitError> {
    let (resources, roles, tenants, users) = tokio::try_join!(
        client.list_map(&ep::RESOURCES_LIST, "list resources", |v| {
            listed(&v, resource_of)
        }),
        client.list_map(&ep::ROLES_LIST, "list roles", |v| listed(&v, role_of)),
        client.list_map(&ep::TENANTS_LIST, "list tenants", |v| {
            listed(&v, tenant_of)
        }),
        client.list_map(&ep::USERS_LIST, "list users", |v| listed(&v, user_of)),
    )?;
    let mut assembly = Assembly::new(resources, roles, tenants, users, with_ids);
    client
        .list_each(
            &ep::ROLE_ASSIGNMENTS_LIST,
            "list role assignments",
            // Listed on its own, after the others: as many pages in flight as all four had.
            2 * super::client::PAGES_IN_FLIGHT,
            |v| {
                if let Some(l) = ListedAssignment::of(&v) {
                    assembly.assignment(l);
                }
            },
        )
        .await?;
    let listed = assembly.finish();
    crate::memory::log_phase("reading Permit");
    Ok(listed)
}

/// One listed object as the model keeps it, with its Permit id.
pub struct Listed<T> {
    pub object: T,
    pub id: Option<Box<str>>,
}

/// A listed object read into its read model `W` and reduced to the model, with its id.
fn listed<'v, W, T>(v: &'v Value, reduce: fn(&W) -> Option<T>) -> Option<Listed<T>>
where
    W: Deserialize<'v> + wire::Identified,
{
    let w: W = parsed(v)?;
    Some(Listed {
        object: reduce(&w)?,
        id: w.id().filter(|s| !s.is_empty()).map(Into::into),
    })
}

/// A listed role assignment with the ids it points by, kept small: there may be hundreds of
/// thousands until the listings of users, roles and tenants resolve them.
pub struct ListedAssignment {
    /// The key as listed (`user/role/tenant[/instance]`).
    key: Box<str>,
    id: Option<Id>,
    user_id: Option<Id>,
    role_id: Option<Id>,
    tenant_id: Option<Id>,
}

impl ListedAssignment {
    fn of(v: &Value) -> Option<ListedAssignment> {
        let a: wire::RoleAssignmentRead = parsed(v)?;
        let id = |k: &Option<Str<'_>>| k.as_deref().filter(|s| !s.is_empty()).map(Id::new);
        Some(ListedAssignment {
            key: assignment_of(&a)?.key().into(),
            id: id(&a.id),
            user_id: id(&a.user_id),
            role_id: id(&a.role_id),
            tenant_id: id(&a.tenant_id),
        })
    }
}

/// A Permit id: a UUID held as a number (16 bytes, no allocation), or any other text as is.
/// Permit writes its ids as 32 lowercase hex digits without dashes (`Hex`); the dashed form
/// (`Uuid`) is what its docs and older servers show. Either is held as the number and written back
/// exactly as it came; held as text, a 32-digit id costs a 32-byte heap allocation besides the
/// enum's 32 bytes, and a listed assignment holds four.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Id {
    Uuid(u128),
    Hex(u128),
    Text(Box<str>),
}

impl Id {
    fn new(text: &str) -> Id {
        let hex: String = text.chars().filter(|c| *c != '-').collect();
        match (text.len(), u128::from_str_radix(&hex, 16)) {
            // Only the canonical forms, so that the text can be written back exactly.
            (36, Ok(n)) if Id::uuid_text(n) == text => Id::Uuid(n),
            (32, Ok(n)) if format!("{n:032x}") == text => Id::Hex(n),
            _ => Id::Text(text.into()),
        }
    }

    fn uuid_text(n: u128) -> String {
        let h = format!("{n:032x}");
        format!(
            "{}-{}-{}-{}-{}",
            &h[..8],
            &h[8..12],
            &h[12..16],
            &h[16..20],
            &h[20..]
        )
    }
}

impl std::fmt::Display for Id {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Id::Uuid(n) => f.write_str(&Id::uuid_text(*n)),
            Id::Hex(n) => write!(f, "{n:032x}"),
            Id::Text(t) => f.write_str(t),
        }
    }
}

/// The normalised state of raw listings, with the id of every object.
pub fn assemble(
    resources: &[Value],
    roles: &[Value],
    tenants: &[Value],
    users: &[Value],
    assignments: &[Value],
) -> (State, Ids) {
    fn each<'v, W, T>(items: &'v [Value], reduce: fn(&W) -> Option<T>) -> Vec<Listed<T>>
    where
        W: Deserialize<'v> + wire::Identified,
    {
        items.iter().filter_map(|v| listed(v, reduce)).collect()
    }
    let mut assembly = Assembly::new(
        each(resources, resource_of),
        each(roles, role_of),
        each(tenants, tenant_of),
        each(users, user_of),
        true,
    );
    for l in assignments.iter().filter_map(ListedAssignment::of) {
        assembly.assignment(l);
    }
    assembly.finish()
}

/// The state being assembled from listings: every kind but role assignments first, then each
/// listed assignment resolved through the ids of those.
struct Assembly {
    state: State,
    ids: Ids,
    with_ids: bool,
    user_keys: BTreeMap<Id, Box<str>>,
    role_keys: BTreeMap<Id, Box<str>>,
    tenant_keys: BTreeMap<Id, Box<str>>,
    /// Role assignment keys as resolved, made a set at the end.
    assignments: Vec<Box<str>>,
}

impl Assembly {
    fn new(
        resources: Vec<Listed<Resource>>,
        roles: Vec<Listed<Role>>,
        tenants: Vec<Listed<Tenant>>,
        users: Vec<Listed<User>>,
        with_ids: bool,
    ) -> Assembly {
        // Permit has been seen to put the e-mail in an assignment's `user` (permit-api.md §9): the
        // ids are authoritative, so keys are taken from the listings they point into.
        fn keys<T>(items: &[Listed<T>], key: fn(&T) -> &str) -> BTreeMap<Id, Box<str>> {
            items
                .iter()
                .filter_map(|l| Some((Id::new(l.id.as_deref()?), key(&l.object).into())))
                .collect()
        }
        let mut a = Assembly {
            state: State::default(),
            ids: Ids::new(),
            with_ids,
            user_keys: keys(&users, |u| &u.key),
            role_keys: keys(&roles, |r| &r.key),
            tenant_keys: keys(&tenants, |t| &t.key),
            assignments: Vec::new(),
        };
        for l in resources {
            a.id(Kind::PermitResource, &l.object.key, l.id.as_deref());
            a.state.resources.insert(l.object.key.clone(), l.object);
        }
        for l in roles {
            a.id(Kind::PermitRole, &l.object.key, l.id.as_deref());
            a.state.roles.insert(l.object.key.clone(), l.object);
        }
        for l in tenants {
            a.id(Kind::PermitTenant, &l.object.key, l.id.as_deref());
            a.state.tenants.insert(l.object.key.clone(), l.object);
        }
        // The most numerous kind: its map built in one go, nodes full.
        for l in &users {
            a.id(Kind::PermitUser, &l.object.key, l.id.as_deref());
        }
        a.state.users = users
            .into_iter()
            .map(|l| (l.object.key.clone(), l.object))
            .collect();
        a
    }

    fn id(&mut self, kind: Kind, key: &str, id: Option<&str>) {
        if let (true, Some(id)) = (self.with_ids, id) {
            self.ids.insert((kind, key.to_string()), id.to_string());
        }
    }

    fn assignment(&mut self, l: ListedAssignment) {
        let Some(mut a) = Assignment::parse(&l.key) else {
            return;
        };
        let by_id = |id: &Option<Id>, map: &BTreeMap<Id, Box<str>>| {
            id.as_ref()
                .and_then(|id| map.get(id))
                .map(|k| k.to_string())
        };
        if let Some(k) = by_id(&l.user_id, &self.user_keys) {
            a.user = k;
        }
        if let Some(k) = by_id(&l.role_id, &self.role_keys) {
            a.role = k;
        }
        if let Some(k) = by_id(&l.tenant_id, &self.tenant_keys) {
            a.tenant = k;
        }
        if self.with_ids
            && let Some(id) = &l.id
        {
            let id = id.to_string();
            self.id(Kind::RoleAssignment, &a.key(), Some(&id));
        }
        self.assignments.push(a.key().into());
    }

    fn finish(mut self) -> (State, Ids) {
        drop((self.user_keys, self.role_keys, self.tenant_keys));
        self.state.assignments = crate::model::Assignments::from_keys(self.assignments);
        // The other kinds are few: their maps are rebuilt full.
        crate::model::compact(&mut self.state.resources);
        crate::model::compact(&mut self.state.roles);
        crate::model::compact(&mut self.state.tenants);
        (self.state, self.ids)
    }
}

/// Role assignments only: the executor re-reads them when a bulk assign's outcome is unknown.
/// (Keys as listed: this is only used to find what is missing, where a mismatch costs a single
/// assign that Permit answers with 409.)
pub async fn read_assignments(
    client: &PermitClient,
) -> Result<BTreeMap<String, Assignment>, PermitError> {
    let items = client
        .list(&ep::ROLE_ASSIGNMENTS_LIST, "list role assignments")
        .await?;
    Ok(items
        .iter()
        .filter_map(assignment)
        .map(|a| (a.key(), a))
        .collect())
}

/// Tenants only, for the same reason.
pub async fn read_tenants(client: &PermitClient) -> Result<BTreeMap<String, Tenant>, PermitError> {
    let items = client.list(&ep::TENANTS_LIST, "list tenants").await?;
    Ok(items
        .iter()
        .filter_map(tenant)
        .map(|t| (t.key.clone(), t))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn ids_are_kept_exactly_whatever_their_form() {
        for text in [
            "3fa85f64-5717-4562-b3fc-2c963f66afa6",
            "3FA85F64-5717-4562-B3FC-2C963F66AFA6",
            "3fa85f6457174562b3fc2c963f66afa6",
            "not-a-uuid",
            "",
        ] {
            assert_eq!(Id::new(text).to_string(), text);
        }
        assert!(matches!(
            Id::new("3fa85f64-5717-4562-b3fc-2c963f66afa6"),
            Id::Uuid(_)
        ));
        // Permit's own form (32 hex digits) is held as a number too, not allocated.
        assert!(matches!(
            Id::new("3fa85f6457174562b3fc2c963f66afa6"),
            Id::Hex(_)
        ));
        assert!(matches!(
            Id::new("3FA85F6457174562B3FC2C963F66AFA6"),
            Id::Text(_)
        ));
        assert_eq!(std::mem::size_of::<Id>(), 32);
        assert_ne!(
            Id::new("3fa85f64-5717-4562-b3fc-2c963f66afa6"),
            Id::new("3fa85f64-5717-4562-b3fc-2c963f66afa7")
        );
    }

    #[test]
    fn listings_normalise_and_assignments_trust_ids_over_keys() {
        let users = [
            json!({"id": "u1", "key": "jane", "email": "jane@example.com",
                            "first_name": "", "attributes": {}}),
        ];
        let roles = [json!({"id": "r1", "key": "viewer", "name": "Viewer",
                            "permissions": ["post:read"], "extends": []})];
        let tenants = [json!({"id": "t1", "key": "acme", "name": "Acme", "description": null})];
        let resources = [json!({"key": "post", "name": "Post",
                                "actions": {"read": {"id": "a1", "key": "read", "name": "read"}}})];
        // The API bug: the e-mail where the key belongs.
        let assignments = [
            json!({"id": "ra1", "user": "jane@example.com", "role": "viewer", "tenant": "acme",
                                  "user_id": "u1", "role_id": "r1", "tenant_id": "t1"}),
        ];
        let (s, ids) = assemble(&resources, &roles, &tenants, &users, &assignments);
        assert_eq!(ids[&(Kind::PermitUser, "jane".to_string())], "u1");
        assert_eq!(
            ids[&(Kind::RoleAssignment, "jane/viewer/acme".to_string())],
            "ra1"
        );
        assert_eq!(
            s.assignments.keys().collect::<Vec<_>>(),
            ["jane/viewer/acme"]
        );
        assert_eq!(s.users["jane"].first_name, None, "empty strings are absent");
        assert_eq!(s.tenants["acme"].description, None);
        assert!(s.roles["viewer"].permissions.contains("post:read"));
        assert_eq!(s.resources["post"].actions["read"].name, "read");
        assert_eq!(
            s.resources["post"].attributes, None,
            "not reported, not compared"
        );
    }
}
