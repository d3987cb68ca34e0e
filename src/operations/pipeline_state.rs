//! GetPipelineState: each stage with its latest and waiting executions, its transition and condition states, and the
//! latest execution of each action.

use serde::{Deserialize, Serialize};

use super::conditions::{StageConditionStateOut, condition_state};
use super::urls::{execution_url, render, settings};
use super::{Ctx, find, shown_type, status_name};
use crate::protocol::{ApiError, Reply};
use crate::state::catalogue::Catalogue;
use crate::state::declaration::ActionCategory;
use crate::state::declaration::ConditionKind;
use crate::state::execution::RetryTrigger;
use crate::state::execution::{
    ActionRun, ActionStatus, At, ErrorDetails, Execution, ExecutionType, Place, TransitionState,
};
use crate::state::{PartitionData, Scope, Timestamp};

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
struct ActionExecutionOut {
    /// Absent for a polling source's failure to read its object, which is no execution.
    #[serde(skip_serializing_if = "Option::is_none")]
    action_execution_id: Option<String>,
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
        action_execution_id: Some(run.id.to_string()),
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
                .filter_map(|&i| runtime.executions.at(i))
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
                runtime.latest_in_stage.get(&stage.name).and_then(|&i| runtime.executions.at(i)).and_then(|e| {
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
                    let latest_run = runtime
                        .latest_runs
                        .get(&(stage.name.clone(), action.name.clone()))
                        .and_then(|&(e, r)| runtime.executions.at(e).map(|e| (e, r)))
                        .and_then(|(e, r)| e.actions.at(r).map(|run| (e, run)));
                    // A polling source that cannot read its object shows that instead of its latest run, and no
                    // current revision, until it reads it again [real AWS session, issue 28].
                    let poll_failure = runtime
                        .poll_failures
                        .get(&action.name)
                        .filter(|_| stage_index == 0)
                        .filter(|f| latest_run.is_none_or(|(_, run)| run.start_time <= f.at));
                    let revision = runtime
                        .current_revisions
                        .get(&action.name)
                        .filter(|_| action.action_type_id.category == ActionCategory::Source && poll_failure.is_none());
                    let latest_execution = match poll_failure {
                        Some(failure) => Some(ActionExecutionOut {
                            action_execution_id: None,
                            status: ActionStatus::Failed,
                            summary: None,
                            last_status_change: Some(failure.at),
                            token: None,
                            last_updated_by: None,
                            external_execution_id: None,
                            external_execution_url: None,
                            percent_complete: None,
                            error_details: Some(failure.error.clone()),
                        }),
                        None => latest_run.map(|(e, run)| {
                            action_execution_out(data, ctx.catalogue, &ctx.scope, e, run, e.pipeline_version != version)
                        }),
                    };
                    ActionStateOut {
                        action_name: action.name.clone(),
                        current_revision: revision.map(|r| CurrentRevisionOut {
                            revision_id: r.revision_id.clone(),
                            revision_change_id: r.change_id().map(str::to_string),
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
