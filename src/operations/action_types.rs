//! Action and rule types: ListActionTypes, CreateCustomActionType, DeleteCustomActionType, GetActionType,
//! UpdateActionType, ListRuleTypes.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};

use super::tags::{action_type_arn, check_new_tags, tag_map};
use super::{Ctx, action_type_not_available};
use crate::protocol::pagination::paginate;
use crate::protocol::{ApiError, ErrorCode, Reply};
use crate::state::CustomActionTypeRecord;
use crate::state::catalogue::{
    ActionType, ActionTypeDeclaration, ActionTypeSettings, ArtifactDetails, ConfigurationProperty, RuleType,
};
use crate::state::declaration::{ActionCategory, ActionOwner, ActionTypeId, Tag};

/// Custom action types per account and region (Appendix B).
pub const MAX_CUSTOM_ACTION_TYPES: usize = 50;

/// Page size of ListActionTypes, which has no `maxResults`. The built-in types fit on one page; an account with
/// many custom types gets a second.
const ACTION_TYPES_PAGE: usize = 50;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListActionTypesInput {
    action_owner_filter: Option<ActionOwner>,
    next_token: Option<String>,
    /// Every built-in type is offered in every region here, so the filter selects nothing out.
    #[allow(dead_code)]
    region_filter: Option<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ListActionTypesOutput {
    action_types: Vec<ActionType>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_token: Option<String>,
}

fn id_key(id: &ActionTypeId) -> String {
    format!("{}/{}/{}", id.category.as_str(), id.provider, id.version)
}

/// ListActionTypes: built-in types (as updated in this account) in AWS's order, then partner types registered
/// through the emulator, then the account's custom types, each of those by id. Each comes with the key that
/// orders it, which page tokens remember.
pub fn list_action_types(ctx: &Ctx, input: ListActionTypesInput) -> Result<Reply, ApiError> {
    let all: Vec<(String, ActionType)> = ctx.store.read(&ctx.scope, |data| {
        let built_in = ctx.catalogue.action_types().iter().enumerate().filter_map(|(i, t)| {
            let found = data.action_type_in(ctx.catalogue, &t.id, &ctx.scope.region)?;
            Some((format!("0/{i:05}"), found.into_owned()))
        });
        built_in
            .chain(
                data.third_party_types
                    .values()
                    .map(|r| (format!("1/{}", id_key(&r.action_type.id)), r.action_type.clone())),
            )
            .chain(
                data.custom_action_types
                    .values()
                    .map(|r| (format!("2/{}", id_key(&r.action_type.id)), r.action_type.clone())),
            )
            .filter(|(_, t)| input.action_owner_filter.is_none_or(|owner| t.id.owner == owner))
            .collect()
    });
    let page = paginate(
        &ctx.page_kind("ListActionTypes", None),
        all,
        |(key, _)| key.clone(),
        input.next_token.as_deref(),
        ACTION_TYPES_PAGE,
    )?;
    let action_types = page.items.into_iter().map(|(_, t)| t).collect();
    Reply::json(&ListActionTypesOutput { action_types, next_token: page.next_token })
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateCustomActionTypeInput {
    category: ActionCategory,
    provider: String,
    version: String,
    settings: Option<ActionTypeSettings>,
    configuration_properties: Option<Vec<ConfigurationProperty>>,
    input_artifact_details: ArtifactDetails,
    output_artifact_details: ArtifactDetails,
    tags: Option<Vec<Tag>>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct CreateCustomActionTypeOutput<'a> {
    action_type: &'a ActionType,
    #[serde(skip_serializing_if = "Option::is_none")]
    tags: Option<&'a [Tag]>,
}

fn check_artifact_details(details: &ArtifactDetails, which: &str) -> Result<(), ApiError> {
    if details.minimum_count > details.maximum_count {
        return Err(ApiError::validation(format!(
            "{which}.minimumCount ({}) must not be greater than {which}.maximumCount ({})",
            details.minimum_count, details.maximum_count
        )));
    }
    Ok(())
}

fn check_properties(properties: &[ConfigurationProperty]) -> Result<(), ApiError> {
    let mut names = HashSet::new();
    for property in properties {
        if !names.insert(property.name.as_str()) {
            return Err(ApiError::validation(format!(
                "Configuration property '{}' is declared more than once",
                property.name
            )));
        }
    }
    let queryable: Vec<_> = properties.iter().filter(|p| p.is_queryable()).collect();
    if queryable.len() > 1 {
        return Err(ApiError::validation("An action type can have at most one queryable configuration property"));
    }
    if let Some(property) = queryable.first()
        && (!property.required || property.secret)
    {
        return Err(ApiError::validation(format!(
            "The queryable configuration property '{}' must be required and must not be secret",
            property.name
        )));
    }
    Ok(())
}

/// URL templates may name only required, non-secret configuration properties (`{Config:Name}`) [UG,
/// behaviour.md §7.1]: a secret must never end up in a URL, and an optional one may be missing. A template that
/// names anything else is refused.
pub fn check_url_templates(
    settings: Option<&ActionTypeSettings>,
    properties: &[ConfigurationProperty],
) -> Result<(), ApiError> {
    let Some(settings) = settings else { return Ok(()) };
    let templates = [
        ("entityUrlTemplate", &settings.entity_url_template),
        ("executionUrlTemplate", &settings.execution_url_template),
        ("revisionUrlTemplate", &settings.revision_url_template),
    ];
    for (member, template) in templates {
        let Some(template) = template else { continue };
        let mut rest = template.as_str();
        while let Some(start) = rest.find("{Config:") {
            let after = &rest[start + "{Config:".len()..];
            let name = after.split('}').next().unwrap_or_default();
            let why = match properties.iter().find(|p| p.name == name) {
                None => Some("which the action type does not declare"),
                Some(p) if p.secret => Some("which is secret"),
                Some(p) if !p.required => Some("which is not required"),
                Some(_) => None,
            };
            if let Some(why) = why {
                return Err(ApiError::validation(format!(
                    "The {member} names configuration property '{name}', {why}; URL templates may name only \
                     required, non-secret configuration properties"
                )));
            }
            rest = after;
        }
    }
    Ok(())
}

/// CreateCustomActionType: registers an action type with owner `Custom` in this account and region.
pub fn create_custom_action_type(ctx: &Ctx, input: CreateCustomActionTypeInput) -> Result<Reply, ApiError> {
    let id = ActionTypeId {
        category: input.category,
        owner: ActionOwner::Custom,
        provider: input.provider,
        version: input.version,
    };
    let mut properties = input.configuration_properties.unwrap_or_default();
    for property in &mut properties {
        property.queryable.get_or_insert(false);
    }
    check_properties(&properties)?;
    check_url_templates(input.settings.as_ref(), &properties)?;
    check_artifact_details(&input.input_artifact_details, "inputArtifactDetails")?;
    check_artifact_details(&input.output_artifact_details, "outputArtifactDetails")?;
    let tags = input.tags;
    check_new_tags(tags.as_deref().unwrap_or_default(), None)?;
    let action_type = ActionType {
        id: id.clone(),
        settings: input.settings,
        action_configuration_properties: properties,
        input_artifact_details: input.input_artifact_details,
        output_artifact_details: input.output_artifact_details,
    };
    let arn = action_type_arn(ctx, &id);
    ctx.store.write(&ctx.scope, |data| {
        // Neither case is in the operation's modeled errors; the model's ActionTypeAlreadyExistsException fits.
        if data.custom_action_types.contains_key(&id) {
            return Err(ApiError::new(
                ErrorCode::ActionTypeAlreadyExistsException,
                format!("{} already exists", ActionType::describe(&id)),
            ));
        }
        if data.deleted_custom_action_types.contains(&id) {
            return Err(ApiError::new(
                ErrorCode::ActionTypeAlreadyExistsException,
                format!(
                    "{} was deleted and cannot be created again; create it with a new version",
                    ActionType::describe(&id)
                ),
            ));
        }
        if data.custom_action_types.len() >= MAX_CUSTOM_ACTION_TYPES {
            return Err(ApiError::new(
                ErrorCode::LimitExceededException,
                format!(
                    "The account already has {MAX_CUSTOM_ACTION_TYPES} custom action types in this region, the \
                     maximum allowed"
                ),
            ));
        }
        data.custom_action_types.insert(
            id.clone(),
            CustomActionTypeRecord {
                action_type: action_type.clone(),
                arn,
                tags: tag_map(tags.as_deref().unwrap_or_default()),
            },
        );
        Ok(())
    })??;
    Reply::json(&CreateCustomActionTypeOutput { action_type: &action_type, tags: tags.as_deref() })
}

#[derive(Deserialize)]
pub struct DeleteCustomActionTypeInput {
    category: ActionCategory,
    provider: String,
    version: String,
}

/// DeleteCustomActionType: the type disappears from lists and can no longer be used by new or updated pipelines;
/// its (category, provider, version) is never reusable. Deleting a type that does not exist succeeds (the
/// operation models no not-found error; UNCONFIRMED).
pub fn delete_custom_action_type(ctx: &Ctx, input: DeleteCustomActionTypeInput) -> Result<Reply, ApiError> {
    let id = ActionTypeId {
        category: input.category,
        owner: ActionOwner::Custom,
        provider: input.provider,
        version: input.version,
    };
    ctx.store.write(&ctx.scope, |data| {
        if data.custom_action_types.remove(&id).is_some() {
            data.deleted_custom_action_types.insert(id);
        }
    })?;
    Ok(Reply::Done)
}

#[derive(Deserialize)]
pub struct GetActionTypeInput {
    category: ActionCategory,
    owner: String,
    provider: String,
    version: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct GetActionTypeOutput {
    action_type: ActionTypeDeclaration,
}

fn owner_of(owner: &str) -> ActionOwner {
    if owner == "AWS" { ActionOwner::Aws } else { ActionOwner::ThirdParty }
}

/// GetActionType: an AWS or ThirdParty action type in the newer action-type model.
pub fn get_action_type(ctx: &Ctx, input: GetActionTypeInput) -> Result<Reply, ApiError> {
    let id = ActionTypeId {
        category: input.category,
        owner: owner_of(&input.owner),
        provider: input.provider,
        version: input.version,
    };
    let declaration = ctx.store.read(&ctx.scope, |data| {
        if let Some(updated) = data.action_type_updates.get(&id) {
            return Some(updated.clone());
        }
        // Partner types registered through the emulator, then the built-in catalogue.
        let registered = data.third_party_types.get(&id).map(|r| &r.action_type);
        match registered {
            Some(registered) => Some(ActionTypeDeclaration::from_action_type(registered)),
            None => ctx
                .catalogue
                .action_type(&id)
                .map(|t| ActionTypeDeclaration::from_action_type(&t.in_region(&ctx.scope.region))),
        }
    });
    let declaration = declaration.ok_or_else(|| action_type_not_available(&id))?;
    Reply::json(&GetActionTypeOutput { action_type: declaration })
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UpdateActionTypeInput {
    action_type: ActionTypeDeclaration,
}

/// UpdateActionType: replaces the definition of a ThirdParty action type (built-in, or a partner type registered
/// through the emulator) in this account and region; pipelines created or updated afterwards are validated against
/// it, and a partner type keeps its client token. AWS-owned types cannot be changed.
pub fn update_action_type(ctx: &Ctx, input: UpdateActionTypeInput) -> Result<Reply, ApiError> {
    let declaration = input.action_type;
    let id = ActionTypeId {
        category: declaration.id.category,
        owner: owner_of(&declaration.id.owner),
        provider: declaration.id.provider.clone(),
        version: declaration.id.version.clone(),
    };
    if id.owner == ActionOwner::Aws {
        return Err(ApiError::new(
            ErrorCode::RequestFailedException,
            format!("{} is owned by AWS and cannot be updated", ActionType::describe(&id)),
        ));
    }
    check_artifact_details(&declaration.input_artifact_details, "inputArtifactDetails")?;
    check_artifact_details(&declaration.output_artifact_details, "outputArtifactDetails")?;
    let executor = &declaration.executor;
    let configured = match executor.executor_type.as_str() {
        "Lambda" => executor.configuration.lambda_executor_configuration.is_some(),
        _ => executor.configuration.job_worker_executor_configuration.is_some(),
    };
    if !configured {
        return Err(ApiError::validation(format!(
            "An executor of type {} needs its matching configuration (lambdaExecutorConfiguration or \
             jobWorkerExecutorConfiguration)",
            executor.executor_type
        )));
    }
    let updated = declaration.to_action_type(id.owner);
    check_url_templates(updated.settings.as_ref(), &updated.action_configuration_properties)?;
    ctx.store.write(&ctx.scope, |data| {
        let known = data.action_type_updates.contains_key(&id)
            || data.third_party_types.contains_key(&id)
            || ctx.catalogue.action_type(&id).is_some();
        if !known {
            return Err(action_type_not_available(&id));
        }
        if let Some(partner) = data.third_party_types.get_mut(&id) {
            partner.action_type = updated;
        }
        data.action_type_updates.insert(id, declaration);
        Ok(())
    })??;
    Ok(Reply::Done)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListRuleTypesInput {
    /// `AWS` is the only owner of rule types, so the filter selects nothing out.
    #[allow(dead_code)]
    rule_owner_filter: Option<String>,
    /// Every rule type is offered in every region here.
    #[allow(dead_code)]
    region_filter: Option<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ListRuleTypesOutput<'a> {
    rule_types: &'a [RuleType],
}

/// ListRuleTypes: the rule types of stage conditions (not paginated).
pub fn list_rule_types(ctx: &Ctx, _input: ListRuleTypesInput) -> Result<Reply, ApiError> {
    Reply::json(&ListRuleTypesOutput { rule_types: ctx.catalogue.rule_types() })
}
