//! CodePipeline's operations: one function per operation, grouped by resource.
//!
//! [`dispatch`] validates the request against the service model, deserializes it into the operation's typed input
//! and calls the operation with a [`Ctx`]. A body the quick pass (`protocol::precheck`) calls clean is deserialized
//! straight from its bytes; any other is parsed and validated in full, which words the error. Its `match` is exhaustive over [`Operation`]: a new variant does not
//! compile until it is routed. Operations are synchronous functions of (context, input) to (reply or error); they
//! know nothing of HTTP.

pub mod action_history;
pub mod action_types;
pub mod approvals;
pub mod authorize;
pub mod conditions;
pub mod executions;
pub mod jobs;
pub mod pipeline_state;
pub mod pipelines;
pub mod revisions;
pub mod stages;
pub mod structure;
pub mod tags;
pub mod urls;
pub mod webhooks;

use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::engine::Engine;
use crate::protocol::body::parse_json;
use crate::protocol::model::Model;
use crate::protocol::precheck::is_clean;
use crate::protocol::validate::validate;
use crate::protocol::{ApiError, ErrorCode, Operation, Reply};
use crate::state::catalogue::Catalogue;
use crate::state::{PartitionData, PipelineRecord, Scope, Timestamp};
use crate::store::Store;

/// What an operation may use besides its input.
pub struct Ctx<'a> {
    /// All emulator state.
    pub store: &'a Store,
    /// The account and region the request addresses.
    pub scope: Scope,
    /// Who signed the request, with `--verify-signatures` (else the account's root stands for the caller).
    pub principal: Option<std::sync::Arc<crate::protocol::sigv4::Principal>>,
    /// `--enforce-iam`: the principal's policies decide what it may do ([`authorize`]).
    pub enforce: bool,
    /// The built-in action and rule types.
    pub catalogue: &'a Catalogue,
    /// The execution engine.
    pub engine: &'a Engine,
    /// The request id, for log lines.
    pub request_id: &'a str,
    /// The base of URLs this server hands out (webhook URLs): `--public-url`, else `http://<Host header>`. Worked
    /// out only by the operations that hand URLs out.
    pub base_url: &'a (dyn Fn() -> String + 'a),
}

impl Ctx<'_> {
    /// The ARN of the caller: the signer's with `--verify-signatures`, else the account's root.
    pub fn caller_arn(&self) -> String {
        self.principal.as_ref().map_or_else(|| self.scope.caller_arn(), |p| p.arn.clone())
    }

    /// The emulator's current time.
    pub fn now(&self) -> Timestamp {
        self.store.clock().now()
    }

    /// What a page token of `operation` is sealed to: the operation and the caller's account and region, and for a
    /// listing within one resource (a pipeline's executions) that resource, so a token is refused anywhere else.
    pub fn page_kind(&self, operation: &str, within: Option<&str>) -> String {
        let mut kind = format!("{operation}\u{0}{}\u{0}{}", self.scope.account, self.scope.region);
        if let Some(resource) = within {
            kind.push('\u{0}');
            kind.push_str(resource);
        }
        kind
    }
}

/// Validates the request body against the operation's input shape, then runs the operation.
pub fn dispatch(ctx: &Ctx, model: &Model, op: Operation, bytes: &[u8]) -> Result<Reply, ApiError> {
    let shapes = model.operation(op.name());
    let body = match shapes.and_then(|m| m.input) {
        Some(input) if is_clean(model, input, bytes) => Body::Clean(bytes),
        input => {
            let value = parse_json(bytes)?;
            if let Some(input) = input {
                validate(model, input, &value)?;
            }
            Body::Parsed(value)
        }
    };
    // A valid request, then may its caller make it? (AWS answers a malformed request's errors first.)
    if ctx.enforce {
        match &body {
            Body::Clean(bytes) => authorize::authorize(ctx, op, &parse_json(bytes)?)?,
            Body::Parsed(value) => authorize::authorize(ctx, op, value)?,
        }
    }
    let has_output = shapes.is_some_and(|m| m.output.is_some());
    run(ctx, op, body).map(|reply| reply.for_output(has_output))
}

/// A validated request body.
enum Body<'b> {
    /// The bytes of a body the quick pass found clean.
    Clean(&'b [u8]),
    /// A body parsed and validated in full.
    Parsed(Value),
}

/// Runs a validated operation.
fn run(ctx: &Ctx, op: Operation, body: Body) -> Result<Reply, ApiError> {
    match op {
        Operation::CreatePipeline => call(ctx, body, pipelines::create_pipeline),
        Operation::GetPipeline => call(ctx, body, pipelines::get_pipeline),
        Operation::UpdatePipeline => call(ctx, body, pipelines::update_pipeline),
        Operation::DeletePipeline => call(ctx, body, pipelines::delete_pipeline),
        Operation::ListPipelines => call(ctx, body, pipelines::list_pipelines),

        Operation::ListActionTypes => call(ctx, body, action_types::list_action_types),
        Operation::CreateCustomActionType => call(ctx, body, action_types::create_custom_action_type),
        Operation::DeleteCustomActionType => call(ctx, body, action_types::delete_custom_action_type),
        Operation::GetActionType => call(ctx, body, action_types::get_action_type),
        Operation::UpdateActionType => call(ctx, body, action_types::update_action_type),
        Operation::ListRuleTypes => call(ctx, body, action_types::list_rule_types),

        Operation::TagResource => call(ctx, body, tags::tag_resource),
        Operation::UntagResource => call(ctx, body, tags::untag_resource),
        Operation::ListTagsForResource => call(ctx, body, tags::list_tags_for_resource),

        Operation::PutWebhook => call(ctx, body, webhooks::put_webhook),
        Operation::ListWebhooks => call(ctx, body, webhooks::list_webhooks),
        Operation::DeleteWebhook => call(ctx, body, webhooks::delete_webhook),
        Operation::RegisterWebhookWithThirdParty => call(ctx, body, webhooks::register_webhook),
        Operation::DeregisterWebhookWithThirdParty => call(ctx, body, webhooks::deregister_webhook),

        Operation::StartPipelineExecution => call(ctx, body, executions::start_pipeline_execution),
        Operation::StopPipelineExecution => call(ctx, body, executions::stop_pipeline_execution),
        Operation::GetPipelineState => call(ctx, body, pipeline_state::get_pipeline_state),
        Operation::GetPipelineExecution => call(ctx, body, executions::get_pipeline_execution),
        Operation::ListPipelineExecutions => call(ctx, body, executions::list_pipeline_executions),
        Operation::ListActionExecutions => call(ctx, body, action_history::list_action_executions),
        Operation::PutApprovalResult => call(ctx, body, approvals::put_approval_result),
        Operation::DisableStageTransition => call(ctx, body, stages::disable_stage_transition),
        Operation::EnableStageTransition => call(ctx, body, stages::enable_stage_transition),
        Operation::PutActionRevision => call(ctx, body, revisions::put_action_revision),
        Operation::ListDeployActionExecutionTargets => call(ctx, body, revisions::list_deploy_action_execution_targets),

        Operation::PollForJobs => call(ctx, body, jobs::poll_for_jobs),
        Operation::AcknowledgeJob => call(ctx, body, jobs::acknowledge_job),
        Operation::GetJobDetails => call(ctx, body, jobs::get_job_details),
        Operation::PutJobSuccessResult => call(ctx, body, jobs::put_job_success_result),
        Operation::PutJobFailureResult => call(ctx, body, jobs::put_job_failure_result),

        Operation::PollForThirdPartyJobs => call(ctx, body, jobs::poll_for_third_party_jobs),
        Operation::AcknowledgeThirdPartyJob => call(ctx, body, jobs::acknowledge_third_party_job),
        Operation::GetThirdPartyJobDetails => call(ctx, body, jobs::get_third_party_job_details),
        Operation::PutThirdPartyJobSuccessResult => call(ctx, body, jobs::put_third_party_job_success_result),
        Operation::PutThirdPartyJobFailureResult => call(ctx, body, jobs::put_third_party_job_failure_result),

        // Recovery and conditions.
        Operation::RetryStageExecution => call(ctx, body, stages::retry_stage_execution),
        Operation::RollbackStage => call(ctx, body, stages::rollback_stage),
        Operation::OverrideStageCondition => call(ctx, body, conditions::override_stage_condition),
        Operation::ListRuleExecutions => call(ctx, body, conditions::list_rule_executions),
    }
}

/// Reads the input and runs one operation. Never inlined, and each operation is called through a pointer, so that
/// `run` stays a small table: a request pages in only its own operation's code (one function holding all 44 was
/// 380 KB, and a first request touched pages across it).
#[inline(never)]
fn call<T: DeserializeOwned>(
    ctx: &Ctx,
    body: Body,
    operation: fn(&Ctx, T) -> Result<Reply, ApiError>,
) -> Result<Reply, ApiError> {
    operation(ctx, input(body)?)
}

/// Deserializes a validated body into an operation's typed input.
fn input<T: DeserializeOwned>(body: Body) -> Result<T, ApiError> {
    let value = match body {
        Body::Parsed(value) => value,
        Body::Clean(bytes) => match serde_json::from_slice(bytes) {
            Ok(input) => return Ok(input),
            // A typed input stricter than the model (a member it requires, a member the JSON repeats, which the
            // tree keeps the last of): read it as the full path does.
            Err(_) => parse_json(bytes)?,
        },
    };
    // Validation has checked every modeled member's type, so this fails only if a typed input disagrees with the
    // model; answer as a client error rather than a 500.
    serde_json::from_value(value).map_err(|e| ApiError::new(ErrorCode::SerializationException, e.to_string()))
}

// --- Lookups and errors the operations share ------------------------------------------------------------------------

/// `PipelineNotFoundException`, as AWS words it for most operations.
pub fn pipeline_not_found(account: &str, name: &str) -> ApiError {
    ApiError::new(
        ErrorCode::PipelineNotFoundException,
        format!("Account '{account}' does not have a pipeline with name '{name}'"),
    )
}

/// The pipeline named `name`, or PipelineNotFoundException.
pub fn find<'d>(data: &'d PartitionData, account: &str, name: &str) -> Result<&'d PipelineRecord, ApiError> {
    data.pipelines.get(name).ok_or_else(|| pipeline_not_found(account, name))
}

/// A page size from a request's `maxResults`: the default when absent or not positive.
pub fn page_size(max_results: Option<i32>, default: usize) -> usize {
    max_results.and_then(|m| usize::try_from(m).ok()).filter(|m| *m > 0).unwrap_or(default)
}

/// `PipelineExecutionNotFoundException`, in the form AWS uses for rollback targets \[NATIVE\].
pub fn execution_not_found(pipeline: &str, id: &str) -> ApiError {
    ApiError::new(
        ErrorCode::PipelineExecutionNotFoundException,
        format!("Pipeline Execution with id '{id}' does not exist in pipeline with name '{pipeline}'"),
    )
}

pub(crate) fn stage_not_found(pipeline: &str, stage: &str) -> ApiError {
    // AWS's wording [NATIVE].
    ApiError::new(
        ErrorCode::StageNotFoundException,
        format!("Pipeline '{pipeline}' does not have a stage with name '{stage}'"),
    )
}

/// `ErrorDetails` as the outputs show them.
#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ErrorDetailsOut<'a> {
    pub code: &'a str,
    pub message: &'a str,
}

/// The wire name of a status enum.
pub(crate) fn status_name<T: serde::Serialize>(status: T) -> String {
    serde_json::to_value(status).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default()
}

/// A sort key that orders newer items first.
pub(super) fn newest_first(seq: u64) -> String {
    format!("{:020}", u64::MAX - seq)
}

/// The `executionType` AWS shows: `ROLLBACK` on rollback executions, nothing on standard ones.
pub(super) fn shown_type(
    execution_type: crate::state::execution::ExecutionType,
) -> Option<crate::state::execution::ExecutionType> {
    (execution_type == crate::state::execution::ExecutionType::Rollback).then_some(execution_type)
}

#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct PipelineExecutionIdOutput {
    pub pipeline_execution_id: String,
}

/// ActionNotFoundException for an action a stage of pipeline `name` does not have.
pub(crate) fn action_not_found(name: &str, stage: &str, action: &str) -> ApiError {
    ApiError::new(
        ErrorCode::ActionNotFoundException,
        format!("Stage '{stage}' of pipeline '{name}' does not have an action named '{action}'"),
    )
}

/// ActionTypeNotFoundException, as AWS words it \[NATIVE, PollForJobs\].
pub(crate) fn action_type_not_available(id: &crate::state::declaration::ActionTypeId) -> ApiError {
    ApiError::new(
        ErrorCode::ActionTypeNotFoundException,
        format!(
            "ActionType (Category: '{}', Owner: '{}', Provider: '{}', Version: '{}') is not available",
            id.category.as_str(),
            id.owner.as_str(),
            id.provider,
            id.version
        ),
    )
}
