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
        let target = path.canonicalize().ok();
        let (watched, resolved) = (path.to_path_buf(), target.clone());
        // The parent is watched for the path itself only: its other entries (the state file,
        // a log file, another checkout) are not manifests, and counting them made a watcher
        // whose own writes land there sync again and again.
        let concerns_the_path = move |p: &Path| {
            p.starts_with(&watched) || resolved.as_ref().is_some_and(|t| p.starts_with(t))
        };
        let mut watcher =
            notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
                match res {
                    // Reads (our own rescans among them) change nothing; git's bookkeeping neither.
                    Ok(event) if matches!(event.kind, notify::EventKind::Access(_)) => {}
                    Ok(event) if event.paths.iter().all(|p| in_git_dir(p)) => {}
                    Ok(event)
                        if !event.paths.is_empty()
                            && !event.paths.iter().any(|p| concerns_the_path(p)) => {}
                    // An error (a queue overflow among them) may hide changes: rescan as well.
                    _ => signal.raise(),
                }
            })?;
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

    /// Events are delivered by a thread of the watcher: waits up to `secs` for one.
    fn raised_within(signal: &Signal, before: u64, secs: f64) -> bool {
        let until = Instant::now() + Duration::from_secs_f64(secs);
        while Instant::now() < until {
            if signal.count() > before {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    #[test]
    fn the_parent_is_watched_for_the_path_itself_not_its_other_entries() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("manifests");
        std::fs::create_dir(&path).unwrap();
        let signal = Signal::new();
        let _watch = FsWatch::start(&path, signal.clone()).unwrap();

        // A sibling (the state file, a log) changing is not a manifest change.
        let before = signal.count();
        std::fs::write(tmp.path().join("inventory.json"), "{}").unwrap();
        std::fs::write(tmp.path().join("watch.log"), "line\n").unwrap();
        assert!(!raised_within(&signal, before, 0.5), "a sibling raised it");

        // A manifest inside, and the path itself replaced, are.
        std::fs::write(path.join("users.yaml"), "kind: PermitUser\n").unwrap();
        assert!(
            raised_within(&signal, before, 5.0),
            "a manifest did not raise it"
        );
        let before = signal.count();
        let next = tmp.path().join("manifests.next");
        std::fs::create_dir(&next).unwrap();
        std::thread::sleep(Duration::from_millis(200));
        let settled = signal.count();
        std::fs::remove_dir_all(&path).unwrap();
        std::fs::rename(&next, &path).unwrap();
        assert!(
            raised_within(&signal, settled.max(before), 5.0),
            "replacing the path did not raise it"
        );
    }
}
