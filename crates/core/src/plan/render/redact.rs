//! Redaction of secrets in plan output: the API key itself, anything shaped like a Permit API key,
//! and values of attributes whose names look secret.

use serde_json::Value;

pub const REDACTED: &str = "[redacted]";

const SECRET_NAME_PARTS: [&str; 7] = [
    "secret",
    "token",
    "password",
    "passwd",
    "apikey",
    "privatekey",
    "credential",
];

/// Permit API keys look like `permit_key_<letters and digits>`.
fn key_shaped() -> &'static regex::Regex {
    static RE: std::sync::OnceLock<regex::Regex> = std::sync::OnceLock::new();
    RE.get_or_init(|| regex::Regex::new(r"permit_key_[A-Za-z0-9_\-]+").expect("valid pattern"))
}

#[derive(Clone, Debug, Default)]
pub struct Redactor {
    /// The API key in use, removed wherever it appears.
    secrets: Vec<String>,
}

impl Redactor {
    pub fn new(secrets: impl IntoIterator<Item = String>) -> Redactor {
        Redactor {
            secrets: secrets.into_iter().filter(|s| s.len() >= 8).collect(),
        }
    }

    fn secret_name(name: &str) -> bool {
        let n: String = name
            .chars()
            .filter(|c| c.is_ascii_alphanumeric())
            .collect::<String>()
            .to_ascii_lowercase();
        SECRET_NAME_PARTS.iter().any(|p| n.contains(p))
    }

    /// Free text with known secrets and key-shaped words removed.
    pub fn text(&self, s: &str) -> String {
        let mut out = s.to_string();
        for secret in &self.secrets {
            out = out.replace(secret.as_str(), REDACTED);
        }
        key_shaped().replace_all(&out, REDACTED).into_owned()
    }

    /// A field value: everything under a secret-looking name is replaced, recursively.
    pub fn value(&self, name: &str, v: &Value) -> Value {
        if Self::secret_name(name) && !v.is_null() {
            return Value::String(REDACTED.into());
        }
        match v {
            Value::String(s) => Value::String(self.text(s)),
            Value::Array(a) => Value::Array(a.iter().map(|x| self.value("", x)).collect()),
            Value::Object(m) => Value::Object(
                m.iter()
                    .map(|(k, x)| (k.clone(), self.value(k, x)))
                    .collect(),
            ),
            other => other.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn secrets_are_redacted_recursively() {
        let r = Redactor::new(["s3cr3t-key-value".to_string()]);
        let v = json!({"plan": "pro", "api_token": "abc", "nested": {"dbPassword": "x"},
                       "note": "key s3cr3t-key-value and token=permit_key_ABCDEF here"});
        let out = r.value("attributes", &v);
        assert_eq!(out["plan"], "pro");
        assert_eq!(out["api_token"], REDACTED);
        assert_eq!(out["nested"]["dbPassword"], REDACTED);
        let note = out["note"].as_str().unwrap();
        assert!(
            !note.contains("s3cr3t") && !note.contains("permit_key_ABCDEF"),
            "{note}"
        );
    }
}
