//! Request classes and counters.

use axum::http::Method;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Request classes, as Permit's rate limits and our counters see them.
pub mod class {
    pub const READ: &str = "read";
    pub const WRITE: &str = "write";
    pub const DELETE: &str = "delete";
    pub const BULK: &str = "bulk";
    pub const SCHEMA_WRITE: &str = "schema_write";
    pub const PDP: &str = "pdp";
}

/// The one class a request is counted under (most specific first).
pub(super) fn count_class(method: &Method, path: &str, pdp: bool) -> &'static str {
    // The PDP's facts proxy counts as the REST call it is.
    if pdp && !path.contains("/facts/") {
        class::PDP
    } else if *method == Method::GET || *method == Method::HEAD {
        class::READ
    } else if path.contains("/bulk") {
        class::BULK
    } else if *method == Method::DELETE {
        class::DELETE
    } else if *method == Method::POST && path.starts_with("/v2/schema/") {
        class::SCHEMA_WRITE
    } else {
        class::WRITE
    }
}

/// A readable endpoint name: method plus the path's fixed words (`PUT bulk/users`,
/// `DELETE role_assignments`, `POST roles/permissions`); ids are left out.
pub(super) fn endpoint(method: &Method, path: &str) -> String {
    const WORDS: &[&str] = &[
        "users",
        "tenants",
        "role_assignments",
        "bulk",
        "roles",
        "resources",
        "actions",
        "permissions",
        "relations",
        "implicit_grants",
        "conditions",
        "resource_instances",
        "relationship_tuples",
        "scope",
        "allowed",
        "user-permissions",
        "health",
        "healthy",
        "ready",
    ];
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let rest: &[&str] = match segments.as_slice() {
        ["v2", "facts" | "schema", _, _, rest @ ..] => rest,
        ["v2", rest @ ..] => rest,
        all => all,
    };
    let words: Vec<&str> = rest.iter().copied().filter(|s| WORDS.contains(s)).collect();
    format!("{method} {}", words.join("/"))
}

/// Request counts, by class and status and by endpoint. A dropped connection counts with status 0.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Counters {
    pub total: u64,
    pub by_class: BTreeMap<String, ClassCount>,
    pub by_endpoint: BTreeMap<String, u64>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ClassCount {
    pub total: u64,
    pub by_status: BTreeMap<u16, u64>,
}

impl Counters {
    /// Requests of a class (see [`class`]), whatever their status.
    pub fn class(&self, class: &str) -> u64 {
        self.by_class.get(class).map_or(0, |c| c.total)
    }

    /// Requests of a class answered with `status`.
    pub fn status(&self, class: &str, status: u16) -> u64 {
        self.by_class
            .get(class)
            .and_then(|c| c.by_status.get(&status))
            .copied()
            .unwrap_or(0)
    }

    /// REST requests that change something (writes, deletes, bulk, schema writes).
    pub fn writes(&self) -> u64 {
        [
            class::WRITE,
            class::DELETE,
            class::BULK,
            class::SCHEMA_WRITE,
        ]
        .iter()
        .map(|c| self.class(c))
        .sum()
    }

    /// Requests to one endpoint, named like `"PUT bulk/users"`.
    pub fn endpoint(&self, name: &str) -> u64 {
        self.by_endpoint.get(name).copied().unwrap_or(0)
    }

    pub(super) fn record(&mut self, class: &str, endpoint: String, status: u16) {
        self.total += 1;
        let c = self.by_class.entry(class.to_string()).or_default();
        c.total += 1;
        *c.by_status.entry(status).or_default() += 1;
        *self.by_endpoint.entry(endpoint).or_default() += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_and_classes() {
        let path = "/v2/facts/p/e/users/jane@x.io/roles";
        assert_eq!(endpoint(&Method::POST, path), "POST users/roles");
        assert_eq!(
            endpoint(&Method::PUT, "/v2/facts/p/e/bulk/users"),
            "PUT bulk/users"
        );
        assert_eq!(
            count_class(&Method::PUT, "/v2/facts/p/e/bulk/users", false),
            "bulk"
        );
        assert_eq!(
            count_class(&Method::POST, "/v2/schema/p/e/roles", false),
            "schema_write"
        );
        assert_eq!(count_class(&Method::PATCH, path, false), "write");
        assert_eq!(count_class(&Method::POST, "/allowed", true), "pdp");
    }
}
