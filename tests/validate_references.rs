//! Reference checks: what resolves, what dangles, and when a dangling reference is a warning.

use permit_sync::manifest::{self};
use permit_sync::validate;
use std::path::Path;

const HEAD: &str = "apiVersion: permitsync.dev/v1alpha1\n";

fn object(kind: &str, name: &str, meta: &str, spec: &str) -> String {
    format!("{HEAD}kind: {kind}\nmetadata:\n  name: {name}\n{meta}spec:\n{spec}")
}

/// The semantic diagnostics of one file (which must load cleanly).
fn check(documents: &[String]) -> Vec<String> {
    let load = manifest::load_text(Path::new("m.yaml"), &documents.join("---\n"));
    assert!(load.diagnostics.is_empty(), "{:?}", load.diagnostics);
    let set = manifest::combine(vec![load]);
    validate::check(&set.objects)
        .iter()
        .map(|d| format!("{}: {d}", d.severity))
        .collect()
}

fn policy() -> Vec<String> {
    vec![
        object("PermitResource", "post", "", "  actions:\n    read: {}\n"),
        object("PermitRole", "viewer", "", "  permissions: [post:read]\n"),
        object("PermitUser", "jane", "", "  key: jane@example.com\n"),
    ]
}

#[test]
fn the_default_tenant_always_exists() {
    let mut docs = policy();
    docs.push(object(
        "RoleAssignment",
        "a",
        "",
        "  user: jane@example.com\n  role: viewer\n",
    ));
    docs.push(object(
        "RoleAssignment",
        "b",
        "",
        "  user: jane@example.com\n  role: viewer\n  tenant: other\n",
    ));
    assert_eq!(
        check(&docs),
        [
            "error: m.yaml:38:11: spec.tenant: tenant \"other\" is not declared (no PermitTenant with this key) (RoleAssignment b)"
        ]
    );
}

#[test]
fn references_use_permit_keys_not_kubernetes_names() {
    let mut docs = policy();
    docs.push(object(
        "RoleAssignment",
        "a",
        "",
        "  user: jane\n  role: viewer\n",
    ));
    assert_eq!(
        check(&docs),
        [
            "error: m.yaml:28:9: spec.user: user \"jane\" is not declared (no PermitUser with this key) (RoleAssignment a)"
        ]
    );
}

#[test]
fn instance_assignments_check_the_resource_type_only() {
    // Resource roles (`owner` here) are not declared by these kinds, so the role is not checked.
    let mut docs = policy();
    let spec = "  user: jane@example.com\n  role: owner\n  resourceInstance: post:hello-world\n";
    docs.push(object("RoleAssignment", "a", "", spec));
    assert_eq!(check(&docs), Vec::<String>::new());
}

#[test]
fn an_inline_role_repeating_a_role_assignment_is_a_duplicate() {
    let mut docs = policy();
    docs.push(object(
        "RoleAssignment",
        "a",
        "",
        "  user: jane@example.com\n  role: viewer\n",
    ));
    let spec = "  roles:\n    - role: viewer\n    - role: viewer\n      tenant: default\n";
    docs.push(object("PermitUser", "bob", "", spec));
    docs.push(object(
        "PermitUser",
        "carol",
        "",
        "  roles:\n    - role: viewer\n",
    ));
    let spec = "  key: jane@example.com\n  roles:\n    - role: viewer\n";
    docs[2] = object("PermitUser", "jane", "", spec);
    assert_eq!(
        check(&docs),
        [
            "error: m.yaml:23:7: spec.roles[0]: role assignment \"jane@example.com/viewer/default\" is declared twice; the first is RoleAssignment a at m.yaml:25:1 (PermitUser jane)",
            "error: m.yaml:40:7: spec.roles[1]: role assignment \"bob/viewer/default\" is declared twice; the first is spec.roles[0] of PermitUser bob at m.yaml:33:1 (PermitUser bob)",
        ]
    );
}

#[test]
fn a_role_extending_itself_is_a_cycle() {
    let docs = [object("PermitRole", "admin", "", "  extends: [admin]\n")];
    assert_eq!(
        check(&docs),
        [
            "error: m.yaml:6:13: spec.extends[0]: role hierarchy has a cycle: admin → admin (PermitRole admin)"
        ]
    );
}

#[test]
fn the_external_references_annotation_turns_dangling_references_into_warnings() {
    let external = "  annotations:\n    permitsync.dev/external-references: \"true\"\n";
    let docs = [
        object(
            "PermitRole",
            "auditor",
            external,
            "  permissions: [report:read]\n  extends: [viewer]\n",
        ),
        object(
            "PermitUser",
            "bob",
            external,
            "  roles:\n    - role: auditor\n      tenant: acme\n",
        ),
        object(
            "PermitUser",
            "eve",
            "  annotations:\n    permitsync.dev/external-references: \"false\"\n",
            "  roles:\n    - role: root\n",
        ),
    ];
    assert_eq!(
        check(&docs),
        [
            "warning: m.yaml:8:17: spec.permissions[0]: resource \"report\" is not declared (no PermitResource with this key); allowed by permitsync.dev/external-references (PermitRole auditor)",
            "warning: m.yaml:9:13: spec.extends[0]: role \"viewer\" is not declared (no PermitRole with this key); allowed by permitsync.dev/external-references (PermitRole auditor)",
            "warning: m.yaml:20:15: spec.roles[0].tenant: tenant \"acme\" is not declared (no PermitTenant with this key); allowed by permitsync.dev/external-references (PermitUser bob)",
            "error: m.yaml:30:13: spec.roles[0].role: role \"root\" is not declared (no PermitRole with this key) (PermitUser eve)",
        ]
    );
}
