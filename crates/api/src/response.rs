//! Response bodies: Permit's read models (`UserRead`, `TenantRead`, ...) with every field the
//! official SDKs require (permit-api.md §10). The local Permit writes them; the client reads them,
//! borrowing the strings from the listed page (`#[serde(borrow)]`: no copy per object).
//!
//! Fields are declared in alphabetical order, the order the JSON objects were written in before
//! they were typed. Ids are Permit's form (32 lowercase hex digits). Fields the client reads are
//! `#[serde(default)]`, so a sparse answer still reads; `Option`s serialise as `null`, never absent.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::borrow::Cow;
use std::collections::BTreeMap;

/// A free-form attribute map.
pub type Attrs = serde_json::Map<String, Value>;

/// A string borrowed where it can be: from the listed page when the client reads one (serde
/// borrows a bare `Cow<str>` field but not one inside an `Option`, a `Vec` or a map key, so the
/// borrowing is this type's own), from the store when the local Permit writes one.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Str<'a>(pub Cow<'a, str>);

impl Str<'_> {
    pub fn into_owned(self) -> String {
        self.0.into_owned()
    }
}

impl std::ops::Deref for Str<'_> {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for Str<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'a> From<&'a str> for Str<'a> {
    fn from(s: &'a str) -> Str<'a> {
        Str(Cow::Borrowed(s))
    }
}

impl From<String> for Str<'_> {
    fn from(s: String) -> Self {
        Str(Cow::Owned(s))
    }
}

impl Serialize for Str<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Str<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Str<'a>, D::Error> {
        struct Visit;
        impl<'de> serde::de::Visitor<'de> for Visit {
            type Value = Str<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Str<'de>, E> {
                Ok(Str(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Str<'de>, E> {
                Ok(Str(Cow::Owned(v.to_string())))
            }
            fn visit_string<E>(self, v: String) -> Result<Str<'de>, E> {
                Ok(Str(Cow::Owned(v)))
            }
        }
        d.deserialize_str(Visit)
    }
}

/// `GET /v2/api-key/scope`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ScopeRead<'a> {
    #[serde(borrow, default)]
    pub environment_id: Option<Str<'a>>,
    #[serde(borrow, default)]
    pub organization_id: Option<Str<'a>>,
    #[serde(borrow, default)]
    pub project_id: Option<Str<'a>>,
}

/// A timestamp as Permit writes it (RFC 3339), kept as text: the client never reads it.
pub type Stamp<'a> = Option<Str<'a>>;

/// An action as a resource lists it (`actions: {key → ActionBrief}`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ActionBrief<'a> {
    #[serde(default)]
    pub attributes: Option<Cow<'a, Attrs>>,
    #[serde(borrow, default)]
    pub description: Option<Str<'a>>,
    #[serde(borrow, default)]
    pub id: Option<Str<'a>>,
    #[serde(borrow, default)]
    pub key: Option<Str<'a>>,
    #[serde(borrow, default)]
    pub name: Option<Str<'a>>,
}

/// `ResourceRead`: an item of `GET resources`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ResourceRead<'a> {
    #[serde(borrow, default)]
    pub action_groups: BTreeMap<Str<'a>, Value>,
    #[serde(borrow, default)]
    pub actions: BTreeMap<Str<'a>, ActionBrief<'a>>,
    /// The attribute definitions (`key → {type, description}`), free-form.
    #[serde(default)]
    pub attributes: Option<Cow<'a, Value>>,
    #[serde(borrow, default)]
    pub created_at: Stamp<'a>,
    #[serde(borrow, default)]
    pub description: Option<Str<'a>>,
    #[serde(borrow, default)]
    pub environment_id: Option<Str<'a>>,
    #[serde(borrow, default)]
    pub id: Option<Str<'a>>,
    #[serde(borrow, default)]
    pub key: Option<Str<'a>>,
    #[serde(borrow, default)]
    pub name: Option<Str<'a>>,
    #[serde(borrow, default)]
    pub organization_id: Option<Str<'a>>,
    #[serde(borrow, default)]
    pub project_id: Option<Str<'a>>,
    #[serde(borrow, default)]
    pub relations: BTreeMap<Str<'a>, Value>,
    #[serde(borrow, default)]
    pub roles: BTreeMap<Str<'a>, Value>,
    #[serde(default)]
    pub type_attributes: Option<Cow<'a, Value>>,
    #[serde(borrow, default)]
    pub updated_at: Stamp<'a>,
    #[serde(borrow, default)]
    pub urn: Option<Str<'a>>,
}

/// `ResourceActionRead`: `GET resources/{}/actions[/{}]`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ActionRead<'a> {
    #[serde(default)]
    pub attributes: Option<Cow<'a, Attrs>>,
    #[serde(borrow, default)]
    pub created_at: Stamp<'a>,
    #[serde(borrow, default)]
    pub description: Option<Str<'a>>,
    #[serde(borrow, default)]
    pub environment_id: Option<Str<'a>>,
    #[serde(borrow, default)]
    pub id: Option<Str<'a>>,
    #[serde(borrow, default)]
    pub key: Option<Str<'a>>,
    #[serde(borrow, default)]
    pub name: Option<Str<'a>>,
    #[serde(borrow, default)]
    pub organization_id: Option<Str<'a>>,
    #[serde(borrow, default)]
    pub permission_name: Option<Str<'a>>,
    #[serde(borrow, default)]
    pub project_id: Option<Str<'a>>,
    #[serde(borrow, default)]
    pub resource_id: Option<Str<'a>>,
    #[serde(borrow, default)]
    pub updated_at: Stamp<'a>,
}

/// `RoleRead`: `GET roles/{}`, an item of `GET roles`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RoleRead<'a> {
    #[serde(default)]
    pub attributes: Option<Cow<'a, Attrs>>,
    #[serde(borrow, default)]
    pub created_at: Stamp<'a>,
    #[serde(borrow, default)]
    pub description: Option<Str<'a>>,
    #[serde(borrow, default)]
    pub environment_id: Option<Str<'a>>,
    #[serde(borrow, default)]
    pub extends: Vec<Str<'a>>,
    /// Always `null` here (resource roles are not synced).
    #[serde(default)]
    pub granted_to: Option<Value>,
    #[serde(borrow, default)]
    pub id: Option<Str<'a>>,
    #[serde(borrow, default)]
    pub key: Option<Str<'a>>,
    #[serde(borrow, default)]
    pub name: Option<Str<'a>>,
    #[serde(borrow, default)]
    pub organization_id: Option<Str<'a>>,
    #[serde(borrow, default)]
    pub permissions: Vec<Str<'a>>,
    #[serde(borrow, default)]
    pub project_id: Option<Str<'a>>,
    #[serde(borrow, default)]
    pub updated_at: Stamp<'a>,
}

/// `TenantRead`: an item of `GET tenants`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct TenantRead<'a> {
    /// `null` when never set.
    #[serde(default)]
    pub attributes: Option<Cow<'a, Attrs>>,
    #[serde(borrow, default)]
    pub created_at: Stamp<'a>,
    #[serde(borrow, default)]
    pub description: Option<Str<'a>>,
    #[serde(borrow, default)]
    pub environment_id: Option<Str<'a>>,
    #[serde(borrow, default)]
    pub id: Option<Str<'a>>,
    #[serde(borrow, default)]
    pub key: Option<Str<'a>>,
    #[serde(borrow, default)]
    pub last_action_at: Stamp<'a>,
    #[serde(borrow, default)]
    pub name: Option<Str<'a>>,
    #[serde(borrow, default)]
    pub organization_id: Option<Str<'a>>,
    #[serde(borrow, default)]
    pub project_id: Option<Str<'a>>,
    #[serde(borrow, default)]
    pub updated_at: Stamp<'a>,
}

/// A user's role in a tenant (`UserRead.roles`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct UserRole<'a> {
    #[serde(borrow)]
    pub role: Str<'a>,
    #[serde(borrow)]
    pub tenant: Str<'a>,
}

/// A tenant a user has roles in (`UserRead.associated_tenants`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct AssociatedTenant<'a> {
    #[serde(default)]
    pub resource_instance_roles: Vec<Value>,
    #[serde(borrow, default)]
    pub roles: Vec<Str<'a>>,
    #[serde(borrow, default)]
    pub status: Option<Str<'a>>,
    #[serde(borrow)]
    pub tenant: Str<'a>,
}

/// `UserRead`: an item of `GET users`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct UserRead<'a> {
    #[serde(borrow, default)]
    pub associated_tenants: Vec<AssociatedTenant<'a>>,
    /// `null` when never set.
    #[serde(default)]
    pub attributes: Option<Cow<'a, Attrs>>,
    #[serde(borrow, default)]
    pub created_at: Stamp<'a>,
    #[serde(borrow, default)]
    pub email: Option<Str<'a>>,
    #[serde(borrow, default)]
    pub environment_id: Option<Str<'a>>,
    #[serde(borrow, default)]
    pub first_name: Option<Str<'a>>,
    #[serde(borrow, default)]
    pub id: Option<Str<'a>>,
    #[serde(borrow, default)]
    pub key: Option<Str<'a>>,
    #[serde(borrow, default)]
    pub last_name: Option<Str<'a>>,
    #[serde(borrow, default)]
    pub organization_id: Option<Str<'a>>,
    #[serde(borrow, default)]
    pub project_id: Option<Str<'a>>,
    #[serde(borrow, default)]
    pub roles: Vec<UserRole<'a>>,
    #[serde(borrow, default)]
    pub updated_at: Stamp<'a>,
}

/// `RoleAssignmentRead`: an item of `GET role_assignments`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RoleAssignmentRead<'a> {
    #[serde(borrow, default)]
    pub created_at: Stamp<'a>,
    #[serde(borrow, default)]
    pub environment_id: Option<Str<'a>>,
    #[serde(borrow, default)]
    pub id: Option<Str<'a>>,
    #[serde(borrow, default)]
    pub organization_id: Option<Str<'a>>,
    #[serde(borrow, default)]
    pub project_id: Option<Str<'a>>,
    /// The resource instance (`type:key`), `null` for a tenant-level role.
    #[serde(borrow, default)]
    pub resource_instance: Option<Str<'a>>,
    #[serde(borrow, default)]
    pub resource_instance_id: Option<Str<'a>>,
    #[serde(borrow, default)]
    pub role: Option<Str<'a>>,
    #[serde(borrow, default)]
    pub role_id: Option<Str<'a>>,
    #[serde(borrow, default)]
    pub tenant: Option<Str<'a>>,
    #[serde(borrow, default)]
    pub tenant_id: Option<Str<'a>>,
    #[serde(borrow, default)]
    pub user: Option<Str<'a>>,
    #[serde(borrow, default)]
    pub user_id: Option<Str<'a>>,
}

/// `ResourceRoleRead`: `GET resources/{}/roles/{}`, an item of `GET resources/{}/roles` (a
/// [`RoleRead`] with its resource; `granted_to` carries its derivations).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ResourceRoleRead<'a> {
    #[serde(default)]
    pub attributes: Option<Cow<'a, Attrs>>,
    #[serde(borrow, default)]
    pub created_at: Stamp<'a>,
    #[serde(borrow, default)]
    pub description: Option<Str<'a>>,
    #[serde(borrow, default)]
    pub environment_id: Option<Str<'a>>,
    #[serde(borrow, default)]
    pub extends: Vec<Str<'a>>,
    #[serde(borrow, default)]
    pub granted_to: Option<GrantedTo<'a>>,
    #[serde(borrow, default)]
    pub id: Option<Str<'a>>,
    #[serde(borrow, default)]
    pub key: Option<Str<'a>>,
    #[serde(borrow, default)]
    pub name: Option<Str<'a>>,
    #[serde(borrow, default)]
    pub organization_id: Option<Str<'a>>,
    #[serde(borrow, default)]
    pub permissions: Vec<Str<'a>>,
    #[serde(borrow, default)]
    pub project_id: Option<Str<'a>>,
    #[serde(borrow, default)]
    pub resource: Option<Str<'a>>,
    #[serde(borrow, default)]
    pub resource_id: Option<Str<'a>>,
    #[serde(borrow, default)]
    pub updated_at: Stamp<'a>,
}

/// A resource role's derivations (`granted_to`, `DerivedRoleBlockRead`):
/// `{id, users_with_role: [...], when: {no_direct_roles_on_object}}` (`id` required by permit
/// 3.0.0).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct GrantedTo<'a> {
    #[serde(borrow, default)]
    pub id: Option<Str<'a>>,
    #[serde(borrow, default)]
    pub users_with_role: Vec<DerivationRead<'a>>,
    /// The derivation options (`{"no_direct_roles_on_object": bool}`), free-form.
    #[serde(default)]
    pub when: Option<Value>,
}

/// One derivation of a resource role (`DerivedRoleRuleRead`; the ids are required by permit
/// 3.0.0), also the answer of `POST …/implicit_grants`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct DerivationRead<'a> {
    #[serde(borrow, default)]
    pub linked_by_relation: Option<Str<'a>>,
    #[serde(borrow, default)]
    pub on_resource: Option<Str<'a>>,
    #[serde(borrow, default)]
    pub relation_id: Option<Str<'a>>,
    #[serde(borrow, default)]
    pub resource_id: Option<Str<'a>>,
    #[serde(borrow, default)]
    pub role: Option<Str<'a>>,
    #[serde(borrow, default)]
    pub role_id: Option<Str<'a>>,
    /// The rule's own options (`{"no_direct_roles_on_object": bool}`), free-form.
    #[serde(default)]
    pub when: Option<Value>,
}

/// A relation as a resource lists it (`ResourceRead.relations`, `RelationBlockRead`): the
/// subject resource's key and id.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RelationBrief<'a> {
    #[serde(borrow, default)]
    pub description: Option<Str<'a>>,
    #[serde(borrow, default)]
    pub relation_name: Option<Str<'a>>,
    #[serde(borrow, default)]
    pub resource: Option<Str<'a>>,
    #[serde(borrow, default)]
    pub resource_id: Option<Str<'a>>,
}

/// `POST|DELETE relationship_tuples/bulk` and `PUT|DELETE bulk/resource_instances` answer an
/// empty report (permit 3.0.0 `RelationshipTupleCreateBulkOperationResult` and its siblings
/// have no fields); [`Empty`] is it.
pub type BulkReport = Empty;

/// `RelationRead`: an item of `GET resources/{}/relations`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RelationRead<'a> {
    #[serde(borrow, default)]
    pub created_at: Stamp<'a>,
    #[serde(borrow, default)]
    pub description: Option<Str<'a>>,
    #[serde(borrow, default)]
    pub environment_id: Option<Str<'a>>,
    #[serde(borrow, default)]
    pub id: Option<Str<'a>>,
    #[serde(borrow, default)]
    pub key: Option<Str<'a>>,
    #[serde(borrow, default)]
    pub name: Option<Str<'a>>,
    /// The object resource's key.
    #[serde(borrow, default)]
    pub object_resource: Option<Str<'a>>,
    #[serde(borrow, default)]
    pub object_resource_id: Option<Str<'a>>,
    #[serde(borrow, default)]
    pub organization_id: Option<Str<'a>>,
    #[serde(borrow, default)]
    pub project_id: Option<Str<'a>>,
    #[serde(borrow, default)]
    pub subject_resource: Option<Str<'a>>,
    #[serde(borrow, default)]
    pub subject_resource_id: Option<Str<'a>>,
    #[serde(borrow, default)]
    pub updated_at: Stamp<'a>,
}

/// `ResourceInstanceRead`: an item of `GET resource_instances`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct InstanceRead<'a> {
    #[serde(default)]
    pub attributes: Option<Cow<'a, Attrs>>,
    #[serde(borrow, default)]
    pub created_at: Stamp<'a>,
    #[serde(borrow, default)]
    pub environment_id: Option<Str<'a>>,
    #[serde(borrow, default)]
    pub id: Option<Str<'a>>,
    #[serde(borrow, default)]
    pub key: Option<Str<'a>>,
    #[serde(borrow, default)]
    pub organization_id: Option<Str<'a>>,
    #[serde(borrow, default)]
    pub project_id: Option<Str<'a>>,
    #[serde(borrow, default)]
    pub resource: Option<Str<'a>>,
    #[serde(borrow, default)]
    pub resource_id: Option<Str<'a>>,
    #[serde(borrow, default)]
    pub tenant: Option<Str<'a>>,
    #[serde(borrow, default)]
    pub tenant_id: Option<Str<'a>>,
    #[serde(borrow, default)]
    pub updated_at: Stamp<'a>,
}

/// `RelationshipTupleRead`: an item of `GET relationship_tuples` (subject and object `type:key`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct TupleRead<'a> {
    #[serde(borrow, default)]
    pub created_at: Stamp<'a>,
    #[serde(borrow, default)]
    pub environment_id: Option<Str<'a>>,
    #[serde(borrow, default)]
    pub id: Option<Str<'a>>,
    #[serde(borrow, default)]
    pub object: Option<Str<'a>>,
    #[serde(borrow, default)]
    pub object_id: Option<Str<'a>>,
    #[serde(borrow, default)]
    pub organization_id: Option<Str<'a>>,
    #[serde(borrow, default)]
    pub project_id: Option<Str<'a>>,
    #[serde(borrow, default)]
    pub relation: Option<Str<'a>>,
    #[serde(borrow, default)]
    pub relation_id: Option<Str<'a>>,
    #[serde(borrow, default)]
    pub subject: Option<Str<'a>>,
    #[serde(borrow, default)]
    pub subject_id: Option<Str<'a>>,
    #[serde(borrow, default)]
    pub tenant: Option<Str<'a>>,
    #[serde(borrow, default)]
    pub tenant_id: Option<Str<'a>>,
    #[serde(borrow, default)]
    pub updated_at: Stamp<'a>,
}

/// A page of a listing with `include_total_count`: Permit's `{data, total_count, page_count}`
/// envelope (without it, a listing is a bare array of the items).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Page<T> {
    #[serde(default = "Vec::new")]
    pub data: Vec<T>,
    #[serde(default)]
    pub page_count: Option<u64>,
    #[serde(default)]
    pub total_count: Option<u64>,
}

/// `POST role_assignments/bulk`: how many assignments were new (existing ones are skipped).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct BulkAssignReport {
    #[serde(default)]
    pub assignments_created: usize,
}

/// `DELETE role_assignments/bulk`: how many assignments were removed (missing ones are skipped).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct BulkUnassignReport {
    #[serde(default)]
    pub assignments_removed: usize,
}

/// `PUT bulk/roles` (`RoleCreateBulkOperationResult`): the role keys created and updated, in
/// request order.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct BulkRolesReport<'a> {
    #[serde(borrow, default)]
    pub created: Vec<Str<'a>>,
    #[serde(borrow, default)]
    pub updated: Vec<Str<'a>>,
}

/// The `{}` the bulk user and tenant calls answer with.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Empty {}

/// A read model with a Permit id.
pub trait Identified {
    fn id(&self) -> Option<&str>;
}

macro_rules! identified {
    ($($t:ident),*) => {$(
        impl Identified for $t<'_> {
            fn id(&self) -> Option<&str> {
                self.id.as_deref()
            }
        }
    )*};
}

identified!(
    ResourceRead,
    ActionRead,
    RoleRead,
    TenantRead,
    UserRead,
    RoleAssignmentRead,
    ResourceRoleRead,
    RelationRead,
    InstanceRead,
    TupleRead
);

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn listed_objects_borrow_their_strings_and_keep_nulls() {
        let v = json!({"key": "jane", "email": null, "id": "3fa85f6457174562b3fc2c963f66afa6",
                       "attributes": {"team": "a"}, "unknown": 1});
        let u = UserRead::deserialize(&v).unwrap();
        assert!(matches!(u.key, Some(Str(Cow::Borrowed("jane")))));
        let roles = json!([{"role": "admin", "tenant": "acme"}]);
        let r = Vec::<UserRole>::deserialize(&roles).unwrap();
        assert!(matches!(r[0].role, Str(Cow::Borrowed("admin"))));
        assert_eq!(u.email, None);
        assert_eq!(u.attributes.as_deref().unwrap()["team"], "a");
        let back = serde_json::to_value(&u).unwrap();
        assert_eq!(back["email"], Value::Null, "null, not absent");
        let a = serde_json::to_value(RoleAssignmentRead::default()).unwrap();
        assert!(a.as_object().unwrap().contains_key("resource_instance"));
    }
}
