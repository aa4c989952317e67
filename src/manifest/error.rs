//! Diagnostics: one problem, with the file, line, column, field and object it concerns.

use crate::kinds::Kind;
use serde::Serialize;
use std::fmt;
use std::path::PathBuf;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Warning,
    Error,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Warning => "warning",
            Severity::Error => "error",
        })
    }
}

/// One problem found while loading or validating manifests.
///
/// Displays as `file:line:column: field: message (Kind name)`; parts that are unknown are left
/// out (line 0 means "the file as a whole").
#[derive(Clone, Debug, PartialEq, Eq, Serialize, thiserror::Error)]
pub struct Diagnostic {
    pub severity: Severity,
    pub file: PathBuf,
    pub line: usize,
    pub column: usize,
    /// Dotted path of the field, e.g. `spec.roles[0].tenant`.
    pub field: Option<String>,
    pub kind: Option<String>,
    pub name: Option<String>,
    pub message: String,
}

impl Diagnostic {
    pub fn error(
        file: impl Into<PathBuf>,
        line: usize,
        column: usize,
        message: impl Into<String>,
    ) -> Self {
        Diagnostic {
            severity: Severity::Error,
            file: file.into(),
            line,
            column,
            field: None,
            kind: None,
            name: None,
            message: message.into(),
        }
    }

    pub fn warning(
        file: impl Into<PathBuf>,
        line: usize,
        column: usize,
        message: impl Into<String>,
    ) -> Self {
        Diagnostic {
            severity: Severity::Warning,
            ..Diagnostic::error(file, line, column, message)
        }
    }

    pub fn with_field(mut self, field: impl Into<String>) -> Self {
        let field = field.into();
        self.field = (!field.is_empty()).then_some(field);
        self
    }

    pub fn with_object(mut self, kind: Option<&str>, name: Option<&str>) -> Self {
        self.kind = kind.map(str::to_owned);
        self.name = name.filter(|n| !n.is_empty()).map(str::to_owned);
        self
    }

    pub fn with_kind(mut self, kind: Kind, name: &str) -> Self {
        self.kind = Some(kind.to_string());
        self.name = (!name.is_empty()).then(|| name.to_owned());
        self
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }

    /// `file:line:column` (or just `file` when the problem concerns the whole file).
    pub fn location(&self) -> String {
        if self.line == 0 {
            self.file.display().to_string()
        } else {
            format!("{}:{}:{}", self.file.display(), self.line, self.column)
        }
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut line = format!("{}: ", self.location());
        if let Some(field) = &self.field {
            line.push_str(field);
            line.push_str(": ");
        }
        line.push_str(&self.message);
        match (&self.kind, &self.name) {
            (Some(kind), Some(name)) => line.push_str(&format!(" ({kind} {name})")),
            (Some(kind), None) => line.push_str(&format!(" ({kind})")),
            _ => {}
        }
        f.write_str(&printable(&line))
    }
}

pub use permit_sync_core::text::printable;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_escapes_terminal_controls_and_bidi_overrides() {
        let d = Diagnostic::error("f\u{1b}[2J.yaml", 1, 2, "bad")
            .with_field("spec.x\ny")
            .with_object(Some("PermitTenant"), Some("acme\u{202e}exe"));
        assert_eq!(
            d.to_string(),
            "f\\u{1b}[2J.yaml:1:2: spec.x\\u{a}y: bad (PermitTenant acme\\u{202e}exe)"
        );
        assert_eq!(printable("plain café"), "plain café");
    }
}
