//! `permit-sync export --output-dir DIR`: the live environment as manifests, one file per kind.
//! `plan` on the result shows no changes.

use super::ConnectionArgs;
use crate::kinds::resource::{
    ActionSpec, AttributeSpec, DerivationSpec, DerivationWhen, RelationSpec, ResourceRoleSpec,
};
use crate::kinds::{Attributes, DEFAULT_TENANT};
use crate::kinds::{
    PermitRelationshipTuple, PermitRelationshipTupleSpec, PermitResource, PermitResourceInstance,
    PermitResourceInstanceSpec, PermitResourceSpec, PermitRole, PermitRoleSpec, PermitTenant,
    PermitTenantSpec, PermitUser, PermitUserSpec, RoleAssignment, RoleAssignmentSpec,
};
use crate::model::{Attrs, Derivation, State};
use crate::permit::live;
use anyhow::Context;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

#[derive(clap::Args, Debug, Clone)]
pub struct ExportArgs {
    /// Directory to write the manifests to (created if missing; existing export files replaced).
    #[arg(long, value_name = "DIR")]
    pub output_dir: PathBuf,
    #[command(flatten)]
    pub connection: ConnectionArgs,
}

pub async fn run(args: &ExportArgs) -> anyhow::Result<u8> {
    super::init_logging();
    let client = args.connection.connect().await?;
    let state = live::read(&client)
        .await
        .context("reading the Permit environment")?;
    let files = write(&state, &args.output_dir)?;
    for f in files {
        eprintln!("wrote {}", f.display());
    }
    Ok(0)
}

/// A Kubernetes-valid name for a Permit key (lowercase letters, digits, `-`), unique in `taken`.
fn name_for(key: &str, taken: &mut BTreeSet<String>) -> String {
    let mut base: String = key
        .to_ascii_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    base = base.trim_matches('-').to_string();
    while base.contains("--") {
        base = base.replace("--", "-");
    }
    if base.is_empty() {
        base = "object".into();
    }
    base.truncate(200);
    let mut name = base.clone();
    let mut n = 2;
    while !taken.insert(name.clone()) {
        name = format!("{base}-{n}");
        n += 1;
    }
    name
}

/// The documents as one YAML stream; `None` when there are none.
fn yaml_stream<T: Serialize>(docs: &[T]) -> anyhow::Result<Option<String>> {
    if docs.is_empty() {
        return Ok(None);
    }
    let mut out = String::from("# Exported by permit-sync from the live Permit environment.\n");
    for d in docs {
        out.push_str("---\n");
        out.push_str(&serde_saphyr::to_string(d).context("serialising a manifest")?);
    }
    Ok(Some(out))
}

/// Empty attribute maps are left out: an undeclared field is not managed, which matches.
fn non_empty(a: &Option<Attrs>) -> Option<Attributes> {
    a.as_ref().filter(|m| !m.is_empty()).map(Attrs::to_map)
}

/// The key goes in `spec.key` only when the name cannot carry it.
fn key_field(key: &str, name: &str) -> Option<String> {
    (key != name).then(|| key.to_string())
}

/// A resource's relations and roles (with their derivations as `grantedTo`, and
/// `grantedToWhen` when the option is set), as its manifest declares them inline.
fn resource_parts(
    state: &State,
    resource: &str,
    derivations: &BTreeMap<&str, Vec<&Derivation>>,
) -> (
    Option<BTreeMap<String, RelationSpec>>,
    Option<BTreeMap<String, ResourceRoleSpec>>,
) {
    let prefix = format!("{resource}#");
    let of_resource = |k: &String| k.starts_with(&prefix);
    let relations: BTreeMap<String, RelationSpec> = state
        .relations
        .iter()
        .filter(|(k, _)| of_resource(k))
        .map(|(_, r)| {
            let spec = RelationSpec {
                subject: r.subject.clone(),
                name: Some(r.name.clone()),
                description: r.description.clone(),
            };
            (r.key.clone(), spec)
        })
        .collect();
    let roles: BTreeMap<String, ResourceRoleSpec> = state
        .resource_roles
        .iter()
        .filter(|(k, _)| of_resource(k))
        .map(|(k, r)| {
            let granted_to = derivations
                .get(k.as_str())
                .into_iter()
                .flatten()
                .map(|d| {
                    let (on_resource, role) = Derivation::split(&d.source);
                    DerivationSpec {
                        role: role.to_string(),
                        on_resource: on_resource.to_string(),
                        linked_by: d.relation.clone(),
                    }
                })
                .collect();
            let spec = ResourceRoleSpec {
                name: Some(r.name.clone()),
                description: r.description.clone(),
                permissions: r.permissions.iter().cloned().collect(),
                extends: r.extends.iter().cloned().collect(),
                granted_to,
                // Permit's default (`false`) is left out: undeclared, it is not managed.
                granted_to_when: (r.no_direct_roles_on_object == Some(true)).then_some(
                    DerivationWhen {
                        no_direct_roles_on_object: true,
                    },
                ),
                attributes: non_empty(&r.attributes),
            };
            (r.key.clone(), spec)
        })
        .collect();
    (
        (!relations.is_empty()).then_some(relations),
        (!roles.is_empty()).then_some(roles),
    )
}

/// Writes `resources.yaml` (with their relations and resource roles), `roles.yaml`,
/// `tenants.yaml`, `users.yaml`, `instances.yaml`, `tuples.yaml` and `assignments.yaml`
/// (tenant and instance role assignments).
pub fn write(state: &State, dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut files = Vec::new();
    // A kind with nothing to export gets no file (the loader refuses a file without manifests),
    // and the file of an earlier export is removed, so that it does not declare what is gone.
    let mut put = |file: &str, text: Option<String>| -> anyhow::Result<()> {
        let path = dir.join(file);
        let Some(text) = text else {
            return match std::fs::remove_file(&path) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    Err(e).with_context(|| format!("removing {}", path.display()))
                }
                _ => Ok(()),
            };
        };
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
        files.push(path);
        Ok(())
    };

    let mut derivations: BTreeMap<&str, Vec<&Derivation>> = BTreeMap::new();
    for d in state.derivations.values() {
        derivations.entry(d.role.as_str()).or_default().push(d);
    }
    let mut taken = BTreeSet::new();
    let resources: Vec<PermitResource> = state
        .resources
        .values()
        .map(|r| {
            let name = name_for(&r.key, &mut taken);
            let (relations, roles) = resource_parts(state, &r.key, &derivations);
            let spec = PermitResourceSpec {
                key: key_field(&r.key, &name),
                relations,
                roles,
                name: Some(r.name.clone()),
                description: r.description.clone(),
                actions: r
                    .actions
                    .iter()
                    .map(|(k, a)| {
                        let spec = ActionSpec {
                            name: Some(a.name.clone()),
                            description: a.description.clone(),
                            attributes: non_empty(&a.attributes),
                        };
                        (k.clone(), spec)
                    })
                    .collect(),
                attributes: r.attributes.as_ref().filter(|m| !m.is_empty()).map(|m| {
                    m.iter()
                        .filter_map(|(k, a)| {
                            let type_ = serde_json::from_value(serde_json::json!(a.type_)).ok()?;
                            let spec = AttributeSpec {
                                type_,
                                description: a.description.clone(),
                            };
                            Some((k.clone(), spec))
                        })
                        .collect()
                }),
                deletion_policy: None,
            };
            PermitResource::new(&name, spec)
        })
        .collect();
    put("resources.yaml", yaml_stream(&resources)?)?;

    let mut taken = BTreeSet::new();
    let roles: Vec<PermitRole> = state
        .roles
        .values()
        .map(|r| {
            let name = name_for(&r.key, &mut taken);
            let spec = PermitRoleSpec {
                key: key_field(&r.key, &name),
                name: Some(r.name.clone()),
                description: r.description.clone(),
                permissions: r.permissions.iter().cloned().collect(),
                extends: r.extends.iter().cloned().collect(),
                attributes: non_empty(&r.attributes),
                deletion_policy: None,
            };
            PermitRole::new(&name, spec)
        })
        .collect();
    put("roles.yaml", yaml_stream(&roles)?)?;

    let mut taken = BTreeSet::new();
    let tenants: Vec<PermitTenant> = state
        .tenants
        .values()
        // Every environment has an uncustomised `default` tenant; declaring it would only add noise.
        .filter(|t| {
            t.key != DEFAULT_TENANT
                || t.description.is_some()
                || t.attributes.as_ref().is_some_and(|a| !a.is_empty())
        })
        .map(|t| {
            let name = name_for(&t.key, &mut taken);
            let spec = PermitTenantSpec {
                key: key_field(&t.key, &name),
                name: Some(t.name.clone()),
                description: t.description.clone(),
                attributes: non_empty(&t.attributes),
                deletion_policy: None,
            };
            PermitTenant::new(&name, spec)
        })
        .collect();
    put("tenants.yaml", yaml_stream(&tenants)?)?;

    let mut taken = BTreeSet::new();
    let users: Vec<PermitUser> = state
        .users
        .values()
        .map(|u| {
            let name = name_for(&u.key, &mut taken);
            let spec = PermitUserSpec {
                key: key_field(&u.key, &name),
                email: u.email.clone(),
                first_name: u.first_name.clone(),
                last_name: u.last_name.clone(),
                attributes: non_empty(&u.attributes),
                roles: None,
                deletion_policy: None,
            };
            PermitUser::new(&name, spec)
        })
        .collect();
    put("users.yaml", yaml_stream(&users)?)?;

    // Facts in volume, written as users are: one stream of documents per kind.
    let mut taken = BTreeSet::new();
    let instances: Vec<PermitResourceInstance> = state
        .instances
        .values()
        .map(|i| {
            let name = name_for(&format!("{}-{}", i.resource, i.key), &mut taken);
            let spec = PermitResourceInstanceSpec {
                resource: i.resource.clone(),
                key: key_field(&i.key, &name),
                tenant: Some(i.tenant.clone()),
                attributes: non_empty(&i.attributes),
                deletion_policy: None,
            };
            PermitResourceInstance::new(&name, spec)
        })
        .collect();
    put("instances.yaml", yaml_stream(&instances)?)?;

    let mut taken = BTreeSet::new();
    let tuples: Vec<PermitRelationshipTuple> = state
        .tuples
        .values()
        .map(|t| {
            let name = name_for(
                &format!("{}-{}-{}", t.subject, t.relation, t.object),
                &mut taken,
            );
            let spec = PermitRelationshipTupleSpec {
                subject: t.subject.clone(),
                relation: t.relation.clone(),
                object: t.object.clone(),
                tenant: Some(t.tenant.clone()),
                deletion_policy: None,
            };
            PermitRelationshipTuple::new(&name, spec)
        })
        .collect();
    put("tuples.yaml", yaml_stream(&tuples)?)?;

    let mut taken = BTreeSet::new();
    let assignments: Vec<RoleAssignment> = state
        .assignments
        .values()
        .map(|a| {
            let mut base = format!("{}-{}-{}", a.user, a.role, a.tenant);
            if let Some(instance) = &a.resource_instance {
                base = format!("{base}-{instance}");
            }
            let name = name_for(&base, &mut taken);
            let spec = RoleAssignmentSpec {
                user: a.user.clone(),
                role: a.role.clone(),
                tenant: Some(a.tenant.clone()),
                resource_instance: a.resource_instance.clone(),
                deletion_policy: None,
            };
            RoleAssignment::new(&name, spec)
        })
        .collect();
    put("assignments.yaml", yaml_stream(&assignments)?)?;
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_kubernetes_names_and_unique() {
        let mut taken = BTreeSet::new();
        assert_eq!(name_for("jane@example.com", &mut taken), "jane-example-com");
        assert_eq!(
            name_for("Jane@Example.com", &mut taken),
            "jane-example-com-2"
        );
        assert_eq!(name_for("--", &mut taken), "object");
    }
}
