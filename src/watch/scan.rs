//! The watched file set: every manifest file under the path with its content hash, what the
//! version in force declares and its last complete version, so a broken edit keeps the last good
//! objects in force.
//!
//! A rescan re-reads every file and re-parses only those whose bytes changed. Comparing contents
//! (not modification times or inode numbers) is what makes atomic replacements, git checkouts
//! and the `..data` symlink swap of a mounted ConfigMap all look the same: a changed file.
//!
//! A parsed manifest (the typed object, its metadata, where each field was written) weighs many
//! times the normalised model, so a version is kept as [`Declarations`]: its text (compressed)
//! and what the incremental sync compares (identity and key hashes, a digest of the facts
//! references resolve against). Its normalised objects are handed once to the declared objects
//! ([`super::sources::Sources`]), which keep the one desired model; whatever needs them again (a
//! diagnostic placed at its field, a rebuild of the model) parses the text again, as the one-shot
//! loader (`crate::source`) reads a file again. The text, not the file, because the version in
//! force may be the last good one, no longer on disk.

use super::sources::{Indexer, PerFile};
use crate::desired::{Builder, Desired};
use crate::kinds::Object;
use crate::manifest::{self, Diagnostic, FileLoad, LoadOptions, LoadedObject, ManifestSet, read};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A version's text, LZ4-compressed: manifests repeat themselves (S's 3.7 MB of users keep as
/// 0.4 MB), and the text is only read again to place a diagnostic or rebuild the model, where
/// decompressing costs a fraction of parsing.
#[derive(Debug, Default)]
pub struct Text(Box<[u8]>);

impl Text {
    fn pack(text: &str) -> Text {
        Text(lz4_flex::block::compress_prepend_size(text.as_bytes()).into_boxed_slice())
    }

    /// The text as it was packed. It was packed from a `str` by this process, so it can only
    /// fail to come back if memory was corrupted.
    fn unpack(&self) -> String {
        let bytes = lz4_flex::block::decompress_size_prepended(&self.0)
            .expect("a text this process compressed decompresses");
        String::from_utf8(bytes).expect("a text this process compressed is UTF-8")
    }
}

/// What one version of a file declares: what the incremental sync and the checks need.
#[derive(Debug, Default)]
pub struct Declarations {
    /// The version's text, parsed again to place a diagnostic at its field or to give its
    /// objects again.
    text: Text,
    /// The file's desired model, from its parse until the declared objects take it
    /// ([`Declarations::take_part`]): the model is kept once, there, not per file as well.
    part: parking_lot::Mutex<Option<Desired>>,
    /// Its keys, identity hashes and the digest of the facts references resolve against.
    pub index: PerFile,
    /// Its `PermitPDP`s (not in the model) and `PermitRole`s (the hierarchy checks), whole: a
    /// handful per directory.
    pub pdps: Vec<LoadedObject>,
    pub roles: Vec<LoadedObject>,
    /// Objects that loaded.
    pub objects: usize,
}

impl Declarations {
    /// Parses `text`: its declarations and its diagnostics.
    fn parse(path: &Path, text: String) -> (Declarations, Vec<Diagnostic>) {
        let mut d = Declarations {
            text: Text::pack(&text),
            ..Declarations::default()
        };
        let mut builder = Builder::default();
        let mut index = Indexer::default();
        let parsed = manifest::parse_on_thread(path, &text, |loaded| {
            d.objects += 1;
            index.add(&loaded.object);
            builder.add(&loaded.origin, &loaded.object);
            match loaded.object {
                Object::Pdp(_) => d.pdps.push(loaded),
                Object::Role(_) => d.roles.push(loaded),
                _ => {}
            }
        });
        match parsed {
            Ok(diagnostics) => {
                *d.part.get_mut() = Some(finish(builder));
                d.index = index.finish();
                d.pdps.shrink_to_fit();
                d.roles.shrink_to_fit();
                (d, diagnostics)
            }
            // A parser that failed part-way gives nothing of the file.
            Err(internal) => (Declarations::default(), vec![*internal]),
        }
    }

    /// The objects of this version, parsed again from its text, each handed to `each`.
    pub fn reparse(&self, path: &Path, each: impl FnMut(LoadedObject)) {
        if self.objects > 0 {
            let _ = manifest::parse_on_thread(path, &self.text.unpack(), each);
        }
    }

    /// The file's desired model (empty when the file declares one object twice: its objects
    /// are then combined from the text, as a one-shot run combines them): the one its parse
    /// made, if nothing took it yet, or made again from the text.
    pub fn take_part(&self, path: &Path) -> Desired {
        if let Some(part) = self.part.lock().take() {
            return part;
        }
        let mut builder = Builder::default();
        self.reparse(path, |loaded| {
            builder.add(&loaded.origin, &loaded.object);
        });
        finish(builder)
    }

    /// Frees the model its parse made, if nothing took it (the declared objects were combined
    /// from the texts instead).
    pub fn drop_part(&self) {
        self.part.lock().take();
    }
}

/// A file's model, compact. A duplicate within the file is seen by the index (the combined
/// path), which does not use the model.
fn finish(builder: Builder) -> Desired {
    let mut part = builder.finish().unwrap_or_default();
    part.state.compact();
    crate::model::compact(&mut part.origins);
    part
}

struct Tracked {
    hash: [u8; 32],
    /// The version in force: the fresh one, or the last good one.
    in_force: Arc<Declarations>,
    /// The fresh version's diagnostics (and, when the last good one is in force, a warning).
    diagnostics: Vec<Diagnostic>,
    /// The last version without errors.
    last_good: Option<Arc<Declarations>>,
    /// The fresh load has errors and there is no earlier good version to keep.
    broken_without_last_good: bool,
    /// The fresh load has errors; the last good objects are in force.
    keeping_last_good: bool,
}

/// What a rescan found.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Changes {
    pub added: usize,
    pub changed: usize,
    pub removed: usize,
}

impl Changes {
    pub fn any(&self) -> bool {
        self.added + self.changed + self.removed > 0
    }
}

/// The manifest files under one path.
pub struct FileSet {
    root: PathBuf,
    options: LoadOptions,
    files: BTreeMap<PathBuf, Tracked>,
    /// Problems of discovery (an unreadable directory, a dangling symlink, a missing root).
    discovery: Vec<Diagnostic>,
    /// The path itself cannot be read: nothing is known about the source.
    unreadable: Option<String>,
    /// Files added, changed or removed since [`FileSet::take_dirty`] was last called.
    dirty: std::collections::BTreeSet<PathBuf>,
}

impl FileSet {
    pub fn new(root: impl Into<PathBuf>) -> FileSet {
        FileSet {
            root: root.into(),
            options: LoadOptions::default(),
            files: BTreeMap::new(),
            discovery: Vec::new(),
            unreadable: None,
            dirty: Default::default(),
        }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Walks the path again and reloads the files whose bytes changed.
    pub fn rescan(&mut self) -> Changes {
        let mut changes = Changes::default();
        let (paths, problems) = read::discover(std::slice::from_ref(&self.root));
        if let Some(root) = problems.iter().find(|d| d.file == self.root) {
            // The whole source is gone (a symlink being swapped, an unmounted volume): keep every
            // file as it was rather than reading that as "everything was deleted".
            self.unreadable = Some(root.to_string());
            self.discovery = problems;
            return changes;
        }
        self.unreadable = None;
        let mut seen = BTreeMap::new();
        for path in paths {
            seen.insert(path.clone(), ());
            let read = read::read_text(&path, self.options.max_file_bytes);
            let hash = match &read {
                Ok(text) => digest(text.as_bytes()),
                Err(d) => digest(d.to_string().as_bytes()),
            };
            if self.files.get(&path).is_some_and(|t| t.hash == hash) {
                continue;
            }
            // Parse only what changed: a rescan of an unchanged tree is reads and hashes.
            let fresh = match read {
                Ok(text) => Declarations::parse(&path, text),
                Err(d) => failed(*d),
            };
            let previous = self.files.remove(&path);
            if previous.is_some() {
                changes.changed += 1;
            } else {
                changes.added += 1;
            }
            self.dirty.insert(path.clone());
            let tracked = track(&path, hash, fresh, previous);
            self.files.insert(path, tracked);
        }
        // A file that discovery could not follow (a dangling symlink mid-swap, no permission) is
        // broken, not deleted: its last good objects stay.
        for problem in &problems {
            if let Some(t) = self.files.get_mut(&problem.file) {
                seen.insert(problem.file.clone(), ());
                let hash = digest(problem.to_string().as_bytes());
                if t.hash != hash {
                    let previous = self.files.remove(&problem.file);
                    let fresh = failed(problem.clone());
                    let tracked = track(&problem.file, hash, fresh, previous);
                    self.files.insert(problem.file.clone(), tracked);
                    self.dirty.insert(problem.file.clone());
                    changes.changed += 1;
                }
            }
        }
        let gone: Vec<PathBuf> = self
            .files
            .keys()
            .filter(|p| !seen.contains_key(*p))
            .cloned()
            .collect();
        for p in gone {
            self.files.remove(&p);
            self.dirty.insert(p);
            changes.removed += 1;
        }
        self.discovery = problems
            .into_iter()
            .filter(|d| !self.files.contains_key(&d.file))
            .collect();
        changes
    }

    /// The objects in force, duplicates resolved, with every diagnostic (reference checks too),
    /// as a one-shot run gives them: every file in force parsed again from its text.
    pub fn manifest(&self) -> ManifestSet {
        let loads = self
            .files
            .iter()
            .map(|(path, t)| {
                let mut objects = Vec::new();
                t.in_force.reparse(path, |o| objects.push(o));
                FileLoad {
                    path: path.clone(),
                    objects,
                    diagnostics: t.diagnostics.clone(),
                }
            })
            .collect();
        let mut set = manifest::combine(loads);
        set.diagnostics.splice(0..0, self.discovery.iter().cloned());
        set.diagnostics.extend(crate::validate::check(&set.objects));
        set
    }

    /// The files added, changed or removed since the last call.
    pub fn take_dirty(&mut self) -> std::collections::BTreeSet<PathBuf> {
        std::mem::take(&mut self.dirty)
    }

    /// What the version in force of each file declares, in path order (the order
    /// [`FileSet::manifest`] combines).
    pub fn declarations(&self) -> impl Iterator<Item = (&Path, &Arc<Declarations>)> {
        self.files.iter().map(|(p, t)| (p.as_path(), &t.in_force))
    }

    /// What the version in force of one file declares.
    pub fn declarations_of(&self, path: &Path) -> Option<&Arc<Declarations>> {
        self.files.get(path).map(|t| &t.in_force)
    }

    /// The diagnostics of each file's fresh version, in path order.
    pub fn file_diagnostics(&self) -> impl Iterator<Item = &Diagnostic> {
        self.files.values().flat_map(|t| t.diagnostics.iter())
    }

    /// Problems of discovery, as [`FileSet::manifest`] puts them first.
    pub fn discovery(&self) -> &[Diagnostic] {
        &self.discovery
    }

    /// Whether `path` is a file whose last good version is in force.
    pub fn keeps_last_good(&self, path: &Path) -> bool {
        self.files.get(path).is_some_and(|t| t.keeping_last_good)
    }

    /// Why prune must wait, if it must: a file with errors and no earlier good version may
    /// declare objects we cannot see, and a source we cannot read may declare anything.
    pub fn prune_hold(&self) -> Option<String> {
        if let Some(d) = self.discovery.first() {
            return Some(format!("{}: {}", d.file.display(), d.message));
        }
        self.files
            .iter()
            .find(|(_, t)| t.broken_without_last_good)
            .map(|(p, _)| format!("{} has errors and no earlier valid version", p.display()))
    }

    /// Why the path itself cannot be read, if it cannot.
    pub fn unreadable(&self) -> Option<&str> {
        self.unreadable.as_deref()
    }

    /// Files with errors whose last good version is in force.
    pub fn kept_last_good(&self) -> impl Iterator<Item = &Path> {
        self.files
            .iter()
            .filter(|(_, t)| t.keeping_last_good)
            .map(|(p, _)| p.as_path())
    }

    pub fn len(&self) -> usize {
        self.files.len()
    }

    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }
}

fn digest(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

fn failed(d: Diagnostic) -> (Declarations, Vec<Diagnostic>) {
    (Declarations::default(), vec![d])
}

fn track(
    path: &Path,
    hash: [u8; 32],
    (fresh, mut diagnostics): (Declarations, Vec<Diagnostic>),
    previous: Option<Tracked>,
) -> Tracked {
    let complete = !diagnostics.iter().any(Diagnostic::is_error);
    let fresh = Arc::new(fresh);
    let last_good = match (complete, previous) {
        (true, _) => Some(fresh.clone()),
        (false, Some(p)) => p.last_good,
        (false, None) => None,
    };
    let in_force = match &last_good {
        Some(previous) if !complete => {
            // As `FileLoad::keeping_last_good` says it.
            let n = previous.objects;
            diagnostics.push(Diagnostic::warning(
                path,
                0,
                0,
                format!(
                    "keeping the last valid version of this file ({n} object{}) in force until it is fixed",
                    if n == 1 { "" } else { "s" }
                ),
            ));
            previous.clone()
        }
        _ => fresh,
    };
    Tracked {
        hash,
        in_force,
        diagnostics,
        broken_without_last_good: !complete && last_good.is_none(),
        keeping_last_good: !complete && last_good.is_some(),
        last_good,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TENANT: &str = "apiVersion: permitsync.dev/v1alpha1\nkind: PermitTenant\nmetadata:\n  name: acme\nspec:\n  name: Acme\n";

    fn keys(set: &FileSet) -> Vec<String> {
        set.manifest()
            .objects
            .iter()
            .map(|o| o.object.permit_key())
            .collect()
    }

    #[test]
    fn a_broken_file_keeps_its_last_good_objects_and_only_changed_files_count() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("t.yaml");
        std::fs::write(&file, TENANT).unwrap();
        let mut set = FileSet::new(dir.path());
        assert_eq!(
            set.rescan(),
            Changes {
                added: 1,
                changed: 0,
                removed: 0
            }
        );
        assert_eq!(set.rescan(), Changes::default(), "nothing changed");
        assert_eq!(keys(&set), ["acme"]);

        std::fs::write(&file, "kind: [\n").unwrap();
        assert_eq!(set.rescan().changed, 1);
        assert_eq!(keys(&set), ["acme"], "last good kept");
        assert!(set.manifest().has_errors());
        assert_eq!(set.kept_last_good().count(), 1);
        assert_eq!(set.prune_hold(), None, "its objects are known");

        std::fs::write(&file, TENANT.replace("acme", "globex")).unwrap();
        set.rescan();
        assert_eq!(keys(&set), ["globex"]);
        assert!(!set.manifest().has_errors());

        std::fs::remove_file(&file).unwrap();
        assert_eq!(set.rescan().removed, 1);
        assert!(keys(&set).is_empty());
    }

    #[test]
    fn a_file_broken_from_the_start_holds_prune_and_a_missing_root_keeps_everything() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("m");
        std::fs::create_dir(&root).unwrap();
        std::fs::write(root.join("a.yaml"), TENANT).unwrap();
        std::fs::write(root.join("b.yaml"), "kind: [\n").unwrap();
        let mut set = FileSet::new(&root);
        set.rescan();
        assert!(set.prune_hold().unwrap().contains("b.yaml"));
        std::fs::write(root.join("b.yaml"), TENANT.replace("acme", "b")).unwrap();
        set.rescan();
        assert_eq!(set.prune_hold(), None);

        let aside = dir.path().join("aside");
        std::fs::rename(&root, &aside).unwrap();
        assert_eq!(set.rescan(), Changes::default());
        assert!(set.unreadable().is_some());
        assert_eq!(keys(&set), ["acme", "b"], "a vanished root deletes nothing");
        assert!(set.prune_hold().is_some());
    }
}
