//! Revisions and deployments: PutActionRevision (a source action's new revision, through the engine) and
//! ListDeployActionExecutionTargets (the simulated targets of a deploy action).

use serde::{Deserialize, Serialize};

use super::{Ctx, action_not_found, page_size, pipeline_not_found, stage_not_found};
use crate::engine::commands::revision::{PushRefusal, PushRevision, Pushed};
use crate::engine::providers::{self, DeployTarget};
use crate::protocol::pagination::paginate;
use crate::protocol::{ApiError, ErrorCode, Reply};
use crate::state::Timestamp;
use crate::state::execution::{ExecutionTrigger, RevisionOverride, TriggerType};

// --- PutActionRevision ----------------------------------------------------------------------------------------------

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ActionRevisionInput {
    revision_id: String,
    revision_change_id: String,
    created: Timestamp,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PutActionRevisionInput {
    pipeline_name: String,
    stage_name: String,
    action_name: String,
    action_revision: ActionRevisionInput,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct PutActionRevisionOutput {
    new_revision: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pipeline_execution_id: Option<String>,
}

/// PutActionRevision: a revision a source action has not seen starts an execution that picks it up; the revision
/// it already has starts nothing.
pub fn put_action_revision(ctx: &Ctx, input: PutActionRevisionInput) -> Result<Reply, ApiError> {
    let (name, stage, action) = (&input.pipeline_name, &input.stage_name, &input.action_name);
    let revision = &input.action_revision;
    let command = PushRevision {
        stage: stage.clone(),
        trigger: ExecutionTrigger {
            trigger_type: TriggerType::PutActionRevision,
            trigger_detail: Some(ctx.caller_arn().into()),
        },
        revision: RevisionOverride {
            action_name: action.clone(),
            revision_type: crate::state::execution::RevisionType::ActionRevision,
            revision_value: revision.revision_id.clone(),
            change_id: Some(revision.revision_change_id.clone()),
            created: Some(revision.created),
        },
    };
    let pushed = ctx.engine.apply(&ctx.scope, name, command)?.map_err(|refusal| match refusal {
        PushRefusal::PipelineNotFound => pipeline_not_found(&ctx.scope.account, name),
        PushRefusal::StageNotFound => stage_not_found(name, stage),
        PushRefusal::ActionNotFound => action_not_found(name, stage, action),
        PushRefusal::NotASourceAction => ApiError::validation(format!(
            "Action '{action}' is not a source action; only source actions take revisions"
        )),
    })?;
    let output = match pushed {
        Pushed::New(id) => PutActionRevisionOutput { new_revision: true, pipeline_execution_id: Some(id) },
        Pushed::Known(id) => PutActionRevisionOutput { new_revision: false, pipeline_execution_id: id },
    };
    Reply::json(&output)
}

// --- ListDeployActionExecutionTargets -------------------------------------------------------------------------------

#[derive(Deserialize)]
struct TargetFilterInput {
    name: Option<String>,
    values: Option<Vec<String>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListDeployActionExecutionTargetsInput {
    pipeline_name: Option<String>,
    action_execution_id: String,
    filters: Option<Vec<TargetFilterInput>>,
    max_results: Option<i32>,
    next_token: Option<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ListDeployTargetsOutput {
    targets: Vec<DeployTarget>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_token: Option<String>,
}

/// ListDeployActionExecutionTargets: the targets of a deploy action execution, filtered by status.
pub fn list_deploy_action_execution_targets(
    ctx: &Ctx,
    input: ListDeployActionExecutionTargetsInput,
) -> Result<Reply, ApiError> {
    let now = ctx.now();
    let wanted = uuid::Uuid::parse_str(&input.action_execution_id).ok();
    let targets = ctx.store.read(&ctx.scope, |data| {
        if let Some(name) = &input.pipeline_name
            && !data.pipelines.contains_key(name)
        {
            return Err(pipeline_not_found(&ctx.scope.account, name));
        }
        let found = data
            .pipelines
            .iter()
            .filter(|(name, _)| input.pipeline_name.as_ref().is_none_or(|p| p == *name))
            .flat_map(|(_, r)| r.runtime.executions.iter())
            .find_map(|e| e.actions.iter().find(|r| Some(r.id) == wanted).map(|r| (e, r)));
        let Some((execution, run)) = found else {
            return Err(ApiError::new(
                ErrorCode::ActionExecutionNotFoundException,
                format!("Action execution with id '{}' does not exist", input.action_execution_id),
            ));
        };
        let action = execution.declaration.stages.get(run.stage()).and_then(|s| s.actions.get(run.action()));
        let provider = action.map_or("", |a| a.action_type_id.provider.as_str());
        let config = run.configuration(action);
        Ok(providers::deploy_targets(provider, run, config, now))
    })?;
    let statuses: Vec<String> = input
        .filters
        .iter()
        .flatten()
        .filter(|f| f.name.as_deref() == Some("TARGET_STATUS"))
        .flat_map(|f| f.values.iter().flatten().cloned())
        .collect();
    let selected = targets.into_iter().filter(|t| statuses.is_empty() || statuses.iter().any(|s| s == t.status));
    let page = paginate(
        &ctx.page_kind("ListDeployActionExecutionTargets", Some(&input.action_execution_id)),
        selected,
        |t| t.target_id.clone(),
        input.next_token.as_deref(),
        page_size(input.max_results, 100),
    )?;
    Reply::json(&ListDeployTargetsOutput { targets: page.items, next_token: page.next_token })
}
