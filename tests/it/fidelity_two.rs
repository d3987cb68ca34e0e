//! Fidelity, round 2 (issue 28): what further real AWS sessions show, one test per difference.

use serde_json::{Value, json};

use crate::common::TestServer;
use crate::stacks::{action_state, at, ended};

fn s3_deploy(name: &str, configuration: Value) -> Value {
    json!({"pipeline": {"name": name, "roleArn": "arn:aws:iam::123456789012:role/r",
        "artifactStore": {"type": "S3", "location": "artifact-bucket"},
        "stages": [
            {"name": "Source", "actions": [{"name": "Src", "actionTypeId": at("Source", "CodeCommit"),
                "configuration": {"RepositoryName": "app", "BranchName": "main"}, "outputArtifacts": [{"name": "App"}]}]},
            {"name": "Deploy", "actions": [{"name": "Ship", "actionTypeId": at("Deploy", "S3"),
                "configuration": configuration, "inputArtifacts": [{"name": "App"}]}]}]}})
}

#[tokio::test]
async fn an_s3_deploy_s_configuration_is_checked_when_it_runs_and_its_history_shows_the_code_only() {
    let server = TestServer::fast().await;
    // Extract false without an ObjectKey: the request is accepted, the action fails.
    let created = server
        .call("CreatePipeline", &s3_deploy("no-key", json!({"BucketName": "site", "Extract": "false"})).to_string())
        .await;
    assert_eq!(created.status, 200, "{}", created.text());
    let (status, _) = ended(&server, "no-key", 1).await;
    assert_eq!(status, "Failed");
    let state = action_state(&server, "no-key", 1).await;
    let message = "When the extract feature is disabled, you must provide an object. Edit your pipeline to fix the configuration.";
    assert_eq!(state["errorDetails"], json!({"code": "ConfigurationError", "message": message}));
    let listed = server.call("ListActionExecutions", r#"{"pipelineName": "no-key"}"#).await.json();
    let ship = listed["actionExecutionDetails"]
        .as_array()
        .and_then(|d| d.iter().find(|d| d["actionName"] == "Ship"))
        .cloned()
        .expect("ran");
    assert_eq!(
        ship["output"]["executionResult"],
        json!({"errorDetails": {"code": "ConfigurationError"}, "externalExecutionSummary": message}),
        "the message is the summary; errorDetails has the code only"
    );

    // An Extract that is not exactly true or false fails at run time too.
    for (name, extract) in [("capital", "True"), ("yes", "yes")] {
        server
            .call(
                "CreatePipeline",
                &s3_deploy(name, json!({"BucketName": "site", "Extract": extract, "ObjectKey": "k"})).to_string(),
            )
            .await;
        let (status, _) = ended(&server, name, 1).await;
        assert_eq!(status, "Failed", "{extract}");
        assert_eq!(action_state(&server, name, 1).await["errorDetails"]["code"], "ConfigurationError", "{extract}");
    }

    // An extract deploy without ObjectKey names the bucket alone.
    server
        .call("CreatePipeline", &s3_deploy("extracted", json!({"BucketName": "site", "Extract": "true"})).to_string())
        .await;
    let (status, _) = ended(&server, "extracted", 1).await;
    assert_eq!(status, "Succeeded");
    assert_eq!(action_state(&server, "extracted", 1).await["externalExecutionId"], "site");
}

#[tokio::test]
async fn starts_check_their_overrides_before_a_repeated_token_and_refuse_duplicate_variables_in_aws_s_words() {
    let server = TestServer::fast().await;
    server
        .call("CreatePipeline", &s3_deploy("tokens", json!({"BucketName": "site", "Extract": "true"})).to_string())
        .await;
    let first = server.call("StartPipelineExecution", r#"{"name": "tokens", "clientRequestToken": "once"}"#).await;
    assert_eq!(first.status, 200, "{}", first.text());
    let message = "The action name provided in the source revision is not valid. The action must be a source action in your pipeline.";
    let overrides = r#"[{"actionName": "Ship", "revisionType": "COMMIT_ID", "revisionValue": "abc"}]"#;
    for token in ["once", "fresh"] {
        let body = format!(r#"{{"name": "tokens", "clientRequestToken": "{token}", "sourceRevisions": {overrides}}}"#);
        let refused = server.call("StartPipelineExecution", &body).await;
        assert_eq!(refused.status, 400, "{token}: {}", refused.text());
        assert_eq!(refused.json()["message"], message, "{token}");
    }
    let duplicate = r#"{"name": "tokens", "variables": [{"name": "A", "value": "1"}, {"name": "A", "value": "2"}]}"#;
    let refused = server.call("StartPipelineExecution", duplicate).await;
    assert_eq!(refused.status, 400);
    assert_eq!(
        refused.json()["message"],
        "Variable names must be unique. The following variable name is already in use: A"
    );
}

#[tokio::test]
async fn variables_come_in_an_order_of_their_names_an_empty_list_is_accepted_and_a_failed_start_shows_none() {
    let server = TestServer::fast().await;
    let mut pipeline = s3_deploy("vars", json!({"BucketName": "site", "Extract": "true"}));
    pipeline["pipeline"]["pipelineType"] = json!("V2");
    pipeline["pipeline"]["variables"] = json!([
        {"name": "Zulu", "defaultValue": "z"}, {"name": "Alpha", "defaultValue": "a"}, {"name": "Middle", "defaultValue": "m"}
    ]);
    server.call("CreatePipeline", &pipeline.to_string()).await;
    ended(&server, "vars", 1).await;
    let overrides = [
        json!([{"name": "Zulu", "value": "z2"}, {"name": "Alpha", "value": "a2"}]),
        json!([{"name": "Alpha", "value": "a2"}, {"name": "Zulu", "value": "z2"}]),
        json!([]),
    ];
    for (n, variables) in overrides.iter().enumerate() {
        let body = json!({"name": "vars", "variables": variables}).to_string();
        let started = server.call("StartPipelineExecution", &body).await;
        assert_eq!(started.status, 200, "{variables}: {}", started.text());
        let id = started.json()["pipelineExecutionId"].as_str().map(str::to_string).expect("id");
        ended(&server, "vars", n + 2).await;
        let execution = server
            .call("GetPipelineExecution", &json!({"pipelineName": "vars", "pipelineExecutionId": id}).to_string())
            .await
            .json();
        let shown = &execution["pipelineExecution"]["variables"];
        let names: Vec<&str> = shown.as_array().into_iter().flatten().filter_map(|v| v["name"].as_str()).collect();
        assert_eq!(names, ["Alpha", "Zulu", "Middle"], "overrides {variables}");
        let zulu = shown.as_array().into_iter().flatten().find(|v| v["name"] == "Zulu").cloned();
        let expected = if n < 2 { "z2" } else { "z" };
        assert_eq!(zulu.map(|v| v["resolvedValue"].clone()), Some(json!(expected)));
    }

    // A required variable without a value: the execution fails at start and shows no variables at all.
    let mut required = s3_deploy("required", json!({"BucketName": "site", "Extract": "true"}));
    required["pipeline"]["pipelineType"] = json!("V2");
    required["pipeline"]["variables"] = json!([{"name": "Tag"}, {"name": "Env", "defaultValue": "dev"}]);
    server.call("CreatePipeline", &required.to_string()).await;
    let (status, id) = ended(&server, "required", 1).await;
    assert_eq!(status, "Failed");
    let execution = server
        .call("GetPipelineExecution", &json!({"pipelineName": "required", "pipelineExecutionId": id}).to_string())
        .await
        .json();
    assert_eq!(
        execution["pipelineExecution"]["statusSummary"],
        "Values for required variables haven't been provided: Tag"
    );
    assert!(execution["pipelineExecution"].get("variables").is_none(), "no variables member: {execution}");
}

#[tokio::test]
async fn a_commit_without_a_message_leaves_the_revision_summary_out_rather_than_empty() {
    let server = TestServer::fast().await;
    server
        .call("CreatePipeline", &s3_deploy("quiet", json!({"BucketName": "site", "Extract": "true"})).to_string())
        .await;
    ended(&server, "quiet", 1).await;
    let change = json!({"provider": "CodeCommit", "repositoryName": "app", "branch": "main", "commitId": "0123456789abcdef0123456789abcdef01234567"});
    let started = server.control("POST", "/_emulator/source-changes", &change).await;
    assert_eq!(started.status, 200, "{}", started.text());
    let (_, id) = ended(&server, "quiet", 2).await;
    let execution = server
        .call("GetPipelineExecution", &json!({"pipelineName": "quiet", "pipelineExecutionId": id}).to_string())
        .await
        .json();
    let revision = &execution["pipelineExecution"]["artifactRevisions"][0];
    assert_eq!(revision["revisionId"], "0123456789abcdef0123456789abcdef01234567", "{revision}");
    assert!(revision.get("revisionSummary").is_none(), "no empty summary: {revision}");
    let listed = server.call("ListPipelineExecutions", r#"{"pipelineName": "quiet"}"#).await.json();
    let source = &listed["pipelineExecutionSummaries"][0]["sourceRevisions"][0];
    assert!(source.get("revisionSummary").is_none(), "{source}");
}

/// The member names of each event's `detail`, in the order they are sent, with the event's detail type and state.
fn detail_orders(raw: &str) -> Vec<(String, String, Vec<String>)> {
    let mut found = Vec::new();
    for chunk in raw.split("\"detail-type\":").skip(1) {
        let kind = chunk.split('"').nth(1).unwrap_or_default().to_string();
        let Some(detail) = chunk.split("\"detail\":").nth(1) else { continue };
        // The top-level member names of the detail object, in order.
        let (mut depth, mut names, mut in_string, mut start, mut escaped) = (0, Vec::new(), false, 0, false);
        for (i, c) in detail.char_indices() {
            if in_string {
                match c {
                    _ if escaped => escaped = false,
                    '\\' => escaped = true,
                    '"' => {
                        in_string = false;
                        if depth == 1 && detail[i + 1..].starts_with(':') {
                            names.push(detail[start..i].to_string());
                        }
                    }
                    _ => {}
                }
                continue;
            }
            match c {
                '"' => {
                    in_string = true;
                    start = i + 1;
                }
                '{' | '[' => depth += 1,
                '}' | ']' => {
                    depth -= 1;
                    if depth == 0 {
                        break;
                    }
                }
                _ => {}
            }
        }
        let state = detail.split("\"state\":\"").nth(1).and_then(|s| s.split('"').next()).unwrap_or_default();
        found.push((kind, state.to_string(), names));
    }
    found
}

#[tokio::test]
async fn eventbridge_events_carry_their_detail_members_in_aws_s_order() {
    let server = TestServer::fast().await;
    server
        .call("CreatePipeline", &s3_deploy("ordered", json!({"BucketName": "site", "Extract": "true"})).to_string())
        .await;
    ended(&server, "ordered", 1).await;
    let raw = server.control("GET", "/_emulator/events?pipeline=ordered", &json!({})).await.text();
    let orders = detail_orders(&raw);
    let order = |kind: &str, state: &str, outputs: bool| {
        orders
            .iter()
            .find(|(k, s, names)| {
                k.contains(kind) && s == state && names.contains(&"output-artifacts".to_string()) == outputs
            })
            .map(|(_, _, names)| names.join(","))
            .unwrap_or_else(|| panic!("no {kind} {state} event in {raw}"))
    };
    assert_eq!(
        order("Pipeline Execution", "STARTED", false),
        "pipeline,execution-id,execution-trigger,start-time,state,version,pipeline-execution-attempt"
    );
    assert_eq!(
        order("Pipeline Execution", "SUCCEEDED", false),
        "pipeline,execution-id,start-time,state,version,pipeline-execution-attempt"
    );
    assert_eq!(
        order("Stage Execution", "STARTED", false),
        "pipeline,execution-id,start-time,stage,state,version,pipeline-execution-attempt"
    );
    assert_eq!(
        order("Action Execution", "SUCCEEDED", false),
        "pipeline,execution-id,start-time,stage,execution-result,action-execution-id,action,state,region,type,version,pipeline-execution-attempt"
    );
    assert_eq!(
        order("Action Execution", "SUCCEEDED", true),
        "execution-id,start-time,execution-result,output-artifacts,type,version,pipeline,stage,action-execution-id,action,state,region,pipeline-execution-attempt"
    );
    assert!(
        raw.contains("\"execution-result\":{\"external-execution-summary\":"),
        "summary first in the result: {raw}"
    );
}

#[tokio::test]
async fn an_update_cancels_a_waiting_approval_and_its_execution_in_aws_s_words() {
    let server = TestServer::fast().await;
    let mut pipeline = s3_deploy("gated", json!({"BucketName": "site", "Extract": "true"}));
    pipeline["pipeline"]["stages"][1] = json!({"name": "Approve", "actions": [{"name": "Gate",
        "actionTypeId": {"category": "Approval", "owner": "AWS", "provider": "Manual", "version": "1"}}]});
    server.call("CreatePipeline", &pipeline.to_string()).await;
    let token = crate::common::eventually("the approval to wait", || async {
        let state = server.call("GetPipelineState", r#"{"name": "gated"}"#).await.json();
        state["stageStates"][1]["actionStates"][0]["latestExecution"]["token"].as_str().map(str::to_string)
    })
    .await;
    // A second execution waits at the approval stage's entrance.
    let second = server.call("StartPipelineExecution", r#"{"name": "gated"}"#).await.json();
    let second = second["pipelineExecutionId"].as_str().map(str::to_string).expect("id");
    crate::common::eventually("the second to wait at the gate", || async {
        let state = server.call("GetPipelineState", r#"{"name": "gated"}"#).await.json();
        (state["stageStates"][1]["inboundExecutions"][0]["pipelineExecutionId"] == second.as_str()).then_some(())
    })
    .await;

    let mut updated = pipeline["pipeline"].clone();
    updated["stages"][1]["actions"][0]["configuration"] = json!({"CustomData": "v2"});
    let answer = server.call("UpdatePipeline", &json!({"pipeline": updated}).to_string()).await;
    assert_eq!(answer.status, 200, "{}", answer.text());

    let state = server.call("GetPipelineState", r#"{"name": "gated"}"#).await.json();
    let gate = &state["stageStates"][1]["actionStates"][0]["latestExecution"];
    assert_eq!(gate["status"], "Failed", "{gate}");
    assert_eq!(gate["summary"], "The approval action has been canceled.", "{gate}");
    assert!(gate.get("token").is_none() && gate.get("errorDetails").is_none(), "{gate}");
    assert_eq!(state["stageStates"][1]["latestExecution"]["status"], "Cancelled", "{state}");
    assert_eq!(state["stageStates"][1]["inboundExecutions"], json!([]), "the waiting one ended too: {state}");
    let listed = server.call("ListPipelineExecutions", r#"{"pipelineName": "gated"}"#).await.json();
    let summaries = listed["pipelineExecutionSummaries"].as_array().cloned().unwrap_or_default();
    assert_eq!(summaries.len(), 2, "the update started nothing: {listed}");
    for summary in &summaries {
        assert_eq!(summary["status"], "Cancelled", "{summary}");
        assert_eq!(summary["statusSummary"], "Pipeline definition was updated", "{summary}");
        let id = summary["pipelineExecutionId"].as_str().unwrap_or_default();
        let execution = server
            .call("GetPipelineExecution", &json!({"pipelineName": "gated", "pipelineExecutionId": id}).to_string())
            .await
            .json();
        assert_eq!(execution["pipelineExecution"]["status"], "Cancelled");
        assert_eq!(execution["pipelineExecution"]["statusSummary"], "Pipeline definition was updated");
        assert_eq!(execution["pipelineExecution"]["pipelineVersion"], 1, "it keeps its version");
    }
    let history = server.call("ListActionExecutions", r#"{"pipelineName": "gated"}"#).await.json();
    let gate_run = history["actionExecutionDetails"]
        .as_array()
        .and_then(|d| d.iter().find(|d| d["actionName"] == "Gate"))
        .cloned()
        .expect("the gate ran");
    assert_eq!(gate_run["status"], "Failed", "{gate_run}");
    assert_eq!(
        gate_run["output"]["executionResult"]["externalExecutionSummary"],
        "The approval action has been canceled."
    );
    // The old token is out of date.
    let late = json!({"pipelineName": "gated", "stageName": "Approve", "actionName": "Gate", "token": token,
        "result": {"summary": "late", "status": "Approved"}});
    let refused = server.call("PutApprovalResult", &late.to_string()).await;
    assert_eq!(refused.json()["__type"], "InvalidApprovalTokenException", "{}", refused.text());
    assert_eq!(
        refused.json()["message"],
        "The pipeline gated has been updated, and the approval request you responded to is now out of date."
    );
    let events = server.control("GET", "/_emulator/events?pipeline=gated", &json!({})).await.text();
    assert!(events.contains("\"state\":\"CANCELED\""), "a CANCELED event: {events}");
}

fn s3_sourced(name: &str, sources: &[(&str, &str, Option<&str>)]) -> Value {
    let actions: Vec<Value> = sources
        .iter()
        .map(|(action, key, polls)| {
            let mut configuration = json!({"S3Bucket": "releases", "S3ObjectKey": key});
            if let Some(polls) = polls {
                configuration["PollForSourceChanges"] = json!(polls);
            }
            json!({"name": action, "actionTypeId": at("Source", "S3"), "configuration": configuration,
                "outputArtifacts": [{"name": format!("{action}Out")}]})
        })
        .collect();
    json!({"pipeline": {"name": name, "roleArn": "arn:aws:iam::123456789012:role/r", "executionMode": "SUPERSEDED",
        "artifactStore": {"type": "S3", "location": "artifact-bucket"},
        "stages": [
            {"name": "Source", "actions": actions},
            {"name": "Approve", "actions": [{"name": "Gate",
                "actionTypeId": {"category": "Approval", "owner": "AWS", "provider": "Manual", "version": "1"}}]}]}})
}

async fn summaries(server: &TestServer, name: &str) -> Vec<Value> {
    let listed = server.call("ListPipelineExecutions", &json!({"pipelineName": name}).to_string()).await.json();
    listed["pipelineExecutionSummaries"].as_array().cloned().unwrap_or_default()
}

#[tokio::test]
async fn polling_s3_sources_start_their_own_executions_in_the_emulated_world() {
    let server = TestServer::fast().await;
    // Two polling sources: two executions, one per action, each binding both revisions, the triggering one first.
    let created = server
        .call("CreatePipeline", &s3_sourced("two", &[("A", "a.zip", None), ("B", "b.zip", Some("True"))]).to_string())
        .await;
    assert_eq!(created.status, 200, "{}", created.text());
    let listed = summaries(&server, "two").await;
    assert_eq!(listed.len(), 2, "{listed:?}");
    let mut triggers: Vec<Value> = listed.iter().map(|s| s["trigger"].clone()).collect();
    triggers.reverse();
    assert_eq!(
        triggers,
        [
            json!({"triggerType": "PollForSourceChanges", "triggerDetail": "A"}),
            json!({"triggerType": "PollForSourceChanges", "triggerDetail": "B"})
        ]
    );
    // The second waits at the approval stage's entrance while the first waits for its answer.
    let second = listed[0]["pipelineExecutionId"].as_str().unwrap_or_default().to_string();
    crate::common::eventually("the second at the gate's entrance", || async {
        let state = server.call("GetPipelineState", r#"{"name": "two"}"#).await.json();
        (state["stageStates"][1]["inboundExecutions"][0]["pipelineExecutionId"] == second.as_str()).then_some(())
    })
    .await;
    let execution = server
        .call("GetPipelineExecution", &json!({"pipelineName": "two", "pipelineExecutionId": second}).to_string())
        .await
        .json();
    let names: Vec<&str> = execution["pipelineExecution"]["artifactRevisions"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| r["name"].as_str())
        .collect();
    assert_eq!(names, ["BOut", "AOut"], "both revisions, the triggering action's first: {execution}");

    // Values that do not poll: CreatePipeline starts it.
    for (n, value) in ["False", "yes", "1"].iter().enumerate() {
        let name = format!("quiet{n}");
        server.call("CreatePipeline", &s3_sourced(&name, &[("A", "a.zip", Some(value))]).to_string()).await;
        let listed = summaries(&server, &name).await;
        assert_eq!(listed.len(), 1, "{value}");
        assert_eq!(listed[0]["trigger"]["triggerType"], "CreatePipeline", "{value}");
    }
    // Turning polling on starts a run on the unchanged version (CreatePipeline's run set no cursor); an update that
    // changes nothing of it starts nothing more.
    let mut polling = s3_sourced("quiet0", &[("A", "a.zip", Some("true"))]);
    assert_eq!(server.call("UpdatePipeline", &polling.to_string()).await.status, 200);
    assert_eq!(summaries(&server, "quiet0").await.len(), 2);
    // Its source has run (the gate waits): both executions name the same version.
    crate::common::eventually("the polled run's revision", || async {
        let listed = summaries(&server, "quiet0").await;
        listed[0]["sourceRevisions"][0]["revisionId"].as_str().map(str::to_string)
    })
    .await;
    let listed = summaries(&server, "quiet0").await;
    assert_eq!(listed[0]["trigger"], json!({"triggerType": "PollForSourceChanges", "triggerDetail": "A"}));
    assert_eq!(listed[0]["sourceRevisions"][0]["revisionId"], listed[1]["sourceRevisions"][0]["revisionId"]);
    polling["pipeline"]["stages"][1]["actions"][0]["configuration"] = json!({"CustomData": "v3"});
    assert_eq!(server.call("UpdatePipeline", &polling.to_string()).await.status, 200);
    assert_eq!(summaries(&server, "quiet0").await.len(), 2);
}

#[tokio::test]
async fn a_missing_s3_source_object_starts_nothing_and_shows_on_the_action() {
    let server = TestServer::fast().await;
    let gone = json!({"provider": "S3", "bucket": "releases", "key": "absent.zip", "deleted": true});
    assert_eq!(server.control("POST", "/_emulator/source-changes", &gone).await.status, 200);
    let created = server
        .call("CreatePipeline", &s3_sourced("missing", &[("Input", "absent.zip", Some("true"))]).to_string())
        .await;
    assert_eq!(created.status, 200, "{}", created.text());
    assert!(summaries(&server, "missing").await.is_empty(), "no execution");
    let state = server.call("GetPipelineState", r#"{"name": "missing"}"#).await.json();
    let source = &state["stageStates"][0];
    let message = "Could not access the Amazon S3 object: \"releases/absent.zip\". Make sure that the names of the bucket and object are both correct.";
    let latest = &source["actionStates"][0]["latestExecution"];
    assert_eq!(latest["status"], "Failed", "{state}");
    assert_eq!(latest["errorDetails"], json!({"code": "ConfigurationError", "message": message}));
    assert!(latest.get("actionExecutionId").is_none() && latest.get("lastStatusChange").is_some(), "{latest}");
    assert!(source.get("latestExecution").is_none() && source["actionStates"][0].get("currentRevision").is_none());

    // Uploaded: polling starts the pipeline on it, and the action shows its run.
    let upload = json!({"provider": "S3", "bucket": "releases", "key": "absent.zip", "versionId": "v1"});
    let answer = server.control("POST", "/_emulator/source-changes", &upload).await.json();
    assert_eq!(answer["started"].as_array().map(Vec::len), Some(1), "{answer}");
    let listed = summaries(&server, "missing").await;
    assert_eq!(listed[0]["trigger"], json!({"triggerType": "PollForSourceChanges", "triggerDetail": "Input"}));
    crate::common::eventually("the source to succeed", || async {
        let state = server.call("GetPipelineState", r#"{"name": "missing"}"#).await.json();
        (state["stageStates"][0]["actionStates"][0]["latestExecution"]["status"] == "Succeeded").then_some(())
    })
    .await;
    // Deleted again: the action shows the failure, the stage keeps its latest execution.
    let answer = server.control("POST", "/_emulator/source-changes", &gone).await.json();
    assert_eq!(answer["started"], json!([]), "{answer}");
    let state = server.call("GetPipelineState", r#"{"name": "missing"}"#).await.json();
    assert_eq!(state["stageStates"][0]["actionStates"][0]["latestExecution"]["errorDetails"]["message"], message);
    assert_eq!(state["stageStates"][0]["latestExecution"]["status"], "Succeeded", "{state}");

    // A source that does not poll runs and fails on the missing object.
    server.call("CreatePipeline", &s3_sourced("manual", &[("Input", "absent.zip", Some("false"))]).to_string()).await;
    let (status, _) = ended(&server, "manual", 1).await;
    assert_eq!(status, "Failed");
    let state = action_state(&server, "manual", 0).await;
    assert_eq!(state["errorDetails"], json!({"code": "ConfigurationError", "message": message}), "{state}");
    assert!(state.get("actionExecutionId").is_some());
}

#[tokio::test]
async fn a_source_stage_rollback_reads_the_source_now_and_reuses_the_target_s_artifact() {
    let server = TestServer::fast().await;
    let change = |version: &str| json!({"provider": "S3", "bucket": "releases", "key": "app.zip", "versionId": version, "startPipelines": false});
    server.control("POST", "/_emulator/source-changes", &change("v1")).await;
    let mut pipeline = s3_sourced("back", &[("Input", "app.zip", Some("false"))]);
    pipeline["pipeline"]["pipelineType"] = json!("V2");
    pipeline["pipeline"]["stages"][1] = json!({"name": "Check", "actions": [{"name": "Test",
        "actionTypeId": at("Test", "CodeBuild"), "configuration": {"ProjectName": "p"},
        "inputArtifacts": [{"name": "InputOut"}]}]});
    server.call("CreatePipeline", &pipeline.to_string()).await;
    let (status, target) = ended(&server, "back", 1).await;
    assert_eq!(status, "Succeeded");
    server.control("POST", "/_emulator/source-changes", &change("v2")).await;

    let body = json!({"pipelineName": "back", "stageName": "Source", "targetPipelineExecutionId": target});
    let rolled = server.call("RollbackStage", &body.to_string()).await;
    assert_eq!(rolled.status, 200, "{}", rolled.text());
    let rollback = rolled.json()["pipelineExecutionId"].as_str().unwrap_or_default().to_string();
    let (status, _) = ended(&server, "back", 2).await;
    assert_eq!(status, "Succeeded");

    // The action reads the object as it is now.
    let history = server.call("ListActionExecutions", r#"{"pipelineName": "back"}"#).await.json();
    let runs = history["actionExecutionDetails"].as_array().cloned().unwrap_or_default();
    let run_of = |execution: &str| {
        runs.iter()
            .find(|d| d["pipelineExecutionId"] == execution && d["actionName"] == "Input")
            .cloned()
            .unwrap_or_default()
    };
    let (now, then) = (run_of(&rollback), run_of(&target));
    assert_eq!(now["output"]["executionResult"]["externalExecutionId"], "v2", "{now}");
    assert_eq!(now["output"]["outputVariables"]["VersionId"], "v2", "{now}");
    // It reuses the target's artifact rather than writing a new one.
    let location = |run: &Value| run["output"]["outputArtifacts"][0]["s3location"].clone();
    assert!(location(&then).is_object(), "{then}");
    assert_eq!(location(&now), location(&then));
    // The stage shows the current version; the execution names the target's.
    let state = server.call("GetPipelineState", r#"{"name": "back"}"#).await.json();
    assert_eq!(state["stageStates"][0]["actionStates"][0]["currentRevision"]["revisionId"], "v2", "{state}");
    let execution = server
        .call("GetPipelineExecution", &json!({"pipelineName": "back", "pipelineExecutionId": rollback}).to_string())
        .await
        .json();
    let revision = &execution["pipelineExecution"]["artifactRevisions"][0];
    assert_eq!(revision["revisionId"], "v1", "{execution}");
    assert_eq!(revision["revisionSummary"], "Amazon S3 version id: v1");
    let listed = summaries(&server, "back").await;
    assert_eq!(listed[0]["pipelineExecutionId"], rollback.as_str());
    assert_eq!(listed[0]["sourceRevisions"][0]["revisionId"], "v1");
    assert_eq!(listed[0]["sourceRevisions"][0]["revisionSummary"], "Amazon S3 version id: v1");
}
