//! The inventory state file of directory mode: its data and rules live in
//! [`permit_sync_core::inventory`]; this is the file, written atomically (temp file + rename),
//! locked while an apply runs, and never trusted when it cannot be read.

pub use permit_sync_core::inventory::*;
use serde::Serialize;
use std::io::Write;
use std::path::{Path, PathBuf};

/// The inventory state file of directory mode.
#[derive(Clone, Debug)]
pub struct StateFile {
    pub path: PathBuf,
}

impl StateFile {
    pub fn new(path: impl Into<PathBuf>) -> StateFile {
        StateFile { path: path.into() }
    }

    /// Reads the inventory for `environment`. Never fails: every problem becomes `Unusable`.
    pub fn load(&self, environment: Option<&str>) -> Loaded {
        // Parsed as it is read: the text of a large inventory is tens of megabytes.
        let file = match std::fs::File::open(&self.path) {
            Ok(f) => std::io::BufReader::new(f),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Loaded::Missing,
            Err(e) => {
                return Loaded::Unusable(format!(
                    "cannot read inventory {}: {e}; prune is disabled",
                    self.path.display()
                ));
            }
        };
        let inv: Inventory = match serde_json::from_reader(file) {
            Ok(inv) => inv,
            // Opened but unreadable (a directory, an I/O error): not corrupt, unreadable.
            Err(e) if e.is_io() => {
                return Loaded::Unusable(format!(
                    "cannot read inventory {}: {e}; prune is disabled",
                    self.path.display()
                ));
            }
            Err(e) => {
                return Loaded::Unusable(format!(
                    "inventory {} is corrupt ({e}); prune is disabled until it is fixed or removed",
                    self.path.display()
                ));
            }
        };
        if inv.version != FORMAT_VERSION {
            return Loaded::Unusable(format!(
                "inventory {} has format version {} (this build reads {FORMAT_VERSION}); prune is disabled",
                self.path.display(),
                inv.version
            ));
        }
        if let (Some(theirs), Some(ours)) = (inv.environment.as_deref(), environment)
            && theirs != ours
        {
            return Loaded::Unusable(format!(
                "inventory {} belongs to environment {theirs}, not {ours}; prune is disabled \
                 (use a state file per environment)",
                self.path.display()
            ));
        }
        Loaded::Ok(inv)
    }

    /// Takes the lock next to the state file (`<file>.lock`) so two applies never interleave their
    /// writes. The lock is advisory and held by the open file: a killed process releases it.
    pub fn lock(&self) -> std::io::Result<StateLock> {
        let dir = self
            .path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir)?;
        let mut name = self.path.file_name().unwrap_or_default().to_os_string();
        name.push(".lock");
        let path = dir.join(name);
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)?;
        match file.try_lock() {
            Ok(()) => Ok(StateLock { _file: file }),
            Err(std::fs::TryLockError::WouldBlock) => Err(std::io::Error::new(
                std::io::ErrorKind::WouldBlock,
                format!(
                    "another permit-sync apply holds {}; try again when it is done",
                    path.display()
                ),
            )),
            Err(std::fs::TryLockError::Error(e)) => Err(e),
        }
    }

    /// Writes atomically: a crash leaves either the old file or the new one, never half of one.
    pub fn save(&self, inv: &impl Serialize) -> std::io::Result<()> {
        let dir = self
            .path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir)?;
        let (tmp, file) = tempfile_in(dir, &self.path)?;
        // Written as it is serialised: at 400,000 entries the text is tens of megabytes.
        let mut out = std::io::BufWriter::new(file);
        serde_json::to_writer_pretty(&mut out, inv).map_err(std::io::Error::other)?;
        out.write_all(b"\n")?;
        let file = out.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        drop(file);
        std::fs::rename(&tmp, &self.path)
    }
}

/// Held while an apply runs; dropping it releases the lock.
#[derive(Debug)]
pub struct StateLock {
    _file: std::fs::File,
}

fn tempfile_in(dir: &Path, target: &Path) -> std::io::Result<(PathBuf, std::fs::File)> {
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "inventory".into());
    let tmp = dir.join(format!(".{name}.{}.tmp", uuid::Uuid::new_v4().simple()));
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&tmp)?;
    Ok((tmp, file))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kinds::Kind;

    #[test]
    fn round_trip_corrupt_and_foreign_files() {
        let dir = tempfile::tempdir().unwrap();
        let file = StateFile::new(dir.path().join("state/inventory.json"));
        assert!(matches!(file.load(Some("o/p/e")), Loaded::Missing));

        let mut inv = Inventory::new(Some("o/p/e".into()));
        inv.insert(
            Kind::PermitUser,
            "jane@example.com".into(),
            Entry {
                hash: 0xabc,
                orphan: false,
            },
        );
        file.save(&inv).unwrap();
        match file.load(Some("o/p/e")) {
            Loaded::Ok(read) => assert_eq!(read, inv),
            other => panic!("expected the inventory back, got {other:?}"),
        }
        // No temp files are left next to the state file.
        assert_eq!(
            std::fs::read_dir(dir.path().join("state")).unwrap().count(),
            1
        );

        let foreign = file.load(Some("o/p/other"));
        assert!(foreign.trusted().is_none());
        assert!(foreign.prune_disabled_reason().unwrap().contains("o/p/e"));

        let held = file.lock().unwrap();
        let err = file.lock().unwrap_err();
        assert!(
            err.to_string().contains("another permit-sync apply"),
            "{err}"
        );
        drop(held);
        file.lock().unwrap();

        std::fs::write(&file.path, "{ not json").unwrap();
        let corrupt = file.load(Some("o/p/e"));
        assert!(corrupt.trusted().is_none());
        assert!(corrupt.prune_disabled_reason().unwrap().contains("corrupt"));
    }
}
