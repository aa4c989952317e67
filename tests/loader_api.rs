//! The loader's API as the engine and the watcher use it: per file, per set, origins, field
//! locations, isolation of bad documents, duplicates across files, directory discovery.

use permit_sync::kinds::{Kind, Object, Origin};
use permit_sync::manifest::{self, FileLoad, LoadOptions, Severity};
use std::path::{Path, PathBuf};

const HEAD: &str = "apiVersion: permitsync.dev/v1alpha1\n";

fn tenant(name: &str) -> String {
    format!("{HEAD}kind: PermitTenant\nmetadata:\n  name: {name}\nspec:\n  name: {name}\n")
}

fn texts(load: &FileLoad) -> Vec<String> {
    load.diagnostics
        .iter()
        .map(|d| format!("{}: {d}", d.severity))
        .collect()
}

fn keys(objects: &[manifest::LoadedObject]) -> Vec<String> {
    objects
        .iter()
        .map(|o| format!("{} {}", o.object.kind(), o.object.permit_key()))
        .collect()
}

#[test]
fn the_blog_rbac_example_loads_with_origins() {
    let set = manifest::load_paths(
        &[PathBuf::from("examples/rbac-blog-reduced")],
        &LoadOptions::default(),
    );
    assert!(set.diagnostics.is_empty(), "{:?}", set.diagnostics);
    assert_eq!(
        keys(&set.objects),
        [
            "RoleAssignment jane@example.com/viewer/acme",
            "PermitPDP pdp",
            "PermitResource post",
            "PermitRole viewer",
            "PermitRole editor",
            "PermitTenant acme",
            "PermitUser jane@example.com",
            "PermitUser bob",
        ]
    );
    let origins: Vec<String> = set.objects.iter().map(|o| o.origin.to_string()).collect();
    assert_eq!(
        origins,
        [
            "examples/rbac-blog-reduced/assignments.yaml:1:1",
            "examples/rbac-blog-reduced/pdp.yaml:2:1",
            "examples/rbac-blog-reduced/policy.yaml:2:1",
            "examples/rbac-blog-reduced/policy.yaml:15:1",
            "examples/rbac-blog-reduced/policy.yaml:25:1",
            "examples/rbac-blog-reduced/tenants.yaml:1:1",
            "examples/rbac-blog-reduced/users.yaml:2:1",
            "examples/rbac-blog-reduced/users.yaml:14:1",
        ]
    );
    let Object::User(bob) = &set.objects[7].object else {
        panic!("bob is a user")
    };
    assert_eq!(bob.spec.roles.as_ref().unwrap()[0].role, "editor");
    assert_eq!(
        set.objects[7].fields.get("spec.roles[0].tenant"),
        Some((24, 15))
    );
}

#[test]
fn a_bad_document_does_not_block_the_others_in_its_file() {
    let text = format!(
        "{}---\n{HEAD}kind: PermitTenant\nmetadata:\n  name: globex\nspec:\n  nmae: Globex\n---\n{}",
        tenant("acme"),
        tenant("initech")
    );
    let load = manifest::load_text(Path::new("t.yaml"), &text);
    assert_eq!(
        keys(&load.objects),
        ["PermitTenant acme", "PermitTenant initech"]
    );
    assert_eq!(
        texts(&load),
        [
            "error: t.yaml:13:3: spec.nmae: unknown field; expected one of attributes, deletionPolicy, description, key, name (PermitTenant globex)"
        ]
    );
    assert!(!load.is_complete());
    let Origin::File { line, column, .. } = &load.objects[1].origin else {
        panic!()
    };
    assert_eq!((*line, *column), (15, 1));
}

#[test]
fn broken_yaml_in_one_document_leaves_the_next_document_loadable() {
    let text = format!(
        "{HEAD}kind: PermitTenant\nmetadata: {{name: acme\n---\n{}",
        tenant("globex")
    );
    let load = manifest::load_text(Path::new("t.yaml"), &text);
    assert_eq!(keys(&load.objects), ["PermitTenant globex"]);
    assert_eq!(
        texts(&load),
        ["error: t.yaml:3:11: invalid YAML: unclosed bracket '{'"]
    );
}

#[test]
fn a_list_yields_its_items_with_their_own_origins() {
    let text = format!(
        "apiVersion: v1\nkind: List\nitems:\n- {HEAD}  kind: PermitTenant\n  metadata: {{name: acme}}\n  spec: {{}}\n"
    );
    let load = manifest::load_text(Path::new("list.yaml"), &text);
    assert_eq!(keys(&load.objects), ["PermitTenant acme"]);
    assert_eq!(load.objects[0].origin.to_string(), "list.yaml:4:3");
    assert!(load.is_complete());
}

#[test]
fn a_typed_list_is_accepted_too() {
    let text = format!(
        "{HEAD}kind: PermitTenantList\nitems:\n- {HEAD}  kind: PermitTenant\n  metadata: {{name: acme}}\n  spec: {{}}\n"
    );
    let load = manifest::load_text(Path::new("list.yaml"), &text);
    assert_eq!(keys(&load.objects), ["PermitTenant acme"]);
}

#[test]
fn kubectl_forms_are_accepted() {
    // Flow style, JSON, anchors and merge keys, quoted keys, `...` end markers, CRLF, a BOM.
    let text = "\u{feff}{\"apiVersion\": \"permitsync.dev/v1alpha1\", \"kind\": \"PermitTenant\", \"metadata\": {\"name\": \"acme\"}, \"spec\": {\"attributes\": {\"n\": 1}}}\r\n...\r\n---\r\n\
        apiVersion: permitsync.dev/v1alpha1\r\nkind: PermitResource\r\nmetadata:\r\n  name: post\r\n  namespace: team-a\r\n  labels: {app: blog}\r\n  annotations: {note: \"x\"}\r\nspec:\r\n  actions:\r\n    read: &plain {}\r\n    'write': *plain\r\n  deletionPolicy: Orphan\r\n";
    let load = manifest::load_text(Path::new("k.yaml"), text);
    assert_eq!(texts(&load), Vec::<String>::new());
    assert_eq!(
        keys(&load.objects),
        ["PermitTenant acme", "PermitResource post"]
    );
    let Object::Resource(post) = &load.objects[1].object else {
        panic!()
    };
    assert_eq!(
        post.spec.actions.keys().collect::<Vec<_>>(),
        ["read", "write"]
    );
    assert_eq!(post.metadata.namespace.as_deref(), Some("team-a"));
}

#[test]
fn status_in_a_file_is_ignored_with_a_warning() {
    let text = format!("{}status:\n  key: acme\n", tenant("acme"));
    let load = manifest::load_text(Path::new("s.yaml"), &text);
    assert_eq!(keys(&load.objects), ["PermitTenant acme"]);
    assert_eq!(
        texts(&load),
        [
            "warning: s.yaml:7:1: status: ignored: status is reported by permit-sync, not declared (PermitTenant acme)"
        ]
    );
    assert!(load.is_complete());
}

#[test]
fn duplicates_across_files_name_both_places_and_keep_the_first() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.yaml"), tenant("acme")).unwrap();
    let renamed =
        format!("{HEAD}kind: PermitTenant\nmetadata:\n  name: acme-2\nspec:\n  key: acme\n");
    std::fs::write(dir.path().join("b.yaml"), renamed).unwrap();
    let set = manifest::load_paths(&[dir.path().to_path_buf()], &LoadOptions::default());
    assert_eq!(keys(&set.objects), ["PermitTenant acme"]);
    assert_eq!(set.objects[0].object.name(), "acme");
    let d = &set.diagnostics[0];
    assert_eq!(set.diagnostics.len(), 1);
    assert_eq!((d.severity, d.line, d.column), (Severity::Error, 6, 8));
    let root = dir.path().display().to_string();
    assert_eq!(
        d.to_string().replace(&root, "DIR"),
        "DIR/b.yaml:6:8: spec.key: PermitTenant key \"acme\" is declared twice; the first is at DIR/a.yaml:1:1 (PermitTenant acme-2)"
    );
}

#[test]
fn directories_are_walked_for_yaml_and_yml_skipping_hidden_entries() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    for sub in ["nested/deeper", ".git", "..data"] {
        std::fs::create_dir_all(root.join(sub)).unwrap();
    }
    std::fs::write(root.join("a.yaml"), tenant("a")).unwrap();
    std::fs::write(root.join("nested/deeper/b.yml"), tenant("b")).unwrap();
    std::fs::write(root.join("notes.txt"), "not a manifest").unwrap();
    std::fs::write(root.join("c.json"), "{}").unwrap();
    std::fs::write(root.join(".git/d.yaml"), tenant("d")).unwrap();
    std::fs::write(root.join("..data/e.yaml"), tenant("e")).unwrap();
    std::fs::write(root.join(".hidden.yaml"), tenant("f")).unwrap();
    let (files, problems) = manifest::read::discover(&[root.to_path_buf(), root.join("notes.txt")]);
    assert!(problems.is_empty());
    let names: Vec<_> = files
        .iter()
        .map(|f| f.strip_prefix(root).unwrap().display().to_string())
        .collect();
    assert_eq!(names, ["a.yaml", "nested/deeper/b.yml", "notes.txt"]);
}

#[cfg(unix)]
#[test]
fn symlink_cycles_are_walked_once() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("x")).unwrap();
    std::fs::write(dir.path().join("x/a.yaml"), tenant("a")).unwrap();
    std::os::unix::fs::symlink(dir.path(), dir.path().join("x/loop")).unwrap();
    let (files, problems) = manifest::read::discover(&[dir.path().to_path_buf()]);
    assert!(problems.is_empty());
    assert_eq!(files, [dir.path().join("x/a.yaml")]);
}

#[test]
fn a_file_that_stops_parsing_keeps_its_last_good_content() {
    let good = manifest::load_text(Path::new("w.yaml"), &tenant("acme"));
    let broken = manifest::load_text(Path::new("w.yaml"), "apiVersion: [\n");
    let kept = broken.keeping_last_good(Some(&good));
    assert_eq!(keys(&kept.objects), ["PermitTenant acme"]);
    assert_eq!(
        texts(&kept),
        [
            "error: w.yaml:1:13: invalid YAML: unclosed bracket '['",
            "warning: w.yaml: keeping the last valid version of this file (1 object) in force until it is fixed",
        ]
    );
    let fixed =
        manifest::load_text(Path::new("w.yaml"), &tenant("globex")).keeping_last_good(Some(&good));
    assert_eq!(keys(&fixed.objects), ["PermitTenant globex"]);
}

#[test]
fn combine_builds_a_set_from_per_file_results() {
    let a = manifest::load_text(Path::new("a.yaml"), &tenant("acme"));
    let b = manifest::load_text(
        Path::new("b.yaml"),
        &format!("{}---\n{}", tenant("acme"), tenant("globex")),
    );
    let set = manifest::combine(vec![a, b]);
    assert_eq!(
        keys(&set.objects),
        ["PermitTenant acme", "PermitTenant globex"]
    );
    assert_eq!(
        set.diagnostics
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>(),
        [
            "b.yaml:4:9: metadata.name: PermitTenant \"acme\" is declared twice; the first is at a.yaml:1:1 (PermitTenant acme)"
        ]
    );
    assert!(set.has_errors());
    assert_eq!(set.objects[1].object.kind(), Kind::PermitTenant);
}

#[test]
fn the_size_limit_is_configurable() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.yaml");
    std::fs::write(&path, tenant("acme")).unwrap();
    let load = manifest::load_file(&path, &LoadOptions { max_file_bytes: 64 });
    assert_eq!(
        load.diagnostics[0].message,
        "file is larger than the 64 bytes limit for a manifest file; split it into smaller files"
    );
    assert_eq!(
        manifest::load_file(&path, &LoadOptions::default())
            .objects
            .len(),
        1
    );
}

#[test]
fn every_field_of_every_kind_is_accepted() {
    let set = manifest::load_paths(
        &[PathBuf::from("tests/corpus/good")],
        &LoadOptions::default(),
    );
    assert!(set.diagnostics.is_empty(), "{:?}", set.diagnostics);
    assert_eq!(set.objects.len(), 10);
    assert!(permit_sync::validate::check(&set.objects).is_empty());
    let Object::Pdp(pdp) = &set.objects[0].object else {
        panic!("a PDP first")
    };
    let requests = pdp
        .spec
        .resources
        .as_ref()
        .unwrap()
        .requests
        .as_ref()
        .unwrap();
    // An integer quantity is read as the string Kubernetes would print.
    assert_eq!(requests["cpu"].0, "1");
    let Object::Tenant(acme) = &set.objects[4].object else {
        panic!("then the tenant")
    };
    assert_eq!(
        acme.spec.attributes.as_ref().unwrap()["nested"],
        serde_json::json!({"a": [1, 2, {"b": null}]})
    );
}

#[test]
fn lists_of_instances_and_tuples_yield_their_items() {
    let instance = |name: &str, resource: &str| {
        format!(
            "- {HEAD}  kind: PermitResourceInstance\n  metadata: {{name: {name}}}\n  spec: {{resource: {resource}}}\n"
        )
    };
    let tuple = |name: &str, subject: &str, object: &str| {
        format!(
            "- {HEAD}  kind: PermitRelationshipTuple\n  metadata: {{name: {name}}}\n  spec: {{subject: \"{subject}\", relation: parent, object: \"{object}\"}}\n"
        )
    };
    let text = format!(
        "apiVersion: v1\nkind: List\nitems:\n{}{}{}---\n{HEAD}kind: PermitRelationshipTupleList\nitems:\n{}{}",
        instance("post-1", "Post"),
        instance("comment-1", "Comment"),
        tuple("t1", "Post:post-1", "Comment:comment-1"),
        tuple("t2", "Post:post-1", "Comment:comment-2"),
        tuple("t3", "Post:post-1", "comment-3"),
    );
    let load = manifest::load_text(Path::new("list.yaml"), &text);
    assert_eq!(
        keys(&load.objects),
        [
            "PermitResourceInstance Post:post-1",
            "PermitResourceInstance Comment:comment-1",
            "PermitRelationshipTuple Post:post-1/parent/Comment:comment-1",
            "PermitRelationshipTuple Post:post-1/parent/Comment:comment-2",
        ]
    );
    assert_eq!(load.objects[1].origin.to_string(), "list.yaml:8:3");
    // A bad item is refused alone, named by its place in the list.
    assert_eq!(
        texts(&load),
        [
            "error: list.yaml:27:60: items[1].spec.object: \"comment-3\" is not valid here: write `resource:instance`, e.g. `document:doc-1` (PermitRelationshipTuple t3)"
        ]
    );
}
