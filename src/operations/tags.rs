//! Tags on pipelines, webhooks and custom action types: TagResource, UntagResource, ListTagsForResource.

use serde::{Deserialize, Serialize};

use super::Ctx;
use super::page_size;
use crate::protocol::pagination::paginate;
use crate::protocol::{ApiError, ErrorCode, Reply};
use crate::state::declaration::{ActionCategory, ActionOwner, ActionTypeId, Tag};
use crate::state::{PartitionData, Tags};

/// Tags per resource (Appendix B).
pub const MAX_TAGS: usize = 50;

/// Tags as stored, from a request's list (a repeated key keeps its last value).
pub fn tag_map(tags: &[Tag]) -> Tags {
    tags.iter().map(|t| (t.key.clone(), t.value.clone())).collect()
}

/// Tags as the API lists them.
pub fn tag_list(tags: &Tags) -> Vec<Tag> {
    tags.iter().map(|(key, value)| Tag { key: key.clone(), value: value.clone() }).collect()
}

/// Refuses reserved `aws:` keys, and more than 50 tags once `new` is merged into `existing`.
pub fn check_new_tags(new: &[Tag], existing: Option<&Tags>) -> Result<(), ApiError> {
    if let Some(tag) = new.iter().find(|t| is_reserved(&t.key)) {
        return Err(reserved(&tag.key));
    }
    // How many tags the resource would have: its own, and the new keys (counted once) it does not have yet.
    let mut added: Vec<&str> =
        new.iter().map(|t| t.key.as_str()).filter(|key| existing.is_none_or(|tags| !tags.contains_key(*key))).collect();
    added.sort_unstable();
    added.dedup();
    let total = existing.map_or(0, Tags::len) + added.len();
    if total > MAX_TAGS {
        return Err(ApiError::new(
            ErrorCode::TooManyTagsException,
            format!("A resource can have at most {MAX_TAGS} tags; this request would give it {total}"),
        ));
    }
    Ok(())
}

fn is_reserved(key: &str) -> bool {
    key.get(..4).is_some_and(|prefix| prefix.eq_ignore_ascii_case("aws:"))
}

fn reserved(key: &str) -> ApiError {
    ApiError::new(
        ErrorCode::InvalidTagsException,
        format!("Tag key '{key}' uses the prefix 'aws:', which is reserved for AWS use"),
    )
}

/// A taggable resource named by an ARN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resource {
    Pipeline(String),
    Webhook(String),
    ActionType(ActionTypeId),
}

/// Parses `arn:<partition>:codepipeline:<region>:<account>:<resource>`, where the resource is a pipeline name,
/// `webhook:<name>` or `actiontype:Custom/<Category>/<Provider>/<Version>`. The model pattern has already been
/// checked; an ARN that matches it but names no kind of resource is `InvalidArnException`.
pub fn parse_arn(arn: &str) -> Result<(&str, &str, Resource), ApiError> {
    let invalid = || {
        ApiError::new(
            ErrorCode::InvalidArnException,
            format!("The ARN '{arn}' is not a valid CodePipeline resource ARN"),
        )
    };
    let mut parts = arn.splitn(6, ':');
    let mut next = || parts.next().ok_or_else(invalid);
    let (_, _, service, region, account, resource) = (next()?, next()?, next()?, next()?, next()?, next()?);
    if service != "codepipeline" {
        return Err(invalid());
    }
    let is_name =
        |s: &str| (1..=100).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphanumeric() || b".@-_".contains(&b));
    let resource = if let Some(name) = resource.strip_prefix("webhook:") {
        is_name(name).then(|| Resource::Webhook(name.to_string()))
    } else if let Some(id) = resource.strip_prefix("actiontype:") {
        parse_action_type(id).map(Resource::ActionType)
    } else {
        is_name(resource).then(|| Resource::Pipeline(resource.to_string()))
    };
    let resource = resource.ok_or_else(invalid)?;
    Ok((account, region, resource))
}

fn parse_action_type(text: &str) -> Option<ActionTypeId> {
    let mut parts = text.split('/');
    let (owner, category, provider, version) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || owner != "Custom" || provider.is_empty() || version.is_empty() {
        return None;
    }
    let category: ActionCategory = serde_json::from_value(serde_json::Value::String(category.to_string())).ok()?;
    Some(ActionTypeId {
        category,
        owner: ActionOwner::Custom,
        provider: provider.to_string(),
        version: version.to_string(),
    })
}

/// The ARN of a custom action type.
pub fn action_type_arn(ctx: &Ctx, id: &ActionTypeId) -> String {
    ctx.scope.arn(&format!("actiontype:Custom/{}/{}/{}", id.category.as_str(), id.provider, id.version))
}

fn not_found(arn: &str) -> ApiError {
    ApiError::new(ErrorCode::ResourceNotFoundException, format!("The resource with ARN '{arn}' does not exist"))
}

/// Runs `f` on the tags of the resource named by `arn`, in the request's account and region.
fn with_tags<R>(ctx: &Ctx, arn: &str, f: impl FnOnce(&mut Tags) -> Result<R, ApiError>) -> Result<R, ApiError> {
    let (account, region, resource) = parse_arn(arn)?;
    if account != ctx.scope.account || region != ctx.scope.region {
        return Err(not_found(arn));
    }
    ctx.store.write(&ctx.scope, |data| {
        let tags = resource_tags(data, &resource).ok_or_else(|| not_found(arn))?;
        f(tags)
    })?
}

fn resource_tags<'d>(data: &'d mut PartitionData, resource: &Resource) -> Option<&'d mut Tags> {
    match resource {
        Resource::Pipeline(name) => data.pipelines.get_mut(name).map(|p| &mut p.tags),
        Resource::Webhook(name) => data.webhooks.get_mut(name).map(|w| &mut w.tags),
        Resource::ActionType(id) => data.custom_action_types.get_mut(id).map(|t| &mut t.tags),
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TagResourceInput {
    resource_arn: String,
    tags: Vec<Tag>,
}

/// TagResource: adds tags, replacing the values of keys the resource already has.
pub fn tag_resource(ctx: &Ctx, input: TagResourceInput) -> Result<Reply, ApiError> {
    with_tags(ctx, &input.resource_arn, |tags| {
        check_new_tags(&input.tags, Some(tags))?;
        for tag in input.tags {
            tags.insert(tag.key, tag.value);
        }
        Ok(())
    })?;
    Ok(Reply::Done)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UntagResourceInput {
    resource_arn: String,
    tag_keys: Vec<String>,
}

/// UntagResource: removes tags by key; keys the resource does not have are ignored.
pub fn untag_resource(ctx: &Ctx, input: UntagResourceInput) -> Result<Reply, ApiError> {
    if let Some(key) = input.tag_keys.iter().find(|k| is_reserved(k)) {
        return Err(reserved(key));
    }
    with_tags(ctx, &input.resource_arn, |tags| {
        for key in &input.tag_keys {
            tags.remove(key);
        }
        Ok(())
    })?;
    Ok(Reply::Done)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListTagsForResourceInput {
    resource_arn: String,
    next_token: Option<String>,
    max_results: Option<i32>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ListTagsForResourceOutput {
    tags: Vec<Tag>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_token: Option<String>,
}

/// ListTagsForResource: the resource's tags in key order, a page at a time.
pub fn list_tags_for_resource(ctx: &Ctx, input: ListTagsForResourceInput) -> Result<Reply, ApiError> {
    let all = with_tags(ctx, &input.resource_arn, |tags| Ok(tag_list(tags)))?;
    let page = paginate(
        &ctx.page_kind("ListTagsForResource", Some(&input.resource_arn)),
        all,
        |t| t.key.clone(),
        input.next_token.as_deref(),
        page_size(input.max_results, 100),
    )?;
    Reply::json(&ListTagsForResourceOutput { tags: page.items, next_token: page.next_token })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arns_of_each_resource_kind_parse() {
        let (account, region, resource) = parse_arn("arn:aws:codepipeline:us-east-1:123456789012:my-pipe").expect("ok");
        assert_eq!((account, region), ("123456789012", "us-east-1"));
        assert_eq!(resource, Resource::Pipeline("my-pipe".into()));
        let (_, _, resource) = parse_arn("arn:aws:codepipeline:us-east-1:123456789012:webhook:hook-1").expect("ok");
        assert_eq!(resource, Resource::Webhook("hook-1".into()));
        let (_, _, resource) =
            parse_arn("arn:aws:codepipeline:eu-west-1:123456789012:actiontype:Custom/Build/Jenkins/2").expect("ok");
        assert_eq!(
            resource,
            Resource::ActionType(ActionTypeId {
                category: ActionCategory::Build,
                owner: ActionOwner::Custom,
                provider: "Jenkins".into(),
                version: "2".into()
            })
        );
    }

    #[test]
    fn malformed_resources_are_invalid_arns() {
        for arn in [
            "arn:aws:codepipeline:us-east-1:123456789012:webhook:",
            "arn:aws:codepipeline:us-east-1:123456789012:has space",
            "arn:aws:codepipeline:us-east-1:123456789012:actiontype:AWS/Build/CodeBuild/1",
            "arn:aws:codepipeline:us-east-1:123456789012:actiontype:Custom/Cooking/X/1",
            "arn:aws:codepipeline:us-east-1:123456789012:actiontype:Custom/Build/X",
            "arn:aws:codepipeline:us-east-1:123456789012:a:b",
        ] {
            assert_eq!(parse_arn(arn).expect_err(arn).code, ErrorCode::InvalidArnException, "{arn}");
        }
    }

    #[test]
    fn tag_rules() {
        let tag = |k: &str| Tag { key: k.into(), value: "v".into() };
        assert_eq!(check_new_tags(&[tag("AWS:x")], None).expect_err("reserved").code, ErrorCode::InvalidTagsException);
        let many: Vec<Tag> = (0..51).map(|i| tag(&format!("k{i}"))).collect();
        assert_eq!(check_new_tags(&many, None).expect_err("too many").code, ErrorCode::TooManyTagsException);
        let existing = tag_map(&many[..50]);
        assert!(check_new_tags(&many[..50], Some(&existing)).is_ok(), "replacing values adds nothing");
        assert!(check_new_tags(&many[50..], Some(&existing)).is_err());
    }
}
