//! Per-object status of the directory sync, as the running process serves it (`/status`) and
//! `permit-sync status` prints it. Messages come from the Permit client (which scrubs the API key)
//! and the loader; no field values are recorded.

use crate::kinds::Kind;
use chrono::{DateTime, Utc};
use parking_lot::RwLock;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
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
#[derive(Clone, Default)]
pub struct Shared(Arc<RwLock<Report>>);

impl Shared {
    pub fn snapshot(&self) -> Report {
        self.0.read().clone()
    }

    pub fn ready(&self) -> (bool, Option<String>) {
        let r = self.0.read();
        (r.ready, r.message.clone())
    }

    pub fn update(&self, f: impl FnOnce(&mut Report)) {
        f(&mut self.0.write());
    }
}

/// Directory mode: ready once a complete sync ran and Permit answers.
impl crate::reconcile::Readiness for Shared {
    fn readiness(&self) -> (bool, Option<String>) {
        self.ready()
    }
}

/// The per-object table the loop keeps: declared objects and their state.
///
/// It remembers which entries changed since it was last published ([`Objects::publish_into`]),
/// so that a sync touching a few objects updates a few rows of the report, not all of them.
#[derive(Clone, Debug, Default)]
pub struct Objects {
    table: BTreeMap<(Kind, String), ObjectStatus>,
    /// Entries changed (added, removed, state or message) since the last publish.
    dirty: BTreeSet<(Kind, String)>,
    /// Everything may have changed: the next publish copies the whole table.
    all_dirty: bool,
    /// Objects by kind and state, kept up to date with the table.
    counts: BTreeMap<(Kind, ObjectState), i64>,
}

impl Objects {
    fn count(&mut self, kind: Kind, state: ObjectState, by: i64) {
        let n = self.counts.entry((kind, state)).or_insert(0);
        *n += by;
        if *n == 0 {
            self.counts.remove(&(kind, state));
        }
    }

    fn recount(&mut self) {
        self.counts.clear();
        let mut counts = BTreeMap::new();
        for s in self.table.values() {
            *counts.entry((s.kind, s.state)).or_insert(0) += 1;
        }
        self.counts = counts;
    }

    /// Keeps exactly the declared objects (new ones start `pending`).
    pub fn declare(&mut self, declared: impl IntoIterator<Item = (Kind, String, Option<String>)>) {
        let mut next = BTreeMap::new();
        for (kind, key, origin) in declared {
            let id = (kind, key.clone());
            let mut status = self.table.remove(&id).unwrap_or(ObjectStatus {
                kind,
                key,
                state: ObjectState::Pending,
                message: None,
                origin: None,
            });
            status.origin = origin;
            next.insert(id, status);
        }
        self.table = next;
        self.all_dirty = true;
        self.dirty.clear();
        self.recount();
    }

    /// [`Objects::declare`] for a few objects: `origin` `None` means no longer declared.
    pub fn redeclare(&mut self, kind: Kind, key: &str, origin: Option<Option<String>>) {
        let id = (kind, key.to_string());
        match origin {
            None => {
                if let Some(old) = self.table.remove(&id) {
                    self.count(kind, old.state, -1);
                    self.dirty.insert(id);
                }
            }
            Some(origin) => match self.table.get_mut(&id) {
                Some(entry) => {
                    if entry.origin != origin {
                        entry.origin = origin;
                        self.dirty.insert(id);
                    }
                }
                None => {
                    let status = ObjectStatus {
                        kind,
                        key: key.to_string(),
                        state: ObjectState::Pending,
                        message: None,
                        origin,
                    };
                    self.table.insert(id.clone(), status);
                    self.count(kind, ObjectState::Pending, 1);
                    self.dirty.insert(id);
                }
            },
        }
    }

    pub fn set(&mut self, kind: Kind, key: &str, state: ObjectState, message: Option<String>) {
        let id = (kind, key.to_string());
        if let Some(s) = self.table.get_mut(&id) {
            if s.state == state && s.message == message {
                return;
            }
            let old = s.state;
            s.state = state;
            s.message = message;
            self.count(kind, old, -1);
            self.count(kind, state, 1);
            self.dirty.insert(id);
        }
    }

    /// Marks every object not `synced` with the same error (Permit unreachable, a refused plan).
    pub fn fail_unsynced(&mut self, message: &str) {
        for s in self.table.values_mut() {
            if s.state != ObjectState::Synced {
                s.state = ObjectState::Error;
                s.message = Some(message.to_string());
            }
        }
        self.all_dirty = true;
        self.recount();
    }

    /// Marks every object with the same error.
    pub fn fail_all(&mut self, message: &str) {
        for s in self.table.values_mut() {
            s.state = ObjectState::Error;
            s.message = Some(message.to_string());
        }
        self.all_dirty = true;
        self.recount();
    }

    pub fn list(&self) -> Vec<ObjectStatus> {
        self.table.values().cloned().collect()
    }

    /// Counts by kind and state, as [`Report::counts`] gives them.
    pub fn counts(&self) -> BTreeMap<(String, String), i64> {
        self.counts
            .iter()
            .map(|((kind, state), n)| ((kind.to_string(), state.as_str().to_string()), *n))
            .collect()
    }

    /// Brings `out` (the list last published from this table, sorted by kind and key) up to
    /// date, copying only the entries changed since.
    pub fn publish_into(&mut self, out: &mut Vec<ObjectStatus>) {
        if std::mem::take(&mut self.all_dirty) {
            self.dirty.clear();
            *out = self.list();
            return;
        }
        for id in std::mem::take(&mut self.dirty) {
            let at = out.binary_search_by(|o| (o.kind, o.key.as_str()).cmp(&(id.0, id.1.as_str())));
            match (self.table.get(&id), at) {
                (Some(s), Ok(i)) => out[i] = s.clone(),
                (Some(s), Err(i)) => out.insert(i, s.clone()),
                (None, Ok(i)) => {
                    out.remove(i);
                }
                (None, Err(_)) => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn publishing_changes_only_gives_the_whole_table() {
        let mut objects = Objects::default();
        let mut out = Vec::new();
        objects.declare([
            (
                Kind::PermitTenant,
                "a".to_string(),
                Some("a.yaml:1:1".into()),
            ),
            (Kind::PermitTenant, "b".to_string(), None),
        ]);
        objects.publish_into(&mut out);
        assert_eq!(out, objects.list());
        objects.set(Kind::PermitTenant, "a", ObjectState::Synced, None);
        objects.redeclare(Kind::PermitTenant, "b", None);
        objects.redeclare(Kind::PermitUser, "u", Some(Some("u.yaml:1:1".into())));
        objects.redeclare(Kind::PermitResource, "r", Some(None));
        objects.set(Kind::PermitUser, "u", ObjectState::Error, Some("no".into()));
        objects.publish_into(&mut out);
        assert_eq!(out, objects.list());
        let report = Report {
            objects: out.clone(),
            ..Report::default()
        };
        assert_eq!(objects.counts(), report.counts());
        objects.fail_unsynced("down");
        objects.publish_into(&mut out);
        assert_eq!(out, objects.list());
        assert_eq!(
            objects.counts(),
            Report {
                objects: out,
                ..Report::default()
            }
            .counts()
        );
    }
}
