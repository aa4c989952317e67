{{/*
The controller's permissions on the objects it reconciles, in the watched namespaces (a Role per
namespace) or in all of them (a ClusterRole). Each rule says why it is there; nothing here creates or
deletes permit-sync objects, and nothing grants Secrets (see the api-key Role) or Leases (see the
leader-election Role).
*/}}
{{- define "permit-sync.rules" -}}
# The eight permit-sync kinds: list/watch feed the controller's caches, get re-reads an object before a
# write; patch/update add and remove the controller's finalizer (metadata.finalizers) so a deleted
# object is removed from Permit first. No create/delete: users own these objects.
- apiGroups: ["permitsync.dev"]
  resources: ["permitresources", "permitroles", "permittenants", "permitusers", "permitresourceinstances", "permitrelationshiptuples", "roleassignments", "permitpdps"]
  verbs: ["get", "list", "watch", "patch", "update"]
# Status subresource: the Synced/Ready (and, for PermitPDP, Available/Healthy) conditions and
# observedGeneration; the main resource ignores writes to .status.
- apiGroups: ["permitsync.dev"]
  resources: ["permitresources/status", "permitroles/status", "permittenants/status", "permitusers/status", "permitresourceinstances/status", "permitrelationshiptuples/status", "roleassignments/status", "permitpdps/status"]
  verbs: ["get", "patch", "update"]
# permitpdps/finalizers: the OwnerReferencesPermissionEnforcement admission plugin (on in OpenShift
# and many hardened clusters) requires `update` on <owner>/finalizers to set an ownerReference with
# blockOwnerDeletion; the PDP Deployment, Service and PodDisruptionBudget point at their PermitPDP.
# The other kinds own nothing, and adding/removing the finalizer itself is a patch (rule above).
- apiGroups: ["permitsync.dev"]
  resources: ["permitpdps/finalizers"]
  verbs: ["update"]
# Events on the reconciled objects (sync failures, transitions): events.k8s.io/v1 (kube-runtime's
# Recorder) and the core API; patch updates the series count of a repeated event. No read access.
- apiGroups: ["events.k8s.io"]
  resources: ["events"]
  verbs: ["create", "patch"]
- apiGroups: [""]
  resources: ["events"]
  verbs: ["create", "patch"]
# A PermitPDP becomes a Deployment, a Service (7766 -> 7000) and, above one replica, a
# PodDisruptionBudget, applied server-side and owned by the PermitPDP: watched to notice drift and
# availability, deleted when the PermitPDP shrinks to one replica (PDB) or goes away.
- apiGroups: ["apps"]
  resources: ["deployments"]
  verbs: ["get", "list", "watch", "create", "patch", "update", "delete"]
- apiGroups: [""]
  resources: ["services"]
  verbs: ["get", "list", "watch", "create", "patch", "update", "delete"]
- apiGroups: ["policy"]
  resources: ["poddisruptionbudgets"]
  verbs: ["get", "list", "watch", "create", "patch", "update", "delete"]
{{- end }}
