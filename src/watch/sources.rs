//! The declared objects, kept up to date file by file: a change to one file costs work
//! proportional to that file, not to the whole directory.
//!
//! [`Sources::sync`] gives what [`FileSet::manifest`] and `Desired::from_objects` would give for
//! the files in force, plus the keys whose declaration may have changed. The shortcut rests on
//! one fact: when no two objects share a kind and key, or a kind, namespace and name (and no
//! role assignment is declared twice), combining keeps every object and the desired model is the
//! union of what each file declares. Whenever that does not hold, or a change could move what
//! other files' references resolve to (a user, tenant, role, resource or instance added, removed or
//! changed), everything is worked out again from all files, exactly as a one-shot run does.

use super::scan::{Declarations, FileSet};
use crate::desired::{Desired, DuplicateError};
use crate::kinds::{Kind, Object, Origin};
use crate::manifest::{Diagnostic, LoadedObject};
use crate::validate;
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use crate::kinds::ObjectId as Key;

/// What references elsewhere may resolve to: a change to these means rechecking every file.
#[derive(Debug, Default)]
struct Facts {
    users: BTreeSet<String>,
    tenants: BTreeSet<String>,
    /// Each resource's actions, roles and relations (what roles, derivations, tuples and
    /// instance roles elsewhere name).
    resources: BTreeMap<String, validate::ResourceFacts>,
    /// Resource instances (`type:key`), which tuples and instance roles name.
    instances: BTreeSet<String>,
}

impl Facts {
    /// SHA-256 of the sets, each string length-prefixed: equal digests, equal facts.
    fn digest(&self) -> [u8; 32] {
        let mut h = Sha256::new();
        let mut put = |s: &str| {
            h.update((s.len() as u64).to_le_bytes());
            h.update(s.as_bytes());
        };
        put("users");
        self.users.iter().for_each(|u| put(u));
        put("tenants");
        self.tenants.iter().for_each(|t| put(t));
        put("resources");
        for (resource, facts) in &self.resources {
            put(resource);
            put(&facts.actions.len().to_string());
            facts.actions.iter().for_each(|a| put(a));
            put(&facts.roles.len().to_string());
            facts.roles.iter().for_each(|r| put(r));
            put(&facts.relations.len().to_string());
            for (relation, subject) in &facts.relations {
                put(relation);
                put(subject);
            }
        }
        put("instances");
        self.instances.iter().for_each(|i| put(i));
        h.finalize().into()
    }
}

/// What one file contributes: its keys and identities (as hashes) and the digest of its facts.
/// Hashes, not the keys: a changed file's keys are read from its versions when it changes
/// ([`keys_of`]), so the directory's keys are not held once more per file.
#[derive(Debug, Default)]
pub struct PerFile {
    /// Hashes of the desired keys, inline role assignments included, as
    /// `Desired::from_objects` makes them.
    keys: Vec<u64>,
    /// Hashes of the (kind, Permit key) of each object, as `manifest::combine` compares them.
    ids: Vec<u64>,
    /// Hashes of the (kind, namespace, name) of each object.
    names: Vec<u64>,
    /// The users, tenants, resources (with their actions, roles and relations) and instances it
    /// declares.
    facts: [u8; 32],
    /// It declares roles, which also make up the hierarchy, checked as a whole.
    roles: bool,
}

/// Builds a file's [`PerFile`] one object at a time.
#[derive(Default)]
pub struct Indexer {
    index: PerFile,
    facts: Facts,
    keys: Vec<Key>,
}

impl Indexer {
    /// Adds one object of the file.
    pub fn add(&mut self, object: &Object) {
        let (f, facts, keys) = (&mut self.index, &mut self.facts, &mut self.keys);
        let kind = object.kind();
        let key = object.permit_key();
        let namespace = object.meta().namespace.as_deref().unwrap_or_default();
        f.names.push(identity(&(kind, namespace, object.name())));
        f.ids.push(identity(&(kind, key.as_str())));
        match object {
            Object::Pdp(_) => {}
            Object::User(u) => {
                for grant in u.spec.inline_grants() {
                    keys.push((Kind::RoleAssignment, grant.key(&key)));
                }
                facts.users.insert(key.clone());
                keys.push((kind, key));
            }
            Object::Instance(_) => {
                facts.instances.insert(key.clone());
                keys.push((kind, key));
            }
            Object::Tuple(_) => keys.push((kind, key)),
            Object::Tenant(_) => {
                facts.tenants.insert(key.clone());
                keys.push((kind, key));
            }
            Object::Resource(r) => {
                let declared = validate::ResourceFacts::of(&r.spec);
                facts.resources.insert(key.clone(), declared);
                for part in crate::desired::resource_parts(&key, &r.spec) {
                    keys.push((part.kind(), part.key()));
                }
                keys.push((kind, key));
            }
            Object::Role(_) => {
                f.roles = true;
                keys.push((kind, key));
            }
            Object::Assignment(_) => keys.push((kind, key)),
        }
    }

    /// The file's index, its facts reduced to their digest and no spare room in its vectors.
    pub fn finish(self) -> PerFile {
        let mut f = self.index;
        f.facts = self.facts.digest();
        f.keys = self.keys.iter().map(identity).collect();
        f.ids.shrink_to_fit();
        f.names.shrink_to_fit();
        f
    }
}

/// The desired keys a version of a file declares, from its text: what [`PerFile`] holds the
/// hashes of.
fn keys_of(path: &Path, d: &Declarations) -> Vec<Key> {
    let mut indexer = Indexer::default();
    d.reparse(path, |loaded| indexer.add(&loaded.object));
    indexer.keys
}

/// A file as the declared objects last took it: the version in force and its reference checks.
struct Taken {
    declarations: Arc<Declarations>,
    /// Reference diagnostics of its objects.
    refs: Vec<Diagnostic>,
}

/// The reference diagnostics of the objects of a file whose model is `part`, placed at their
/// fields: only a file declaring something that does not resolve is parsed again.
fn references(
    path: &Path,
    d: &Declarations,
    part: &Desired,
    declared: &validate::Declared,
) -> Vec<Diagnostic> {
    if validate::suspects(part, declared).is_empty() {
        return Vec::new();
    }
    recheck(path, d, declared)
}

/// The reference diagnostics of every object of a file, from its text.
fn recheck(path: &Path, d: &Declarations, declared: &validate::Declared) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    d.reparse(path, |loaded| {
        validate::check_references(&loaded, declared, &mut out)
    });
    out
}

/// How many declarations each identity has; `over` counts the identities declared more than once.
/// Identities are held as 64-bit hashes, not copies of every key: two identities that collide
/// count as one declared twice, which only sends the sync down the exact path (a true duplicate
/// always shares its hash), so a collision costs time, never correctness. The set of identities
/// holds 8 bytes a slot; only those declared more than once (next to none) have a count.
#[derive(Default)]
struct Counts {
    declared: HashSet<u64>,
    /// Declarations of an identity declared more than once (each at least 2).
    more: HashMap<u64, u32>,
}

fn identity<T: Hash>(id: &T) -> u64 {
    // SipHash with fixed keys: the same identity hashes alike in every call.
    let mut h = std::hash::DefaultHasher::new();
    id.hash(&mut h);
    h.finish()
}

impl Counts {
    fn add(&mut self, h: u64, over: &mut usize) {
        if self.declared.insert(h) {
            return;
        }
        let n = self.more.entry(h).or_insert(1);
        *n += 1;
        if *n == 2 {
            *over += 1;
        }
    }

    fn sub(&mut self, h: u64, over: &mut usize) {
        match self.more.get_mut(&h) {
            Some(n) => {
                *n -= 1;
                if *n == 1 {
                    *over -= 1;
                    self.more.remove(&h);
                }
            }
            None => {
                self.declared.remove(&h);
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
    /// Shared with the object table, which lists its keys and origins for `/status`; the table
    /// lets go of it while a sync changes it ([`super::state::Objects::declaring`]), so it
    /// changes in place.
    desired: Arc<Desired>,
    /// When the shortcut does not apply: the diagnostics and the PDPs of the combined set.
    exact: Option<(Vec<Diagnostic>, Vec<LoadedObject>)>,
}

/// What [`Sources::update`] did.
enum Update {
    /// Only these keys' declarations may have changed.
    Keys(BTreeSet<Key>),
    /// The model is up to date, but what references resolve to changed: every file was checked
    /// again.
    Rechecked,
    /// The shortcut does not apply: everything must be worked out again.
    Rebuild,
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
            Update::Keys(touched) => Ok(Some(touched)),
            Update::Rechecked => Ok(None),
            Update::Rebuild => self.rebuild(files).map(|()| None),
        };
        #[cfg(debug_assertions)]
        if out.is_ok() {
            self.check_against_full(files);
        }
        out
    }

    /// The shortcut: the model changed in place by what the dirty files declared and declare.
    fn update(&mut self, files: &FileSet, dirty: &BTreeSet<PathBuf>) -> Update {
        if !self.built || self.over > 0 {
            return Update::Rebuild;
        }
        // Worked out again from scratch if the shortcut gives up half way.
        self.built = false;
        let mut touched = BTreeSet::new();
        // Keys whose declaration is gone or replaced, and the versions that replace them.
        let mut removed: Vec<Key> = Vec::new();
        let mut fresh = Vec::new();
        let mut recheck = false;
        let none = PerFile::default();
        let old: Vec<Option<Taken>> = dirty.iter().map(|p| self.files.remove(p)).collect();
        for (path, old) in dirty.iter().zip(&old) {
            let new = files.declarations_of(path);
            let (old_index, new_index) = (
                old.as_ref().map_or(&none, |t| &t.declarations.index),
                new.map_or(&none, |d| &d.index),
            );
            recheck |= old_index.facts != new_index.facts || old_index.roles || new_index.roles;
            for &h in &old_index.ids {
                self.ids.sub(h, &mut self.over);
            }
            for &h in &old_index.names {
                self.names.sub(h, &mut self.over);
            }
            for &h in &old_index.keys {
                self.keys.sub(h, &mut self.over);
            }
            for &h in &new_index.ids {
                self.ids.add(h, &mut self.over);
            }
            for &h in &new_index.names {
                self.names.add(h, &mut self.over);
            }
            for &h in &new_index.keys {
                self.keys.add(h, &mut self.over);
            }
            // The same version still in force (a broken edit keeping the last good one): its
            // objects are in the model already.
            let same = matches!((old, new), (Some(t), Some(d)) if Arc::ptr_eq(&t.declarations, d));
            // The keys each version declares: the old one's from its text, the new one's from
            // its model (which the merge below takes).
            let old_keys = old
                .as_ref()
                .map(|t| keys_of(path, &t.declarations))
                .unwrap_or_default();
            let part = new.filter(|_| !same).map(|d| d.take_part(path));
            let new_keys: Vec<Key> = part.as_ref().map_or_else(Vec::new, |p| {
                p.declared().map(|(kind, key, _)| (kind, key)).collect()
            });
            touched.extend(old_keys.iter().cloned());
            touched.extend(new_keys.iter().cloned());
            if !same {
                removed.extend(old_keys);
                removed.extend(new_keys);
            }
            fresh.push((path, new, same, part));
        }
        if self.over > 0 {
            return Update::Rebuild;
        }
        // No identity is declared twice, before or after: each key belongs to one file.
        let desired = self.model_mut();
        for key in &removed {
            desired.state.remove(key.0, &key.1);
            desired.origins.remove(key);
            desired.orphans.remove(key);
        }
        for ((path, new, same, part), old) in fresh.into_iter().zip(old) {
            let Some(d) = new else { continue };
            let refs = match old {
                Some(t) if same => t.refs,
                _ => {
                    let part = part.unwrap_or_else(|| d.take_part(path));
                    let refs = if recheck {
                        Vec::new()
                    } else {
                        references(path, d, &part, &self.declared)
                    };
                    merge(self.model_mut(), part);
                    refs
                }
            };
            let taken = Taken {
                declarations: d.clone(),
                refs,
            };
            self.files.insert(path.clone(), taken);
        }
        self.built = true;
        if recheck {
            self.check_all(files);
            return Update::Rechecked;
        }
        Update::Keys(touched)
    }

    /// Everything from all files. A failure keeps the model as it was, which the object table
    /// goes on listing.
    fn rebuild(&mut self, files: &FileSet) -> Result<(), Vec<DuplicateError>> {
        let previous = std::mem::take(self).desired;
        let mut over = 0;
        for (path, d) in files.declarations() {
            let f = &d.index;
            for &h in &f.ids {
                self.ids.add(h, &mut over);
            }
            for &h in &f.names {
                self.names.add(h, &mut over);
            }
            for &h in &f.keys {
                self.keys.add(h, &mut over);
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
            for (_, d) in files.declarations() {
                d.drop_part();
            }
            let set = files.manifest();
            match Desired::from_objects(set.objects.iter().map(|l| (&l.origin, &l.object))) {
                Ok(desired) => self.desired = Arc::new(desired),
                Err(errors) => {
                    self.desired = previous;
                    return Err(errors);
                }
            }
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
        drop(previous);
        let desired = self.model_mut();
        for (path, d) in files.declarations() {
            merge(desired, d.take_part(path));
        }
        desired.state.compact();
        crate::model::compact(&mut desired.origins);
        self.check_all(files);
        self.built = true;
        Ok(())
    }

    /// What references resolve to, the role hierarchy and every file's references, from the
    /// model: only the files declaring something that does not resolve are parsed again.
    fn check_all(&mut self, files: &FileSet) {
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
        let suspects: BTreeSet<&Path> = validate::suspects(&self.desired, &self.declared)
            .into_iter()
            .filter_map(|origin| match origin {
                Origin::File { path, .. } => Some(&**path),
                Origin::Cluster { .. } => None,
            })
            .collect();
        for (path, taken) in self.files.iter_mut() {
            taken.refs = if suspects.contains(path.as_path()) {
                recheck(path, &taken.declarations, &self.declared)
            } else {
                Vec::new()
            };
        }
    }

    /// The desired model of the files in force (valid after a successful [`Sources::sync`]).
    pub fn desired(&self) -> &Desired {
        &self.desired
    }

    /// The desired model, shared (the object table lists it).
    pub fn model(&self) -> Arc<Desired> {
        self.desired.clone()
    }

    /// The model to change: nothing else holds it then (the object table let go of it), so it
    /// changes in place rather than in a copy.
    fn model_mut(&mut self) -> &mut Desired {
        debug_assert_eq!(
            Arc::strong_count(&self.desired),
            1,
            "the model is shared while it changes: it would be copied"
        );
        Arc::make_mut(&mut self.desired)
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

/// Moves `part` into `into`: maps `into` lacks are moved whole, a few objects inserted one by
/// one, many merged in one pass (which rebuilds the map, full).
fn merge(into: &mut Desired, mut part: Desired) {
    fn append<K: Ord, V>(into: &mut BTreeMap<K, V>, from: &mut BTreeMap<K, V>) {
        if from.len() * 16 < into.len() {
            into.extend(std::mem::take(from));
        } else {
            into.append(from);
        }
    }
    let to = &mut into.state;
    // Destructured, so that a new kind of object is a compile error here.
    let crate::model::State {
        mut resources,
        mut roles,
        mut tenants,
        mut users,
        mut assignments,
        mut relations,
        mut resource_roles,
        mut derivations,
        mut instances,
        mut tuples,
    } = std::mem::take(&mut part.state);
    append(&mut to.resources, &mut resources);
    append(&mut to.roles, &mut roles);
    append(&mut to.tenants, &mut tenants);
    append(&mut to.users, &mut users);
    append(&mut to.relations, &mut relations);
    append(&mut to.resource_roles, &mut resource_roles);
    append(&mut to.derivations, &mut derivations);
    append(&mut to.instances, &mut instances);
    append(&mut to.tuples, &mut tuples);
    if to.assignments.is_empty() {
        std::mem::swap(&mut to.assignments, &mut assignments);
    } else {
        let mut rest = crate::model::State {
            assignments,
            ..Default::default()
        };
        for (_, obj) in rest.take(Kind::RoleAssignment) {
            to.insert(obj);
        }
    }
    append(&mut into.origins, &mut part.origins);
    into.orphans.extend(part.orphans);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tenant(key: &str, name: &str) -> String {
        format!(
            "apiVersion: permitsync.dev/v1alpha1\nkind: PermitTenant\nmetadata:\n  name: {key}\nspec:\n  name: {name}\n---\n"
        )
    }

    fn user(key: &str, role: &str, tenant: &str) -> String {
        format!(
            "apiVersion: permitsync.dev/v1alpha1\nkind: PermitUser\nmetadata:\n  name: {key}\nspec:\n  firstName: F\n  roles:\n    - role: {role}\n      tenant: {tenant}\n---\n"
        )
    }

    const POLICY: &str = "apiVersion: permitsync.dev/v1alpha1\nkind: PermitResource\nmetadata:\n  name: doc\nspec:\n  actions:\n    read: {}\n---\napiVersion: permitsync.dev/v1alpha1\nkind: PermitRole\nmetadata:\n  name: viewer\nspec:\n  permissions:\n    - doc:read\n---\n";

    struct Env {
        dir: tempfile::TempDir,
        files: FileSet,
        sources: Sources,
    }

    impl Env {
        fn new() -> Env {
            let dir = tempfile::tempdir().unwrap();
            let files = FileSet::new(dir.path());
            Env {
                dir,
                files,
                sources: Sources::default(),
            }
        }

        fn write(&self, name: &str, text: &str) {
            std::fs::write(self.dir.path().join(name), text).unwrap();
        }

        /// One sync; debug builds compare it with the one-shot path (`check_against_full`).
        fn sync(&mut self) -> Option<Vec<String>> {
            self.files.rescan();
            let dirty = self.files.take_dirty();
            let touched = self
                .sources
                .sync(&self.files, &dirty)
                .expect("no duplicate error");
            touched.map(|t| t.into_iter().map(|(k, key)| format!("{k} {key}")).collect())
        }

        fn messages(&self) -> Vec<String> {
            self.sources
                .diagnostics(&self.files)
                .iter()
                .map(|d| format!("{}:{} {}", d.line, d.column, d.message))
                .collect()
        }

        fn tenants(&self) -> Vec<String> {
            let state = &self.sources.desired().state;
            state.tenants.values().map(|t| t.name.clone()).collect()
        }
    }

    #[test]
    fn the_model_kept_once_follows_every_kind_of_change() {
        let mut env = Env::new();
        env.write("a-policy.yaml", POLICY);
        env.write(
            "b-tenants.yaml",
            &(tenant("t1", "One") + &tenant("t2", "Two")),
        );
        env.write("c-users.yaml", &user("u1", "viewer", "t1"));
        assert_eq!(env.sync(), None, "the first sync works everything out");
        assert_eq!(env.tenants(), ["One", "Two"]);
        assert_eq!(env.sources.desired().state.assignments.len(), 1);

        // A rename: only the file's keys.
        env.write(
            "b-tenants.yaml",
            &(tenant("t1", "Uno") + &tenant("t2", "Two")),
        );
        assert_eq!(env.sync().unwrap(), ["PermitTenant t1", "PermitTenant t2"]);
        assert_eq!(env.tenants(), ["Uno", "Two"]);

        // A dangling reference, then a tenant added that resolves it (the facts change).
        env.write("c-users.yaml", &user("u1", "viewer", "t3"));
        assert!(env.sync().is_some());
        let dangling = env.messages();
        assert_eq!(dangling.len(), 1, "{dangling:?}");
        assert!(
            dangling[0].starts_with("9:15 "),
            "placed at the field: {dangling:?}"
        );
        env.write("d-more.yaml", &tenant("t3", "Three"));
        assert_eq!(env.sync(), None, "new facts: everything checked again");
        assert!(env.messages().is_empty());

        // A broken edit keeps the last good version in force.
        env.write("d-more.yaml", "kind: [\n");
        assert!(env.sync().is_some());
        assert_eq!(env.tenants(), ["Uno", "Two", "Three"]);
        env.write("d-more.yaml", &tenant("t3", "Trois"));
        assert!(env.sync().is_some());
        assert_eq!(env.tenants(), ["Uno", "Two", "Trois"]);

        // A duplicate: combined as a one-shot run does; then gone again: rebuilt from the texts.
        env.write("e-dup.yaml", &tenant("t1", "Dup"));
        assert_eq!(env.sync(), None);
        assert_eq!(env.tenants(), ["Uno", "Two", "Trois"], "the first stays");
        assert!(env.messages().iter().any(|m| m.contains("declared")));
        std::fs::remove_file(env.dir.path().join("e-dup.yaml")).unwrap();
        assert_eq!(env.sync(), None);
        assert_eq!(env.tenants(), ["Uno", "Two", "Trois"]);
        assert!(env.messages().is_empty());

        // Then the shortcut again, and a removed file.
        env.write(
            "b-tenants.yaml",
            &(tenant("t1", "Eins") + &tenant("t2", "Two")),
        );
        assert!(env.sync().is_some());
        std::fs::remove_file(env.dir.path().join("d-more.yaml")).unwrap();
        assert_eq!(env.sync(), None, "a tenant removed: the facts change");
        assert_eq!(env.tenants(), ["Eins", "Two"]);
        assert_eq!(env.messages().len(), 1, "t3 dangles again");
    }

    const HEAD: &str = "apiVersion: permitsync.dev/v1alpha1\n";

    fn resource(key: &str, spec: &str) -> String {
        format!(
            "{HEAD}kind: PermitResource\nmetadata:\n  name: {}\nspec:\n  key: {key}\n  actions: {{read: {{}}}}\n{spec}---\n",
            key.to_lowercase()
        )
    }

    #[test]
    fn rebac_references_follow_roles_relations_and_instances_in_other_files() {
        let mut env = Env::new();
        let post = |roles: &str| resource("Post", &format!("  roles:\n{roles}"));
        env.write("a-post.yaml", &post("    Author: {permissions: [read]}\n"));
        env.write(
            "b-comment.yaml",
            &resource(
                "Comment",
                "  relations:\n    parent: {subject: Post}\n  roles:\n    Moderator:\n      grantedTo:\n        - {role: Author, onResource: Post, linkedBy: parent}\n",
            ),
        );
        let instance = |name: &str, resource: &str| {
            format!(
                "{HEAD}kind: PermitResourceInstance\nmetadata:\n  name: {name}\nspec:\n  resource: {resource}\n---\n"
            )
        };
        env.write(
            "c-instances.yaml",
            &(instance("post-1", "Post") + &instance("comment-1", "Comment")),
        );
        let tuple = format!(
            "{HEAD}kind: PermitRelationshipTuple\nmetadata:\n  name: t\nspec:\n  subject: \"Post:post-1\"\n  relation: parent\n  object: \"Comment:comment-1\"\n---\n{HEAD}kind: RoleAssignment\nmetadata:\n  name: a\nspec:\n  user: john\n  role: Author\n  resourceInstance: \"Post:post-1\"\n---\n{HEAD}kind: PermitUser\nmetadata:\n  name: john\nspec: {{}}\n"
        );
        env.write("d-tuples.yaml", &tuple);
        assert_eq!(env.sync(), None);
        assert_eq!(env.messages(), Vec::<String>::new());
        assert_eq!(env.sources.desired().state.tuples.len(), 1);

        // The role renamed in one file: the derivation and the assignment elsewhere dangle.
        env.write("a-post.yaml", &post("    Writer: {permissions: [read]}\n"));
        env.sync();
        assert_eq!(
            env.messages(),
            [
                "13:18 role \"Author\" is not a role of resource \"Post\"",
                "16:9 role \"Author\" is not a role of resource \"Post\"",
            ]
        );
        env.write("a-post.yaml", &post("    Author: {permissions: [read]}\n"));
        env.sync();
        assert_eq!(env.messages(), Vec::<String>::new());

        // An instance removed: the tuple and the assignment name it.
        env.write("c-instances.yaml", &instance("comment-1", "Comment"));
        env.sync();
        assert_eq!(
            env.messages(),
            [
                "6:12 resource instance \"Post:post-1\" is not declared (no PermitResourceInstance with this key)",
                "17:21 resource instance \"Post:post-1\" is not declared (no PermitResourceInstance with this key)",
            ]
        );
        env.write(
            "c-instances.yaml",
            &(instance("post-1", "Post") + &instance("comment-1", "Comment")),
        );
        env.sync();
        assert_eq!(env.messages(), Vec::<String>::new());

        // The relation's subject changed: the tuple and the derivation no longer fit.
        env.write(
            "b-comment.yaml",
            &resource(
                "Comment",
                "  relations:\n    parent: {subject: Comment}\n  roles:\n    Moderator:\n      grantedTo:\n        - {role: Author, onResource: Post, linkedBy: parent}\n",
            ),
        );
        env.sync();
        let messages = env.messages();
        assert_eq!(messages.len(), 2, "{messages:?}");
        assert!(
            messages[0].contains("links a \"Comment\", not a \"Post\""),
            "{messages:?}"
        );
        assert!(
            messages[1].contains("takes a subject of resource \"Comment\", not \"Post\""),
            "{messages:?}"
        );
    }
}
