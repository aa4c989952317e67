//! Validation of a document against its kind's CRD schema (`openAPIV3Schema`), the same checks
//! the apiserver makes on `kubectl apply`, with errors placed at the YAML node at fault.
//!
//! Supported: `type`, `nullable`, `properties`/`required`, unknown fields (rejected, as kubectl's
//! strict field validation does), `additionalProperties`, `items`, `enum`, `pattern`,
//! `minLength`/`maxLength` (characters), `minItems`/`maxItems`, `maxProperties`,
//! `minimum`/`maximum`, formats `email` and `uri`, `x-kubernetes-int-or-string`,
//! `x-kubernetes-preserve-unknown-fields`, and CEL rules of the form `self != '…'` /
//! `self == '…'`. Transition rules (those naming `oldSelf`) only apply to updates and are skipped.
//!
//! As on the apiserver, a null value of a field that is not `nullable` is pruned (treated as
//! absent) before `required` is checked.

use super::node::{Node, Value};
use regex::Regex;
use serde_json::{Map, Value as Json};
use std::collections::HashMap;

/// One schema violation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    pub field: String,
    pub line: usize,
    pub column: usize,
    pub message: String,
}

/// Compiled regular expressions of the schema patterns, shared by all documents.
pub struct Patterns(HashMap<String, Regex>);

impl Patterns {
    pub fn collect(schema: &Json) -> Patterns {
        let mut out = HashMap::new();
        collect_patterns(schema, &mut out);
        Patterns(out)
    }
}

fn collect_patterns(schema: &Json, out: &mut HashMap<String, Regex>) {
    match schema {
        Json::Object(map) => {
            if let Some(Json::String(p)) = map.get("pattern")
                && let Ok(re) = Regex::new(p)
            {
                out.insert(p.clone(), re);
            }
            map.values().for_each(|v| collect_patterns(v, out));
        }
        Json::Array(items) => items.iter().for_each(|v| collect_patterns(v, out)),
        _ => {}
    }
}

pub struct Checker<'a> {
    pub patterns: &'a Patterns,
    pub problems: Vec<Problem>,
}

impl Checker<'_> {
    fn problem(&mut self, field: &str, node: &Node, message: String) {
        self.problems.push(Problem {
            field: field.to_string(),
            line: node.line,
            column: node.column,
            message,
        });
    }

    /// Check `node` against `schema`; the JSON the apiserver would store (nulls pruned), or
    /// `None` when the node is invalid.
    pub fn check(&mut self, node: &Node, schema: &Json, field: &str) -> Option<Json> {
        let before = self.problems.len();
        let json = self.check_value(node, schema, field);
        if self.problems.len() == before {
            json
        } else {
            None
        }
    }

    fn check_value(&mut self, node: &Node, schema: &Json, field: &str) -> Option<Json> {
        let s = |k: &str| schema.get(k);
        if let Value::Null = node.value {
            return Some(Json::Null);
        }
        if s("x-kubernetes-int-or-string") == Some(&Json::Bool(true)) {
            return match &node.value {
                // Quantities are strings in Rust; the apiserver keeps `1` as a number, but both mean 1.
                Value::Int(i) => Some(Json::String(i.to_string())),
                Value::UInt(u) => Some(Json::String(u.to_string())),
                Value::Str(v) => Some(Json::String(v.clone())),
                other => {
                    let msg = format!(
                        "expected an integer or a string, found {}",
                        other.type_name()
                    );
                    self.problem(field, node, msg);
                    None
                }
            };
        }
        let ty = s("type").and_then(Json::as_str).unwrap_or("");
        let json = match (ty, &node.value) {
            ("object", Value::Map(_)) => self.check_object(node, schema, field),
            ("array", Value::Seq(items)) => self.check_array(node, items, schema, field),
            ("string", Value::Str(v)) => {
                self.check_string(node, v, schema, field);
                Some(Json::String(v.clone()))
            }
            ("integer", Value::Int(_) | Value::UInt(_))
            | ("number", Value::Int(_) | Value::UInt(_) | Value::Float(_)) => {
                let json = number_json(&node.value);
                self.check_number(node, &json, schema, field);
                Some(json)
            }
            ("boolean", Value::Bool(b)) => Some(Json::Bool(*b)),
            ("", _) => Some(to_json(node)),
            (ty, other) => {
                let hint = match (ty, other) {
                    (
                        "string",
                        Value::Int(_) | Value::UInt(_) | Value::Float(_) | Value::Bool(_),
                    ) => "; quote it to make it a string",
                    _ => "",
                };
                let found = describe(node);
                let msg = format!("expected {}, found {found}{hint}", type_article(ty));
                self.problem(field, node, msg);
                None
            }
        }?;
        if let Some(Json::Array(allowed)) = s("enum")
            && !allowed.contains(&json)
        {
            let list: Vec<String> = allowed.iter().map(plain).collect();
            let msg = match list.as_slice() {
                [only] => format!("expected {only}, found {}", describe(node)),
                _ => format!("{} is not one of {}", describe(node), list.join(", ")),
            };
            self.problem(field, node, msg);
        }
        self.check_rules(node, &json, schema, field);
        Some(json)
    }

    fn check_object(&mut self, node: &Node, schema: &Json, field: &str) -> Option<Json> {
        let Value::Map(entries) = &node.value else {
            return None;
        };
        let properties = schema.get("properties").and_then(Json::as_object);
        let additional = schema.get("additionalProperties").filter(|a| a.is_object());
        let preserve =
            schema.get("x-kubernetes-preserve-unknown-fields") == Some(&Json::Bool(true));
        let mut out = Map::new();
        for (key, value) in entries {
            let child = join(field, &key.name);
            let sub = properties.and_then(|p| p.get(&key.name)).or(additional);
            let Some(sub) = sub else {
                if preserve {
                    out.insert(key.name.clone(), to_json(value));
                } else {
                    let known: Vec<&str> = properties
                        .map(|p| p.keys().map(String::as_str).collect())
                        .unwrap_or_default();
                    let key_node = Node {
                        value: Value::Null,
                        line: key.line,
                        column: key.column,
                    };
                    let msg = if known.is_empty() {
                        "unknown field".to_string()
                    } else {
                        format!("unknown field; expected one of {}", known.join(", "))
                    };
                    self.problem(&child, &key_node, msg);
                }
                continue;
            };
            let nullable = sub.get("nullable") == Some(&Json::Bool(true));
            if value.value == Value::Null && !nullable {
                // A declared field set to null is pruned, as the apiserver does. A map entry
                // (`read:` under `actions`) is refused instead: pruning it would drop the entry.
                if properties.and_then(|p| p.get(&key.name)).is_none() {
                    let msg = "null is not allowed here; write {} for an empty entry".to_string();
                    self.problem(&child, value, msg);
                }
                continue;
            }
            if let Some(json) = self.check_value(value, sub, &child) {
                out.insert(key.name.clone(), json);
            }
        }
        if let Some(Json::Array(required)) = schema.get("required") {
            for name in required.iter().filter_map(Json::as_str) {
                let present = entries
                    .iter()
                    .any(|(k, v)| k.name == name && v.value != Value::Null);
                if !present {
                    self.problem(
                        &join(field, name),
                        node,
                        "required field is missing".to_string(),
                    );
                }
            }
        }
        if let Some(max) = schema.get("maxProperties").and_then(Json::as_u64)
            && entries.len() as u64 > max
        {
            let msg = format!("has {} entries, at most {max} are allowed", entries.len());
            self.problem(field, node, msg);
        }
        Some(Json::Object(out))
    }

    fn check_array(
        &mut self,
        node: &Node,
        items: &[Node],
        schema: &Json,
        field: &str,
    ) -> Option<Json> {
        if let Some(max) = schema.get("maxItems").and_then(Json::as_u64)
            && items.len() as u64 > max
        {
            let msg = format!("has {} items, at most {max} are allowed", items.len());
            self.problem(field, node, msg);
        }
        if let Some(min) = schema.get("minItems").and_then(Json::as_u64)
            && (items.len() as u64) < min
        {
            let msg = format!("has {} items, at least {min} are required", items.len());
            self.problem(field, node, msg);
        }
        let item_schema = schema.get("items");
        let mut out = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            let child = format!("{field}[{i}]");
            let json = match item_schema {
                Some(sub)
                    if item.value == Value::Null
                        && sub.get("nullable") != Some(&Json::Bool(true)) =>
                {
                    self.problem(&child, item, "null is not allowed here".to_string());
                    None
                }
                Some(sub) => self.check_value(item, sub, &child),
                None => Some(to_json(item)),
            };
            out.extend(json);
        }
        Some(Json::Array(out))
    }

    fn check_string(&mut self, node: &Node, v: &str, schema: &Json, field: &str) {
        let chars = v.chars().count() as u64;
        if let Some(min) = schema.get("minLength").and_then(Json::as_u64)
            && chars < min
        {
            let msg = if chars == 0 {
                "must not be empty".to_string()
            } else {
                format!("is {chars} characters long, at least {min} are required")
            };
            self.problem(field, node, msg);
        }
        if let Some(max) = schema.get("maxLength").and_then(Json::as_u64)
            && chars > max
        {
            let msg = format!("is {chars} characters long, at most {max} are allowed");
            self.problem(field, node, msg);
        }
        if let Some(Json::String(p)) = schema.get("pattern")
            && let Some(re) = self.patterns.0.get(p)
            && !re.is_match(v)
        {
            let msg = match pattern_hint(p) {
                Some(hint) => format!("{v:?} is not valid here: {hint}"),
                None => format!("{v:?} does not match {p}"),
            };
            self.problem(field, node, msg);
        }
        match schema.get("format").and_then(Json::as_str) {
            Some("email") if !is_email(v) => {
                self.problem(field, node, format!("{v:?} is not a valid e-mail address"))
            }
            Some("uri") if !is_uri(v) => {
                self.problem(field, node, format!("{v:?} is not a valid URL"))
            }
            _ => {}
        }
    }

    fn check_number(&mut self, node: &Node, json: &Json, schema: &Json, field: &str) {
        let Some(v) = json.as_f64() else { return };
        if let Some(min) = schema.get("minimum").and_then(Json::as_f64)
            && v < min
        {
            self.problem(
                field,
                node,
                format!("{json} is below the minimum {}", min as i64),
            );
        }
        if let Some(max) = schema.get("maximum").and_then(Json::as_f64)
            && v > max
        {
            self.problem(
                field,
                node,
                format!("{json} is above the maximum {}", max as i64),
            );
        }
    }

    /// The CEL rules we can evaluate without a CEL engine: comparisons of `self` with a string.
    fn check_rules(&mut self, node: &Node, json: &Json, schema: &Json, field: &str) {
        let Some(Json::Array(rules)) = schema.get("x-kubernetes-validations") else {
            return;
        };
        for rule in rules {
            let text = rule.get("rule").and_then(Json::as_str).unwrap_or("");
            let holds = match (text.split_once(" != "), text.split_once(" == ")) {
                (Some(("self", lit)), _) => string_literal(lit).map(|l| json.as_str() != Some(l)),
                (_, Some(("self", lit))) => string_literal(lit).map(|l| json.as_str() == Some(l)),
                _ => None,
            };
            if holds == Some(false) {
                let msg = rule.get("message").and_then(Json::as_str).unwrap_or(text);
                self.problem(field, node, msg.to_string());
            }
        }
    }
}

/// The patterns of the kinds in words, for messages people can act on.
fn pattern_hint(pattern: &str) -> Option<&'static str> {
    Some(match pattern {
        r"^[A-Za-z0-9\-_]+$" => "use only letters, digits, '-' and '_'",
        r"^[A-Za-z0-9|@+\-._]+$" => "use only letters, digits and the characters | @ + - . _",
        r"^[A-Za-z0-9\-_]+:[A-Za-z0-9\-_]+$" => {
            "write `resource:action`, each of letters, digits, '-' and '_'"
        }
        r"^[A-Za-z0-9\-_]+:[A-Za-z0-9\-_.@|+]+$" => {
            "write `resource:instance`, e.g. `document:doc-1`"
        }
        r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$" => {
            "a Kubernetes name holds lowercase letters, digits, '-' and '.', and starts and ends with a letter or digit"
        }
        r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$" => {
            "a namespace holds lowercase letters, digits and '-', and starts and ends with a letter or digit"
        }
        r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$" => {
            "a label value holds letters, digits, '-', '_' and '.', and starts and ends with a letter or digit"
        }
        r"^[A-Za-z0-9_][A-Za-z0-9_.\-]*$" => "an image tag holds letters, digits, '_', '.' and '-'",
        _ => return None,
    })
}

fn string_literal(text: &str) -> Option<&str> {
    text.strip_prefix('\'')?.strip_suffix('\'')
}

fn join(field: &str, key: &str) -> String {
    if field.is_empty() {
        key.to_string()
    } else {
        format!("{field}.{key}")
    }
}

fn type_article(ty: &str) -> String {
    match ty {
        "object" => "a mapping".into(),
        "array" => "a list".into(),
        "integer" => "an integer".into(),
        other => format!("a {other}"),
    }
}

/// A value as messages quote it: strings quoted, numbers and booleans bare.
fn describe(node: &Node) -> String {
    match &node.value {
        Value::Str(s) => format!("{s:?}"),
        Value::Int(i) => format!("the integer {i}"),
        Value::UInt(u) => format!("the integer {u}"),
        Value::Float(f) => format!("the number {f}"),
        Value::Bool(b) => format!("the boolean {b}"),
        other => other.type_name().to_string(),
    }
}

fn plain(json: &Json) -> String {
    match json {
        Json::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn number_json(value: &Value) -> Json {
    match value {
        Value::Int(i) => Json::from(*i),
        Value::UInt(u) => Json::from(*u),
        Value::Float(f) => serde_json::Number::from_f64(*f).map_or(Json::Null, Json::Number),
        _ => Json::Null,
    }
}

/// A node as JSON, for parts of the document the schema leaves free (attributes).
pub fn to_json(node: &Node) -> Json {
    match &node.value {
        Value::Null => Json::Null,
        Value::Bool(b) => Json::Bool(*b),
        Value::Int(_) | Value::UInt(_) | Value::Float(_) => number_json(&node.value),
        Value::Str(s) => Json::String(s.clone()),
        Value::Seq(items) => Json::Array(items.iter().map(to_json).collect()),
        Value::Map(entries) => Json::Object(
            entries
                .iter()
                .map(|(k, v)| (k.name.clone(), to_json(v)))
                .collect(),
        ),
    }
}

/// An e-mail address as `local@domain` (dot-atoms). Stricter than Go's `mail.ParseAddress`,
/// which the apiserver uses, in refusing the `Name <addr>` form: Permit wants a bare address.
pub fn is_email(v: &str) -> bool {
    let Some((local, domain)) = v.rsplit_once('@') else {
        return false;
    };
    let atext = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+/=?^_`{|}~-".contains(c);
    let dot_atom = |s: &str, ok: &dyn Fn(char) -> bool| {
        !s.is_empty()
            && s.split('.')
                .all(|part| !part.is_empty() && part.chars().all(ok))
    };
    let label = |c: char| c.is_ascii_alphanumeric() || c == '-';
    dot_atom(local, &atext)
        && dot_atom(domain, &label)
        && domain
            .split('.')
            .all(|l| !l.starts_with('-') && !l.ends_with('-'))
}

/// An absolute URL: a scheme, `:`, and no whitespace.
pub fn is_uri(v: &str) -> bool {
    let Some((scheme, rest)) = v.split_once(':') else {
        return false;
    };
    let mut chars = scheme.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
        && !rest.is_empty()
        && !v.chars().any(char::is_whitespace)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn e_mail_addresses() {
        for ok in [
            "jane@example.com",
            "j.doe+tag@mail.example.co",
            "root@localhost",
        ] {
            assert!(is_email(ok), "{ok}");
        }
        for bad in [
            "jane",
            "@example.com",
            "jane@",
            "jane..doe@example.com",
            "jane@-example.com",
            "Jane <jane@example.com>",
            "jane doe@example.com",
        ] {
            assert!(!is_email(bad), "{bad}");
        }
    }

    #[test]
    fn urls() {
        assert!(is_uri("http://localhost:7766"));
        assert!(is_uri("https://api.permit.io/v2"));
        assert!(!is_uri("localhost:7766 x"));
        assert!(!is_uri("/just/a/path"));
        assert!(!is_uri("7766:x"));
    }
}
