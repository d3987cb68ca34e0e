//! Stage conditions: OverrideStageCondition, ListRuleExecutions, and the condition states GetPipelineState shows
//! (behaviour.md §5.2). The engine evaluates the conditions (`engine::conditions`).

use serde::{Deserialize, Serialize};

use super::Ctx;
use super::action_history::{ArtifactDetailOut, ConfigOut, HistoryFilter, HistoryQuery, history_page};
use super::{ErrorDetailsOut, pipeline_not_found, stage_not_found};
use crate::engine::commands::condition::{OverrideCondition, OverrideRefusal};
use crate::protocol::{ApiError, ErrorCode, Reply};
use crate::state::Timestamp;
use crate::state::declaration::ConditionKind;
use crate::state::declaration::RuleTypeId;
use crate::state::execution::{At, ConditionStatus, ConfigView, Execution, RuleRun, RuleStatus};

// --- GetPipelineState -----------------------------------------------------------------------------------------------

/// `StageConditionsExecution`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct StageConditionsExecutionOut {
    status: ConditionStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    summary: Option<String>,
}

/// `ConditionExecution`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ConditionExecutionOut {
    status: ConditionStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    summary: Option<String>,
    last_status_change: Timestamp,
}

/// `RuleExecution`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct RuleExecutionOut {
    rule_execution_id: String,
    status: RuleStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    summary: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    last_status_change: Option<Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    external_execution_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error_details: Option<crate::state::execution::ErrorDetails>,
}

/// `RuleState`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct RuleStateOut {
    rule_name: String,
    latest_execution: RuleExecutionOut,
}

/// `ConditionState`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ConditionStateOut {
    latest_execution: ConditionExecutionOut,
    rule_states: Vec<RuleStateOut>,
}

/// `StageConditionState`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct StageConditionStateOut {
    latest_execution: StageConditionsExecutionOut,
    condition_states: Vec<ConditionStateOut>,
}

/// The state of stage `stage`'s condition of `kind` in the stage's latest execution, if it was evaluated there.
pub(super) fn condition_state(
    latest: Option<&Execution>,
    stage: &str,
    kind: ConditionKind,
) -> Option<StageConditionStateOut> {
    let execution = latest?;
    let index = execution.declaration.stages.iter().position(|s| s.name == stage)?;
    let condition = execution.condition(index, kind)?;
    let summary = condition.summary.as_deref().map(str::to_string);
    let rule_states = condition
        .rules
        .iter()
        .filter_map(|&r| execution.rules().at(r))
        .map(|rule| RuleStateOut {
            rule_name: execution.rule_declaration(rule).map(|d| d.name.clone()).unwrap_or_default(),
            latest_execution: RuleExecutionOut {
                rule_execution_id: rule.id.to_string(),
                status: rule.status,
                summary: rule.summary.as_deref().map(str::to_string),
                last_status_change: rule.last_status_change,
                external_execution_id: rule.external_execution_id.as_deref().map(str::to_string),
                error_details: rule.error.as_deref().cloned(),
            },
        })
        .collect();
    Some(StageConditionStateOut {
        latest_execution: StageConditionsExecutionOut { status: condition.status, summary: summary.clone() },
        condition_states: vec![ConditionStateOut {
            latest_execution: ConditionExecutionOut {
                status: condition.status,
                summary,
                last_status_change: condition.last_status_change,
            },
            rule_states,
        }],
    })
}

// --- OverrideStageCondition -----------------------------------------------------------------------------------------

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OverrideStageConditionInput {
    pipeline_name: String,
    stage_name: String,
    pipeline_execution_id: String,
    condition_type: String,
}

/// OverrideStageCondition: an entry or success condition being evaluated counts as passed, and the execution goes on.
pub fn override_stage_condition(ctx: &Ctx, input: OverrideStageConditionInput) -> Result<Reply, ApiError> {
    let (name, stage, id) = (&input.pipeline_name, &input.stage_name, &input.pipeline_execution_id);
    let kind = match input.condition_type.as_str() {
        "ON_SUCCESS" => ConditionKind::OnSuccess,
        _ => ConditionKind::BeforeEntry,
    };
    // UNCONFIRMED wordings: AWS's messages for these refusals are not public.
    let refused = |refusal| match refusal {
        OverrideRefusal::ExecutionNotFound | OverrideRefusal::NotOverridable => ApiError::new(
            ErrorCode::ConditionNotOverridableException,
            format!(
                "The {} condition of stage {stage} in execution '{id}' of pipeline {name} can't be overridden: it is \
                 not being evaluated, or its result is SKIP",
                input.condition_type
            ),
        ),
        OverrideRefusal::NotLatest => ApiError::new(
            ErrorCode::NotLatestPipelineExecutionException,
            format!(
                "The execution '{id}' is not the latest execution of stage {stage} in the {name} pipeline; only the \
                 latest execution's conditions can be overridden"
            ),
        ),
        OverrideRefusal::PipelineNotFound => pipeline_not_found(&ctx.scope.account, name),
        OverrideRefusal::StageNotFound => stage_not_found(name, stage),
    };
    let command = OverrideCondition { execution: id.clone(), stage: stage.clone(), kind };
    ctx.engine.apply(&ctx.scope, name, command)?.map_err(refused)?;
    Ok(Reply::Done)
}

// --- ListRuleExecutions ---------------------------------------------------------------------------------------------

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListRuleExecutionsInput {
    pipeline_name: String,
    filter: Option<HistoryFilter>,
    max_results: Option<i32>,
    next_token: Option<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct RuleExecutionInputOut<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    rule_type_id: Option<&'a RuleTypeId>,
    configuration: ConfigOut<'a>,
    resolved_configuration: ConfigOut<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    role_arn: Option<&'a str>,
    region: &'a str,
    input_artifacts: Vec<ArtifactDetailOut<'a>>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct RuleExecutionResultOut<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    external_execution_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    external_execution_summary: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error_details: Option<ErrorDetailsOut<'a>>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct RuleExecutionOutputOut<'a> {
    execution_result: RuleExecutionResultOut<'a>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct RuleExecutionDetailOut<'a> {
    pipeline_execution_id: String,
    rule_execution_id: String,
    pipeline_version: i32,
    stage_name: &'a str,
    rule_name: &'a str,
    start_time: Timestamp,
    last_update_time: Timestamp,
    status: RuleStatus,
    input: RuleExecutionInputOut<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    output: Option<RuleExecutionOutputOut<'a>>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ListRuleExecutionsOutput<'a> {
    rule_execution_details: Vec<RuleExecutionDetailOut<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_token: Option<String>,
}

fn rule_detail<'a>(ctx: &'a Ctx, execution: &'a Execution, run: &'a RuleRun) -> RuleExecutionDetailOut<'a> {
    let rule = execution.rule_declaration(run);
    let stage_name = execution.declaration.stages.get(run.stage_index as usize).map_or("", |s| s.name.as_str());
    RuleExecutionDetailOut {
        pipeline_execution_id: execution.id.to_string(),
        rule_execution_id: run.id.to_string(),
        pipeline_version: execution.pipeline_version,
        stage_name,
        rule_name: rule.map_or("", |r| r.name.as_str()),
        start_time: run.start_time,
        last_update_time: run.last_update_time,
        status: run.status,
        input: RuleExecutionInputOut {
            rule_type_id: rule.map(|r| &r.rule_type_id),
            configuration: ConfigOut::rule(ConfigView::new(rule.and_then(|r| r.configuration.as_ref()), None)),
            resolved_configuration: ConfigOut::rule(run.configuration(rule)),
            role_arn: rule.and_then(|r| r.role_arn.as_deref()),
            region: rule.and_then(|r| r.region.as_deref()).unwrap_or(&ctx.scope.region),
            input_artifacts: run.input_artifacts.iter().map(|a| ArtifactDetailOut::of(a)).collect(),
        },
        // A running rule has no result yet.
        output: (run.status != RuleStatus::InProgress).then(|| RuleExecutionOutputOut {
            execution_result: RuleExecutionResultOut {
                external_execution_id: run.external_execution_id.as_deref(),
                external_execution_summary: run.summary.as_deref(),
                error_details: run
                    .error
                    .as_deref()
                    .map(|e| ErrorDetailsOut { code: e.code.as_str(), message: &e.message }),
            },
        }),
    }
}

/// ListRuleExecutions: rule executions newest first, filtered by execution (every evaluation) or by the latest
/// evaluation of each rule in an execution.
pub fn list_rule_executions(ctx: &Ctx, input: ListRuleExecutionsInput) -> Result<Reply, ApiError> {
    let query = HistoryQuery {
        operation: "ListRuleExecutions",
        pipeline: &input.pipeline_name,
        filter: input.filter.as_ref(),
        next_token: input.next_token.as_deref(),
        max_results: input.max_results,
    };
    ctx.store.read(&ctx.scope, |data| {
        let key = |r: &RuleRun| (r.stage_index, r.kind, r.rule_index);
        let page = history_page(ctx, data, &query, |e| e.rules(), key, |r| r.seq)?;
        let details = page.items.into_iter().map(|(e, r)| rule_detail(ctx, e, r)).collect();
        Reply::json(&ListRuleExecutionsOutput { rule_execution_details: details, next_token: page.next_token })
    })
}
