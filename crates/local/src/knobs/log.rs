//! An optional log of the REST requests the local Permit received, with their arrival times: the
//! scale benchmark replays it through the client's rate limiter at Permit's real limits.

use serde::Serialize;
use std::time::{Duration, Instant};

/// One request as it arrived.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LoggedRequest {
    /// Since the log was started or reset.
    pub at: Duration,
    pub method: String,
    pub path: String,
}

#[derive(Debug, Clone)]
pub(super) struct RequestLog {
    origin: Instant,
    pub(super) entries: Vec<LoggedRequest>,
}

impl RequestLog {
    pub(super) fn new() -> RequestLog {
        RequestLog {
            origin: Instant::now(),
            entries: Vec::new(),
        }
    }

    pub(super) fn record(&mut self, method: &str, path: &str, arrived: Instant) {
        self.entries.push(LoggedRequest {
            at: arrived.saturating_duration_since(self.origin),
            method: method.to_string(),
            path: path.to_string(),
        });
    }
}
