//! Lambda invoke actions for real: when a Lambda endpoint is configured (`--lambda-endpoint`), an `AWS/Invoke/Lambda`
//! action gets a job, and the emulator invokes the configured function asynchronously (as AWS does) with the
//! `CodePipeline.job` event. The function answers with PutJobSuccessResult or PutJobFailureResult against this
//! emulator; until it does, the action stays in progress (and times out after 20 minutes, as on AWS).
//!
//! A `LambdaInvoke` rule of a stage condition calls its function too, synchronously: see [`rule_pending`].
//!
//! The invocation is signed with SigV4 (service `lambda`) using the configured keys, so it is accepted by
//! endpoints that check signatures. An invocation the endpoint refuses, or an endpoint that cannot be reached,
//! fails the action at once with the reason in its error details.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde_json::{Value, json};
use tokio::sync::mpsc;
use uuid::Uuid;

use super::Engine;
use crate::state::execution::{ActionStatus, ErrorDetails, JobStatus, Outcome, Pending, RuleStatus, Success};
use crate::state::{PipelineRecord, Scope, Store, Timestamp};

/// Where Lambda functions are invoked, and the keys invocations are signed with.
#[derive(Debug, Clone)]
pub struct LambdaSettings {
    /// Base URL of the Lambda API, without a trailing slash (e.g. `http://localhost:4566`).
    pub endpoint: String,
    pub access_key_id: String,
    pub secret_access_key: String,
}

/// One invocation to make: a job of a Lambda action, or a LambdaInvoke rule.
#[derive(Debug)]
pub struct Invocation {
    scope: Scope,
    pipeline: String,
    target: Target,
    function: String,
    region: String,
    payload: Bytes,
}

/// What an invocation is for.
#[derive(Debug, Clone, Copy)]
enum Target {
    /// A job of a Lambda action: invoked asynchronously; the function answers through the job API.
    Job(Uuid),
    /// A LambdaInvoke rule run: invoked synchronously; what the function returns decides the rule.
    Rule { execution: usize, rule: usize, id: Uuid },
}

/// How long an asynchronous invocation request may take before it counts as unreachable.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a synchronous (rule) invocation may take: Lambda's longest run, 15 minutes.
const RULE_REQUEST_TIMEOUT: Duration = Duration::from_secs(15 * 60);

/// Characters kept as they are in a path segment: RFC 3986 unreserved.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');

/// How long a Lambda action waits for its function's answer, from its start or from its latest continuation.
const ANSWER_WINDOW_MILLIS: i64 = 20 * 60 * 1000;
/// The longest a Lambda action may keep running by continuing.
const MAX_RUN_MILLIS: i64 = 24 * 60 * 60 * 1000;

/// The function a Lambda action invokes (its configuration with variables resolved).
pub fn function_name(record: &PipelineRecord, execution: usize, run: usize) -> Option<String> {
    let execution = record.runtime.executions.get(execution)?;
    let run = execution.actions.get(run)?;
    let declared = execution.declaration.stages.get(run.stage())?.actions.get(run.action())?;
    run.configuration(Some(declared)).get("FunctionName").map(str::to_string)
}

/// A function that continues gets another 20 minutes to answer, up to 24 hours from the action's start \[DOC\].
pub fn extend_timeout(record: &mut PipelineRecord, execution: usize, run: usize, now: Timestamp) {
    let Some(run) = record.runtime.executions.get_mut(execution).and_then(|e| e.actions.get_mut(run)) else { return };
    let limit = run.start_time.millis().saturating_add(MAX_RUN_MILLIS);
    let due = Timestamp::from_millis(now.millis().saturating_add(ANSWER_WINDOW_MILLIS).min(limit));
    if let Some(Pending::External { timeout: Some(timeout), .. }) = run.pending.as_deref_mut() {
        *timeout = due;
    }
}

/// What a LambdaInvoke rule waits for while its function runs: the function's answer, for at most Lambda's
/// longest run.
pub fn rule_pending(now: Timestamp) -> Pending {
    let timeout = now.plus_millis(RULE_REQUEST_TIMEOUT.as_millis().try_into().unwrap_or(i64::MAX));
    let on_timeout = ErrorDetails {
        code: "JobFailed".into(),
        message: "The AWS Lambda function did not return within 15 minutes.".into(),
    };
    Pending::External { timeout: Some(timeout), on_timeout: Box::new(on_timeout) }
}

/// Takes the Lambda jobs and LambdaInvoke rule runs created since the last call and builds their invocations.
pub fn take_invocations(scope: &Scope, pipeline: &str, record: &mut PipelineRecord) -> Vec<Invocation> {
    let mut out = job_invocations(scope, pipeline, record);
    for (execution, rule) in std::mem::take(&mut record.runtime.undelivered_rules) {
        out.extend(rule_invocation(scope, pipeline, record, execution, rule));
    }
    out
}

/// The invocation of a LambdaInvoke rule. UNCONFIRMED: AWS does not document the event a rule's function gets or
/// how its answer is read. The emulator invokes it synchronously with the rule's context and resolved
/// configuration; the rule succeeds when the function returns, and fails with the function's error message when it
/// raises one.
fn rule_invocation(
    scope: &Scope,
    pipeline: &str,
    record: &PipelineRecord,
    execution: usize,
    rule: usize,
) -> Option<Invocation> {
    let running = record.runtime.executions.get(execution)?;
    let run = running.rules().get(rule)?;
    let declared = running.rule_declaration(run)?;
    let configuration = run.configuration(Some(declared)).to_map();
    let stage = running.declaration.stages.get(run.stage_index as usize).map(|s| s.name.as_str());
    let artifacts: Vec<_> = run.input_artifacts.iter().map(|a| super::jobs::artifact_out(running, a)).collect();
    let event = json!({
        "pipelineName": pipeline,
        "pipelineExecutionId": running.id.to_string(),
        "stageName": stage,
        "ruleName": declared.name,
        "ruleExecutionId": run.id.to_string(),
        "accountId": scope.account,
        "configuration": configuration,
        "inputArtifacts": artifacts,
    });
    Some(Invocation {
        scope: scope.clone(),
        pipeline: pipeline.to_string(),
        target: Target::Rule { execution, rule, id: run.id },
        function: configuration.get("FunctionName").cloned().unwrap_or_default(),
        region: declared.region.clone().unwrap_or_else(|| scope.region.clone()),
        payload: Bytes::from(serde_json::to_vec(&event).unwrap_or_default()),
    })
}

/// The invocations of Lambda jobs: the `CodePipeline.job` event AWS sends (job id, account id, and the job data
/// without the parts only job workers get).
fn job_invocations(scope: &Scope, pipeline: &str, record: &mut PipelineRecord) -> Vec<Invocation> {
    let jobs = std::mem::take(&mut record.runtime.undelivered);
    let mut out = Vec::with_capacity(jobs.len());
    for job in jobs {
        let Some((execution, run)) = record.runtime.jobs.get(&job).map(|j| (j.execution, j.run)) else { continue };
        let Some(data) = super::jobs::job_data(record, pipeline, job) else { continue };
        let Ok(mut data) = serde_json::to_value(&data) else { continue };
        if let Value::Object(map) = &mut data {
            // The Lambda event carries configuration, artifacts, credentials and continuation token only.
            map.remove("actionTypeId");
            map.remove("pipelineContext");
        }
        let function = function_name(record, execution, run).unwrap_or_default();
        let region = record
            .runtime
            .executions
            .get(execution)
            .and_then(|e| e.actions.get(run))
            .and_then(|r| r.region())
            .unwrap_or(&scope.region)
            .to_string();
        let event = json!({"CodePipeline.job": {"id": job.to_string(), "accountId": scope.account, "data": data}});
        let payload = Bytes::from(serde_json::to_vec(&event).unwrap_or_default());
        let target = Target::Job(job);
        out.push(Invocation {
            scope: scope.clone(),
            pipeline: pipeline.to_string(),
            target,
            function,
            region,
            payload,
        });
    }
    out
}

/// The invoker: makes each invocation as it comes, concurrently, until the channel closes.
pub async fn run(
    engine: Arc<Engine>,
    store: Arc<Store>,
    settings: LambdaSettings,
    mut invocations: mpsc::UnboundedReceiver<Invocation>,
) {
    let client: Client<HttpConnector, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let settings = Arc::new(settings);
    while let Some(invocation) = invocations.recv().await {
        let (engine, store, client, settings) =
            (Arc::clone(&engine), Arc::clone(&store), client.clone(), Arc::clone(&settings));
        tokio::spawn(async move {
            let result = invoke(&client, &settings, &invocation).await;
            record_result(&engine, &store, &invocation, result);
        });
    }
}

/// What came of an invocation: accepted (with the function's answer, for a synchronous one), or why not.
type InvokeResult = Result<Answer, ErrorDetails>;

/// What a function answered to a synchronous invocation.
#[derive(Debug, Default)]
struct Answer {
    /// Lambda's `X-Amz-Function-Error`: the function raised an error.
    function_error: bool,
    body: Bytes,
}

async fn invoke(
    client: &Client<HttpConnector, Full<Bytes>>,
    settings: &LambdaSettings,
    call: &Invocation,
) -> InvokeResult {
    let function = &call.function;
    let uri =
        format!("{}/2015-03-31/functions/{}/invocations", settings.endpoint, utf8_percent_encode(function, SEGMENT));
    let failed = |message: String| ErrorDetails { code: "JobFailed".to_string(), message };
    let not_invoked = |e: String| failed(format!("The AWS Lambda function {function} could not be invoked: {e}"));
    let (invocation_type, timeout) = match call.target {
        Target::Job(_) => ("Event", REQUEST_TIMEOUT),
        Target::Rule { .. } => ("RequestResponse", RULE_REQUEST_TIMEOUT),
    };
    let mut request = axum::http::Request::builder()
        .method("POST")
        .uri(&uri)
        .header("content-type", "application/json")
        .header("x-amz-invocation-type", invocation_type)
        .body(Full::new(call.payload.clone()))
        .map_err(|e| not_invoked(e.to_string()))?;
    sign_request(&mut request, settings, &call.region, &call.payload).map_err(not_invoked)?;
    let response = match tokio::time::timeout(timeout, client.request(request)).await {
        Ok(Ok(response)) => response,
        Ok(Err(e)) => {
            return Err(failed(format!("The Lambda endpoint {} could not be reached: {e}", settings.endpoint)));
        }
        Err(_) => {
            return Err(failed(format!("The Lambda endpoint {} did not answer in time", settings.endpoint)));
        }
    };
    let status = response.status();
    let function_error = response.headers().contains_key("x-amz-function-error");
    let body = response.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
    if status.is_success() {
        return Ok(Answer { function_error, body });
    }
    let detail: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let reason = detail
        .get("message")
        .or_else(|| detail.get("Message"))
        .and_then(Value::as_str)
        .map_or_else(|| String::from_utf8_lossy(&body).chars().take(512).collect(), str::to_string);
    // A missing function is AWS's configuration error, in its words [NATIVE]; the wording of other refusals
    // (permissions, throttling) is UNCONFIRMED: they fail the job with Lambda's own reason.
    Err(if status == axum::http::StatusCode::NOT_FOUND {
        ErrorDetails {
            code: "ConfigurationError".to_string(),
            message: format!("The AWS Lambda function {function} does not exist."),
        }
    } else {
        failed(format!("The AWS Lambda function {function} could not be invoked ({status}): {reason}"))
    })
}

fn sign_request(
    request: &mut axum::http::Request<Full<Bytes>>,
    settings: &LambdaSettings,
    region: &str,
    body: &[u8],
) -> Result<(), String> {
    let identity =
        Credentials::new(&settings.access_key_id, &settings.secret_access_key, None, None, "codepipeline-local").into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name("lambda")
        .time(SystemTime::now())
        .settings(SigningSettings::default())
        .build()
        .map_err(|e| e.to_string())?
        .into();
    let uri = request.uri().to_string();
    let headers = request.headers().iter().filter_map(|(k, v)| Some((k.as_str(), v.to_str().ok()?)));
    let signable = SignableRequest::new("POST", &uri, headers, SignableBody::Bytes(body)).map_err(|e| e.to_string())?;
    let (instructions, _) = sign(signable, &params).map_err(|e| e.to_string())?.into_parts();
    instructions.apply_to_request_http1x(request);
    Ok(())
}

/// Records what came of an invocation.
fn record_result(engine: &Engine, store: &Store, call: &Invocation, result: InvokeResult) {
    let now = store.clock().now();
    store.write(&call.scope, |data| {
        let Some(record) = data.pipelines.get_mut(&call.pipeline) else { return };
        let changed = match call.target {
            Target::Job(job) => record_job_result(record, call, job, result, now),
            Target::Rule { execution, rule, id } => {
                record_rule_result(record, call, (execution, rule, id), result, now)
            }
        };
        if changed {
            engine.advance(&call.scope, &call.pipeline, record, now);
        }
    });
}

/// A failed invocation fails its action (unless the job was already answered or the action ended otherwise); an
/// accepted one shows the function as the action's external execution id. Returns whether the action ended.
fn record_job_result(
    record: &mut PipelineRecord,
    call: &Invocation,
    job: Uuid,
    result: InvokeResult,
    now: Timestamp,
) -> bool {
    let Some(found) = record.runtime.jobs.get(&job) else { return false };
    let (execution, run) = (found.execution, found.run);
    let open = !found.status.is_terminal()
        && record
            .runtime
            .executions
            .get(execution)
            .and_then(|e| e.actions.get(run))
            .is_some_and(|r| r.status == ActionStatus::InProgress);
    match result {
        // Invoked: the action shows its function as its external execution id while it runs [NATIVE].
        Ok(_) if open => {
            if let Some(r) = record.runtime.executions.get_mut(execution).and_then(|e| e.actions.get_mut(run)) {
                r.external_execution_id = Some(call.function.clone().into_boxed_str());
                r.last_status_change = Some(now);
            }
            false
        }
        Err(error) if open => {
            tracing::warn!(pipeline = %call.pipeline, function = %call.function, "{}", error.message);
            if let Some(job) = record.runtime.jobs.get_mut(&job) {
                job.status = JobStatus::Failed;
            }
            super::step::finish_action(record, execution, run, Outcome::Fail(error), now, None);
            true
        }
        _ => false,
    }
}

/// A rule whose function returned succeeds; one whose function raised an error, or that could not be invoked,
/// fails. Returns whether the rule ended (it may have ended otherwise meanwhile: overridden, abandoned, timed out).
fn record_rule_result(
    record: &mut PipelineRecord,
    call: &Invocation,
    (execution, rule, id): (usize, usize, Uuid),
    result: InvokeResult,
    now: Timestamp,
) -> bool {
    let open = record
        .runtime
        .executions
        .get(execution)
        .and_then(|e| e.rules().get(rule))
        .is_some_and(|r| r.id == id && r.status == RuleStatus::InProgress);
    if !open {
        return false;
    }
    let function = &call.function;
    let outcome = match result {
        Ok(answer) if answer.function_error => {
            let detail: Value = serde_json::from_slice(&answer.body).unwrap_or(Value::Null);
            let message = detail.get("errorMessage").and_then(Value::as_str).map_or_else(
                || format!("The AWS Lambda function {function} failed: {}", String::from_utf8_lossy(&answer.body)),
                str::to_string,
            );
            Outcome::Fail(ErrorDetails { code: "JobFailed".into(), message })
        }
        Ok(answer) => {
            // A string the function returns is the rule's summary.
            let returned: Value = serde_json::from_slice(&answer.body).unwrap_or(Value::Null);
            let summary = returned
                .as_str()
                .map_or_else(|| format!("The AWS Lambda function {function} succeeded."), str::to_string);
            Outcome::Succeed(Success {
                summary: Some(summary),
                external_execution_id: Some(function.clone()),
                ..Success::default()
            })
        }
        Err(error) => {
            tracing::warn!(pipeline = %call.pipeline, function = %function, "{}", error.message);
            Outcome::Fail(error)
        }
    };
    super::conditions::finish_rule(record, execution, rule, outcome, now);
    true
}
