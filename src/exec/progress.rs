//! Progress as an observer: the executor tells it what it does, the caller decides what to show
//! (the CLI's progress bar lives in `crate::commands::progress`; the long-running loops pass
//! [`Silent`]).

/// Follows one execution. Called from the executor's tasks, so it must be `Sync`.
pub trait Observer: Send + Sync + std::fmt::Debug {
    /// Execution starts; `ops` of the plan's ops call the API.
    fn started(&self, _ops: u64) {}
    /// A stage starts: an object type's creates and updates (its label, `roles`), or the
    /// deletions (`deletions`).
    fn stage(&self, _label: &'static str) {}
    /// One op is done or failed.
    fn op_done(&self) {}
    /// Execution is over.
    fn finished(&self) {}
}

/// Shows nothing.
#[derive(Debug, Default)]
pub struct Silent;

impl Observer for Silent {}
