//! The watches: one reflector per synced kind (and per namespace with `--namespace`), read through
//! `DeserializeGuard` so a malformed custom resource (stored before the schema tightened, say) is
//! kept as an error for its status instead of failing the whole watch.
//!
//! Every event only wakes the batch loop; the loop reads the stores whole. Watches restart with
//! kube's default backoff, so an apiserver restart resumes them without restarting the process.

use crate::kinds::{
    Kind, Object, PermitRelationshipTuple, PermitResource, PermitResourceInstance, PermitRole,
    PermitTenant, PermitUser, RoleAssignment, SyncStatus,
};
use futures::StreamExt;
use kube::api::{Api, ObjectMeta};
use kube::core::{DeserializeGuard, NamespaceResourceScope};
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, Resource};
use serde::de::DeserializeOwned;
use std::fmt::Debug;
use std::sync::Arc;
use tokio::sync::Notify;
use tokio::task::JoinSet;

/// One custom resource as the batch loop sees it.
#[derive(Clone, Debug)]
pub struct Cr {
    pub kind: Kind,
    pub meta: ObjectMeta,
    /// The typed object, or why it could not be read.
    pub object: Result<Object, String>,
    pub status: Option<SyncStatus>,
}

impl Cr {
    pub fn namespace(&self) -> &str {
        self.meta.namespace.as_deref().unwrap_or("")
    }
    pub fn name(&self) -> &str {
        self.meta.name.as_deref().unwrap_or("")
    }
    /// `Kind namespace/name`: how messages name the custom resource.
    pub fn subject(&self) -> String {
        format!("{} {}/{}", self.kind, self.namespace(), self.name())
    }
    pub fn id(&self) -> CrId {
        CrId {
            kind: self.kind,
            namespace: self.namespace().to_string(),
            name: self.name().to_string(),
        }
    }
    pub fn generation(&self) -> Option<i64> {
        self.meta.generation
    }
    pub fn deleting(&self) -> bool {
        self.meta.deletion_timestamp.is_some()
    }
    pub fn has_finalizer(&self, finalizer: &str) -> bool {
        self.meta
            .finalizers
            .iter()
            .flatten()
            .any(|f| f == finalizer)
    }
    pub fn annotation(&self, name: &str) -> Option<&str> {
        self.meta
            .annotations
            .as_ref()
            .and_then(|a| a.get(name))
            .map(String::as_str)
    }
}

/// Identity of a custom resource.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CrId {
    pub kind: Kind,
    pub namespace: String,
    pub name: String,
}

impl std::fmt::Display for CrId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}/{}", self.kind, self.namespace, self.name)
    }
}

type Guarded<K> = Store<DeserializeGuard<K>>;

/// The stores of the seven kinds that map to Permit objects (`PermitPDP` has its own
/// controller).
#[derive(Clone, Default)]
pub struct Stores {
    resources: Vec<Guarded<PermitResource>>,
    roles: Vec<Guarded<PermitRole>>,
    tenants: Vec<Guarded<PermitTenant>>,
    users: Vec<Guarded<PermitUser>>,
    instances: Vec<Guarded<PermitResourceInstance>>,
    tuples: Vec<Guarded<PermitRelationshipTuple>>,
    assignments: Vec<Guarded<RoleAssignment>>,
}

impl Stores {
    /// Starts the watches on `tasks`; each event notifies `wake`. No namespaces: all namespaces.
    pub fn start(
        client: &Client,
        namespaces: &[String],
        wake: Arc<Notify>,
        tasks: &mut JoinSet<anyhow::Result<()>>,
    ) -> Stores {
        Stores {
            resources: watch(client, namespaces, &wake, tasks),
            roles: watch(client, namespaces, &wake, tasks),
            tenants: watch(client, namespaces, &wake, tasks),
            users: watch(client, namespaces, &wake, tasks),
            instances: watch(client, namespaces, &wake, tasks),
            tuples: watch(client, namespaces, &wake, tasks),
            assignments: watch(client, namespaces, &wake, tasks),
        }
    }

    /// Resolves once every watch has listed its objects once.
    pub async fn ready(&self) {
        for s in &self.resources {
            let _ = s.wait_until_ready().await;
        }
        for s in &self.roles {
            let _ = s.wait_until_ready().await;
        }
        for s in &self.tenants {
            let _ = s.wait_until_ready().await;
        }
        for s in &self.users {
            let _ = s.wait_until_ready().await;
        }
        for s in &self.instances {
            let _ = s.wait_until_ready().await;
        }
        for s in &self.tuples {
            let _ = s.wait_until_ready().await;
        }
        for s in &self.assignments {
            let _ = s.wait_until_ready().await;
        }
    }

    /// Every custom resource as currently known.
    pub fn snapshot(&self) -> Vec<Cr> {
        let mut out = Vec::new();
        collect(&self.resources, Kind::PermitResource, &mut out, |o| {
            (Object::Resource(o.clone()), o.status.clone())
        });
        collect(&self.roles, Kind::PermitRole, &mut out, |o| {
            (Object::Role(o.clone()), o.status.clone())
        });
        collect(&self.tenants, Kind::PermitTenant, &mut out, |o| {
            (Object::Tenant(o.clone()), o.status.clone())
        });
        collect(&self.users, Kind::PermitUser, &mut out, |o| {
            (Object::User(o.clone()), o.status.clone())
        });
        collect(
            &self.instances,
            Kind::PermitResourceInstance,
            &mut out,
            |o| (Object::Instance(o.clone()), o.status.clone()),
        );
        collect(&self.tuples, Kind::PermitRelationshipTuple, &mut out, |o| {
            (Object::Tuple(o.clone()), o.status.clone())
        });
        collect(&self.assignments, Kind::RoleAssignment, &mut out, |o| {
            (Object::Assignment(o.clone()), o.status.clone())
        });
        out
    }
}

fn collect<K: Resource + Clone>(
    stores: &[Guarded<K>],
    kind: Kind,
    out: &mut Vec<Cr>,
    typed: impl Fn(&K) -> (Object, Option<SyncStatus>),
) where
    K::DynamicType: std::hash::Hash + Eq + Clone,
{
    for store in stores {
        for guard in store.state() {
            out.push(match &guard.0 {
                Ok(o) => {
                    let (object, status) = typed(o);
                    Cr {
                        kind,
                        meta: o.meta().clone(),
                        object: Ok(object),
                        status,
                    }
                }
                Err(invalid) => Cr {
                    kind,
                    meta: invalid.metadata.clone(),
                    object: Err(invalid.error.clone()),
                    status: None,
                },
            });
        }
    }
}

fn watch<K>(
    client: &Client,
    namespaces: &[String],
    wake: &Arc<Notify>,
    tasks: &mut JoinSet<anyhow::Result<()>>,
) -> Vec<Guarded<K>>
where
    K: Resource<DynamicType = (), Scope = NamespaceResourceScope>
        + Clone
        + DeserializeOwned
        + Debug
        + Send
        + Sync
        + 'static,
{
    let apis: Vec<Api<DeserializeGuard<K>>> = if namespaces.is_empty() {
        vec![Api::all(client.clone())]
    } else {
        namespaces
            .iter()
            .map(|ns| Api::namespaced(client.clone(), ns))
            .collect()
    };
    apis.into_iter()
        .map(|api| {
            let (store, writer) = reflector::store();
            let wake = wake.clone();
            let kind = K::kind(&());
            let stream = watcher(api, watcher::Config::default())
                .default_backoff()
                .reflect(writer);
            tasks.spawn(async move {
                let mut stream = std::pin::pin!(stream);
                let mut failing = false;
                while let Some(event) = stream.next().await {
                    match event {
                        Ok(_) => {
                            if failing {
                                tracing::info!(%kind, "watch resumed");
                                failing = false;
                            }
                            wake.notify_one();
                        }
                        // The backoff retries; log the first failure of a run, not every retry.
                        Err(e) if !failing => {
                            failing = true;
                            tracing::warn!(%kind, error = %e, "watch failed; retrying with backoff");
                        }
                        Err(e) => tracing::debug!(%kind, error = %e, "watch still failing"),
                    }
                }
                anyhow::bail!("the {kind} watch ended")
            });
            store
        })
        .collect()
}
