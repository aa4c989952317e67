//! `permit-sync check USER ACTION RESOURCE`: ask a PDP for one decision, as an application would.
//!
//! Exit codes are made for scripts: 0 allowed, 3 denied, 1 error. With `--expect allow|deny`,
//! 0 means the decision was the expected one and 3 that it was not (until `--wait` ran out).
//!
//! **Decisions lag writes.** A Permit PDP gets writes from the control plane seconds after the API
//! returned (OPAL; Permit's own SDK tests sleep or poll after writing, see [`crate::local::lag`]),
//! so a check right after a change may answer on the old data. The local PDP says how far behind
//! it is (`X-Local-Pdp-Delay-Ms`, `X-Local-Pdp-Pending-Ms`, with its `pdp_delay_ms` knob set),
//! and `check` reports it; another PDP reports nothing, and `check` says so. `--wait DURATION`
//! asks again until the answer can be trusted or the duration has passed:
//! - with `--expect`: until the decision is the expected one; against the local PDP it stops
//!   early once the PDP has every write and still answers otherwise (the answer is final);
//! - without: until the local PDP has every write (it knows when: one sleep, one more ask);
//!   another PDP cannot tell, so it is asked once, with a note.

use crate::local::lag::{DELAY_HEADER, PENDING_HEADER};
use anyhow::{Context, bail};
use serde_json::{Value, json};
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// Exit code when the PDP denies.
pub const EXIT_DENIED: u8 = 3;

#[derive(clap::Args, Debug)]
pub struct CheckArgs {
    /// User key (e.g. `jane@example.com`).
    pub user: String,
    /// Action (e.g. `read`).
    pub action: String,
    /// Resource type, or `type:key` for one instance (e.g. `post` or `post:42`).
    pub resource: String,
    /// Tenant key.
    #[arg(long, default_value = crate::kinds::DEFAULT_TENANT)]
    pub tenant: String,
    /// PDP base URL [default: the running `permit-sync dev` session's, else http://127.0.0.1:7766].
    #[arg(long, env = "PERMIT_PDP_URL")]
    pub pdp_url: Option<String>,
    /// Environment API key the PDP expects (never printed).
    #[arg(long, env = "PERMIT_API_KEY", hide_env_values = true)]
    pub api_key: Option<String>,
    /// Read the API key from this file instead.
    #[arg(long)]
    pub api_key_file: Option<std::path::PathBuf>,
    /// `text` (default) or `json`.
    #[arg(long, default_value = "text", value_parser = ["text", "json"])]
    pub output: String,
    /// The decision you expect: exit 0 when the PDP gives it, 3 when it does not.
    #[arg(long, value_parser = ["allow", "deny"])]
    pub expect: Option<String>,
    /// Ask again, up to this long, until the answer is the expected one (with --expect) or the
    /// local PDP has every write; e.g. `10s`. Default: ask once.
    #[arg(long, value_name = "DURATION", value_parser = crate::commands::watch::parse_duration)]
    pub wait: Option<Duration>,
}

/// How often a PDP that does not report its lag is asked again while waiting.
pub const POLL_INTERVAL: Duration = Duration::from_millis(250);

/// What the PDP said about its own lag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PdpLag {
    /// The local PDP: its configured delay and how long until it has every write.
    Local { delay_ms: u64, pending_ms: u64 },
    /// A PDP that does not say (Permit's): writes may be missing for seconds after they return.
    Unknown,
}

impl PdpLag {
    fn from_headers(h: &reqwest::header::HeaderMap) -> Self {
        let ms = |name: &str| {
            h.get(name)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<u64>().ok())
        };
        match (ms(DELAY_HEADER), ms(PENDING_HEADER)) {
            (Some(delay_ms), Some(pending_ms)) => PdpLag::Local {
                delay_ms,
                pending_ms,
            },
            _ => PdpLag::Unknown,
        }
    }

    /// `Some(true)` when the PDP has every write, `None` when it cannot tell.
    fn up_to_date(&self) -> Option<bool> {
        match self {
            PdpLag::Local { pending_ms, .. } => Some(*pending_ms == 0),
            PdpLag::Unknown => None,
        }
    }

    fn json(&self) -> Value {
        match self {
            PdpLag::Local {
                delay_ms,
                pending_ms,
            } => json!({"reports_lag": true, "delay_ms": delay_ms, "pending_ms": pending_ms,
                "up_to_date": *pending_ms == 0}),
            PdpLag::Unknown => json!({"reports_lag": false, "up_to_date": null,
                "note": UNKNOWN_LAG_NOTE}),
        }
    }
}

const UNKNOWN_LAG_NOTE: &str = "this PDP does not say how far behind writes it is; a Permit PDP \
    gets writes seconds after the API returns, so right after a change use --expect with --wait";

/// One answer of the PDP.
struct Answer {
    allow: bool,
    lag: PdpLag,
}

/// A failed ask; `retry` when it may pass later (the PDP unreachable, a 5xx or a 429).
struct AskError {
    retry: bool,
    error: anyhow::Error,
}

async fn ask(
    http: &reqwest::Client,
    url: &str,
    key: &str,
    body: &Value,
) -> Result<Answer, AskError> {
    let fail = |retry: bool, error: anyhow::Error| AskError { retry, error };
    let resp = http
        .post(url)
        .bearer_auth(key)
        .json(body)
        .send()
        .await
        .with_context(|| format!("asking the PDP at {url}"))
        .map_err(|e| fail(true, e))?;
    let status = resp.status();
    let lag = PdpLag::from_headers(resp.headers());
    let text = resp.text().await.unwrap_or_default();
    if !status.is_success() {
        let retry = status.is_server_error() || status == reqwest::StatusCode::TOO_MANY_REQUESTS;
        let error = anyhow::anyhow!("the PDP at {url} answered {status}: {}", text.trim());
        return Err(fail(retry, error));
    }
    let answer: Value = serde_json::from_str(&text)
        .with_context(|| format!("the PDP at {url} answered no JSON"))
        .map_err(|e| fail(false, e))?;
    let allow = answer
        .get("allow")
        .and_then(Value::as_bool)
        .with_context(|| format!("the PDP at {url} answered without `allow`"))
        .map_err(|e| fail(false, e))?;
    Ok(Answer { allow, lag })
}

/// Asks until an answer comes, retrying what may pass (unreachable, 5xx, 429) until `deadline`.
async fn ask_until(
    http: &reqwest::Client,
    url: &str,
    key: &str,
    body: &Value,
    deadline: Instant,
    attempts: &mut u32,
) -> anyhow::Result<Answer> {
    loop {
        *attempts += 1;
        match ask(http, url, key, body).await {
            Ok(answer) => return Ok(answer),
            Err(AskError { retry, error }) => {
                let left = deadline.saturating_duration_since(Instant::now());
                if !retry || left.is_zero() {
                    return Err(error);
                }
                tokio::time::sleep(POLL_INTERVAL.min(left)).await;
            }
        }
    }
}

/// Whether to stop asking: the answer is the expected one, or can no longer change (the local PDP
/// has every write), or there is nothing known to wait for.
fn settled(answer: &Answer, expect: Option<bool>) -> bool {
    if expect == Some(answer.allow) {
        return true;
    }
    match answer.lag.up_to_date() {
        Some(up_to_date) => up_to_date,
        None => expect.is_none(),
    }
}

/// How long to sleep before asking again, at most `left`.
fn next_ask(answer: &Answer, left: Duration) -> Duration {
    let until = match answer.lag {
        // The local PDP says when the pending writes are in: ask right after.
        PdpLag::Local { pending_ms, .. } => Duration::from_millis(pending_ms + 5),
        PdpLag::Unknown => POLL_INTERVAL,
    };
    until.min(left)
}

/// The `/allowed` request body, in the shape the official SDKs send.
pub fn allowed_body(user: &str, action: &str, resource: &str, tenant: &str) -> Value {
    let (rtype, rkey) = match resource.split_once(':') {
        Some((t, k)) => (t, Some(k)),
        None => (resource, None),
    };
    let mut res = json!({"type": rtype, "tenant": tenant, "context": {"tenant": tenant}});
    if let Some(k) = rkey {
        res["key"] = json!(k);
    }
    json!({"user": {"key": user}, "action": action, "resource": res, "context": {}})
}

/// Where `check` asks when no `--pdp-url` is given and no `dev` session runs.
pub const DEFAULT_PDP_URL: &str = "http://127.0.0.1:7766";

pub async fn run(args: CheckArgs) -> anyhow::Result<ExitCode> {
    // A running `permit-sync dev` records its embedded PDP; its key is used for that PDP only.
    let session = crate::pdp::dev::read_session();
    let pdp_url = args
        .pdp_url
        .clone()
        .or_else(|| session.as_ref().map(|s| s.pdp_url.clone()))
        .unwrap_or_else(|| DEFAULT_PDP_URL.to_string());
    let session_key = session
        .filter(|s| s.pdp_url.trim_end_matches('/') == pdp_url.trim_end_matches('/'))
        .map(|s| s.api_key);
    let key = match (&args.api_key, &args.api_key_file, session_key) {
        (_, Some(file), _) => std::fs::read_to_string(file)
            .with_context(|| format!("reading the API key file {}", file.display()))?
            .trim()
            .to_string(),
        (Some(k), None, _) => k.clone(),
        (None, None, Some(k)) => k,
        (None, None, None) => {
            bail!("no API key: set PERMIT_API_KEY, pass --api-key-file, or run `permit-sync dev`")
        }
    };
    let body = allowed_body(&args.user, &args.action, &args.resource, &args.tenant);
    let url = format!("{}/allowed", pdp_url.trim_end_matches('/'));
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()?;
    let expect = args.expect.as_deref().map(|e| e == "allow");
    let started = Instant::now();
    let bound = args.wait.unwrap_or_default();
    let deadline = started + bound;
    let mut attempts = 0u32;
    let mut answer = ask_until(&http, &url, &key, &body, deadline, &mut attempts).await?;
    while !settled(&answer, expect) {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        tokio::time::sleep(next_ask(&answer, left)).await;
        answer = ask_until(&http, &url, &key, &body, deadline, &mut attempts).await?;
    }
    let waited = started.elapsed();
    let allow = answer.allow;
    let decision = if allow { "allowed" } else { "denied" };
    let as_expected = expect.map(|e| e == allow);
    if args.output == "json" {
        let mut out = json!({
            "user": args.user, "action": args.action, "resource": args.resource,
            "tenant": args.tenant, "allow": allow, "decision": decision,
            "pdp": answer.lag.json(),
        });
        if let Some(e) = &args.expect {
            out["expected"] = json!(e);
            out["as_expected"] = json!(as_expected);
        }
        if args.wait.is_some() {
            out["attempts"] = json!(attempts);
            out["waited_ms"] = json!(waited.as_millis() as u64);
        }
        println!("{out}");
    } else {
        println!(
            "{decision}: {} may{} {} {} in tenant {}",
            args.user,
            if allow { "" } else { " not" },
            args.action,
            args.resource,
            args.tenant
        );
        // Notes go to stderr: stdout stays the one line scripts read.
        if let Some(note) = lag_note(&answer.lag, args.wait.is_some(), expect) {
            eprintln!("note: {note}");
        }
        if args.wait.is_some() && attempts > 1 {
            eprintln!("asked {attempts} times over {:.1}s", waited.as_secs_f64());
        }
        if as_expected == Some(false) {
            eprintln!(
                "not as expected: --expect {}",
                args.expect.as_deref().unwrap_or_default()
            );
        }
    }
    let ok = as_expected.unwrap_or(allow);
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_DENIED)
    })
}

/// What the text output says about the PDP's lag, if anything is worth saying.
fn lag_note(lag: &PdpLag, waited: bool, expect: Option<bool>) -> Option<String> {
    match *lag {
        PdpLag::Local { pending_ms: 0, .. } => None,
        PdpLag::Local {
            delay_ms,
            pending_ms,
        } => Some(format!(
            "the local PDP decides on the data as it was {delay_ms} ms ago (--pdp-delay): the \
             latest write, {:.1}s ago, is not in this answer yet; it will be in {:.1}s{}",
            delay_ms.saturating_sub(pending_ms) as f64 / 1000.0,
            pending_ms as f64 / 1000.0,
            if waited { "" } else { " (--wait waits for it)" }
        )),
        PdpLag::Unknown if waited && expect.is_none() => Some(
            "--wait without --expect waits only for a PDP that reports its lag (the local PDP); \
             this one does not, so it was asked once"
                .into(),
        ),
        PdpLag::Unknown if waited => None,
        PdpLag::Unknown => Some(UNKNOWN_LAG_NOTE.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_follows_the_sdk_shape() {
        let b = allowed_body("jane@example.com", "read", "post", "acme");
        assert_eq!(b["user"]["key"], "jane@example.com");
        assert_eq!(b["resource"]["type"], "post");
        assert_eq!(b["resource"]["tenant"], "acme");
        assert_eq!(b["resource"]["context"]["tenant"], "acme");
        assert!(b["resource"].get("key").is_none());
        let b = allowed_body("u", "read", "post:42", "default");
        assert_eq!(b["resource"]["key"], "42");
    }
}
