//! The bad-input corpus: every file in `tests/corpus/bad/` must be refused with exactly the
//! output in its `.expected` twin (the diagnostics `permit-sync validate FILE` prints, then the
//! summary). Set `BLESS=1` to rewrite the `.expected` files after a deliberate message change,
//! and review the diff. Hostile inputs too big or too binary to commit are generated here.

use permit_sync::commands::validate::validate;
use std::path::{Path, PathBuf};

const CORPUS: &str = "tests/corpus/bad";

fn corpus_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(CORPUS)
        .expect("corpus folder")
        .map(|e| Path::new(CORPUS).join(e.unwrap().file_name()))
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    files
}

#[test]
fn corpus_has_at_least_forty_cases() {
    let files = corpus_files();
    assert!(files.len() >= 40, "only {} corpus files", files.len());
    for file in &files {
        assert!(
            file.with_extension("expected").exists(),
            "{} has no .expected",
            file.display()
        );
    }
}

#[test]
fn every_corpus_file_is_refused_with_the_expected_messages() {
    let bless = std::env::var_os("BLESS").is_some();
    let mut failures = Vec::new();
    for file in corpus_files() {
        let report = validate(std::slice::from_ref(&file), false);
        let actual = report.human();
        let expected_path = file.with_extension("expected");
        if bless {
            std::fs::write(&expected_path, &actual).unwrap();
            continue;
        }
        assert!(!report.is_valid(), "{} was accepted", file.display());
        let expected = std::fs::read_to_string(&expected_path).unwrap_or_default();
        if actual != expected {
            failures.push(format!(
                "--- {}\nexpected:\n{expected}actual:\n{actual}",
                file.display()
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// A generated hostile file in a temporary folder, validated alone.
fn refuse(name: &str, bytes: &[u8]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(name);
    std::fs::write(&path, bytes).unwrap();
    let report = validate(std::slice::from_ref(&path), false);
    assert!(!report.is_valid());
    report
        .human()
        .replace(&dir.path().display().to_string(), "DIR")
}

#[test]
fn a_fifty_megabyte_file_is_refused_before_it_is_read() {
    let mut big = b"apiVersion: permitsync.dev/v1alpha1\nkind: PermitTenant\n".to_vec();
    big.resize(50 * 1024 * 1024, b'#');
    assert_eq!(
        refuse("huge.yaml", &big),
        "error: DIR/huge.yaml: file is larger than the 16 MiB limit for a manifest file; split it into smaller files\n\
         invalid: 1 error in 1 file (0 objects valid)\n"
    );
}

#[test]
fn a_binary_file_is_refused_at_its_first_nul_byte() {
    let mut bytes = b"apiVersion: permitsync.dev/v1alpha1\nkind: \x7fELF".to_vec();
    bytes.extend_from_slice(&[0, 1, 2, 3, 0xff, 0xfe]);
    assert_eq!(
        refuse("image.yaml", &bytes),
        "error: DIR/image.yaml:2:11: binary file (NUL byte); manifests are UTF-8 YAML text\n\
         invalid: 1 error in 1 file (0 objects valid)\n"
    );
}

#[test]
fn a_latin1_file_is_refused_at_its_first_invalid_byte() {
    let text =
        b"apiVersion: permitsync.dev/v1alpha1\nkind: PermitUser\nmetadata:\n  name: jos\xe9\n";
    assert_eq!(
        refuse("latin1.yaml", text),
        "error: DIR/latin1.yaml:4:12: not UTF-8 text (invalid byte sequence); manifests are UTF-8 YAML text\n\
         invalid: 1 error in 1 file (0 objects valid)\n"
    );
}

#[test]
fn a_missing_path_is_an_error() {
    let report = validate(&[PathBuf::from("tests/corpus/no-such-dir")], false);
    assert_eq!(
        report.human(),
        "error: tests/corpus/no-such-dir: no such file or directory\ninvalid: 1 error in 0 files (0 objects valid)\n"
    );
}

#[test]
fn a_file_of_too_many_documents_is_refused_before_parsing() {
    let text = "---\na: 1\n".repeat(100_001);
    assert_eq!(
        refuse("many.yaml", text.as_bytes()),
        "error: DIR/many.yaml: file holds 100001 documents, more than the 100000 allowed; split it into smaller files\n\
         invalid: 1 error in 1 file (0 objects valid)\n"
    );
}

#[test]
fn problems_per_file_are_capped() {
    let text = "---\na: 1\n".repeat(1_500);
    let out = refuse("junk.yaml", text.as_bytes());
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 1_002);
    assert_eq!(
        lines[0],
        "error: DIR/junk.yaml:2:1: kind: required field is missing"
    );
    assert_eq!(
        lines[1_000],
        "error: DIR/junk.yaml:2002:1: more than 1000 problems; the rest of this file was not checked"
    );
    assert_eq!(
        lines[1_001],
        "invalid: 1001 errors in 1 file (0 objects valid)"
    );
}
