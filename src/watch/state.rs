//! Per-object status of the directory sync, as the running process serves it (`/status`) and
//! `permit-sync status` prints it. Messages come from the Permit client (which scrubs the API key)
//! and the loader; no field values are recorded.

use crate::desired::Desired;
use crate::kinds::{Kind, ObjectId, Origin};
use crate::model::SYNCED_KINDS;
use chrono::{DateTime, Utc};
use parking_lot::{RwLock, RwLockWriteGuard};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ObjectState {
    /// Permit holds the object as declared.
    Synced,
    /// A change is planned or being applied.
    Pending,
    /// The last attempt failed; `message` says why.
    Error,
    /// Changed outside permit-sync and left so (`--drift=report`).
    Drifted,
}

impl ObjectState {
    pub fn as_str(self) -> &'static str {
        match self {
            ObjectState::Synced => "synced",
            ObjectState::Pending => "pending",
            ObjectState::Error => "error",
            ObjectState::Drifted => "drifted",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectStatus {
    pub kind: Kind,
    pub key: String,
    pub state: ObjectState,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// `file:line:column` of the declaration.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<String>,
}

/// One problem in the manifest files (`file:line:column: message`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileProblem {
    pub severity: String,
    pub file: String,
    pub line: usize,
    pub column: usize,
    pub message: String,
}

/// A PDP monitored in directory mode.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PdpState {
    pub name: String,
    pub healthy: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// Timings of the last sync: what the latency benchmark and an operator look at.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncTiming {
    /// From the first file event of the batch to the start of the scan.
    pub batch_wait_ms: u64,
    pub scan_ms: u64,
    pub plan_ms: u64,
    pub apply_ms: u64,
    /// Operations planned (creates, updates, deletes, adoptions).
    pub ops: usize,
    /// API requests the sync sent.
    pub requests: u64,
}

/// Everything the watcher reports (`/status`, `permit-sync status`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct WatchStatus {
    /// A complete sync has run and Permit answered at the last attempt.
    pub ready: bool,
    /// Why not ready, or the last sync-wide error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    pub path: String,
    pub api_url: String,
    pub syncs: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_sync: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_success: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_timing: Option<SyncTiming>,
    pub objects: Vec<ObjectStatus>,
    pub files: Vec<FileProblem>,
    #[serde(default)]
    pub pdps: Vec<PdpState>,
}

impl WatchStatus {
    /// Counts by kind and state, for the `permit_sync_objects` gauge.
    pub fn counts(&self) -> BTreeMap<(String, String), i64> {
        let mut out = BTreeMap::new();
        for o in &self.objects {
            *out.entry((o.kind.to_string(), o.state.as_str().to_string()))
                .or_insert(0) += 1;
        }
        out
    }
}

/// The report shared between the sync loop and the HTTP server.
///
/// The object table is not copied into the report: `/status` lists it when asked
/// ([`Shared::snapshot`]), so the process holds each declared object's status once.
#[derive(Clone, Default)]
pub struct Shared {
    report: Arc<RwLock<WatchStatus>>,
    objects: Objects,
}

impl Shared {
    /// The report with the object table listed into it.
    pub fn snapshot(&self) -> WatchStatus {
        let mut report = self.report.read().clone();
        report.objects = self.objects.list();
        report
    }

    pub fn ready(&self) -> (bool, Option<String>) {
        let r = self.report.read();
        (r.ready, r.message.clone())
    }

    /// Changes the report's sync-wide fields (its `objects` are the table's, not set here).
    pub fn update(&self, f: impl FnOnce(&mut WatchStatus)) {
        f(&mut self.report.write());
    }

    /// The object table the sync loop writes and `/status` reads.
    pub fn objects(&self) -> Objects {
        self.objects.clone()
    }
}

/// Directory mode: ready once a complete sync ran and Permit answers.
impl crate::reconcile::Readiness for Shared {
    fn readiness(&self) -> (bool, Option<String>) {
        self.ready()
    }
}

/// `file:line:column` of a declaration (the watcher only has file origins).
fn place(origin: &Origin) -> Option<String> {
    match origin {
        Origin::File { path, line, column } => Some(format!(
            "{}:{}:{}",
            path.display(),
            u32::try_from(*line).unwrap_or(u32::MAX),
            u32::try_from(*column).unwrap_or(u32::MAX)
        )),
        Origin::Cluster { .. } => None,
    }
}

/// A declared object's identity as the table keys it: a hash of its kind and key. The keys and
/// origins are the model's, listed from it when `/status` asks, not held again here. Two
/// objects whose hashes collide (about one chance in 10^10 at 40,000 objects) share one row.
fn row_id(kind: Kind, key: &str) -> u64 {
    use std::hash::{Hash, Hasher};
    // SipHash with fixed keys: the same identity hashes alike in every call.
    let mut h = std::hash::DefaultHasher::new();
    kind.hash(&mut h);
    key.hash(&mut h);
    h.finish()
}

/// One declared object's row: 16 bytes. `message` is an index into [`Messages`] (0: none), so a
/// message set on many objects at once (Permit unreachable) is held once.
#[derive(Clone, Copy, Debug)]
struct Row {
    id: u64,
    message: u32,
    kind: Kind,
    state: ObjectState,
}

/// The rows' messages, each text held once with the number of rows that carry it.
#[derive(Debug, Default)]
struct Messages {
    /// Slot `i` is message `i + 1`; a freed slot is `None` until reused.
    slots: Vec<Option<(Arc<str>, u32)>>,
    free: Vec<u32>,
    index: HashMap<Arc<str>, u32>,
}

impl Messages {
    /// Message `text` for `rows` more rows.
    fn take(&mut self, text: &str, rows: u32) -> u32 {
        if let Some(&at) = self.index.get(text) {
            if let Some((_, n)) = &mut self.slots[at as usize - 1] {
                *n += rows;
            }
            return at;
        }
        let text: Arc<str> = Arc::from(text);
        let at = match self.free.pop() {
            Some(at) => {
                self.slots[at as usize - 1] = Some((text.clone(), rows));
                at
            }
            None => {
                self.slots.push(Some((text.clone(), rows)));
                u32::try_from(self.slots.len()).expect("fewer messages than rows")
            }
        };
        self.index.insert(text, at);
        at
    }

    /// One row no longer carries message `at`.
    fn release(&mut self, at: u32) {
        if at == 0 {
            return;
        }
        let slot = &mut self.slots[at as usize - 1];
        if let Some((text, n)) = slot {
            *n -= 1;
            if *n == 0 {
                self.index.remove(&**text);
                *slot = None;
                self.free.push(at);
            }
        }
    }

    fn text(&self, at: u32) -> Option<&str> {
        let slot = self.slots.get((at as usize).checked_sub(1)?)?;
        slot.as_ref().map(|(text, _)| &**text)
    }
}

#[derive(Debug, Default)]
struct Table {
    /// The declared objects' model, which the rows were declared from: their keys and origins.
    /// `None` while the sync changes it ([`Objects::declaring`]) or before the first sync.
    model: Option<Arc<Desired>>,
    /// Sorted by id.
    rows: Vec<Row>,
    messages: Messages,
    /// Objects by kind and state, kept up to date with the rows (the `permit_sync_objects` gauge).
    counts: BTreeMap<(Kind, ObjectState), i64>,
}

impl Table {
    fn find(&self, id: u64) -> Result<usize, usize> {
        self.rows.binary_search_by_key(&id, |r| r.id)
    }

    fn count(&mut self, kind: Kind, state: ObjectState, by: i64) {
        let n = self.counts.entry((kind, state)).or_insert(0);
        *n += by;
        if *n == 0 {
            self.counts.remove(&(kind, state));
        }
    }

    fn recount(&mut self) {
        let mut counts = BTreeMap::new();
        for row in &self.rows {
            *counts.entry((row.kind, row.state)).or_insert(0) += 1;
        }
        self.counts = counts;
    }

    fn set_all(&mut self, message: &str, only_unsynced: bool) {
        let rows = self
            .rows
            .iter()
            .filter(|r| !only_unsynced || r.state != ObjectState::Synced)
            .count();
        let Ok(n) = u32::try_from(rows) else { return };
        if n == 0 {
            return;
        }
        let at = self.messages.take(message, n);
        for row in &mut self.rows {
            if !only_unsynced || row.state != ObjectState::Synced {
                self.messages.release(row.message);
                row.state = ObjectState::Error;
                row.message = at;
            }
        }
        self.recount();
    }

    /// Keeps exactly the objects `model` declares; new ones start `pending`.
    fn declare(&mut self, model: &Desired) {
        let mut old = std::mem::take(&mut self.rows);
        let mut rows = Vec::with_capacity(model.state.len());
        for kind in SYNCED_KINDS {
            for key in model.state.key_refs(kind) {
                let id = row_id(kind, key);
                let row = match old.binary_search_by_key(&id, |r| r.id) {
                    // Its message moves along (the old row lets go of it).
                    Ok(at) => {
                        let message = std::mem::replace(&mut old[at].message, 0);
                        Row { message, ..old[at] }
                    }
                    Err(_) => Row {
                        id,
                        message: 0,
                        kind,
                        state: ObjectState::Pending,
                    },
                };
                rows.push(row);
            }
        }
        for row in old {
            self.messages.release(row.message);
        }
        rows.sort_unstable_by_key(|r| r.id);
        rows.dedup_by_key(|r| r.id);
        rows.shrink_to_fit();
        self.rows = rows;
        self.recount();
    }

    /// [`Table::declare`] for the `touched` objects only: declared in `model` or gone.
    fn redeclare(&mut self, model: &Desired, touched: &BTreeSet<ObjectId>) {
        let mut added = Vec::new();
        let mut gone = Vec::new();
        for (kind, key) in touched {
            let id = row_id(*kind, key);
            match (model.state.contains(*kind, key), self.find(id)) {
                (true, Err(_)) => added.push(Row {
                    id,
                    message: 0,
                    kind: *kind,
                    state: ObjectState::Pending,
                }),
                (false, Ok(at)) => gone.push(at),
                _ => {}
            }
        }
        if !gone.is_empty() {
            gone.sort_unstable();
            gone.dedup();
            for &at in &gone {
                let row = self.rows[at];
                self.messages.release(row.message);
                self.count(row.kind, row.state, -1);
            }
            let mut at = 0;
            let mut next = gone.iter().peekable();
            self.rows.retain(|_| {
                let keep = next.next_if_eq(&&at).is_none();
                at += 1;
                keep
            });
        }
        if !added.is_empty() {
            added.sort_unstable_by_key(|r| r.id);
            added.dedup_by_key(|r| r.id);
            for row in &added {
                self.count(row.kind, row.state, 1);
            }
            self.rows.extend(added);
            self.rows.sort_by_key(|r| r.id);
        }
    }
}

/// The per-object table: declared objects and their state, written by the sync loop and listed
/// by `/status`. A handle: clones share the one table.
#[derive(Clone, Debug, Default)]
pub struct Objects(Arc<RwLock<Table>>);

/// The table while the sync changes the declared objects' model: it holds no share of the model
/// (so the model changes in place, not in a copy of it) and `/status` waits. Its methods give it
/// the model changed.
pub struct Declaring<'a>(RwLockWriteGuard<'a, Table>);

impl Declaring<'_> {
    /// Keeps exactly the objects `model` declares (new ones start `pending`).
    pub fn all(mut self, model: Arc<Desired>) {
        self.0.declare(&model);
        self.0.model = Some(model);
    }

    /// Only the `touched` objects may have come or gone.
    pub fn keys(mut self, model: Arc<Desired>, touched: &BTreeSet<ObjectId>) {
        self.0.redeclare(&model, touched);
        self.0.model = Some(model);
    }

    /// The declared objects are those of `model`, as before.
    pub fn unchanged(mut self, model: Arc<Desired>) {
        self.0.model = Some(model);
    }
}

impl Objects {
    /// The table with its share of the model let go, until the sync gives it the model again.
    pub fn declaring(&self) -> Declaring<'_> {
        let mut t = self.0.write();
        t.model = None;
        Declaring(t)
    }

    pub fn set(&self, kind: Kind, key: &str, state: ObjectState, message: Option<String>) {
        let mut t = self.0.write();
        let Ok(at) = t.find(row_id(kind, key)) else {
            return;
        };
        let row = t.rows[at];
        if row.state == state && t.messages.text(row.message) == message.as_deref() {
            return;
        }
        t.messages.release(row.message);
        let message = message.map_or(0, |m| t.messages.take(&m, 1));
        t.rows[at].state = state;
        t.rows[at].message = message;
        t.count(kind, row.state, -1);
        t.count(kind, state, 1);
    }

    /// Marks every object not `synced` with the same error (Permit unreachable, a refused plan).
    pub fn fail_unsynced(&self, message: &str) {
        self.0.write().set_all(message, true);
    }

    /// Marks every object with the same error.
    pub fn fail_all(&self, message: &str) {
        self.0.write().set_all(message, false);
    }

    /// Every row, sorted by kind and key, as `/status` serves them: keys and origins from the
    /// model, states and messages from the rows.
    pub fn list(&self) -> Vec<ObjectStatus> {
        let t = self.0.read();
        let Some(model) = &t.model else {
            return Vec::new();
        };
        let mut out = Vec::with_capacity(t.rows.len());
        for kind in SYNCED_KINDS {
            for key in model.state.key_refs(kind) {
                let Ok(at) = t.find(row_id(kind, key)) else {
                    continue;
                };
                let row = t.rows[at];
                out.push(ObjectStatus {
                    kind,
                    key: key.to_string(),
                    state: row.state,
                    message: t.messages.text(row.message).map(str::to_string),
                    origin: model.origin(kind, key).and_then(place),
                });
            }
        }
        out
    }

    /// Counts by kind and state, as [`WatchStatus::counts`] gives them.
    pub fn counts(&self) -> BTreeMap<(String, String), i64> {
        self.0
            .read()
            .counts
            .iter()
            .map(|((kind, state), n)| ((kind.to_string(), state.as_str().to_string()), *n))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Obj, Resource, Tenant, User};
    use std::path::Path;

    fn at(file: &str) -> Origin {
        Origin::File {
            path: Arc::from(Path::new(file)),
            line: 3,
            column: 1,
        }
    }

    /// A model declaring `objects`, each with its origin's file (if any).
    fn model(objects: &[(Kind, &str, Option<&str>)]) -> Arc<Desired> {
        let mut d = Desired::default();
        for &(kind, key, file) in objects {
            let key = key.to_string();
            d.state.insert(match kind {
                Kind::PermitTenant => Obj::Tenant(Tenant {
                    key: key.clone(),
                    name: key.clone(),
                    description: None,
                    attributes: None,
                }),
                Kind::PermitUser => Obj::User(User {
                    key: key.clone(),
                    email: None,
                    first_name: None,
                    last_name: None,
                    attributes: None,
                }),
                Kind::PermitResource => Obj::Resource(Resource {
                    key: key.clone(),
                    name: key.clone(),
                    description: None,
                    actions: BTreeMap::new(),
                    attributes: None,
                }),
                other => unreachable!("{other}"),
            });
            if let Some(file) = file {
                d.origins.insert((kind, key), at(file));
            }
        }
        Arc::new(d)
    }

    fn touched(ids: &[(Kind, &str)]) -> BTreeSet<ObjectId> {
        ids.iter().map(|(k, key)| (*k, key.to_string())).collect()
    }

    /// The listed table and its running counts agree with each other after every kind of change,
    /// and the snapshot lists the table the loop writes (no copy to fall behind).
    #[test]
    fn the_snapshot_lists_the_table_and_counts_follow_it() {
        let shared = Shared::default();
        let objects = shared.objects();
        objects.declaring().all(model(&[
            (Kind::PermitTenant, "a", Some("a.yaml")),
            (Kind::PermitTenant, "b", None),
        ]));
        let check = |expect: &[(&str, ObjectState, Option<&str>, Option<&str>)]| {
            let report = shared.snapshot();
            let got: Vec<_> = report
                .objects
                .iter()
                .map(|o| {
                    (
                        o.key.as_str(),
                        o.state,
                        o.message.as_deref(),
                        o.origin.as_deref(),
                    )
                })
                .collect();
            assert_eq!(got, expect);
            assert_eq!(objects.counts(), report.counts());
        };
        check(&[
            ("a", ObjectState::Pending, None, Some("a.yaml:3:1")),
            ("b", ObjectState::Pending, None, None),
        ]);
        objects.set(Kind::PermitTenant, "a", ObjectState::Synced, None);
        // b gone, u and r declared (r without an origin).
        objects.declaring().keys(
            model(&[
                (Kind::PermitTenant, "a", Some("a.yaml")),
                (Kind::PermitUser, "u", Some("u.yaml")),
                (Kind::PermitResource, "r", None),
            ]),
            &touched(&[
                (Kind::PermitTenant, "b"),
                (Kind::PermitUser, "u"),
                (Kind::PermitResource, "r"),
            ]),
        );
        objects.set(Kind::PermitUser, "u", ObjectState::Error, Some("no".into()));
        // Setting an undeclared object changes nothing.
        objects.set(
            Kind::PermitUser,
            "ghost",
            ObjectState::Error,
            Some("no".into()),
        );
        // Sorted by kind (in sync order), then key.
        check(&[
            ("r", ObjectState::Pending, None, None),
            ("a", ObjectState::Synced, None, Some("a.yaml:3:1")),
            ("u", ObjectState::Error, Some("no"), Some("u.yaml:3:1")),
        ]);
        objects.fail_unsynced("down");
        check(&[
            ("r", ObjectState::Error, Some("down"), None),
            ("a", ObjectState::Synced, None, Some("a.yaml:3:1")),
            ("u", ObjectState::Error, Some("down"), Some("u.yaml:3:1")),
        ]);
        objects.fail_all("gone");
        check(&[
            ("r", ObjectState::Error, Some("gone"), None),
            ("a", ObjectState::Error, Some("gone"), Some("a.yaml:3:1")),
            ("u", ObjectState::Error, Some("gone"), Some("u.yaml:3:1")),
        ]);
        // Declaring again keeps a row's state and drops what is no longer declared.
        objects
            .declaring()
            .all(model(&[(Kind::PermitUser, "u", None)]));
        check(&[("u", ObjectState::Error, Some("gone"), None)]);
        // A model that stays as it was (the sync failed) keeps the rows.
        objects
            .declaring()
            .unchanged(model(&[(Kind::PermitUser, "u", None)]));
        check(&[("u", ObjectState::Error, Some("gone"), None)]);
        // Messages no row carries are let go; a freed slot is reused.
        objects.set(Kind::PermitUser, "u", ObjectState::Synced, None);
        objects.set(
            Kind::PermitUser,
            "u",
            ObjectState::Error,
            Some("again".into()),
        );
        check(&[("u", ObjectState::Error, Some("again"), None)]);
        let t = objects.0.read();
        assert_eq!(t.messages.index.len(), 1);
        assert_eq!(t.messages.slots.iter().flatten().count(), 1);
    }
}
