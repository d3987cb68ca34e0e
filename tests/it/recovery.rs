//! Recovery: RetryStageExecution through `aws-sdk-codepipeline`, with behaviour rules causing the failures.

use aws_sdk_codepipeline::Client;
use aws_sdk_codepipeline::error::ProvideErrorMetadata;
use aws_sdk_codepipeline::types::{PipelineExecutionStatus, StageRetryMode};
use serde_json::{Value, json};

use crate::common::{TestServer, eventually, first_execution, status, wait_for};
use crate::sdk_json;

/// Source, then Build with two parallel actions (Compile, Lint), then Deploy.
async fn create(client: &Client, name: &str) {
    let at = |c: &str, p: &str| json!({"category": c, "owner": "AWS", "provider": p, "version": "1"});
    let pipeline = json!({
        "name": name, "roleArn": "arn:aws:iam::123456789012:role/r",
        "artifactStore": {"type": "S3", "location": "artifact-bucket"},
        "stages": [
            {"name": "Source", "actions": [{"name": "Src", "actionTypeId": at("Source", "S3"),
                "configuration": {"S3Bucket": "b", "S3ObjectKey": "k.zip"}, "outputArtifacts": [{"name": "Code"}]}]},
            {"name": "Build", "actions": [
                {"name": "Compile", "actionTypeId": at("Build", "CodeBuild"), "configuration": {"ProjectName": "c"},
                    "inputArtifacts": [{"name": "Code"}], "outputArtifacts": [{"name": "Built"}]},
                {"name": "Lint", "actionTypeId": at("Build", "CodeBuild"), "configuration": {"ProjectName": "l"},
                    "inputArtifacts": [{"name": "Code"}]}]},
            {"name": "Deploy", "actions": [{"name": "Ship", "actionTypeId": at("Deploy", "S3"),
                "configuration": {"BucketName": "site", "Extract": "true"}, "inputArtifacts": [{"name": "Built"}]}]}
        ]
    });
    client.create_pipeline().pipeline(sdk_json::pipeline(&pipeline)).send().await.expect("pipeline");
}

/// How many attempts each action of the execution had, in history order.
async fn attempts(client: &Client, name: &str, id: &str, action: &str) -> Vec<(String, String)> {
    let filter = aws_sdk_codepipeline::types::ActionExecutionFilter::builder().pipeline_execution_id(id).build();
    let out = client.list_action_executions().pipeline_name(name).filter(filter).send().await.expect("history");
    out.action_execution_details()
        .iter()
        .filter(|d| d.action_name() == Some(action))
        .map(|d| {
            (
                d.action_execution_id().unwrap_or_default().to_string(),
                d.status().map(|s| s.as_str()).unwrap_or_default().to_string(),
            )
        })
        .collect()
}

async fn retry(
    client: &Client,
    name: &str,
    stage: &str,
    id: &str,
    mode: StageRetryMode,
) -> Result<String, (String, String)> {
    client
        .retry_stage_execution()
        .pipeline_name(name)
        .stage_name(stage)
        .pipeline_execution_id(id)
        .retry_mode(mode)
        .send()
        .await
        .map(|o| o.pipeline_execution_id().unwrap_or_default().to_string())
        .map_err(|e| (e.code().unwrap_or_default().to_string(), e.message().unwrap_or_default().to_string()))
}

#[tokio::test]
async fn retrying_failed_actions_resumes_the_same_execution_and_keeps_history() {
    let server = TestServer::fast().await;
    let client = server.client();
    server.set_behaviors(json!([{"action": "Lint", "outcome": "fail", "message": "lint errors"}])).await;
    create(&client, "app").await;
    let id = first_execution(&client, "app").await;
    wait_for(&client, "app", &id, PipelineExecutionStatus::Failed).await;
    assert_eq!(attempts(&client, "app", &id, "Lint").await.len(), 1);

    server.set_behaviors(json!([])).await;
    let retried = retry(&client, "app", "Build", &id, StageRetryMode::FailedActions).await.expect("retry");
    assert_eq!(retried, id, "a retry resumes the same execution");
    wait_for(&client, "app", &id, PipelineExecutionStatus::Succeeded).await;

    let lint = attempts(&client, "app", &id, "Lint").await;
    assert_eq!(lint.len(), 2, "the failed attempt stays in the history: {lint:?}");
    assert_ne!(lint[0].0, lint[1].0, "a new action execution id");
    let mut statuses: Vec<&str> = lint.iter().map(|(_, s)| s.as_str()).collect();
    statuses.sort_unstable();
    assert_eq!(statuses, ["Failed", "Succeeded"]);
    assert_eq!(attempts(&client, "app", &id, "Compile").await.len(), 1, "succeeded actions are not re-run");
    assert_eq!(attempts(&client, "app", &id, "Ship").await.len(), 1, "the execution went on to Deploy");

    let state = server.call("GetPipelineState", r#"{"name": "app"}"#).await.json();
    let build = &state["stageStates"][1];
    assert_eq!(build["latestExecution"]["status"], "Succeeded");
    assert_eq!(
        build["retryStageMetadata"],
        json!({"manualStageRetryAttempt": 1, "latestRetryTrigger": "ManualStageRetry"})
    );
    assert!(state["stageStates"][0].get("retryStageMetadata").is_none());

    // A stage that succeeded cannot be retried, in AWS's words.
    let (code, message) = retry(&client, "app", "Build", &id, StageRetryMode::FailedActions).await.expect_err("done");
    assert_eq!(code, "StageNotRetryableException");
    assert_eq!(
        message,
        format!(
            "The stage named Build in the app pipeline can't be retried now. Either it contains no failed actions, the \
             execution '{id}' is already superseded, or the pipeline definition has changed since the action(s) failed."
        )
    );
}

#[tokio::test]
async fn retrying_all_actions_reruns_the_whole_stage() {
    let server = TestServer::fast().await;
    let client = server.client();
    server.set_behaviors(json!([{"action": "Lint", "outcome": "fail"}])).await;
    create(&client, "all").await;
    let id = first_execution(&client, "all").await;
    wait_for(&client, "all", &id, PipelineExecutionStatus::Failed).await;
    server.set_behaviors(json!([])).await;
    retry(&client, "all", "Build", &id, StageRetryMode::AllActions).await.expect("retry");
    wait_for(&client, "all", &id, PipelineExecutionStatus::Succeeded).await;
    assert_eq!(attempts(&client, "all", &id, "Compile").await.len(), 2);
    assert_eq!(attempts(&client, "all", &id, "Lint").await.len(), 2);
}

#[tokio::test]
async fn retry_refusals() {
    let server = TestServer::fast().await;
    let client = server.client();
    server.set_behaviors(json!([{"action": "Lint", "outcome": "fail"}])).await;
    create(&client, "refuse").await;
    let first = first_execution(&client, "refuse").await;
    wait_for(&client, "refuse", &first, PipelineExecutionStatus::Failed).await;

    let (code, message) =
        retry(&client, "refuse", "Nope", &first, StageRetryMode::FailedActions).await.expect_err("stage");
    assert_eq!(
        (code.as_str(), message.as_str()),
        ("StageNotFoundException", "Pipeline 'refuse' does not have a stage with name 'Nope'")
    );
    let (code, _) =
        retry(&client, "refuse", "Source", &first, StageRetryMode::FailedActions).await.expect_err("ok stage");
    assert_eq!(code, "StageNotRetryableException");
    let (code, _) =
        retry(&client, "nopipe", "Build", &first, StageRetryMode::FailedActions).await.expect_err("pipeline");
    assert_eq!(code, "PipelineNotFoundException");

    // A later execution that failed in the same stage makes the first one not the latest there.
    let second = client.start_pipeline_execution().name("refuse").send().await.expect("start");
    let second = second.pipeline_execution_id().expect("id").to_string();
    wait_for(&client, "refuse", &second, PipelineExecutionStatus::Failed).await;
    let (code, _) =
        retry(&client, "refuse", "Build", &first, StageRetryMode::FailedActions).await.expect_err("not latest");
    assert_eq!(code, "NotLatestPipelineExecutionException");

    // A retry in progress cannot be retried again.
    server.set_behaviors(json!([{"action": "Lint", "outcome": "hold"}])).await;
    retry(&client, "refuse", "Build", &second, StageRetryMode::FailedActions).await.expect("retry");
    assert_eq!(status(&client, "refuse", &second).await, PipelineExecutionStatus::InProgress);
    let (code, _) =
        retry(&client, "refuse", "Build", &second, StageRetryMode::FailedActions).await.expect_err("running");
    assert_eq!(code, "StageNotRetryableException");

    // Stop and abandon it, change the pipeline: the stopped stage is no longer retryable.
    client
        .stop_pipeline_execution()
        .pipeline_name("refuse")
        .pipeline_execution_id(&second)
        .abandon(true)
        .send()
        .await
        .expect("stop");
    wait_for(&client, "refuse", &second, PipelineExecutionStatus::Stopped).await;
    let current = client.get_pipeline().name("refuse").send().await.expect("get");
    let declaration = current.pipeline().cloned().expect("declaration");
    client.update_pipeline().pipeline(declaration).send().await.expect("update");
    let (code, _) =
        retry(&client, "refuse", "Build", &second, StageRetryMode::FailedActions).await.expect_err("changed");
    assert_eq!(code, "StageNotRetryableException");
}

#[tokio::test]
async fn a_stopped_stage_can_be_retried() {
    let server = TestServer::fast().await;
    let client = server.client();
    server.set_behaviors(json!([{"action": "Lint", "outcome": "hold"}])).await;
    create(&client, "stopped").await;
    let id = first_execution(&client, "stopped").await;
    eventually("Lint to hold", || async {
        let lint = attempts(&client, "stopped", &id, "Lint").await;
        (lint.first().map(|(_, s)| s.as_str()) == Some("InProgress")).then_some(())
    })
    .await;
    client
        .stop_pipeline_execution()
        .pipeline_name("stopped")
        .pipeline_execution_id(&id)
        .abandon(true)
        .send()
        .await
        .expect("stop");
    wait_for(&client, "stopped", &id, PipelineExecutionStatus::Stopped).await;
    server.set_behaviors(json!([])).await;
    retry(&client, "stopped", "Build", &id, StageRetryMode::FailedActions).await.expect("retry");
    wait_for(&client, "stopped", &id, PipelineExecutionStatus::Succeeded).await;
    let lint = attempts(&client, "stopped", &id, "Lint").await;
    assert_eq!(lint.len(), 2, "{lint:?}");
}

#[tokio::test]
async fn a_stage_with_on_failure_retry_retries_itself_once() {
    let server = TestServer::fast().await;
    let client = server.client();
    server.set_behaviors(json!([{"action": "Lint", "outcome": "fail"}])).await;
    let at = |c: &str, p: &str| json!({"category": c, "owner": "AWS", "provider": p, "version": "1"});
    let pipeline = json!({
        "name": "auto", "roleArn": "arn:aws:iam::123456789012:role/r", "pipelineType": "V2",
        "artifactStore": {"type": "S3", "location": "artifact-bucket"},
        "stages": [
            {"name": "Source", "actions": [{"name": "Src", "actionTypeId": at("Source", "S3"),
                "configuration": {"S3Bucket": "b", "S3ObjectKey": "k.zip"}, "outputArtifacts": [{"name": "Code"}]}]},
            {"name": "Build", "onFailure": {"result": "RETRY", "retryConfiguration": {"retryMode": "FAILED_ACTIONS"}},
                "actions": [
                {"name": "Compile", "actionTypeId": at("Build", "CodeBuild"), "configuration": {"ProjectName": "c"},
                    "inputArtifacts": [{"name": "Code"}]},
                {"name": "Lint", "actionTypeId": at("Build", "CodeBuild"), "configuration": {"ProjectName": "l"},
                    "inputArtifacts": [{"name": "Code"}]}]}
        ]
    });
    client.create_pipeline().pipeline(sdk_json::pipeline(&pipeline)).send().await.expect("pipeline");
    let id = first_execution(&client, "auto").await;
    wait_for(&client, "auto", &id, PipelineExecutionStatus::Failed).await;
    assert_eq!(attempts(&client, "auto", &id, "Lint").await.len(), 2, "one automatic retry, then Failed");
    assert_eq!(attempts(&client, "auto", &id, "Compile").await.len(), 1);
    let state = server.call("GetPipelineState", r#"{"name": "auto"}"#).await.json();
    assert_eq!(
        state["stageStates"][1]["retryStageMetadata"],
        json!({"autoStageRetryAttempt": 1, "latestRetryTrigger": "AutomatedStageRetry"})
    );

    // A manual retry is still possible; a failure after it does not retry automatically again.
    server.set_behaviors(json!([])).await;
    retry(&client, "auto", "Build", &id, StageRetryMode::FailedActions).await.expect("manual retry");
    wait_for(&client, "auto", &id, PipelineExecutionStatus::Succeeded).await;
    let state = server.call("GetPipelineState", r#"{"name": "auto"}"#).await.json();
    assert_eq!(
        state["stageStates"][1]["retryStageMetadata"],
        json!({"autoStageRetryAttempt": 1, "manualStageRetryAttempt": 1, "latestRetryTrigger": "ManualStageRetry"})
    );
}

async fn start(client: &Client, name: &str) -> String {
    let out = client.start_pipeline_execution().name(name).send().await.expect("start");
    out.pipeline_execution_id().expect("id").to_string()
}

async fn rollback(client: &Client, name: &str, stage: &str, target: &str) -> Result<String, (String, String)> {
    client
        .rollback_stage()
        .pipeline_name(name)
        .stage_name(stage)
        .target_pipeline_execution_id(target)
        .send()
        .await
        .map(|o| o.pipeline_execution_id().to_string())
        .map_err(|e| (e.code().unwrap_or_default().to_string(), e.message().unwrap_or_default().to_string()))
}

/// The S3 object key of the first input artifact of `action`'s runs in execution `id`.
async fn input_key(client: &Client, name: &str, id: &str, action: &str) -> String {
    let filter = aws_sdk_codepipeline::types::ActionExecutionFilter::builder().pipeline_execution_id(id).build();
    let out = client.list_action_executions().pipeline_name(name).filter(filter).send().await.expect("history");
    let detail = out.action_execution_details().iter().find(|d| d.action_name() == Some(action)).expect("run");
    let artifact = detail.input().map(|i| i.input_artifacts()).and_then(|a| a.first()).expect("input artifact");
    artifact.s3_location().and_then(|l| l.key()).expect("key").to_string()
}

#[tokio::test]
async fn rolling_back_a_stage_reruns_it_with_the_targets_artifacts() {
    let server = TestServer::fast().await;
    let client = server.client();
    create(&client, "rb").await;
    let first = first_execution(&client, "rb").await;
    wait_for(&client, "rb", &first, PipelineExecutionStatus::Succeeded).await;
    let second = start(&client, "rb").await;
    wait_for(&client, "rb", &second, PipelineExecutionStatus::Succeeded).await;
    assert_ne!(input_key(&client, "rb", &first, "Ship").await, input_key(&client, "rb", &second, "Ship").await);

    let rolled = rollback(&client, "rb", "Deploy", &first).await.expect("rollback");
    assert!(rolled != first && rolled != second, "a new execution");
    wait_for(&client, "rb", &rolled, PipelineExecutionStatus::Succeeded).await;
    let execution = server
        .call("GetPipelineExecution", &json!({"pipelineName": "rb", "pipelineExecutionId": rolled}).to_string())
        .await
        .json();
    let execution = &execution["pipelineExecution"];
    assert_eq!(execution["executionType"], "ROLLBACK");
    assert_eq!(execution["rollbackMetadata"]["rollbackTargetPipelineExecutionId"], first.as_str());
    assert_eq!(execution["trigger"]["triggerType"], "ManualRollback");
    let detail: Value =
        serde_json::from_str(execution["trigger"]["triggerDetail"].as_str().expect("detail")).expect("json");
    assert!(detail["AwsUserArn"].as_str().is_some_and(|a| a.starts_with("arn:aws:")), "{detail}");

    // Only the stage ran, with the target's artifacts.
    assert_eq!(attempts(&client, "rb", &rolled, "Compile").await.len(), 0);
    assert_eq!(input_key(&client, "rb", &rolled, "Ship").await, input_key(&client, "rb", &first, "Ship").await);
    let state = server.call("GetPipelineState", r#"{"name": "rb"}"#).await.json();
    let deploy = &state["stageStates"][2]["latestExecution"];
    assert_eq!(
        (deploy["pipelineExecutionId"].as_str(), deploy["type"].as_str()),
        (Some(rolled.as_str()), Some("ROLLBACK"))
    );
    assert_eq!(state["stageStates"][1]["latestExecution"]["pipelineExecutionId"], second.as_str());
    let summaries = client.list_pipeline_executions().pipeline_name("rb").send().await.expect("list");
    let summary = summaries
        .pipeline_execution_summaries()
        .iter()
        .find(|s| s.pipeline_execution_id() == Some(&rolled))
        .expect("listed");
    assert_eq!(
        summary.rollback_metadata().and_then(|m| m.rollback_target_pipeline_execution_id()),
        Some(first.as_str())
    );

    // A rollback execution is no rollback target, and its succeeded stage cannot be retried.
    let (code, message) = rollback(&client, "rb", "Deploy", &rolled).await.expect_err("rollback of rollback");
    assert_eq!(code, "UnableToRollbackStageException");
    assert_eq!(
        message,
        format!("Target Pipeline Execution with id '{rolled}' has not completed in stage with name 'Deploy'")
    );
    let (code, _) = retry(&client, "rb", "Deploy", &rolled, StageRetryMode::AllActions).await.expect_err("retry");
    assert_eq!(code, "StageNotRetryableException");
    // Rolling back to the same target again is allowed.
    let again = rollback(&client, "rb", "Deploy", &first).await.expect("again");
    wait_for(&client, "rb", &again, PipelineExecutionStatus::Succeeded).await;
}

#[tokio::test]
async fn rollback_refusals() {
    let server = TestServer::fast().await;
    let client = server.client();
    server.set_behaviors(json!([{"action": "Ship", "outcome": "fail"}])).await;
    create(&client, "rbx").await;
    let failed = first_execution(&client, "rbx").await;
    wait_for(&client, "rbx", &failed, PipelineExecutionStatus::Failed).await;

    let (code, message) = rollback(&client, "rbx", "Nope", &failed).await.expect_err("stage");
    assert_eq!(
        (code.as_str(), message.as_str()),
        ("StageNotFoundException", "Pipeline 'rbx' does not have a stage with name 'Nope'")
    );
    let unknown = "00000000-0000-4000-8000-000000000000";
    let (code, message) = rollback(&client, "rbx", "Deploy", unknown).await.expect_err("target");
    assert_eq!(code, "PipelineExecutionNotFoundException");
    assert_eq!(
        message,
        format!("Target Pipeline Execution with id '{unknown}' does not exist in pipeline with name 'rbx'")
    );
    let (code, _) = rollback(&client, "rbx", "Deploy", &failed).await.expect_err("failed there");
    assert_eq!(code, "UnableToRollbackStageException");

    // A target that succeeded in Build, while another execution holds the stage.
    server.set_behaviors(json!([{"action": "Compile", "outcome": "hold"}])).await;
    let busy = start(&client, "rbx").await;
    eventually("Compile to hold", || async {
        let runs = attempts(&client, "rbx", &busy, "Compile").await;
        (runs.first().map(|(_, s)| s.as_str()) == Some("InProgress")).then_some(())
    })
    .await;
    let (code, message) = rollback(&client, "rbx", "Build", &failed).await.expect_err("busy");
    assert_eq!(code, "UnableToRollbackStageException");
    // AWS's wording [NATIVE].
    assert_eq!(message, "Pipeline 'rbx' cannot start rollback since stage Build is in progress.");
    client
        .stop_pipeline_execution()
        .pipeline_name("rbx")
        .pipeline_execution_id(&busy)
        .abandon(true)
        .send()
        .await
        .expect("stop");
    wait_for(&client, "rbx", &busy, PipelineExecutionStatus::Stopped).await;
    server.set_behaviors(json!([])).await;
    let rolled = rollback(&client, "rbx", "Build", &failed).await.expect("allowed once the stage is free");
    wait_for(&client, "rbx", &rolled, PipelineExecutionStatus::Succeeded).await;

    // After an update, the target is outdated.
    let current = client.get_pipeline().name("rbx").send().await.expect("get");
    client.update_pipeline().pipeline(current.pipeline().cloned().expect("declaration")).send().await.expect("update");
    let (code, message) = rollback(&client, "rbx", "Build", &failed).await.expect_err("outdated");
    assert_eq!(code, "PipelineExecutionOutdatedException");
    assert_eq!(message, "Pipeline 'rbx' has been updated since the rollback request was made.");
}

#[tokio::test]
async fn a_stage_with_on_failure_rollback_rolls_back_to_the_last_success() {
    let server = TestServer::fast().await;
    let client = server.client();
    let at = |c: &str, p: &str| json!({"category": c, "owner": "AWS", "provider": p, "version": "1"});
    let pipeline = json!({
        "name": "autorb", "roleArn": "arn:aws:iam::123456789012:role/r", "pipelineType": "V2",
        "artifactStore": {"type": "S3", "location": "artifact-bucket"},
        "stages": [
            {"name": "Source", "actions": [{"name": "Src", "actionTypeId": at("Source", "S3"),
                "configuration": {"S3Bucket": "b", "S3ObjectKey": "k.zip"}, "outputArtifacts": [{"name": "Code"}]}]},
            {"name": "Deploy", "onFailure": {"result": "ROLLBACK"}, "actions": [{"name": "Ship",
                "actionTypeId": at("Deploy", "S3"), "configuration": {"BucketName": "site", "Extract": "true"},
                "inputArtifacts": [{"name": "Code"}]}]}
        ]
    });
    // The first execution fails with nothing to roll back to: nothing happens.
    server.set_behaviors(json!([{"action": "Ship", "outcome": "fail"}])).await;
    client.create_pipeline().pipeline(sdk_json::pipeline(&pipeline)).send().await.expect("pipeline");
    let first = first_execution(&client, "autorb").await;
    wait_for(&client, "autorb", &first, PipelineExecutionStatus::Failed).await;
    let count = || async {
        client
            .list_pipeline_executions()
            .pipeline_name("autorb")
            .send()
            .await
            .expect("list")
            .pipeline_execution_summaries()
            .len()
    };
    assert_eq!(count().await, 1);

    server.set_behaviors(json!([])).await;
    let good = start(&client, "autorb").await;
    wait_for(&client, "autorb", &good, PipelineExecutionStatus::Succeeded).await;
    server.set_behaviors(json!([{"action": "Ship", "pipeline": "autorb", "outcome": "fail"}])).await;
    let bad = start(&client, "autorb").await;
    wait_for(&client, "autorb", &bad, PipelineExecutionStatus::Failed).await;
    let summaries = client.list_pipeline_executions().pipeline_name("autorb").send().await.expect("list");
    let newest = &summaries.pipeline_execution_summaries()[0];
    assert_eq!(newest.execution_type().map(|t| t.as_str()), Some("ROLLBACK"));
    assert_eq!(newest.trigger().and_then(|t| t.trigger_type()).map(|t| t.as_str()), Some("AutomatedRollback"));
    assert_eq!(newest.rollback_metadata().and_then(|m| m.rollback_target_pipeline_execution_id()), Some(good.as_str()));
    // The rollback fails too (the behaviour still fails Ship), and a failed rollback does not roll back again.
    let rolled = newest.pipeline_execution_id().expect("id").to_string();
    wait_for(&client, "autorb", &rolled, PipelineExecutionStatus::Failed).await;
    assert_eq!(count().await, 4);
}

#[tokio::test]
async fn parallel_pipelines_roll_back_too() {
    let server = TestServer::fast().await;
    let client = server.client();
    let mut pipeline: Value = serde_json::from_str(&crate::common::pipeline_json("par")).expect("json");
    pipeline["pipelineType"] = json!("V2");
    pipeline["executionMode"] = json!("PARALLEL");
    client.create_pipeline().pipeline(sdk_json::pipeline(&pipeline)).send().await.expect("pipeline");
    let first = first_execution(&client, "par").await;
    wait_for(&client, "par", &first, PipelineExecutionStatus::Succeeded).await;
    // AWS accepts a manual rollback in every execution mode [NATIVE].
    let back = rollback(&client, "par", "Deploy", &first).await.expect("rolls back");
    wait_for(&client, "par", &back, PipelineExecutionStatus::Succeeded).await;
    let out = client.get_pipeline_execution().pipeline_name("par").pipeline_execution_id(&back).send().await;
    let execution = out.expect("get").pipeline_execution().cloned().expect("execution");
    assert_eq!(execution.execution_type().map(|t| t.as_str()), Some("ROLLBACK"));
    assert_eq!(execution.execution_mode().map(|m| m.as_str()), Some("PARALLEL"));
    assert_eq!(
        execution.rollback_metadata().and_then(|m| m.rollback_target_pipeline_execution_id()),
        Some(first.as_str())
    );
}
