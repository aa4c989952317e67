//! Request bodies and query strings read by hand, so that every mistake becomes a FastAPI-style 422
//! with a precise `loc` (the way Permit reports it), whatever the content type.

use super::error::{ApiError, ApiResult, FieldError};
use serde_json::{Map, Value};

/// Parses a JSON body (an empty body is an error: every route that reads one requires it).
pub fn json_body(bytes: &[u8]) -> ApiResult<Value> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::validation(
            vec!["body".into()],
            "field required",
            "value_error.missing",
        ));
    }
    serde_json::from_slice(bytes).map_err(|e| {
        ApiError::validation(
            vec!["body".into(), e.column().into()],
            format!("Expecting value: {e}"),
            "value_error.jsondecode",
        )
    })
}

/// A JSON object being read field by field; errors are collected, not returned one at a time.
pub struct Fields<'a> {
    obj: Option<&'a Map<String, Value>>,
    loc: Vec<Value>,
    pub errors: Vec<FieldError>,
}

impl<'a> Fields<'a> {
    /// `loc` is where this object sits, e.g. `["body"]` or `["body", "operations", 3]`.
    pub fn new(value: &'a Value, loc: Vec<Value>) -> Self {
        let mut fields = Fields {
            obj: value.as_object(),
            loc,
            errors: Vec::new(),
        };
        if fields.obj.is_none() {
            let loc = fields.loc.clone();
            fields.errors.push(FieldError::new(
                loc,
                "value is not a valid dict",
                "type_error.dict",
            ));
        }
        fields
    }

    fn at(&self, name: &str) -> Vec<Value> {
        let mut loc = self.loc.clone();
        loc.push(name.into());
        loc
    }

    fn raw(&self, name: &str) -> Option<&'a Value> {
        self.obj.and_then(|o| o.get(name)).filter(|v| !v.is_null())
    }

    /// Whether the field was sent at all (even as `null`): PATCH replaces exactly the fields sent.
    pub fn sent(&self, name: &str) -> bool {
        self.obj.is_some_and(|o| o.contains_key(name))
    }

    pub fn req_str(&mut self, name: &str) -> String {
        match self.raw(name) {
            Some(Value::String(s)) => s.clone(),
            Some(_) => {
                self.type_error(name, "str type expected", "type_error.str");
                String::new()
            }
            None => {
                if self.obj.is_some() {
                    let loc = self.at(name);
                    self.errors.push(FieldError::new(
                        loc,
                        "field required",
                        "value_error.missing",
                    ));
                }
                String::new()
            }
        }
    }

    pub fn opt_str(&mut self, name: &str) -> Option<String> {
        match self.raw(name) {
            Some(Value::String(s)) => Some(s.clone()),
            Some(_) => {
                self.type_error(name, "str type expected", "type_error.str");
                None
            }
            None => None,
        }
    }

    pub fn opt_obj(&mut self, name: &str) -> Option<Map<String, Value>> {
        match self.raw(name) {
            Some(Value::Object(m)) => Some(m.clone()),
            Some(_) => {
                self.type_error(name, "value is not a valid dict", "type_error.dict");
                None
            }
            None => None,
        }
    }

    pub fn opt_str_list(&mut self, name: &str) -> Option<Vec<String>> {
        match self.raw(name) {
            Some(Value::Array(items)) => {
                let mut out = Vec::with_capacity(items.len());
                for (i, item) in items.iter().enumerate() {
                    match item {
                        Value::String(s) => out.push(s.clone()),
                        _ => {
                            let mut loc = self.at(name);
                            loc.push(i.into());
                            self.errors.push(FieldError::new(
                                loc,
                                "str type expected",
                                "type_error.str",
                            ));
                        }
                    }
                }
                Some(out)
            }
            Some(_) => {
                self.type_error(name, "value is not a valid list", "type_error.list");
                None
            }
            None => None,
        }
    }

    /// The raw value of an optional field, for shapes checked by the caller.
    pub fn opt_value(&self, name: &str) -> Option<&'a Value> {
        self.raw(name)
    }

    fn type_error(&mut self, name: &str, msg: &str, kind: &'static str) {
        let loc = self.at(name);
        self.errors.push(FieldError::new(loc, msg, kind));
    }

    /// Checks a key against Permit's pattern for it.
    pub fn check_key(&mut self, name: &str, key: &str, pattern: KeyPattern) {
        if !key.is_empty() && !pattern.matches(key) {
            let loc = self.at(name);
            self.errors.push(FieldError::new(
                loc,
                format!("string does not match regex \"{}\"", pattern.regex()),
                "value_error.str.regex",
            ));
        }
    }

    pub fn check_email(&mut self, name: &str, email: &Option<String>) {
        if let Some(email) = email
            && !looks_like_email(email)
        {
            let loc = self.at(name);
            self.errors.push(FieldError::new(
                loc,
                "value is not a valid email address",
                "value_error.email",
            ));
        }
    }

    pub fn push(&mut self, name: &str, msg: impl Into<String>, kind: &'static str) {
        let loc = self.at(name);
        self.errors.push(FieldError::new(loc, msg, kind));
    }
}

/// Collects the errors of several `Fields` readers into one 422, or `Ok` when there are none.
pub fn finish(errors: Vec<FieldError>) -> ApiResult<()> {
    if errors.is_empty() {
        Ok(())
    } else {
        Err(ApiError::Validation(errors))
    }
}

#[derive(Clone, Copy, Debug)]
pub enum KeyPattern {
    /// Users: `^[A-Za-z0-9|@+\-._]+$` (e-mail addresses are valid user keys).
    User,
    /// Tenants, resources, actions, roles: `^[A-Za-z0-9\-_]+$`.
    Slug,
}

impl KeyPattern {
    pub fn matches(self, key: &str) -> bool {
        !key.is_empty()
            && key.chars().all(|c| {
                c.is_ascii_alphanumeric()
                    || c == '-'
                    || c == '_'
                    || matches!(self, KeyPattern::User) && matches!(c, '|' | '@' | '+' | '.')
            })
    }

    pub fn regex(self) -> &'static str {
        match self {
            KeyPattern::User => r"^[A-Za-z0-9|@+\-._]+$",
            KeyPattern::Slug => r"^[A-Za-z0-9\-_]+$",
        }
    }
}

/// Close enough to pydantic's `EmailStr` for a local server: one `@`, a non-empty local part and a
/// dotted domain, no spaces.
fn looks_like_email(s: &str) -> bool {
    let Some((local, domain)) = s.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && !domain.contains('@')
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !s.chars().any(char::is_whitespace)
}

/// A parsed query string that keeps repeated parameters (`user=a&user=b`).
#[derive(Default, Debug)]
pub struct Query(Vec<(String, String)>);

impl Query {
    pub fn parse(raw: Option<&str>) -> Self {
        Query(
            raw.and_then(|q| serde_urlencoded::from_str(q).ok())
                .unwrap_or_default(),
        )
    }

    pub fn all(&self, name: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .collect()
    }

    pub fn one(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn flag(&self, name: &str) -> ApiResult<bool> {
        match self.one(name) {
            None => Ok(false),
            Some("true" | "1" | "yes" | "on") => Ok(true),
            Some("false" | "0" | "no" | "off") => Ok(false),
            Some(_) => Err(ApiError::validation(
                vec!["query".into(), name.into()],
                "value could not be parsed to a boolean",
                "type_error.bool",
            )),
        }
    }

    /// `page` (from 1) and `per_page` (1..=100, default 30), validated the way Permit does.
    pub fn pagination(&self) -> ApiResult<Page> {
        let mut errors = Vec::new();
        let mut read = |name: &str, default: usize, max: Option<usize>| -> usize {
            let Some(raw) = self.one(name) else {
                return default;
            };
            let loc = vec![Value::from("query"), Value::from(name)];
            match raw.parse::<usize>() {
                Ok(0) => {
                    errors.push(FieldError::new(
                        loc,
                        "ensure this value is greater than or equal to 1",
                        "value_error.number.not_ge",
                    ));
                    default
                }
                Ok(n) if max.is_some_and(|m| n > m) => {
                    errors.push(FieldError::new(
                        loc,
                        format!(
                            "ensure this value is less than or equal to {}",
                            max.unwrap_or(n)
                        ),
                        "value_error.number.not_le",
                    ));
                    default
                }
                Ok(n) => n,
                Err(_) => {
                    errors.push(FieldError::new(
                        loc,
                        "value is not a valid integer",
                        "type_error.integer",
                    ));
                    default
                }
            }
        };
        let page = read("page", 1, None);
        let per_page = read("per_page", DEFAULT_PER_PAGE, Some(MAX_PER_PAGE));
        finish(errors)?;
        Ok(Page { page, per_page })
    }
}

pub const DEFAULT_PER_PAGE: usize = 30;
pub const MAX_PER_PAGE: usize = 100;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Page {
    pub page: usize,
    pub per_page: usize,
}

impl Page {
    pub fn offset(&self) -> usize {
        (self.page - 1).saturating_mul(self.per_page)
    }

    pub fn page_count(&self, total: usize) -> usize {
        total.div_ceil(self.per_page)
    }

    /// The page's window of a slice: O(page), whatever the slice's length.
    pub fn slice<'a, T>(&self, items: &'a [T]) -> &'a [T] {
        let start = self.offset().min(items.len());
        let end = start.saturating_add(self.per_page).min(items.len());
        &items[start..end]
    }
}

/// Reads a bulk body's list, enforcing Permit's per-call item limit with a 422.
pub fn bulk_list(items: &Value, loc: Vec<Value>, limit: usize) -> ApiResult<&[Value]> {
    let Some(list) = items.as_array() else {
        return Err(ApiError::validation(
            loc,
            "value is not a valid list",
            "type_error.list",
        ));
    };
    if list.len() > limit {
        return Err(ApiError::validation(
            loc,
            format!("ensure this value has at most {limit} items"),
            "value_error.list.max_items",
        ));
    }
    Ok(list)
}

/// A bulk body's required `operations` (a 422 when it is missing).
pub fn required_operations(body: &Value) -> ApiResult<&Value> {
    body.get("operations").ok_or_else(|| {
        ApiError::validation(
            vec!["body".into(), "operations".into()],
            "field required",
            "value_error.missing",
        )
    })
}

/// Reads a bulk `operations` list (see [`bulk_list`]), each item by `parse` at its location
/// `["body", "operations", i]`. Every item's errors come back together, so one 422 names them all.
pub fn bulk_operations<T>(
    ops: &Value,
    limit: usize,
    parse: impl Fn(&Value, Vec<Value>) -> (T, Vec<FieldError>),
) -> ApiResult<(Vec<T>, Vec<FieldError>)> {
    let list = bulk_list(ops, vec!["body".into(), "operations".into()], limit)?;
    let mut errors = Vec::new();
    let mut inputs = Vec::with_capacity(list.len());
    for (i, item) in list.iter().enumerate() {
        let (input, errs) = parse(item, vec!["body".into(), "operations".into(), i.into()]);
        errors.extend(errs);
        inputs.push(input);
    }
    Ok((inputs, errors))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_patterns() {
        assert!(KeyPattern::User.matches("jane@example.com"));
        assert!(KeyPattern::User.matches("auth0|abc+1"));
        assert!(!KeyPattern::User.matches("a b"));
        assert!(!KeyPattern::User.matches(""));
        assert!(KeyPattern::Slug.matches("acme-corp_1"));
        assert!(!KeyPattern::Slug.matches("acme.corp"));
        assert!(!KeyPattern::Slug.matches("doc:1"));
    }

    #[test]
    fn pagination_limits() {
        let q = Query::parse(Some("page=2&per_page=100"));
        assert_eq!(
            q.pagination().unwrap(),
            Page {
                page: 2,
                per_page: 100
            }
        );
        assert!(Query::parse(Some("per_page=101")).pagination().is_err());
        assert!(Query::parse(Some("page=0")).pagination().is_err());
        let p = Page {
            page: 3,
            per_page: 2,
        };
        assert_eq!(p.slice(&[1, 2, 3, 4, 5]), &[5]);
        assert_eq!(p.page_count(5), 3);
    }

    #[test]
    fn repeated_query_params() {
        let q = Query::parse(Some("user=a&user=b%40x.io&role=r"));
        assert_eq!(q.all("user"), vec!["a", "b@x.io"]);
        assert_eq!(q.one("role"), Some("r"));
    }
}
