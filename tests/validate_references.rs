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
fn an_instance_role_is_a_role_of_the_instance_resource_on_a_declared_instance() {
    let mut docs = policy();
    let spec = "  user: jane@example.com\n  role: owner\n  resourceInstance: post:hello-world\n";
    docs.push(object("RoleAssignment", "a", "", spec));
    assert_eq!(
        check(&docs),
        [
            "error: m.yaml:29:9: spec.role: role \"owner\" is not a role of resource \"post\" (RoleAssignment a)",
            "error: m.yaml:30:21: spec.resourceInstance: resource instance \"post:hello-world\" is not declared (no PermitResourceInstance with this key) (RoleAssignment a)",
        ]
    );
}

/// The ReBAC part of `blogging-platform`: two resources, a relation, resource roles, a
/// derivation, two instances, their tuple and an instance role.
fn blog() -> Vec<String> {
    vec![
        object(
            "PermitResource",
            "post",
            "",
            "  key: Post\n  actions: {read: {}, update: {}}\n  roles:\n    Author: {permissions: [read, update]}\n",
        ),
        object(
            "PermitResource",
            "comment",
            "",
            "  key: Comment\n  actions: {read: {}, delete: {}}\n  relations:\n    parent: {subject: Post}\n  roles:\n    Author: {permissions: [read]}\n    Moderator:\n      permissions: [read, \"Comment:delete\"]\n      extends: [Author]\n      grantedTo:\n        - {role: Author, onResource: Post, linkedBy: parent}\n",
        ),
        object(
            "PermitUser",
            "john",
            "",
            "  roles:\n    - {role: Author, resourceInstance: \"Post:post-1\"}\n",
        ),
        object("PermitResourceInstance", "post-1", "", "  resource: Post\n"),
        object(
            "PermitResourceInstance",
            "comment-1",
            "",
            "  resource: Comment\n",
        ),
        object(
            "PermitRelationshipTuple",
            "t",
            "",
            "  subject: \"Post:post-1\"\n  relation: parent\n  object: \"Comment:comment-1\"\n",
        ),
        object(
            "RoleAssignment",
            "a",
            "",
            "  user: john\n  role: Moderator\n  resourceInstance: \"Comment:comment-1\"\n",
        ),
    ]
}

#[test]
fn the_rebac_policy_resolves() {
    assert_eq!(check(&blog()), Vec::<String>::new());
}

#[test]
fn resource_roles_name_their_resource_actions_and_roles() {
    let mut docs = blog();
    docs[1] = object(
        "PermitResource",
        "comment",
        "",
        "  key: Comment\n  actions: {read: {}}\n  relations:\n    parent: {subject: Post}\n  roles:\n    Author: {permissions: [read, \"Post:read\"]}\n    Moderator:\n      permissions: [publish]\n      extends: [Author, Editor]\n      grantedTo:\n        - {role: Author, onResource: Post, linkedBy: parent}\n",
    );
    assert_eq!(
        check(&docs),
        [
            "error: m.yaml:21:34: spec.roles.Author.permissions[1]: action \"Post:read\" is not declared on resource \"Comment\" (PermitResource comment)",
            "error: m.yaml:23:21: spec.roles.Moderator.permissions[0]: action \"publish\" is not declared on resource \"Comment\" (PermitResource comment)",
            "error: m.yaml:24:25: spec.roles.Moderator.extends[1]: role \"Editor\" is not a role of resource \"Comment\" (PermitResource comment)",
        ]
    );
}

#[test]
fn relations_and_derivations_name_declared_resources_roles_and_relations() {
    let mut docs = blog();
    docs[1] = object(
        "PermitResource",
        "comment",
        "",
        "  key: Comment\n  actions: {read: {}}\n  relations:\n    parent: {subject: Post}\n    space: {subject: Space}\n  roles:\n    Moderator:\n      grantedTo:\n        - {role: Editor, onResource: Post, linkedBy: parent}\n        - {role: Admin, onResource: Space, linkedBy: space}\n        - {role: Author, onResource: Post, linkedBy: owner}\n        - {role: Author, onResource: Post, linkedBy: space}\n",
    );
    docs.truncate(2);
    assert_eq!(
        check(&docs),
        [
            "error: m.yaml:20:22: spec.relations.space.subject: resource \"Space\" is not declared (no PermitResource with this key) (PermitResource comment)",
            "error: m.yaml:24:18: spec.roles.Moderator.grantedTo[0].role: role \"Editor\" is not a role of resource \"Post\" (PermitResource comment)",
            "error: m.yaml:25:37: spec.roles.Moderator.grantedTo[1].onResource: resource \"Space\" is not declared (no PermitResource with this key) (PermitResource comment)",
            "error: m.yaml:26:54: spec.roles.Moderator.grantedTo[2].linkedBy: relation \"owner\" is not declared on resource \"Comment\" (PermitResource comment)",
            "error: m.yaml:27:54: spec.roles.Moderator.grantedTo[3].linkedBy: relation \"space\" of resource \"Comment\" links a \"Space\", not a \"Post\" (onResource) (PermitResource comment)",
        ]
    );
}

#[test]
fn tuples_name_declared_instances_and_a_relation_between_their_resources() {
    let mut docs = blog();
    docs[5] = object(
        "PermitRelationshipTuple",
        "t",
        "",
        "  subject: \"Comment:comment-1\"\n  relation: parent\n  object: \"Comment:comment-2\"\n",
    );
    docs.push(object(
        "PermitRelationshipTuple",
        "u",
        "",
        "  subject: \"Post:post-1\"\n  relation: owner\n  object: \"Comment:comment-1\"\n",
    ));
    docs.push(object(
        "PermitRelationshipTuple",
        "v",
        "",
        "  subject: \"Page:p\"\n  relation: parent\n  object: \"Blog:b\"\n",
    ));
    docs.push(object(
        "PermitResourceInstance",
        "page-1",
        "",
        "  resource: Page\n",
    ));
    assert_eq!(
        check(&docs),
        [
            "error: m.yaml:55:12: spec.subject: relation \"parent\" of resource \"Comment\" takes a subject of resource \"Post\", not \"Comment\" (PermitRelationshipTuple t)",
            "error: m.yaml:57:11: spec.object: resource instance \"Comment:comment-2\" is not declared (no PermitResourceInstance with this key) (PermitRelationshipTuple t)",
            "error: m.yaml:74:13: spec.relation: relation \"owner\" is not declared on resource \"Comment\" (PermitRelationshipTuple u)",
            "error: m.yaml:82:12: spec.subject: resource \"Page\" is not declared (no PermitResource with this key) (PermitRelationshipTuple v)",
            "error: m.yaml:84:11: spec.object: resource \"Blog\" is not declared (no PermitResource with this key) (PermitRelationshipTuple v)",
            "error: m.yaml:91:13: spec.resource: resource \"Page\" is not declared (no PermitResource with this key) (PermitResourceInstance page-1)",
        ]
    );
}

#[test]
fn dangling_rebac_references_are_warnings_with_the_annotation() {
    let external = "  annotations:\n    permitsync.dev/external-references: \"true\"\n";
    let mut docs = blog();
    docs[5] = object(
        "PermitRelationshipTuple",
        "t",
        external,
        "  subject: \"Post:post-2\"\n  relation: parent\n  object: \"Comment:comment-1\"\n",
    );
    assert_eq!(
        check(&docs),
        [
            "warning: m.yaml:57:12: spec.subject: resource instance \"Post:post-2\" is not declared (no PermitResourceInstance with this key); allowed by permitsync.dev/external-references (PermitRelationshipTuple t)"
        ]
    );
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
