//! How ops reach Permit, written once for every object type: chunks of an object type's bulk
//! size, one bulk call per chunk, and when that fails the recovery its [`Recovery`] names; single
//! calls for the rest. At most `concurrency` chunks or single calls are in flight.
//!
//! A bulk call that may be repeated (an upsert, a delete) is retried by the client; if it still
//! fails, single calls name the op at fault. A bulk create is never replayed as is: Permit is
//! re-read (settled), what landed is recorded, and on a conflict or an unknown outcome what is
//! still missing gets one more bulk call, then single calls.

use super::ExecOptions;
use super::adapters::{Adapter, BulkCall, Found, Recovery};
use super::outcome::{Failed, Recorded};
use super::progress::Observer;
use crate::backoff::Backoff;
use crate::permit::{Call, PermitClient, PermitError};
use crate::plan::Op;
use futures::StreamExt;
use futures::future::BoxFuture;
use std::future::Future;
use std::sync::Mutex;
use std::time::Duration;

/// The result of one op's calls.
pub type Outcome = Result<(), PermitError>;

/// One execution: the plan's ops and their outcomes as they come in.
pub struct Exec<'a> {
    pub client: &'a PermitClient,
    pub opts: &'a ExecOptions,
    /// Each op's outcome at its [`Op::index`] (a map keyed by kind and key cost more than the
    /// plan itself at 400,000 objects).
    pub outcomes: Mutex<Vec<Option<Recorded>>>,
    pub observer: &'a dyn Observer,
}

impl Exec<'_> {
    /// Creates and updates of one object type: wave by wave, the ops its bulk write covers in
    /// chunks, then the others one by one.
    pub async fn write(&self, a: &dyn Adapter, ops: Vec<&Op>) {
        let bulk = a.bulk_write();
        for wave in a.waves(ops) {
            let (bulked, single): (Vec<&Op>, Vec<&Op>) = match bulk {
                Some(b) => wave
                    .into_iter()
                    .partition(|o| b.actions.contains(&o.action)),
                None => (Vec::new(), wave),
            };
            if let Some(b) = bulk {
                self.chunked(bulked, b, |op| a.write(self.client, op)).await;
            }
            self.singles(single, |op| a.write(self.client, op)).await;
        }
    }

    /// Deletions of one object type: in bulk where it has a bulk delete, else one by one. A
    /// missing object (404) is deleted.
    pub async fn delete(&self, a: &dyn Adapter, ops: Vec<&Op>) {
        let single = |op: &Op| {
            let call = a.delete(self.client, op);
            async move {
                match self.client.call(call).await {
                    Err(e) if e.is_not_found() => Ok(()),
                    r => r.map(drop),
                }
            }
        };
        match a.bulk_delete() {
            Some(b) => self.chunked(ops, b, single).await,
            None => self.singles(ops, single).await,
        }
    }

    /// `ops` in chunks of the bulk call's size, `concurrency` chunks at a time.
    async fn chunked<'o, F, Fut>(&self, ops: Vec<&'o Op>, b: BulkCall, single: F)
    where
        F: Fn(&'o Op) -> Fut,
        Fut: Future<Output = Outcome>,
    {
        let size = (b.size)(&self.opts.batch).max(1);
        let single = &single;
        let futures: Vec<_> = ops
            .chunks(size)
            .map(|chunk| self.bulk(chunk.to_vec(), &b, single))
            .collect();
        self.bounded(futures).await;
    }

    /// One bulk call for `chunk` (a chunk of one is a single call), and its recovery.
    async fn bulk<'o, F, Fut>(&self, mut chunk: Vec<&'o Op>, b: &BulkCall, single: &F)
    where
        F: Fn(&'o Op) -> Fut,
        Fut: Future<Output = Outcome>,
    {
        let mut may_rebulk = true;
        loop {
            if chunk.len() == 1 {
                let r = single(chunk[0]).await;
                self.record(chunk[0], r);
                return;
            }
            let call = (b.call)(self.client, &chunk);
            let what = call.object.clone();
            let err = match self.client.call(call).await {
                Ok(_) => {
                    for op in chunk {
                        self.record(op, Ok(()));
                    }
                    return;
                }
                Err(e) => e,
            };
            let settle = match b.recovery {
                Recovery::Singles => {
                    tracing::info!(error = %err, "{what} failed; one by one");
                    self.singles(chunk, single).await;
                    return;
                }
                Recovery::Settle(settle) => settle,
            };
            tracing::info!(error = %err, "{what} did not complete; re-reading Permit");
            let found = settle(self.client, &chunk).await;
            let missing = self.settled(found, chunk);
            let rebulk = may_rebulk && (err.is_conflict() || err.is_ambiguous());
            if rebulk && missing.len() > 1 {
                chunk = missing;
                may_rebulk = false;
                continue;
            }
            self.singles(missing, single).await;
            return;
        }
    }

    /// Records what a re-read found (or its failure, for every op: none is left to retry) and
    /// returns what is missing.
    fn settled<'o>(&self, found: Result<Found, PermitError>, chunk: Vec<&'o Op>) -> Vec<&'o Op> {
        match found {
            Ok(found) => {
                let mut missing = Vec::new();
                for (op, r) in chunk.into_iter().zip(found) {
                    match r {
                        Some(r) => self.record(op, r),
                        None => missing.push(op),
                    }
                }
                missing
            }
            Err(e) => {
                for op in chunk {
                    self.record(op, Err(e.clone().about(&op.subject())));
                }
                Vec::new()
            }
        }
    }

    /// Runs one call per op, `concurrency` at a time.
    async fn singles<'o, F, Fut>(&self, ops: Vec<&'o Op>, f: F)
    where
        F: Fn(&'o Op) -> Fut,
        Fut: Future<Output = Outcome>,
    {
        let f = &f;
        let futures: Vec<_> = ops
            .into_iter()
            .map(|op| async move {
                let r = f(op).await;
                self.record(op, r);
            })
            .collect();
        self.bounded(futures).await;
    }

    /// Runs futures `concurrency` at a time. The futures are built before the stream (not by a
    /// closure inside it), which keeps the executor's future `Send` for spawned tasks.
    async fn bounded<F: Future<Output = ()>>(&self, futures: Vec<F>) {
        futures::stream::iter(futures)
            .buffer_unordered(self.opts.concurrency.max(1))
            .collect::<Vec<()>>()
            .await;
    }

    fn record(&self, op: &Op, outcome: Outcome) {
        let recorded = outcome.map_err(|e| {
            tracing::warn!(error = %e, "{} {} failed", op.kind, op.key);
            Box::new(Failed::of(&e))
        });
        self.outcomes.lock().expect("outcomes lock")[op.index] = Some(recorded);
        self.observer.op_done();
    }
}

/// Sends a single create: `Ok(true)` when created, `Ok(false)` when the key exists (409). An
/// unknown outcome (5xx, dropped connection) is resolved by sending it again: had the first
/// landed, the next one meets 409, so a key is never created twice.
pub async fn create(client: &PermitClient, call: Call) -> Result<bool, PermitError> {
    let mut attempt = 0u32;
    loop {
        match client.call(call.clone()).await {
            Ok(_) => return Ok(true),
            Err(e) if e.is_conflict() => return Ok(false),
            Err(e) if e.is_ambiguous() && attempt < 3 => {
                attempt += 1;
                tracing::info!(error = %e, "create outcome unknown; sending it again");
                let backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(1));
                tokio::time::sleep(backoff.delay(attempt)).await;
            }
            Err(e) => return Err(e),
        }
    }
}

/// The future of an adapter's single write.
pub type Single<'a> = BoxFuture<'a, Outcome>;
