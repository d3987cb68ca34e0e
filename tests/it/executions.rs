//! Pipelines that run, through `aws-sdk-codepipeline`: starting, progression, approvals, modes, stop,
//! transitions, variables, behaviours and the clock.

use aws_sdk_codepipeline::Client;
use aws_sdk_codepipeline::error::ProvideErrorMetadata;
use aws_sdk_codepipeline::types::{
    ActionExecutionFilter, ApprovalResult, ApprovalStatus, LatestInPipelineExecutionFilter, PipelineExecutionFilter,
    PipelineExecutionStatus, PipelineVariable, SourceRevisionOverride, SourceRevisionType, StageTransitionType,
    StartTimeRange, SucceededInStageFilter,
};
use serde_json::{Value, json};

use crate::common::{TestServer, complete, eventually, status, wait_for};
use crate::sdk_json;

fn at(category: &str, provider: &str) -> Value {
    json!({"category": category, "owner": "AWS", "provider": provider, "version": "1"})
}

/// Source (S3) -> Build (CodeBuild, namespace Build) -> Approve (manual) -> Deploy (S3).
fn pipeline(name: &str, mode: &str) -> Value {
    json!({
        "name": name, "roleArn": "arn:aws:iam::123456789012:role/r", "pipelineType": "V2", "executionMode": mode,
        "artifactStore": {"type": "S3", "location": "artifact-bucket"},
        "stages": [
            {"name": "Source", "actions": [{"name": "Src", "namespace": "SourceVariables", "actionTypeId": at("Source", "S3"),
                "configuration": {"S3Bucket": "src-bucket", "S3ObjectKey": "app.zip"}, "outputArtifacts": [{"name": "Code"}]}]},
            {"name": "Build", "actions": [{"name": "Compile", "namespace": "BuildVars", "actionTypeId": at("Build", "CodeBuild"),
                "configuration": {"ProjectName": "app-#{SourceVariables.VersionId}"},
                "inputArtifacts": [{"name": "Code"}], "outputArtifacts": [{"name": "Bin"}]}]},
            {"name": "Approve", "actions": [{"name": "Gate", "actionTypeId": at("Approval", "Manual"),
                "configuration": {"CustomData": "Ship #{codepipeline.PipelineExecutionId}?"}}]},
            {"name": "Deploy", "actions": [{"name": "Ship", "actionTypeId": at("Deploy", "S3"),
                "configuration": {"BucketName": "site", "Extract": "true"}, "inputArtifacts": [{"name": "Bin"}]}]}
        ]
    })
}

/// Two stages without an approval: Source (S3) -> Deploy (S3).
fn simple(name: &str) -> Value {
    let mut p = pipeline(name, "SUPERSEDED");
    let stages = p["stages"].as_array_mut().expect("stages");
    stages.remove(2);
    stages.remove(1);
    stages[1]["actions"][0]["inputArtifacts"] = json!([{"name": "Code"}]);
    p
}

async fn create(client: &Client, declaration: &Value) -> String {
    client.create_pipeline().pipeline(sdk_json::pipeline(declaration)).send().await.expect("created");
    latest_execution(client, declaration["name"].as_str().expect("name")).await
}

async fn latest_execution(client: &Client, name: &str) -> String {
    let list = client.list_pipeline_executions().pipeline_name(name).send().await.expect("lists");
    list.pipeline_execution_summaries()[0].pipeline_execution_id().expect("id").to_string()
}

/// The state of a stage: (latest execution id, its status in the stage, inbound execution ids).
async fn stage(client: &Client, name: &str, stage: &str) -> (Option<String>, Option<String>, Vec<String>) {
    let state = client.get_pipeline_state().name(name).send().await.expect("state");
    let s = state.stage_states().iter().find(|s| s.stage_name() == Some(stage)).expect("stage exists");
    let latest = s.latest_execution();
    (
        latest.map(|l| l.pipeline_execution_id().to_string()),
        latest.map(|l| l.status().as_str().to_string()),
        s.inbound_executions().iter().map(|e| e.pipeline_execution_id().to_string()).collect(),
    )
}

/// Waits until `id` waits for approval and returns the token shown in GetPipelineState.
async fn approval_token(client: &Client, name: &str, id: &str) -> String {
    eventually("an approval token", || async {
        let state = client.get_pipeline_state().name(name).send().await.ok()?;
        let stage = state.stage_states().iter().find(|s| s.stage_name() == Some("Approve"))?;
        if stage.latest_execution()?.pipeline_execution_id() != id {
            return None;
        }
        stage.action_states()[0].latest_execution()?.token().map(str::to_string)
    })
    .await
}

async fn approve(client: &Client, name: &str, token: &str, status: ApprovalStatus) -> Result<(), String> {
    client
        .put_approval_result()
        .pipeline_name(name)
        .stage_name("Approve")
        .action_name("Gate")
        .token(token)
        .result(ApprovalResult::builder().summary("looks good").status(status).build().expect("result"))
        .send()
        .await
        .map(|_| ())
        .map_err(|e| format!("{}: {}", e.code().unwrap_or_default(), e.message().unwrap_or_default()))
}

#[tokio::test]
async fn create_pipeline_starts_an_execution_that_runs_to_success() {
    let server = TestServer::fast().await;
    let client = server.client();
    // A source that does not poll: a polling one's first execution comes from polling (fidelity_two).
    let mut p = simple("auto");
    p["stages"][0]["actions"][0]["configuration"]["PollForSourceChanges"] = json!("false");
    let id = create(&client, &p).await;
    wait_for(&client, "auto", &id, PipelineExecutionStatus::Succeeded).await;

    let execution =
        client.get_pipeline_execution().pipeline_name("auto").pipeline_execution_id(&id).send().await.expect("gets");
    let execution = execution.pipeline_execution().expect("execution");
    let trigger = execution.trigger().expect("trigger");
    assert_eq!(trigger.trigger_type().map(|t| t.as_str()), Some("CreatePipeline"));
    assert_eq!(
        trigger.trigger_detail(),
        Some("arn:aws:iam::000000000000:root"),
        "the caller ARN of the request's account"
    );
    assert_eq!(execution.pipeline_version(), Some(1));
    let revision = &execution.artifact_revisions()[0];
    assert_eq!(revision.name(), Some("Code"));

    // The S3 source reported its version the way AWS does.
    let state = client.get_pipeline_state().name("auto").send().await.expect("state");
    let source = &state.stage_states()[0].action_states()[0];
    let version = source.current_revision().map(|r| r.revision_id().to_string()).expect("current revision");
    assert_eq!(revision.revision_id(), Some(version.as_str()));
    let latest = source.latest_execution().expect("ran");
    assert_eq!(latest.summary().map(str::to_string), Some(format!("Amazon S3 version id: {version}")));
    assert_eq!(latest.external_execution_id(), Some(version.as_str()));
    assert!(latest.last_status_change().is_some());
    // AWS's S3 source template names no bucket: the console's S3 home in the pipeline's region.
    assert_eq!(source.entity_url(), Some("https://console.aws.amazon.com/s3/home?region=us-east-1#"));
    let deploy = &state.stage_states()[1].action_states()[0];
    assert_eq!(deploy.latest_execution().and_then(|e| e.summary()), Some("Deployment Succeeded"));
    // An extract deploy without ObjectKey names the bucket alone [NATIVE, issue 28].
    assert_eq!(deploy.latest_execution().and_then(|e| e.external_execution_id()), Some("site"));

    let listed = client.list_pipeline_executions().pipeline_name("auto").send().await.expect("lists");
    let summary = &listed.pipeline_execution_summaries()[0];
    assert!(summary.start_time().is_some() && summary.last_update_time().is_some());
    assert_eq!(summary.source_revisions()[0].action_name(), "Src");
    assert_eq!(summary.execution_mode().map(|m| m.as_str()), Some("SUPERSEDED"));
}

#[tokio::test]
async fn a_stage_never_entered_has_no_latest_execution_and_bare_action_states() {
    let server = TestServer::fast().await;
    let client = server.client();
    server.set_behaviors(json!([{"action": "Src", "outcome": "hold"}])).await;
    let id = create(&client, &pipeline("fresh", "SUPERSEDED")).await;
    let state = server.call("GetPipelineState", r#"{"name": "fresh"}"#).await.json();
    let source = &state["stageStates"][0];
    assert_eq!(source["latestExecution"], json!({"pipelineExecutionId": id, "status": "InProgress"}));
    let running = &source["actionStates"][0]["latestExecution"];
    assert_eq!(running["status"], "InProgress");
    assert!(running.get("lastStatusChange").is_none(), "no lastStatusChange while running");
    let build = &state["stageStates"][1];
    assert!(build.get("latestExecution").is_none());
    assert_eq!(build["inboundExecutions"], json!([]));
    assert_eq!(build["inboundTransitionState"], json!({"enabled": true}));
    let compile = &build["actionStates"][0];
    assert_eq!(compile["actionName"], "Compile");
    assert!(compile.get("latestExecution").is_none());
    assert_eq!(
        compile["entityUrl"],
        "https://console.aws.amazon.com/codebuild/home?region=us-east-1#/projects/app-#{SourceVariables.VersionId}/view"
    );
    assert_eq!(state["pipelineVersion"], 1);
    assert!(state["created"].is_number() && state["updated"].is_number());
}

#[tokio::test]
async fn actions_run_in_runorder_groups_and_variables_flow_between_them() {
    let server = TestServer::fast().await;
    let client = server.client();
    let id = create(&client, &pipeline("vars", "SUPERSEDED")).await;
    let token = approval_token(&client, "vars", &id).await;
    let gate = client
        .list_action_executions()
        .pipeline_name("vars")
        .filter(ActionExecutionFilter::builder().pipeline_execution_id(&id).build())
        .send()
        .await
        .expect("lists");
    let details = gate.action_execution_details();
    let names: Vec<_> = details.iter().filter_map(|d| d.action_name()).collect();
    assert_eq!(names, ["Gate", "Compile", "Src"], "newest first");
    let compile = &details[1];
    let version = details[2]
        .output()
        .and_then(|o| o.output_variables())
        .map(|v| v["VersionId"].clone())
        .expect("source variables");
    let input = compile.input().expect("input");
    assert_eq!(input.configuration().map(|c| c["ProjectName"].as_str()), Some("app-#{SourceVariables.VersionId}"));
    assert_eq!(input.resolved_configuration().map(|c| c["ProjectName"].clone()), Some(format!("app-{version}")));
    assert_eq!(input.region(), Some("us-east-1"));
    let artifact = &input.input_artifacts()[0];
    assert_eq!(artifact.name(), Some("Code"));
    assert_eq!(artifact.s3_location().and_then(|l| l.bucket()), Some("artifact-bucket"));
    let key = artifact.s3_location().and_then(|l| l.key()).unwrap_or_default();
    assert!(key.starts_with("vars/Code/") && key.ends_with(".zip"), "{key}");
    let result = compile.output().and_then(|o| o.execution_result()).expect("result");
    assert!(result.external_execution_id().is_some_and(|x| x.starts_with(&format!("app-{version}:"))));
    let build_id = result.external_execution_id().unwrap_or_default();
    assert_eq!(
        result.external_execution_url(),
        Some(
            format!("https://console.aws.amazon.com/codebuild/home?region=us-east-1#/builds/{build_id}/view/new")
                .as_str()
        )
    );
    let gate_input = details[0].input().and_then(|i| i.resolved_configuration()).expect("resolved");
    assert_eq!(gate_input["CustomData"], format!("Ship {id}?"));
    approve(&client, "vars", &token, ApprovalStatus::Approved).await.expect("approved");
    wait_for(&client, "vars", &id, PipelineExecutionStatus::Succeeded).await;
}

#[tokio::test]
async fn an_unresolvable_variable_fails_the_action_with_a_clear_error() {
    let server = TestServer::fast().await;
    let client = server.client();
    let mut p = simple("badvar");
    p["stages"][1]["actions"][0]["configuration"]["ObjectKey"] = json!("#{SourceVariables.NoSuchKey}");
    p["stages"][1]["actions"][0]["configuration"]["Extract"] = json!("false");
    let id = create(&client, &p).await;
    wait_for(&client, "badvar", &id, PipelineExecutionStatus::Failed).await;
    let state = client.get_pipeline_state().name("badvar").send().await.expect("state");
    let error = state.stage_states()[1].action_states()[0]
        .latest_execution()
        .and_then(|e| e.error_details())
        .cloned()
        .expect("error");
    assert_eq!(error.code(), Some("ConfigurationError"));
    assert!(error.message().is_some_and(|m| m.contains("#{SourceVariables.NoSuchKey}")));
}

#[tokio::test]
async fn start_pipeline_execution_with_variables_tokens_and_source_revisions() {
    let server = TestServer::fast().await;
    let client = server.client();
    let mut p = simple("starts");
    p["variables"] = json!([{"name": "Env", "defaultValue": "dev"}, {"name": "Tag"}]);
    p["stages"][0]["actions"][0]["configuration"]["AllowOverrideForS3ObjectKey"] = json!("true");
    // The first execution (from CreatePipeline) fails at once: Tag has no value [NATIVE].
    let first = create(&client, &p).await;
    let failed = client
        .get_pipeline_execution()
        .pipeline_name("starts")
        .pipeline_execution_id(&first)
        .send()
        .await
        .expect("gets");
    let failed = failed.pipeline_execution().expect("execution");
    assert_eq!(failed.status(), Some(&PipelineExecutionStatus::Failed));
    assert_eq!(failed.status_summary(), Some("Values for required variables haven't been provided: Tag"));

    let variable =
        |name: &str, value: &str| PipelineVariable::builder().name(name).value(value).build().expect("variable");
    let started = client
        .start_pipeline_execution()
        .name("starts")
        .variables(variable("Tag", "v1.2"))
        .variables(variable("Unknown", "ignored"))
        .client_request_token("token-1")
        .source_revisions(
            SourceRevisionOverride::builder()
                .action_name("Src")
                .revision_type(SourceRevisionType::S3ObjectVersionId)
                .revision_value("pinned-version")
                .build()
                .expect("override"),
        )
        .send()
        .await
        .expect("started");
    let id = started.pipeline_execution_id().expect("id").to_string();
    let replay = client
        .start_pipeline_execution()
        .name("starts")
        .client_request_token("token-1")
        .send()
        .await
        .expect("replayed");
    assert_eq!(replay.pipeline_execution_id(), Some(id.as_str()), "a replayed token returns the first execution");
    wait_for(&client, "starts", &id, PipelineExecutionStatus::Succeeded).await;

    let got =
        client.get_pipeline_execution().pipeline_name("starts").pipeline_execution_id(&id).send().await.expect("gets");
    let execution = got.pipeline_execution().expect("execution");
    // (In AWS's order, which fidelity::variables_come_in_the_order_aws_returns_them checks.)
    let mut variables: Vec<_> = execution.variables().iter().map(|v| (v.name(), v.resolved_value())).collect();
    variables.sort_unstable();
    assert_eq!(variables, [(Some("Env"), Some("dev")), (Some("Tag"), Some("v1.2"))]);
    assert_eq!(execution.artifact_revisions()[0].revision_id(), Some("pinned-version"));
    assert_eq!(execution.trigger().and_then(|t| t.trigger_type()).map(|t| t.as_str()), Some("StartPipelineExecution"));

    let err = client
        .start_pipeline_execution()
        .name("starts")
        .variables(variable("Tag", "a"))
        .variables(variable("Tag", "b"))
        .send()
        .await
        .expect_err("duplicate variables");
    assert_eq!(err.code(), Some("ValidationException"));
    let err = client
        .start_pipeline_execution()
        .name("starts")
        .source_revisions(
            SourceRevisionOverride::builder()
                .action_name("Src")
                .revision_type(SourceRevisionType::CommitId)
                .revision_value("abc")
                .build()
                .expect("override"),
        )
        .send()
        .await
        .expect_err("type mismatch");
    assert_eq!(err.code(), Some("ValidationException"));
    let err = client.start_pipeline_execution().name("ghost").send().await.expect_err("no pipeline");
    assert!(err.into_service_error().is_pipeline_not_found_exception());
}

#[tokio::test]
async fn approvals_are_approved_rejected_and_refused_as_aws_does() {
    let server = TestServer::fast().await;
    let client = server.client();
    let first = create(&client, &pipeline("gates", "SUPERSEDED")).await;
    let token = approval_token(&client, "gates", &first).await;
    let list = client.list_action_executions().pipeline_name("gates").send().await.expect("lists");
    let gate = list.action_execution_details().iter().find(|d| d.action_name() == Some("Gate")).expect("gate");
    assert_eq!(gate.action_execution_id(), Some(token.as_str()), "the token is the action execution id");

    // Refusals before any answer.
    let err = approve(&client, "ghost", &token, ApprovalStatus::Approved).await.expect_err("no pipeline");
    assert!(err.starts_with("PipelineNotFoundException"));
    let err = client
        .put_approval_result()
        .pipeline_name("gates")
        .stage_name("Nope")
        .action_name("Gate")
        .token(&token)
        .result(ApprovalResult::builder().summary("x").status(ApprovalStatus::Approved).build().expect("result"))
        .send()
        .await
        .expect_err("no stage");
    assert_eq!(err.message(), Some("Pipeline 'gates' does not have a stage with name 'Nope'"));
    let err = client
        .put_approval_result()
        .pipeline_name("gates")
        .stage_name("Approve")
        .action_name("Nope")
        .token(&token)
        .result(ApprovalResult::builder().summary("x").status(ApprovalStatus::Approved).build().expect("result"))
        .send()
        .await
        .expect_err("no action");
    assert!(err.into_service_error().is_action_not_found_exception());
    let err = approve(&client, "gates", "0d8a7e1c-1d2b-4c1e-9f3a-2b7c6d5e4f3a", ApprovalStatus::Approved)
        .await
        .expect_err("bad token");
    assert!(err.starts_with("InvalidApprovalTokenException"), "{err}");

    let approved = client
        .put_approval_result()
        .pipeline_name("gates")
        .stage_name("Approve")
        .action_name("Gate")
        .token(&token)
        .result(ApprovalResult::builder().summary("ship it").status(ApprovalStatus::Approved).build().expect("result"))
        .send()
        .await
        .expect("approved");
    assert!(approved.approved_at().is_some());
    let err = approve(&client, "gates", &token, ApprovalStatus::Approved).await.expect_err("answered");
    assert!(err.starts_with("ApprovalAlreadyCompletedException"), "{err}");
    wait_for(&client, "gates", &first, PipelineExecutionStatus::Succeeded).await;
    let state = client.get_pipeline_state().name("gates").send().await.expect("state");
    let gate = state.stage_states()[2].action_states()[0].latest_execution().cloned().expect("ran");
    assert_eq!(gate.summary(), Some("ship it"));
    assert_eq!(gate.last_updated_by(), Some("arn:aws:iam::000000000000:root"));
    assert_eq!(gate.token(), None, "the token is gone once answered");

    // A rejection fails the action, the stage and the execution.
    let second = client.start_pipeline_execution().name("gates").send().await.expect("started");
    let second = second.pipeline_execution_id().expect("id").to_string();
    let token = approval_token(&client, "gates", &second).await;
    approve(&client, "gates", &token, ApprovalStatus::Rejected).await.expect("rejected");
    wait_for(&client, "gates", &second, PipelineExecutionStatus::Failed).await;
    let (_, stage_status, _) = stage(&client, "gates", "Approve").await;
    assert_eq!(stage_status.as_deref(), Some("Failed"));
}

#[tokio::test]
async fn approvals_time_out_on_the_emulator_clock() {
    let server = TestServer::fast().await;
    let client = server.client();
    let mut p = pipeline("timeouts", "SUPERSEDED");
    p["stages"][2]["actions"][0]["timeoutInMinutes"] = json!(5);
    let id = create(&client, &p).await;
    approval_token(&client, "timeouts", &id).await;
    server.advance_clock(299.0).await;
    assert_eq!(status(&client, "timeouts", &id).await, PipelineExecutionStatus::InProgress);
    server.advance_clock(2.0).await;
    assert_eq!(
        status(&client, "timeouts", &id).await,
        PipelineExecutionStatus::Failed,
        "failed as soon as the clock passed the timeout"
    );
    let state = client.get_pipeline_state().name("timeouts").send().await.expect("state");
    let gate = state.stage_states()[2].action_states()[0].latest_execution().cloned().expect("ran");
    assert_eq!(gate.status().map(|s| s.as_str()), Some("Failed"));
    assert!(gate.error_details().is_some());
}

#[tokio::test]
async fn superseded_mode_supersedes_the_waiting_execution() {
    let server = TestServer::fast().await;
    let client = server.client();
    let e1 = create(&client, &pipeline("sup", "SUPERSEDED")).await;
    let token = approval_token(&client, "sup", &e1).await;
    let start = || async {
        client
            .start_pipeline_execution()
            .name("sup")
            .send()
            .await
            .expect("started")
            .pipeline_execution_id()
            .expect("id")
            .to_string()
    };
    let e2 = start().await;
    eventually("e2 to wait at Approve", || async {
        (stage(&client, "sup", "Approve").await.2 == vec![e2.clone()]).then_some(())
    })
    .await;
    let state = server.call("GetPipelineState", r#"{"name": "sup"}"#).await.json();
    assert_eq!(state["stageStates"][2]["inboundExecution"], json!({"pipelineExecutionId": e2, "status": "InProgress"}));
    let e3 = start().await;
    eventually("e3 to take e2's place", || async {
        (stage(&client, "sup", "Approve").await.2 == vec![e3.clone()]).then_some(())
    })
    .await;
    assert_eq!(status(&client, "sup", &e2).await, PipelineExecutionStatus::Superseded);
    assert_eq!(status(&client, "sup", &e1).await, PipelineExecutionStatus::InProgress, "never interrupted");
    approve(&client, "sup", &token, ApprovalStatus::Approved).await.expect("approved");
    let (latest, _, inbound) = stage(&client, "sup", "Approve").await;
    assert_eq!(latest, Some(e3.clone()), "the waiting execution entered when the lock was released");
    assert!(inbound.is_empty());
}

#[tokio::test]
async fn queued_mode_waits_in_order_and_supersedes_nothing() {
    let server = TestServer::fast().await;
    let client = server.client();
    let e1 = create(&client, &pipeline("queue", "QUEUED")).await;
    let t1 = approval_token(&client, "queue", &e1).await;
    let mut waiting = Vec::new();
    for _ in 0..3 {
        let id = client.start_pipeline_execution().name("queue").send().await.expect("started");
        waiting.push(id.pipeline_execution_id().expect("id").to_string());
    }
    eventually("three waiting in order", || async {
        (stage(&client, "queue", "Approve").await.2 == waiting).then_some(())
    })
    .await;
    approve(&client, "queue", &t1, ApprovalStatus::Approved).await.expect("approved");
    let (latest, _, inbound) = stage(&client, "queue", "Approve").await;
    assert_eq!(latest.as_ref(), Some(&waiting[0]), "first in, first out");
    assert_eq!(inbound, waiting[1..]);
    for id in &waiting {
        assert_ne!(status(&client, "queue", id).await, PipelineExecutionStatus::Superseded);
    }
}

#[tokio::test]
async fn parallel_mode_runs_executions_side_by_side() {
    let server = TestServer::fast().await;
    let client = server.client();
    let e1 = create(&client, &pipeline("par", "PARALLEL")).await;
    approval_token(&client, "par", &e1).await;
    let e2 = client.start_pipeline_execution().name("par").send().await.expect("started");
    let e2 = e2.pipeline_execution_id().expect("id").to_string();
    // Both reach the approval; in PARALLEL mode the token comes from ListActionExecutions [MODEL doc].
    let token = eventually("e2's approval", || async {
        let list = client
            .list_action_executions()
            .pipeline_name("par")
            .filter(ActionExecutionFilter::builder().pipeline_execution_id(&e2).build())
            .send()
            .await
            .ok()?;
        let gate = list.action_execution_details().iter().find(|d| d.action_name() == Some("Gate"))?;
        gate.action_execution_id().map(str::to_string)
    })
    .await;
    assert_eq!(status(&client, "par", &e1).await, PipelineExecutionStatus::InProgress);
    approve(&client, "par", &token, ApprovalStatus::Approved).await.expect("approved");
    wait_for(&client, "par", &e2, PipelineExecutionStatus::Succeeded).await;
    assert_eq!(status(&client, "par", &e1).await, PipelineExecutionStatus::InProgress);
}

#[tokio::test]
async fn stop_and_wait_lets_the_running_action_finish() {
    let server = TestServer::fast().await;
    let client = server.client();
    server.set_behaviors(json!([{"action": "Compile", "outcome": "hold"}])).await;
    let id = create(&client, &pipeline("stopwait", "SUPERSEDED")).await;
    eventually("Compile to run", || async {
        (stage(&client, "stopwait", "Build").await.1.as_deref() == Some("InProgress")).then_some(())
    })
    .await;
    client
        .stop_pipeline_execution()
        .pipeline_name("stopwait")
        .pipeline_execution_id(&id)
        .reason("hold on")
        .send()
        .await
        .expect("stopping");
    assert_eq!(status(&client, "stopwait", &id).await, PipelineExecutionStatus::Stopping);
    assert_eq!(stage(&client, "stopwait", "Build").await.1.as_deref(), Some("Stopping"));
    let err = client
        .stop_pipeline_execution()
        .pipeline_name("stopwait")
        .pipeline_execution_id(&id)
        .send()
        .await
        .expect_err("dup");
    assert_eq!(err.code(), Some("DuplicatedStopRequestException"));
    assert_eq!(
        err.message().map(str::to_string),
        Some(format!(
            "The execution with ID {id} in stopwait is already in a stopping state. If you already chose to stop and \
             wait, you cannot make that request again. You can choose to stop and abandon now, but be aware that this \
             option can lead to failed actions. If you already chose to stop and abandon, you cannot make that request \
             again."
        ))
    );
    let response = complete(
        &server,
        json!({"pipelineName": "stopwait", "pipelineExecutionId": id, "stageName": "Build",
        "actionName": "Compile", "outcome": "succeed", "summary": "built"}),
    )
    .await;
    assert_eq!(response.status, 200, "{}", response.text());
    wait_for(&client, "stopwait", &id, PipelineExecutionStatus::Stopped).await;
    let state = client.get_pipeline_state().name("stopwait").send().await.expect("state");
    assert_eq!(state.stage_states()[1].action_states()[0].latest_execution().and_then(|e| e.summary()), Some("built"));
    assert!(state.stage_states()[2].latest_execution().is_none(), "nothing new started");
    let listed = client.list_pipeline_executions().pipeline_name("stopwait").send().await.expect("lists");
    let summary = &listed.pipeline_execution_summaries()[0];
    assert_eq!(summary.status_summary(), Some("hold on"));
    assert_eq!(summary.stop_trigger().and_then(|t| t.reason()), Some("hold on"));
    let err = client
        .stop_pipeline_execution()
        .pipeline_name("stopwait")
        .pipeline_execution_id(&id)
        .abandon(true)
        .send()
        .await
        .expect_err("stopped");
    assert_eq!(
        err.message().map(str::to_string),
        Some(format!(
            "The pipeline execution with ID '{id}' in 'stopwait' can't be stopped now. Either it does not exist in the \
             pipeline, or the pipeline execution has no action executions in progress."
        ))
    );
}

#[tokio::test]
async fn stop_and_abandon_abandons_the_approval_and_invalidates_its_token() {
    let server = TestServer::fast().await;
    let client = server.client();
    let id = create(&client, &pipeline("abandon", "SUPERSEDED")).await;
    let token = approval_token(&client, "abandon", &id).await;
    client
        .stop_pipeline_execution()
        .pipeline_name("abandon")
        .pipeline_execution_id(&id)
        .abandon(true)
        .send()
        .await
        .expect("stopped");
    wait_for(&client, "abandon", &id, PipelineExecutionStatus::Stopped).await;
    let state = client.get_pipeline_state().name("abandon").send().await.expect("state");
    let gate = state.stage_states()[2].action_states()[0].latest_execution().cloned().expect("ran");
    assert_eq!(gate.status().map(|s| s.as_str()), Some("Abandoned"));
    assert_eq!(gate.summary(), Some("The approval action has been canceled."));
    let err = approve(&client, "abandon", &token, ApprovalStatus::Approved).await.expect_err("out of date");
    assert_eq!(
        err,
        "InvalidApprovalTokenException: The pipeline abandon has been updated, and the approval request you responded to is now out of date."
    );
}

#[tokio::test]
async fn approvals_can_be_answered_while_stopping_and_the_execution_then_stops() {
    let server = TestServer::fast().await;
    let client = server.client();
    let id = create(&client, &pipeline("stopapprove", "SUPERSEDED")).await;
    let token = approval_token(&client, "stopapprove", &id).await;
    client
        .stop_pipeline_execution()
        .pipeline_name("stopapprove")
        .pipeline_execution_id(&id)
        .send()
        .await
        .expect("stopping");
    approve(&client, "stopapprove", &token, ApprovalStatus::Approved).await.expect("allowed while stopping [NATIVE]");
    wait_for(&client, "stopapprove", &id, PipelineExecutionStatus::Stopped).await;
    assert!(stage(&client, "stopapprove", "Deploy").await.0.is_none(), "it does not go on");
}

#[tokio::test]
async fn a_waiting_execution_can_be_stopped() {
    let server = TestServer::fast().await;
    let client = server.client();
    let e1 = create(&client, &pipeline("inbound", "QUEUED")).await;
    let token = approval_token(&client, "inbound", &e1).await;
    let e2 = client.start_pipeline_execution().name("inbound").send().await.expect("started");
    let e2 = e2.pipeline_execution_id().expect("id").to_string();
    eventually("e2 waiting", || async {
        (stage(&client, "inbound", "Approve").await.2 == vec![e2.clone()]).then_some(())
    })
    .await;
    client.stop_pipeline_execution().pipeline_name("inbound").pipeline_execution_id(&e2).send().await.expect("stopped");
    assert_eq!(status(&client, "inbound", &e2).await, PipelineExecutionStatus::Stopped);
    assert!(stage(&client, "inbound", "Approve").await.2.is_empty());
    approve(&client, "inbound", &token, ApprovalStatus::Approved).await.expect("approved");
    wait_for(&client, "inbound", &e1, PipelineExecutionStatus::Succeeded).await;
    let deploy = stage(&client, "inbound", "Deploy").await;
    assert_eq!(deploy.0, Some(e1), "the stopped execution never entered");
}

#[tokio::test]
async fn disabled_transitions_hold_executions_until_enabled() {
    let server = TestServer::fast().await;
    let client = server.client();
    let p = simple("gated");
    client.create_pipeline().pipeline(sdk_json::pipeline(&p)).send().await.expect("created");
    let first = latest_execution(&client, "gated").await;
    wait_for(&client, "gated", &first, PipelineExecutionStatus::Succeeded).await;
    client
        .disable_stage_transition()
        .pipeline_name("gated")
        .stage_name("Deploy")
        .transition_type(StageTransitionType::Inbound)
        .reason("Freeze for release")
        .send()
        .await
        .expect("disabled");
    let state = server.call("GetPipelineState", r#"{"name": "gated"}"#).await.json();
    let transition = &state["stageStates"][1]["inboundTransitionState"];
    assert_eq!(transition["enabled"], false);
    assert_eq!(transition["disabledReason"], "Freeze for release");
    assert_eq!(transition["lastChangedBy"], "arn:aws:iam::000000000000:root");
    assert!(transition["lastChangedAt"].is_number());

    let id = client.start_pipeline_execution().name("gated").send().await.expect("started");
    let id = id.pipeline_execution_id().expect("id").to_string();
    eventually("the execution to wait at Deploy", || async {
        (stage(&client, "gated", "Deploy").await.2 == vec![id.clone()]).then_some(())
    })
    .await;
    assert_eq!(status(&client, "gated", &id).await, PipelineExecutionStatus::InProgress);
    // Outbound of Source is the inbound of Deploy.
    client
        .enable_stage_transition()
        .pipeline_name("gated")
        .stage_name("Source")
        .transition_type(StageTransitionType::Outbound)
        .send()
        .await
        .expect("enabled");
    wait_for(&client, "gated", &id, PipelineExecutionStatus::Succeeded).await;
    let state = server.call("GetPipelineState", r#"{"name": "gated"}"#).await.json();
    assert_eq!(state["stageStates"][1]["inboundTransitionState"]["enabled"], true);

    let err = client
        .disable_stage_transition()
        .pipeline_name("gated")
        .stage_name("Nope")
        .transition_type(StageTransitionType::Inbound)
        .reason("x")
        .send()
        .await
        .expect_err("unknown stage");
    assert!(err.into_service_error().is_stage_not_found_exception());
    let err = client
        .disable_stage_transition()
        .pipeline_name("gated")
        .stage_name("Deploy")
        .transition_type(StageTransitionType::Inbound)
        .reason("no_underscores_allowed")
        .send()
        .await
        .expect_err("reason pattern");
    assert_eq!(err.code(), Some("ValidationException"));
}

#[tokio::test]
async fn behaviours_fail_hold_and_shape_actions() {
    let server = TestServer::fast().await;
    let client = server.client();
    let rules = json!([
        {"pipeline": "steer*", "stage": "Build", "action": "Compile", "outcome": "fail", "errorCode": "ConfigurationError", "message": "no such project"},
        {"pipeline": "steer*", "action": "Src", "outcome": "succeed", "summary": "custom summary", "outputVariables": {"Extra": "1"}}
    ]);
    server.set_behaviors(rules.clone()).await;
    let got = server.connect().await.request("GET", "/_emulator/behaviors", &[], b"").await.json();
    assert_eq!(got["rules"][0]["errorCode"], "ConfigurationError");
    // A failed action's code is one of the model's FailureType values; any other is refused and the rules stay.
    let bad = json!({"rules": [{"outcome": "fail", "errorCode": "Boom"}]});
    let refused = server.control("PUT", "/_emulator/behaviors", &bad).await;
    assert_eq!(refused.status, 400, "{}", refused.text());
    assert!(refused.text().contains("JobFailed"), "{}", refused.text());
    let kept = server.connect().await.request("GET", "/_emulator/behaviors", &[], b"").await.json();
    assert_eq!(kept, got);
    let id = create(&client, &pipeline("steered", "SUPERSEDED")).await;
    wait_for(&client, "steered", &id, PipelineExecutionStatus::Failed).await;
    let state = client.get_pipeline_state().name("steered").send().await.expect("state");
    let source = state.stage_states()[0].action_states()[0].latest_execution().cloned().expect("ran");
    assert_eq!(source.summary(), Some("custom summary"));
    let compile = state.stage_states()[1].action_states()[0].latest_execution().cloned().expect("ran");
    let error = compile.error_details().expect("errorDetails");
    assert_eq!((error.code(), error.message()), (Some("ConfigurationError"), Some("no such project")));
    let history = client.list_action_executions().pipeline_name("steered").send().await.expect("lists");
    let src = history.action_execution_details().iter().find(|d| d.action_name() == Some("Src")).expect("src");
    assert_eq!(src.output().and_then(|o| o.output_variables()).map(|v| v["Extra"].as_str()), Some("1"));
    let compile =
        history.action_execution_details().iter().find(|d| d.action_name() == Some("Compile")).expect("compile");
    assert_eq!(
        compile.output().and_then(|o| o.execution_result()).and_then(|r| r.external_execution_summary()),
        Some("no such project")
    );

    // DELETE clears the rules; a pipeline not matched runs normally.
    let response = server.control("DELETE", "/_emulator/behaviors", &serde_json::Value::Null).await;
    assert_eq!(response.json(), json!({"rules": []}));
    let id = client.start_pipeline_execution().name("steered").send().await.expect("started");
    let id = id.pipeline_execution_id().expect("id").to_string();
    approval_token(&client, "steered", &id).await;

    // Invalid rule sets are refused whole.
    let response =
        server.control("PUT", "/_emulator/behaviors", &serde_json::json!({"rules": [{"outcome": "explode"}]})).await;
    assert_eq!(response.status, 400);
    assert_eq!(response.json()["__type"], "ValidationException");
}

#[tokio::test]
async fn held_actions_are_completed_by_the_emulator_endpoint_or_time_out() {
    let server = TestServer::fast().await;
    let client = server.client();
    server.set_behaviors(json!([{"action": "Compile", "outcome": "hold"}])).await;
    let id = create(&client, &pipeline("held", "SUPERSEDED")).await;
    eventually("Compile held", || async {
        (stage(&client, "held", "Build").await.1.as_deref() == Some("InProgress")).then_some(())
    })
    .await;
    let missing = complete(
        &server,
        json!({"pipelineName": "held", "pipelineExecutionId": id, "stageName": "Build", "actionName": "Nope"}),
    )
    .await;
    assert_eq!(missing.status, 404);
    assert!(missing.json()["message"].as_str().is_some_and(|m| m.contains("is not running")));
    let response = complete(
        &server,
        json!({"pipelineName": "held", "pipelineExecutionId": id, "stageName": "Build",
        "actionName": "Compile", "outcome": "fail", "errorCode": "JobFailed", "message": "tests failed"}),
    )
    .await;
    assert_eq!(response.status, 200);
    wait_for(&client, "held", &id, PipelineExecutionStatus::Failed).await;

    // A held CodeBuild action times out after 8 hours of emulator time.
    let id = client.start_pipeline_execution().name("held").send().await.expect("started");
    let id = id.pipeline_execution_id().expect("id").to_string();
    eventually("Compile held again", || async {
        let (latest, status, _) = stage(&client, "held", "Build").await;
        (latest.as_deref() == Some(id.as_str()) && status.as_deref() == Some("InProgress")).then_some(())
    })
    .await;
    server.advance_clock(8.0 * 3600.0 + 1.0).await;
    assert_eq!(status(&client, "held", &id).await, PipelineExecutionStatus::Failed);
}

#[tokio::test]
async fn behaviours_can_be_loaded_at_start_up() {
    let path = std::env::temp_dir().join(format!("behaviors-{}.json", uuid::Uuid::new_v4()));
    std::fs::write(&path, r#"{"rules": [{"action": "Ship", "outcome": "fail"}]}"#).expect("written");
    let config =
        codepipeline_local::Config { action_duration_ms: 5, behaviors: Some(path.clone()), ..Default::default() };
    let server = TestServer::with_config(config).await;
    let client = server.client();
    let id = create(&client, &simple("fromfile")).await;
    wait_for(&client, "fromfile", &id, PipelineExecutionStatus::Failed).await;
    let _ = std::fs::remove_file(path);
}

#[tokio::test]
async fn the_clock_moves_timestamps() {
    let server = TestServer::fast().await;
    let client = server.client();
    let first = create(&client, &simple("clock")).await;
    wait_for(&client, "clock", &first, PipelineExecutionStatus::Succeeded).await;
    server.advance_clock(86_400.0).await;
    let second = client.start_pipeline_execution().name("clock").send().await.expect("started");
    let second = second.pipeline_execution_id().expect("id").to_string();
    let listed = client.list_pipeline_executions().pipeline_name("clock").send().await.expect("lists");
    let times: Vec<f64> =
        listed.pipeline_execution_summaries().iter().filter_map(|s| s.start_time().map(|t| t.as_secs_f64())).collect();
    assert_eq!(listed.pipeline_execution_summaries()[0].pipeline_execution_id(), Some(second.as_str()));
    assert!(times[0] - times[1] >= 86_400.0, "{times:?}");
}

#[tokio::test]
async fn executions_keep_their_version_and_outdated_approvals_are_refused() {
    let server = TestServer::fast().await;
    let client = server.client();
    let p = pipeline("versions", "SUPERSEDED");
    let id = create(&client, &p).await;
    let token = approval_token(&client, "versions", &id).await;
    let mut updated = p.clone();
    updated["stages"][3]["actions"][0]["configuration"]["Extract"] = json!("false");
    client.update_pipeline().pipeline(sdk_json::pipeline(&updated)).send().await.expect("updated");
    let state = client.get_pipeline_state().name("versions").send().await.expect("state");
    assert_eq!(state.pipeline_version(), Some(2), "the current version");
    let execution = client
        .get_pipeline_execution()
        .pipeline_name("versions")
        .pipeline_execution_id(&id)
        .send()
        .await
        .expect("gets");
    assert_eq!(execution.pipeline_execution().and_then(|e| e.pipeline_version()), Some(1), "it keeps its version");
    let err = approve(&client, "versions", &token, ApprovalStatus::Approved).await.expect_err("outdated");
    assert_eq!(
        err,
        "InvalidApprovalTokenException: The pipeline versions has been updated, and the approval request you responded to is now out of date."
    );
    // UpdatePipeline starts nothing by itself.
    let listed = client.list_pipeline_executions().pipeline_name("versions").send().await.expect("lists");
    assert_eq!(listed.pipeline_execution_summaries().len(), 1);
}

#[tokio::test]
async fn execution_history_is_paginated_newest_first_and_filtered() {
    let server = TestServer::fast().await;
    let client = server.client();
    let first = create(&client, &simple("history")).await;
    wait_for(&client, "history", &first, PipelineExecutionStatus::Succeeded).await;
    let mut ids = vec![first];
    for _ in 0..6 {
        let id = client.start_pipeline_execution().name("history").send().await.expect("started");
        let id = id.pipeline_execution_id().expect("id").to_string();
        wait_for(&client, "history", &id, PipelineExecutionStatus::Succeeded).await;
        ids.push(id);
    }
    let mut seen = Vec::new();
    let mut token = None;
    loop {
        let page = client
            .list_pipeline_executions()
            .pipeline_name("history")
            .max_results(3)
            .set_next_token(token)
            .send()
            .await
            .expect("page");
        seen.extend(
            page.pipeline_execution_summaries().iter().filter_map(|s| s.pipeline_execution_id().map(str::to_string)),
        );
        match page.next_token() {
            Some(next) => token = Some(next.to_string()),
            None => break,
        }
    }
    let newest_first: Vec<String> = ids.iter().rev().cloned().collect();
    assert_eq!(seen, newest_first);

    let succeeded = client
        .list_pipeline_executions()
        .pipeline_name("history")
        .filter(
            PipelineExecutionFilter::builder()
                .succeeded_in_stage(SucceededInStageFilter::builder().stage_name("Deploy").build())
                .build(),
        )
        .send()
        .await
        .expect("filtered");
    assert_eq!(succeeded.pipeline_execution_summaries().len(), 7);

    // Action history: every page once, newest first; the latest-attempt filter.
    let mut actions = Vec::new();
    let mut token = None;
    loop {
        let page = client
            .list_action_executions()
            .pipeline_name("history")
            .max_results(4)
            .set_next_token(token)
            .send()
            .await
            .expect("page");
        actions
            .extend(page.action_execution_details().iter().filter_map(|d| d.action_execution_id().map(str::to_string)));
        match page.next_token() {
            Some(next) => token = Some(next.to_string()),
            None => break,
        }
    }
    assert_eq!(actions.len(), 14);
    let unique: std::collections::HashSet<_> = actions.iter().collect();
    assert_eq!(unique.len(), 14);
    let latest = client
        .list_action_executions()
        .pipeline_name("history")
        .filter(
            ActionExecutionFilter::builder()
                .latest_in_pipeline_execution(
                    LatestInPipelineExecutionFilter::builder()
                        .pipeline_execution_id(&ids[2])
                        .start_time_range(StartTimeRange::Latest)
                        .build()
                        .expect("filter"),
                )
                .build(),
        )
        .send()
        .await
        .expect("filtered");
    assert_eq!(latest.action_execution_details().len(), 2);
    assert!(latest.action_execution_details().iter().all(|d| d.pipeline_execution_id() == Some(ids[2].as_str())));

    let err = client
        .list_action_executions()
        .pipeline_name("history")
        .filter(ActionExecutionFilter::builder().pipeline_execution_id("0d8a7e1c-1d2b-4c1e-9f3a-2b7c6d5e4f3a").build())
        .send()
        .await
        .expect_err("unknown execution");
    assert!(err.into_service_error().is_pipeline_execution_not_found_exception());
    let err = client.list_action_executions().pipeline_name("nope").send().await.expect_err("unknown pipeline");
    assert_eq!(
        err.message(),
        Some("The account with AWS account ID '000000000000' does not include a pipeline named 'nope'")
    );
    let err = client
        .get_pipeline_execution()
        .pipeline_name("history")
        .pipeline_execution_id("0d8a7e1c-1d2b-4c1e-9f3a-2b7c6d5e4f3a")
        .send()
        .await
        .expect_err("unknown");
    assert_eq!(err.code(), Some("PipelineExecutionNotFoundException"));
}
