//! The Lambda provider's [`Worker`]: it makes each [`Invocation`] handed to it once the change that made it is saved
//! (asynchronously for a Lambda action's job, synchronously for a LambdaInvoke rule), signed with SigV4 (service
//! `lambda`) using the configured keys so that endpoints that check signatures accept it, and gives what came of it
//! back to the engine as a [`RecordInvocation`] command. An invocation the endpoint refuses, or an endpoint that
//! cannot be reached, fails the action at once with the reason in its error details.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde_json::Value;

use super::{Answer, Invocation, InvokeResult, RULE_REQUEST_TIMEOUT, Target};
use crate::engine::Engine;
use crate::engine::commands::invocation::RecordInvocation;
use crate::engine::outbound;
use crate::engine::providers::Worker;
use crate::state::execution::{ErrorDetails, FailureType};

/// Where Lambda functions are invoked, and the keys invocations are signed with.
#[derive(Debug, Clone)]
pub struct LambdaSettings {
    /// Base URL of the Lambda API, without a trailing slash (e.g. `http://localhost:4566`).
    pub endpoint: String,
    pub access_key_id: String,
    pub secret_access_key: String,
    /// What TLS neighbours are trusted.
    pub trust: crate::engine::outbound::Trust,
}

/// How long an asynchronous invocation request may take before it counts as unreachable.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Characters kept as they are in a path segment: RFC 3986 unreserved.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');

/// The invoker: makes each invocation handed to it, concurrently with the others.
pub struct Invoker {
    client: outbound::HttpClient,
    settings: LambdaSettings,
}

impl Invoker {
    /// An invoker calling the Lambda API that `settings` names.
    pub fn new(settings: LambdaSettings) -> Invoker {
        Invoker { client: outbound::client(&settings.trust), settings }
    }
}

impl Worker for Invoker {
    type Work = Invocation;

    async fn work(self: Arc<Self>, engine: Arc<Engine>, call: Invocation) {
        let result = invoke(&self.client, &self.settings, &call).await;
        let (scope, pipeline) = (call.scope.clone(), call.pipeline.clone());
        match engine.apply(&scope, &pipeline, RecordInvocation { call, result }) {
            Ok(Ok(())) => {}
            // The pipeline was deleted meanwhile: nothing is left to tell.
            Ok(Err(_)) => {}
            Err(unavailable) => {
                tracing::error!(%pipeline, "the result of a Lambda invocation was not saved: {unavailable}");
            }
        }
    }
}

async fn invoke(client: &outbound::HttpClient, settings: &LambdaSettings, call: &Invocation) -> InvokeResult {
    let function = &call.function;
    let uri =
        format!("{}/2015-03-31/functions/{}/invocations", settings.endpoint, utf8_percent_encode(function, SEGMENT));
    let failed = |message: String| ErrorDetails::job_failed(message);
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
            code: FailureType::ConfigurationError,
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
    let keys = (settings.access_key_id.as_str(), settings.secret_access_key.as_str());
    outbound::sign_for(request, keys, "lambda", region, body)
}
