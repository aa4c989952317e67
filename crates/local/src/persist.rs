//! `--state FILE`: the environment saved as JSON, written atomically (temporary file, fsync,
//! rename) shortly after each change and at shutdown. A file that cannot be read or parsed stops
//! the start with an error naming it: it is never silently replaced by an empty environment.

use super::LocalState;
use super::store::{SNAPSHOT_FORMAT, Snapshot};
use anyhow::{Context, bail};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How long after a change the state is written (changes in between are batched).
const SAVE_EVERY: Duration = Duration::from_millis(200);

/// Reads the state file: `None` when it does not exist yet.
pub fn load(path: &Path) -> anyhow::Result<Option<Snapshot>> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("reading state file {}", path.display())),
    };
    let snap: Snapshot = serde_json::from_slice(&bytes).with_context(|| {
        format!(
            "state file {} is corrupt (move it away to start empty)",
            path.display()
        )
    })?;
    // Older formats lack rows that default to none; a newer one may hold what this one drops.
    if snap.format == 0 || snap.format > SNAPSHOT_FORMAT {
        bail!(
            "state file {} has format {}, this permit-sync reads formats 1 to {}",
            path.display(),
            snap.format,
            SNAPSHOT_FORMAT
        );
    }
    Ok(Some(snap))
}

/// Writes the snapshot atomically: readers see the old file or the new one, never a mix.
pub fn save(path: &Path, snap: &Snapshot) -> anyhow::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = path
        .file_name()
        .context("state file path has no file name")?;
    // Unique per save, so two writers (two servers in one test process) never share a file.
    static SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let seq = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp = dir.join(format!(
        ".{}.tmp-{}-{seq}",
        name.to_string_lossy(),
        std::process::id()
    ));
    let result = (|| -> anyhow::Result<()> {
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            // The file holds the API key.
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let mut file = options.open(&tmp)?;
        let mut writer = std::io::BufWriter::new(&mut file);
        serde_json::to_writer(&mut writer, snap)?;
        writer.flush()?;
        drop(writer);
        file.sync_all()?;
        std::fs::rename(&tmp, path)?;
        if let Ok(d) = std::fs::File::open(&dir) {
            let _ = d.sync_all();
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.with_context(|| format!("writing state file {}", path.display()))
}

/// Snapshots under the read lock, then writes outside it.
pub async fn save_now(shared: &Arc<LocalState>, path: &Path) -> anyhow::Result<u64> {
    let (snap, generation) = {
        let store = shared.store.read();
        (store.snapshot(&shared.api_key), store.generation)
    };
    let path = path.to_path_buf();
    tokio::task::spawn_blocking(move || save(&path, &snap)).await??;
    Ok(generation)
}

/// Saves whenever the data moved past generation `saved`, and a last time when `cancel` fires.
pub async fn run_saver(
    shared: Arc<LocalState>,
    path: PathBuf,
    saved: u64,
    cancel: CancellationToken,
) {
    let mut saved = Some(saved);
    loop {
        let generation = shared.store.read().generation;
        if saved != Some(generation) {
            match save_now(&shared, &path).await {
                Ok(g) => saved = Some(g),
                Err(e) => tracing::warn!("local Permit: {e:#}"),
            }
        }
        tokio::select! {
            _ = cancel.cancelled() => break,
            _ = tokio::time::sleep(SAVE_EVERY) => {}
        }
    }
    if saved != Some(shared.store.read().generation)
        && let Err(e) = save_now(&shared, &path).await
    {
        tracing::warn!("local Permit: final save failed: {e:#}");
    }
}
