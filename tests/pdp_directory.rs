//! Directory mode: a `PermitPDP` with a `url` is monitored like in Kubernetes (conditions,
//! transitions, metrics); `runtime: Docker` says clearly when `docker` or its engine is missing.

use permit_sync::kinds::PermitPDP;
use permit_sync::local::{LocalConfig, LocalPermit};
use permit_sync::metrics::Metrics;
use permit_sync::pdp::docker::{Docker, DockerError};
use permit_sync::pdp::monitor::{Update, WatchOptions, watch_url};
use permit_sync::pdp::{self, Error};
use serde_json::json;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

fn pdp(spec: serde_json::Value) -> PermitPDP {
    serde_json::from_value(json!({
        "apiVersion": "permitsync.dev/v1alpha1",
        "kind": "PermitPDP",
        "metadata": {"name": "local-pdp", "namespace": "dir"},
        "spec": spec,
    }))
    .unwrap()
}

fn condition<'a>(u: &'a Update, type_: &str) -> &'a permit_sync::kinds::Condition {
    u.status
        .conditions
        .iter()
        .find(|c| c.type_ == type_)
        .unwrap()
}

async fn wait(rx: &mut tokio::sync::mpsc::UnboundedReceiver<Update>) -> Update {
    tokio::time::timeout(Duration::from_secs(10), rx.recv())
        .await
        .expect("an update within 10 s")
        .expect("the watcher is running")
}

fn options(metrics: &Metrics) -> WatchOptions {
    WatchOptions {
        metrics: metrics.pdp.clone(),
        timeout: Duration::from_secs(2),
        ..WatchOptions::default()
    }
}

#[tokio::test]
async fn watch_url_reports_health_and_its_changes() {
    let local = LocalPermit::start(LocalConfig::ephemeral()).await.unwrap();
    let manifest = pdp(json!({"url": local.pdp_url(), "probe": {"intervalSeconds": 1}}));
    let metrics = Metrics::new();
    let cancel = CancellationToken::new();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Update>();
    let task = {
        let (cancel, opts) = (cancel.clone(), options(&metrics));
        tokio::spawn(async move {
            watch_url(&manifest, opts, move |u| drop(tx.send(u.clone())), cancel).await
        })
    };
    let first = wait(&mut rx).await;
    assert_eq!(condition(&first, "Healthy").status, "True");
    assert_eq!(
        condition(&first, "Available").reason.as_deref(),
        Some("Reachable")
    );
    assert!(first.status.last_probe_time.is_some());
    assert_eq!(first.transitions.len(), 2, "both conditions are new");
    assert!(
        metrics
            .encode()
            .contains("permit_pdp_up{namespace=\"dir\",name=\"local-pdp\"} 1")
    );

    // The PDP goes away: one update, with the transition.
    local.shutdown().await.unwrap();
    let down = wait(&mut rx).await;
    let healthy = condition(&down, "Healthy");
    assert_eq!(
        (healthy.status.as_str(), healthy.reason.as_deref()),
        ("False", Some("Unreachable"))
    );
    assert_eq!(condition(&down, "Available").status, "False");
    let t: Vec<_> = down
        .transitions
        .iter()
        .map(|t| (t.type_.as_str(), t.from.as_deref(), t.to.status.as_str()))
        .collect();
    assert!(t.contains(&("Healthy", Some("True"), "False")), "{t:?}");
    assert!(
        metrics
            .encode()
            .contains("permit_pdp_up{namespace=\"dir\",name=\"local-pdp\"} 0")
    );

    // Unchanged afterwards: no more updates (probes continue every second).
    assert!(
        tokio::time::timeout(Duration::from_millis(2500), rx.recv())
            .await
            .is_err(),
        "no update without a change"
    );
    cancel.cancel();
    let last = task.await.unwrap().expect("watch_url ends cleanly");
    assert_eq!(last, down.status);
}

#[tokio::test]
async fn directory_mode_needs_a_url_or_a_runtime() {
    let err = watch_url(
        &pdp(json!({})),
        WatchOptions::default(),
        |_| {},
        CancellationToken::new(),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, Error::InvalidSpec { .. }));
    assert!(
        err.to_string().contains("dir/local-pdp") && err.to_string().contains("spec.url"),
        "{err}"
    );
}

#[tokio::test]
async fn docker_missing_or_without_engine_is_said_clearly() {
    // No such command.
    let err = Docker::with_program("/nonexistent/docker")
        .check()
        .await
        .unwrap_err();
    assert!(matches!(err, DockerError::NotInstalled { .. }), "{err:?}");
    assert!(err.to_string().contains("command was not found"), "{err}");

    // The client without an engine (this machine has no Docker daemon; a dead socket makes it so
    // everywhere).
    let docker_on_path = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join("docker").is_file()))
        .unwrap_or(false);
    if !docker_on_path {
        eprintln!("no `docker` client on PATH: the no-engine case is not exercised here");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let dead = format!("unix://{}", dir.path().join("docker.sock").display());
    let docker = Docker::default().env("DOCKER_HOST", &dead);
    let err = docker.check().await.unwrap_err();
    assert!(matches!(err, DockerError::NoEngine { .. }), "{err:?}");
    let text = err.to_string();
    assert!(text.contains("no Docker engine answers"), "{text}");
    assert!(
        text.contains("Cannot connect to the Docker daemon"),
        "docker's own reason: {text}"
    );

    // watch_url with runtime Docker fails before probing, naming the object; the key is not shown.
    let manifest = pdp(json!({"runtime": "Docker", "image": {"tag": "0.9.6"}}));
    let key = "permit_key_secret_for_the_test";
    let opts = WatchOptions {
        api_key: Some(key.into()),
        docker: docker.clone(),
        ..WatchOptions::default()
    };
    let err = watch_url(&manifest, opts, |_| {}, CancellationToken::new())
        .await
        .unwrap_err();
    let text = format!("{err} / {err:?}");
    assert!(matches!(err, Error::Docker { .. }), "{text}");
    assert!(
        err.to_string().contains("PermitPDP dir/local-pdp") && text.contains("no Docker engine"),
        "{text}"
    );
    assert!(!text.contains(key), "{text}");

    // Without a key it says which one is missing.
    let opts = WatchOptions {
        docker,
        ..WatchOptions::default()
    };
    let err = watch_url(&manifest, opts, |_| {}, CancellationToken::new())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("PERMIT_API_KEY"), "{err}");

    // `docker rm -f` of a missing container without an engine is an error, not a silent success.
    assert!(
        Docker::with_program("/nonexistent/docker")
            .stop("x")
            .await
            .is_err()
    );
    let _ = pdp::docker::container_name(&manifest);
}
