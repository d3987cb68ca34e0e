//! Lambda invoke actions and LambdaInvoke rules against a Lambda endpoint: a fake Lambda API in the test receives the
//! signed invocations. For actions the invocation is asynchronous, and the test plays the function, answering
//! through PutJobSuccessResult/PutJobFailureResult; for rules it is synchronous, and the fake answers.

use std::collections::HashMap;

use aws_sdk_codepipeline::Client;
use aws_sdk_codepipeline::types::{ActionExecutionStatus, ExecutionDetails, PipelineExecutionStatus};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::common::{TestServer, eventually};
use crate::sdk_json;

/// One request the fake Lambda API received.
#[derive(Debug)]
struct Invoked {
    function: String,
    headers: HeaderMap,
    event: Value,
    /// The event as sent, for its member order.
    raw: String,
}

/// A fake Lambda API: records invocations; the function `missing` does not exist.
async fn fake_lambda() -> (String, mpsc::UnboundedReceiver<Invoked>) {
    let (tx, rx) = mpsc::unbounded_channel();
    async fn invoke(
        State(tx): State<mpsc::UnboundedSender<Invoked>>,
        Path(function): Path<String>,
        headers: HeaderMap,
        body: Bytes,
    ) -> impl IntoResponse {
        if function == "missing" {
            let body = json!({"Type": "User", "message": "Function not found: arn:aws:lambda:us-east-1:000000000000:function:missing"});
            return (StatusCode::NOT_FOUND, [("x-amzn-RequestId", "req-missing")], body.to_string()).into_response();
        }
        let synchronous = headers.get("x-amz-invocation-type").is_some_and(|t| t == "RequestResponse");
        let raises = function == "raises";
        let raw = String::from_utf8_lossy(&body).into_owned();
        let event = serde_json::from_slice(&body).unwrap_or(Value::Null);
        let count = tx.send(Invoked { function, headers, event, raw });
        assert!(count.is_ok(), "test gone");
        if !synchronous {
            return (StatusCode::ACCEPTED, [("x-amzn-RequestId", "req-1")], String::new()).into_response();
        }
        // A synchronous call returns what the function returned, or the error it raised.
        if raises {
            let error = json!({"errorMessage": "the canary is unhealthy", "errorType": "Exception"});
            return (StatusCode::OK, [("x-amz-function-error", "Unhandled")], error.to_string()).into_response();
        }
        (StatusCode::OK, [("x-amzn-RequestId", "req-2")], "\"all clear\"".to_string()).into_response()
    }
    let app =
        Router::new().route("/2015-03-31/functions/{function}/invocations", axum::routing::post(invoke)).with_state(tx);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app).await.expect("serve") });
    (url, rx)
}

async fn server_with_lambda(endpoint: &str) -> TestServer {
    TestServer::with_config(codepipeline_local::Config {
        action_duration_ms: 5,
        lambda_endpoint: Some(endpoint.to_string()),
        ..codepipeline_local::Config::default()
    })
    .await
}

/// Source, then a Lambda action (namespace `Fn`), then a deploy whose configuration uses the function's output.
async fn lambda_pipeline(client: &Client, function: &str) {
    let at = |c: &str, p: &str| json!({"category": c, "owner": "AWS", "provider": p, "version": "1"});
    let pipeline = json!({
        "name": "invoking", "roleArn": "arn:aws:iam::123456789012:role/r",
        "artifactStore": {"type": "S3", "location": "artifact-bucket"},
        "stages": [
            {"name": "Source", "actions": [{"name": "Src", "actionTypeId": at("Source", "S3"),
                "configuration": {"S3Bucket": "b", "S3ObjectKey": "k.zip"}, "outputArtifacts": [{"name": "Code"}]}]},
            {"name": "Check", "actions": [{"name": "Fn", "actionTypeId": at("Invoke", "Lambda"), "namespace": "Fn",
                "configuration": {"FunctionName": function, "UserParameters": "{\"env\": \"prod\"}"},
                "inputArtifacts": [{"name": "Code"}], "outputArtifacts": [{"name": "Checked"}]}]},
            {"name": "Deploy", "actions": [{"name": "Ship", "actionTypeId": at("Deploy", "S3"),
                "configuration": {"BucketName": "site-#{Fn.version}", "Extract": "true"},
                "inputArtifacts": [{"name": "Checked"}]}]}
        ]
    });
    client.create_pipeline().pipeline(sdk_json::pipeline(&pipeline)).send().await.expect("pipeline");
}

async fn execution_status(client: &Client) -> PipelineExecutionStatus {
    let executions = client.list_pipeline_executions().pipeline_name("invoking").send().await.expect("executions");
    executions.pipeline_execution_summaries()[0].status().cloned().expect("status")
}

/// The action executions of the pipeline's one execution, by action name.
async fn action_executions(client: &Client) -> HashMap<String, aws_sdk_codepipeline::types::ActionExecutionDetail> {
    let out = client.list_action_executions().pipeline_name("invoking").send().await.expect("action executions");
    out.action_execution_details()
        .iter()
        .map(|d| (d.action_name().unwrap_or_default().to_string(), d.clone()))
        .collect()
}

#[tokio::test]
async fn a_lambda_action_invokes_its_function_which_continues_and_succeeds_with_variables() {
    let (endpoint, mut invocations) = fake_lambda().await;
    let server = server_with_lambda(&endpoint).await;
    let client = server.client();
    lambda_pipeline(&client, "deployer").await;

    let first = invocations.recv().await.expect("first invocation");
    assert_eq!(first.function, "deployer");
    assert_eq!(first.headers["x-amz-invocation-type"], "Event");
    let authorization = first.headers["authorization"].to_str().expect("header");
    assert!(authorization.starts_with("AWS4-HMAC-SHA256 Credential=test/"), "{authorization}");
    assert!(authorization.contains("/us-east-1/lambda/aws4_request"), "{authorization}");
    let job = &first.event["CodePipeline.job"];
    assert_eq!(job["accountId"], "000000000000");
    let data = &job["data"];
    assert_eq!(
        data["actionConfiguration"]["configuration"],
        json!({"FunctionName": "deployer", "UserParameters": "{\"env\": \"prod\"}"})
    );
    assert_eq!(data["inputArtifacts"][0]["name"], "Code");
    assert_eq!(data["inputArtifacts"][0]["location"]["s3Location"]["bucketName"], "artifact-bucket");
    assert_eq!(data["outputArtifacts"][0]["name"], "Checked");
    assert!(data["artifactCredentials"]["accessKeyId"].is_string());
    // AWS's event [real AWS session, issue 28]: members in its order, credentials that expire (epoch ms, about 15
    // minutes on), output artifacts with a null revision and a key without an extension.
    assert!(first.raw.starts_with(r#"{"CodePipeline.job":{"id":""#), "{}", first.raw);
    let order = [
        "\"accountId\"",
        "\"data\"",
        "\"actionConfiguration\"",
        "\"inputArtifacts\"",
        "\"outputArtifacts\"",
        "\"artifactCredentials\"",
    ];
    let places: Vec<usize> = order.iter().filter_map(|m| first.raw.find(m)).collect();
    assert!(places.len() == order.len() && places.is_sorted(), "{order:?} in order: {}", first.raw);
    let expires = data["artifactCredentials"]["expirationTime"].as_i64().expect("epoch milliseconds");
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis()).unwrap_or(0);
    let ahead = i128::from(expires) - i128::try_from(now).unwrap_or(0);
    assert!((14 * 60_000..=15 * 60_000 + 5_000).contains(&ahead), "{ahead} ms ahead");
    let output = &data["outputArtifacts"][0];
    assert!(output.get("revision").is_some_and(Value::is_null), "{output}");
    let key = output["location"]["s3Location"]["objectKey"].as_str().unwrap_or_default();
    assert!(key.starts_with("invoking/Checked/") && !key.contains('.'), "{key}");
    assert!(data.get("continuationToken").is_none());
    assert!(data.get("pipelineContext").is_none(), "the Lambda event has no pipeline context: {data}");
    let job_id = job["id"].as_str().expect("job id").to_string();

    // The function can read its job like a worker, and asks to be called again.
    let details = client.get_job_details().job_id(&job_id).send().await.expect("job details");
    assert_eq!(details.job_details().and_then(|d| d.account_id()), Some("000000000000"));
    client
        .put_job_success_result()
        .job_id(&job_id)
        .continuation_token("step-2")
        .execution_details(ExecutionDetails::builder().summary("halfway").percent_complete(50).build())
        .send()
        .await
        .expect("continue");

    let second = invocations.recv().await.expect("second invocation");
    let job = &second.event["CodePipeline.job"];
    assert_eq!(job["data"]["continuationToken"], "step-2");
    let second_id = job["id"].as_str().expect("job id").to_string();
    assert_ne!(second_id, job_id, "a continuation is a new job");
    assert_eq!(execution_status(&client).await, PipelineExecutionStatus::InProgress);
    client
        .put_job_success_result()
        .job_id(&second_id)
        .output_variables("version", "42")
        .execution_details(ExecutionDetails::builder().summary("checked").external_execution_id("ignored").build())
        .current_revision(
            aws_sdk_codepipeline::types::CurrentRevision::builder()
                .revision("function-revision")
                .change_identifier("change")
                .build()
                .expect("revision"),
        )
        .send()
        .await
        .expect("succeed");

    eventually("the pipeline to succeed", || async {
        (execution_status(&client).await == PipelineExecutionStatus::Succeeded).then_some(())
    })
    .await;
    let actions = action_executions(&client).await;
    let function = &actions["Fn"];
    assert_eq!(function.status(), Some(&ActionExecutionStatus::Succeeded));
    let output = function.output().expect("output");
    assert_eq!(output.output_variables().and_then(|v| v.get("version")).map(String::as_str), Some("42"));
    // The function's name and log URL show, not what it reported [real AWS session, issue 28].
    let result = output.execution_result().expect("a result");
    assert_eq!(result.external_execution_summary(), None);
    assert_eq!(result.external_execution_id(), Some("deployer"));
    assert_eq!(
        result.external_execution_url(),
        Some(
            "https://console.aws.amazon.com/cloudwatch/home?region=us-east-1#logStream:group=%252Faws%252Flambda%252Fdeployer"
        )
    );
    let state = client.get_pipeline_state().name("invoking").send().await.expect("state");
    let latest = state.stage_states()[1].action_states()[0].latest_execution().expect("latest");
    assert_eq!((latest.summary(), latest.percent_complete()), (None, None));
    assert!(state.stage_states()[1].action_states()[0].current_revision().is_none());
    // Its currentRevision does not replace the source's revision in the execution.
    let id = crate::common::first_execution(&client, "invoking").await;
    let execution = client.get_pipeline_execution().pipeline_name("invoking").pipeline_execution_id(&id).send().await;
    let revisions = execution.expect("execution").pipeline_execution().map(|e| e.artifact_revisions().to_vec());
    let revisions = revisions.unwrap_or_default();
    assert_eq!(revisions.len(), 1);
    assert_eq!(revisions[0].name(), Some("Code"));
    assert_ne!(revisions[0].revision_id(), Some("function-revision"));
    let ship = actions["Ship"].input().and_then(|i| i.resolved_configuration()).expect("resolved configuration");
    assert_eq!(ship.get("BucketName").map(String::as_str), Some("site-42"));
}

#[tokio::test]
async fn a_function_that_reports_failure_fails_the_action() {
    let (endpoint, mut invocations) = fake_lambda().await;
    let server = server_with_lambda(&endpoint).await;
    let client = server.client();
    lambda_pipeline(&client, "deployer").await;
    let invoked = invocations.recv().await.expect("invocation");
    let job_id = invoked.event["CodePipeline.job"]["id"].as_str().expect("job id").to_string();
    client
        .put_job_failure_result()
        .job_id(&job_id)
        .failure_details(
            aws_sdk_codepipeline::types::FailureDetails::builder()
                .r#type(aws_sdk_codepipeline::types::FailureType::JobFailed)
                .message("tests failed")
                .external_execution_id("reported-id")
                .build()
                .expect("details"),
        )
        .send()
        .await
        .expect("fail");
    eventually("the pipeline to fail", || async {
        (execution_status(&client).await == PipelineExecutionStatus::Failed).then_some(())
    })
    .await;
    let state = client.get_pipeline_state().name("invoking").send().await.expect("state");
    let check = &state.stage_states()[1].action_states()[0];
    let latest = check.latest_execution().expect("latest");
    assert_eq!(latest.error_details().and_then(|e| e.message()), Some("tests failed"));
    // The function's name, not the id the failure reported [real AWS session, issue 28].
    assert_eq!(latest.external_execution_id(), Some("deployer"));
    let history = action_executions(&client).await;
    let result = history["Fn"].output().and_then(|o| o.execution_result()).expect("a result");
    assert_eq!(
        (result.external_execution_id(), result.external_execution_summary()),
        (Some("deployer"), Some("tests failed"))
    );
}

/// The error details of the Lambda action, once it has failed.
async fn failed_action_error(client: &Client) -> aws_sdk_codepipeline::types::ErrorDetails {
    eventually("the action to fail", || async {
        let state = client.get_pipeline_state().name("invoking").send().await.ok()?;
        let latest = state.stage_states()[1].action_states()[0].latest_execution()?.clone();
        (latest.status() == Some(&ActionExecutionStatus::Failed)).then(|| latest.error_details().cloned()).flatten()
    })
    .await
}

#[tokio::test]
async fn a_missing_function_or_an_unreachable_endpoint_fails_the_action_with_the_reason() {
    let (endpoint, _invocations) = fake_lambda().await;
    let server = server_with_lambda(&endpoint).await;
    let client = server.client();
    lambda_pipeline(&client, "missing").await;
    let error = failed_action_error(&client).await;
    assert_eq!(error.code(), Some("ConfigurationError"));
    let message = error.message().unwrap_or_default();
    assert_eq!(message, "The AWS Lambda function missing does not exist.");
    assert_eq!(execution_status(&client).await, PipelineExecutionStatus::Failed);

    // Nothing listens on this endpoint: the action fails instead of waiting 20 minutes.
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let gone = format!("http://{}", closed.local_addr().expect("addr"));
    drop(closed);
    let server = server_with_lambda(&gone).await;
    let client = server.client();
    lambda_pipeline(&client, "deployer").await;
    let error = failed_action_error(&client).await;
    assert_eq!(error.code(), Some("JobFailed"));
    assert!(error.message().unwrap_or_default().contains("could not be reached"), "{error:?}");
}

#[tokio::test]
async fn without_an_endpoint_lambda_actions_are_simulated() {
    let server = TestServer::fast().await;
    let client = server.client();
    lambda_pipeline(&client, "deployer").await;
    eventually("the simulated function to succeed", || async {
        let actions = action_executions(&client).await;
        (actions.get("Fn")?.status() == Some(&ActionExecutionStatus::Succeeded)).then_some(())
    })
    .await;
}

#[tokio::test]
async fn a_function_that_stops_answering_times_out_twenty_minutes_after_its_last_continuation() {
    let (endpoint, mut invocations) = fake_lambda().await;
    let server = server_with_lambda(&endpoint).await;
    let client = server.client();
    lambda_pipeline(&client, "deployer").await;
    let invoked = invocations.recv().await.expect("invocation");
    let job_id = invoked.event["CodePipeline.job"]["id"].as_str().expect("job id").to_string();
    server.advance_clock(19.0 * 60.0).await;
    assert_eq!(execution_status(&client).await, PipelineExecutionStatus::InProgress);
    // Continuing gives the function another 20 minutes from now.
    client.put_job_success_result().job_id(&job_id).continuation_token("more").send().await.expect("continue");
    let again = invocations.recv().await.expect("re-invocation");
    let job_id = again.event["CodePipeline.job"]["id"].as_str().expect("job id").to_string();
    server.advance_clock(19.0 * 60.0).await;
    assert_eq!(execution_status(&client).await, PipelineExecutionStatus::InProgress);
    server.advance_clock(61.0).await;
    assert_eq!(execution_status(&client).await, PipelineExecutionStatus::Failed);
    let err = client.put_job_success_result().job_id(&job_id).send().await.expect_err("timed out");
    assert!(err.into_service_error().is_invalid_job_state_exception());
}

/// A pipeline whose Gate stage has a LambdaInvoke entry rule calling `function`.
async fn rule_pipeline(client: &Client, name: &str, function: &str) -> String {
    let at = |c: &str, p: &str| json!({"category": c, "owner": "AWS", "provider": p, "version": "1"});
    let rule = json!({"name": "Canary", "ruleTypeId": {"category": "Rule", "owner": "AWS", "provider": "LambdaInvoke",
        "version": "1"}, "configuration": {"FunctionName": function, "UserParameters": "#{codepipeline.PipelineExecutionId}"}});
    let pipeline = json!({
        "name": name, "roleArn": "arn:aws:iam::123456789012:role/r", "pipelineType": "V2",
        "artifactStore": {"type": "S3", "location": "artifact-bucket"},
        "stages": [
            {"name": "Source", "actions": [{"name": "Src", "actionTypeId": at("Source", "S3"),
                "configuration": {"S3Bucket": "b", "S3ObjectKey": "k.zip"}, "outputArtifacts": [{"name": "Code"}]}]},
            {"name": "Gate", "beforeEntry": {"conditions": [{"result": "FAIL", "rules": [rule]}]},
                "actions": [{"name": "Ship", "actionTypeId": at("Deploy", "S3"),
                "configuration": {"BucketName": "site", "Extract": "true"}, "inputArtifacts": [{"name": "Code"}]}]}
        ]
    });
    client.create_pipeline().pipeline(sdk_json::pipeline(&pipeline)).send().await.expect("pipeline");
    let out = client.list_pipeline_executions().pipeline_name(name).send().await.expect("executions");
    out.pipeline_execution_summaries()[0].pipeline_execution_id().expect("id").to_string()
}

/// The summary or error of the pipeline's Gate entry rule, once it has ended.
async fn rule_result(server: &TestServer, name: &str) -> Value {
    eventually("the rule to end", || async {
        let state = server.call("GetPipelineState", &json!({"name": name}).to_string()).await.json();
        let rule = state["stageStates"][1]["beforeEntryConditionState"]["conditionStates"][0]["ruleStates"][0].clone();
        (rule["latestExecution"]["status"] != "InProgress" && rule.get("latestExecution").is_some())
            .then(|| rule["latestExecution"].clone())
    })
    .await
}

#[tokio::test]
async fn a_lambda_invoke_rule_calls_its_function_synchronously() {
    let (endpoint, mut invocations) = fake_lambda().await;
    let server = server_with_lambda(&endpoint).await;
    let client = server.client();

    // The function returns: the rule succeeds with what it returned, and the stage runs.
    let id = rule_pipeline(&client, "canary", "returns").await;
    let call = invocations.recv().await.expect("invocation");
    assert_eq!(call.function, "returns");
    assert_eq!(call.headers["x-amz-invocation-type"], "RequestResponse");
    assert!(call.headers["authorization"].to_str().unwrap_or_default().contains("/lambda/aws4_request"));
    assert_eq!(call.event["pipelineName"], "canary");
    assert_eq!(call.event["pipelineExecutionId"], id.as_str());
    assert_eq!(call.event["stageName"], "Gate");
    assert_eq!(call.event["ruleName"], "Canary");
    assert_eq!(call.event["configuration"]["UserParameters"], id.as_str(), "the configuration is resolved");
    let result = rule_result(&server, "canary").await;
    assert_eq!(result["status"], "Succeeded");
    assert_eq!(result["summary"], "all clear");
    assert_eq!(result["externalExecutionId"], "returns");
    eventually("the execution to succeed", || async {
        let out =
            client.get_pipeline_execution().pipeline_name("canary").pipeline_execution_id(&id).send().await.ok()?;
        (out.pipeline_execution()?.status()? == &PipelineExecutionStatus::Succeeded).then_some(())
    })
    .await;

    // The function raises: the rule fails with its message.
    rule_pipeline(&client, "unhealthy", "raises").await;
    let result = rule_result(&server, "unhealthy").await;
    assert_eq!(result["status"], "Failed");
    assert_eq!(result["errorDetails"], json!({"code": "JobFailed", "message": "the canary is unhealthy"}));

    // A missing function is a configuration error, as for actions.
    rule_pipeline(&client, "absent", "missing").await;
    let result = rule_result(&server, "absent").await;
    assert_eq!(result["errorDetails"]["code"], "ConfigurationError");
    assert_eq!(result["errorDetails"]["message"], "The AWS Lambda function missing does not exist.");
}

#[tokio::test]
async fn a_waiting_lambda_action_shows_its_function_and_its_abandoned_job_is_still_answerable() {
    let (endpoint, mut invoked) = fake_lambda().await;
    let server = server_with_lambda(&endpoint).await;
    let client = server.client();
    lambda_pipeline(&client, "silent").await;
    let job = invoked.recv().await.expect("invoked").event["CodePipeline.job"]["id"].as_str().expect("job").to_string();
    // While the function works: its name, its log URL and the time it was invoked, no result yet [NATIVE].
    let running = eventually("the invocation to be recorded", || async {
        let state = server.call("GetPipelineState", r#"{"name": "invoking"}"#).await.json();
        let latest = state["stageStates"][1]["actionStates"][0]["latestExecution"].clone();
        latest.get("externalExecutionId").is_some().then_some(latest)
    })
    .await;
    assert_eq!(running["status"], "InProgress");
    assert_eq!(running["externalExecutionId"], "silent");
    assert_eq!(
        running["externalExecutionUrl"],
        "https://console.aws.amazon.com/cloudwatch/home?region=us-east-1#logStream:group=%252Faws%252Flambda%252Fsilent"
    );
    assert!(running["lastStatusChange"].is_number(), "{running}");

    // Abandoned: it keeps what it showed, and its history has no result.
    let id = crate::common::first_execution(&client, "invoking").await;
    let stop = json!({"pipelineName": "invoking", "pipelineExecutionId": id, "abandon": true, "reason": "done"});
    assert_eq!(server.call("StopPipelineExecution", &stop.to_string()).await.status, 200);
    crate::common::wait_for(&client, "invoking", &id, PipelineExecutionStatus::Stopped).await;
    let listed = server
        .call(
            "ListActionExecutions",
            &json!({"pipelineName": "invoking", "filter": {"pipelineExecutionId": id}}).to_string(),
        )
        .await
        .json();
    let action = &listed["actionExecutionDetails"][0];
    assert_eq!((action["actionName"].as_str(), action["status"].as_str()), (Some("Fn"), Some("Abandoned")));
    assert_eq!(action["output"], json!({"outputArtifacts": [], "outputVariables": {}}));

    // The function answers late: accepted, nothing changes; after the pipeline is deleted, still accepted.
    let late = json!({"jobId": job}).to_string();
    assert_eq!(server.call("PutJobSuccessResult", &late).await.status, 200);
    assert_eq!(crate::common::status(&client, "invoking", &id).await, PipelineExecutionStatus::Stopped);
    assert_eq!(server.call("DeletePipeline", r#"{"name": "invoking"}"#).await.status, 200);
    let after = server.call("PutJobSuccessResult", &late).await;
    assert_eq!(after.status, 200, "{}", after.text());
    assert_eq!(
        server
            .call(
                "PutJobFailureResult",
                &json!({"jobId": job, "failureDetails": {"type": "JobFailed", "message": "x"}}).to_string()
            )
            .await
            .status,
        200
    );
    // A job id never handed out is still unknown.
    let unknown = server
        .error(
            "PutJobSuccessResult",
            &json!({"jobId": uuid::Uuid::new_v4().to_string()}).to_string(),
            "JobNotFoundException",
        )
        .await;
    assert!(unknown.starts_with("Job with id '"), "{unknown}");
}

#[tokio::test]
async fn after_a_restart_the_function_of_a_waiting_lambda_action_is_invoked_again_with_the_same_job() {
    let (endpoint, mut invocations) = fake_lambda().await;
    let dir = crate::persistence::TempDir::new("lambda-restart");
    let config = codepipeline_local::Config {
        action_duration_ms: 5,
        lambda_endpoint: Some(endpoint),
        data_dir: Some(dir.0.clone()),
        ..codepipeline_local::Config::default()
    };
    let server = TestServer::with_config(config.clone()).await;
    lambda_pipeline(&server.client(), "deployer").await;
    let first = invocations.recv().await.expect("the first invocation");
    let job_id = first.event["CodePipeline.job"]["id"].as_str().expect("job id").to_string();
    // The invocation went out; the server stops before the function answers.
    server.server.shutdown().await.expect("stops");

    let server = TestServer::with_config(config).await;
    let again = tokio::time::timeout(std::time::Duration::from_secs(10), invocations.recv())
        .await
        .expect("invoked again after the restart")
        .expect("an invocation");
    assert_eq!(again.function, "deployer");
    assert_eq!(again.event["CodePipeline.job"]["id"], job_id.as_str(), "the same job, handed to the function again");
    let client = server.client();
    client.put_job_success_result().job_id(&job_id).output_variables("version", "7").send().await.expect("answer");
    eventually("the pipeline to succeed", || async {
        (execution_status(&client).await == PipelineExecutionStatus::Succeeded).then_some(())
    })
    .await;
    // Nothing else was waiting: no further invocation.
    assert!(invocations.try_recv().is_err());
}
