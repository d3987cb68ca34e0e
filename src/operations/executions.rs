//! Executions: StartPipelineExecution, StopPipelineExecution, GetPipelineExecution, ListPipelineExecutions.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};

use super::urls::{render, settings};
use super::{
    Ctx, PipelineExecutionIdOutput, execution_not_found, find, newest_first, page_size, pipeline_not_found, shown_type,
};
use crate::engine::commands::start::{Start, StartRefusal};
use crate::engine::commands::stop::{Stop, StopRefusal};
use crate::engine::step::StartRequest;
use crate::protocol::pagination::paginate;
use crate::protocol::{ApiError, ErrorCode, Reply};
use crate::state::catalogue::Catalogue;
use crate::state::declaration::ExecutionMode;
use crate::state::execution::{
    Execution, ExecutionStatus, ExecutionTrigger, ExecutionType, ResolvedVariable, RevisionOverride, RevisionType,
    TriggerType,
};
use crate::state::{PartitionData, Scope, Timestamp};

// --- StartPipelineExecution ---------------------------------------------------------------------------------------

#[derive(Deserialize)]
struct VariableOverride {
    name: String,
    value: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SourceRevisionInput {
    action_name: String,
    revision_type: RevisionType,
    revision_value: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StartPipelineExecutionInput {
    name: String,
    variables: Option<Vec<VariableOverride>>,
    client_request_token: Option<String>,
    source_revisions: Option<Vec<SourceRevisionInput>>,
}

/// StartPipelineExecution: a new execution with variable and source revision overrides; a replayed client request
/// token returns the first execution's id.
pub fn start_pipeline_execution(ctx: &Ctx, input: StartPipelineExecutionInput) -> Result<Reply, ApiError> {
    let variables = input.variables.unwrap_or_default();
    let mut seen = HashSet::new();
    for variable in &variables {
        if !seen.insert(variable.name.as_str()) {
            // Duplicates are refused before anything else, in AWS's words [NATIVE, issue 28].
            return Err(ApiError::validation(format!(
                "Variable names must be unique. The following variable name is already in use: {}",
                variable.name
            )));
        }
    }
    let overrides = input.source_revisions.unwrap_or_default();
    let request = StartRequest {
        trigger: ExecutionTrigger {
            trigger_type: TriggerType::StartPipelineExecution,
            trigger_detail: Some(ctx.caller_arn().into()),
        },
        variables: variables.into_iter().map(|v| (v.name, v.value)).collect(),
        overrides: overrides
            .into_iter()
            .map(|o| RevisionOverride {
                action_name: o.action_name,
                revision_type: o.revision_type,
                revision_value: o.revision_value,
                change_id: None,
                created: None,
            })
            .collect(),
    };
    let name = &input.name;
    let command = Start { request, client_token: input.client_request_token };
    let id = ctx.engine.apply(&ctx.scope, name, command)?.map_err(|refusal| match refusal {
        StartRefusal::PipelineNotFound => pipeline_not_found(&ctx.scope.account, name),
        // AWS's words [NATIVE, issue 28].
        StartRefusal::NotASourceAction { .. } => ApiError::validation(
            "The action name provided in the source revision is not valid. The action must be a source action in your \
             pipeline.",
        ),
        StartRefusal::RevisionTypeNotAllowed { action, revision_type, provider } => ApiError::validation(format!(
            "The revision type {} cannot be used with source action '{action}' (provider {provider}){}",
            revision_type.as_str(),
            if revision_type == RevisionType::S3ObjectKey {
                "; S3_OBJECT_KEY needs AllowOverrideForS3ObjectKey set to true on the action"
            } else {
                ""
            }
        )),
    })?;
    Reply::json(&PipelineExecutionIdOutput { pipeline_execution_id: id })
}

// --- StopPipelineExecution ----------------------------------------------------------------------------------------

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StopPipelineExecutionInput {
    pipeline_name: String,
    pipeline_execution_id: String,
    abandon: Option<bool>,
    reason: Option<String>,
}

/// StopPipelineExecution: stop and wait, or stop and abandon, with AWS's refusals.
pub fn stop_pipeline_execution(ctx: &Ctx, input: StopPipelineExecutionInput) -> Result<Reply, ApiError> {
    let id = input.pipeline_execution_id;
    let name = &input.pipeline_name;
    let refused = |refusal| match refusal {
        // AWS's wording for both refusals [NATIVE].
        StopRefusal::NotStoppable => ApiError::new(
            ErrorCode::PipelineExecutionNotStoppableException,
            format!(
                "The pipeline execution with ID '{id}' in '{name}' can't be stopped now. Either it does not exist \
                 in the pipeline, or the pipeline execution has no action executions in progress."
            ),
        ),
        StopRefusal::Duplicated => ApiError::new(
            ErrorCode::DuplicatedStopRequestException,
            format!(
                "The execution with ID {id} in {name} is already in a stopping state. If you already chose to \
                 stop and wait, you cannot make that request again. You can choose to stop and abandon now, but \
                 be aware that this option can lead to failed actions. If you already chose to stop and abandon, \
                 you cannot make that request again."
            ),
        ),
        StopRefusal::PipelineNotFound => pipeline_not_found(&ctx.scope.account, name),
    };
    let command = Stop { execution: id.clone(), abandon: input.abandon.unwrap_or(false), reason: input.reason };
    ctx.engine.apply(&ctx.scope, name, command)?.map_err(refused)?;
    Reply::json(&PipelineExecutionIdOutput { pipeline_execution_id: id })
}

// --- GetPipelineExecution / ListPipelineExecutions ----------------------------------------------------------------

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ArtifactRevisionOut {
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<String>,
    revision_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    revision_change_identifier: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    revision_summary: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    created: Option<Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    revision_url: Option<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct PipelineExecutionOut<'a> {
    pipeline_name: &'a str,
    pipeline_version: i32,
    pipeline_execution_id: String,
    status: ExecutionStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    status_summary: Option<&'a str>,
    artifact_revisions: Vec<ArtifactRevisionOut>,
    #[serde(skip_serializing_if = "Option::is_none")]
    variables: Option<&'a [ResolvedVariable]>,
    trigger: &'a ExecutionTrigger,
    execution_mode: ExecutionMode,
    /// AWS names the type of rollback executions only.
    #[serde(skip_serializing_if = "Option::is_none")]
    execution_type: Option<ExecutionType>,
    #[serde(skip_serializing_if = "Option::is_none")]
    rollback_metadata: Option<RollbackMetadataOut>,
}

/// `PipelineRollbackMetadata` / `PipelineExecutionSummary.rollbackMetadata`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct RollbackMetadataOut {
    rollback_target_pipeline_execution_id: String,
}

fn rollback_metadata(execution: &Execution) -> Option<RollbackMetadataOut> {
    execution
        .rollback_target
        .map(|target| RollbackMetadataOut { rollback_target_pipeline_execution_id: target.to_string() })
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct GetPipelineExecutionOutput<'a> {
    pipeline_execution: PipelineExecutionOut<'a>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GetPipelineExecutionInput {
    pipeline_name: String,
    pipeline_execution_id: String,
}

fn revision_url(
    data: &PartitionData,
    catalogue: &Catalogue,
    scope: &Scope,
    execution: &Execution,
    action_name: &str,
    revision: &str,
) -> Option<String> {
    let index = execution.declaration.stages.first()?.actions.iter().position(|a| a.name == action_name)?;
    let action = execution.declaration.stages.first()?.actions.get(index)?;
    let template = settings(data, catalogue, action, scope)?.revision_url_template?;
    render(&template, &execution.declaration, (0, index), scope, &[("RevisionId", revision)])
}

/// GetPipelineExecution: one execution with its artifact revisions, variables and trigger.
pub fn get_pipeline_execution(ctx: &Ctx, input: GetPipelineExecutionInput) -> Result<Reply, ApiError> {
    let body = ctx.store.read(&ctx.scope, |data| {
        let record = find(data, &ctx.scope.account, &input.pipeline_name)?;
        let execution = record
            .runtime
            .get(&input.pipeline_execution_id)
            .ok_or_else(|| execution_not_found(&input.pipeline_name, &input.pipeline_execution_id))?;
        let artifact_revisions = execution
            .sources
            .iter()
            .map(|(index, r)| {
                let (action, artifact) = execution.source_names(*index);
                ArtifactRevisionOut {
                    name: artifact.map(str::to_string),
                    revision_id: r.revision_id.clone(),
                    revision_change_identifier: r.change_id().map(str::to_string),
                    revision_summary: r.summary.as_deref().map(str::to_string),
                    created: r.created,
                    revision_url: revision_url(data, ctx.catalogue, &ctx.scope, execution, action, &r.revision_id),
                }
            })
            .collect();
        let output = GetPipelineExecutionOutput {
            pipeline_execution: PipelineExecutionOut {
                pipeline_name: &input.pipeline_name,
                pipeline_version: execution.pipeline_version,
                pipeline_execution_id: execution.id.to_string(),
                status: execution.status,
                status_summary: execution.status_summary.as_deref(),
                artifact_revisions,
                // An execution that failed at start for a missing required variable shows none [issue 28].
                variables: (!execution.variables.is_empty()).then_some(&execution.variables[..]),
                trigger: &execution.trigger,
                execution_mode: execution.mode,
                execution_type: shown_type(execution.execution_type),
                rollback_metadata: rollback_metadata(execution),
            },
        };
        Reply::json(&output)
    })?;
    Ok(body)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SucceededInStageFilter {
    stage_name: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PipelineExecutionFilter {
    succeeded_in_stage: Option<SucceededInStageFilter>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListPipelineExecutionsInput {
    pipeline_name: String,
    max_results: Option<i32>,
    filter: Option<PipelineExecutionFilter>,
    next_token: Option<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SourceRevisionOut {
    action_name: String,
    revision_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    revision_summary: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    revision_url: Option<String>,
}

#[derive(Serialize)]
struct StopTriggerOut {
    reason: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct PipelineExecutionSummaryOut {
    pipeline_execution_id: String,
    status: ExecutionStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    status_summary: Option<String>,
    start_time: Timestamp,
    last_update_time: Timestamp,
    source_revisions: Vec<SourceRevisionOut>,
    trigger: ExecutionTrigger,
    #[serde(skip_serializing_if = "Option::is_none")]
    stop_trigger: Option<StopTriggerOut>,
    execution_mode: ExecutionMode,
    /// AWS names the type of rollback executions only.
    #[serde(skip_serializing_if = "Option::is_none")]
    execution_type: Option<ExecutionType>,
    #[serde(skip_serializing_if = "Option::is_none")]
    rollback_metadata: Option<RollbackMetadataOut>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ListPipelineExecutionsOutput {
    pipeline_execution_summaries: Vec<PipelineExecutionSummaryOut>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_token: Option<String>,
}

/// ListPipelineExecutions: newest first; `succeededInStage` keeps executions of the current version that
/// succeeded in the named stage.
pub fn list_pipeline_executions(ctx: &Ctx, input: ListPipelineExecutionsInput) -> Result<Reply, ApiError> {
    let max = page_size(input.max_results, 100);
    let stage_filter = input.filter.and_then(|f| f.succeeded_in_stage).and_then(|s| s.stage_name);
    let page = ctx.store.read(&ctx.scope, |data| {
        let record = find(data, &ctx.scope.account, &input.pipeline_name)?;
        let version = record.version();
        let selected = record.runtime.executions.iter().rev().filter(|e| match &stage_filter {
            None => true,
            Some(stage) => {
                e.pipeline_version == version
                    && e.declaration.stages.iter().position(|s| &s.name == stage).is_some_and(|i| {
                        e.stages
                            .get(i)
                            .and_then(Option::as_ref)
                            .is_some_and(|r| r.status == crate::state::execution::StageStatus::Succeeded)
                    })
            }
        });
        let page = paginate(
            &ctx.page_kind("ListPipelineExecutions", Some(&input.pipeline_name)),
            selected,
            |e| newest_first(e.seq),
            input.next_token.as_deref(),
            max,
        )?;
        let summaries = page
            .items
            .into_iter()
            .map(|e| PipelineExecutionSummaryOut {
                pipeline_execution_id: e.id.to_string(),
                status: e.status,
                status_summary: e.status_summary.as_deref().map(str::to_string),
                start_time: e.start_time,
                last_update_time: e.last_update_time,
                source_revisions: e
                    .sources
                    .iter()
                    .map(|(index, r)| {
                        let (action, _) = e.source_names(*index);
                        SourceRevisionOut {
                            action_name: action.to_string(),
                            revision_id: r.revision_id.clone(),
                            revision_summary: r.summary.as_deref().map(str::to_string),
                            revision_url: revision_url(data, ctx.catalogue, &ctx.scope, e, action, &r.revision_id),
                        }
                    })
                    .collect(),
                trigger: e.trigger.clone(),
                stop_trigger: e.stop.as_ref().and_then(|s| s.reason.clone()).map(|reason| StopTriggerOut { reason }),
                execution_mode: e.mode,
                execution_type: shown_type(e.execution_type),
                rollback_metadata: rollback_metadata(e),
            })
            .collect();
        Ok::<_, ApiError>(ListPipelineExecutionsOutput {
            pipeline_execution_summaries: summaries,
            next_token: page.next_token,
        })
    })?;
    Reply::json(&page)
}
