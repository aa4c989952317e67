//! Per-object status of the directory sync, as the running process serves it (`/status`) and
//! `permit-sync status` prints it. Messages come from the Permit client (which scrubs the API key)
//! and the loader; no field values are recorded.

use crate::kinds::Kind;
use chrono::{DateTime, Utc};
use parking_lot::RwLock;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
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

/// The per-object table the loop keeps: declared objects and their state.
#[derive(Clone, Debug, Default)]
pub struct Objects(BTreeMap<(Kind, String), ObjectStatus>);

impl Objects {
    /// Keeps exactly the declared objects (new ones start `pending`).
    pub fn declare(&mut self, declared: impl IntoIterator<Item = (Kind, String, Option<String>)>) {
        let mut next = BTreeMap::new();
        for (kind, key, origin) in declared {
            let id = (kind, key.clone());
            let mut status = self.0.remove(&id).unwrap_or(ObjectStatus {
                kind,
                key,
                state: ObjectState::Pending,
                message: None,
                origin: None,
            });
            status.origin = origin;
            next.insert(id, status);
        }
        self.0 = next;
    }

    pub fn set(&mut self, kind: Kind, key: &str, state: ObjectState, message: Option<String>) {
        if let Some(s) = self.0.get_mut(&(kind, key.to_string())) {
            s.state = state;
            s.message = message;
        }
    }

    /// Marks every object not `synced` with the same error (Permit unreachable, a refused plan).
    pub fn fail_unsynced(&mut self, message: &str) {
        for s in self.0.values_mut() {
            if s.state != ObjectState::Synced {
                s.state = ObjectState::Error;
                s.message = Some(message.to_string());
            }
        }
    }

    /// Marks every object with the same error.
    pub fn fail_all(&mut self, message: &str) {
        for s in self.0.values_mut() {
            s.state = ObjectState::Error;
            s.message = Some(message.to_string());
        }
    }

    pub fn list(&self) -> Vec<ObjectStatus> {
        self.0.values().cloned().collect()
    }
}
