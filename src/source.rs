//! The one-shot source of `plan`, `apply` and `validate`: manifest files to the desired model,
//! streamed file by file.
//!
//! A parsed manifest (the typed object, its metadata, where each field was written) is many times
//! the size of the normalised model, and a large environment is hundreds of thousands of objects.
//! So each file is loaded, checked for clashes with what came before, folded into the model and
//! dropped. Reference checks then run on the model; only the files declaring something that does
//! not resolve are read again, to place each problem at its file, line and field exactly as the
//! whole-set check ([`validate::check`]) would.

use crate::desired::{Builder, Desired};
use crate::kinds::{Kind, Object, Origin};
use crate::manifest::{self, Clashes, Diagnostic, LoadOptions, LoadedObject, read};
use crate::validate::{self, Declared};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// What a source declares, and every problem found in it.
#[derive(Debug, Default)]
pub struct Source {
    pub desired: Desired,
    /// The `PermitPDP` objects (not part of the Permit model).
    pub pdps: Vec<LoadedObject>,
    /// Discovery, parsing, clashes, duplicates and references, in file order.
    pub diagnostics: Vec<Diagnostic>,
    /// Manifest files read.
    pub files: usize,
    /// Objects in force (declared once, parsed without error).
    pub objects: usize,
}

impl Source {
    pub fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(Diagnostic::is_error)
    }
}

/// Loads the manifests under `paths` into the desired model.
pub fn load(paths: &[PathBuf], options: &LoadOptions) -> Source {
    let (files, problems) = read::discover(paths);
    let mut source = Source {
        diagnostics: problems,
        files: files.len(),
        ..Source::default()
    };
    let mut builder = Builder::default();
    let mut clashes = Clashes::default();
    // Roles' parents in the order written (the model sorts them): cycle messages follow it.
    let mut extends: BTreeMap<String, Vec<String>> = BTreeMap::new();
    // Files to read again for exact reference diagnostics.
    let mut recheck: BTreeSet<PathBuf> = BTreeSet::new();
    for file in &files {
        // The file's own diagnostics come before the clashes found in it.
        let mut found = Vec::new();
        let parsed = manifest::load_file_each(file, options, |loaded| {
            // The model knows where each key it holds was declared: not kept twice.
            let declared_at = |kind: Kind, key: &str| builder.declared_at(kind, key).cloned();
            if let Some(clash) = clashes.check_keyed(&loaded, Some(&declared_at)) {
                found.push(clash);
                return;
            }
            source.objects += 1;
            if let Object::Role(r) = &loaded.object {
                extends.insert(loaded.object.permit_key(), r.spec.extends.clone());
            }
            // An assignment declared twice is reported by the reference check of both files.
            for repeated in builder.add(&loaded.origin, &loaded.object) {
                recheck.extend(repeated.first.as_ref().and_then(file_of));
                recheck.insert(file.clone());
            }
            if loaded.object.kind() == Kind::PermitPDP {
                source.pdps.push(loaded);
            }
        });
        source.diagnostics.extend(parsed);
        source.diagnostics.extend(found);
    }
    drop(clashes);
    source.desired = match builder.finish() {
        Ok(desired) => desired,
        Err(errors) => {
            // The clash check above refuses every duplicate first, so this does not happen;
            // if it ever did, it is reported rather than lost.
            for e in errors {
                let (file, line, column) = place(&e.second);
                source.diagnostics.push(
                    Diagnostic::error(file, line, column, e.to_string()).with_kind(e.kind, &e.key),
                );
            }
            Desired::default()
        }
    };
    source.desired.state.compact();
    crate::model::compact(&mut source.desired.origins);
    let declared = Declared::of_desired(&source.desired, &extends);
    recheck.extend(
        validate::suspects(&source.desired, &declared)
            .into_iter()
            .filter_map(file_of),
    );
    // Together, so a role assignment repeated across two files is seen as one repetition.
    let mut in_force = Vec::new();
    for file in files.iter().filter(|f| recheck.contains(*f)) {
        let load = manifest::load_file(file, options);
        in_force.extend(
            load.objects
                .into_iter()
                .filter(|l| is_in_force(&source.desired, l)),
        );
    }
    source
        .diagnostics
        .extend(validate::check_with(&in_force, &declared));
    drop(in_force);
    crate::memory::log_phase("loading the manifests");
    source
}

/// Whether `loaded` is the declaration the model holds (not a later duplicate of it).
/// A `RoleAssignment` repeating an inline role is in force too (the check reports the inline one).
fn is_in_force(desired: &Desired, loaded: &LoadedObject) -> bool {
    let kind = loaded.object.kind();
    let key = loaded.object.permit_key();
    match desired.origins.get(&(kind, key.clone())) {
        Some(origin) => *origin == loaded.origin,
        None => {
            kind == Kind::PermitPDP
                || kind == Kind::RoleAssignment && desired.state.assignments.contains_key(&key)
        }
    }
}

fn file_of(origin: &Origin) -> Option<PathBuf> {
    match origin {
        Origin::File { path, .. } => Some(path.to_path_buf()),
        Origin::Cluster { .. } => None,
    }
}

fn place(origin: &Origin) -> (&Path, usize, usize) {
    match origin {
        Origin::File { path, line, column } => (path, *line, *column),
        Origin::Cluster { .. } => (Path::new(""), 0, 0),
    }
}
