//! The streaming source (`source::load`, what `plan`, `apply` and `validate` read manifests with)
//! must report exactly what loading every file at once and checking the whole set reports, and
//! build the same model, whatever file the problem or its counterpart is in.

use permit_sync::desired::Desired;
use permit_sync::manifest::{self, LoadOptions};
use permit_sync::{source, validate};
use std::path::{Path, PathBuf};

/// Diagnostics of the whole-set path: every file in memory, then the reference check.
fn whole_set(paths: &[PathBuf]) -> (Vec<String>, Option<Desired>) {
    let set = manifest::load_paths(paths, &LoadOptions::default());
    let mut diagnostics = set.diagnostics.clone();
    diagnostics.extend(validate::check(&set.objects));
    let objects: Vec<_> = set
        .objects
        .iter()
        .map(|l| (l.origin.clone(), l.object.clone()))
        .collect();
    let desired = Desired::from_objects(objects.iter().map(|(o, x)| (o, x))).ok();
    (sorted(diagnostics), desired)
}

fn streamed(paths: &[PathBuf]) -> (Vec<String>, Desired) {
    let s = source::load(paths, &LoadOptions::default());
    (sorted(s.diagnostics), s.desired)
}

fn sorted(mut d: Vec<manifest::Diagnostic>) -> Vec<String> {
    d.sort_by(|a, b| (&a.file, a.line, a.column).cmp(&(&b.file, b.line, b.column)));
    d.iter().map(|d| format!("{}: {d}", d.severity)).collect()
}

fn same(paths: &[PathBuf]) -> Vec<String> {
    let (want, want_model) = whole_set(paths);
    let (got, model) = streamed(paths);
    assert_eq!(got, want, "diagnostics differ for {paths:?}");
    if let Some(want_model) = want_model {
        assert_eq!(model.state, want_model.state, "models differ for {paths:?}");
        assert_eq!(model.orphans, want_model.orphans);
        for (kind, key, origin) in want_model.declared() {
            assert_eq!(model.origin(kind, &key), origin, "{kind} {key}");
        }
    }
    got
}

const HEAD: &str = "apiVersion: permitsync.dev/v1alpha1\n";

fn object(kind: &str, name: &str, spec: &str) -> String {
    format!("{HEAD}kind: {kind}\nmetadata:\n  name: {name}\nspec:\n{spec}")
}

fn write(dir: &Path, name: &str, docs: &[String]) {
    std::fs::write(dir.join(name), docs.join("---\n")).unwrap();
}

#[test]
fn the_corpus_and_the_examples_give_the_same_diagnostics_and_model() {
    for p in [
        "tests/corpus/bad",
        "tests/corpus/good",
        "examples/rbac-blog-reduced",
        "tests/corpus",
    ] {
        same(&[PathBuf::from(p)]);
    }
}

#[test]
fn problems_across_files_are_placed_as_the_whole_set_places_them() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(
        d,
        "a-policy.yaml",
        &[
            object("PermitResource", "post", "  actions:\n    read: {}\n"),
            object(
                "PermitRole",
                "viewer",
                "  permissions: [post:read, post:write, page:read]\n  extends: [editor]\n",
            ),
            object("PermitRole", "editor", "  extends: [viewer]\n"),
            object("PermitRole", "lone", "  extends: [ghost]\n"),
            object("PermitTenant", "acme", "  name: Acme\n"),
        ],
    );
    write(
        d,
        "b-users.yaml",
        &[
            object(
                "PermitUser",
                "jane",
                "  key: jane@example.com\n  roles:\n    - role: viewer\n      tenant: acme\n    - role: nobody\n      tenant: nowhere\n",
            ),
            object(
                "PermitUser",
                "bob",
                "  roles:\n    - role: viewer\n    - role: viewer\n      tenant: acme\n",
            ),
            // Dangling, but allowed by the annotation: a warning.
            format!(
                "{HEAD}kind: PermitUser\nmetadata:\n  name: ext\n  annotations:\n    permitsync.dev/external-references: \"true\"\nspec:\n  roles:\n    - role: elsewhere\n"
            ),
        ],
    );
    write(
        d,
        "c-assignments.yaml",
        &[
            // Repeats jane's inline role: reported on the inline one.
            object(
                "RoleAssignment",
                "jane-viewer",
                "  user: jane@example.com\n  role: viewer\n  tenant: acme\n",
            ),
            object(
                "RoleAssignment",
                "ghost",
                "  user: ghost\n  role: viewer\n  tenant: acme\n",
            ),
            // Declared twice (same name): the second is refused, its references not checked.
            object(
                "RoleAssignment",
                "ghost",
                "  user: ghost2\n  role: viewer\n",
            ),
            object("PermitTenant", "acme", "  name: Again\n"),
        ],
    );
    // Files without problems are not read again; their objects still resolve references.
    let mut clean = Vec::new();
    for i in 0..50 {
        clean.push(object(
            "PermitUser",
            &format!("u{i}"),
            "  roles:\n    - role: viewer\n      tenant: acme\n",
        ));
    }
    write(d, "d-clean.yaml", &clean);
    let got = same(&[d.to_path_buf()]);
    let text = got.join("\n");
    for expected in [
        "a-policy.yaml",
        "b-users.yaml",
        "c-assignments.yaml",
        "cycle",
        "is declared twice",
        "allowed by permitsync.dev/external-references",
        "\"nowhere\" is not declared",
        "\"ghost\" is not declared",
    ] {
        assert!(text.contains(expected), "{expected:?} missing in:\n{text}");
    }
    assert!(!text.contains("d-clean.yaml"), "{text}");
}

#[test]
fn a_clean_source_loads_into_the_model_with_counts() {
    let s = source::load(
        &[PathBuf::from("examples/rbac-blog-reduced")],
        &LoadOptions::default(),
    );
    assert!(!s.has_errors(), "{:?}", s.diagnostics);
    assert!(s.files >= 1);
    let set = manifest::load_paths(
        &[PathBuf::from("examples/rbac-blog-reduced")],
        &LoadOptions::default(),
    );
    assert_eq!(s.objects, set.objects.len());
    assert_eq!(s.files, set.files.len());
    let pdps = set
        .objects
        .iter()
        .filter(|l| l.object.kind() == permit_sync::kinds::Kind::PermitPDP)
        .count();
    assert_eq!(s.pdps.len(), pdps);
}

#[test]
fn rebac_references_across_files_are_placed_as_the_whole_set_places_them() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(
        d,
        "a-resources.yaml",
        &[
            object(
                "PermitResource",
                "post",
                "  key: Post\n  actions: {read: {}}\n  roles:\n    Author: {permissions: [read, write]}\n",
            ),
            object(
                "PermitResource",
                "comment",
                "  key: Comment\n  actions: {read: {}}\n  relations:\n    parent: {subject: Post}\n    space: {subject: Space}\n  roles:\n    Moderator:\n      extends: [Author]\n      grantedTo:\n        - {role: Author, onResource: Post, linkedBy: parent}\n        - {role: Editor, onResource: Post, linkedBy: parent}\n        - {role: Author, onResource: Post, linkedBy: space}\n",
            ),
        ],
    );
    let list = |items: &[String]| {
        let items: Vec<String> = items
            .iter()
            .map(|i| format!("- {}", i.replace('\n', "\n  ").trim_end()))
            .collect();
        format!("apiVersion: v1\nkind: List\nitems:\n{}\n", items.join("\n"))
    };
    std::fs::write(
        d.join("b-instances.yaml"),
        list(&[
            object("PermitResourceInstance", "post-1", "  resource: Post\n"),
            object(
                "PermitResourceInstance",
                "comment-1",
                "  resource: Comment\n",
            ),
            object("PermitResourceInstance", "page-1", "  resource: Page\n"),
        ]),
    )
    .unwrap();
    std::fs::write(
        d.join("c-tuples.yaml"),
        list(&[
            object(
                "PermitRelationshipTuple",
                "ok",
                "  subject: \"Post:post-1\"\n  relation: parent\n  object: \"Comment:comment-1\"\n",
            ),
            object(
                "PermitRelationshipTuple",
                "wrong-subject",
                "  subject: \"Comment:comment-1\"\n  relation: parent\n  object: \"Comment:comment-1\"\n",
            ),
            object(
                "PermitRelationshipTuple",
                "no-relation",
                "  subject: \"Post:post-1\"\n  relation: owner\n  object: \"Comment:comment-1\"\n",
            ),
            object(
                "PermitRelationshipTuple",
                "no-instance",
                "  subject: \"Post:post-2\"\n  relation: parent\n  object: \"Comment:comment-1\"\n",
            ),
            object(
                "RoleAssignment",
                "john",
                "  user: john\n  role: Moderator\n  resourceInstance: \"Post:post-1\"\n",
            ),
        ]),
    )
    .unwrap();
    write(
        d,
        "d-users.yaml",
        &[object(
            "PermitUser",
            "john",
            "  roles:\n    - {role: Author, resourceInstance: \"Post:post-1\"}\n    - {role: Author, resourceInstance: \"Post:post-9\"}\n",
        )],
    );
    let got = same(&[d.to_path_buf()]);
    let text = got.join("\n");
    for expected in [
        "a-resources.yaml:9:34: spec.roles.Author.permissions[1]: action \"write\" is not declared on resource \"Post\"",
        "spec.relations.space.subject: resource \"Space\" is not declared",
        "spec.roles.Moderator.extends[0]: role \"Author\" is not a role of resource \"Comment\"",
        "spec.roles.Moderator.grantedTo[1].role: role \"Editor\" is not a role of resource \"Post\"",
        "spec.roles.Moderator.grantedTo[2].linkedBy: relation \"space\" of resource \"Comment\" links a \"Space\", not a \"Post\"",
        "b-instances.yaml",
        "spec.resource: resource \"Page\" is not declared",
        "spec.subject: relation \"parent\" of resource \"Comment\" takes a subject of resource \"Post\", not \"Comment\"",
        "spec.relation: relation \"owner\" is not declared on resource \"Comment\"",
        "spec.subject: resource instance \"Post:post-2\" is not declared",
        "spec.role: role \"Moderator\" is not a role of resource \"Post\"",
        "spec.roles[1].resourceInstance: resource instance \"Post:post-9\" is not declared",
    ] {
        assert!(text.contains(expected), "{expected:?} missing in:\n{text}");
    }
    assert_eq!(got.len(), 11, "{text}");
}
