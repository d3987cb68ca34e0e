//! Deliveries to V1 webhook URLs (`POST /webhooks/{region}/{id}`, integrations.md §3.2).
//!
//! 1. **Authenticate** as the webhook says: `GITHUB_HMAC` accepts a delivery whose `X-Hub-Signature-256`
//!    (`sha256=<hex>`) or `X-Hub-Signature` (`sha1=<hex>`) is the HMAC of the exact body bytes with the secret token
//!    (either header, compared in constant time; which one AWS checks is UNCONFIRMED); `IP` accepts a client address
//!    inside `AllowedIPRange` (the connection's peer, or with `--trust-forwarded-for` the first `X-Forwarded-For`
//!    address); `UNAUTHENTICATED` accepts all. A refusal is a 403 and starts nothing.
//! 2. **Filter**: every `{jsonPath, matchEquals}` must match the JSON body (GitHub's form-encoded `payload=` too).
//!    `{Key}` in `matchEquals` stands for the target action's configuration value of `Key`. A path that selects
//!    nothing does not match; a string is compared as it is, another value as its JSON text; of several values one
//!    must match; without `matchEquals` the path only has to select something (all UNCONFIRMED on AWS).
//! 3. **Start** the target pipeline with trigger `Webhook` and the webhook's ARN as detail, and set `lastTriggered`.
//!    A GitHub push names its commit (`after`, read as `triggers::git` reads GitHub pushes): the source action picks
//!    up exactly that commit, with the pushed message. A GitHub `ping` and a push that deletes a branch start nothing.
//!
//! The answer is 200 JSON saying what happened, 404 for an unknown webhook, 400 for a body that is not JSON.

use super::{Within, start_within};
use std::net::{IpAddr, SocketAddr};

use axum::Json;
use axum::extract::{ConnectInfo, Path, Request, State};
use axum::http::HeaderMap;
use hmac::{Hmac, KeyInit, Mac};
use serde_json::{Value, json};

use crate::app::AppState;
use crate::operations::webhooks::parse_cidr;
use crate::protocol::body::{MAX_BODY_BYTES, read_limited};
use crate::protocol::{ApiError, ErrorCode};
use crate::state::Scope;
use crate::state::declaration::{WebhookAuthenticationType, WebhookDefinition, WebhookFilterRule};
use crate::state::execution::{ExecutionTrigger, RevisionOverride, RevisionType, TriggerType};
use crate::state::sources::{Commit, RepositoryKind};
use crate::store::Store;

/// A webhook found by the id in its URL.
struct Found {
    scope: Scope,
    definition: WebhookDefinition,
    arn: String,
}

/// `POST /webhooks/{region}/{id}`.
pub async fn deliver(
    State(app): State<AppState>,
    Path((region, id)): Path<(String, String)>,
    request: Request,
) -> Result<Json<Value>, ApiError> {
    let (parts, body) = request.into_parts();
    let bytes = read_limited(&parts.headers, body, MAX_BODY_BYTES, app.config().body_timeout).await?;
    let Some(found) = find(app.store(), &region, &id) else {
        return Err(ApiError::new(
            ErrorCode::NotFoundException,
            format!("No webhook has the URL /webhooks/{region}/{id}"),
        ));
    };
    let peer = parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip());
    let client = client_address(&parts.headers, peer, app.config().trust_forwarded_for);
    authenticate(&found.definition, &parts.headers, &bytes, client)?;
    let payload = payload(&parts.headers, &bytes)?;
    let name = found.definition.name.clone();
    let answer = |started: Option<String>, reason: Option<String>| {
        let mut body = json!({"webhook": name, "started": started.is_some()});
        if let Some(id) = started {
            body["pipelineName"] = json!(found.definition.target_pipeline);
            body["pipelineExecutionId"] = json!(id);
        }
        if let Some(reason) = reason {
            body["reason"] = json!(reason);
        }
        Json(body)
    };
    let event = parts.headers.get("x-github-event").and_then(|v| v.to_str().ok()).unwrap_or_default();
    if event == "ping" {
        return Ok(answer(None, Some("A GitHub ping: the webhook is reachable; nothing to start".into())));
    }
    let definition = &found.definition;
    let configuration = app.store().read(&found.scope, |data| {
        let record = data.pipelines.get(&definition.target_pipeline)?;
        let stage = record.current().stages.first()?;
        let index = stage.actions.iter().position(|a| a.name == definition.target_action)?;
        let action = stage.actions.get(index)?;
        let configuration = action.configuration.clone().unwrap_or_default();
        // The action's secret values stay out of the answer's reasons.
        let secrets: Vec<String> =
            configuration.keys().filter(|k| record.current().is_secret(0, index, k)).cloned().collect();
        Some(((configuration, secrets), action.action_type_id.provider.clone()))
    });
    let Some(((configuration, secrets), provider)) = configuration else {
        let reason = format!(
            "The target action {} of pipeline {} does not exist",
            definition.target_action, definition.target_pipeline
        );
        return Ok(answer(None, Some(reason)));
    };
    for (index, filter) in definition.filters.iter().enumerate() {
        if let Err(why) = filter_matches(filter, &configuration, &secrets, &payload) {
            return Ok(answer(None, Some(format!("Filter {} ({}) did not match: {why}", index + 1, filter.json_path))));
        }
    }
    // A GitHub push names its commit; it is read as the emulated connection reads one (`git::github`). Anything
    // else (the filters decided it) names none.
    let push = match super::git::payloads::github("push", &payload) {
        // The one push that is answered without an event deletes its ref.
        Ok((events, _)) if events.is_empty() => {
            return Ok(answer(None, Some("The push deletes its branch: there is nothing to build".into())));
        }
        Ok((mut events, _)) => {
            events.pop().filter(|e| e.commit.len() == 40 && e.commit.bytes().all(|b| b.is_ascii_hexdigit()))
        }
        Err(_) => None,
    };
    let trigger =
        ExecutionTrigger { trigger_type: TriggerType::Webhook, trigger_detail: Some(found.arn.as_str().into()) };
    let push = push.filter(|_| matches!(provider.as_str(), "GitHub" | "CodeStarSourceConnection"));
    let (engine, now) = (app.engine(), app.store().clock().now());
    // The commit it names, the start and the webhook's lastTriggered: saved together, or none of them.
    let started = app.store().write(&found.scope, |data| {
        let mut overrides = Vec::new();
        if let Some(push) = &push {
            let branch = match &push.kind {
                super::git::Kind::Push(super::git::Ref::Branch(branch)) => Some(branch.clone()),
                _ => None,
            };
            let message = push.message.clone().unwrap_or_default();
            let commit = Commit { message, author_date: push.author_date.clone(), branch: branch.clone() };
            let (repository, id) = (&push.repository, &push.commit);
            data.sources.put_commit(RepositoryKind::Connection, repository, None, branch.as_deref(), id, commit);
            overrides.push(RevisionOverride {
                action_name: definition.target_action.clone(),
                revision_type: RevisionType::CommitId,
                revision_value: push.commit.clone(),
                change_id: None,
                created: None,
            });
        }
        let mut within = Within { engine, data, scope: &found.scope, now };
        let started = start_within(&mut within, &definition.target_pipeline, trigger, overrides)?;
        if let Some(record) = data.webhooks.get_mut(&definition.name) {
            record.last_triggered = Some(now);
        }
        Ok(started)
    })?;
    match started {
        Ok(execution) => Ok(answer(Some(execution), None)),
        Err(reason) => Ok(answer(None, Some(reason))),
    }
}

/// The webhook whose URL ends in `region`/`id`, in whichever account holds it.
fn find(store: &Store, region: &str, id: &str) -> Option<Found> {
    store.scopes().into_iter().filter(|scope| scope.region == region).find_map(|scope| {
        let found = store.read(&scope, |data| {
            data.webhooks.values().find(|w| w.id == id).map(|w| (w.definition.clone(), w.arn.clone()))
        });
        found.map(|(definition, arn)| Found { scope, definition, arn })
    })
}

/// The client's address: the connection's peer, or with `trust_forwarded_for` the first `X-Forwarded-For` address.
fn client_address(headers: &HeaderMap, peer: Option<IpAddr>, trust_forwarded_for: bool) -> Option<IpAddr> {
    let forwarded = || {
        let value = headers.get("x-forwarded-for")?.to_str().ok()?;
        value.split(',').next()?.trim().parse().ok()
    };
    if trust_forwarded_for { forwarded().or(peer) } else { peer }
}

fn forbidden(message: impl Into<String>) -> ApiError {
    ApiError::new(ErrorCode::ForbiddenException, message)
}

/// Checks a delivery against the webhook's authentication.
fn authenticate(
    definition: &WebhookDefinition,
    headers: &HeaderMap,
    body: &[u8],
    client: Option<IpAddr>,
) -> Result<(), ApiError> {
    let config = &definition.authentication_configuration;
    match definition.authentication {
        WebhookAuthenticationType::Unauthenticated => Ok(()),
        WebhookAuthenticationType::GithubHmac => {
            let secret = config.secret_token.as_deref().unwrap_or_default().as_bytes();
            // Each header says its algorithm (Bitbucket, too, sends `sha256=` in X-Hub-Signature).
            let signatures: Vec<&str> = ["x-hub-signature-256", "x-hub-signature"]
                .iter()
                .filter_map(|name| headers.get(*name).and_then(|v| v.to_str().ok()))
                .collect();
            if signatures.is_empty() {
                return Err(forbidden(
                    "The delivery is not signed: GITHUB_HMAC needs X-Hub-Signature-256 (sha256=...) or X-Hub-Signature \
                     (sha1=...)",
                ));
            }
            let valid = signatures.iter().any(|signature| match signature.split_once('=') {
                Some(("sha256", hex)) => verify::<sha2::Sha256>(secret, body, hex),
                Some(("sha1", hex)) => verify::<sha1::Sha1>(secret, body, hex),
                _ => false,
            });
            if valid { Ok(()) } else { Err(forbidden("The delivery's signature does not match the webhook's secret")) }
        }
        WebhookAuthenticationType::Ip => {
            let range = config.allowed_ip_range.as_deref().and_then(parse_cidr);
            match (client, range) {
                (Some(address), Some(range)) if in_range(address, range) => Ok(()),
                (Some(address), _) => Err(forbidden(format!(
                    "The client address {address} is not in the webhook's AllowedIPRange {}",
                    config.allowed_ip_range.as_deref().unwrap_or_default()
                ))),
                (None, _) => Err(forbidden("The client address is unknown")),
            }
        }
    }
}

/// Whether `signature` (hex) is the HMAC of `body` with `secret`, compared in constant time.
fn verify<D>(secret: &[u8], body: &[u8], signature: &str) -> bool
where
    D: hmac::EagerHash,
    Hmac<D>: KeyInit + Mac,
{
    let Some(expected) = crate::protocol::pagination::hex_decode(signature.trim()) else { return false };
    let Ok(mut mac) = <Hmac<D> as KeyInit>::new_from_slice(secret) else { return false };
    mac.update(body);
    mac.verify_slice(&expected).is_ok()
}

/// Whether `address` is inside `range` (`address/prefix`); an IPv4 address also matches its IPv4-mapped IPv6 form.
fn in_range(address: IpAddr, (network, prefix): (IpAddr, u8)) -> bool {
    let address = match address {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(address, IpAddr::V4),
        v4 => v4,
    };
    match (address, network) {
        (IpAddr::V4(a), IpAddr::V4(n)) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
            u32::from(a) & mask == u32::from(n) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(n)) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
            u128::from(a) & mask == u128::from(n) & mask
        }
        _ => false,
    }
}

/// The delivery's JSON: the body, or GitHub's form-encoded `payload=` field.
fn payload(headers: &HeaderMap, body: &[u8]) -> Result<Value, ApiError> {
    let form = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim_start().starts_with("application/x-www-form-urlencoded"));
    let not_json = |e: String| ApiError::serialization(format!("The delivery is not a JSON document: {e}"));
    if form {
        let text = std::str::from_utf8(body).map_err(|e| not_json(e.to_string()))?;
        let field = text.split('&').find_map(|pair| pair.strip_prefix("payload="));
        let field = field.ok_or_else(|| not_json("the form has no payload field".into()))?;
        let decoded = percent_encoding::percent_decode_str(&field.replace('+', " ")).decode_utf8_lossy().into_owned();
        return serde_json::from_str(&decoded).map_err(|e| not_json(e.to_string()));
    }
    serde_json::from_slice(body).map_err(|e| not_json(e.to_string()))
}

/// Whether one filter matches; otherwise why not.
fn filter_matches(
    filter: &WebhookFilterRule,
    configuration: &std::collections::BTreeMap<String, String>,
    secrets: &[String],
    payload: &Value,
) -> Result<(), String> {
    // PutWebhook and the state import refuse such paths; a database written by an older build may still hold one.
    if crate::operations::webhooks::recursive_descents(&filter.json_path)
        > crate::operations::webhooks::MAX_RECURSIVE_DESCENTS
    {
        return Err("the path uses the recursive descent '..' more than once, which is not evaluated".into());
    }
    let path = serde_json_path::JsonPath::parse(&filter.json_path).map_err(|e| format!("invalid path: {e}"))?;
    let nodes = path.query(payload).all();
    if nodes.is_empty() {
        return Err("the path selects nothing in the delivery".into());
    }
    let Some(template) = &filter.match_equals else { return Ok(()) };
    let expected = resolve(template, configuration);
    let text = |value: &Value| match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    if nodes.iter().any(|node| text(node) == expected) {
        return Ok(());
    }
    let mut found = text(nodes[0]);
    if found.chars().count() > 100 {
        found = found.chars().take(100).collect::<String>() + "...";
    }
    // The resolved value says what to fix, unless a placeholder names a secret of the action: then the template.
    let names_secret = secrets.iter().any(|key| template.contains(&format!("{{{key}}}")));
    if names_secret {
        return Err(format!(
            "it selects '{found}', which is not '{template}' resolved with the target action's configuration"
        ));
    }
    Err(format!(
        "it selects '{found}', which is not '{expected}' (matchEquals '{template}' resolved with the target action's configuration)"
    ))
}

/// `matchEquals` with each `{Key}` replaced by the configuration value of `Key` (an unknown key stays as written).
fn resolve(template: &str, configuration: &std::collections::BTreeMap<String, String>) -> String {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        match after.find('}') {
            Some(close) if configuration.contains_key(&after[..close]) => {
                out.push_str(&configuration[&after[..close]]);
                rest = &after[close + 1..];
            }
            _ => {
                out.push('{');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_take_the_action_configuration() {
        let configuration = [("Branch".to_string(), "main".to_string()), ("Owner".into(), "acme".into())].into();
        assert_eq!(resolve("refs/heads/{Branch}", &configuration), "refs/heads/main");
        assert_eq!(resolve("{Owner}/{Repo}", &configuration), "acme/{Repo}");
        assert_eq!(resolve("{Branch", &configuration), "{Branch");
        assert_eq!(resolve("{}{Branch}{", &configuration), "{}main{");
    }

    #[test]
    fn filters_select_and_compare() {
        let payload = json!({"ref": "refs/heads/main", "n": 3, "commits": [{"id": "a"}, {"id": "b"}]});
        let configuration = [("Branch".to_string(), "main".to_string())].into();
        let rule = |path: &str, equals: Option<&str>| WebhookFilterRule {
            json_path: path.into(),
            match_equals: equals.map(str::to_string),
        };
        assert!(filter_matches(&rule("$.ref", Some("refs/heads/{Branch}")), &configuration, &[], &payload).is_ok());
        assert!(filter_matches(&rule("$.ref", Some("refs/heads/dev")), &configuration, &[], &payload).is_err());
        assert!(filter_matches(&rule("$.n", Some("3")), &configuration, &[], &payload).is_ok());
        assert!(filter_matches(&rule("$.commits[*].id", Some("b")), &configuration, &[], &payload).is_ok());
        assert!(filter_matches(&rule("$.missing", None), &configuration, &[], &payload).is_err());
        assert!(filter_matches(&rule("$.ref", None), &configuration, &[], &payload).is_ok());
        // A miss shows what the filter was resolved to, unless it names a secret of the action.
        let configuration = [("Branch".to_string(), "release".to_string()), ("Token".into(), "s3cret".into())].into();
        let miss = filter_matches(&rule("$.ref", Some("refs/heads/{Branch}")), &configuration, &[], &payload);
        assert_eq!(
            miss,
            Err("it selects 'refs/heads/main', which is not 'refs/heads/release' (matchEquals 'refs/heads/{Branch}' \
                 resolved with the target action's configuration)"
                .into())
        );
        let secret = filter_matches(&rule("$.ref", Some("{Token}")), &configuration, &["Token".into()], &payload);
        assert!(secret.as_ref().is_err_and(|e| !e.contains("s3cret") && e.contains("'{Token}'")), "{secret:?}");
    }

    #[test]
    fn address_ranges() {
        let range = |text: &str| parse_cidr(text).expect("cidr");
        let ip = |text: &str| text.parse::<IpAddr>().expect("ip");
        assert!(in_range(ip("192.30.252.7"), range("192.30.252.0/22")));
        assert!(!in_range(ip("192.30.250.7"), range("192.30.252.0/22")));
        assert!(in_range(ip("::ffff:10.1.2.3"), range("10.0.0.0/8")));
        assert!(in_range(ip("2001:db8::1"), range("2001:db8::/32")));
        assert!(!in_range(ip("10.1.2.3"), range("2001:db8::/32")));
        assert!(in_range(ip("8.8.8.8"), range("0.0.0.0/0")));
    }

    #[test]
    fn signatures_are_hmacs_of_the_body() {
        // GitHub's documented example: secret "It's a Secret to Everybody", body "Hello, World!".
        let signature = "757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
        assert!(verify::<sha2::Sha256>(b"It's a Secret to Everybody", b"Hello, World!", signature));
        assert!(!verify::<sha2::Sha256>(b"It's a Secret to Everybody", b"Hello, World?", signature));
        assert!(!verify::<sha2::Sha256>(b"secret", b"Hello, World!", "zz"));
    }
}
