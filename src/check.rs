//! `permit-sync check USER ACTION RESOURCE`: ask a PDP for one decision, as an application would.
//!
//! Exit codes are made for scripts: 0 allowed, 3 denied, 1 error.

use anyhow::{Context, bail};
use serde_json::{Value, json};
use std::process::ExitCode;

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
    let resp = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(10))
        .build()?
        .post(&url)
        .bearer_auth(&key)
        .json(&body)
        .send()
        .await
        .with_context(|| format!("asking the PDP at {url}"))?;
    let status = resp.status();
    let text = resp.text().await.unwrap_or_default();
    if !status.is_success() {
        bail!("the PDP at {url} answered {status}: {}", text.trim());
    }
    let answer: Value = serde_json::from_str(&text)
        .with_context(|| format!("the PDP at {url} answered no JSON"))?;
    let allow = answer
        .get("allow")
        .and_then(Value::as_bool)
        .with_context(|| format!("the PDP at {url} answered without `allow`"))?;
    let decision = if allow { "allowed" } else { "denied" };
    if args.output == "json" {
        let out = json!({
            "user": args.user, "action": args.action, "resource": args.resource,
            "tenant": args.tenant, "allow": allow, "decision": decision,
        });
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
    }
    Ok(if allow {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_DENIED)
    })
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
