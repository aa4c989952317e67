//! Leader election on a `coordination.k8s.io` Lease with kube-lease-manager (0.13 is built on kube 5):
//! only the holder writes to Permit, finalizers and status; the others keep their watches warm and
//! take over when the holder stops renewing (or releases the Lease on a graceful shutdown).

use kube::Client;
use kube_lease_manager::LeaseManagerBuilder;
use std::time::Duration;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

#[derive(Clone, Debug)]
pub struct LeaseConfig {
    pub name: String,
    pub namespace: String,
    /// Unique per instance (the pod name in a cluster).
    pub identity: String,
    /// How long a lock lasts without renewal.
    pub duration: Duration,
    /// How long before expiry the holder renews.
    pub grace: Duration,
}

/// Campaigns until `shutdown`, publishing whether this instance leads. The Lease is released on
/// shutdown so a successor need not wait for it to expire.
pub fn campaign(
    client: Client,
    config: LeaseConfig,
    shutdown: CancellationToken,
) -> (watch::Receiver<bool>, tokio::task::JoinHandle<()>) {
    let (tx, rx) = watch::channel(false);
    let task = tokio::spawn(async move {
        let mut delay = Duration::from_millis(500);
        loop {
            let built = LeaseManagerBuilder::new(client.clone(), &config.name)
                .with_namespace(&config.namespace)
                .with_identity(&config.identity)
                .with_duration(config.duration.as_secs().max(2))
                .with_grace(config.grace.as_secs().max(1))
                .build()
                .await;
            let manager = match built {
                Ok(m) => m,
                Err(e) => {
                    tracing::warn!(lease = %format!("{}/{}", config.namespace, config.name), error = %e,
                        "cannot use the leader-election Lease; retrying");
                    tokio::select! {
                        _ = shutdown.cancelled() => return,
                        _ = tokio::time::sleep(delay) => {}
                    }
                    delay = (delay * 2).min(Duration::from_secs(30));
                    continue;
                }
            };
            let (mut leading, handle) = manager.watch().await;
            loop {
                tokio::select! {
                    _ = shutdown.cancelled() => {
                        let _ = tx.send(false);
                        // Dropping the receiver makes the manager release the Lease and return.
                        drop(leading);
                        let _ = tokio::time::timeout(Duration::from_secs(5), handle).await;
                        return;
                    }
                    changed = leading.changed() => {
                        if changed.is_err() {
                            let _ = tx.send(false);
                            break; // the manager stopped: build a new one
                        }
                        let now = *leading.borrow_and_update();
                        tracing::info!(identity = %config.identity, leader = now, "leadership changed");
                        let _ = tx.send(now);
                    }
                }
            }
        }
    });
    (rx, task)
}
