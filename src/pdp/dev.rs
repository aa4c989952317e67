//! `permit-sync dev` wiring: the embedded local Permit's PDP, recorded in a session file so that
//! `permit-sync check` works with no flags while `dev` runs.
//!
//! The session file (`$PERMIT_SYNC_DEV_SESSION`, else `$XDG_RUNTIME_DIR/permit-sync/dev-session.json`,
//! else `~/.cache/permit-sync/dev-session.json`) holds the URLs and the local key, readable by the
//! owner only, and is removed when `dev` stops. `check` uses the key only for the PDP URL recorded
//! with it, so the local key is never sent anywhere else.

use crate::local::{LocalConfig, LocalHandle, LocalPermit};
use anyhow::Context as _;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Overrides where the session file lives (tests, several `dev` sessions side by side).
pub const SESSION_ENV: &str = "PERMIT_SYNC_DEV_SESSION";

#[derive(Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Session {
    pub pdp_url: String,
    pub api_url: String,
    /// The local environment key (a secret: never printed by `check`).
    pub api_key: String,
    pub pid: u32,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("pdp_url", &self.pdp_url)
            .field("api_url", &self.api_url)
            .field("api_key", &"<redacted>")
            .field("pid", &self.pid)
            .finish()
    }
}

pub fn session_path() -> Option<PathBuf> {
    let nonempty = |k: &str| {
        std::env::var_os(k)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    if let Some(p) = nonempty(SESSION_ENV) {
        return Some(p);
    }
    nonempty("XDG_RUNTIME_DIR")
        .or_else(|| nonempty("HOME").map(|h| h.join(".cache")))
        .map(|d| d.join("permit-sync").join("dev-session.json"))
}

/// Writes the session atomically, readable by the owner only.
pub fn write_session(path: &Path, session: &Session) -> anyhow::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let tmp = path.with_extension("json.tmp");
    let body = serde_json::to_vec_pretty(session)?;
    {
        use std::io::Write as _;
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
        let mut file = opts
            .open(&tmp)
            .with_context(|| format!("writing {}", tmp.display()))?;
        file.write_all(&body)?;
    }
    std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))
}

/// The running `dev` session, if a session file exists and parses.
pub fn read_session() -> Option<Session> {
    let path = session_path()?;
    let text = std::fs::read_to_string(path).ok()?;
    serde_json::from_str(&text).ok()
}

/// The embedded local Permit of a `dev` session; dropping it removes the session file.
pub struct DevPdp {
    // An `Option` only so that `shutdown` can take it out of a type that implements `Drop`.
    permit: Option<LocalHandle>,
    session: Option<PathBuf>,
}

impl DevPdp {
    pub fn permit(&self) -> &LocalHandle {
        self.permit.as_ref().expect("present until shutdown")
    }

    pub fn session_file(&self) -> Option<&Path> {
        self.session.as_deref()
    }

    /// Stops the servers and removes the session file.
    pub async fn shutdown(mut self) -> anyhow::Result<()> {
        if let Some(p) = self.session.take() {
            let _ = std::fs::remove_file(p);
        }
        match self.permit.take() {
            Some(permit) => permit.shutdown().await,
            None => Ok(()),
        }
    }
}

impl Drop for DevPdp {
    fn drop(&mut self) {
        if let Some(p) = self.session.take() {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// Starts the embedded local Permit (API + PDP; by default the PDP on 127.0.0.1:7766, where
/// `check` and the SDKs look) and records the session for `check` at [`session_path`].
pub async fn start_embedded(config: LocalConfig) -> anyhow::Result<DevPdp> {
    start_embedded_at(config, session_path()).await
}

/// [`start_embedded`] with the session file at `path` (`None`: no session file).
pub async fn start_embedded_at(
    config: LocalConfig,
    path: Option<PathBuf>,
) -> anyhow::Result<DevPdp> {
    let permit = LocalPermit::start(config).await?;
    let session = Session {
        pdp_url: permit.pdp_url(),
        api_url: permit.api_url(),
        api_key: permit.api_key().to_string(),
        pid: std::process::id(),
    };
    if let Some(p) = &path {
        write_session(p, &session)?;
    }
    Ok(DevPdp {
        permit: Some(permit),
        session: path,
    })
}
