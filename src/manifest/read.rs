//! Finding manifest files and reading them safely: size limit, binary detection, UTF-8.

use super::error::Diagnostic;
use std::collections::BTreeSet;
use std::io::Read;
use std::path::{Path, PathBuf};

/// Whether a file found while walking a directory is a manifest.
pub fn is_manifest_file(path: &Path) -> bool {
    matches!(
        path.extension().and_then(|e| e.to_str()),
        Some("yaml") | Some("yml")
    )
}

/// The manifest files under `paths`, sorted and without repeats.
///
/// A path named explicitly is loaded whatever its extension. Directories are walked recursively
/// for `.yaml`/`.yml` files. Entries whose names start with `.` are skipped: `.git`, editor
/// files, and the `..data`/`..2024_…` folders of a mounted ConfigMap, whose files would
/// otherwise be found twice (through the folder and through the symlink next to it).
pub fn discover(paths: &[PathBuf]) -> (Vec<PathBuf>, Vec<Diagnostic>) {
    let mut files = BTreeSet::new();
    let mut problems = Vec::new();
    for path in paths {
        match std::fs::metadata(path) {
            Ok(meta) if meta.is_dir() => {
                let mut seen_dirs = BTreeSet::new();
                walk(path, &mut files, &mut problems, &mut seen_dirs);
            }
            Ok(_) => {
                files.insert(path.clone());
            }
            Err(err) => problems.push(Diagnostic::error(path, 0, 0, io_message(&err))),
        }
    }
    (files.into_iter().collect(), problems)
}

fn walk(
    dir: &Path,
    files: &mut BTreeSet<PathBuf>,
    problems: &mut Vec<Diagnostic>,
    seen_dirs: &mut BTreeSet<PathBuf>,
) {
    // Symlinked directories can form cycles; visit each real directory once.
    if let Ok(real) = dir.canonicalize()
        && !seen_dirs.insert(real)
    {
        return;
    }
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(err) => return problems.push(Diagnostic::error(dir, 0, 0, io_message(&err))),
    };
    let mut paths: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    paths.sort();
    for path in paths {
        let hidden = path
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with('.'));
        if hidden {
            continue;
        }
        match std::fs::metadata(&path) {
            Ok(meta) if meta.is_dir() => walk(&path, files, problems, seen_dirs),
            // Regular files only: a FIFO or device named `x.yaml` would block or never end.
            Ok(meta) if meta.is_file() && is_manifest_file(&path) => {
                files.insert(path);
            }
            Ok(_) => {}
            // A dangling symlink: a manifest that points nowhere is worth a word.
            Err(err) if is_manifest_file(&path) => {
                problems.push(Diagnostic::error(&path, 0, 0, io_message(&err)))
            }
            Err(_) => {}
        }
    }
}

/// Read a manifest file as UTF-8 text, refusing files over `max_bytes` and binary files.
pub fn read_text(path: &Path, max_bytes: u64) -> Result<String, Box<Diagnostic>> {
    let file = std::fs::File::open(path)
        .map_err(|e| Box::new(Diagnostic::error(path, 0, 0, io_message(&e))))?;
    let too_large = || {
        Box::new(Diagnostic::error(
            path,
            0,
            0,
            format!(
                "file is larger than the {} limit for a manifest file; split it into smaller files",
                human_bytes(max_bytes)
            ),
        ))
    };
    if file.metadata().is_ok_and(|m| m.len() > max_bytes) {
        return Err(too_large());
    }
    // Read one byte past the limit, so a file that grows while we read is still refused.
    let mut bytes = Vec::new();
    file.take(max_bytes + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| Box::new(Diagnostic::error(path, 0, 0, io_message(&e))))?;
    if bytes.len() as u64 > max_bytes {
        return Err(too_large());
    }
    decode(path, bytes)
}

/// UTF-8 text (a leading byte-order mark dropped), or an error naming the first offending byte.
pub fn decode(path: &Path, mut bytes: Vec<u8>) -> Result<String, Box<Diagnostic>> {
    if bytes.starts_with(&[0xEF, 0xBB, 0xBF]) {
        bytes.drain(..3);
    }
    if let Some(at) = bytes.iter().position(|&b| b == 0) {
        let (line, column) = line_column(&bytes, at);
        let message = "binary file (NUL byte); manifests are UTF-8 YAML text";
        return Err(Box::new(Diagnostic::error(path, line, column, message)));
    }
    String::from_utf8(bytes).map_err(|err| {
        let at = err.utf8_error().valid_up_to();
        let (line, column) = line_column(err.as_bytes(), at);
        let message = "not UTF-8 text (invalid byte sequence); manifests are UTF-8 YAML text";
        Box::new(Diagnostic::error(path, line, column, message))
    })
}

/// 1-based line and column (in characters) of byte offset `at`.
fn line_column(bytes: &[u8], at: usize) -> (usize, usize) {
    let before = &bytes[..at];
    let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
    let line_start = before
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |p| p + 1);
    let column = String::from_utf8_lossy(&before[line_start..])
        .chars()
        .count()
        + 1;
    (line, column)
}

fn io_message(err: &std::io::Error) -> String {
    match err.kind() {
        std::io::ErrorKind::NotFound => "no such file or directory".to_string(),
        std::io::ErrorKind::PermissionDenied => "permission denied".to_string(),
        _ => format!("cannot read: {err}"),
    }
}

fn human_bytes(n: u64) -> String {
    if n >= 1 << 20 && n.is_multiple_of(1 << 20) {
        format!("{} MiB", n >> 20)
    } else if n >= 1 << 10 && n.is_multiple_of(1 << 10) {
        format!("{} KiB", n >> 10)
    } else {
        format!("{n} bytes")
    }
}
