//! IAM authorization of CodePipeline requests (`--enforce-iam`): what a request asks of IAM, as the Service
//! Authorization Reference lists it for CodePipeline, evaluated against the verified caller's identity-based policies.
//!
//! Each operation is its `codepipeline:<Operation>` action on its resource's ARN: a pipeline
//! (`arn:aws:codepipeline:<region>:<account>:<pipeline>`), a stage (`.../<pipeline>/<stage>`: transitions, retry,
//! rollback, condition overrides), an action (`.../<pipeline>/<stage>/<action>`: approvals, revisions), a webhook
//! (`...:webhook:<name>`), an action type (`...:actiontype:<owner>/<category>/<provider>/<version>`: custom types,
//! PollForJobs, UpdateActionType), the ARN given to the tagging operations, or, for the operations without a resource
//! type (job results, ListPipelines, ListActionTypes, GetActionType), `arn:aws:codepipeline:<region>:<account>:*` as
//! AWS names it in its refusals. PutWebhook needs both its pipeline and its webhook. The reference's dependent actions
//! are checked too: `iam:PassRole` on the pipeline's `roleArn` (with `iam:PassedToService` =
//! `codepipeline.amazonaws.com`) for CreatePipeline and UpdatePipeline; `codestar-connections:PassConnection` on each
//! `ConnectionArn` the pipeline uses; and `codepipeline:TagResource` for tags given at creation (CreatePipeline,
//! CreateCustomActionType, PutWebhook).
//!
//! Context keys: `aws:RequestedRegion`, `aws:PrincipalArn`, `aws:PrincipalAccount`, `aws:PrincipalType`,
//! `aws:username` (an IAM user's), `aws:PrincipalTag/*` (the credentials file's `tags`, or the IAM user's),
//! `aws:MultiFactorAuthPresent` (false with temporary keys, absent otherwise), `aws:ViaAWSService` (false),
//! `aws:SecureTransport` (false),
//! `aws:ResourceTag/*` (the tags of the resource; of its pipeline for a stage or an action: UNCONFIRMED, chosen as
//! stages and actions have no tags of their own), `aws:RequestTag/*` and `aws:TagKeys` (the request's tags; the
//! removed keys for UntagResource). An account's root user is not restricted by identity-based policies.

use serde_json::Value;

use super::Ctx;
use crate::protocol::policy::{Context, Decision, evaluate};
use crate::protocol::{ApiError, ErrorCode, Operation};
use crate::state::{PartitionData, Tags};

/// One question for IAM: may the caller do `action` on `resource`?
struct Check {
    action: String,
    resource: String,
    context: Context,
}

/// Refuses a request its caller's policies do not allow, with AWS's `AccessDeniedException`.
pub fn authorize(ctx: &Ctx, op: Operation, input: &Value) -> Result<(), ApiError> {
    let Some(principal) = &ctx.principal else { return Ok(()) };
    if principal.is_root() {
        return Ok(());
    }
    for check in checks(ctx, op, input) {
        let reason = match evaluate(&principal.compiled, &check.action, &check.resource, &check.context) {
            Decision::Allow => continue,
            Decision::ImplicitDeny => format!("because no identity-based policy allows the {} action", check.action),
            Decision::ExplicitDeny => "with an explicit deny in an identity-based policy".to_string(),
        };
        return Err(ApiError::new(
            ErrorCode::AccessDeniedException,
            format!(
                "User: {} is not authorized to perform: {} on resource: {} {reason}",
                principal.arn, check.action, check.resource
            ),
        ));
    }
    Ok(())
}

fn text<'v>(value: &'v Value, member: &str) -> &'v str {
    value.get(member).and_then(Value::as_str).unwrap_or_default()
}

/// The request's tags as context: `aws:RequestTag/<key>` and `aws:TagKeys`.
fn request_tags(context: &mut Context, tags: Option<&Value>) {
    let Some(tags) = tags.and_then(Value::as_array) else { return };
    let mut keys = Vec::new();
    for tag in tags {
        let key = text(tag, "key");
        context.set(&format!("aws:RequestTag/{key}"), vec![text(tag, "value").to_string()]);
        keys.push(key.to_string());
    }
    context.set("aws:TagKeys", keys);
}

fn resource_tags(context: &mut Context, tags: Option<Tags>) {
    for (key, value) in tags.unwrap_or_default() {
        context.set(&format!("aws:ResourceTag/{key}"), vec![value]);
    }
}

/// The resource an operation acts on, for its tags.
enum Owner {
    Nothing,
    Pipeline(String),
    Webhook(String),
    Arn(String),
    ActionType { category: String, provider: String, version: String },
}

fn tags_of(ctx: &Ctx, owner: &Owner) -> Option<Tags> {
    let read = |f: &dyn Fn(&PartitionData) -> Option<Tags>| ctx.store.read(&ctx.scope, |data| f(data));
    match owner {
        Owner::Nothing => None,
        Owner::Pipeline(name) => read(&|data| data.pipelines.get(name).map(|p| p.tags.clone())),
        Owner::Webhook(name) => read(&|data| data.webhooks.get(name).map(|w| w.tags.clone())),
        Owner::ActionType { category, provider, version } => read(&|data| {
            data.custom_action_types
                .iter()
                .find(|(id, _)| id.category.as_str() == category && id.provider == *provider && id.version == *version)
                .map(|(_, t)| t.tags.clone())
        }),
        Owner::Arn(arn) => {
            let (account, region, resource) = super::tags::parse_arn(arn).ok()?;
            if account != ctx.scope.account || region != ctx.scope.region {
                return None;
            }
            match resource {
                super::tags::Resource::Pipeline(name) => tags_of(ctx, &Owner::Pipeline(name)),
                super::tags::Resource::Webhook(name) => tags_of(ctx, &Owner::Webhook(name)),
                super::tags::Resource::ActionType(id) => tags_of(
                    ctx,
                    &Owner::ActionType {
                        category: id.category.as_str().to_string(),
                        provider: id.provider,
                        version: id.version,
                    },
                ),
            }
        }
    }
}

/// What `op` with `input` asks of IAM, in the order AWS would refuse them.
fn checks(ctx: &Ctx, op: Operation, input: &Value) -> Vec<Check> {
    use Operation as O;
    let scope = &ctx.scope;
    let pipeline = |name: &str| (scope.arn(name), Owner::Pipeline(name.to_string()));
    let stage = |name: &str, stage: &str| (scope.arn(&format!("{name}/{stage}")), Owner::Pipeline(name.to_string()));
    let everything = || (scope.arn("*"), Owner::Nothing);
    let type_arn = |owner: &str, value: &Value| {
        let (category, provider, version) = (text(value, "category"), text(value, "provider"), text(value, "version"));
        let arn = scope.arn(&format!("actiontype:{owner}/{category}/{provider}/{version}"));
        let owner = Owner::ActionType {
            category: category.to_string(),
            provider: provider.to_string(),
            version: version.to_string(),
        };
        (arn, owner)
    };
    let empty = Value::Null;
    let declaration = input.get("pipeline").unwrap_or(&empty);
    let webhook = input.get("webhook").unwrap_or(&empty);
    let mut targets = match op {
        O::CreatePipeline | O::UpdatePipeline => vec![pipeline(text(declaration, "name"))],
        O::GetPipeline | O::DeletePipeline | O::GetPipelineState | O::StartPipelineExecution => {
            vec![pipeline(text(input, "name"))]
        }
        O::GetPipelineExecution
        | O::ListPipelineExecutions
        | O::ListActionExecutions
        | O::ListRuleExecutions
        | O::ListDeployActionExecutionTargets
        | O::StopPipelineExecution => vec![pipeline(text(input, "pipelineName"))],
        O::DisableStageTransition
        | O::EnableStageTransition
        | O::RetryStageExecution
        | O::RollbackStage
        | O::OverrideStageCondition => vec![stage(text(input, "pipelineName"), text(input, "stageName"))],
        O::PutApprovalResult | O::PutActionRevision => {
            let name = text(input, "pipelineName");
            let arn = scope.arn(&format!("{name}/{}/{}", text(input, "stageName"), text(input, "actionName")));
            vec![(arn, Owner::Pipeline(name.to_string()))]
        }
        O::DeleteWebhook => {
            vec![(scope.arn(&format!("webhook:{}", text(input, "name"))), Owner::Webhook(text(input, "name").into()))]
        }
        O::RegisterWebhookWithThirdParty | O::DeregisterWebhookWithThirdParty => {
            let name = text(input, "webhookName");
            vec![(scope.arn(&format!("webhook:{name}")), Owner::Webhook(name.to_string()))]
        }
        O::ListWebhooks => vec![(scope.arn("webhook:*"), Owner::Nothing)],
        O::PutWebhook => {
            let name = text(webhook, "name");
            vec![
                pipeline(text(webhook, "targetPipeline")),
                (scope.arn(&format!("webhook:{name}")), Owner::Webhook(name.to_string())),
            ]
        }
        O::CreateCustomActionType | O::DeleteCustomActionType => vec![type_arn("Custom", input)],
        O::PollForJobs => {
            let id = input.get("actionTypeId").unwrap_or(&empty);
            vec![type_arn(text(id, "owner"), id)]
        }
        O::UpdateActionType => {
            let id = input.get("actionType").and_then(|t| t.get("id")).unwrap_or(&empty);
            vec![type_arn(text(id, "owner"), id)]
        }
        O::TagResource | O::UntagResource | O::ListTagsForResource => {
            let arn = text(input, "resourceArn");
            vec![(arn.to_string(), Owner::Arn(arn.to_string()))]
        }
        O::AcknowledgeJob
        | O::AcknowledgeThirdPartyJob
        | O::GetActionType
        | O::GetJobDetails
        | O::GetThirdPartyJobDetails
        | O::ListActionTypes
        | O::ListPipelines
        | O::ListRuleTypes
        | O::PollForThirdPartyJobs
        | O::PutJobFailureResult
        | O::PutJobSuccessResult
        | O::PutThirdPartyJobFailureResult
        | O::PutThirdPartyJobSuccessResult => vec![everything()],
    };
    let base = {
        let mut context = Context::default();
        context.set("aws:RequestedRegion", vec![scope.region.clone()]);
        context.set("aws:SecureTransport", vec!["false".into()]);
        context.set("aws:ViaAWSService", vec!["false".into()]);
        if let Some(principal) = &ctx.principal {
            context.set("aws:PrincipalArn", vec![principal.arn.clone()]);
            context.set("aws:PrincipalAccount", vec![principal.account.clone()]);
            context.set("aws:PrincipalType", vec![principal.principal_type().into()]);
            if let Some(name) = principal.user_name() {
                context.set("aws:username", vec![name.to_string()]);
            }
            for (key, value) in &principal.tags {
                context.set(&format!("aws:PrincipalTag/{key}"), vec![value.clone()]);
            }
            // Present with temporary keys (false: no MFA here), absent with long-term ones, as on AWS.
            if principal.session_token.is_some() {
                context.set("aws:MultiFactorAuthPresent", vec!["false".into()]);
            }
        }
        context
    };
    let mut checks = Vec::new();
    let action = format!("codepipeline:{}", op.name());
    for (resource, owner) in targets.drain(..) {
        let mut context = base.clone();
        resource_tags(&mut context, tags_of(ctx, &owner));
        match op {
            O::UntagResource => {
                let keys = input.get("tagKeys").and_then(Value::as_array).cloned().unwrap_or_default();
                context.set("aws:TagKeys", keys.iter().filter_map(Value::as_str).map(str::to_string).collect());
            }
            _ => request_tags(&mut context, input.get("tags")),
        }
        let tagging = matches!(op, O::CreatePipeline | O::CreateCustomActionType | O::PutWebhook)
            && input.get("tags").and_then(Value::as_array).is_some_and(|t| !t.is_empty())
            && !matches!(owner, Owner::Pipeline(_) if op == O::PutWebhook);
        checks.push(Check { action: action.clone(), resource: resource.clone(), context: context.clone() });
        if tagging {
            checks.push(Check { action: "codepipeline:TagResource".into(), resource, context });
        }
    }
    if matches!(op, O::CreatePipeline | O::UpdatePipeline) {
        let mut context = base.clone();
        context.set("iam:PassedToService", vec!["codepipeline.amazonaws.com".into()]);
        let role = text(declaration, "roleArn");
        checks.push(Check { action: "iam:PassRole".into(), resource: role.to_string(), context });
        let stages = declaration.get("stages").and_then(Value::as_array).cloned().unwrap_or_default();
        let mut connections: Vec<&str> = Vec::new();
        let actions = stages.iter().flat_map(|s| s.get("actions").and_then(Value::as_array).into_iter().flatten());
        for action in actions {
            let connection = action.get("configuration").and_then(|c| c.get("ConnectionArn")).and_then(Value::as_str);
            if let Some(connection) = connection.filter(|c| !connections.contains(c)) {
                connections.push(connection);
            }
        }
        for connection in connections {
            let mut context = base.clone();
            context.set("codestar-connections:PassedToService", vec!["codepipeline.amazonaws.com".into()]);
            checks.push(Check {
                action: "codestar-connections:PassConnection".into(),
                resource: connection.to_string(),
                context,
            });
        }
    }
    checks
}
