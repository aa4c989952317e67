//! Directory mode with `runtime: Docker`: start and stop Permit's PDP container with the `docker`
//! command, as `permit pdp run` does (`-p 7766:7000 -e PDP_API_KEY …`).
//!
//! The API key reaches the container through the environment of the `docker` process
//! (`-e PDP_API_KEY` without a value), never through its arguments, so `ps` and logs never show it.

use super::render::{self, CONTAINER_PORT, RenderError};
use crate::kinds::PermitPDP;
use kube::ResourceExt;
use std::ffi::OsString;
use std::process::Stdio;
use tokio::process::Command;

/// Host port of the PDP when `spec.url` gives none (where the SDKs look for a PDP).
pub const DEFAULT_HOST_PORT: u16 = 7766;

#[derive(Debug, thiserror::Error)]
pub enum DockerError {
    #[error(
        "the `{program}` command was not found: install Docker, or point the PermitPDP at a running \
         PDP with `url` and `runtime: None`"
    )]
    NotInstalled { program: String },
    #[error(
        "`{program}` is installed but no Docker engine answers ({detail}): start the Docker \
         daemon (or set DOCKER_HOST), or point the PermitPDP at a running PDP with `url` and \
         `runtime: None`"
    )]
    NoEngine { program: String, detail: String },
    #[error("`docker {action}` failed for container {container}: {detail}")]
    Failed {
        action: &'static str,
        container: String,
        detail: String,
    },
    #[error("starting the PDP container needs the environment API key (PERMIT_API_KEY)")]
    MissingKey,
    #[error(transparent)]
    Render(#[from] RenderError),
}

/// The `docker` command (another program name or path for tests and Podman's docker shim).
#[derive(Clone, Debug)]
pub struct Docker {
    program: OsString,
    /// Extra environment of every `docker` call (e.g. `DOCKER_HOST`).
    env: Vec<(OsString, OsString)>,
}

impl Default for Docker {
    fn default() -> Self {
        Docker::with_program("docker")
    }
}

/// A PDP container this process started.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Container {
    pub name: String,
    /// Where the PDP answers on this machine.
    pub url: String,
}

/// The container's name: `permit-sync-pdp-<name>`.
pub fn container_name(pdp: &PermitPDP) -> String {
    let name: String = pdp
        .name_any()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.' {
                c
            } else {
                '-'
            }
        })
        .collect();
    format!("permit-sync-pdp-{name}")
}

/// The host port: the one in `spec.url`, else 7766.
pub fn host_port(pdp: &PermitPDP) -> u16 {
    pdp.spec
        .url
        .as_deref()
        .and_then(|u| reqwest::Url::parse(u).ok())
        .and_then(|u| u.port())
        .unwrap_or(DEFAULT_HOST_PORT)
}

/// The arguments of `docker run` (pure; the key is not among them).
pub fn run_args(pdp: &PermitPDP, api_url: Option<&str>) -> Result<Vec<String>, RenderError> {
    let image = render::image(&pdp.spec)?;
    let name = container_name(pdp);
    let mut args: Vec<String> = vec![
        "run".into(),
        "--detach".into(),
        "--name".into(),
        name.clone(),
        "--label".into(),
        format!("dev.permitsync.pdp={}", pdp.name_any()),
        // Loopback only: the PDP is for this machine's applications.
        "--publish".into(),
        format!("127.0.0.1:{}:{CONTAINER_PORT}", host_port(pdp)),
        "--security-opt".into(),
        "no-new-privileges".into(),
        "--cap-drop".into(),
        "ALL".into(),
        // No value: docker copies it from its own environment.
        "--env".into(),
        "PDP_API_KEY".into(),
    ];
    if let Some(cp) = render::control_plane(&pdp.spec, api_url) {
        args.push("--env".into());
        args.push(format!("PDP_CONTROL_PLANE={cp}"));
    }
    if pdp.spec.offline_mode.as_ref().is_some_and(|o| o.enabled) {
        args.push("--env".into());
        args.push("PDP_ENABLE_OFFLINE_MODE=true".into());
        args.push("--volume".into());
        args.push(format!("{name}-backup:{}", render::BACKUP_DIR));
    }
    args.push(image);
    Ok(args)
}

fn first_line(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let line = text
        .lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
        .trim();
    line.to_string()
}

impl Docker {
    pub fn with_program(program: impl Into<OsString>) -> Self {
        Docker {
            program: program.into(),
            env: Vec::new(),
        }
    }

    /// Sets an environment variable for every `docker` call (`DOCKER_HOST`, `DOCKER_CONTEXT`).
    pub fn env(mut self, key: impl Into<OsString>, value: impl Into<OsString>) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }

    fn program(&self) -> String {
        self.program.to_string_lossy().into_owned()
    }

    fn command(&self) -> Command {
        let mut cmd = Command::new(&self.program);
        cmd.stdin(Stdio::null())
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .kill_on_drop(true);
        cmd
    }

    /// Fails with a clear message when the command or its engine is missing.
    pub async fn check(&self) -> Result<(), DockerError> {
        let out = self
            .command()
            .args(["version", "--format", "{{.Server.Version}}"])
            .output()
            .await;
        match out {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(DockerError::NotInstalled {
                program: self.program(),
            }),
            Err(e) => Err(DockerError::NoEngine {
                program: self.program(),
                detail: e.to_string(),
            }),
            Ok(o) if o.status.success() && !first_line(&o.stdout).is_empty() => Ok(()),
            Ok(o) => {
                let mut detail = first_line(&o.stderr);
                if detail.is_empty() {
                    detail = format!("`docker version` exited with {}", o.status);
                }
                Err(DockerError::NoEngine {
                    program: self.program(),
                    detail,
                })
            }
        }
    }

    /// Starts the PDP (replacing a container of the same name left from an earlier run).
    pub async fn start(
        &self,
        pdp: &PermitPDP,
        api_key: Option<&str>,
        api_url: Option<&str>,
    ) -> Result<Container, DockerError> {
        let key = api_key
            .filter(|k| !k.is_empty())
            .ok_or(DockerError::MissingKey)?;
        let args = run_args(pdp, api_url)?;
        self.check().await?;
        let name = container_name(pdp);
        self.stop(&name).await?;
        let out = self
            .command()
            .args(&args)
            .env("PDP_API_KEY", key)
            .output()
            .await
            .map_err(|e| DockerError::Failed {
                action: "run",
                container: name.clone(),
                detail: e.to_string(),
            })?;
        if !out.status.success() {
            return Err(DockerError::Failed {
                action: "run",
                container: name,
                detail: first_line(&out.stderr),
            });
        }
        Ok(Container {
            url: format!("http://127.0.0.1:{}", host_port(pdp)),
            name,
        })
    }

    /// `docker rm -f`: stops and removes the container; a missing container is fine.
    pub async fn stop(&self, container: &str) -> Result<(), DockerError> {
        let out = self
            .command()
            .args(["rm", "--force", container])
            .output()
            .await
            .map_err(|e| DockerError::Failed {
                action: "rm",
                container: container.to_string(),
                detail: e.to_string(),
            })?;
        let stderr = first_line(&out.stderr);
        if out.status.success() || stderr.contains("No such container") {
            Ok(())
        } else {
            Err(DockerError::Failed {
                action: "rm",
                container: container.to_string(),
                detail: stderr,
            })
        }
    }
}
