//! Kubernetes events on status transitions, deletions and errors (never with the API key: messages
//! come from Permit errors, which are scrubbed, and from our own text).

use super::sources::Cr;
use k8s_openapi::api::core::v1::ObjectReference;
use kube::runtime::events::{Event, EventType, Recorder};

pub fn reference(cr: &Cr) -> ObjectReference {
    ObjectReference {
        api_version: Some(crate::kinds::common::API_VERSION.into()),
        kind: Some(cr.kind.to_string()),
        name: cr.meta.name.clone(),
        namespace: cr.meta.namespace.clone(),
        uid: cr.meta.uid.clone(),
        resource_version: cr.meta.resource_version.clone(),
        ..Default::default()
    }
}

/// Publishes one event; a failure is logged, never fatal (events are best effort).
pub async fn publish(recorder: &Recorder, cr: &Cr, warning: bool, reason: &str, note: &str) {
    let ev = Event {
        type_: if warning {
            EventType::Warning
        } else {
            EventType::Normal
        },
        reason: reason.into(),
        note: Some(note.chars().take(1000).collect()),
        action: "Reconcile".into(),
        secondary: None,
    };
    if let Err(e) = recorder.publish(&ev, &reference(cr)).await {
        tracing::warn!(object = %cr.subject(), error = %e, "cannot publish event");
    }
}
