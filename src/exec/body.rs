//! Request bodies, in the field names Permit's API takes.

use crate::model::{Attrs, Resource, Role, Tenant, User};
use crate::plan::Op;
use serde::Serialize;
use serde_json::{Map, Value, json};

fn put_opt<T: serde::Serialize>(m: &mut Map<String, Value>, k: &str, v: &Option<T>) {
    if let Some(v) = v {
        m.insert(k.into(), json!(v));
    }
}

fn actions(r: &Resource) -> Value {
    let mut out = Map::new();
    for (k, a) in &r.actions {
        let mut m = Map::new();
        m.insert("name".into(), json!(a.name));
        put_opt(&mut m, "description", &a.description);
        put_opt(&mut m, "attributes", &a.attributes);
        out.insert(k.clone(), Value::Object(m));
    }
    Value::Object(out)
}

pub fn resource_create(r: &Resource) -> Value {
    let mut m = Map::new();
    m.insert("key".into(), json!(r.key));
    m.insert("name".into(), json!(r.name));
    put_opt(&mut m, "description", &r.description);
    m.insert("actions".into(), actions(r));
    put_opt(&mut m, "attributes", &r.attributes);
    Value::Object(m)
}

/// PATCH body: the full desired value of each listed field (PATCH replaces whole fields).
pub fn resource_patch(r: &Resource, fields: &[&str]) -> Value {
    let mut m = Map::new();
    for f in fields {
        match *f {
            "name" => {
                m.insert("name".into(), json!(r.name));
            }
            "description" => put_opt(&mut m, "description", &r.description),
            "actions" => {
                m.insert("actions".into(), actions(r));
            }
            "attributes" => put_opt(&mut m, "attributes", &r.attributes),
            _ => {}
        }
    }
    Value::Object(m)
}

pub fn role_create(r: &Role) -> Value {
    let mut m = Map::new();
    m.insert("key".into(), json!(r.key));
    m.insert("name".into(), json!(r.name));
    put_opt(&mut m, "description", &r.description);
    m.insert("permissions".into(), json!(r.permissions));
    m.insert("extends".into(), json!(r.extends));
    put_opt(&mut m, "attributes", &r.attributes);
    Value::Object(m)
}

/// Role PATCH without permissions, which change through the add/remove endpoints.
pub fn role_patch(r: &Role, fields: &[&str]) -> Value {
    let mut m = Map::new();
    for f in fields {
        match *f {
            "name" => {
                m.insert("name".into(), json!(r.name));
            }
            "description" => put_opt(&mut m, "description", &r.description),
            "extends" => {
                m.insert("extends".into(), json!(r.extends));
            }
            "attributes" => put_opt(&mut m, "attributes", &r.attributes),
            _ => {}
        }
    }
    Value::Object(m)
}

pub fn tenant_create(t: &Tenant) -> Value {
    let mut m = Map::new();
    m.insert("key".into(), json!(t.key));
    m.insert("name".into(), json!(t.name));
    put_opt(&mut m, "description", &t.description);
    put_opt(&mut m, "attributes", &t.attributes);
    Value::Object(m)
}

pub fn tenant_patch(t: &Tenant, fields: &[&str]) -> Value {
    let mut m = Map::new();
    for f in fields {
        match *f {
            "name" => {
                m.insert("name".into(), json!(t.name));
            }
            "description" => put_opt(&mut m, "description", &t.description),
            "attributes" => put_opt(&mut m, "attributes", &t.attributes),
            _ => {}
        }
    }
    Value::Object(m)
}

/// A bulk body: `{"operations": [...]}`, written straight from the items (no JSON tree of
/// thousands of objects built first).
#[derive(Serialize)]
pub struct Operations<T: Serialize> {
    pub operations: Vec<T>,
}

/// A user as a PUT sends it, borrowed from the op.
#[derive(Serialize)]
pub struct UserUpsert<'a> {
    key: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    email: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    first_name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    last_name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    attributes: Option<&'a Attrs>,
}

/// The user as it must be after an upsert: PUT replaces the whole user, so the undeclared fields
/// keep the values Permit holds.
pub fn user_upsert<'a>(desired: &'a User, live: Option<&'a User>) -> UserUpsert<'a> {
    let kept = |want: &'a Option<String>, have: fn(&'a User) -> &'a Option<String>| {
        want.as_deref()
            .or_else(|| live.and_then(|l| have(l).as_deref()))
    };
    UserUpsert {
        key: &desired.key,
        email: kept(&desired.email, |l| &l.email),
        first_name: kept(&desired.first_name, |l| &l.first_name),
        last_name: kept(&desired.last_name, |l| &l.last_name),
        attributes: desired
            .attributes
            .as_ref()
            .or_else(|| live.and_then(|l| l.attributes.as_ref())),
    }
}

/// The changed field names of an op.
pub fn fields(op: &Op) -> Vec<&str> {
    op.diffs.iter().map(|d| d.field.as_str()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_user_upsert_keeps_the_fields_the_manifest_leaves_out() {
        let live = User {
            key: "jane".into(),
            email: Some("old@example.com".into()),
            first_name: Some("Jane".into()),
            last_name: Some("Doe".into()),
            attributes: Some([("team".to_string(), json!("a"))].into()),
        };
        let want = User {
            key: "jane".into(),
            email: Some("jane@example.com".into()),
            first_name: None,
            last_name: None,
            attributes: None,
        };
        let body = serde_json::to_value(user_upsert(&want, Some(&live))).unwrap();
        assert_eq!(
            body,
            json!({"key": "jane", "email": "jane@example.com", "first_name": "Jane",
                   "last_name": "Doe", "attributes": {"team": "a"}})
        );
        // PATCH bodies carry whole fields, and only the changed ones.
        let t = Tenant {
            key: "acme".into(),
            name: "Acme".into(),
            description: None,
            attributes: Some([("plan".to_string(), json!("pro"))].into()),
        };
        assert_eq!(
            tenant_patch(&t, &["attributes"]),
            json!({"attributes": {"plan": "pro"}})
        );
    }
}
