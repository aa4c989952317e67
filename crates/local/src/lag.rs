//! The PDP's view of the data: at once (the default), or `pdp_delay_ms` behind the REST API.
//!
//! At Permit, a write returns before the PDPs have it: the control plane pushes it to each PDP
//! through OPAL, and decisions made meanwhile are taken on the old data. Permit's own SDK tests
//! sleep after their writes for that reason ("sleeping 10 seconds before permit.check() to make
//! sure all writes propagated from cloud to PDP": permitio/permit-node
//! `src/tests/e2e/rbac.e2e.spec.ts`, `sleepTimeMs = 10000`; permitio/permit-python
//! `tests/test_rbac_e2e.py` slept 2 s, and now polls instead: "waiting for the viewer role
//! assignment to propagate to the PDP", `wait_until(lambda: permit.check(...))`). The
//! `pdp_delay_ms` knob reproduces it: the PDP decides on the data as it was that many
//! milliseconds ago.
//!
//! How: while the knob is set, each REST write request (and each write through the PDP's facts
//! proxy) that changed the data leaves a copy of the data, stamped with the time the write
//! returned, in a short history ([`track_writes`]). A decision reads the newest copy at least
//! `pdp_delay_ms` old; older copies are dropped. A change the middleware did not see (a data reset
//! through `/_local/reset`) is stamped when the PDP first notices it. With the knob at 0 nothing
//! is copied or kept: a decision reads the live data, and a request pays one atomic load.
//!
//! Changing the delay applies to the history kept: a longer delay shows writes made after the
//! change as late as asked, but may show earlier ones sooner (their older copies are gone).
//!
//! The PDP reports its lag on every decision route in two headers (the real PDP sends neither):
//! `X-Local-Pdp-Delay-Ms` (the knob) and `X-Local-Pdp-Pending-Ms` (how long until every write
//! made so far is in its decisions; 0 when they all are).

use super::LocalState;
use super::store::Store;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method};
use axum::middleware::Next;
use axum::response::Response;
use parking_lot::{Mutex, RwLockReadGuard};
use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// The configured delay, in milliseconds, on every local PDP decision.
pub const DELAY_HEADER: &str = "x-local-pdp-delay-ms";
/// Milliseconds until every write made so far is in the local PDP's decisions (0: all are).
pub const PENDING_HEADER: &str = "x-local-pdp-pending-ms";

/// How far the PDP's decisions are behind the REST API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PdpLag {
    /// The `pdp_delay_ms` knob.
    pub delay: Duration,
    /// Until every write made so far is in the PDP's decisions; zero when they all are.
    pub pending: Duration,
}

impl PdpLag {
    pub fn up_to_date(&self) -> bool {
        self.pending.is_zero()
    }
}

/// One copy of the data, visible to decisions from `at + delay` on (`None`: visible already).
struct Version {
    at: Option<Instant>,
    generation: u64,
    store: Arc<Store>,
}

/// The history of copies the delayed PDP reads from.
#[derive(Default)]
pub(crate) struct PdpView {
    /// Whether `history` holds anything, so that the knob at 0 costs one load.
    active: AtomicBool,
    history: Mutex<VecDeque<Version>>,
}

/// The data a decision reads: the live store, or a copy from the past.
pub(crate) enum View<'a> {
    Live(RwLockReadGuard<'a, Store>),
    Past(Arc<Store>),
}

impl std::ops::Deref for View<'_> {
    type Target = Store;
    fn deref(&self) -> &Store {
        match self {
            View::Live(guard) => guard,
            View::Past(store) => store,
        }
    }
}

/// A copy of the data that answers decisions as the original does (indexes rebuilt).
fn copy(store: &Store) -> Arc<Store> {
    Arc::new(Store::from_snapshot(store.snapshot("")))
}

impl PdpView {
    fn clear_if_active(&self) {
        if self.active.load(Ordering::Relaxed) {
            self.history.lock().clear();
            self.active.store(false, Ordering::Relaxed);
        }
    }

    /// The history, with the live data appended when it moved since the newest copy (stamped
    /// `now`), or as an already-visible base when the history is empty.
    fn sync<'a>(
        &'a self,
        shared: &LocalState,
        now: Instant,
    ) -> parking_lot::MutexGuard<'a, VecDeque<Version>> {
        let mut history = self.history.lock();
        let live = shared.store.read();
        match history.back() {
            None => history.push_back(Version {
                at: None,
                generation: live.generation,
                store: copy(&live),
            }),
            Some(v) if v.generation != live.generation => history.push_back(Version {
                at: Some(now),
                generation: live.generation,
                store: copy(&live),
            }),
            Some(_) => {}
        }
        drop(live);
        self.active.store(true, Ordering::Relaxed);
        history
    }

    /// The copy decisions read at `now`, and the lag; drops the copies older than it.
    fn visible(
        history: &mut VecDeque<Version>,
        delay: Duration,
        now: Instant,
    ) -> (Arc<Store>, PdpLag) {
        let shown = |v: &Version| v.at.is_none_or(|at| now.duration_since(at) >= delay);
        let index = history.iter().rposition(shown).unwrap_or(0);
        history.drain(..index);
        let newest = history.back().expect("synced history is not empty");
        let pending = newest
            .at
            .map(|at| delay.saturating_sub(now.duration_since(at)))
            .unwrap_or_default();
        (history[0].store.clone(), PdpLag { delay, pending })
    }
}

impl LocalState {
    fn pdp_delay(&self) -> Duration {
        Duration::from_millis(self.knobs.lock().knobs.pdp_delay_ms)
    }

    /// The data a decision reads now, and how far behind the API it is.
    pub(crate) fn pdp_view(&self) -> (View<'_>, PdpLag) {
        let delay = self.pdp_delay();
        if delay.is_zero() {
            self.pdp_view.clear_if_active();
            return (View::Live(self.store.read()), PdpLag::default());
        }
        let now = Instant::now();
        let mut history = self.pdp_view.sync(self, now);
        let (store, lag) = PdpView::visible(&mut history, delay, now);
        (View::Past(store), lag)
    }

    /// The PDP's lag now, without a decision.
    pub(crate) fn pdp_lag(&self) -> PdpLag {
        self.pdp_view().1
    }
}

/// Adds the lag headers to a PDP response.
pub(crate) fn with_lag_headers(mut response: Response, lag: PdpLag) -> Response {
    let headers = response.headers_mut();
    for (name, value) in [
        (DELAY_HEADER, lag.delay.as_millis()),
        (PENDING_HEADER, lag.pending.as_millis()),
    ] {
        headers.insert(name, HeaderValue::from(value as u64));
    }
    response
}

/// Middleware on the REST routes (and the PDP's facts proxy): while `pdp_delay_ms` is set, keeps
/// the data as it was before a write (when nothing is kept yet) and after it, stamped when the
/// write returned.
pub(crate) async fn track_writes(
    State(s): State<Arc<LocalState>>,
    req: Request,
    next: Next,
) -> Response {
    if matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS) {
        return next.run(req).await;
    }
    if s.pdp_delay().is_zero() {
        s.pdp_view.clear_if_active();
        return next.run(req).await;
    }
    drop(s.pdp_view.sync(&s, Instant::now()));
    let response = next.run(req).await;
    drop(s.pdp_view.sync(&s, Instant::now()));
    response
}

/// A handle on the PDP's lag that outlives borrows of the [`super::LocalHandle`] (`dev` polls it).
#[derive(Clone)]
pub struct LagProbe(pub(crate) Arc<LocalState>);

impl LagProbe {
    pub fn lag(&self) -> PdpLag {
        self.0.pdp_lag()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Scope;

    fn version(at: Option<Instant>, generation: u64) -> Version {
        Version {
            at,
            generation,
            store: Arc::new(Store::new(Scope::new())),
        }
    }

    #[test]
    fn decisions_read_the_newest_copy_old_enough() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut h: VecDeque<Version> = [
            version(None, 1),
            version(Some(t0), 2),
            version(Some(t0 + ms(100)), 3),
        ]
        .into();
        let delay = ms(1000);
        // Before the first write is a second old: the base, both writes pending.
        let (_, lag) = PdpView::visible(&mut h, delay, t0 + ms(500));
        assert_eq!(lag.pending, ms(600));
        assert_eq!(h.len(), 3);
        // The first write is in, the second not yet; the base is dropped.
        let (_, lag) = PdpView::visible(&mut h, delay, t0 + ms(1050));
        assert_eq!(lag.pending, ms(50));
        assert_eq!(h.iter().map(|v| v.generation).collect::<Vec<_>>(), [2, 3]);
        // Everything in.
        let (_, lag) = PdpView::visible(&mut h, delay, t0 + ms(1100));
        assert!(lag.up_to_date());
        assert_eq!(h.len(), 1);
        assert_eq!(h[0].generation, 3);
    }
}
