//! Cases whose answers come from Permit: the Google-Drive-like graph of permitio/permit-python
//! `tests/test_rebac_e2e.py` (run by Permit against its real PDP), transcribed group by group,
//! and the `blogging-platform` template (permit-cli `source/templates/blogging-platform.tf`)
//! with the quick-start's users.

use super::memory::World;
use super::*;

fn check<'q>(user: &'q str, action: &'q str, instance: &'q str, tenant: &'q str) -> Check<'q> {
    let i = Instance::parse(instance).unwrap();
    Check {
        user,
        action,
        resource: i.resource,
        key: Some(i.key),
        tenant,
    }
}

fn allowed(w: &World, user: &str, action: &str, instance: &str, tenant: &str) -> bool {
    decide(w, w, &check(user, action, instance, tenant)).allow
}

const ASAF: &str = "asaf@permit.io";
const JOHN_CC: &str = "auth0|john";

/// Account → Folder → Document. `editor_blocked`: `Folder#editor`'s block-level
/// `when.no_direct_roles_on_object` (the test flips it with `update_role_derivation_conditions`).
fn drive(editor_blocked: bool) -> World {
    let mut w = World::new();
    let account = [
        "create",
        "invite-user",
        "delete",
        "view-members",
        "create-folder",
        "create-document",
    ];
    w.add_resource_role("Account", "admin", &account, &[]);
    w.add_resource_role("Account", "member", &account[3..], &[]);
    w.add_resource_role("Folder", "viewer", &["read"], &[]);
    w.add_resource_role("Folder", "commenter", &["read", "rename"], &[]);
    w.add_resource_role(
        "Folder",
        "editor",
        &["read", "rename", "delete", "create-document"],
        &[],
    );
    w.add_resource_role("Document", "viewer", &["read"], &[]);
    w.add_resource_role("Document", "commenter", &["read", "comment"], &[]);
    w.add_resource_role(
        "Document",
        "editor",
        &["read", "comment", "update", "delete"],
        &[],
    );
    // Folder#commenter: rule-level `when`; Folder#editor: block-level `when`.
    w.add_derivation("Folder", "commenter", "Account", "member", "account", true);
    w.add_derivation(
        "Folder",
        "editor",
        "Account",
        "admin",
        "account",
        editor_blocked,
    );
    for role in ["viewer", "commenter", "editor"] {
        w.add_derivation("Document", role, "Folder", role, "parent", false);
    }
    let tuples = [
        ("Folder:finance", "parent", "Document:budget23", "permit"),
        (
            "Folder:finance",
            "parent",
            "Document:june-expenses",
            "permit",
        ),
        ("Folder:rnd", "parent", "Document:architecture", "permit"),
        ("Folder:rnd", "parent", "Document:opal", "permit"),
        ("Account:permitio", "account", "Folder:finance", "permit"),
        ("Account:permitio", "account", "Folder:rnd", "permit"),
        (
            "Folder:recipes",
            "parent",
            "Document:secret-recipe",
            "cocacola",
        ),
        ("Account:cocacola", "account", "Folder:recipes", "cocacola"),
    ];
    for (s, r, o, t) in tuples {
        w.tuple(s, r, o, t).unwrap();
    }
    w
}

#[test]
fn direct_access() {
    let mut w = drive(true);
    w.assign_on(ASAF, "viewer", "Document:architecture", "permit")
        .unwrap();
    assert!(allowed(&w, ASAF, "read", "Document:architecture", "permit"));
    assert!(
        !allowed(&w, ASAF, "comment", "Document:architecture", "permit"),
        "higher permissions"
    );
    assert!(
        !allowed(&w, ASAF, "comment", "Document:opal", "permit"),
        "other instances"
    );
}

#[test]
fn access_from_a_higher_level() {
    let mut w = drive(true);
    w.assign_on(ASAF, "commenter", "Folder:rnd", "permit")
        .unwrap();
    assert!(allowed(&w, ASAF, "read", "Folder:rnd", "permit"));
    for action in ["read", "comment"] {
        for doc in ["Document:architecture", "Document:opal"] {
            assert!(allowed(&w, ASAF, action, doc, "permit"), "{action} {doc}");
        }
    }
    assert!(!allowed(
        &w,
        ASAF,
        "update",
        "Document:architecture",
        "permit"
    ));
    assert!(
        !allowed(&w, ASAF, "read", "Document:budget23", "permit"),
        "another folder's"
    );
}

#[test]
fn access_from_the_highest_level_two_hops_and_tenants_kept_apart() {
    for editor_blocked in [false, true] {
        let mut w = drive(editor_blocked);
        w.assign_on(ASAF, "admin", "Account:permitio", "permit")
            .unwrap();
        w.assign_on(JOHN_CC, "member", "Account:cocacola", "cocacola")
            .unwrap();
        assert!(allowed(
            &w,
            ASAF,
            "invite-user",
            "Account:permitio",
            "permit"
        ));
        for action in ["read", "comment", "update", "delete"] {
            for doc in ["architecture", "opal", "budget23", "june-expenses"] {
                let doc = format!("Document:{doc}");
                assert!(allowed(&w, ASAF, action, &doc, "permit"), "{action} {doc}");
            }
        }
        for action in ["read", "comment"] {
            assert!(!allowed(
                &w,
                ASAF,
                action,
                "Document:secret-recipe",
                "cocacola"
            ));
            assert!(allowed(
                &w,
                JOHN_CC,
                action,
                "Document:secret-recipe",
                "cocacola"
            ));
        }
    }
}

#[test]
fn a_direct_role_on_the_object_blocks_a_derivation_with_the_block_condition() {
    let mut w = drive(true);
    w.assign_on(ASAF, "admin", "Account:permitio", "permit")
        .unwrap();
    w.assign_on(ASAF, "viewer", "Folder:rnd", "permit").unwrap();
    assert!(allowed(&w, ASAF, "read", "Folder:rnd", "permit"));
    for action in ["rename", "delete", "create-document"] {
        assert!(
            !allowed(&w, ASAF, action, "Folder:rnd", "permit"),
            "{action}"
        );
    }
}

#[test]
fn a_direct_role_on_the_object_blocks_a_derivation_with_the_rule_condition() {
    let mut w = drive(true);
    w.assign_on(ASAF, "member", "Account:permitio", "permit")
        .unwrap();
    w.assign_on(ASAF, "viewer", "Folder:rnd", "permit").unwrap();
    assert!(allowed(&w, ASAF, "read", "Folder:rnd", "permit"));
    assert!(!allowed(&w, ASAF, "rename", "Folder:rnd", "permit"));
}

/// The template every quick-start applies, with John (Reader and Author in `default`, and
/// `Post#Author` on `post-1`) and Emma (Reader).
fn blogging_platform() -> World {
    let mut w = World::new();
    let all = [
        "Post:read",
        "Post:update",
        "Post:create",
        "Post:delete",
        "Comment:create",
        "Comment:update",
        "Comment:read",
        "Comment:delete",
    ];
    w.add_tenant_role("Admin", &all, &[]);
    w.add_tenant_role("Reader", &["Comment:create", "Comment:read"], &[]);
    w.add_tenant_role("Author", &["Comment:read", "Post:read", "Post:create"], &[]);
    w.add_tenant_role("PremiumReader", &["Comment:read", "Post:read"], &[]);
    w.add_resource_role("Comment", "Author", &["create", "read"], &[]);
    w.add_resource_role(
        "Comment",
        "Moderator",
        &["update", "create", "delete", "read"],
        &[],
    );
    w.add_resource_role(
        "Post",
        "Author",
        &["update", "read", "create", "delete"],
        &[],
    );
    w.add_derivation("Comment", "Moderator", "Post", "Author", "parent", false);
    w.assign("john@example.com", "Reader", "default");
    w.assign("john@example.com", "Author", "default");
    w.assign("emma@example.com", "Reader", "default");
    w.assign_on("john@example.com", "Author", "Post:post-1", "default")
        .unwrap();
    w
}

#[test]
fn blogging_platform_the_author_of_a_post_moderates_its_comments() {
    let mut w = blogging_platform();
    w.tuple("Post:post-1", "parent", "Comment:comment-1", "default")
        .unwrap();
    let john = check("john@example.com", "delete", "Comment:comment-1", "default");
    let decision = decide(&w, &w, &john);
    assert!(decision.allow);
    assert_eq!(
        decision.grant,
        Some(Grant::InstanceRole {
            role: "Moderator",
            on: Instance::new("Comment", "comment-1"),
            path: vec![Hop {
                role: "Author",
                on: Instance::new("Post", "post-1"),
                relation: "parent"
            }],
        })
    );
    assert!(!allowed(
        &w,
        "emma@example.com",
        "delete",
        "Comment:comment-1",
        "default"
    ));
    // RBAC: Reader reads every comment, whatever its key.
    assert!(allowed(
        &w,
        "emma@example.com",
        "read",
        "Comment:comment-1",
        "default"
    ));
    // The quick-start's type-level checks.
    let create_post = |user| Check {
        user,
        action: "create",
        resource: "Post",
        key: None,
        tenant: "default",
    };
    assert!(decide(&w, &w, &create_post("john@example.com")).allow);
    assert!(!decide(&w, &w, &create_post("emma@example.com")).allow);
}

#[test]
fn without_the_tuple_the_derivation_gives_nothing() {
    let w = blogging_platform();
    assert!(!allowed(
        &w,
        "john@example.com",
        "delete",
        "Comment:comment-1",
        "default"
    ));
    // A tuple in another tenant does not link them either.
    let mut w = blogging_platform();
    w.tuple("Post:post-1", "parent", "Comment:comment-1", "other")
        .unwrap();
    assert!(!allowed(
        &w,
        "john@example.com",
        "delete",
        "Comment:comment-1",
        "default"
    ));
}

#[test]
fn a_chain_of_three_derivations_decides_and_records_its_path() {
    let mut w = World::new();
    w.add_resource_role("Org", "owner", &["manage"], &[]);
    w.add_resource_role("Team", "lead", &["manage"], &[]);
    w.add_resource_role("Project", "maintainer", &["merge"], &[]);
    w.add_resource_role("Task", "editor", &["edit"], &[]);
    w.add_derivation("Team", "lead", "Org", "owner", "org", false);
    w.add_derivation("Project", "maintainer", "Team", "lead", "team", false);
    w.add_derivation("Task", "editor", "Project", "maintainer", "project", false);
    w.tuple("Org:acme", "org", "Team:core", "default").unwrap();
    w.tuple("Team:core", "team", "Project:sync", "default")
        .unwrap();
    w.tuple("Project:sync", "project", "Task:t1", "default")
        .unwrap();
    w.assign_on("ann", "owner", "Org:acme", "default").unwrap();
    let d = decide(&w, &w, &check("ann", "edit", "Task:t1", "default"));
    assert!(d.allow);
    let Some(Grant::InstanceRole { path, .. }) = d.grant else {
        panic!("{d:?}")
    };
    let roles: Vec<_> = path.iter().map(|h| (h.role, h.on.to_string())).collect();
    assert_eq!(
        roles,
        [
            ("owner", "Org:acme".to_string()),
            ("lead", "Team:core".to_string()),
            ("maintainer", "Project:sync".to_string())
        ]
    );
    assert!(!allowed(&w, "ann", "edit", "Task:t2", "default"));
}

#[test]
fn a_cycle_of_tuples_answers() {
    let mut w = World::new();
    w.add_resource_role("Folder", "viewer", &["read"], &[]);
    w.add_derivation("Folder", "viewer", "Folder", "viewer", "parent", false);
    w.tuple("Folder:a", "parent", "Folder:b", "default")
        .unwrap();
    w.tuple("Folder:b", "parent", "Folder:c", "default")
        .unwrap();
    w.tuple("Folder:c", "parent", "Folder:a", "default")
        .unwrap();
    w.assign_on("ann", "viewer", "Folder:b", "default").unwrap();
    for f in ["Folder:a", "Folder:b", "Folder:c"] {
        assert!(allowed(&w, "ann", "read", f, "default"), "{f}");
    }
    assert!(!allowed(&w, "ann", "read", "Folder:d", "default"));
    let held = instance_roles(&w, &w, "ann", "default");
    assert_eq!(held.iter().count(), 3, "each (instance, role) once");
    assert!(held.is_direct(Instance::new("Folder", "b"), "viewer"));
    assert!(!held.is_direct(Instance::new("Folder", "a"), "viewer"));
}

#[test]
fn extends_composes_permissions_within_a_resource() {
    let mut w = World::new();
    w.add_resource_role("Comment", "Author", &["create", "read"], &[]);
    w.add_resource_role("Comment", "Moderator", &["delete"], &["Author"]);
    w.assign_on("ann", "Moderator", "Comment:c1", "default")
        .unwrap();
    assert!(allowed(&w, "ann", "read", "Comment:c1", "default"));
    assert!(allowed(&w, "ann", "delete", "Comment:c1", "default"));
    assert!(!allowed(&w, "ann", "update", "Comment:c1", "default"));
}
