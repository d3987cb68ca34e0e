//! Executions: StartPipelineExecution, StopPipelineExecution, GetPipelineState, GetPipelineExecution,
//! ListPipelineExecutions, ListActionExecutions, PutApprovalResult, DisableStageTransition, EnableStageTransition.

use std::collections::{BTreeMap, HashSet};

use serde::{Deserialize, Serialize};

use super::Ctx;
use super::conditions::{StageConditionStateOut, condition_state};
use super::pipelines::{find, page_size, pipeline_not_found};
use crate::engine::command::{Applied, ApprovalAnswer, ApprovalRefusal, Command, Refusal};
use crate::engine::step::{RetryRefusal, RollbackRefusal, StartRequest, StopRefusal};
use crate::protocol::pagination::{Page, paginate};
use crate::protocol::{ApiError, ErrorCode, Reply};
use crate::state::catalogue::{ActionTypeSettings, Catalogue};
use crate::state::declaration::{ActionCategory, ActionDeclaration, ExecutionMode, PipelineDeclaration};
use crate::state::execution::{
    ActionRun, ActionStatus, ArtifactInstance, ConfigView, ErrorDetails, Execution, ExecutionStatus, ExecutionTrigger,
    ExecutionType, Place, ResolvedVariable, RevisionOverride, TransitionState,
};
use crate::state::execution::{ConditionKind, RetryTrigger};
use crate::state::{Definition, PartitionData, PipelineRecord, SECRET_MASK, Scope, Timestamp};

/// `PipelineExecutionNotFoundException`, in the form AWS uses for rollback targets \[NATIVE\].
pub fn execution_not_found(pipeline: &str, id: &str) -> ApiError {
    ApiError::new(
        ErrorCode::PipelineExecutionNotFoundException,
        format!("Pipeline Execution with id '{id}' does not exist in pipeline with name '{pipeline}'"),
    )
}

fn stage_not_found(pipeline: &str, stage: &str) -> ApiError {
    // AWS's wording [NATIVE].
    ApiError::new(
        ErrorCode::StageNotFoundException,
        format!("Pipeline '{pipeline}' does not have a stage with name '{stage}'"),
    )
}

/// StageNotFoundException unless the current version of pipeline `name` has a stage named `stage`.
pub(super) fn stage_exists(record: &PipelineRecord, name: &str, stage: &str) -> Result<(), ApiError> {
    if record.current().stages.iter().any(|s| s.name == stage) { Ok(()) } else { Err(stage_not_found(name, stage)) }
}

/// The error for a refusal every operation that changes a running pipeline can meet; operations word their own
/// refusals themselves.
pub(super) fn refusal_error(ctx: &Ctx, name: &str, refusal: Refusal) -> ApiError {
    match refusal {
        Refusal::PipelineNotFound => pipeline_not_found(&ctx.scope.account, name),
        other => ApiError::new(ErrorCode::ValidationException, format!("The request was refused: {other:?}")),
    }
}

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
    revision_type: String,
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

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct PipelineExecutionIdOutput {
    pipeline_execution_id: String,
}

/// Which source providers accept which revision types (behaviour.md §9.3).
fn revision_type_fits(action: &ActionDeclaration, revision_type: &str) -> bool {
    let provider = action.action_type_id.provider.as_str();
    match revision_type {
        "COMMIT_ID" => matches!(provider, "CodeCommit" | "CodeStarSourceConnection" | "GitHub"),
        "IMAGE_DIGEST" => provider == "ECR",
        "S3_OBJECT_VERSION_ID" => provider == "S3",
        "S3_OBJECT_KEY" => {
            provider == "S3"
                && action
                    .configuration
                    .as_ref()
                    .and_then(|c| c.get("AllowOverrideForS3ObjectKey"))
                    .is_some_and(|v| v.eq_ignore_ascii_case("true"))
        }
        _ => false,
    }
}

fn check_overrides(pipeline: &PipelineDeclaration, overrides: &[SourceRevisionInput]) -> Result<(), ApiError> {
    let first = pipeline.stages.first().map(|s| s.actions.as_slice()).unwrap_or_default();
    for o in overrides {
        let Some(action) = first.iter().find(|a| a.name == o.action_name) else {
            return Err(ApiError::validation(format!(
                "The source revision override names action '{}', which is not a source action of pipeline '{}'",
                o.action_name, pipeline.name
            )));
        };
        if !revision_type_fits(action, &o.revision_type) {
            return Err(ApiError::validation(format!(
                "The revision type {} cannot be used with source action '{}' (provider {}){}",
                o.revision_type,
                o.action_name,
                action.action_type_id.provider,
                if o.revision_type == "S3_OBJECT_KEY" {
                    "; S3_OBJECT_KEY needs AllowOverrideForS3ObjectKey set to true on the action"
                } else {
                    ""
                }
            )));
        }
    }
    Ok(())
}

/// StartPipelineExecution: a new execution with variable and source revision overrides; a replayed client request
/// token returns the first execution's id.
pub fn start_pipeline_execution(ctx: &Ctx, input: StartPipelineExecutionInput) -> Result<Reply, ApiError> {
    let variables = input.variables.unwrap_or_default();
    let mut seen = HashSet::new();
    for variable in &variables {
        if !seen.insert(variable.name.as_str()) {
            // Duplicates are refused before anything else [NATIVE]; the wording is UNCONFIRMED.
            return Err(ApiError::validation(format!(
                "The pipeline variable '{}' is given more than once",
                variable.name
            )));
        }
    }
    let overrides = input.source_revisions.unwrap_or_default();
    let token = input.client_request_token;
    // A repeated token answers with its execution before the overrides are looked at.
    let check = |record: &PipelineRecord| {
        let repeated = token.as_ref().is_some_and(|t| record.runtime.client_tokens.contains_key(t));
        if repeated { Ok(()) } else { check_overrides(record.current(), &overrides) }
    };
    let request = StartRequest {
        trigger: ExecutionTrigger {
            trigger_type: "StartPipelineExecution",
            trigger_detail: Some(ctx.scope.caller_arn().into()),
        },
        variables: variables.into_iter().map(|v| (v.name, v.value)).collect(),
        overrides: overrides
            .iter()
            .map(|o| RevisionOverride {
                action_name: o.action_name.clone(),
                revision_type: o.revision_type.clone(),
                revision_value: o.revision_value.clone(),
                change_id: None,
                created: None,
            })
            .collect(),
    };
    let command = Command::Start { request, client_token: token.clone() };
    let name = &input.name;
    let applied = ctx.engine.apply(ctx.store, &ctx.scope, name, command, check, |r| refusal_error(ctx, name, r))?;
    Reply::json(&PipelineExecutionIdOutput { pipeline_execution_id: execution_id(applied) })
}

/// The execution a start or rollback command answered with.
fn execution_id(applied: Applied) -> String {
    match applied {
        Applied::Execution(id) => id,
        Applied::KnownRevision(id) => id.unwrap_or_default(),
        Applied::JobStatus(_) | Applied::Completed(_) | Applied::Done => String::new(),
    }
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
        Refusal::Stop(StopRefusal::NotStoppable) => ApiError::new(
            ErrorCode::PipelineExecutionNotStoppableException,
            format!(
                "The pipeline execution with ID '{id}' in '{name}' can't be stopped now. Either it does not exist \
                 in the pipeline, or the pipeline execution has no action executions in progress."
            ),
        ),
        Refusal::Stop(StopRefusal::Duplicated) => ApiError::new(
            ErrorCode::DuplicatedStopRequestException,
            format!(
                "The execution with ID {id} in {name} is already in a stopping state. If you already chose to \
                 stop and wait, you cannot make that request again. You can choose to stop and abandon now, but \
                 be aware that this option can lead to failed actions. If you already chose to stop and abandon, \
                 you cannot make that request again."
            ),
        ),
        other => refusal_error(ctx, name, other),
    };
    let command =
        Command::Stop { execution: id.clone(), abandon: input.abandon.unwrap_or(false), reason: input.reason };
    ctx.engine.apply(ctx.store, &ctx.scope, name, command, |_| Ok(()), refused)?;
    Reply::json(&PipelineExecutionIdOutput { pipeline_execution_id: id })
}

// --- URL templates --------------------------------------------------------------------------------------------------

/// What `{Console}` stands for in an action type's URL template.
const CONSOLE: &str = "https://console.aws.amazon.com";

/// Expands an action type URL template for action `index` of stage `stage`; `None` when it names configuration the
/// action does not have, or a secret one: a secret never appears in a URL.
fn render(
    template: &str,
    definition: &Definition,
    (stage, index): (usize, usize),
    scope: &Scope,
    values: &[(&str, &str)],
) -> Option<String> {
    let action = definition.stages.get(stage)?.actions.get(index)?;
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(start) = rest.find('{') {
        let after = &rest[start + 1..];
        let end = after.find('}')?;
        let name = &after[..end];
        let value = if let Some(key) = name.strip_prefix("Config:") {
            if definition.is_secret(stage, index, key) {
                return None;
            }
            action.configuration.as_ref().and_then(|c| c.get(key)).cloned()?
        } else {
            match name {
                "Region" => action.region.clone().unwrap_or_else(|| scope.region.clone()),
                // AWS's newer templates (Lambda deploy, EKS) start with the console's address.
                "Console" => CONSOLE.to_string(),
                "AccountId" => scope.account.clone(),
                other => values.iter().find(|(k, _)| *k == other).map(|(_, v)| (*v).to_string())?,
            }
        };
        out.push_str(&rest[..start]);
        out.push_str(&value);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Some(out)
}

/// The URL templates of an action's type, as AWS serves them in the action's region.
fn settings(
    data: &PartitionData,
    catalogue: &Catalogue,
    action: &ActionDeclaration,
    scope: &Scope,
) -> Option<ActionTypeSettings> {
    let region = action.region.as_deref().unwrap_or(&scope.region);
    data.action_type_in(catalogue, &action.action_type_id, region).and_then(|t| t.settings.clone())
}

/// The `executionType` AWS shows: `ROLLBACK` on rollback executions, nothing on standard ones.
fn shown_type(execution_type: ExecutionType) -> Option<ExecutionType> {
    (execution_type == ExecutionType::Rollback).then_some(execution_type)
}

// --- GetPipelineState ---------------------------------------------------------------------------------------------

#[derive(Deserialize)]
pub struct GetPipelineStateInput {
    name: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct StageExecutionOut {
    pipeline_execution_id: String,
    status: String,
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    execution_type: Option<ExecutionType>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct ErrorDetailsOut<'a> {
    pub code: &'a str,
    pub message: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ActionExecutionOut {
    action_execution_id: String,
    status: ActionStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    summary: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    last_status_change: Option<Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    last_updated_by: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    external_execution_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    external_execution_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    percent_complete: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error_details: Option<ErrorDetails>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct CurrentRevisionOut {
    revision_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    revision_change_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    created: Option<Timestamp>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ActionStateOut {
    action_name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    current_revision: Option<CurrentRevisionOut>,
    #[serde(skip_serializing_if = "Option::is_none")]
    latest_execution: Option<ActionExecutionOut>,
    #[serde(skip_serializing_if = "Option::is_none")]
    entity_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    revision_url: Option<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct StageStateOut {
    stage_name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    inbound_execution: Option<StageExecutionOut>,
    inbound_executions: Vec<StageExecutionOut>,
    inbound_transition_state: TransitionState,
    action_states: Vec<ActionStateOut>,
    #[serde(skip_serializing_if = "Option::is_none")]
    latest_execution: Option<StageExecutionOut>,
    #[serde(skip_serializing_if = "Option::is_none")]
    before_entry_condition_state: Option<StageConditionStateOut>,
    #[serde(skip_serializing_if = "Option::is_none")]
    on_success_condition_state: Option<StageConditionStateOut>,
    #[serde(skip_serializing_if = "Option::is_none")]
    on_failure_condition_state: Option<StageConditionStateOut>,
    #[serde(skip_serializing_if = "Option::is_none")]
    retry_stage_metadata: Option<RetryStageMetadataOut>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct RetryStageMetadataOut {
    #[serde(skip_serializing_if = "Option::is_none")]
    auto_stage_retry_attempt: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    manual_stage_retry_attempt: Option<u16>,
    latest_retry_trigger: RetryTrigger,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct GetPipelineStateOutput {
    pipeline_name: String,
    pipeline_version: i32,
    stage_states: Vec<StageStateOut>,
    created: Timestamp,
    updated: Timestamp,
}

pub(super) fn status_name<T: Serialize>(status: T) -> String {
    serde_json::to_value(status).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default()
}

/// The external execution URL of a run: the provider's, else the action type's template.
fn execution_url(
    run: &ActionRun,
    execution: &Execution,
    settings: Option<&ActionTypeSettings>,
    scope: &Scope,
) -> Option<String> {
    run.external_execution_url().map(str::to_string).or_else(|| {
        let external = run.external_execution_id.as_deref()?;
        let template = settings?.execution_url_template.as_deref()?;
        let at = (run.stage(), run.action());
        render(template, &execution.declaration, at, scope, &[("ExternalExecutionId", external)])
    })
}

fn action_execution_out(
    data: &PartitionData,
    catalogue: &Catalogue,
    scope: &Scope,
    execution: &Execution,
    run: &ActionRun,
    outdated: bool,
) -> ActionExecutionOut {
    let action = execution.declaration.stages.get(run.stage()).and_then(|s| s.actions.get(run.action()));
    let settings = action.and_then(|a| settings(data, catalogue, a, scope));
    ActionExecutionOut {
        action_execution_id: run.id.to_string(),
        status: run.status,
        summary: run.summary.as_deref().map(str::to_string),
        last_status_change: run.last_status_change,
        // An approval of an execution overtaken by an update cannot be answered; its token is not shown.
        token: if outdated { None } else { run.approval_token() },
        last_updated_by: run.updated_by().map(str::to_string),
        // An approval's external id (its token) shows in its history, not in the pipeline state [NATIVE].
        external_execution_id: run
            .external_execution_id
            .as_deref()
            .filter(|_| action.is_none_or(|a| a.action_type_id.category != ActionCategory::Approval))
            .map(str::to_string),
        external_execution_url: execution_url(run, execution, settings.as_ref(), scope),
        percent_complete: run.percent_complete(),
        error_details: run.error().cloned(),
    }
}

/// GetPipelineState: each stage of the current version with its latest and waiting executions, its inbound
/// transition, and the latest execution of each action.
pub fn get_pipeline_state(ctx: &Ctx, input: GetPipelineStateInput) -> Result<Reply, ApiError> {
    let output = ctx.store.read(&ctx.scope, |data| {
        let record = find(data, &ctx.scope.account, &input.name)?;
        let declaration = record.current();
        let runtime = &record.runtime;
        let version = record.version();
        let mut stage_states = Vec::with_capacity(declaration.stages.len());
        for (stage_index, stage) in declaration.stages.iter().enumerate() {
            let mut inbound: Vec<(u64, StageExecutionOut)> = runtime
                .active
                .iter()
                .filter_map(|&i| runtime.executions.get(i))
                .filter_map(|e| match e.place {
                    Place::Waiting { stage: s, since }
                        if e.declaration.stages.get(s).map(|d| &d.name) == Some(&stage.name) =>
                    {
                        Some((
                            since,
                            StageExecutionOut {
                                pipeline_execution_id: e.id.to_string(),
                                status: status_name(e.status),
                                execution_type: None,
                            },
                        ))
                    }
                    _ => None,
                })
                .collect();
            inbound.sort_by_key(|(since, _)| *since);
            let mut inbound: Vec<StageExecutionOut> = inbound.into_iter().map(|(_, e)| e).collect();
            let latest_run =
                runtime.latest_in_stage.get(&stage.name).and_then(|&i| runtime.executions.get(i)).and_then(|e| {
                    let index = e.declaration.stages.iter().position(|s| s.name == stage.name)?;
                    Some((e, e.stages.get(index)?.as_ref()?))
                });
            let latest = latest_run.map(|(e, run)| StageExecutionOut {
                pipeline_execution_id: e.id.to_string(),
                status: status_name(run.status),
                execution_type: shown_type(e.execution_type),
            });
            let retry_stage_metadata = latest_run.and_then(|(_, run)| {
                Some(RetryStageMetadataOut {
                    auto_stage_retry_attempt: (run.auto_retries > 0).then_some(run.auto_retries),
                    manual_stage_retry_attempt: (run.manual_retries > 0).then_some(run.manual_retries),
                    latest_retry_trigger: run.latest_retry?,
                })
            });
            let action_states = stage
                .actions
                .iter()
                .enumerate()
                .map(|(action_index, action)| {
                    let at = (stage_index, action_index);
                    let settings = settings(data, ctx.catalogue, action, &ctx.scope);
                    let revision = runtime
                        .current_revisions
                        .get(&action.name)
                        .filter(|_| action.action_type_id.category == ActionCategory::Source);
                    let latest_execution = runtime
                        .latest_runs
                        .get(&(stage.name.clone(), action.name.clone()))
                        .and_then(|&(e, r)| runtime.executions.get(e).map(|e| (e, r)))
                        .and_then(|(e, r)| e.actions.get(r).map(|run| (e, run)))
                        .map(|(e, run)| {
                            action_execution_out(data, ctx.catalogue, &ctx.scope, e, run, e.pipeline_version != version)
                        });
                    ActionStateOut {
                        action_name: action.name.clone(),
                        current_revision: revision.map(|r| CurrentRevisionOut {
                            revision_id: r.revision_id.clone(),
                            revision_change_id: r.change_id.clone(),
                            created: r.created,
                        }),
                        latest_execution,
                        entity_url: settings
                            .as_ref()
                            .and_then(|s| s.entity_url_template.as_deref())
                            .and_then(|t| render(t, declaration, at, &ctx.scope, &[])),
                        revision_url: revision.and_then(|r| {
                            let template = settings.as_ref()?.revision_url_template.as_deref()?;
                            render(template, declaration, at, &ctx.scope, &[("RevisionId", &r.revision_id)])
                        }),
                    }
                })
                .collect();
            let first = inbound.first().map(|e| StageExecutionOut {
                pipeline_execution_id: e.pipeline_execution_id.clone(),
                status: e.status.clone(),
                execution_type: None,
            });
            stage_states.push(StageStateOut {
                stage_name: stage.name.clone(),
                inbound_execution: first,
                inbound_executions: std::mem::take(&mut inbound),
                inbound_transition_state: runtime.transition(&stage.name),
                action_states,
                latest_execution: latest,
                before_entry_condition_state: condition_state(
                    latest_run.map(|(e, _)| e),
                    &stage.name,
                    ConditionKind::BeforeEntry,
                ),
                on_success_condition_state: condition_state(
                    latest_run.map(|(e, _)| e),
                    &stage.name,
                    ConditionKind::OnSuccess,
                ),
                on_failure_condition_state: condition_state(
                    latest_run.map(|(e, _)| e),
                    &stage.name,
                    ConditionKind::OnFailure,
                ),
                retry_stage_metadata,
            });
        }
        Ok::<_, ApiError>(GetPipelineStateOutput {
            pipeline_name: input.name.clone(),
            pipeline_version: version,
            stage_states,
            created: record.created,
            updated: record.updated,
        })
    })?;
    Reply::json(&output)
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
                    revision_change_identifier: r.change_id.clone(),
                    revision_summary: r.summary.clone(),
                    created: r.created,
                    revision_url: revision_url(data, ctx.catalogue, &ctx.scope, execution, action, &r.revision_id),
                }
            })
            .collect();
        let declared_variables = execution.declaration.variables.as_deref().is_some_and(|v| !v.is_empty());
        let output = GetPipelineExecutionOutput {
            pipeline_execution: PipelineExecutionOut {
                pipeline_name: &input.pipeline_name,
                pipeline_version: execution.pipeline_version,
                pipeline_execution_id: execution.id.to_string(),
                status: execution.status,
                status_summary: execution.status_summary.as_deref(),
                artifact_revisions,
                variables: declared_variables.then_some(&execution.variables[..]),
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

/// A sort key that orders newer items first.
fn newest_first(seq: u64) -> String {
    format!("{:020}", u64::MAX - seq)
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
                            revision_summary: r.summary.clone(),
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

// --- ListActionExecutions -----------------------------------------------------------------------------------------

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct LatestInPipelineExecutionFilter {
    pipeline_execution_id: String,
    start_time_range: String,
}

/// `ActionExecutionFilter`, and `RuleExecutionFilter`, which has the same members.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct HistoryFilter {
    pipeline_execution_id: Option<String>,
    latest_in_pipeline_execution: Option<LatestInPipelineExecutionFilter>,
}

/// What a history listing (ListActionExecutions, ListRuleExecutions) asks for.
pub(super) struct HistoryQuery<'a> {
    /// The operation, which names its page tokens.
    pub operation: &'static str,
    pub pipeline: &'a str,
    pub filter: Option<&'a HistoryFilter>,
    pub next_token: Option<&'a str>,
    pub max_results: Option<i32>,
}

/// One page of runs (action or rule executions), newest first: every run of the pipeline or of one execution, or
/// with `startTimeRange: Latest` only the latest run of each action or rule (`key`) in one.
pub(super) fn history_page<'a, R, K: Ord>(
    ctx: &Ctx,
    data: &'a PartitionData,
    query: &HistoryQuery,
    runs: impl Fn(&'a Execution) -> &'a [R],
    key: impl Fn(&R) -> K,
    seq: impl Fn(&R) -> u32,
) -> Result<Page<(&'a Execution, &'a R)>, ApiError> {
    let record = data.pipelines.get(query.pipeline).ok_or_else(|| history_not_found(ctx, query.pipeline))?;
    let runtime = &record.runtime;
    let by_id = query.filter.and_then(|f| f.pipeline_execution_id.as_deref());
    let latest = query.filter.and_then(|f| f.latest_in_pipeline_execution.as_ref());
    for id in by_id.into_iter().chain(latest.map(|l| l.pipeline_execution_id.as_str())) {
        if runtime.get(id).is_none() {
            return Err(execution_not_found(query.pipeline, id));
        }
    }
    let mut found: Vec<(&Execution, &R)> = runtime
        .executions
        .iter()
        .filter(|e| by_id.is_none_or(|id| e.id.to_string() == id))
        .filter(|e| latest.is_none_or(|l| e.id.to_string() == l.pipeline_execution_id))
        .flat_map(|e| runs(e).iter().map(move |r| (e, r)))
        .collect();
    if latest.is_some_and(|l| l.start_time_range == "Latest") {
        let mut newest: BTreeMap<K, u32> = BTreeMap::new();
        for (_, run) in &found {
            let entry = newest.entry(key(run)).or_insert(seq(run));
            *entry = (*entry).max(seq(run));
        }
        found.retain(|(_, run)| newest.get(&key(run)) == Some(&seq(run)));
    }
    found.sort_by_key(|(_, run)| std::cmp::Reverse(seq(run)));
    let max = page_size(query.max_results, 100);
    paginate(
        &ctx.page_kind(query.operation, Some(query.pipeline)),
        found,
        |(_, r)| newest_first(u64::from(seq(r))),
        query.next_token,
        max,
    )
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListActionExecutionsInput {
    pipeline_name: String,
    filter: Option<HistoryFilter>,
    max_results: Option<i32>,
    next_token: Option<String>,
}

#[derive(Serialize)]
struct S3LocationOut<'a> {
    bucket: &'a str,
    key: &'a str,
}

#[derive(Serialize)]
pub(super) struct ArtifactDetailOut<'a> {
    name: &'a str,
    s3location: S3LocationOut<'a>,
}

impl<'a> ArtifactDetailOut<'a> {
    pub(super) fn of(artifact: &'a ArtifactInstance) -> ArtifactDetailOut<'a> {
        ArtifactDetailOut {
            name: &artifact.name,
            s3location: S3LocationOut { bucket: &artifact.bucket, key: &artifact.key },
        }
    }
}

/// A run's configuration, serialized in place: no copy per read, and the secret values of an action masked.
pub(super) struct ConfigOut<'a> {
    view: ConfigView<'a>,
    /// The version and (stage index, action index) of the action whose secret values are masked.
    secrets: Option<(&'a Definition, usize, usize)>,
}

impl<'a> ConfigOut<'a> {
    /// An action's configuration: its secret values show as `****`.
    pub(super) fn action(view: ConfigView<'a>, definition: &'a Definition, run: &ActionRun) -> ConfigOut<'a> {
        ConfigOut { view, secrets: Some((definition, run.stage(), run.action())) }
    }

    /// A rule's configuration (rule types have no secret properties).
    pub(super) fn rule(view: ConfigView<'a>) -> ConfigOut<'a> {
        ConfigOut { view, secrets: None }
    }
}

impl Serialize for ConfigOut<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let secret = |key: &str| self.secrets.is_some_and(|(d, stage, action)| d.is_secret(stage, action, key));
        serializer.collect_map(self.view.iter().map(|(k, v)| (k, if secret(k) { SECRET_MASK } else { v })))
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ActionExecutionInputOut<'a> {
    action_type_id: Option<&'a crate::state::declaration::ActionTypeId>,
    configuration: ConfigOut<'a>,
    resolved_configuration: ConfigOut<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    role_arn: Option<&'a str>,
    region: &'a str,
    input_artifacts: Vec<ArtifactDetailOut<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    namespace: Option<&'a str>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ExecutionResultOut<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    external_execution_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    external_execution_summary: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    external_execution_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error_details: Option<ErrorDetailsOut<'a>>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ActionExecutionOutputOut<'a> {
    output_artifacts: Vec<ArtifactDetailOut<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    execution_result: Option<ExecutionResultOut<'a>>,
    output_variables: BTreeMap<&'a str, &'a str>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ActionExecutionDetailOut<'a> {
    pipeline_execution_id: String,
    action_execution_id: String,
    pipeline_version: i32,
    stage_name: &'a str,
    action_name: &'a str,
    start_time: Timestamp,
    last_update_time: Timestamp,
    #[serde(skip_serializing_if = "Option::is_none")]
    updated_by: Option<&'a str>,
    status: ActionStatus,
    input: ActionExecutionInputOut<'a>,
    output: ActionExecutionOutputOut<'a>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ListActionExecutionsOutput<'a> {
    action_execution_details: Vec<ActionExecutionDetailOut<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_token: Option<String>,
}

fn action_detail<'a>(
    data: &PartitionData,
    ctx: &'a Ctx,
    execution: &'a Execution,
    run: &'a ActionRun,
) -> ActionExecutionDetailOut<'a> {
    let action = execution.declaration.stages.get(run.stage()).and_then(|s| s.actions.get(run.action()));
    let settings = action.and_then(|a| settings(data, ctx.catalogue, a, &ctx.scope));
    // Running and abandoned actions have no result [NATIVE].
    let finished = !matches!(run.status, ActionStatus::InProgress | ActionStatus::Abandoned);
    let declared = ConfigView::new(action.and_then(|a| a.configuration.as_ref()), None);
    let (stage_name, action_name) = execution.names(run);
    ActionExecutionDetailOut {
        pipeline_execution_id: execution.id.to_string(),
        action_execution_id: run.id.to_string(),
        pipeline_version: execution.pipeline_version,
        stage_name,
        action_name,
        start_time: run.start_time,
        last_update_time: run.last_update_time,
        updated_by: run.updated_by(),
        status: run.status,
        input: ActionExecutionInputOut {
            action_type_id: action.map(|a| &a.action_type_id),
            configuration: ConfigOut::action(declared, &execution.declaration, run),
            resolved_configuration: ConfigOut::action(run.configuration(action), &execution.declaration, run),
            role_arn: action.and_then(|a| a.role_arn.as_deref()),
            region: run.region().unwrap_or(&ctx.scope.region),
            input_artifacts: run.input_artifacts.iter().map(|a| ArtifactDetailOut::of(a)).collect(),
            namespace: action.and_then(|a| a.namespace.as_deref()),
        },
        output: ActionExecutionOutputOut {
            output_artifacts: if run.status == ActionStatus::Succeeded {
                run.output_artifacts.iter().map(|a| ArtifactDetailOut::of(a)).collect()
            } else {
                Vec::new()
            },
            execution_result: finished.then(|| ExecutionResultOut {
                external_execution_id: run.external_execution_id.as_deref(),
                // The summary, or for failures the error message, as AWS reports them [NATIVE].
                external_execution_summary: run.summary.as_deref().or(run.error().map(|e| e.message.as_str())),
                external_execution_url: execution_url(run, execution, settings.as_ref(), &ctx.scope),
                error_details: run.error().map(|e| ErrorDetailsOut { code: &e.code, message: &e.message }),
            }),
            output_variables: run.output_variables.iter().map(|(k, v)| (&**k, &**v)).collect(),
        },
    }
}

/// The PipelineNotFoundException of ListActionExecutions, which words it differently [NATIVE]. UNCONFIRMED:
/// ListRuleExecutions is taken to word it the same way.
fn history_not_found(ctx: &Ctx, name: &str) -> ApiError {
    ApiError::new(
        ErrorCode::PipelineNotFoundException,
        format!("The account with AWS account ID '{}' does not include a pipeline named '{name}'", ctx.scope.account),
    )
}

/// ListActionExecutions: action executions newest first, filtered by execution (every attempt) or by the latest
/// attempt of each action in an execution.
pub fn list_action_executions(ctx: &Ctx, input: ListActionExecutionsInput) -> Result<Reply, ApiError> {
    let query = HistoryQuery {
        operation: "ListActionExecutions",
        pipeline: &input.pipeline_name,
        filter: input.filter.as_ref(),
        next_token: input.next_token.as_deref(),
        max_results: input.max_results,
    };
    ctx.store.read(&ctx.scope, |data| {
        let page = history_page(ctx, data, &query, |e| &e.actions, |r| (r.stage(), r.action()), |r| r.seq)?;
        let details = page.items.into_iter().map(|(e, r)| action_detail(data, ctx, e, r)).collect();
        Reply::json(&ListActionExecutionsOutput { action_execution_details: details, next_token: page.next_token })
    })
}

// --- PutApprovalResult ----------------------------------------------------------------------------------------------

#[derive(Deserialize)]
struct ApprovalResultInput {
    summary: String,
    status: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PutApprovalResultInput {
    pipeline_name: String,
    stage_name: String,
    action_name: String,
    result: ApprovalResultInput,
    token: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct PutApprovalResultOutput {
    approved_at: Timestamp,
}

/// PutApprovalResult: approves or rejects a waiting manual approval, by its token.
pub fn put_approval_result(ctx: &Ctx, input: PutApprovalResultInput) -> Result<Reply, ApiError> {
    let now = ctx.now();
    let (name, stage, action) = (&input.pipeline_name, &input.stage_name, &input.action_name);
    let check = |record: &PipelineRecord| {
        let declared = record.current().stages.iter().find(|s| &s.name == stage);
        let declared = declared.ok_or_else(|| stage_not_found(name, stage))?;
        if !declared.actions.iter().any(|a| &a.name == action) {
            return Err(ApiError::new(
                ErrorCode::ActionNotFoundException,
                format!("Stage '{stage}' of pipeline '{name}' does not have an action named '{action}'"),
            ));
        }
        Ok(())
    };
    let refused = |refusal| match refusal {
        Refusal::Approval(ApprovalRefusal::UnknownToken) => ApiError::new(
            ErrorCode::InvalidApprovalTokenException,
            format!(
                "The approval token '{}' does not match an approval request of action '{action}' in stage '{stage}' \
                 of pipeline '{name}'",
                input.token
            ),
        ),
        // AWS's wording, for abandoned approvals and for executions overtaken by an update [NATIVE].
        Refusal::Approval(ApprovalRefusal::OutOfDate) => ApiError::new(
            ErrorCode::InvalidApprovalTokenException,
            format!(
                "The pipeline {name} has been updated, and the approval request you responded to is now out of date."
            ),
        ),
        Refusal::Approval(ApprovalRefusal::AlreadyCompleted) => ApiError::new(
            ErrorCode::ApprovalAlreadyCompletedException,
            format!(
                "The approval request for action '{action}' in stage '{stage}' of pipeline '{name}' has already been \
                 completed"
            ),
        ),
        // AWS's wording [NATIVE].
        Refusal::Approval(ApprovalRefusal::SummaryRequired) => ApiError::new(
            ErrorCode::InvalidApprovalTokenException,
            format!(
                "Action '{action}' in stage '{stage}' requires a summary. Provide a summary in the approval result and \
                 try again."
            ),
        ),
        other => refusal_error(ctx, name, other),
    };
    let answer = ApprovalAnswer {
        stage: stage.clone(),
        action: action.clone(),
        token: input.token.clone(),
        approved: input.result.status == "Approved",
        summary: input.result.summary.clone(),
        by: ctx.scope.caller_arn(),
    };
    ctx.engine.apply(ctx.store, &ctx.scope, name, Command::AnswerApproval(answer), check, refused)?;
    Reply::json(&PutApprovalResultOutput { approved_at: now })
}

// --- Stage transitions ----------------------------------------------------------------------------------------------

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DisableStageTransitionInput {
    pipeline_name: String,
    stage_name: String,
    transition_type: String,
    reason: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EnableStageTransitionInput {
    pipeline_name: String,
    stage_name: String,
    transition_type: String,
}

/// The stage whose inbound transition a request names: the stage itself (Inbound) or the next one (Outbound).
fn transition_stage(record: &PipelineRecord, pipeline: &str, stage: &str, kind: &str) -> Result<String, ApiError> {
    let stages = &record.current().stages;
    let index = stages.iter().position(|s| s.name == stage).ok_or_else(|| stage_not_found(pipeline, stage))?;
    if kind == "Inbound" {
        return Ok(stage.to_string());
    }
    stages.get(index + 1).map(|s| s.name.clone()).ok_or_else(|| {
        // UNCONFIRMED: AWS's answer for the outbound transition of the last stage.
        ApiError::validation(format!(
            "Stage '{stage}' is the last stage of pipeline '{pipeline}'; it has no outbound transition"
        ))
    })
}

/// Sets the inbound transition a request names, then lets waiting executions move if it is now enabled.
fn set_transition(
    ctx: &Ctx,
    pipeline: &str,
    stage: &str,
    kind: &str,
    disabled_reason: Option<String>,
) -> Result<Reply, ApiError> {
    let now = ctx.now();
    // The stage is looked up first, so that its errors come before anything else.
    let target = ctx.store.read(&ctx.scope, |data| {
        let record = data.pipelines.get(pipeline).ok_or_else(|| pipeline_not_found(&ctx.scope.account, pipeline))?;
        transition_stage(record, pipeline, stage, kind)
    })?;
    let state = TransitionState {
        enabled: disabled_reason.is_none(),
        last_changed_by: Some(ctx.scope.caller_arn()),
        last_changed_at: Some(now),
        disabled_reason,
    };
    let command = Command::SetTransition { stage: target.clone(), state };
    // The stage must still be there when the change is made.
    let check = |record: &PipelineRecord| transition_stage(record, pipeline, stage, kind).map(|_| ());
    ctx.engine.apply(ctx.store, &ctx.scope, pipeline, command, check, |r| refusal_error(ctx, pipeline, r))?;
    Ok(Reply::Done)
}

/// DisableStageTransition: executions wait in front of the stage until the transition is enabled again.
pub fn disable_stage_transition(ctx: &Ctx, input: DisableStageTransitionInput) -> Result<Reply, ApiError> {
    set_transition(ctx, &input.pipeline_name, &input.stage_name, &input.transition_type, Some(input.reason))
}

/// EnableStageTransition: the newest (SUPERSEDED) or oldest (QUEUED) waiting execution enters.
pub fn enable_stage_transition(ctx: &Ctx, input: EnableStageTransitionInput) -> Result<Reply, ApiError> {
    set_transition(ctx, &input.pipeline_name, &input.stage_name, &input.transition_type, None)
}

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
    let check = |record: &PipelineRecord| {
        let declared = record.current().stages.iter().find(|s| &s.name == stage);
        let declared = declared.ok_or_else(|| stage_not_found(name, stage))?;
        let found = declared.actions.iter().find(|a| &a.name == action).ok_or_else(|| {
            ApiError::new(
                ErrorCode::ActionNotFoundException,
                format!("Stage '{stage}' of pipeline '{name}' does not have an action named '{action}'"),
            )
        })?;
        if found.action_type_id.category != ActionCategory::Source {
            return Err(ApiError::validation(format!(
                "Action '{action}' is not a source action; only source actions take revisions"
            )));
        }
        Ok(())
    };
    let revision = &input.action_revision;
    let command = Command::PushRevision {
        trigger: ExecutionTrigger {
            trigger_type: "PutActionRevision",
            trigger_detail: Some(ctx.scope.caller_arn().into()),
        },
        revision: RevisionOverride {
            action_name: action.clone(),
            revision_type: crate::state::execution::ACTION_REVISION.to_string(),
            revision_value: revision.revision_id.clone(),
            change_id: Some(revision.revision_change_id.clone()),
            created: Some(revision.created),
        },
    };
    let output = match ctx.engine.apply(ctx.store, &ctx.scope, name, command, check, |r| refusal_error(ctx, name, r))? {
        Applied::Execution(id) => PutActionRevisionOutput { new_revision: true, pipeline_execution_id: Some(id) },
        Applied::KnownRevision(previous) => {
            PutActionRevisionOutput { new_revision: false, pipeline_execution_id: previous }
        }
        Applied::JobStatus(_) | Applied::Completed(_) | Applied::Done => {
            PutActionRevisionOutput { new_revision: false, pipeline_execution_id: None }
        }
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
struct TargetEventOut {
    name: &'static str,
    status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    start_time: Option<Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    end_time: Option<Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    context: Option<serde_json::Value>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct DeployTargetOut {
    target_id: String,
    target_type: &'static str,
    status: &'static str,
    start_time: Timestamp,
    #[serde(skip_serializing_if = "Option::is_none")]
    end_time: Option<Timestamp>,
    events: Vec<TargetEventOut>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ListDeployTargetsOutput {
    targets: Vec<DeployTargetOut>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_token: Option<String>,
}

/// The simulated targets of a deploy action run: EC2 instances for CodeDeploy and EC2 deploys, an ECS service for
/// ECS and CodeDeployToECS, each with its provider's lifecycle events, spread over the run's time. They are derived
/// from the run (ids from its id), so they cost nothing to keep.
fn deploy_targets(provider: &str, run: &ActionRun, config: ConfigView, now: Timestamp) -> Vec<DeployTargetOut> {
    let (target_type, events, count): (&'static str, &[&'static str], usize) = match provider {
        "CodeDeploy" | "EC2" => (
            "Instance",
            &[
                "ApplicationStop",
                "DownloadBundle",
                "BeforeInstall",
                "Install",
                "AfterInstall",
                "ApplicationStart",
                "ValidateService",
            ],
            2,
        ),
        "CodeDeployToECS" => (
            "ECSTarget",
            &[
                "BeforeInstall",
                "Install",
                "AfterInstall",
                "AllowTestTraffic",
                "AfterAllowTestTraffic",
                "BeforeAllowTraffic",
                "AllowTraffic",
                "AfterAllowTraffic",
            ],
            1,
        ),
        "ECS" => ("ECSTarget", &["Deploy"], 1),
        _ => return Vec::new(),
    };
    let start = run.start_time;
    let end = run.last_status_change.filter(|_| run.status != ActionStatus::InProgress);
    let span = end.unwrap_or(now).millis().saturating_sub(start.millis()).max(1);
    let step = span / i64::try_from(events.len()).unwrap_or(1).max(1);
    // While running, events up to the middle have finished; a failure stops at the last event.
    let done = match run.status {
        ActionStatus::InProgress => events.len() / 2,
        _ => events.len(),
    };
    let bytes = run.id.as_bytes();
    (0..count)
        .map(|n| {
            let target_id = match target_type {
                "Instance" => format!("i-{:02x}{:02x}{:02x}{:02x}{:02x}{:02x}{:02x}{:02x}{n}", bytes[0], bytes[1], bytes[2], bytes[3], bytes[4], bytes[5], bytes[6], bytes[7]),
                _ => format!(
                    "{}:{}",
                    config.get("ClusterName").unwrap_or("default"),
                    config.get("ServiceName").unwrap_or("service")
                ),
            };
            let events = events
                .iter()
                .enumerate()
                .map(|(i, name)| {
                    let i64_index = i64::try_from(i).unwrap_or(0);
                    let (status, started, ended) = if i < done {
                        let failed_here = run.status == ActionStatus::Failed && i + 1 == events.len();
                        let status = if failed_here { "Failed" } else { "Succeeded" };
                        (status, Some(start.plus_millis(step * i64_index)), Some(start.plus_millis(step * (i64_index + 1))))
                    } else if i == done && run.status == ActionStatus::InProgress {
                        ("InProgress", Some(start.plus_millis(step * i64_index)), None)
                    } else if run.status == ActionStatus::Abandoned {
                        ("Skipped", None, None)
                    } else {
                        ("Pending", None, None)
                    };
                    let context = (status == "Failed").then(|| serde_json::json!({"message": run.error().map_or("The deployment failed", |e| e.message.as_str())}));
                    TargetEventOut { name, status, start_time: started, end_time: ended, context }
                })
                .collect();
            let status = match run.status {
                ActionStatus::Succeeded => "Succeeded",
                ActionStatus::Failed => "Failed",
                ActionStatus::Abandoned => "Skipped",
                ActionStatus::InProgress => "InProgress",
            };
            DeployTargetOut { target_id, target_type, status, start_time: start, end_time: end, events }
        })
        .collect()
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
        Ok(deploy_targets(provider, run, config, now))
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

// --- RetryStageExecution --------------------------------------------------------------------------------------------

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RetryStageExecutionInput {
    pipeline_name: String,
    stage_name: String,
    pipeline_execution_id: String,
    retry_mode: String,
}

/// RetryStageExecution: the same execution resumes in the stage where it failed or was stopped (behaviour.md §4.1).
pub fn retry_stage_execution(ctx: &Ctx, input: RetryStageExecutionInput) -> Result<Reply, ApiError> {
    let (name, stage, id) = (&input.pipeline_name, &input.stage_name, &input.pipeline_execution_id);
    let all = input.retry_mode == "ALL_ACTIONS";
    let command = Command::Retry { execution: id.clone(), stage: stage.clone(), all };
    let refused = |refusal| match refusal {
        // AWS's wording [NATIVE]; an unknown execution id gets it too (UNCONFIRMED: the operation models no
        // PipelineExecutionNotFoundException).
        Refusal::Retry(RetryRefusal::NotRetryable) => ApiError::new(
            ErrorCode::StageNotRetryableException,
            format!(
                "The stage named {stage} in the {name} pipeline can't be retried now. Either it contains no failed \
                 actions, the execution '{id}' is already superseded, or the pipeline definition has changed \
                 since the action(s) failed."
            ),
        ),
        // UNCONFIRMED wording.
        Refusal::Retry(RetryRefusal::NotLatest) => ApiError::new(
            ErrorCode::NotLatestPipelineExecutionException,
            format!(
                "The execution '{id}' is not the latest execution of stage {stage} in the {name} pipeline; only the \
                 latest execution of a stage can be retried"
            ),
        ),
        other => refusal_error(ctx, name, other),
    };
    ctx.engine.apply(ctx.store, &ctx.scope, name, command, |record| stage_exists(record, name, stage), refused)?;
    Reply::json(&PipelineExecutionIdOutput { pipeline_execution_id: id.clone() })
}

// --- RollbackStage --------------------------------------------------------------------------------------------------

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RollbackStageInput {
    pipeline_name: String,
    stage_name: String,
    target_pipeline_execution_id: String,
}

/// RollbackStage: a new ROLLBACK execution runs the stage again with the target's revisions and variables
/// (behaviour.md §4.2).
pub fn rollback_stage(ctx: &Ctx, input: RollbackStageInput) -> Result<Reply, ApiError> {
    let (name, stage, target) = (&input.pipeline_name, &input.stage_name, &input.target_pipeline_execution_id);
    // AWS's trigger detail form [NATIVE].
    let detail = serde_json::json!({"AwsUserArn": ctx.scope.caller_arn()}).to_string();
    let trigger = ExecutionTrigger { trigger_type: "ManualRollback", trigger_detail: Some(detail.into()) };
    let refused = |refusal| match refusal {
        // AWS's wordings [NATIVE].
        Refusal::Rollback(RollbackRefusal::TargetNotFound) => ApiError::new(
            ErrorCode::PipelineExecutionNotFoundException,
            format!("Target Pipeline Execution with id '{target}' does not exist in pipeline with name '{name}'"),
        ),
        Refusal::Rollback(RollbackRefusal::Outdated) => ApiError::new(
            ErrorCode::PipelineExecutionOutdatedException,
            format!("Pipeline '{name}' has been updated since the rollback request was made."),
        ),
        Refusal::Rollback(RollbackRefusal::NotCompleted) => ApiError::new(
            ErrorCode::UnableToRollbackStageException,
            format!("Target Pipeline Execution with id '{target}' has not completed in stage with name '{stage}'"),
        ),
        Refusal::Rollback(RollbackRefusal::StageBusy) => ApiError::new(
            ErrorCode::UnableToRollbackStageException,
            format!("Pipeline '{name}' cannot start rollback since stage {stage} is in progress."),
        ),
        other => refusal_error(ctx, name, other),
    };
    let command = Command::Rollback { target: target.clone(), stage: stage.clone(), trigger };
    let applied =
        ctx.engine.apply(ctx.store, &ctx.scope, name, command, |record| stage_exists(record, name, stage), refused)?;
    let id = execution_id(applied);
    Reply::json(&PipelineExecutionIdOutput { pipeline_execution_id: id })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::declaration::PipelineType;

    #[test]
    fn url_templates_never_substitute_a_secret() {
        let declared: PipelineDeclaration = serde_json::from_value(serde_json::json!({
            "name": "p", "roleArn": "arn:aws:iam::123456789012:role/r",
            "stages": [{"name": "S", "actions": [{"name": "A",
                "actionTypeId": {"category": "Build", "owner": "Custom", "provider": "W", "version": "1"},
                "configuration": {"Project": "web", "Token": "s3cret"}}]}]
        }))
        .expect("declaration");
        let secrets = vec![(0, 0, "Token".to_string())];
        let definition = Definition::new(declared.with_defaults(1, PipelineType::V1), secrets, Vec::new());
        let scope = Scope { account: "123456789012".into(), region: "us-east-1".into() };
        let url = |template: &str| render(template, &definition, (0, 0), &scope, &[("ExternalExecutionId", "x")]);
        assert_eq!(url("https://ci/{Config:Project}/{ExternalExecutionId}"), Some("https://ci/web/x".into()));
        assert_eq!(url("https://ci/{Config:Token}"), None);
        assert_eq!(url("https://ci/{Config:Missing}"), None);
    }
}
