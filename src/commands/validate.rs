//! `permit-sync validate PATH...`: load, check references, print the problems; exit 0 when valid.

use crate::manifest::{Diagnostic, LoadOptions, Severity};
use serde_json::json;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args, Debug)]
pub struct ValidateArgs {
    /// Manifest files or directories (searched recursively for .yaml and .yml files).
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,
    /// Treat warnings (references to objects managed elsewhere, ignored status) as errors.
    #[arg(long)]
    pub strict: bool,
    /// `human` (default) or `json` (for tools).
    #[arg(long, value_enum, default_value_t = OutputFormat::Human)]
    pub output: OutputFormat,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutputFormat {
    Human,
    Json,
}

/// What `validate` found.
#[derive(Debug)]
pub struct Findings {
    /// Sorted by file, line and column; with `strict`, warnings are already errors.
    pub diagnostics: Vec<Diagnostic>,
    pub files: usize,
    pub objects: usize,
}

impl Findings {
    pub fn errors(&self) -> usize {
        self.diagnostics.iter().filter(|d| d.is_error()).count()
    }

    pub fn warnings(&self) -> usize {
        self.diagnostics.len() - self.errors()
    }

    pub fn is_valid(&self) -> bool {
        self.errors() == 0
    }

    pub fn human(&self) -> String {
        let mut out = String::new();
        for d in &self.diagnostics {
            out.push_str(&format!("{}: {d}\n", d.severity));
        }
        let warnings = match self.warnings() {
            0 => String::new(),
            1 => ", 1 warning".to_string(),
            n => format!(", {n} warnings"),
        };
        let (files, objects) = (plural(self.files, "file"), plural(self.objects, "object"));
        if self.is_valid() {
            out.push_str(&format!("valid: {objects} in {files}{warnings}\n"));
        } else {
            let errors = plural(self.errors(), "error");
            out.push_str(&format!(
                "invalid: {errors}{warnings} in {files} ({objects} valid)\n"
            ));
        }
        out
    }

    pub fn json(&self) -> serde_json::Value {
        let diagnostics: Vec<_> = self
            .diagnostics
            .iter()
            .map(|d| {
                let known = |n: usize| (d.line > 0).then_some(n);
                json!({
                    "severity": d.severity,
                    "file": d.file.display().to_string(),
                    "line": known(d.line),
                    "column": known(d.column),
                    "field": d.field,
                    "kind": d.kind,
                    "name": d.name,
                    "message": d.message,
                    "text": d.to_string(),
                })
            })
            .collect();
        json!({
            "valid": self.is_valid(),
            "diagnostics": diagnostics,
            "summary": {
                "files": self.files,
                "objects": self.objects,
                "errors": self.errors(),
                "warnings": self.warnings(),
            },
        })
    }
}

fn plural(n: usize, word: &str) -> String {
    if n == 1 {
        format!("1 {word}")
    } else {
        format!("{n} {word}s")
    }
}

/// Load `paths`, check references, and gather every problem.
pub fn validate(paths: &[PathBuf], strict: bool) -> Findings {
    let source = crate::source::load(paths, &LoadOptions::default());
    let mut diagnostics = source.diagnostics;
    if strict {
        diagnostics
            .iter_mut()
            .for_each(|d| d.severity = Severity::Error);
    }
    diagnostics.sort_by(|a, b| (&a.file, a.line, a.column).cmp(&(&b.file, b.line, b.column)));
    Findings {
        diagnostics,
        files: source.files,
        objects: source.objects,
    }
}

pub fn run(args: &ValidateArgs) -> ExitCode {
    let report = validate(&args.paths, args.strict);
    match args.output {
        OutputFormat::Human => print!("{}", report.human()),
        OutputFormat::Json => println!("{:#}", report.json()),
    }
    if report.is_valid() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}
