//! The manifest loader: files and directories of YAML manifests to typed objects with their
//! origin, and diagnostics naming file, line, column and field for everything that is wrong.
//!
//! Loading is per file ([`load_file`], [`load_text`]) so a watcher can keep a file's last good
//! result while it is broken, and per set ([`load_paths`], [`combine`]) for a one-shot run.
//! Within a file, every document is handled on its own: a broken document is reported and
//! the others still load.

pub mod error;
pub mod node;
pub mod parse;
pub mod read;
pub mod schema;
pub mod split;

pub use error::{Diagnostic, Severity};

use crate::kinds::{Kind, Object, Origin};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

/// Largest manifest file accepted (16 MiB): far above any hand-written policy, small enough
/// that a stray dump or a hostile file is refused before it is read.
pub const DEFAULT_MAX_FILE_BYTES: u64 = 16 << 20;

#[derive(Clone, Debug)]
pub struct LoadOptions {
    pub max_file_bytes: u64,
}

impl Default for LoadOptions {
    fn default() -> Self {
        LoadOptions {
            max_file_bytes: DEFAULT_MAX_FILE_BYTES,
        }
    }
}

/// Where each field of an object was written: `spec.roles[0].role` → (line, column).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FieldLocations(BTreeMap<String, (usize, usize)>);

impl FieldLocations {
    pub fn get(&self, field: &str) -> Option<(usize, usize)> {
        self.0.get(field).copied()
    }

    fn record(&mut self, node: &node::Node, field: &str) {
        self.0.insert(field.to_string(), (node.line, node.column));
        match &node.value {
            node::Value::Seq(items) => {
                for (i, item) in items.iter().enumerate() {
                    self.record(item, &format!("{field}[{i}]"));
                }
            }
            node::Value::Map(entries) => {
                for (key, value) in entries {
                    let child = if field.is_empty() {
                        key.name.clone()
                    } else {
                        format!("{field}.{}", key.name)
                    };
                    self.record(value, &child);
                }
            }
            _ => {}
        }
    }
}

/// A valid object, where it was declared, and where each of its fields was written.
#[derive(Clone, Debug)]
pub struct LoadedObject {
    pub object: Object,
    pub origin: Origin,
    pub fields: FieldLocations,
}

impl LoadedObject {
    /// A diagnostic about `field` of this object, placed where the field was written (or at
    /// the object when the field is absent).
    pub fn diagnostic(
        &self,
        severity: Severity,
        field: &str,
        message: impl Into<String>,
    ) -> Diagnostic {
        let (file, line, column) = match &self.origin {
            Origin::File { path, line, column } => {
                let (l, c) = self.fields.get(field).unwrap_or((*line, *column));
                (path.to_path_buf(), l, c)
            }
            Origin::Cluster { namespace, name } => {
                (PathBuf::from(format!("{namespace}/{name}")), 0, 0)
            }
        };
        let d = Diagnostic::error(file, line, column, message).with_field(field);
        Diagnostic {
            severity,
            ..d.with_kind(self.object.kind(), self.object.name())
        }
    }
}

/// The result of loading one file: its valid objects and its problems.
#[derive(Clone, Debug)]
pub struct FileLoad {
    pub path: PathBuf,
    pub objects: Vec<LoadedObject>,
    pub diagnostics: Vec<Diagnostic>,
}

impl FileLoad {
    /// True when every document of the file loaded. A watcher should keep the previous result
    /// of a file that is not complete, so a half-written file never deletes anything.
    pub fn is_complete(&self) -> bool {
        !self.diagnostics.iter().any(Diagnostic::is_error)
    }
}

impl FileLoad {
    /// For a watcher: when this result is not complete, keep the objects of `last_good` (the
    /// file's previous complete result) in force, with this result's diagnostics plus a
    /// warning saying so. A file being rewritten, or broken by a bad edit, then removes
    /// nothing from Permit until it is fixed.
    pub fn keeping_last_good(self, last_good: Option<&FileLoad>) -> FileLoad {
        match last_good {
            Some(previous) if !self.is_complete() && previous.is_complete() => {
                let mut diagnostics = self.diagnostics;
                diagnostics.push(Diagnostic::warning(
                    &self.path,
                    0,
                    0,
                    format!(
                        "keeping the last valid version of this file ({} object{}) in force until it is fixed",
                        previous.objects.len(),
                        if previous.objects.len() == 1 { "" } else { "s" }
                    ),
                ));
                FileLoad {
                    path: self.path,
                    objects: previous.objects.clone(),
                    diagnostics,
                }
            }
            _ => self,
        }
    }
}

/// Load one file (any extension).
pub fn load_file(path: &Path, options: &LoadOptions) -> FileLoad {
    match read::read_text(path, options.max_file_bytes) {
        Ok(text) => load_text(path, &text),
        Err(d) => FileLoad {
            path: path.to_path_buf(),
            objects: Vec::new(),
            diagnostics: vec![*d],
        },
    }
}

/// Load manifests from text already in memory; `path` names it in origins and messages.
pub fn load_text(path: &Path, text: &str) -> FileLoad {
    let mut objects = Vec::new();
    let diagnostics = match parse_on_thread(path, text, |o| objects.push(o)) {
        Ok(diagnostics) => diagnostics,
        // A parser that failed part-way gives nothing of the file.
        Err(internal) => {
            objects.clear();
            vec![*internal]
        }
    };
    FileLoad {
        path: path.to_path_buf(),
        objects,
        diagnostics,
    }
}

/// [`load_file`], handing each object to `each` (on the calling thread) as soon as it is parsed,
/// so a large file is never held whole; returns the file's diagnostics.
pub fn load_file_each(
    path: &Path,
    options: &LoadOptions,
    each: impl FnMut(LoadedObject),
) -> Vec<Diagnostic> {
    match read::read_text(path, options.max_file_bytes) {
        Ok(text) => parse_on_thread(path, &text, each).unwrap_or_else(|internal| vec![*internal]),
        Err(d) => vec![*d],
    }
}

/// Parses `text`, handing each object to `each` on the calling thread as its document is parsed;
/// the file's diagnostics, or the error to report when the parser could not run or panicked.
///
/// The YAML deserializer recurses once per nesting level and its frames are large in debug
/// builds: a document at the depth limit overflows a 2 MiB (test or tokio worker) stack. So the
/// parser runs on a thread whose stack is sized for the limit, whatever thread calls us, and
/// passes objects over a short queue: it stays a few objects ahead of the caller.
pub(crate) fn parse_on_thread(
    path: &Path,
    text: &str,
    mut each: impl FnMut(LoadedObject),
) -> Result<Vec<Diagnostic>, Box<Diagnostic>> {
    let (send, receive) = std::sync::mpsc::sync_channel::<LoadedObject>(64);
    let parsed = std::thread::scope(|scope| {
        let parser = std::thread::Builder::new()
            .name("manifest-parse".into())
            .stack_size(PARSE_STACK_BYTES)
            // The sender moves to the parser: the queue ends when the parser does.
            .spawn_scoped(scope, move || {
                parse::parse_text_each(path, text, &mut |o| {
                    // The receiver lives until this thread is joined.
                    let _ = send.send(o);
                })
            });
        parser.map(|handle| {
            for object in receive.iter() {
                each(object);
            }
            handle.join()
        })
    });
    match parsed {
        Ok(Ok(diagnostics)) => Ok(diagnostics),
        // Spawning failed (resource limits) or the parser panicked: report, never crash.
        _ => Err(Box::new(Diagnostic::error(
            path,
            0,
            0,
            "internal error while parsing this file",
        ))),
    }
}

/// Stack of the parsing thread: room for [`parse::MAX_DEPTH`] levels in a debug build, many
/// times over (address space is reserved; only the pages used are committed).
const PARSE_STACK_BYTES: usize = 64 << 20;

/// A set of files loaded together, duplicates resolved.
#[derive(Clone, Debug, Default)]
pub struct ManifestSet {
    pub files: Vec<FileLoad>,
    /// The objects in force: every valid object, less later duplicates.
    pub objects: Vec<LoadedObject>,
    /// Every diagnostic: discovery, per-file, and duplicates.
    pub diagnostics: Vec<Diagnostic>,
}

impl ManifestSet {
    pub fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(Diagnostic::is_error)
    }
}

/// Find the manifest files under `paths` (see [`read::discover`]) and load them all.
pub fn load_paths(paths: &[PathBuf], options: &LoadOptions) -> ManifestSet {
    let (files, problems) = read::discover(paths);
    let mut set = combine(files.iter().map(|f| load_file(f, options)).collect());
    set.diagnostics.splice(0..0, problems);
    set
}

/// Combine per-file results (fresh, or kept from before by a watcher) into one set.
///
/// Two objects of the same kind with the same Permit key, or the same kind, namespace and
/// name, declare one object twice: the first (in path order, then document order) stays in
/// force, so nothing disappears from Permit, and each later one is an error naming both places.
pub fn combine(files: Vec<FileLoad>) -> ManifestSet {
    let mut clashes = Clashes::default();
    let mut objects = Vec::new();
    let mut diagnostics = Vec::new();
    for file in &files {
        diagnostics.extend(file.diagnostics.iter().cloned());
        for loaded in &file.objects {
            match clashes.check(loaded) {
                Some(clash) => diagnostics.push(clash),
                None => objects.push(loaded.clone()),
            }
        }
    }
    ManifestSet {
        files,
        objects,
        diagnostics,
    }
}

/// Where a model says an object of a kind and key was first declared.
pub type DeclaredAt<'a> = dyn Fn(Kind, &str) -> Option<Origin> + 'a;

/// Finds objects declared twice: the same kind and Permit key, or the same kind, namespace and
/// name. The first declaration seen stays in force.
#[derive(Debug, Default)]
pub struct Clashes {
    by_key: HashMap<(Kind, String), Origin>,
    /// By kind and `namespace/name` (neither may hold a `/`): one string per object.
    by_name: HashMap<(Kind, Box<str>), Origin>,
}

impl Clashes {
    /// Records `loaded`, or returns the error naming its first declaration when it repeats one.
    pub fn check(&mut self, loaded: &LoadedObject) -> Option<Diagnostic> {
        self.check_keyed(loaded, None)
    }

    /// [`Clashes::check`] for a caller whose model already records where the key of each object
    /// it holds was first declared (`model`): those keys are looked up there instead of being
    /// kept a second time here. Not asked for `PermitPDP`s (not in the model) nor role
    /// assignments (the model keeps no place for one that repeats an inline role).
    pub fn check_keyed(
        &mut self,
        loaded: &LoadedObject,
        model: Option<&DeclaredAt>,
    ) -> Option<Diagnostic> {
        let kind = loaded.object.kind();
        let key = loaded.object.permit_key();
        let namespace = loaded
            .object
            .meta()
            .namespace
            .as_deref()
            .unwrap_or_default();
        let name = loaded.object.name().to_string();
        let named: Box<str> = format!("{namespace}/{name}").into();
        let model = model.filter(|_| !matches!(kind, Kind::PermitPDP | Kind::RoleAssignment));
        let first_by_key = match model {
            Some(model) => model(kind, &key),
            None => self.by_key.get(&(kind, key.clone())).cloned(),
        };
        let clash = if let Some(first) = self.by_name.get(&(kind, named.clone())) {
            Some((
                "metadata.name",
                format!("{kind} {name:?} is declared twice; the first is at {first}"),
            ))
        } else {
            first_by_key.map(|first| {
                let what = if kind == Kind::RoleAssignment {
                    "assignment"
                } else {
                    "key"
                };
                let field = match kind {
                    Kind::RoleAssignment => "spec",
                    _ if loaded.fields.get("spec.key").is_some() => "spec.key",
                    _ => "metadata.name",
                };
                (
                    field,
                    format!("{kind} {what} {key:?} is declared twice; the first is at {first}"),
                )
            })
        };
        if let Some((field, message)) = clash {
            return Some(loaded.diagnostic(Severity::Error, field, message));
        }
        self.by_name.insert((kind, named), loaded.origin.clone());
        if model.is_none() {
            self.by_key.insert((kind, key), loaded.origin.clone());
        }
        None
    }
}
