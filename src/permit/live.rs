//! Reads the live environment: every synced kind, paged, concurrently, into the normalised model.

use super::{PermitClient, PermitError};
use crate::kinds::Kind;
use crate::kinds::part_key;
use crate::model::{
    Action, Assignment, AttributeDef, Attrs, Derivation, Instance, Relation, Resource,
    ResourceRole, Role, State, Tenant, Tuple, User,
};
use permit_api::endpoint as ep;
use permit_api::response::{self as wire, Identified as _, Str};
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

/// A listed string that may be a key or may be missing while its id is given.
fn key_or_id(key: &Option<Str<'_>>, id: &Option<Str<'_>>) -> KeyOrId {
    match (s(key), s(id)) {
        (Some(k), _) => KeyOrId::Key(k),
        (None, Some(id)) => KeyOrId::Id(Id::new(&id)),
        (None, None) => KeyOrId::Missing,
    }
}

/// A reference to another object as listed: its key, or only its id (resolved once the objects
/// it points into are listed).
#[derive(Clone, Debug)]
enum KeyOrId {
    Key(String),
    Id(Id),
    Missing,
}

impl KeyOrId {
    fn resolve(&self, keys: &BTreeMap<Id, Box<str>>) -> Option<String> {
        match self {
            KeyOrId::Key(k) => Some(k.clone()),
            KeyOrId::Id(id) => keys.get(id).map(|k| k.to_string()),
            KeyOrId::Missing => None,
        }
    }
}

/// A resource as listed, with what Permit embeds in it (`ResourceRead.relations`, `.roles`).
pub struct ListedResource {
    resource: Listed<Resource>,
    relations: Vec<ListedRelation>,
    roles: Vec<ListedRole>,
    /// An embedded role came without `granted_to` (absent or `null`): the resource's roles are
    /// listed on their own (`GET resources/{r}/roles`), whose items carry it. permit-model.md
    /// §3.1 leaves it unverified whether Permit's resource listing fills it in.
    roles_incomplete: bool,
}

/// An embedded relation (`RelationBlockRead`: the key is the map's, the subject resource by key
/// or id).
struct ListedRelation {
    key: String,
    subject: KeyOrId,
    name: Option<String>,
    description: Option<String>,
}

/// A resource role with its derivations, the source roles by key or id.
pub struct ListedRole {
    role: ResourceRole,
    id: Option<Box<str>>,
    derivations: Vec<ListedDerivation>,
}

struct ListedDerivation {
    on_resource: KeyOrId,
    role: KeyOrId,
    relation: String,
}

fn listed_resource(v: &Value) -> Option<ListedResource> {
    let r: wire::ResourceRead = parsed(v)?;
    let resource = resource_of(&r)?;
    let key = resource.key.clone();
    let relations = r
        .relations
        .iter()
        .filter_map(|(k, v)| {
            let b: wire::RelationBrief = parsed(v)?;
            Some(ListedRelation {
                key: k.to_string(),
                subject: key_or_id(&b.resource, &b.resource_id),
                name: s(&b.relation_name),
                description: s(&b.description),
            })
        })
        .collect();
    let mut roles_incomplete = false;
    let roles = r
        .roles
        .iter()
        .filter_map(|(k, v)| {
            roles_incomplete |= v.get("granted_to").is_none_or(Value::is_null);
            let read: wire::ResourceRoleRead = parsed(v)?;
            resource_role_of(&key, Some(k), &read)
        })
        .collect();
    Some(ListedResource {
        resource: Listed {
            object: resource,
            id: r.id().filter(|s| !s.is_empty()).map(Into::into),
        },
        relations,
        roles,
        roles_incomplete,
    })
}

/// A resource role as Permit lists it, normalised as `desired::resource_parts` normalises a
/// declared one: name defaults to the key, permissions are bare action keys, and the
/// derivation option is `granted_to.when.no_direct_roles_on_object` (Permit's default, `false`,
/// when it reports no `granted_to`).
fn resource_role_of(
    resource: &str,
    map_key: Option<&Str<'_>>,
    r: &wire::ResourceRoleRead,
) -> Option<ListedRole> {
    let key = s(&r.key).or_else(|| map_key.map(|k| k.to_string()))?;
    let when = r.granted_to.as_ref().and_then(|g| g.when.as_ref());
    let no_direct = when
        .and_then(|w| w.get("no_direct_roles_on_object"))
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let derivations = r
        .granted_to
        .iter()
        .flat_map(|g| &g.users_with_role)
        .filter_map(|d| {
            Some(ListedDerivation {
                on_resource: key_or_id(&d.on_resource, &d.resource_id),
                role: key_or_id(&d.role, &d.role_id),
                relation: s(&d.linked_by_relation)?,
            })
        })
        .collect();
    Some(ListedRole {
        role: ResourceRole {
            resource: resource.to_string(),
            name: s(&r.name).unwrap_or_else(|| key.clone()),
            description: s(&r.description),
            permissions: r
                .permissions
                .iter()
                .map(|p| crate::desired::bare_action(resource, p).to_string())
                .collect(),
            extends: strings(&r.extends).collect(),
            attributes: attrs(&r.attributes),
            no_direct_roles_on_object: Some(no_direct),
            key,
        },
        id: r.id().filter(|s| !s.is_empty()).map(Into::into),
        derivations,
    })
}

/// A listed resource instance, its resource and tenant by key or id.
pub struct ListedInstance {
    key: String,
    resource: KeyOrId,
    tenant: KeyOrId,
    attributes: Option<Attrs>,
    id: Option<Id>,
}

fn listed_instance(v: &Value) -> Option<ListedInstance> {
    let i: wire::InstanceRead = parsed(v)?;
    Some(ListedInstance {
        key: s(&i.key)?,
        resource: key_or_id(&i.resource, &i.resource_id),
        tenant: key_or_id(&i.tenant, &i.tenant_id),
        attributes: attrs(&i.attributes),
        id: s(&i.id).map(|t| Id::new(&t)),
    })
}

/// Permit ids (UUIDs) by kind and key: what the Kubernetes controller reports in `status.permitId`.
/// Recorded for resources, tenant roles, tenants, users, role assignments, resource roles
/// (`Res#role`), resource instances (`Res:key`) and relationship tuples; relations (Permit's
/// resource listing embeds them without an id) and derivations (no id of their own) have none.
pub type Ids = BTreeMap<(Kind, String), String>;

/// Every synced kind, the listings run concurrently (the limiter paces them).
pub async fn read(client: &PermitClient) -> Result<State, PermitError> {
    read_listed(client, false).await.map(|(state, _)| state)
}

/// [`read`], keeping the id of every object too.
pub async fn read_with_ids(client: &PermitClient) -> Result<(State, Ids), PermitError> {
    read_listed(client, true).await
}

/// Each page is reduced to the model as it arrives: the raw JSON of a large environment (a
/// dozen fields per assignment) would otherwise be held whole, many times the model's size.
/// Role assignments and relationship tuples, the most numerous, are listed once the kinds they
/// point into (users, roles, tenants, resource roles, instances) are known, so each page is
/// resolved to keys and stored as it comes rather than held with its ids. The roles of a
/// resource whose listing lacks their derivations are listed with them.
async fn read_listed(client: &PermitClient, with_ids: bool) -> Result<(State, Ids), PermitError> {
    let (resources, roles, tenants, users, instances) = tokio::try_join!(
        client.list_map(&ep::RESOURCES_LIST, "list resources", |v| {
            listed_resource(&v)
        }),
        client.list_map(&ep::ROLES_LIST, "list roles", |v| listed(&v, role_of)),
        client.list_map(&ep::TENANTS_LIST, "list tenants", |v| {
            listed(&v, tenant_of)
        }),
        client.list_map(&ep::USERS_LIST, "list users", |v| listed(&v, user_of)),
        client.list_map(&ep::INSTANCES_LIST, "list resource instances", |v| {
            listed_instance(&v)
        }),
    )?;
    let mut resources = resources;
    let incomplete: Vec<usize> = (0..resources.len())
        .filter(|&i| resources[i].roles_incomplete)
        .collect();
    let fetched = futures::future::try_join_all(incomplete.iter().map(|&i| {
        let key = resources[i].resource.object.key.clone();
        async move {
            let what = format!("list roles of resource {key}");
            let roles = client
                .list_map_at(&ep::RESOURCE_ROLES_LIST, &[&key], &what, |v| {
                    let r: wire::ResourceRoleRead = parsed(&v)?;
                    resource_role_of(&key, None, &r)
                })
                .await?;
            Ok::<_, PermitError>(roles)
        }
    }))
    .await?;
    for (i, roles) in incomplete.into_iter().zip(fetched) {
        resources[i].roles = roles;
    }
    let assembly = Assembly::new(resources, roles, tenants, users, instances, with_ids);
    let keys = &assembly.keys;
    let mut assignments = Vec::new();
    let mut assignment_ids = Ids::new();
    let mut tuples = Vec::new();
    let mut tuple_ids = Ids::new();
    tokio::try_join!(
        client.list_each(
            &ep::ROLE_ASSIGNMENTS_LIST,
            "list role assignments",
            // Listed after the others: as many pages in flight as four of them had.
            2 * super::client::PAGES_IN_FLIGHT,
            |v| {
                if let Some(l) = ListedAssignment::of(&v) {
                    keys.assignment(l, with_ids, &mut assignments, &mut assignment_ids);
                }
            },
        ),
        client.list_each(
            &ep::TUPLES_LIST,
            "list relationship tuples",
            2 * super::client::PAGES_IN_FLIGHT,
            |v| keys.tuple(&v, with_ids, &mut tuples, &mut tuple_ids),
        ),
    )?;
    let listed = assembly.finish(assignments, assignment_ids, tuples, tuple_ids);
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
    instance_id: Option<Id>,
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
            instance_id: id(&a.resource_instance_id),
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

/// Raw listings, each kind's items as Permit lists them (tests): `resource_roles` holds the
/// `GET resources/{r}/roles` listing of a resource whose embedded roles lack `granted_to`.
#[derive(Debug, Default)]
pub struct Listings {
    pub resources: Vec<Value>,
    pub resource_roles: BTreeMap<String, Vec<Value>>,
    pub roles: Vec<Value>,
    pub tenants: Vec<Value>,
    pub users: Vec<Value>,
    pub instances: Vec<Value>,
    pub tuples: Vec<Value>,
    pub assignments: Vec<Value>,
}

/// The normalised state of raw listings, with the id of every object.
pub fn assemble(l: &Listings) -> (State, Ids) {
    fn each<'v, W, T>(items: &'v [Value], reduce: fn(&W) -> Option<T>) -> Vec<Listed<T>>
    where
        W: Deserialize<'v> + wire::Identified,
    {
        items.iter().filter_map(|v| listed(v, reduce)).collect()
    }
    let mut resources: Vec<ListedResource> =
        l.resources.iter().filter_map(listed_resource).collect();
    for r in resources.iter_mut().filter(|r| r.roles_incomplete) {
        if let Some(items) = l.resource_roles.get(&r.resource.object.key) {
            let key = &r.resource.object.key;
            r.roles = items
                .iter()
                .filter_map(|v| resource_role_of(key, None, &parsed(v)?))
                .collect();
        }
    }
    let assembly = Assembly::new(
        resources,
        each(&l.roles, role_of),
        each(&l.tenants, tenant_of),
        each(&l.users, user_of),
        l.instances.iter().filter_map(listed_instance).collect(),
        true,
    );
    let (mut assignments, mut assignment_ids) = (Vec::new(), Ids::new());
    for a in l.assignments.iter().filter_map(ListedAssignment::of) {
        assembly
            .keys
            .assignment(a, true, &mut assignments, &mut assignment_ids);
    }
    let (mut tuples, mut tuple_ids) = (Vec::new(), Ids::new());
    for t in &l.tuples {
        assembly.keys.tuple(t, true, &mut tuples, &mut tuple_ids);
    }
    assembly.finish(assignments, assignment_ids, tuples, tuple_ids)
}

/// The state being assembled from listings: every kind but role assignments and tuples first,
/// then each listed assignment and tuple resolved through the ids of those ([`Keys`]).
struct Assembly {
    state: State,
    ids: Ids,
    keys: Keys,
}

/// The keys of what assignments and tuples point into, by Permit id.
struct Keys {
    user: BTreeMap<Id, Box<str>>,
    role: BTreeMap<Id, Box<str>>,
    tenant: BTreeMap<Id, Box<str>>,
    /// Resource roles, as `Res#key`.
    resource_role: BTreeMap<Id, Box<str>>,
    /// Resource instances, as `Res:key`.
    instance: BTreeMap<Id, Box<str>>,
}

fn record(ids: &mut Ids, with_ids: bool, kind: Kind, key: &str, id: Option<&str>) {
    if let (true, Some(id)) = (with_ids, id) {
        ids.insert((kind, key.to_string()), id.to_string());
    }
}

impl Assembly {
    fn new(
        resources: Vec<ListedResource>,
        roles: Vec<Listed<Role>>,
        tenants: Vec<Listed<Tenant>>,
        users: Vec<Listed<User>>,
        instances: Vec<ListedInstance>,
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
        let resource_keys: BTreeMap<Id, Box<str>> = resources
            .iter()
            .filter_map(|r| {
                let id = Id::new(r.resource.id.as_deref()?);
                Some((id, r.resource.object.key.as_str().into()))
            })
            .collect();
        let mut a = Assembly {
            state: State::default(),
            ids: Ids::new(),
            keys: Keys {
                user: keys(&users, |u| &u.key),
                role: keys(&roles, |r| &r.key),
                tenant: keys(&tenants, |t| &t.key),
                resource_role: BTreeMap::new(),
                instance: BTreeMap::new(),
            },
        };
        let ids = &mut a.ids;
        let mut derivations = Vec::new();
        for r in resources {
            let resource = r.resource.object.key.clone();
            record(
                ids,
                with_ids,
                Kind::PermitResource,
                &resource,
                r.resource.id.as_deref(),
            );
            a.state
                .resources
                .insert(resource.clone(), r.resource.object);
            for rel in r.relations {
                let Some(subject) = rel.subject.resolve(&resource_keys) else {
                    tracing::warn!(
                        resource,
                        relation = rel.key,
                        "a listed relation names no subject resource; left out"
                    );
                    continue;
                };
                let relation = Relation {
                    resource: resource.clone(),
                    name: rel.name.unwrap_or_else(|| rel.key.clone()),
                    description: rel.description,
                    subject,
                    key: rel.key,
                };
                a.state
                    .relations
                    .insert(part_key(&resource, &relation.key), relation);
            }
            for role in r.roles {
                let key = part_key(&resource, &role.role.key);
                record(ids, with_ids, Kind::ResourceRole, &key, role.id.as_deref());
                if let Some(id) = role.id.as_deref() {
                    a.keys
                        .resource_role
                        .insert(Id::new(id), key.as_str().into());
                }
                derivations.extend(role.derivations.into_iter().map(|d| (key.clone(), d)));
                a.state.resource_roles.insert(key, role.role);
            }
        }
        // Derivations name their source role by key or id: resolved once every role is known.
        for (role, d) in derivations {
            let by_id = match &d.role {
                KeyOrId::Id(id) => a.keys.resource_role.get(id).map(|k| k.to_string()),
                _ => None,
            };
            let source = match (by_id, d.on_resource.resolve(&resource_keys), &d.role) {
                (Some(source), _, _) => source,
                (None, Some(on), KeyOrId::Key(k)) => part_key(&on, k),
                _ => {
                    tracing::warn!(
                        role,
                        "a listed role derivation names no source role; left out"
                    );
                    continue;
                }
            };
            let d = Derivation {
                role,
                source,
                relation: d.relation,
            };
            a.state.derivations.insert(d.key(), d);
        }
        for l in roles {
            record(
                ids,
                with_ids,
                Kind::PermitRole,
                &l.object.key,
                l.id.as_deref(),
            );
            a.state.roles.insert(l.object.key.clone(), l.object);
        }
        for l in tenants {
            record(
                ids,
                with_ids,
                Kind::PermitTenant,
                &l.object.key,
                l.id.as_deref(),
            );
            a.state.tenants.insert(l.object.key.clone(), l.object);
        }
        // The most numerous kinds: their maps built in one go, nodes full.
        for l in &users {
            record(
                ids,
                with_ids,
                Kind::PermitUser,
                &l.object.key,
                l.id.as_deref(),
            );
        }
        a.state.users = users
            .into_iter()
            .map(|l| (l.object.key.clone(), l.object))
            .collect();
        let mut listed_instances = Vec::with_capacity(instances.len());
        for i in instances {
            let Some(resource) = i.resource.resolve(&resource_keys) else {
                tracing::warn!(
                    key = i.key,
                    "a listed resource instance names no resource; left out"
                );
                continue;
            };
            let instance = Instance {
                tenant: i
                    .tenant
                    .resolve(&a.keys.tenant)
                    .unwrap_or_else(|| crate::kinds::DEFAULT_TENANT.into()),
                attributes: i.attributes,
                key: i.key,
                resource,
            };
            let reference = instance.reference();
            if let Some(id) = i.id {
                if with_ids {
                    a.ids.insert(
                        (Kind::PermitResourceInstance, reference.clone()),
                        id.to_string(),
                    );
                }
                a.keys.instance.insert(id, reference.as_str().into());
            }
            listed_instances.push((reference, instance));
        }
        a.state.instances = listed_instances.into_iter().collect();
        a
    }

    fn finish(
        mut self,
        assignments: Vec<Box<str>>,
        assignment_ids: Ids,
        tuples: Vec<Tuple>,
        tuple_ids: Ids,
    ) -> (State, Ids) {
        drop(self.keys);
        self.state.assignments = crate::model::Assignments::from_keys(assignments);
        self.state.tuples = tuples.into_iter().map(|t| (t.key(), t)).collect();
        self.ids.extend(assignment_ids);
        self.ids.extend(tuple_ids);
        // The other kinds are few: their maps are rebuilt full.
        crate::model::compact(&mut self.state.resources);
        crate::model::compact(&mut self.state.roles);
        crate::model::compact(&mut self.state.tenants);
        crate::model::compact(&mut self.state.relations);
        crate::model::compact(&mut self.state.resource_roles);
        crate::model::compact(&mut self.state.derivations);
        (self.state, self.ids)
    }
}

impl Keys {
    fn by_id(id: &Option<Id>, map: &BTreeMap<Id, Box<str>>) -> Option<String> {
        id.as_ref()
            .and_then(|id| map.get(id))
            .map(|k| k.to_string())
    }

    /// An instance as a tuple or an assignment names it: `type:key`, or its id.
    fn instance(&self, listed: Option<String>, id: &Option<Id>) -> Option<String> {
        if let Some(k) = Keys::by_id(id, &self.instance) {
            return Some(k);
        }
        let listed = listed?;
        if listed.contains(':') {
            return Some(listed);
        }
        Some(
            self.instance
                .get(&Id::new(&listed))
                .map_or(listed, |k| k.to_string()),
        )
    }

    /// A listed role assignment resolved to keys (pushed to `out`, its id to `ids`). For an
    /// instance assignment the role is the bare key of a role of the instance's resource.
    fn assignment(
        &self,
        l: ListedAssignment,
        with_ids: bool,
        out: &mut Vec<Box<str>>,
        ids: &mut Ids,
    ) {
        let Some(mut a) = Assignment::parse(&l.key) else {
            return;
        };
        if let Some(k) = Keys::by_id(&l.user_id, &self.user) {
            a.user = k;
        }
        if let Some(k) = Keys::by_id(&l.tenant_id, &self.tenant) {
            a.tenant = k;
        }
        if a.resource_instance.is_some() || l.instance_id.is_some() {
            a.resource_instance = self.instance(a.resource_instance.take(), &l.instance_id);
        }
        match &a.resource_instance {
            None => {
                if let Some(k) = Keys::by_id(&l.role_id, &self.role) {
                    a.role = k;
                }
            }
            Some(instance) => {
                let resource = instance.split_once(':').map_or("", |(r, _)| r);
                if let Some(k) = Keys::by_id(&l.role_id, &self.resource_role) {
                    a.role = Derivation::split(&k).1.to_string();
                } else if let Some((r, k)) = a.role.split_once('#')
                    && r == resource
                {
                    a.role = k.to_string();
                }
            }
        }
        let key = a.key();
        if with_ids && let Some(id) = &l.id {
            ids.insert((Kind::RoleAssignment, key.clone()), id.to_string());
        }
        out.push(key.into());
    }

    /// A listed relationship tuple resolved to keys (pushed to `out`, its id to `ids`).
    fn tuple(&self, v: &Value, with_ids: bool, out: &mut Vec<Tuple>, ids: &mut Ids) {
        let Some(t) = parsed::<wire::TupleRead>(v) else {
            return;
        };
        let id = |k: &Option<Str<'_>>| s(k).map(|t| Id::new(&t));
        let (Some(subject), Some(object), Some(relation)) = (
            self.instance(s(&t.subject), &id(&t.subject_id)),
            self.instance(s(&t.object), &id(&t.object_id)),
            s(&t.relation),
        ) else {
            tracing::warn!(tuple = %v, "a listed relationship tuple lacks its subject, relation or object; left out");
            return;
        };
        let tuple = Tuple {
            tenant: key_or_id(&t.tenant, &t.tenant_id)
                .resolve(&self.tenant)
                .unwrap_or_else(|| crate::kinds::DEFAULT_TENANT.into()),
            subject,
            relation,
            object,
        };
        if with_ids && let Some(tid) = s(&t.id) {
            ids.insert((Kind::PermitRelationshipTuple, tuple.key()), tid);
        }
        out.push(tuple);
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
        let (s, ids) = assemble(&Listings {
            resources: resources.into(),
            roles: roles.into(),
            tenants: tenants.into(),
            users: users.into(),
            assignments: assignments.into(),
            ..Listings::default()
        });
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

    /// The blogging platform's ReBAC schema as Permit lists it: `Comment` embeds its relation
    /// and roles, `Moderator` derived from `Post#Author` through `parent`.
    fn rebac_resources(with_granted_to: bool) -> Vec<Value> {
        let moderator = if with_granted_to {
            json!({"id": "rr2", "key": "Moderator", "name": "Moderator", "description": "",
                   "permissions": ["Comment:read", "delete"], "extends": ["Author"],
                   "granted_to": {"id": "g1", "when": {"no_direct_roles_on_object": true},
                       "users_with_role": [{"role": "Author", "on_resource": "Post",
                           "linked_by_relation": "parent", "role_id": "rr3",
                           "resource_id": "res1", "relation_id": "rel1"}]}})
        } else {
            json!({"id": "rr2", "key": "Moderator", "name": "Moderator",
                   "permissions": ["read", "delete"], "extends": ["Author"]})
        };
        vec![
            json!({"id": "res1", "key": "Post", "name": "Post",
                   "actions": {"read": {"name": "read"}},
                   "roles": {"Author": {"id": "rr3", "key": "Author", "name": "Author",
                       "permissions": ["read"], "extends": [],
                       "granted_to": null}}}),
            json!({"id": "res2", "key": "Comment", "name": "Comment",
                   "actions": {"read": {}, "delete": {}},
                   "relations": {"parent": {"relation_name": "parent",
                       "resource": "Post", "resource_id": "res1", "description": null}},
                   "roles": {"Author": {"id": "rr1", "key": "Author", "name": "Author",
                       "permissions": ["read"], "extends": [],
                       "granted_to": {"id": "g0", "users_with_role": [], "when": null}},
                       "Moderator": moderator}}),
        ]
    }

    fn rebac_facts() -> Listings {
        Listings {
            tenants: vec![json!({"id": "t1", "key": "default", "name": "Default"})],
            users: vec![json!({"id": "u1", "key": "john"})],
            instances: vec![
                json!({"id": "i1", "key": "post-1", "resource": "Post", "resource_id": "res1",
                       "tenant": "default", "tenant_id": "t1", "attributes": {"premium": false}}),
                // Only ids: resolved through the listings they point into.
                json!({"id": "i2", "key": "comment-1", "resource_id": "res2", "tenant_id": "t1",
                       "attributes": {}}),
            ],
            tuples: vec![
                json!({"id": "tp1", "subject": "Post:post-1", "relation": "parent",
                       "object": "Comment:comment-1", "tenant": "default"}),
                json!({"id": "tp2", "subject_id": "i1", "relation": "parent", "object_id": "i2",
                       "tenant_id": "t1"}),
            ],
            assignments: vec![
                json!({"id": "ra1", "user": "john", "role": "Author", "tenant": "default",
                       "resource_instance": "Post:post-1", "role_id": "rr3",
                       "resource_instance_id": "i1", "user_id": "u1", "tenant_id": "t1"}),
                // The instance by id only, the role by id: a role of the instance's resource.
                json!({"id": "ra2", "user": "john", "role": "rr1", "tenant": "default",
                       "resource_instance": "i2", "role_id": "rr1"}),
            ],
            ..Listings::default()
        }
    }

    #[test]
    fn rebac_listings_normalise_as_declared_objects_do() {
        let (s, ids) = assemble(&Listings {
            resources: rebac_resources(true),
            ..rebac_facts()
        });
        let rel = &s.relations["Comment#parent"];
        assert_eq!(
            (rel.subject.as_str(), rel.name.as_str(), &rel.description),
            ("Post", "parent", &None)
        );
        let m = &s.resource_roles["Comment#Moderator"];
        assert_eq!(
            m.permissions.iter().collect::<Vec<_>>(),
            ["delete", "read"],
            "bare action keys"
        );
        assert_eq!(m.extends.iter().collect::<Vec<_>>(), ["Author"]);
        assert_eq!(m.description, None);
        assert_eq!(m.no_direct_roles_on_object, Some(true));
        assert_eq!(
            s.resource_roles["Post#Author"].no_direct_roles_on_object,
            Some(false),
            "no granted_to: Permit's default"
        );
        assert_eq!(
            s.derivations.keys().collect::<Vec<_>>(),
            ["Comment#Moderator/Post#Author/parent"]
        );
        assert_eq!(
            s.instances.keys().collect::<Vec<_>>(),
            ["Comment:comment-1", "Post:post-1"]
        );
        assert_eq!(s.instances["Comment:comment-1"].tenant, "default");
        assert_eq!(
            s.instances["Post:post-1"].attributes,
            Some(Attrs::from([("premium".to_string(), json!(false))]))
        );
        assert_eq!(
            s.tuples.keys().collect::<Vec<_>>(),
            ["Post:post-1/parent/Comment:comment-1"],
            "the same tuple by keys and by ids"
        );
        assert_eq!(
            s.assignments.keys().collect::<Vec<_>>(),
            [
                "john/Author/default/Comment:comment-1",
                "john/Author/default/Post:post-1"
            ]
        );
        let id = |k: Kind, key: &str| ids.get(&(k, key.to_string())).map(String::as_str);
        assert_eq!(id(Kind::ResourceRole, "Comment#Moderator"), Some("rr2"));
        assert_eq!(id(Kind::PermitResourceInstance, "Post:post-1"), Some("i1"));
        assert_eq!(
            id(
                Kind::PermitRelationshipTuple,
                "Post:post-1/parent/Comment:comment-1"
            ),
            Some("tp2")
        );
        assert_eq!(id(Kind::ResourceRelation, "Comment#parent"), None);
    }

    #[test]
    fn roles_listed_without_granted_to_are_read_from_their_resource() {
        let mut l = Listings {
            resources: rebac_resources(false),
            ..Listings::default()
        };
        let (s, _) = assemble(&l);
        assert!(s.derivations.is_empty(), "nothing to read them from");
        let moderator = rebac_resources(true)[1]["roles"]["Moderator"].clone();
        let author = rebac_resources(true)[1]["roles"]["Author"].clone();
        l.resource_roles
            .insert("Comment".into(), vec![author, moderator]);
        let (s, _) = assemble(&l);
        assert_eq!(
            s.derivations.keys().collect::<Vec<_>>(),
            ["Comment#Moderator/Post#Author/parent"]
        );
        assert_eq!(
            s.resource_roles["Comment#Moderator"].no_direct_roles_on_object,
            Some(true)
        );
        let post = listed_resource(&l.resources[0]).unwrap();
        assert!(
            post.roles_incomplete,
            "`granted_to: null` is not trusted either"
        );
    }
}
