//! Webhooks: PutWebhook, ListWebhooks, DeleteWebhook, RegisterWebhookWithThirdParty,
//! DeregisterWebhookWithThirdParty.
//!
//! A webhook's URL points at this server (`<base>/webhooks/<region>/<id>`); the record keeps everything a POST to
//! it needs (target, filters, secret) for when webhook deliveries start executions.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use super::Ctx;
use super::tags::{check_new_tags, tag_list, tag_map};
use super::{find, page_size};
use crate::protocol::pagination::paginate;
use crate::protocol::{ApiError, ErrorCode, Reply};
use crate::state::declaration::{ActionCategory, Tag, WebhookAuthenticationType, WebhookDefinition};
use crate::state::{SECRET_MASK, Timestamp, WebhookRecord};

/// Webhooks per account and region (Appendix B).
pub const MAX_WEBHOOKS: usize = 300;

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ListWebhookItem {
    definition: WebhookDefinition,
    url: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    last_triggered: Option<Timestamp>,
    arn: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tags: Vec<Tag>,
}

impl ListWebhookItem {
    /// The item as AWS shows it: the secret token is never returned in clear.
    fn of(record: &WebhookRecord) -> ListWebhookItem {
        let mut definition = record.definition.clone();
        if let Some(secret) = definition.authentication_configuration.secret_token.as_mut() {
            *secret = SECRET_MASK.to_string();
        }
        ListWebhookItem {
            definition,
            url: record.url.clone(),
            last_triggered: record.last_triggered,
            arn: record.arn.clone(),
            tags: tag_list(&record.tags),
        }
    }
}

#[derive(Deserialize)]
pub struct PutWebhookInput {
    webhook: WebhookDefinition,
    tags: Option<Vec<Tag>>,
}

#[derive(Serialize)]
struct PutWebhookOutput {
    webhook: ListWebhookItem,
}

fn auth_error(message: impl Into<String>) -> ApiError {
    ApiError::new(ErrorCode::InvalidWebhookAuthenticationParametersException, message)
}

/// `GITHUB_HMAC` needs a secret token and `IP` a CIDR range (model documentation).
fn check_authentication(definition: &WebhookDefinition) -> Result<(), ApiError> {
    let config = &definition.authentication_configuration;
    match definition.authentication {
        WebhookAuthenticationType::GithubHmac if config.secret_token.is_none() => {
            Err(auth_error("GITHUB_HMAC authentication requires SecretToken in authenticationConfiguration"))
        }
        WebhookAuthenticationType::Ip => match config.allowed_ip_range.as_deref() {
            None => Err(auth_error("IP authentication requires AllowedIPRange in authenticationConfiguration")),
            Some(range) if parse_cidr(range).is_none() => Err(auth_error(format!(
                "AllowedIPRange '{range}' is not a valid CIDR range such as 10.0.0.0/16 or 2001:db8::/32"
            ))),
            Some(_) => Ok(()),
        },
        _ => Ok(()),
    }
}

/// Parses `address/prefix`.
pub fn parse_cidr(text: &str) -> Option<(IpAddr, u8)> {
    let (address, prefix) = text.trim().split_once('/')?;
    let address: IpAddr = address.parse().ok()?;
    let prefix: u8 = prefix.parse().ok()?;
    let max = if address.is_ipv4() { 32 } else { 128 };
    (prefix <= max).then_some((address, prefix))
}

/// How many recursive descents (`..`) a webhook filter's JSONPath may hold. Each one multiplies the work of a
/// delivery by the size of the payload (a path with four, over a 1.3 KB payload nested 120 deep, took 54 s of a
/// core), and webhook URLs answer anyone who can reach them; one is enough for every filter AWS documents.
pub const MAX_RECURSIVE_DESCENTS: usize = 1;

/// Refuses a filter whose JSONPath does not parse, or that would cost unbounded work on each delivery.
pub fn check_filters(definition: &WebhookDefinition) -> Result<(), ApiError> {
    for (index, filter) in definition.filters.iter().enumerate() {
        let refuse = |why: String| {
            ApiError::new(
                ErrorCode::InvalidWebhookFilterPatternException,
                format!("The jsonPath '{}' of filter {} {why}", filter.json_path, index + 1),
            )
        };
        if let Err(e) = serde_json_path::JsonPath::parse(&filter.json_path) {
            return Err(refuse(format!("is not a valid JSONPath expression: {e}")));
        }
        let descents = recursive_descents(&filter.json_path);
        if descents > MAX_RECURSIVE_DESCENTS {
            return Err(refuse(format!(
                "uses the recursive descent '..' {descents} times; a filter may use it at most \
                 {MAX_RECURSIVE_DESCENTS} time, since each one multiplies the work of every delivery"
            )));
        }
    }
    Ok(())
}

/// The `..` in a JSONPath, outside its string literals (nested queries of filter expressions included).
pub fn recursive_descents(path: &str) -> usize {
    let (mut count, mut quote, mut escaped, mut previous_dot) = (0, None, false, false);
    for c in path.chars() {
        match quote {
            Some(q) => {
                if escaped {
                    escaped = false;
                } else if c == '\\' {
                    escaped = true;
                } else if c == q {
                    quote = None;
                }
                previous_dot = false;
            }
            None => {
                if c == '.' && previous_dot {
                    count += 1;
                    previous_dot = false;
                    continue;
                }
                previous_dot = c == '.';
                if c == '\'' || c == '"' {
                    quote = Some(c);
                }
            }
        }
    }
    count
}

/// PutWebhook: creates a webhook, or replaces the definition of the webhook with the same name (which keeps its
/// URL).
pub fn put_webhook(ctx: &Ctx, input: PutWebhookInput) -> Result<Reply, ApiError> {
    let definition = input.webhook;
    check_authentication(&definition)?;
    check_filters(&definition)?;
    check_new_tags(input.tags.as_deref().unwrap_or_default(), None)?;
    let item = ctx.store.write(&ctx.scope, |data| {
        let pipeline = find(data, &ctx.scope.account, &definition.target_pipeline)?;
        let first_stage = pipeline.current().stages.first();
        let is_source = first_stage.is_some_and(|stage| {
            stage
                .actions
                .iter()
                .any(|a| a.name == definition.target_action && a.action_type_id.category == ActionCategory::Source)
        });
        if !is_source {
            // AWS's wording, as CloudFormation relays it [real error, boltops-tools/pipedream#7].
            return Err(ApiError::validation(format!(
                "Action with name {} was not found in the first stage of the pipeline",
                definition.target_action
            )));
        }
        let name = definition.name.clone();
        let record = match data.webhooks.get_mut(&name) {
            Some(existing) => {
                existing.definition = definition;
                if let Some(tags) = &input.tags {
                    existing.tags = tag_map(tags);
                }
                existing
            }
            None => {
                if data.webhooks.len() >= MAX_WEBHOOKS {
                    return Err(ApiError::new(
                        ErrorCode::LimitExceededException,
                        format!("The account already has {MAX_WEBHOOKS} webhooks in this region, the maximum allowed"),
                    ));
                }
                let id = uuid::Uuid::new_v4().simple().to_string();
                let record = WebhookRecord {
                    url: format!("{}/webhooks/{}/{id}", (ctx.base_url)(), ctx.scope.region),
                    arn: ctx.scope.arn(&format!("webhook:{name}")),
                    id,
                    definition,
                    tags: tag_map(input.tags.as_deref().unwrap_or_default()),
                    last_triggered: None,
                    registered: false,
                };
                data.webhooks.entry(name).or_insert(record)
            }
        };
        Ok(ListWebhookItem::of(record))
    })??;
    Reply::json(&PutWebhookOutput { webhook: item })
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListWebhooksInput {
    next_token: Option<String>,
    max_results: Option<i32>,
}

/// ListWebhooks' members are capitalised in the model.
#[derive(Serialize)]
struct ListWebhooksOutput {
    webhooks: Vec<ListWebhookItem>,
    #[serde(rename = "NextToken", skip_serializing_if = "Option::is_none")]
    next_token: Option<String>,
}

/// ListWebhooks: webhooks in name order, a page at a time.
pub fn list_webhooks(ctx: &Ctx, input: ListWebhooksInput) -> Result<Reply, ApiError> {
    let max = page_size(input.max_results, 100);
    let page = ctx.store.read(&ctx.scope, |data| {
        let items = data.webhooks.values().map(ListWebhookItem::of);
        paginate(
            &ctx.page_kind("ListWebhooks", None),
            items,
            |w| w.definition.name.clone(),
            input.next_token.as_deref(),
            max,
        )
    })?;
    Reply::json(&ListWebhooksOutput { webhooks: page.items, next_token: page.next_token })
}

#[derive(Deserialize)]
pub struct DeleteWebhookInput {
    name: String,
}

/// DeleteWebhook: removes the webhook (its URL stops working); deleting one that does not exist succeeds.
pub fn delete_webhook(ctx: &Ctx, input: DeleteWebhookInput) -> Result<Reply, ApiError> {
    ctx.store.write(&ctx.scope, |data| data.webhooks.remove(&input.name))?;
    Ok(Reply::Done)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WebhookNameInput {
    webhook_name: Option<String>,
}

fn set_registered(ctx: &Ctx, input: WebhookNameInput, registered: bool) -> Result<Reply, ApiError> {
    let Some(name) = input.webhook_name else {
        return Err(ApiError::new(ErrorCode::WebhookNotFoundException, "No webhookName was given"));
    };
    ctx.store.write(&ctx.scope, |data| match data.webhooks.get_mut(&name) {
        Some(webhook) => {
            webhook.registered = registered;
            Ok(())
        }
        None => Err(ApiError::new(
            ErrorCode::WebhookNotFoundException,
            format!("The webhook '{name}' does not exist in account '{}'", ctx.scope.account),
        )),
    })??;
    Ok(Reply::Done)
}

/// RegisterWebhookWithThirdParty: on AWS this creates the hook on GitHub; here it records that it was asked.
pub fn register_webhook(ctx: &Ctx, input: WebhookNameInput) -> Result<Reply, ApiError> {
    set_registered(ctx, input, true)
}

/// DeregisterWebhookWithThirdParty: the reverse of RegisterWebhookWithThirdParty.
pub fn deregister_webhook(ctx: &Ctx, input: WebhookNameInput) -> Result<Reply, ApiError> {
    set_registered(ctx, input, false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidr_ranges() {
        assert!(parse_cidr("10.0.0.0/8").is_some());
        assert!(parse_cidr("192.168.1.7/32").is_some());
        assert!(parse_cidr("2001:db8::/32").is_some());
        for bad in ["10.0.0.0", "10.0.0.0/33", "300.0.0.0/8", "abc/8", "10.0.0.0/x", "::/129", ""] {
            assert!(parse_cidr(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn recursive_descents_are_counted_outside_string_literals() {
        assert_eq!(recursive_descents("$.ref"), 0);
        assert_eq!(recursive_descents("$..name"), 1);
        assert_eq!(recursive_descents("$..*..*..*..*"), 4);
        assert_eq!(recursive_descents("$..[?@..id]"), 2);
        assert_eq!(recursive_descents("$['a..b'].c"), 0);
        assert_eq!(recursive_descents(r#"$["it\"s..x"]..y"#), 1);
    }
}
