//! `permit-sync validate`: exit codes, human and JSON output, `--strict`, references.

use std::process::{Command, Output};

fn validate(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_permit-sync"))
        .arg("validate")
        .args(args)
        .output()
        .expect("permit-sync runs")
}

fn stdout(out: &Output) -> String {
    String::from_utf8(out.stdout.clone()).unwrap()
}

const HEAD: &str = "apiVersion: permitsync.dev/v1alpha1\n";

/// A folder holding `files`, removed when the guard drops.
fn folder(files: &[(&str, String)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in files {
        std::fs::write(dir.path().join(name), text).unwrap();
    }
    dir
}

fn external_assignment() -> String {
    format!(
        "{HEAD}kind: RoleAssignment\nmetadata:\n  name: jane-admin\n  annotations:\n    permitsync.dev/external-references: \"true\"\nspec:\n  user: jane\n  role: admin\n"
    )
}

#[test]
fn the_blog_rbac_example_is_valid() {
    let out = validate(&["examples/rbac-blog-reduced"]);
    assert_eq!(stdout(&out), "valid: 8 objects in 5 files\n");
    assert_eq!(out.status.code(), Some(0));
}

#[test]
fn a_malformed_file_exits_1_naming_file_line_column_and_field() {
    let out = validate(&["tests/corpus/bad/22-invalid-email.yaml"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stdout(&out),
        "error: tests/corpus/bad/22-invalid-email.yaml:6:10: spec.email: \"not-an-email\" is not a valid e-mail address (PermitUser jane)\n\
         invalid: 1 error in 1 file (0 objects valid)\n"
    );
}

#[test]
fn json_output_lists_diagnostics_and_a_summary() {
    let out = validate(&[
        "--output",
        "json",
        "tests/corpus/bad/55-bad-document-between-good-ones.yaml",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        json,
        serde_json::json!({
            "valid": false,
            "diagnostics": [{
                "severity": "error",
                "file": "tests/corpus/bad/55-bad-document-between-good-ones.yaml",
                "line": 13,
                "column": 9,
                "field": "spec.name",
                "kind": "PermitTenant",
                "name": "globex",
                "message": "expected a string, found a list",
                "text": "tests/corpus/bad/55-bad-document-between-good-ones.yaml:13:9: spec.name: expected a string, found a list (PermitTenant globex)",
            }],
            "summary": {"files": 1, "objects": 2, "errors": 1, "warnings": 0},
        })
    );
}

#[test]
fn json_output_of_a_file_level_problem_has_no_line() {
    let out = validate(&["--output", "json", "tests/corpus/bad/48-empty-file.yaml"]);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let d = &json["diagnostics"][0];
    assert_eq!(
        (d["line"].clone(), d["column"].clone(), d["field"].clone()),
        (
            serde_json::Value::Null,
            serde_json::Value::Null,
            serde_json::Value::Null
        )
    );
    assert_eq!(
        d["message"],
        "no manifests in this file (it is empty or holds only comments)"
    );
}

#[test]
fn references_to_objects_managed_elsewhere_are_warnings_unless_strict() {
    let dir = folder(&[("a.yaml", external_assignment())]);
    let path = dir.path().join("a.yaml");
    let shown = path.display().to_string();
    let out = validate(&[&shown]);
    assert_eq!(out.status.code(), Some(0));
    let expected = |severity: &str| {
        format!(
            "{severity}: {shown}:8:9: spec.user: user \"jane\" is not declared (no PermitUser with this key); allowed by permitsync.dev/external-references (RoleAssignment jane-admin)\n\
             {severity}: {shown}:9:9: spec.role: role \"admin\" is not declared (no PermitRole with this key); allowed by permitsync.dev/external-references (RoleAssignment jane-admin)\n"
        )
    };
    assert_eq!(
        stdout(&out),
        format!(
            "{}valid: 1 object in 1 file, 2 warnings\n",
            expected("warning")
        )
    );
    let strict = validate(&["--strict", &shown]);
    assert_eq!(strict.status.code(), Some(1));
    assert_eq!(
        stdout(&strict),
        format!(
            "{}invalid: 2 errors in 1 file (1 object valid)\n",
            expected("error")
        )
    );
}

#[test]
fn references_resolve_across_all_paths_given() {
    let policy = format!(
        "{HEAD}kind: PermitResource\nmetadata:\n  name: doc\nspec:\n  actions:\n    read: {{}}\n  roles:\n    reader: {{permissions: [read]}}\n---\n{HEAD}kind: PermitRole\nmetadata:\n  name: reader\nspec:\n  permissions: [doc:read]\n---\n{HEAD}kind: PermitResourceInstance\nmetadata:\n  name: readme\nspec:\n  resource: doc\n"
    );
    let people = format!(
        "{HEAD}kind: PermitUser\nmetadata:\n  name: jane\nspec:\n  roles:\n    - role: reader\n---\n{HEAD}kind: RoleAssignment\nmetadata:\n  name: jane-reader\nspec:\n  user: jane\n  role: reader\n  resourceInstance: doc:readme\n"
    );
    let a = folder(&[("policy.yaml", policy)]);
    let b = folder(&[("people.yml", people)]);
    let out = validate(&[
        &a.path().display().to_string(),
        &b.path().join("people.yml").display().to_string(),
    ]);
    assert_eq!(stdout(&out), "valid: 5 objects in 2 files\n");
    assert_eq!(out.status.code(), Some(0));
}

#[test]
fn rebac_references_name_file_line_and_field() {
    let policy = format!(
        "{HEAD}kind: PermitResource\nmetadata:\n  name: post\nspec:\n  key: Post\n  actions: {{read: {{}}}}\n  roles:\n    Author: {{permissions: [read]}}\n---\n{HEAD}kind: PermitResource\nmetadata:\n  name: comment\nspec:\n  key: Comment\n  actions: {{read: {{}}}}\n  relations:\n    parent: {{subject: Post}}\n  roles:\n    Moderator:\n      permissions: [read]\n      grantedTo:\n        - {{role: Editor, onResource: Post, linkedBy: parent}}\n"
    );
    let facts = format!(
        "apiVersion: v1\nkind: List\nitems:\n  - {HEAD}    kind: PermitResourceInstance\n    metadata: {{name: post-1}}\n    spec: {{resource: Post}}\n  - {HEAD}    kind: PermitRelationshipTuple\n    metadata: {{name: t}}\n    spec: {{subject: \"Post:post-1\", relation: parent, object: \"Comment:comment-1\"}}\n  - {HEAD}    kind: RoleAssignment\n    metadata: {{name: john}}\n    spec: {{user: john, role: Moderator, resourceInstance: \"Post:post-1\"}}\n  - {HEAD}    kind: PermitUser\n    metadata: {{name: john}}\n    spec: {{}}\n"
    );
    let dir = folder(&[("a-policy.yaml", policy), ("b-facts.yaml", facts)]);
    let out = validate(&[&dir.path().display().to_string()]);
    let text = stdout(&out).replace(&format!("{}/", dir.path().display()), "");
    assert_eq!(
        text,
        "error: a-policy.yaml:24:18: spec.roles.Moderator.grantedTo[0].role: role \"Editor\" is not a role of resource \"Post\" (PermitResource comment)\n\
         error: b-facts.yaml:11:62: spec.object: resource instance \"Comment:comment-1\" is not declared (no PermitResourceInstance with this key) (PermitRelationshipTuple t)\n\
         error: b-facts.yaml:15:30: spec.role: role \"Moderator\" is not a role of resource \"Post\" (RoleAssignment john)\n\
         invalid: 3 errors in 2 files (6 objects valid)\n"
    );
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn a_missing_path_exits_1() {
    let out = validate(&["does-not-exist"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stdout(&out),
        "error: does-not-exist: no such file or directory\ninvalid: 1 error in 0 files (0 objects valid)\n"
    );
}
