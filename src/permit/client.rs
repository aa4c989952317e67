//! The Permit REST client: scope discovery, rate limiting per class, retries, metrics, typed errors.

use super::error::{PermitError, error_message};
use super::limits::{LimitClass, Limiter, Limits};
use super::retry::{self, RetryPolicy, Verdict};
/// Percent-encodes one path segment (user keys may hold `@`, `|`, `+`).
pub use permit_api::seg;
use permit_api::{Endpoint, endpoint};
use reqwest::Method;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Permit's public API.
pub const DEFAULT_API_URL: &str = "https://api.permit.io";

/// An API key. It is never printed: `Debug` hides it, and error texts are scrubbed of it.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey(String);

impl ApiKey {
    pub fn new(key: impl Into<String>) -> ApiKey {
        ApiKey(key.into().trim().to_string())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ApiKey([redacted])")
    }
}

#[derive(Clone, Debug)]
pub struct ClientConfig {
    pub api_url: String,
    pub api_key: ApiKey,
    /// Whole-request timeout.
    pub timeout: Duration,
    pub connect_timeout: Duration,
    pub limits: Limits,
    pub retry: RetryPolicy,
}

impl ClientConfig {
    pub fn new(api_url: impl Into<String>, api_key: ApiKey) -> ClientConfig {
        ClientConfig {
            api_url: api_url.into(),
            api_key,
            timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(10),
            limits: Limits::default(),
            retry: RetryPolicy::default(),
        }
    }
}

/// The ids an environment-level API key belongs to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Scope {
    pub organization_id: String,
    pub project_id: String,
    pub environment_id: String,
}

impl Scope {
    /// `organization/project/environment`, the identity the inventory is bound to.
    pub fn id(&self) -> String {
        format!(
            "{}/{}/{}",
            self.organization_id, self.project_id, self.environment_id
        )
    }
}

/// Counters of API use: by limit class and status (0 = no answer), by endpoint, retries and waits.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Metrics {
    pub requests: BTreeMap<String, BTreeMap<u16, u64>>,
    pub endpoints: BTreeMap<String, u64>,
    pub retries: u64,
    pub rate_limit_waits: u64,
    pub rate_limit_wait_ms: u64,
    /// Requests other than GET, counted by their method as they are sent (not in the output:
    /// [`Metrics::endpoints`] shows them).
    #[serde(skip)]
    pub write_requests: u64,
}

impl Metrics {
    /// Requests sent (every attempt counts: that is what Permit's limits count).
    pub fn total(&self) -> u64 {
        self.requests.values().flat_map(|m| m.values()).sum()
    }

    /// Requests by the class they are counted under, most specific first (`read` for those
    /// only the overall limit counts), classes without requests left out.
    pub fn by_class(&self) -> Vec<(&'static str, u64)> {
        LimitClass::ALL
            .into_iter()
            .filter_map(|class| {
                let n: u64 = self.requests.get(class.as_str())?.values().sum();
                let name = match class {
                    LimitClass::All => "read",
                    other => other.as_str(),
                };
                (n > 0).then_some((name, n))
            })
            .collect()
    }

    /// Requests other than GET: what a "no writes" assertion checks.
    pub fn writes(&self) -> u64 {
        self.write_requests
    }

    /// Counts since an earlier snapshot.
    pub fn since(&self, earlier: &Metrics) -> Metrics {
        let mut out = Metrics::default();
        for (class, by_status) in &self.requests {
            for (status, n) in by_status {
                let before = earlier
                    .requests
                    .get(class)
                    .and_then(|m| m.get(status))
                    .copied()
                    .unwrap_or(0);
                if *n > before {
                    *out.requests
                        .entry(class.clone())
                        .or_default()
                        .entry(*status)
                        .or_default() = n - before;
                }
            }
        }
        for (e, n) in &self.endpoints {
            let before = earlier.endpoints.get(e).copied().unwrap_or(0);
            if *n > before {
                out.endpoints.insert(e.clone(), n - before);
            }
        }
        out.write_requests = self.write_requests - earlier.write_requests.min(self.write_requests);
        out.retries = self.retries - earlier.retries.min(self.retries);
        out.rate_limit_waits =
            self.rate_limit_waits - earlier.rate_limit_waits.min(self.rate_limit_waits);
        out.rate_limit_wait_ms =
            self.rate_limit_wait_ms - earlier.rate_limit_wait_ms.min(self.rate_limit_wait_ms);
        out
    }
}

/// One API call.
#[derive(Clone, Debug)]
pub struct Call {
    pub method: Method,
    pub path: String,
    pub query: Vec<(String, String)>,
    /// The JSON body, serialised when set: a bulk body as a tree of values weighs several times
    /// its text, and it is held for as long as the call (and its retries) last.
    pub body: Option<Vec<u8>>,
    /// Safe to repeat when the outcome is unknown.
    pub idempotent: bool,
    /// The object concerned, for errors (`PermitUser jane@example.com`).
    pub object: String,
    /// A stable endpoint name for metrics (`users.bulk_upsert`).
    pub endpoint: &'static str,
    /// The endpoint table's rate-limit class, for a call to an endpoint of the table; `None` for
    /// an ad-hoc call ([`PermitClient::facts`], [`PermitClient::schema`]), classified by its path.
    pub class: Option<permit_api::RateClass>,
}

impl Call {
    pub fn new(
        method: Method,
        path: String,
        endpoint: &'static str,
        object: impl Into<String>,
    ) -> Call {
        // POST creates; every other verb we use is idempotent (PATCH sends whole field values).
        let idempotent = method != Method::POST;
        Call {
            method,
            path,
            query: Vec::new(),
            body: None,
            idempotent,
            object: object.into(),
            endpoint,
            class: None,
        }
    }

    /// A call to an endpoint of the table at `path`: its method, metric label and rate-limit class.
    pub fn of(ep: &'static Endpoint, path: String, object: impl Into<String>) -> Call {
        Call {
            class: Some(ep.class),
            ..Call::new(method(ep.method), path, ep.label, object)
        }
    }

    pub fn query(mut self, k: &str, v: impl ToString) -> Call {
        self.query.push((k.to_string(), v.to_string()));
        self
    }

    /// The JSON body, written once here: a bulk body is serialised straight from the objects,
    /// never held as a JSON tree.
    pub fn body(mut self, body: impl serde::Serialize) -> Call {
        // The bodies are `Value`s and structs with string keys: serialising them cannot fail.
        self.body = serde_json::to_vec(&body).ok();
        self
    }

    pub fn idempotent(mut self, yes: bool) -> Call {
        self.idempotent = yes;
        self
    }
}

/// The HTTP method of an endpoint of the table.
pub fn method(m: permit_api::Method) -> Method {
    match m {
        permit_api::Method::Get => Method::GET,
        permit_api::Method::Post => Method::POST,
        permit_api::Method::Put => Method::PUT,
        permit_api::Method::Patch => Method::PATCH,
        permit_api::Method::Delete => Method::DELETE,
    }
}

struct Inner {
    http: reqwest::Client,
    base: String,
    key: ApiKey,
    scope: Scope,
    limiter: Limiter,
    retry: RetryPolicy,
    metrics: Mutex<Metrics>,
    /// The last call gave up on a transport failure, and no answer has come since: each call
    /// is then tried once, so that a caller that retries on its own (the watcher's and the
    /// controller's backoff) sets the pace of attempts while Permit is down, not every call's
    /// retries on top of it. Any answer clears it.
    unreachable: AtomicBool,
}

/// A client bound to one Permit environment. Cheap to clone.
#[derive(Clone)]
pub struct PermitClient {
    inner: Arc<Inner>,
}

impl PermitClient {
    /// Builds the client and discovers the key's scope (`GET /v2/api-key/scope`).
    pub async fn connect(config: ClientConfig) -> Result<PermitClient, PermitError> {
        // Exactly one rustls provider: main installs ring; tests and library users may not have.
        let _ = rustls::crypto::ring::default_provider().install_default();
        if config.api_key.expose().is_empty() {
            return Err(PermitError::Config(
                "no Permit API key: set PERMIT_API_KEY or pass --api-key-file".into(),
            ));
        }
        let http = reqwest::Client::builder()
            .timeout(config.timeout)
            .connect_timeout(config.connect_timeout)
            .user_agent(concat!("permit-sync/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| PermitError::Config(format!("cannot build the HTTP client: {e}")))?;
        let mut inner = Inner {
            http,
            base: config.api_url.trim_end_matches('/').to_string(),
            key: config.api_key,
            scope: Scope {
                organization_id: String::new(),
                project_id: String::new(),
                environment_id: String::new(),
            },
            limiter: Limiter::new(&config.limits),
            retry: config.retry,
            metrics: Mutex::new(Metrics::default()),
            unreachable: Default::default(),
        };
        let probe = PermitClient {
            inner: Arc::new(Inner {
                http: inner.http.clone(),
                base: inner.base.clone(),
                key: inner.key.clone(),
                scope: inner.scope.clone(),
                limiter: Limiter::new(&Limits::unlimited()),
                retry: inner.retry.clone(),
                metrics: Mutex::new(Metrics::default()),
                unreachable: Default::default(),
            }),
        };
        let ep = &endpoint::API_KEY_SCOPE;
        let v = probe
            .call(Call::of(ep, ep.path("", "", &[]), "API key scope"))
            .await?;
        let read = permit_api::response::ScopeRead::deserialize(&v).unwrap_or_default();
        let field = |f: Option<permit_api::response::Str<'_>>| f.map(|f| f.into_owned());
        inner.scope = match (
            field(read.organization_id),
            field(read.project_id),
            field(read.environment_id),
        ) {
            (Some(o), Some(p), Some(e)) => Scope {
                organization_id: o,
                project_id: p,
                environment_id: e,
            },
            _ => {
                return Err(PermitError::Config(
                    "the API key is not an environment-level key (its scope has no project or \
                     environment); use an environment API key"
                        .into(),
                ));
            }
        };
        *inner.metrics.get_mut().expect("metrics lock") = probe.metrics();
        Ok(PermitClient {
            inner: Arc::new(inner),
        })
    }

    pub fn scope(&self) -> &Scope {
        &self.inner.scope
    }

    pub fn api_url(&self) -> &str {
        &self.inner.base
    }

    /// The key, for redacting it from output.
    pub fn api_key(&self) -> &ApiKey {
        &self.inner.key
    }

    pub fn metrics(&self) -> Metrics {
        self.inner.metrics.lock().expect("metrics lock").clone()
    }

    /// `/v2/facts/{project}/{environment}/{rest}`
    /// The path of an endpoint of the table in this environment, `keys` filling its template.
    pub fn path(&self, ep: &Endpoint, keys: &[&str]) -> String {
        let s = &self.inner.scope;
        ep.path(&s.project_id, &s.environment_id, keys)
    }

    /// A call to an endpoint of the table: its method, path and metric label.
    pub fn to(&self, ep: &'static Endpoint, keys: &[&str], object: impl Into<String>) -> Call {
        Call::of(ep, self.path(ep, keys), object)
    }

    pub fn facts(&self, rest: &str) -> String {
        let s = &self.inner.scope;
        format!(
            "/v2/facts/{}/{}/{rest}",
            seg(&s.project_id),
            seg(&s.environment_id)
        )
    }

    /// `/v2/schema/{project}/{environment}/{rest}`
    pub fn schema(&self, rest: &str) -> String {
        let s = &self.inner.scope;
        format!(
            "/v2/schema/{}/{}/{rest}",
            seg(&s.project_id),
            seg(&s.environment_id)
        )
    }

    fn scrub(&self, s: &str) -> String {
        let key = self.inner.key.expose();
        if key.len() >= 8 {
            s.replace(key, "[redacted]")
        } else {
            s.to_string()
        }
    }

    fn count(&self, class: LimitClass, status: u16, endpoint: &str, method: &Method) {
        let mut m = self.inner.metrics.lock().expect("metrics lock");
        *m.requests
            .entry(class.as_str().to_string())
            .or_default()
            .entry(status)
            .or_default() += 1;
        *m.endpoints
            .entry(format!("{method} {endpoint}"))
            .or_default() += 1;
        if *method != Method::GET {
            m.write_requests += 1;
        }
    }

    /// Sends a call: waits for the rate limiter, retries what may be retried, and returns the JSON
    /// body of a 2xx answer (`null` when empty).
    pub async fn call(&self, call: Call) -> Result<Value, PermitError> {
        let classes = match call.class {
            Some(class) => LimitClass::of_endpoint(class, &call.method),
            None => LimitClass::of(&call.method, &call.path),
        };
        let label = classes[0];
        let url = format!("{}{}", self.inner.base, call.path);
        let retries = if self.inner.unreachable.load(Ordering::Relaxed) {
            0
        } else {
            usize::MAX
        };
        let mut delays = self.inner.retry.backoff().take(retries);
        loop {
            let admission = self.inner.limiter.acquire(&classes).await;
            let waited = admission.waited;
            if waited >= Duration::from_millis(1) {
                tracing::debug!(
                    endpoint = call.endpoint,
                    ?waited,
                    "waited for the rate limiter"
                );
                let mut m = self.inner.metrics.lock().expect("metrics lock");
                m.rate_limit_waits += 1;
                m.rate_limit_wait_ms += waited.as_millis() as u64;
            }
            let mut req = self
                .inner
                .http
                .request(call.method.clone(), &url)
                .bearer_auth(self.inner.key.expose());
            if !call.query.is_empty() {
                req = req.query(&call.query);
            }
            if let Some(body) = &call.body {
                req = req
                    .header(reqwest::header::CONTENT_TYPE, "application/json")
                    .body(body.clone());
            }
            let outcome = match req.send().await {
                Ok(resp) => {
                    let status = resp.status().as_u16();
                    let header = |name: &str| {
                        resp.headers()
                            .get(name)
                            .and_then(|v| v.to_str().ok())
                            .map(str::to_string)
                    };
                    let now_unix = std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .unwrap_or_default();
                    if let Some(reset) = retry::spent_window(header, now_unix) {
                        self.inner.limiter.exhausted(&classes, reset);
                    }
                    let retry_after = resp
                        .headers()
                        .get(reqwest::header::RETRY_AFTER)
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_string);
                    match resp.text().await {
                        Ok(text) => Ok((status, retry_after, text)),
                        Err(e) => Err((true, e)),
                    }
                }
                Err(e) => Err((!e.is_connect(), e)),
            };
            let (verdict, error, retry_after) = match outcome {
                Ok((status, retry_after, text)) => {
                    self.inner.unreachable.store(false, Ordering::Relaxed);
                    self.count(label, status, call.endpoint, &call.method);
                    if (200..300).contains(&status) {
                        if text.trim().is_empty() {
                            return Ok(Value::Null);
                        }
                        return serde_json::from_str(&text).map_err(|e| PermitError::Decode {
                            object: call.object.clone(),
                            method: call.method.to_string(),
                            path: call.path.clone(),
                            message: e.to_string(),
                        });
                    }
                    let (code, message) = error_message(&text);
                    let err = PermitError::Api {
                        object: call.object.clone(),
                        method: call.method.to_string(),
                        path: call.path.clone(),
                        status,
                        code,
                        message: self.scrub(&message),
                    };
                    (
                        retry::on_status(status, call.idempotent),
                        err,
                        retry::retry_after(retry_after.as_deref()),
                    )
                }
                Err((sent, e)) => {
                    self.count(label, 0, call.endpoint, &call.method);
                    let err = PermitError::Transport {
                        object: call.object.clone(),
                        method: call.method.to_string(),
                        path: call.path.clone(),
                        message: self.scrub(&format!("{}", e.without_url())),
                        maybe_applied: sent && call.method != Method::GET,
                    };
                    (retry::on_transport(sent, call.idempotent), err, None)
                }
            };
            if verdict == Verdict::Done {
                return Err(error);
            }
            let Some(backoff) = delays.next() else {
                if matches!(error, PermitError::Transport { .. })
                    && !self.inner.unreachable.swap(true, Ordering::Relaxed)
                {
                    tracing::warn!(error = %error, "Permit is unreachable: until it answers again, \
                        each call is tried once and retried only as its caller backs off");
                }
                return Err(error);
            };
            // A 429 is paced by the limiter where a class of the call is limited: it waits out
            // `Retry-After`, or the window under the budget the 429 shrank, however long that is
            // (a bulk window is 10 minutes, far past any backoff). Otherwise: back off.
            let refused = matches!(error, PermitError::Api { status: 429, .. });
            let paced = refused
                && self.inner.limiter.refused(
                    &classes,
                    admission,
                    retry_after,
                    self.inner.retry.max_retry_after,
                );
            let delay = if paced {
                Duration::ZERO
            } else {
                retry_after
                    .map(|d| d.min(self.inner.retry.max_retry_after))
                    .unwrap_or(backoff)
            };
            tracing::debug!(object = %call.object, error = %error, ?delay, "retrying Permit call");
            self.inner.metrics.lock().expect("metrics lock").retries += 1;
            tokio::time::sleep(delay).await;
        }
    }

    /// Every page of a list endpoint (`per_page=100`). `include_total_count=true` makes the lists
    /// that are plain arrays by default answer with the envelope users always get: its
    /// `page_count` lets the remaining pages be fetched concurrently, and a list whose length is
    /// a multiple of 100 costs no extra empty page. A server that ignores the flag answers with a
    /// plain array, read until a short page.
    pub async fn list(&self, ep: &'static Endpoint, what: &str) -> Result<Vec<Value>, PermitError> {
        self.list_map(ep, what, Some).await
    }

    /// [`PermitClient::list`], each item passed through `reduce` as its page arrives, so only
    /// the reduced items are kept (items it answers `None` for are dropped).
    pub async fn list_map<T>(
        &self,
        ep: &'static Endpoint,
        what: &str,
        reduce: impl Fn(Value) -> Option<T>,
    ) -> Result<Vec<T>, PermitError> {
        let mut items = Vec::new();
        self.list_each(ep, what, PAGES_IN_FLIGHT, |v| items.extend(reduce(v)))
            .await?;
        Ok(items)
    }

    /// [`PermitClient::list_map`] of an endpoint whose path names keys (`resources/{}/roles`).
    pub async fn list_map_at<T>(
        &self,
        ep: &'static Endpoint,
        keys: &[&str],
        what: &str,
        reduce: impl Fn(Value) -> Option<T>,
    ) -> Result<Vec<T>, PermitError> {
        let mut items = Vec::new();
        self.list_each_at(ep, keys, what, PAGES_IN_FLIGHT, |v| items.extend(reduce(v)))
            .await?;
        Ok(items)
    }

    /// Lists every page of `path`, handing each item to `each` as its page arrives (pages in
    /// order, `in_flight` requested at once).
    pub async fn list_each(
        &self,
        ep: &'static Endpoint,
        what: &str,
        in_flight: usize,
        each: impl FnMut(Value),
    ) -> Result<(), PermitError> {
        self.list_each_at(ep, &[], what, in_flight, each).await
    }

    /// [`PermitClient::list_each`] of an endpoint whose path names keys.
    pub async fn list_each_at(
        &self,
        ep: &'static Endpoint,
        keys: &[&str],
        what: &str,
        in_flight: usize,
        mut each: impl FnMut(Value),
    ) -> Result<(), PermitError> {
        const PER_PAGE: usize = 100;
        let path = self.path(ep, keys);
        let page = |n: usize| {
            self.call(
                Call::of(ep, path.clone(), format!("{what} page {n}"))
                    .query("page", n)
                    .query("per_page", PER_PAGE)
                    .query("include_total_count", true),
            )
        };
        let undecodable = |n: usize| {
            let path = path.clone();
            move |message: String| PermitError::Decode {
                object: format!("{what} page {n}"),
                method: "GET".into(),
                path,
                message,
            }
        };
        let first = page(1).await?;
        let (first_items, page_count) = split_page(first).map_err(undecodable(1))?;
        let mut last = first_items.len();
        first_items.into_iter().for_each(&mut each);
        if let Some(count) = page_count {
            use futures::StreamExt;
            let mut rest = futures::stream::iter(2..=count)
                .map(page)
                .buffered(in_flight.max(1));
            let mut n = 1;
            while let Some(answer) = rest.next().await {
                n += 1;
                let (items, _) = split_page(answer?).map_err(undecodable(n))?;
                items.into_iter().for_each(&mut each);
            }
            return Ok(());
        }
        let mut n = 1;
        while last == PER_PAGE {
            n += 1;
            let (more, _) = split_page(page(n).await?).map_err(undecodable(n))?;
            last = more.len();
            more.into_iter().for_each(&mut each);
        }
        Ok(())
    }
}

/// Pages of one listing requested at once (the rate limiter paces them further).
pub const PAGES_IN_FLIGHT: usize = 4;

/// Items of one page, and the page count when the answer is an envelope: Permit's envelope
/// ([`permit_api::response::Page`]) or a bare array, the items moved out of the answer. Any other
/// answer is an error, not an empty page: an empty page would read as objects missing from
/// Permit, and the plan would create them again.
fn split_page(v: Value) -> Result<(Vec<Value>, Option<usize>), String> {
    match v {
        Value::Array(items) => Ok((items, None)),
        // `Page` defaults a missing `data` (for its other readers); a listing needs it.
        Value::Object(ref o) if !o.get("data").is_some_and(Value::is_array) => {
            Err("neither a list nor a page envelope (an object without a `data` list)".into())
        }
        Value::Object(_) => permit_api::response::Page::<Value>::deserialize(v)
            .map(|page| (page.data, page.page_count.map(|p| p as usize)))
            .map_err(|e| format!("neither a list nor a page envelope ({e})")),
        other => Err(format!(
            "neither a list nor a page envelope (a JSON {})",
            json_type(&other)
        )),
    }
}

fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

#[cfg(test)]
mod page_tests {
    use super::split_page;
    use serde_json::json;

    #[test]
    fn a_listing_page_is_a_list_or_an_envelope_and_nothing_else_reads_as_empty() {
        let (items, count) = split_page(json!([{"key": "a"}])).unwrap();
        assert_eq!((items.len(), count), (1, None));
        let envelope =
            json!({"data": [{"key": "a"}, {"key": "b"}], "total_count": 2, "page_count": 1});
        let (items, count) = split_page(envelope).unwrap();
        assert_eq!((items.len(), count), (2, Some(1)));
        let error = split_page(json!({"detail": "gateway"})).unwrap_err();
        assert!(
            error.contains("neither a list nor a page envelope"),
            "{error}"
        );
        assert!(
            split_page(json!("oops"))
                .unwrap_err()
                .contains("a JSON string")
        );
    }
}
