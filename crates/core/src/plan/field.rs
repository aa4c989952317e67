//! The fields the planner compares, one enum per object type. A field's name (Permit's, as request
//! bodies and the rendered plan spell it) exists only in [`Field::as_str`]: everything else matches
//! on the variants.

use serde::Serialize;

/// Declares a field enum: its variants, their names, and the list of all of them.
macro_rules! fields {
    ($(#[$doc:meta])* $name:ident { $($variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum $name {
            $($variant),+
        }

        impl $name {
            /// Every field, in the order the planner compares them.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// Permit's name of the field.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }
        }
    };
}

fields! {
    /// A field of a resource.
    ResourceField {
        Name => "name",
        Description => "description",
        Actions => "actions",
        Attributes => "attributes",
    }
}

fields! {
    /// A field of a role.
    RoleField {
        Name => "name",
        Description => "description",
        Permissions => "permissions",
        Extends => "extends",
        Attributes => "attributes",
    }
}

fields! {
    /// A field of a tenant.
    TenantField {
        Name => "name",
        Description => "description",
        Attributes => "attributes",
    }
}

fields! {
    /// A field of a user.
    UserField {
        Email => "email",
        FirstName => "first_name",
        LastName => "last_name",
        Attributes => "attributes",
    }
}

fields! {
    /// A field of a relation (no update in Permit: a change is a delete and a create).
    RelationField {
        Subject => "subject_resource",
    }
}

fields! {
    /// A field of a resource role.
    ResourceRoleField {
        Name => "name",
        Description => "description",
        Permissions => "permissions",
        Extends => "extends",
        Attributes => "attributes",
        NoDirectRolesOnObject => "granted_to.when.no_direct_roles_on_object",
    }
}

fields! {
    /// A field of a resource instance.
    InstanceField {
        Tenant => "tenant",
        Attributes => "attributes",
    }
}

fields! {
    /// A field of a relationship tuple (no update in Permit: a change is a delete and a create).
    TupleField {
        Tenant => "tenant",
    }
}

/// A field of any object type (role assignments and derivations have none: they are identity
/// only).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Field {
    Resource(ResourceField),
    Role(RoleField),
    Tenant(TenantField),
    User(UserField),
    Relation(RelationField),
    ResourceRole(ResourceRoleField),
    Instance(InstanceField),
    Tuple(TupleField),
}

impl Field {
    /// Permit's name of the field: what the plan renders and serialises.
    pub fn as_str(self) -> &'static str {
        match self {
            Field::Resource(f) => f.as_str(),
            Field::Role(f) => f.as_str(),
            Field::Tenant(f) => f.as_str(),
            Field::User(f) => f.as_str(),
            Field::Relation(f) => f.as_str(),
            Field::ResourceRole(f) => f.as_str(),
            Field::Instance(f) => f.as_str(),
            Field::Tuple(f) => f.as_str(),
        }
    }
}

impl std::fmt::Display for Field {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Field {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// A per-type field enum: wrapped into [`Field`], and taken back out of it.
pub trait FieldOf: Copy + Into<Field> {
    /// The field, if it is one of this type's.
    fn of(field: Field) -> Option<Self>;
}

macro_rules! field_of {
    ($($name:ident => $variant:ident),+) => {$(
        impl From<$name> for Field {
            fn from(f: $name) -> Field {
                Field::$variant(f)
            }
        }

        impl FieldOf for $name {
            fn of(field: Field) -> Option<$name> {
                match field {
                    Field::$variant(f) => Some(f),
                    _ => None,
                }
            }
        }
    )+};
}

field_of!(
    ResourceField => Resource,
    RoleField => Role,
    TenantField => Tenant,
    UserField => User,
    RelationField => Relation,
    ResourceRoleField => ResourceRole,
    InstanceField => Instance,
    TupleField => Tuple
);

/// The fields of one type among `diffs`.
pub fn fields_of<F: FieldOf>(diffs: &[super::FieldDiff]) -> Vec<F> {
    diffs.iter().filter_map(|d| F::of(d.field)).collect()
}
