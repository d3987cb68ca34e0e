//! ListActionExecutions, and the history paging that ListRuleExecutions shares: filters by execution or by the latest
//! execution, newest first, and the input and output members of an action execution.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::urls::{execution_url, settings};
use super::{Ctx, execution_not_found, newest_first, page_size};
use crate::protocol::pagination::{Page, paginate};
use crate::protocol::{ApiError, ErrorCode, Reply};
use crate::state::execution::{ActionRun, ActionStatus, ArtifactInstance, ConfigView, Execution};
use crate::state::{Definition, PartitionData, SECRET_MASK, Timestamp};

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
    error_details: Option<ErrorCodeOut<'a>>,
}

/// A failure in the history: its code only; the message is the result's `externalExecutionSummary` [NATIVE, issue
/// 28: an S3 deploy's ConfigurationError; the reference's StartBuild refusal reads the same].
#[derive(Serialize)]
struct ErrorCodeOut<'a> {
    code: &'a str,
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
                error_details: run.error().map(|e| ErrorCodeOut { code: e.code.as_str() }),
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
