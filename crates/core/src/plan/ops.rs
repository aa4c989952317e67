//! The operations a plan is made of.

use super::field::{Field, FieldOf};
use crate::kinds::{Kind, ObjectId};
use crate::model::{Assignment, AssignmentRef, Obj};
use serde::Serialize;

/// What happens to one object.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Create,
    Update,
    /// Exists in Permit exactly as declared but is not in the inventory yet: no API call, only owned
    /// from now on.
    Adopt,
    Delete,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Create => "create",
            Action::Update => "update",
            Action::Adopt => "adopt",
            Action::Delete => "delete",
        }
    }

    /// Whether the action writes to Permit (adopting only records ownership).
    pub fn writes(self) -> bool {
        !matches!(self, Action::Adopt)
    }
}

/// One changed field: which, the live value and the desired one (`null` when absent).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FieldDiff {
    pub field: Field,
    pub before: serde_json::Value,
    pub after: serde_json::Value,
}

/// One planned operation on one object.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Op {
    /// Where the op is in its plan: its outcome is kept at this index (set by the planner, and
    /// again whenever a source holds ops back, [`super::Plan::retain_ops`]).
    #[serde(skip)]
    pub index: usize,
    pub kind: Kind,
    pub key: String,
    pub action: Action,
    /// An update of an object that existed before permit-sync owned it.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub adopted: bool,
    /// A deletion Permit performs by itself with another one (a user's or tenant's assignments go
    /// with it): reported and dropped from the inventory, but no API call.
    /// The deletion's subject, typed: the executor matches it to that op by kind and key, and
    /// only [`super::render`] turns it into text.
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "cascade_text"
    )]
    pub cascaded_by: Option<ObjectId>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub diffs: Vec<FieldDiff>,
    /// Where the object is declared (create, update, adopt).
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "origin_text"
    )]
    pub origin: Option<crate::kinds::Origin>,
    /// The declared object (create, update, adopt). `None` for role assignments, whose key is
    /// the whole object ([`Op::assignment`]): a plan of 300,000 assignments then holds no copies.
    #[serde(skip)]
    pub desired: Option<Box<Obj>>,
    /// The object as Permit holds it (update, adopt, delete); `None` for role assignments.
    #[serde(skip)]
    pub live: Option<Box<Obj>>,
    /// The inventory entry the declared object gets, when the inventory does not hold it so yet.
    #[serde(skip)]
    pub record: Option<crate::inventory::Entry>,
}

impl Op {
    /// The role assignment an op on one names (its key holds all of it).
    pub fn assignment(&self) -> Option<Assignment> {
        (self.kind == Kind::RoleAssignment)
            .then(|| Assignment::parse(&self.key))
            .flatten()
    }

    /// [`Op::assignment`], borrowed from the key.
    pub fn assignment_ref(&self) -> Option<AssignmentRef<'_>> {
        (self.kind == Kind::RoleAssignment)
            .then(|| AssignmentRef::parse(&self.key))
            .flatten()
    }

    /// The object an op keeps as `desired` or `live`: everything but role assignments. Boxed,
    /// so an op that carries none (most, at scale) is small.
    pub fn carried(obj: Option<Obj>) -> Option<Box<Obj>> {
        obj.filter(|o| !matches!(o, Obj::Assignment(_)))
            .map(Box::new)
    }

    /// `PermitUser jane@example.com`: how messages name the object.
    pub fn subject(&self) -> String {
        format!("{} {}", self.kind, self.key)
    }

    pub fn changed(&self, field: impl Into<Field>) -> bool {
        let field = field.into();
        self.diffs.iter().any(|d| d.field == field)
    }

    /// The changed fields, typed by the op's object type.
    pub fn fields<F: FieldOf>(&self) -> Vec<F> {
        super::field::fields_of(&self.diffs)
    }

    /// Whether executing the op costs an API call (bulk batching aside).
    pub fn calls_api(&self) -> bool {
        self.action.writes() && self.cascaded_by.is_none()
    }
}

fn cascade_text<S: serde::Serializer>(by: &Option<ObjectId>, s: S) -> Result<S::Ok, S::Error> {
    match by {
        Some(id) => s.serialize_str(&super::render::cascade(id)),
        None => s.serialize_none(),
    }
}

fn origin_text<S: serde::Serializer>(
    origin: &Option<crate::kinds::Origin>,
    s: S,
) -> Result<S::Ok, S::Error> {
    match origin {
        Some(o) => s.collect_str(o),
        None => s.serialize_none(),
    }
}
