//! Documents to objects: YAML parsing with limits, the envelope (`apiVersion`, `kind`,
//! `metadata`, `kind: List`), schema validation, and conversion into the typed kinds.

use super::error::Diagnostic;
use super::node::{Key, Node, Value};
use super::schema::{Checker, Patterns, Problem};
use super::split::{Chunk, split};
use super::{FieldLocations, LoadedObject};
use crate::kinds::common::{API_VERSION, VERSION};
use crate::kinds::{Kind, Object, Origin};
use serde_json::{Value as Json, json};
use serde_saphyr::MessageFormatter;
use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, OnceLock};

/// Nodes a document may expand to (aliases included); a manifest has a few hundred at most.
pub const MAX_NODES: usize = 100_000;
/// Events alias expansion may replay per document: far above legitimate anchor reuse,
/// far below what a billion-laughs document needs.
pub const MAX_ALIAS_REPLAY: usize = 100_000;
/// Documents in one file: generous for generated files (one user per document), and a bound
/// on the work a hostile file of tiny documents can cause.
pub const MAX_DOCUMENTS: usize = 100_000;
/// Problems reported per file; past this the file is clearly not a manifest file.
pub const MAX_FILE_DIAGNOSTICS: usize = 1_000;
/// Nesting depth of a document.
pub const MAX_DEPTH: usize = 32;

/// Metadata a manifest may carry. Server-set fields (uid, resourceVersion, managedFields, …)
/// have no meaning in a file, and finalizers/ownerReferences are permit-sync's to manage.
const DNS_SUBDOMAIN: &str = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$";
const DNS_LABEL: &str = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$";
const LABEL_VALUE: &str = r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$";

struct Schemas {
    /// Whole-document schema per kind: the CRD's `openAPIV3Schema` plus the envelope.
    by_kind: HashMap<Kind, Json>,
    list: Json,
    patterns: Patterns,
}

fn schemas() -> &'static Schemas {
    static SCHEMAS: OnceLock<Schemas> = OnceLock::new();
    SCHEMAS.get_or_init(|| {
        let metadata = json!({
            "type": "object",
            "required": ["name"],
            "properties": {
                "name": {"type": "string", "maxLength": 253, "pattern": DNS_SUBDOMAIN},
                "namespace": {"type": "string", "maxLength": 63, "pattern": DNS_LABEL},
                "labels": {"type": "object", "additionalProperties":
                    {"type": "string", "maxLength": 63, "pattern": LABEL_VALUE}},
                "annotations": {"type": "object", "additionalProperties": {"type": "string"}},
            },
        });
        let mut by_kind = HashMap::new();
        for crd in crate::kinds::crds() {
            let kind = Kind::parse(&crd.spec.names.kind).expect("every CRD is one of our kinds");
            let versions = &crd.spec.versions;
            let version = versions
                .iter()
                .find(|v| v.name == VERSION)
                .unwrap_or(&versions[0]);
            let schema = version
                .schema
                .as_ref()
                .and_then(|s| s.open_api_v3_schema.as_ref());
            let mut schema = serde_json::to_value(schema).expect("CRD schema serialises");
            schema["properties"]["apiVersion"] = json!({"type": "string", "enum": [API_VERSION]});
            schema["properties"]["kind"] = json!({"type": "string"});
            schema["properties"]["metadata"] = metadata.clone();
            // Status is written by permit-sync; in a file it is ignored (with a warning).
            schema["properties"]["status"] = json!({});
            schema["required"] = json!(["apiVersion", "kind", "metadata", "spec"]);
            by_kind.insert(kind, schema);
        }
        let list = json!({
            "type": "object",
            "required": ["items"],
            "properties": {
                "apiVersion": {"type": "string"},
                "kind": {"type": "string"},
                "metadata": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
                "items": {"type": "array"},
            },
        });
        let mut all = json!({"kinds": by_kind.values().cloned().collect::<Vec<_>>()});
        all["metadata"] = metadata;
        let patterns = Patterns::collect(&all);
        Schemas {
            by_kind,
            list,
            patterns,
        }
    })
}

fn yaml_options() -> serde_saphyr::Options {
    serde_saphyr::options! {
        budget: serde_saphyr::budget! {
            max_nodes: MAX_NODES,
            max_depth: MAX_DEPTH,
        },
        alias_limits: serde_saphyr::alias_limits! {
            max_total_replayed_events: MAX_ALIAS_REPLAY,
        },
        with_snippet: false,
    }
}

/// Parse the text of one file (call [`super::load_text`], which gives the parser the stack it
/// needs): every document that is valid becomes an object, handed to `each` as soon as its
/// document is parsed (a file of 10,000 users held whole, with every field's location, weighs
/// ten times its text); every problem becomes a diagnostic. A broken document never prevents
/// the others from loading.
pub(crate) fn parse_text_each(
    path: &Path,
    text: &str,
    each: &mut dyn FnMut(LoadedObject),
) -> Vec<Diagnostic> {
    let mut objects = Vec::new();
    let mut diagnostics = Vec::new();
    let chunks = split(text);
    let file: Arc<Path> = Arc::from(path);
    if chunks.len() > MAX_DOCUMENTS {
        let message = format!(
            "file holds {} documents, more than the {MAX_DOCUMENTS} allowed; split it into smaller files",
            chunks.len()
        );
        return vec![Diagnostic::error(path, 0, 0, message)];
    }
    if chunks.is_empty() {
        let message = "no manifests in this file (it is empty or holds only comments)";
        return vec![Diagnostic::error(path, 0, 0, message)];
    }
    for chunk in chunks {
        if diagnostics.len() >= MAX_FILE_DIAGNOSTICS {
            let message = format!(
                "more than {MAX_FILE_DIAGNOSTICS} problems; the rest of this file was not checked"
            );
            diagnostics.push(Diagnostic::error(path, chunk.first_line, 1, message));
            break;
        }
        if let Some(line) = chunk.bad_separator {
            let message = "invalid document separator: only a comment may follow `---` on its line";
            diagnostics.push(Diagnostic::error(path, line, 1, message));
            continue;
        }
        match parse_yaml(path, &chunk) {
            Ok(Some(root)) => parse_document(&file, &root, &mut objects, &mut diagnostics),
            Ok(None) => {}
            Err(diagnostic) => diagnostics.push(*diagnostic),
        }
        objects.drain(..).for_each(&mut *each);
    }
    diagnostics
}

/// One document's YAML as a located tree; `None` for a null document.
fn parse_yaml(path: &Path, chunk: &Chunk) -> Result<Option<Node>, Box<Diagnostic>> {
    let offset = chunk.first_line - 1;
    match serde_saphyr::from_str_with_options::<Node>(chunk.text, yaml_options()) {
        Ok(mut root) if root.value != Value::Null => {
            root.shift_lines(offset);
            Ok(Some(root))
        }
        Ok(_) => Ok(None),
        Err(err) => {
            let (line, column) = err.location().map_or((chunk.first_line, 1), |l| {
                (l.line() as usize + offset, l.column() as usize)
            });
            Err(Box::new(Diagnostic::error(
                path,
                line,
                column,
                yaml_message(&err),
            )))
        }
    }
}

fn yaml_message(err: &serde_saphyr::Error) -> String {
    use serde_saphyr::Error as E;
    let mut err = err.without_snippet();
    if let E::AliasError { error, .. } = err {
        err = error.without_snippet();
    }
    let bomb = "; refusing it (a YAML bomb?)";
    match err {
        E::Budget { breach, .. } => {
            use serde_saphyr::budget::BudgetBreach as B;
            match breach {
                B::Nodes { .. } => {
                    format!("YAML document expands to more than {MAX_NODES} nodes{bomb}")
                }
                B::Depth { .. } => {
                    format!("YAML document is nested deeper than {MAX_DEPTH} levels")
                }
                other => format!("YAML document exceeds the parser's limits ({other:?}){bomb}"),
            }
        }
        E::AliasReplayLimitExceeded { .. }
        | E::AliasExpansionLimitExceeded { .. }
        | E::AliasReplayStackDepthExceeded { .. } => {
            format!("YAML aliases expand beyond {MAX_ALIAS_REPLAY} events{bomb}")
        }
        E::DuplicateMappingKey { key: Some(key), .. } => {
            format!("invalid YAML: the key {key:?} appears twice in this mapping")
        }
        E::DuplicateMappingKey { key: None, .. } => {
            "invalid YAML: a key appears twice in this mapping".to_string()
        }
        other => format!(
            "invalid YAML: {}",
            serde_saphyr::DefaultMessageFormatter.format_message(other)
        ),
    }
}

/// A document: one object, or a `List` of objects.
fn parse_document(
    file: &Arc<Path>,
    root: &Node,
    objects: &mut Vec<LoadedObject>,
    out: &mut Vec<Diagnostic>,
) {
    let path: &Path = file;
    let kind = root.get("kind").and_then(Node::as_str).unwrap_or("");
    let api_version = root.get("apiVersion").and_then(Node::as_str).unwrap_or("");
    let is_list = (kind == "List" && api_version == "v1")
        || kind.strip_suffix("List").and_then(Kind::parse).is_some() && api_version == API_VERSION;
    if !is_list {
        return parse_object(file, root, "", objects, out);
    }
    let mut checker = Checker {
        patterns: &schemas().patterns,
        problems: Vec::new(),
    };
    checker.check(root, &schemas().list, "");
    report(path, checker.problems, Some(kind), None, out);
    if let Some(Node {
        value: Value::Seq(items),
        ..
    }) = root.get("items")
    {
        for (i, item) in items.iter().enumerate() {
            let prefix = format!("items[{i}]");
            let item_kind = item.get("kind").and_then(Node::as_str).unwrap_or("");
            if item_kind.ends_with("List") {
                let d = Diagnostic::error(
                    path,
                    item.line,
                    item.column,
                    "a List may not contain another List",
                );
                out.push(d.with_field(format!("{prefix}.kind")));
                continue;
            }
            parse_object(file, item, &prefix, objects, out);
        }
    }
}

fn report(
    path: &Path,
    problems: Vec<Problem>,
    kind: Option<&str>,
    name: Option<&str>,
    out: &mut Vec<Diagnostic>,
) {
    for p in problems {
        let d = Diagnostic::error(path, p.line, p.column, p.message).with_field(p.field);
        out.push(d.with_object(kind.filter(|k| !k.is_empty()), name));
    }
}

fn prefixed(prefix: &str, field: &str) -> String {
    if prefix.is_empty() {
        field.to_string()
    } else {
        format!("{prefix}.{field}")
    }
}

/// One object: envelope checks, the CRD schema, then the typed kind.
fn parse_object(
    file: &Arc<Path>,
    node: &Node,
    prefix: &str,
    objects: &mut Vec<LoadedObject>,
    out: &mut Vec<Diagnostic>,
) {
    let path: &Path = file;
    let name = node
        .get("metadata")
        .and_then(|m| m.get("name"))
        .and_then(Node::as_str);
    let kind = match kind_of(node) {
        Ok(kind) => kind,
        Err(problem) => {
            let d = Diagnostic::error(path, problem.line, problem.column, problem.message);
            let field = if problem.field.is_empty() {
                prefix.to_string()
            } else {
                prefixed(prefix, &problem.field)
            };
            return out.push(d.with_field(field).with_object(None, name));
        }
    };
    let schemas = schemas();
    let mut checker = Checker {
        patterns: &schemas.patterns,
        problems: Vec::new(),
    };
    let json = checker.check(node, &schemas.by_kind[&kind], prefix);
    let failed = !checker.problems.is_empty();
    report(path, checker.problems, Some(kind.as_str()), name, out);
    if let Some(key) = status_key(node) {
        let message = "ignored: status is reported by permit-sync, not declared";
        let d = Diagnostic::warning(path, key.line, key.column, message);
        let d = d.with_field(prefixed(prefix, "status"));
        out.push(d.with_object(Some(kind.as_str()), name));
    }
    let Some(mut json) = json.filter(|_| !failed) else {
        return;
    };
    if let Json::Object(map) = &mut json {
        map.remove("status");
    }
    let object = match to_object(kind, json) {
        Ok(object) => object,
        Err(err) => {
            let message = format!("cannot read this {kind}: {err}");
            let d = Diagnostic::error(path, node.line, node.column, message).with_field(prefix);
            return out.push(d.with_kind(kind, name.unwrap_or_default()));
        }
    };
    let mut fields = FieldLocations::default();
    fields.record(node, "");
    let origin = Origin::File {
        path: file.clone(),
        line: node.line,
        column: node.column,
    };
    objects.push(LoadedObject {
        object,
        origin,
        fields,
    });
}

/// The kind a document declares, or why it declares none of ours.
fn kind_of(node: &Node) -> Result<Kind, Problem> {
    let problem = |at: &Node, field: &str, message: String| Problem {
        field: field.to_string(),
        line: at.line,
        column: at.column,
        message,
    };
    if !matches!(node.value, Value::Map(_)) {
        let message = format!(
            "a manifest must be a mapping, found {}",
            node.value.type_name()
        );
        return Err(problem(node, "", message));
    }
    let Some(kind) = node.get("kind") else {
        return Err(problem(node, "kind", "required field is missing".into()));
    };
    if let Some(known) = kind.as_str().and_then(Kind::parse) {
        return Ok(known);
    }
    let shown = kind
        .as_str()
        .map_or_else(|| kind.value.type_name().to_string(), |t| format!("{t:?}"));
    let api = node.get("apiVersion").and_then(Node::as_str).unwrap_or("");
    let from = if api.is_empty() || api == API_VERSION {
        String::new()
    } else {
        format!(" (apiVersion {api})")
    };
    let kinds: Vec<&str> = Kind::ALL.iter().map(|k| k.as_str()).collect();
    let message = format!(
        "unknown kind {shown}{from}; expected one of {}",
        kinds.join(", ")
    );
    Err(problem(kind, "kind", message))
}

/// The `status` key of a document, when it holds something.
fn status_key(node: &Node) -> Option<&Key> {
    match &node.value {
        Value::Map(entries) => entries
            .iter()
            .find(|(k, v)| k.name == "status" && v.value != Value::Null)
            .map(|(k, _)| k),
        _ => None,
    }
}

fn to_object(kind: Kind, json: Json) -> Result<Object, serde_json::Error> {
    use serde_json::from_value as from;
    Ok(match kind {
        Kind::PermitResource => Object::Resource(from(json)?),
        Kind::PermitRole => Object::Role(from(json)?),
        Kind::PermitTenant => Object::Tenant(from(json)?),
        Kind::PermitUser => Object::User(from(json)?),
        Kind::RoleAssignment => Object::Assignment(from(json)?),
        Kind::PermitResourceInstance => Object::Instance(from(json)?),
        Kind::PermitRelationshipTuple => Object::Tuple(from(json)?),
        Kind::PermitPDP => Object::Pdp(from(json)?),
        Kind::ResourceRelation | Kind::ResourceRole | Kind::RoleDerivation => {
            unreachable!("parts of a resource are not manifest kinds (Kind::parse)")
        }
    })
}
