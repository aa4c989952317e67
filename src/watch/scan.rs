//! The watched file set: every manifest file under the path with its content hash, its current
//! load and its last complete load, so a broken edit keeps the last good objects in force.
//!
//! A rescan re-reads every file and re-parses only those whose bytes changed. Comparing contents
//! (not modification times or inode numbers) is what makes atomic replacements, git checkouts
//! and the `..data` symlink swap of a mounted ConfigMap all look the same: a changed file.

use crate::manifest::{self, Diagnostic, FileLoad, LoadOptions, ManifestSet, read};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

struct Tracked {
    hash: [u8; 32],
    /// The load in force: the fresh one, or the last good objects with the fresh diagnostics.
    effective: FileLoad,
    /// The last load without errors.
    last_good: Option<FileLoad>,
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
                Ok(text) => manifest::load_text(&path, &text),
                Err(d) => failed(&path, *d),
            };
            let previous = self.files.remove(&path);
            if previous.is_some() {
                changes.changed += 1;
            } else {
                changes.added += 1;
            }
            self.dirty.insert(path.clone());
            self.files.insert(path, track(hash, fresh, previous));
        }
        // A file that discovery could not follow (a dangling symlink mid-swap, no permission) is
        // broken, not deleted: its last good objects stay.
        for problem in &problems {
            if let Some(t) = self.files.get_mut(&problem.file) {
                seen.insert(problem.file.clone(), ());
                let hash = digest(problem.to_string().as_bytes());
                if t.hash != hash {
                    let previous = self.files.remove(&problem.file);
                    let fresh = failed(&problem.file, problem.clone());
                    self.files
                        .insert(problem.file.clone(), track(hash, fresh, previous));
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

    /// The objects in force, duplicates resolved, with every diagnostic (reference checks too).
    pub fn manifest(&self) -> ManifestSet {
        let mut set = manifest::combine(self.files.values().map(|t| t.effective.clone()).collect());
        set.diagnostics.splice(0..0, self.discovery.iter().cloned());
        set.diagnostics.extend(crate::validate::check(&set.objects));
        set
    }

    /// The files added, changed or removed since the last call.
    pub fn take_dirty(&mut self) -> std::collections::BTreeSet<PathBuf> {
        std::mem::take(&mut self.dirty)
    }

    /// The load in force of each file, in path order (the order [`FileSet::manifest`] combines).
    pub fn loads(&self) -> impl Iterator<Item = &FileLoad> {
        self.files.values().map(|t| &t.effective)
    }

    /// The load in force of one file.
    pub fn load(&self, path: &Path) -> Option<&FileLoad> {
        self.files.get(path).map(|t| &t.effective)
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

fn failed(path: &Path, d: Diagnostic) -> FileLoad {
    FileLoad {
        path: path.to_path_buf(),
        objects: Vec::new(),
        diagnostics: vec![d],
    }
}

fn track(hash: [u8; 32], fresh: FileLoad, previous: Option<Tracked>) -> Tracked {
    let last_good = match (fresh.is_complete(), previous) {
        (true, _) => Some(fresh.clone()),
        (false, Some(p)) => p.last_good,
        (false, None) => None,
    };
    let broken = !fresh.is_complete();
    Tracked {
        hash,
        effective: fresh.keeping_last_good(last_good.as_ref()),
        broken_without_last_good: broken && last_good.is_none(),
        keeping_last_good: broken && last_good.is_some(),
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
