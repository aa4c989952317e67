//! notify glue and the batching window.
//!
//! Every event means "rescan" (git checkouts replace files, mounted ConfigMaps swap a `..data`
//! symlink, editors write temporary files), so events carry no payload: they bump a counter and
//! wake the loop. The loop then waits out the batching window ([`Batch`]) and rescans once. Raw
//! notify rather than `notify-debouncer-full`: that debouncer's per-path timeout would come on
//! top of the batching window, and its per-file bookkeeping buys nothing when any event means
//! "look again".

use notify::{RecommendedWatcher, RecursiveMode, Watcher};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::time::Instant;

/// Wakes the sync loop; coalesces any number of events into one wake-up.
#[derive(Default)]
pub struct Signal {
    events: AtomicU64,
    notify: tokio::sync::Notify,
}

impl Signal {
    pub fn new() -> Arc<Signal> {
        Arc::new(Signal::default())
    }

    pub fn raise(&self) {
        self.events.fetch_add(1, Ordering::Relaxed);
        self.notify.notify_one();
    }

    pub async fn wait(&self) {
        self.notify.notified().await;
    }

    /// Events seen since start.
    pub fn count(&self) -> u64 {
        self.events.load(Ordering::Relaxed)
    }
}

/// A recursive watch of the manifest path, plus its parent (non-recursive) so that replacing the
/// path itself (a git-sync style symlink swap, a directory renamed into place) is seen too.
pub struct FsWatch {
    _watcher: RecommendedWatcher,
    path: PathBuf,
    /// Where the path pointed when the watch was set: a different target means watch again.
    target: Option<PathBuf>,
}

impl FsWatch {
    pub fn start(path: &Path, signal: Arc<Signal>) -> notify::Result<FsWatch> {
        let mut watcher =
            notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
                match res {
                    // Reads (our own rescans among them) change nothing; git's bookkeeping neither.
                    Ok(event) if matches!(event.kind, notify::EventKind::Access(_)) => {}
                    Ok(event) if event.paths.iter().all(|p| in_git_dir(p)) => {}
                    // An error (a queue overflow among them) may hide changes: rescan as well.
                    _ => signal.raise(),
                }
            })?;
        let target = path.canonicalize().ok();
        if path.exists() {
            watcher.watch(path, RecursiveMode::Recursive)?;
        }
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty())
            && parent.exists()
        {
            // Best effort: a parent we may not watch only costs the symlink-swap case its speed
            // (the periodic rescan still finds it).
            let _ = watcher.watch(parent, RecursiveMode::NonRecursive);
        }
        Ok(FsWatch {
            _watcher: watcher,
            path: path.to_path_buf(),
            target,
        })
    }

    /// True when the path now leads somewhere else (or appeared or vanished) than when watched.
    pub fn moved(&self) -> bool {
        self.path.canonicalize().ok() != self.target
    }
}

fn in_git_dir(p: &Path) -> bool {
    p.components().any(|c| c.as_os_str() == ".git")
}

/// The batching window: changes arriving together become one sync. The batch closes `window`
/// after its first event, or later while events keep coming less than `QUIET` apart (a checkout
/// still writing), but never later than `MAX_STRETCH` windows after the first event.
#[derive(Debug, Clone, Copy)]
pub struct Batch {
    pub first: Instant,
    pub last: Instant,
    window: Duration,
}

const QUIET: Duration = Duration::from_millis(50);
const MAX_STRETCH: u32 = 4;

impl Batch {
    pub fn open(now: Instant, window: Duration) -> Batch {
        Batch {
            first: now,
            last: now,
            window,
        }
    }

    pub fn event(&mut self, now: Instant) {
        self.last = now;
    }

    pub fn deadline(&self) -> Instant {
        let planned = self.first + self.window;
        let stretched = (self.last + QUIET).max(planned);
        stretched.min(self.first + self.window * MAX_STRETCH.max(1) + QUIET)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_closes_after_the_window_and_stretches_for_a_burst_up_to_a_limit() {
        let t0 = Instant::now();
        let w = Duration::from_millis(500);
        let mut b = Batch::open(t0, w);
        assert_eq!(b.deadline(), t0 + w);
        b.event(t0 + Duration::from_millis(100));
        assert_eq!(b.deadline(), t0 + w);
        b.event(t0 + Duration::from_millis(490));
        assert_eq!(b.deadline(), t0 + Duration::from_millis(540));
        b.event(t0 + Duration::from_secs(10));
        assert_eq!(b.deadline(), t0 + w * 4 + QUIET);
    }
}
