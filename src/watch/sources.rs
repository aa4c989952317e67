//! The declared objects, kept up to date file by file: a change to one file costs work
//! proportional to that file, not to the whole directory.
//!
//! [`Sources::sync`] gives what [`FileSet::manifest`] and `Desired::from_objects` would give for
//! the files in force, plus the keys whose declaration may have changed. The shortcut rests on
//! one fact: when no two objects share a kind and key, or a kind, namespace and name (and no
//! role assignment is declared twice), combining keeps every object and the desired model is the
//! union of what each file declares. Whenever that does not hold, or a change could move what
//! other files' references resolve to (a user, tenant, role or resource added, removed or
//! changed), everything is worked out again from all files, exactly as a one-shot run does.

use super::scan::{Declarations, FileSet};
use crate::desired::{Desired, DuplicateError};
use crate::kinds::{Kind, Object};
use crate::manifest::{Diagnostic, LoadedObject};
use crate::validate;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use crate::kinds::ObjectId as Key;

/// What references elsewhere may resolve to: a change to these means rechecking every file.
#[derive(Debug, Default, PartialEq, Eq)]
struct Facts {
    users: BTreeSet<String>,
    tenants: BTreeSet<String>,
    resources: BTreeMap<String, BTreeSet<String>>,
    /// Roles also make up the hierarchy, checked as a whole.
    roles: bool,
}

/// What one file contributes: its identities, keys and facts.
#[derive(Debug, Default)]
pub struct PerFile {
    /// Desired keys, inline role assignments included, as `Desired::from_objects` makes them.
    keys: Vec<Key>,
    /// (kind, Permit key) of each object, as `manifest::combine` compares them.
    ids: Vec<Key>,
    /// (kind, namespace, name) of each object.
    names: Vec<(Kind, String, String)>,
    facts: Facts,
}

impl PerFile {
    /// Adds one object of the file.
    pub fn add(&mut self, object: &Object) {
        let f = self;
        let kind = object.kind();
        let key = object.permit_key();
        let namespace = object.meta().namespace.clone().unwrap_or_default();
        f.names.push((kind, namespace, object.name().to_string()));
        f.ids.push((kind, key.clone()));
        match object {
            Object::Pdp(_) => {}
            Object::User(u) => {
                for grant in u.spec.inline_grants() {
                    f.keys.push((Kind::RoleAssignment, grant.key(&key)));
                }
                f.facts.users.insert(key.clone());
                f.keys.push((kind, key));
            }
            Object::Tenant(_) => {
                f.facts.tenants.insert(key.clone());
                f.keys.push((kind, key));
            }
            Object::Resource(r) => {
                let actions = r.spec.actions.keys().cloned().collect();
                f.facts.resources.insert(key.clone(), actions);
                f.keys.push((kind, key));
            }
            Object::Role(_) => {
                f.facts.roles = true;
                f.keys.push((kind, key));
            }
            Object::Assignment(_) => f.keys.push((kind, key)),
        }
    }

    /// Frees the vectors' spare room once the file is read.
    pub fn shrink(&mut self) {
        self.keys.shrink_to_fit();
        self.ids.shrink_to_fit();
        self.names.shrink_to_fit();
    }
}

/// A file as the declared objects last took it: the version in force and its reference checks.
struct Taken {
    declarations: Arc<Declarations>,
    /// Reference diagnostics of its objects.
    refs: Vec<Diagnostic>,
}

/// The reference diagnostics of a file's objects, placed at their fields: only a file declaring
/// something that does not resolve (seen in its normalised model) is parsed again.
fn references(path: &Path, d: &Declarations, declared: &validate::Declared) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    if !validate::suspects(&d.part, declared).is_empty() {
        d.reparse(path, |loaded| {
            validate::check_references(&loaded, declared, &mut out)
        });
    }
    out
}

/// How many declarations each identity has; `over` counts the identities declared more than once.
/// Identities are held as 64-bit hashes, not copies of every key: two identities that collide
/// count as one declared twice, which only sends the sync down the exact path (a true duplicate
/// always shares its hash), so a collision costs time, never correctness.
#[derive(Default)]
struct Counts(HashMap<u64, u32>);

fn identity<T: Hash>(id: &T) -> u64 {
    // SipHash with fixed keys: the same identity hashes alike in every call.
    let mut h = std::hash::DefaultHasher::new();
    id.hash(&mut h);
    h.finish()
}

impl Counts {
    fn add<T: Hash>(&mut self, id: &T, over: &mut usize) {
        let n = self.0.entry(identity(id)).or_insert(0);
        *n += 1;
        if *n == 2 {
            *over += 1;
        }
    }

    fn sub<T: Hash>(&mut self, id: &T, over: &mut usize) {
        let h = identity(id);
        if let Some(n) = self.0.get_mut(&h) {
            *n -= 1;
            if *n == 1 {
                *over -= 1;
            }
            if *n == 0 {
                self.0.remove(&h);
            }
        }
    }
}

/// The declared objects and their diagnostics, kept from one sync to the next.
#[derive(Default)]
pub struct Sources {
    built: bool,
    files: BTreeMap<PathBuf, Taken>,
    ids: Counts,
    names: Counts,
    keys: Counts,
    /// Identities declared more than once: the shortcut does not apply.
    over: usize,
    declared: validate::Declared,
    /// The role hierarchy checks.
    roles: Vec<Diagnostic>,
    desired: Desired,
    /// When the shortcut does not apply: the diagnostics and the PDPs of the combined set.
    exact: Option<(Vec<Diagnostic>, Vec<LoadedObject>)>,
}

impl Sources {
    /// Brings the declared objects up to date with `files`, `dirty` being the files added,
    /// changed or removed since the last call. Returns the keys whose declaration may have
    /// changed, or `None` when everything was worked out again (the first call, or whenever
    /// the shortcut does not apply).
    pub fn sync(
        &mut self,
        files: &FileSet,
        dirty: &BTreeSet<PathBuf>,
    ) -> Result<Option<BTreeSet<Key>>, Vec<DuplicateError>> {
        let out = match self.update(files, dirty) {
            Some(touched) => Ok(Some(touched)),
            None => self.rebuild(files).map(|()| None),
        };
        #[cfg(debug_assertions)]
        if out.is_ok() {
            self.check_against_full(files);
        }
        out
    }

    /// The shortcut; `None` when it does not apply.
    fn update(&mut self, files: &FileSet, dirty: &BTreeSet<PathBuf>) -> Option<BTreeSet<Key>> {
        if !self.built || self.over > 0 {
            return None;
        }
        // Worked out again from scratch if the shortcut gives up half way.
        self.built = false;
        let mut touched = BTreeSet::new();
        let mut fresh = Vec::new();
        let none = Declarations::default();
        for path in dirty {
            let old = self.files.remove(path);
            let new = files.declarations_of(path);
            let (old_index, new_index) = (
                old.as_ref().map_or(&none.index, |t| &t.declarations.index),
                new.map_or(&none.index, |d| &d.index),
            );
            if old_index.facts != new_index.facts || old_index.facts.roles || new_index.facts.roles
            {
                return None;
            }
            for id in &old_index.ids {
                self.ids.sub(id, &mut self.over);
            }
            for n in &old_index.names {
                self.names.sub(n, &mut self.over);
            }
            for k in &old_index.keys {
                self.keys.sub(k, &mut self.over);
            }
            for id in &new_index.ids {
                self.ids.add(id, &mut self.over);
            }
            for n in &new_index.names {
                self.names.add(n, &mut self.over);
            }
            for k in &new_index.keys {
                self.keys.add(k, &mut self.over);
            }
            touched.extend(old_index.keys.iter().cloned());
            touched.extend(new_index.keys.iter().cloned());
            fresh.push((path, new));
        }
        if self.over > 0 {
            return None;
        }
        for key in &touched {
            self.desired.state.remove(key.0, &key.1);
            self.desired.origins.remove(key);
            self.desired.orphans.remove(key);
        }
        for (path, new) in fresh {
            if let Some(d) = new {
                merge(&mut self.desired, &d.part);
                let refs = references(path, d, &self.declared);
                let taken = Taken {
                    declarations: d.clone(),
                    refs,
                };
                self.files.insert(path.clone(), taken);
            }
        }
        self.built = true;
        Some(touched)
    }

    /// Everything from all files.
    fn rebuild(&mut self, files: &FileSet) -> Result<(), Vec<DuplicateError>> {
        *self = Sources::default();
        let mut over = 0;
        for (path, d) in files.declarations() {
            let f = &d.index;
            for id in &f.ids {
                self.ids.add(id, &mut over);
            }
            for n in &f.names {
                self.names.add(n, &mut over);
            }
            for k in &f.keys {
                self.keys.add(k, &mut over);
            }
            let taken = Taken {
                declarations: d.clone(),
                refs: Vec::new(),
            };
            self.files.insert(path.to_path_buf(), taken);
        }
        self.over = over;
        if over > 0 {
            // Duplicates: combine as a one-shot run does.
            let set = files.manifest();
            self.desired =
                Desired::from_objects(set.objects.iter().map(|l| (&l.origin, &l.object)))?;
            let pdps = set
                .objects
                .iter()
                .filter(|l| matches!(l.object, Object::Pdp(_)))
                .cloned()
                .collect();
            self.exact = Some((set.diagnostics, pdps));
            self.built = true;
            return Ok(());
        }
        // Declared once each: the model is the union of the files' models.
        for (_, d) in files.declarations() {
            merge(&mut self.desired, &d.part);
        }
        let roles: Vec<LoadedObject> = files
            .declarations()
            .flat_map(|(_, d)| d.roles.iter().cloned())
            .collect();
        let extends = roles
            .iter()
            .filter_map(|l| match &l.object {
                Object::Role(r) => Some((l.object.permit_key(), r.spec.extends.clone())),
                _ => None,
            })
            .collect();
        self.declared = validate::Declared::of_desired(&self.desired, &extends);
        self.roles = validate::check_roles(&roles);
        for (path, taken) in self.files.iter_mut() {
            taken.refs = references(path, &taken.declarations, &self.declared);
        }
        self.built = true;
        Ok(())
    }

    /// The desired model of the files in force (valid after a successful [`Sources::sync`]).
    pub fn desired(&self) -> &Desired {
        &self.desired
    }

    /// Every diagnostic, in the order [`FileSet::manifest`] gives them.
    pub fn diagnostics(&self, files: &FileSet) -> Vec<Diagnostic> {
        if let Some((diagnostics, _)) = &self.exact {
            return diagnostics.clone();
        }
        let mut out: Vec<Diagnostic> = files.discovery().to_vec();
        out.extend(files.file_diagnostics().cloned());
        for f in self.files.values() {
            out.extend(f.refs.iter().cloned());
        }
        out.extend(self.roles.iter().cloned());
        out
    }

    /// The `PermitPDP` objects in force, in order.
    pub fn pdps<'a>(&'a self, files: &'a FileSet) -> Vec<&'a LoadedObject> {
        if let Some((_, pdps)) = &self.exact {
            return pdps.iter().collect();
        }
        files
            .declarations()
            .flat_map(|(_, d)| d.pdps.iter())
            .collect()
    }

    /// Debug builds: the shortcut must give what the one-shot path gives.
    #[cfg(debug_assertions)]
    fn check_against_full(&self, files: &FileSet) {
        let set = files.manifest();
        let show = |d: &[Diagnostic]| {
            d.iter()
                .map(|d| format!("{:?} {d}", d.severity))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            show(&self.diagnostics(files)),
            show(&set.diagnostics),
            "diagnostics"
        );
        let full = Desired::from_objects(set.objects.iter().map(|l| (&l.origin, &l.object)))
            .expect("the shortcut found no duplicates");
        assert_eq!(self.desired.state, full.state, "desired state");
        assert_eq!(self.desired.origins, full.origins, "origins");
        assert_eq!(self.desired.orphans, full.orphans, "orphans");
        let names = |v: Vec<&LoadedObject>| {
            v.iter()
                .map(|l| l.object.name().to_string())
                .collect::<Vec<_>>()
        };
        let pdps = set
            .objects
            .iter()
            .filter(|l| matches!(l.object, Object::Pdp(_)))
            .collect();
        assert_eq!(names(self.pdps(files)), names(pdps), "PDPs");
    }
}

fn merge(into: &mut Desired, part: &Desired) {
    for kind in crate::model::SYNCED_KINDS {
        for key in part.state.keys(kind) {
            if let Some(obj) = part.state.get(kind, &key) {
                into.state.insert(obj);
            }
        }
    }
    into.origins
        .extend(part.origins.iter().map(|(k, v)| (k.clone(), v.clone())));
    into.orphans.extend(part.orphans.iter().cloned());
}
