//! Per-object status of the directory sync, as the running process serves it (`/status`) and
//! `permit-sync status` prints it. Messages come from the Permit client (which scrubs the API key)
//! and the loader; no field values are recorded.

use crate::kinds::{Kind, Origin};
use chrono::{DateTime, Utc};
use parking_lot::RwLock;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;
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

/// Everything the process reports.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Report {
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

impl Report {
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
    report: Arc<RwLock<Report>>,
    objects: Objects,
}

impl Shared {
    /// The report with the object table listed into it.
    pub fn snapshot(&self) -> Report {
        let mut report = self.report.read().clone();
        report.objects = self.objects.list();
        report
    }

    pub fn ready(&self) -> (bool, Option<String>) {
        let r = self.report.read();
        (r.ready, r.message.clone())
    }

    /// Changes the report's sync-wide fields (its `objects` are the table's, not set here).
    pub fn update(&self, f: impl FnOnce(&mut Report)) {
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

/// Where an object was declared: a file's document start. The file's path is shared by every
/// object of the file; the watcher only has file origins.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Place {
    path: Arc<Path>,
    line: u32,
    column: u32,
}

impl Place {
    fn of(origin: &Origin) -> Option<Place> {
        match origin {
            Origin::File { path, line, column } => Some(Place {
                path: path.clone(),
                line: u32::try_from(*line).unwrap_or(u32::MAX),
                column: u32::try_from(*column).unwrap_or(u32::MAX),
            }),
            Origin::Cluster { .. } => None,
        }
    }
}

impl fmt::Display for Place {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.path.display(), self.line, self.column)
    }
}

/// One declared object's row: a few words beside its key. A message set on many objects at
/// once (Permit unreachable) is one allocation shared by all of them.
#[derive(Clone, Debug)]
struct Row {
    state: ObjectState,
    message: Option<Arc<str>>,
    place: Option<Place>,
}

/// A row's key: the object's kind and key, the key without spare capacity.
type RowKey = (Kind, Box<str>);

#[derive(Debug, Default)]
struct Table {
    rows: BTreeMap<RowKey, Row>,
    /// Objects by kind and state, kept up to date with the rows (the `permit_sync_objects` gauge).
    counts: BTreeMap<(Kind, ObjectState), i64>,
}

impl Table {
    fn count(&mut self, kind: Kind, state: ObjectState, by: i64) {
        let n = self.counts.entry((kind, state)).or_insert(0);
        *n += by;
        if *n == 0 {
            self.counts.remove(&(kind, state));
        }
    }

    fn recount(&mut self) {
        let mut counts = BTreeMap::new();
        for ((kind, _), row) in &self.rows {
            *counts.entry((*kind, row.state)).or_insert(0) += 1;
        }
        self.counts = counts;
    }

    fn set_all(&mut self, message: &str, only_unsynced: bool) {
        let message: Arc<str> = Arc::from(message);
        for row in self.rows.values_mut() {
            if !only_unsynced || row.state != ObjectState::Synced {
                row.state = ObjectState::Error;
                row.message = Some(message.clone());
            }
        }
        self.recount();
    }
}

/// The per-object table: declared objects and their state, written by the sync loop and listed
/// by `/status`. A handle: clones share the one table.
#[derive(Clone, Debug, Default)]
pub struct Objects(Arc<RwLock<Table>>);

impl Objects {
    /// Keeps exactly the declared objects (new ones start `pending`).
    pub fn declare<'a>(
        &self,
        declared: impl IntoIterator<Item = (Kind, String, Option<&'a Origin>)>,
    ) {
        let mut t = self.0.write();
        let mut next = Vec::new();
        for (kind, key, origin) in declared {
            let id = (kind, key.into_boxed_str());
            let mut row = t.rows.remove(&id).unwrap_or(Row {
                state: ObjectState::Pending,
                message: None,
                place: None,
            });
            row.place = origin.and_then(Place::of);
            next.push((id, row));
        }
        // Built at once from the rows (sorted already): full nodes, where inserting one by one
        // leaves half-empty ones.
        t.rows = BTreeMap::from_iter(next);
        t.recount();
    }

    /// [`Objects::declare`] for one object: `origin` `None` means no longer declared.
    pub fn redeclare(&self, kind: Kind, key: &str, origin: Option<Option<&Origin>>) {
        let mut t = self.0.write();
        let id: RowKey = (kind, key.into());
        match origin {
            None => {
                if let Some(old) = t.rows.remove(&id) {
                    t.count(kind, old.state, -1);
                }
            }
            Some(origin) => {
                let place = origin.and_then(Place::of);
                match t.rows.get_mut(&id) {
                    Some(row) => row.place = place,
                    None => {
                        let row = Row {
                            state: ObjectState::Pending,
                            message: None,
                            place,
                        };
                        t.rows.insert(id, row);
                        t.count(kind, ObjectState::Pending, 1);
                    }
                }
            }
        }
    }

    pub fn set(&self, kind: Kind, key: &str, state: ObjectState, message: Option<String>) {
        let mut t = self.0.write();
        let id: RowKey = (kind, key.into());
        let Some(row) = t.rows.get_mut(&id) else {
            return;
        };
        if row.state == state && row.message.as_deref() == message.as_deref() {
            return;
        }
        let old = std::mem::replace(&mut row.state, state);
        row.message = message.map(Arc::from);
        t.count(kind, old, -1);
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

    /// Every row, sorted by kind and key, as `/status` serves them.
    pub fn list(&self) -> Vec<ObjectStatus> {
        self.0
            .read()
            .rows
            .iter()
            .map(|((kind, key), row)| ObjectStatus {
                kind: *kind,
                key: key.to_string(),
                state: row.state,
                message: row.message.as_deref().map(str::to_string),
                origin: row.place.as_ref().map(ToString::to_string),
            })
            .collect()
    }

    /// Counts by kind and state, as [`Report::counts`] gives them.
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

    fn at(file: &str) -> Origin {
        Origin::File {
            path: Arc::from(Path::new(file)),
            line: 3,
            column: 1,
        }
    }

    /// The listed table and its running counts agree with each other after every kind of change,
    /// and the snapshot lists the table the loop writes (no copy to fall behind).
    #[test]
    fn the_snapshot_lists_the_table_and_counts_follow_it() {
        let shared = Shared::default();
        let objects = shared.objects();
        let a = at("a.yaml");
        objects.declare([
            (Kind::PermitTenant, "a".to_string(), Some(&a)),
            (Kind::PermitTenant, "b".to_string(), None),
        ]);
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
        objects.redeclare(Kind::PermitTenant, "b", None);
        let u = at("u.yaml");
        objects.redeclare(Kind::PermitUser, "u", Some(Some(&u)));
        objects.redeclare(Kind::PermitResource, "r", Some(None));
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
        objects.declare([(Kind::PermitUser, "u".to_string(), None)]);
        check(&[("u", ObjectState::Error, Some("gone"), None)]);
    }
}
