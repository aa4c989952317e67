//! Errors of the Permit client. Each names the object (or listing) it concerns, and none carries
//! the API key: messages from the server are cut short and scrubbed before they are kept.

/// An error from one Permit API call.
#[derive(Debug, Clone, thiserror::Error)]
pub enum PermitError {
    /// Permit answered with an error status.
    #[error("{object}: {method} {path} returned {status}{}: {message}", code.as_deref().map(|c| format!(" {c}")).unwrap_or_default())]
    Api {
        object: String,
        method: String,
        path: String,
        status: u16,
        code: Option<String>,
        message: String,
    },
    /// No usable answer (connection refused or dropped, timeout). `maybe_applied` is set when the
    /// request may have reached Permit, so a non-idempotent call cannot simply be repeated.
    #[error("{object}: {method} {path} failed: {message}")]
    Transport {
        object: String,
        method: String,
        path: String,
        message: String,
        maybe_applied: bool,
    },
    /// A 2xx answer we could not read.
    #[error("{object}: unexpected answer to {method} {path}: {message}")]
    Decode {
        object: String,
        method: String,
        path: String,
        message: String,
    },
    /// The API key or its scope cannot be used.
    #[error("{0}")]
    Config(String),
}

impl PermitError {
    pub fn status(&self) -> Option<u16> {
        match self {
            PermitError::Api { status, .. } => Some(*status),
            _ => None,
        }
    }

    pub fn is_conflict(&self) -> bool {
        self.status() == Some(409)
    }

    pub fn is_not_found(&self) -> bool {
        self.status() == Some(404)
    }

    /// The outcome of the call is unknown: a 5xx or a transport failure after the request was sent.
    pub fn is_ambiguous(&self) -> bool {
        match self {
            PermitError::Api { status, .. } => *status >= 500,
            PermitError::Transport { maybe_applied, .. } => *maybe_applied,
            _ => false,
        }
    }

    /// A label per variant, for metrics and summaries.
    pub fn label(&self) -> &'static str {
        match self {
            PermitError::Api { status: 409, .. } => "conflict",
            PermitError::Api { status: 404, .. } => "not_found",
            PermitError::Api { status: 429, .. } => "rate_limited",
            PermitError::Api {
                status: 401 | 403, ..
            } => "unauthorized",
            PermitError::Api { status: 422, .. } => "invalid",
            PermitError::Api { status, .. } if *status >= 500 => "server_error",
            PermitError::Api { .. } => "client_error",
            PermitError::Transport { .. } => "transport",
            PermitError::Decode { .. } => "decode",
            PermitError::Config(_) => "config",
        }
    }

    /// The same error, about another object (a fallback names the single object, not the batch).
    pub fn about(mut self, what: &str) -> PermitError {
        match &mut self {
            PermitError::Api { object, .. }
            | PermitError::Transport { object, .. }
            | PermitError::Decode { object, .. } => *object = what.to_string(),
            PermitError::Config(_) => {}
        }
        self
    }
}

/// The readable part of an error body: Permit's `message`, a 422's `detail[].msg`, or raw text.
pub fn error_message(body: &str) -> (Option<String>, String) {
    let cut = |s: &str| -> String {
        let s = s.trim();
        if s.chars().count() > 300 {
            format!("{}…", s.chars().take(300).collect::<String>())
        } else {
            s.to_string()
        }
    };
    match serde_json::from_str::<serde_json::Value>(body) {
        Ok(v) => {
            let code = v
                .get("error_code")
                .and_then(|c| c.as_str())
                .map(str::to_string);
            if let Some(m) = v.get("message").and_then(|m| m.as_str()) {
                return (code, cut(m));
            }
            if let Some(details) = v.get("detail").and_then(|d| d.as_array()) {
                let msgs: Vec<String> = details
                    .iter()
                    .map(|d| {
                        let loc = d
                            .get("loc")
                            .and_then(|l| l.as_array())
                            .map(|l| {
                                l.iter()
                                    .map(|p| {
                                        p.as_str().map(str::to_string).unwrap_or(p.to_string())
                                    })
                                    .collect::<Vec<_>>()
                                    .join(".")
                            })
                            .unwrap_or_default();
                        let msg = d.get("msg").and_then(|m| m.as_str()).unwrap_or("invalid");
                        format!("{loc}: {msg}")
                    })
                    .collect();
                return (code, cut(&msgs.join("; ")));
            }
            if let Some(d) = v.get("detail").and_then(|d| d.as_str()) {
                return (code, cut(d));
            }
            (code, cut(body))
        }
        Err(_) => (None, cut(body)),
    }
}
