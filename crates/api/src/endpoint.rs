//! The endpoint table: one [`Endpoint`] per Permit REST call permit-sync makes.

/// The HTTP methods Permit's API is called with (no HTTP crate here: the client maps them).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Method {
    Get,
    Post,
    Put,
    Patch,
    Delete,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Patch => "PATCH",
            Method::Delete => "DELETE",
        }
    }
}

/// Where an endpoint's path lives: under the environment's facts, its schema, or at the top.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Area {
    /// `/v2/facts/{project}/{environment}/...`
    Facts,
    /// `/v2/schema/{project}/{environment}/...`
    Schema,
    /// `/v2/...`, not under an environment.
    Root,
}

/// The most specific of Permit's rate-limit classes an endpoint falls in (permit-api.md §7): the
/// class the client's metrics count it under. A request belongs to the less specific classes
/// too (every write to `Write`, everything to the overall limit); the client's limiter adds them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RateClass {
    /// Bulk endpoints (`/bulk`).
    Bulk,
    /// `POST /v2/schema/*`.
    SchemaWrite,
    /// DELETE requests.
    Delete,
    /// POST, PUT, PATCH.
    Write,
    /// Reads: only the overall limit.
    Read,
}

/// One REST endpoint: method, path template, metric label and rate-limit class.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Endpoint {
    pub method: Method,
    pub area: Area,
    /// The path after the area's prefix; each `{}` is filled with one percent-encoded key.
    pub template: &'static str,
    /// A stable name for metrics (`users.bulk_upsert`).
    pub label: &'static str,
    pub class: RateClass,
}

impl Endpoint {
    /// The path of this endpoint in an environment, `keys` filling the template's `{}` in order
    /// (each percent-encoded as one segment).
    pub fn path(&self, project: &str, environment: &str, keys: &[&str]) -> String {
        let mut out = match self.area {
            Area::Facts => format!("/v2/facts/{}/{}/", seg(project), seg(environment)),
            Area::Schema => format!("/v2/schema/{}/{}/", seg(project), seg(environment)),
            Area::Root => "/v2/".to_string(),
        };
        out.push_str(&self.fill(keys));
        out
    }

    /// The template with `keys` filled in, without the area's prefix (`roles/admin`), as errors
    /// name a path.
    pub fn fill(&self, keys: &[&str]) -> String {
        let mut out = String::with_capacity(self.template.len());
        let mut keys = keys.iter();
        let mut parts = self.template.split("{}");
        if let Some(first) = parts.next() {
            out.push_str(first);
        }
        for part in parts {
            out.push_str(&seg(keys.next().copied().unwrap_or_default()));
            out.push_str(part);
        }
        out
    }

    /// The number of keys the path takes.
    pub fn arity(&self) -> usize {
        self.template.matches("{}").count()
    }
}

const fn ep(
    method: Method,
    area: Area,
    template: &'static str,
    label: &'static str,
    class: RateClass,
) -> Endpoint {
    Endpoint {
        method,
        area,
        template,
        label,
        class,
    }
}

use Area::{Facts, Root, Schema};
use Method::{Delete, Get, Patch, Post, Put};

/// `GET /v2/api-key/scope`: the organization, project and environment of the key.
pub const API_KEY_SCOPE: Endpoint =
    ep(Get, Root, "api-key/scope", "api_key.scope", RateClass::Read);

pub const RESOURCES_LIST: Endpoint =
    ep(Get, Schema, "resources", "resources.list", RateClass::Read);
pub const RESOURCE_CREATE: Endpoint = ep(
    Post,
    Schema,
    "resources",
    "resources.create",
    RateClass::SchemaWrite,
);
pub const RESOURCE_PATCH: Endpoint = ep(
    Patch,
    Schema,
    "resources/{}",
    "resources.patch",
    RateClass::Write,
);
pub const RESOURCE_DELETE: Endpoint = ep(
    Delete,
    Schema,
    "resources/{}",
    "resources.delete",
    RateClass::Delete,
);

pub const ROLES_LIST: Endpoint = ep(Get, Schema, "roles", "roles.list", RateClass::Read);
pub const ROLE_GET: Endpoint = ep(Get, Schema, "roles/{}", "roles.get", RateClass::Read);
pub const ROLE_CREATE: Endpoint = ep(
    Post,
    Schema,
    "roles",
    "roles.create",
    RateClass::SchemaWrite,
);
pub const ROLE_PATCH: Endpoint = ep(Patch, Schema, "roles/{}", "roles.patch", RateClass::Write);
pub const ROLE_DELETE: Endpoint = ep(
    Delete,
    Schema,
    "roles/{}",
    "roles.delete",
    RateClass::Delete,
);
pub const ROLE_ADD_PERMISSIONS: Endpoint = ep(
    Post,
    Schema,
    "roles/{}/permissions",
    "roles.add_permissions",
    RateClass::SchemaWrite,
);
pub const ROLE_REMOVE_PERMISSIONS: Endpoint = ep(
    Delete,
    Schema,
    "roles/{}/permissions",
    "roles.remove_permissions",
    RateClass::Delete,
);
pub const ROLES_BULK_UPSERT: Endpoint = ep(
    Put,
    Schema,
    "bulk/roles",
    "roles.bulk_upsert",
    RateClass::Bulk,
);

pub const TENANTS_LIST: Endpoint = ep(Get, Facts, "tenants", "tenants.list", RateClass::Read);
pub const TENANT_CREATE: Endpoint = ep(Post, Facts, "tenants", "tenants.create", RateClass::Write);
pub const TENANT_PATCH: Endpoint = ep(
    Patch,
    Facts,
    "tenants/{}",
    "tenants.patch",
    RateClass::Write,
);
pub const TENANT_DELETE: Endpoint = ep(
    Delete,
    Facts,
    "tenants/{}",
    "tenants.delete",
    RateClass::Delete,
);
pub const TENANTS_BULK_CREATE: Endpoint = ep(
    Post,
    Facts,
    "bulk/tenants",
    "tenants.bulk_create",
    RateClass::Bulk,
);
pub const TENANTS_BULK_DELETE: Endpoint = ep(
    Delete,
    Facts,
    "bulk/tenants",
    "tenants.bulk_delete",
    RateClass::Bulk,
);

pub const USERS_LIST: Endpoint = ep(Get, Facts, "users", "users.list", RateClass::Read);
pub const USER_UPSERT: Endpoint = ep(Put, Facts, "users/{}", "users.upsert", RateClass::Write);
pub const USER_DELETE: Endpoint = ep(Delete, Facts, "users/{}", "users.delete", RateClass::Delete);
pub const USERS_BULK_UPSERT: Endpoint = ep(
    Put,
    Facts,
    "bulk/users",
    "users.bulk_upsert",
    RateClass::Bulk,
);
pub const USERS_BULK_DELETE: Endpoint = ep(
    Delete,
    Facts,
    "bulk/users",
    "users.bulk_delete",
    RateClass::Bulk,
);

pub const ROLE_ASSIGNMENTS_LIST: Endpoint = ep(
    Get,
    Facts,
    "role_assignments",
    "role_assignments.list",
    RateClass::Read,
);
pub const ROLE_ASSIGN: Endpoint = ep(
    Post,
    Facts,
    "role_assignments",
    "role_assignments.assign",
    RateClass::Write,
);
pub const ROLE_UNASSIGN: Endpoint = ep(
    Delete,
    Facts,
    "role_assignments",
    "role_assignments.unassign",
    RateClass::Delete,
);
pub const ROLE_ASSIGNMENTS_BULK_ASSIGN: Endpoint = ep(
    Post,
    Facts,
    "role_assignments/bulk",
    "role_assignments.bulk_assign",
    RateClass::Bulk,
);
pub const ROLE_ASSIGNMENTS_BULK_UNASSIGN: Endpoint = ep(
    Delete,
    Facts,
    "role_assignments/bulk",
    "role_assignments.bulk_unassign",
    RateClass::Bulk,
);

// ReBAC (issue 18). Routes from permit-model.md §3.1-3.2 (permitio/permit-python
// `permit/api/resource_roles.py`, `resource_relations.py`, `resource_instances.py`,
// `relationship_tuples.py`). In [`ALL`] (the local Permit serves them); [`REBAC`] lists them.

pub const RESOURCE_ROLES_LIST: Endpoint = ep(
    Get,
    Schema,
    "resources/{}/roles",
    "resource_roles.list",
    RateClass::Read,
);
pub const RESOURCE_ROLE_GET: Endpoint = ep(
    Get,
    Schema,
    "resources/{}/roles/{}",
    "resource_roles.get",
    RateClass::Read,
);
pub const RESOURCE_ROLE_CREATE: Endpoint = ep(
    Post,
    Schema,
    "resources/{}/roles",
    "resource_roles.create",
    RateClass::SchemaWrite,
);
pub const RESOURCE_ROLE_PATCH: Endpoint = ep(
    Patch,
    Schema,
    "resources/{}/roles/{}",
    "resource_roles.patch",
    RateClass::Write,
);
pub const RESOURCE_ROLE_DELETE: Endpoint = ep(
    Delete,
    Schema,
    "resources/{}/roles/{}",
    "resource_roles.delete",
    RateClass::Delete,
);
pub const RESOURCE_ROLE_ADD_PERMISSIONS: Endpoint = ep(
    Post,
    Schema,
    "resources/{}/roles/{}/permissions",
    "resource_roles.add_permissions",
    RateClass::SchemaWrite,
);
pub const RESOURCE_ROLE_REMOVE_PERMISSIONS: Endpoint = ep(
    Delete,
    Schema,
    "resources/{}/roles/{}/permissions",
    "resource_roles.remove_permissions",
    RateClass::Delete,
);

pub const RELATIONS_LIST: Endpoint = ep(
    Get,
    Schema,
    "resources/{}/relations",
    "relations.list",
    RateClass::Read,
);
pub const RELATION_CREATE: Endpoint = ep(
    Post,
    Schema,
    "resources/{}/relations",
    "relations.create",
    RateClass::SchemaWrite,
);
pub const RELATION_DELETE: Endpoint = ep(
    Delete,
    Schema,
    "resources/{}/relations/{}",
    "relations.delete",
    RateClass::Delete,
);

/// `POST resources/{resource}/roles/{role}/implicit_grants` with [`crate::request::DerivationWrite`].
pub const DERIVATION_CREATE: Endpoint = ep(
    Post,
    Schema,
    "resources/{}/roles/{}/implicit_grants",
    "derivations.create",
    RateClass::SchemaWrite,
);
/// `DELETE` with the same body as the create.
pub const DERIVATION_DELETE: Endpoint = ep(
    Delete,
    Schema,
    "resources/{}/roles/{}/implicit_grants",
    "derivations.delete",
    RateClass::Delete,
);
/// `PUT resources/{resource}/roles/{role}/implicit_grants/conditions` with
/// [`crate::request::DerivationConditions`].
pub const DERIVATION_CONDITIONS: Endpoint = ep(
    Put,
    Schema,
    "resources/{}/roles/{}/implicit_grants/conditions",
    "derivations.conditions",
    RateClass::Write,
);

pub const INSTANCES_LIST: Endpoint = ep(
    Get,
    Facts,
    "resource_instances",
    "resource_instances.list",
    RateClass::Read,
);
/// `GET resource_instances/{}`: by id or `type:key`.
pub const INSTANCE_GET: Endpoint = ep(
    Get,
    Facts,
    "resource_instances/{}",
    "resource_instances.get",
    RateClass::Read,
);
pub const INSTANCE_CREATE: Endpoint = ep(
    Post,
    Facts,
    "resource_instances",
    "resource_instances.create",
    RateClass::Write,
);
pub const INSTANCE_PATCH: Endpoint = ep(
    Patch,
    Facts,
    "resource_instances/{}",
    "resource_instances.patch",
    RateClass::Write,
);
pub const INSTANCE_DELETE: Endpoint = ep(
    Delete,
    Facts,
    "resource_instances/{}",
    "resource_instances.delete",
    RateClass::Delete,
);
/// `PUT bulk/resource_instances` (3,000 per call, permit-model.md §3.2).
pub const INSTANCES_BULK_UPSERT: Endpoint = ep(
    Put,
    Facts,
    "bulk/resource_instances",
    "resource_instances.bulk_upsert",
    RateClass::Bulk,
);
pub const INSTANCES_BULK_DELETE: Endpoint = ep(
    Delete,
    Facts,
    "bulk/resource_instances",
    "resource_instances.bulk_delete",
    RateClass::Bulk,
);

pub const TUPLES_LIST: Endpoint = ep(
    Get,
    Facts,
    "relationship_tuples",
    "relationship_tuples.list",
    RateClass::Read,
);
pub const TUPLE_CREATE: Endpoint = ep(
    Post,
    Facts,
    "relationship_tuples",
    "relationship_tuples.create",
    RateClass::Write,
);
/// `DELETE relationship_tuples` with [`crate::request::TupleDelete`].
pub const TUPLE_DELETE: Endpoint = ep(
    Delete,
    Facts,
    "relationship_tuples",
    "relationship_tuples.delete",
    RateClass::Delete,
);
/// `POST relationship_tuples/bulk` (1,000 per call; EAP in Permit).
pub const TUPLES_BULK_CREATE: Endpoint = ep(
    Post,
    Facts,
    "relationship_tuples/bulk",
    "relationship_tuples.bulk_create",
    RateClass::Bulk,
);
pub const TUPLES_BULK_DELETE: Endpoint = ep(
    Delete,
    Facts,
    "relationship_tuples/bulk",
    "relationship_tuples.bulk_delete",
    RateClass::Bulk,
);

/// The ReBAC endpoints (instance role assignments use the role assignment endpoints with
/// `resource_instance` set), a part of [`ALL`].
pub const REBAC: &[Endpoint] = &[
    RESOURCE_ROLES_LIST,
    RESOURCE_ROLE_GET,
    RESOURCE_ROLE_CREATE,
    RESOURCE_ROLE_PATCH,
    RESOURCE_ROLE_DELETE,
    RESOURCE_ROLE_ADD_PERMISSIONS,
    RESOURCE_ROLE_REMOVE_PERMISSIONS,
    RELATIONS_LIST,
    RELATION_CREATE,
    RELATION_DELETE,
    DERIVATION_CREATE,
    DERIVATION_DELETE,
    DERIVATION_CONDITIONS,
    INSTANCES_LIST,
    INSTANCE_GET,
    INSTANCE_CREATE,
    INSTANCE_PATCH,
    INSTANCE_DELETE,
    INSTANCES_BULK_UPSERT,
    INSTANCES_BULK_DELETE,
    TUPLES_LIST,
    TUPLE_CREATE,
    TUPLE_DELETE,
    TUPLES_BULK_CREATE,
    TUPLES_BULK_DELETE,
];

/// Every endpoint, for checks over the whole table.
pub const ALL: &[Endpoint] = &[
    API_KEY_SCOPE,
    RESOURCES_LIST,
    RESOURCE_CREATE,
    RESOURCE_PATCH,
    RESOURCE_DELETE,
    ROLES_LIST,
    ROLE_GET,
    ROLE_CREATE,
    ROLE_PATCH,
    ROLE_DELETE,
    ROLE_ADD_PERMISSIONS,
    ROLE_REMOVE_PERMISSIONS,
    ROLES_BULK_UPSERT,
    TENANTS_LIST,
    TENANT_CREATE,
    TENANT_PATCH,
    TENANT_DELETE,
    TENANTS_BULK_CREATE,
    TENANTS_BULK_DELETE,
    USERS_LIST,
    USER_UPSERT,
    USER_DELETE,
    USERS_BULK_UPSERT,
    USERS_BULK_DELETE,
    ROLE_ASSIGNMENTS_LIST,
    ROLE_ASSIGN,
    ROLE_UNASSIGN,
    ROLE_ASSIGNMENTS_BULK_ASSIGN,
    ROLE_ASSIGNMENTS_BULK_UNASSIGN,
    RESOURCE_ROLES_LIST,
    RESOURCE_ROLE_GET,
    RESOURCE_ROLE_CREATE,
    RESOURCE_ROLE_PATCH,
    RESOURCE_ROLE_DELETE,
    RESOURCE_ROLE_ADD_PERMISSIONS,
    RESOURCE_ROLE_REMOVE_PERMISSIONS,
    RELATIONS_LIST,
    RELATION_CREATE,
    RELATION_DELETE,
    DERIVATION_CREATE,
    DERIVATION_DELETE,
    DERIVATION_CONDITIONS,
    INSTANCES_LIST,
    INSTANCE_GET,
    INSTANCE_CREATE,
    INSTANCE_PATCH,
    INSTANCE_DELETE,
    INSTANCES_BULK_UPSERT,
    INSTANCES_BULK_DELETE,
    TUPLES_LIST,
    TUPLE_CREATE,
    TUPLE_DELETE,
    TUPLES_BULK_CREATE,
    TUPLES_BULK_DELETE,
];

/// Percent-encodes one path segment (user keys may hold `@`, `|`, `+`).
pub fn seg(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_fill_the_template_with_encoded_keys() {
        assert_eq!(
            USER_UPSERT.path("default", "local", &["jane@example.com"]),
            "/v2/facts/default/local/users/jane%40example.com"
        );
        assert_eq!(
            ROLE_ADD_PERMISSIONS.path("p", "e", &["admin"]),
            "/v2/schema/p/e/roles/admin/permissions"
        );
        assert_eq!(API_KEY_SCOPE.path("p", "e", &[]), "/v2/api-key/scope");
        assert_eq!(ROLE_GET.fill(&["a b"]), "roles/a%20b");
        assert_eq!(
            DERIVATION_CONDITIONS.path("p", "e", &["Comment", "Moderator"]),
            "/v2/schema/p/e/resources/Comment/roles/Moderator/implicit_grants/conditions"
        );
        assert_eq!(
            INSTANCE_GET.fill(&["Post:post-1"]),
            "resource_instances/Post%3Apost-1"
        );
    }

    #[test]
    fn the_table_is_consistent() {
        let mut labels = std::collections::BTreeSet::new();
        assert!(REBAC.iter().all(|e| ALL.contains(e)));
        for e in ALL {
            assert!(
                labels.insert((e.method.as_str(), e.label)),
                "{} twice",
                e.label
            );
            // The class follows from method and path, as Permit's limits are defined.
            let bulk = e.template.contains("bulk");
            let want = if bulk {
                RateClass::Bulk
            } else if e.method == Method::Post && e.area == Area::Schema {
                RateClass::SchemaWrite
            } else if e.method == Method::Delete {
                RateClass::Delete
            } else if e.method == Method::Get {
                RateClass::Read
            } else {
                RateClass::Write
            };
            assert_eq!(e.class, want, "{}", e.label);
        }
    }
}
