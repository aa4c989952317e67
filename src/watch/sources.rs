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

use super::scan::FileSet;
use crate::desired::{Desired, DuplicateError};
use crate::kinds::{DEFAULT_TENANT, Kind, Object, assignment_key};
use crate::manifest::{Diagnostic, FileLoad, LoadedObject};
use crate::validate;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::hash::Hash;
use std::path::PathBuf;

pub type Key = (Kind, String);

/// What references elsewhere may resolve to: a change to these means rechecking every file.
#[derive(Default, PartialEq, Eq)]
struct Facts {
    users: BTreeSet<String>,
    tenants: BTreeSet<String>,
    resources: BTreeMap<String, BTreeSet<String>>,
    /// Roles also make up the hierarchy, checked as a whole.
    roles: bool,
}

/// What one file contributes.
#[derive(Default)]
struct PerFile {
    /// Desired keys, inline role assignments included, as `Desired::from_objects` makes them.
    keys: Vec<Key>,
    /// (kind, Permit key) of each object, as `manifest::combine` compares them.
    ids: Vec<Key>,
    /// (kind, namespace, name) of each object.
    names: Vec<(Kind, String, String)>,
    facts: Facts,
    /// Reference diagnostics of its objects.
    refs: Vec<Diagnostic>,
}

impl PerFile {
    fn of(load: &FileLoad) -> PerFile {
        let mut f = PerFile::default();
        for loaded in &load.objects {
            let object = &loaded.object;
            let kind = object.kind();
            let key = object.permit_key();
            let namespace = object.meta().namespace.clone().unwrap_or_default();
            f.names.push((kind, namespace, object.name().to_string()));
            f.ids.push((kind, key.clone()));
            match object {
                Object::Pdp(_) => {}
                Object::User(u) => {
                    for r in u.spec.roles.iter().flatten() {
                        let tenant = r.tenant.as_deref().unwrap_or(DEFAULT_TENANT);
                        let grant = assignment_key(&key, &r.role, tenant, None);
                        f.keys.push((Kind::RoleAssignment, grant));
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
        f
    }
}

/// How many declarations each identity has; `over` counts the identities declared more than once.
struct Counts<T>(HashMap<T, u32>);

impl<T> Default for Counts<T> {
    fn default() -> Self {
        Counts(HashMap::new())
    }
}

impl<T: Hash + Eq + Clone> Counts<T> {
    fn add(&mut self, id: &T, over: &mut usize) {
        let n = self.0.entry(id.clone()).or_insert(0);
        *n += 1;
        if *n == 2 {
            *over += 1;
        }
    }

    fn sub(&mut self, id: &T, over: &mut usize) {
        if let Some(n) = self.0.get_mut(id) {
            *n -= 1;
            if *n == 1 {
                *over -= 1;
            }
            if *n == 0 {
                self.0.remove(id);
            }
        }
    }
}

/// The declared objects and their diagnostics, kept from one sync to the next.
#[derive(Default)]
pub struct Sources {
    built: bool,
    files: BTreeMap<PathBuf, PerFile>,
    ids: Counts<Key>,
    names: Counts<(Kind, String, String)>,
    keys: Counts<Key>,
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
        for path in dirty {
            let old = self.files.remove(path).unwrap_or_default();
            let load = files.load(path);
            let new = load.map(PerFile::of).unwrap_or_default();
            if old.facts != new.facts || old.facts.roles || new.facts.roles {
                return None;
            }
            for id in &old.ids {
                self.ids.sub(id, &mut self.over);
            }
            for n in &old.names {
                self.names.sub(n, &mut self.over);
            }
            for k in &old.keys {
                self.keys.sub(k, &mut self.over);
            }
            for id in &new.ids {
                self.ids.add(id, &mut self.over);
            }
            for n in &new.names {
                self.names.add(n, &mut self.over);
            }
            for k in &new.keys {
                self.keys.add(k, &mut self.over);
            }
            touched.extend(old.keys);
            touched.extend(new.keys.iter().cloned());
            fresh.push((path, load, new));
        }
        if self.over > 0 {
            return None;
        }
        for key in &touched {
            self.desired.state.remove(key.0, &key.1);
            self.desired.origins.remove(key);
            self.desired.orphans.remove(key);
        }
        for (path, load, mut new) in fresh {
            if let Some(load) = load {
                let part =
                    Desired::from_objects(load.objects.iter().map(|l| (&l.origin, &l.object)))
                        .ok()?;
                merge(&mut self.desired, part);
                for loaded in &load.objects {
                    validate::check_references(loaded, &self.declared, &mut new.refs);
                }
                self.files.insert(path.clone(), new);
            }
        }
        self.built = true;
        Some(touched)
    }

    /// Everything from all files.
    fn rebuild(&mut self, files: &FileSet) -> Result<(), Vec<DuplicateError>> {
        *self = Sources::default();
        let mut over = 0;
        for load in files.loads() {
            let f = PerFile::of(load);
            for id in &f.ids {
                self.ids.add(id, &mut over);
            }
            for n in &f.names {
                self.names.add(n, &mut over);
            }
            for k in &f.keys {
                self.keys.add(k, &mut over);
            }
            self.files.insert(load.path.clone(), f);
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
        self.declared = validate::Declared::of(files.loads().flat_map(|l| &l.objects));
        let roles: Vec<_> = files
            .loads()
            .flat_map(|l| &l.objects)
            .filter(|l| matches!(l.object, Object::Role(_)))
            .cloned()
            .collect();
        self.roles = validate::check_roles(&roles);
        for load in files.loads() {
            let part = Desired::from_objects(load.objects.iter().map(|l| (&l.origin, &l.object)))?;
            merge(&mut self.desired, part);
            let f = self.files.get_mut(&load.path).expect("indexed above");
            for loaded in &load.objects {
                validate::check_references(loaded, &self.declared, &mut f.refs);
            }
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
        for load in files.loads() {
            out.extend(load.diagnostics.iter().cloned());
        }
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
            .loads()
            .flat_map(|l| l.objects.iter())
            .filter(|l| matches!(l.object, Object::Pdp(_)))
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

fn merge(into: &mut Desired, part: Desired) {
    for kind in crate::model::SYNCED_KINDS {
        for key in part.state.keys(kind) {
            if let Some(obj) = part.state.get(kind, &key) {
                into.state.insert(obj);
            }
        }
    }
    into.origins.extend(part.origins);
    into.orphans.extend(part.orphans);
}
