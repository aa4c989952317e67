//! `crds/` must equal what the code generates: regenerate with `permit-sync crds --output-dir crds`.

use std::path::Path;

#[test]
fn crds_folder_matches_generated() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("crds");
    let rendered = permit_sync::crds::rendered();
    assert_eq!(rendered.len(), 8, "one CRD per kind");
    let mut on_disk: Vec<String> = std::fs::read_dir(&dir)
        .expect("crds/ exists")
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".yaml"))
        .collect();
    on_disk.sort();
    let mut expected: Vec<String> = rendered.iter().map(|(n, _)| n.clone()).collect();
    expected.sort();
    assert_eq!(on_disk, expected, "crds/ holds exactly the generated files");
    for (name, yaml) in rendered {
        let stored = std::fs::read_to_string(dir.join(&name)).unwrap();
        assert!(
            stored == yaml,
            "crds/{name} is stale: run `cargo run -- crds --output-dir crds`"
        );
    }
}

#[test]
fn crds_have_status_printer_columns_and_short_names() {
    for crd in permit_sync::kinds::crds() {
        let kind = &crd.spec.names.kind;
        assert_eq!(crd.spec.group, "permitsync.dev");
        assert_eq!(crd.spec.scope, "Namespaced");
        let v = &crd.spec.versions[0];
        assert_eq!(v.name, "v1alpha1");
        assert!(
            v.subresources
                .as_ref()
                .and_then(|s| s.status.as_ref())
                .is_some(),
            "{kind} has a status subresource"
        );
        let cols: Vec<&str> = v
            .additional_printer_columns
            .as_ref()
            .unwrap()
            .iter()
            .map(|c| c.name.as_str())
            .collect();
        assert!(cols.contains(&"Age"), "{kind} prints Age: {cols:?}");
        assert!(
            !crd.spec
                .names
                .short_names
                .clone()
                .unwrap_or_default()
                .is_empty(),
            "{kind} has a short name"
        );
        assert_eq!(
            crd.spec.names.categories.clone().unwrap_or_default(),
            vec!["permit".to_string()]
        );
    }
}
