//! Permit's documented REST rate limits, as data.

use axum::http::Method;
use std::time::Duration;

/// One of Permit's limits: `count` requests per `window`, for the requests `applies` selects.
pub(super) struct Limit {
    pub name: &'static str,
    pub count: u32,
    pub window: Duration,
    pub applies: fn(&Method, &str) -> bool,
}

fn is_write(m: &Method) -> bool {
    matches!(
        *m,
        Method::POST | Method::PUT | Method::PATCH | Method::DELETE
    )
}

pub(super) const MINUTE: Duration = Duration::from_secs(60);

/// permit-api.md §7: all 1,000/min; writes 300/min; DELETE 60/min; schema POST 40/min; bulk
/// 100/10 min.
pub(super) fn permit_limits() -> Vec<Limit> {
    vec![
        Limit {
            name: "all",
            count: 1_000,
            window: MINUTE,
            applies: |_, _| true,
        },
        Limit {
            name: "writes",
            count: 300,
            window: MINUTE,
            applies: |m, _| is_write(m),
        },
        Limit {
            name: "deletes",
            count: 60,
            window: MINUTE,
            applies: |m, _| *m == Method::DELETE,
        },
        Limit {
            name: "schema_writes",
            count: 40,
            window: MINUTE,
            applies: |m, p| *m == Method::POST && p.starts_with("/v2/schema/"),
        },
        Limit {
            name: "bulk",
            count: 100,
            window: Duration::from_secs(600),
            applies: |m, p| is_write(m) && p.contains("/bulk"),
        },
    ]
}
