//! Fidelity: answers that match, member by member, what real AWS CodePipeline sent in recorded sessions
//! (`shared/reference/native-captures`). Each test states the fact it checks; none copies a capture.

use aws_sdk_codepipeline::types::ActionOwner;
use serde_json::{Value, json};

use aws_sdk_codepipeline::types::PipelineExecutionStatus;

use crate::common::{TestServer, eventually, first_execution, pipeline_json, wait_for};

/// (category, provider) of each AWS-owned type, in the order AWS's ListActionTypes returns them.
const AWS_ORDER: [(&str, &str); 28] = [
    ("Source", "S3"),
    ("Invoke", "Lambda"),
    ("Deploy", "Lambda"),
    ("Test", "CodeBuild"),
    ("Approval", "Manual"),
    ("Source", "CodeStarSourceConnection"),
    ("Invoke", "InspectorScan"),
    ("Source", "CodeCommit"),
    ("Invoke", "StepFunctions"),
    ("Deploy", "CloudFormation"),
    ("Deploy", "CloudFormationStackSet"),
    ("Deploy", "EKS"),
    ("Test", "DeviceFarm"),
    ("Build", "ECRBuildAndPublish"),
    ("Deploy", "CloudFormationStackInstances"),
    ("Deploy", "EC2"),
    ("Deploy", "ECS"),
    ("Source", "ECR"),
    ("Deploy", "CodeDeploy"),
    ("Deploy", "ServiceCatalog"),
    ("Deploy", "CodeDeployToECS"),
    ("Deploy", "ElasticBeanstalk"),
    ("Invoke", "CodePipeline"),
    ("Deploy", "OpsWorks"),
    ("Deploy", "AppConfig"),
    ("Deploy", "S3"),
    ("Build", "CodeBuild"),
    ("Compute", "Commands"),
];

fn find<'a>(types: &'a [Value], category: &str, provider: &str) -> &'a Value {
    types
        .iter()
        .find(|t| t["id"]["category"] == category && t["id"]["provider"] == provider)
        .unwrap_or_else(|| panic!("{category}/{provider} listed"))
}

/// (name, required, key) of each configuration property, in order.
fn properties(action_type: &Value) -> Vec<(String, bool, bool)> {
    action_type["actionConfigurationProperties"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| {
            let flag = |k: &str| p[k].as_bool().expect("flag");
            (p["name"].as_str().unwrap_or_default().to_string(), flag("required"), flag("key"))
        })
        .collect()
}

#[tokio::test]
async fn list_action_types_has_aws_order_flags_and_url_templates() {
    let server = TestServer::start().await;
    let listed = server.call("ListActionTypes", r#"{"actionOwnerFilter": "AWS"}"#).await.json();
    let types = listed["actionTypes"].as_array().expect("types");
    let order: Vec<(&str, &str)> = types
        .iter()
        .map(|t| (t["id"]["category"].as_str().unwrap_or_default(), t["id"]["provider"].as_str().unwrap_or_default()))
        .collect();
    assert_eq!(order, AWS_ORDER);

    let s3 = find(types, "Source", "S3");
    assert_eq!(
        s3["settings"],
        json!({"entityUrlTemplate": "https://console.aws.amazon.com/s3/home?region=us-east-1#"})
    );
    let owned = |name: &str, required, key| (name.to_string(), required, key);
    assert_eq!(
        properties(s3),
        [
            owned("S3Bucket", true, true),
            owned("S3ObjectKey", true, true),
            owned("PollForSourceChanges", false, true),
            owned("AllowOverrideForS3ObjectKey", false, true),
        ]
    );
    assert_eq!(s3["inputArtifactDetails"], json!({"minimumCount": 0, "maximumCount": 0}));
    // No approval property is a key; CodeBuild's environment variables are not one either.
    assert!(properties(find(types, "Approval", "Manual")).iter().all(|(_, required, key)| !required && !key));
    assert_eq!(
        properties(find(types, "Test", "CodeBuild")),
        [
            owned("ProjectName", true, true),
            owned("EnvironmentVariables", false, false),
            owned("PrimarySource", false, true),
            owned("BatchEnabled", false, false),
            owned("CombineArtifacts", false, false),
            owned("ServiceRoleArnOverride", false, false),
        ]
    );
    let lambda = find(types, "Invoke", "Lambda");
    assert_eq!(
        lambda["settings"]["executionUrlTemplate"],
        "https://console.aws.amazon.com/cloudwatch/home?region=us-east-1#logStream:group=%252Faws%252Flambda%252F{Config:FunctionName}"
    );
    // Newer types keep AWS's own placeholders; types without URLs have empty settings.
    assert_eq!(
        find(types, "Deploy", "Lambda")["settings"]["entityUrlTemplate"],
        "{Console}/lambda/home?region={Region}#/functions/{Config:FunctionName}"
    );
    assert_eq!(find(types, "Compute", "Commands")["settings"], json!({}));
    assert_eq!(
        find(types, "Deploy", "S3")["settings"]["entityUrlTemplate"],
        "https://console.aws.amazon.com/s3/buckets/{Config:BucketName}/?region=us-east-1&tab=overview"
    );
}

#[tokio::test]
async fn action_type_templates_name_the_region_that_serves_them() {
    let server = TestServer::start().await;
    let client = server.client_as("AKIDTESTTEST", "eu-west-1");
    let listed = client.list_action_types().action_owner_filter(ActionOwner::Aws).send().await.expect("lists");
    let template = |provider: &str, category: &str| {
        let found = listed
            .action_types()
            .iter()
            .find(|t| t.id().is_some_and(|id| id.provider() == provider && id.category().as_str() == category));
        found.and_then(|t| t.settings()).and_then(|s| s.entity_url_template()).map(str::to_string)
    };
    assert_eq!(template("S3", "Source").as_deref(), Some("https://console.aws.amazon.com/s3/home?region=eu-west-1#"));
    // Device Farm lives in us-west-2 whatever region the pipeline is in.
    assert_eq!(
        template("DeviceFarm", "Test").as_deref(),
        Some("https://us-west-2.console.aws.amazon.com/devicefarm/home#/projects/{Config:ProjectId}/runs")
    );
    assert_eq!(
        template("Lambda", "Deploy").as_deref(),
        Some("{Console}/lambda/home?region={Region}#/functions/{Config:FunctionName}")
    );
}

/// Starts an execution of `name` with the given extra request members and waits until it succeeds.
async fn run_to_success(server: &TestServer, name: &str, extra: Value) -> String {
    let mut request = json!({"name": name});
    if let (Some(request), Some(extra)) = (request.as_object_mut(), extra.as_object()) {
        request.extend(extra.clone());
    }
    let started = server.call("StartPipelineExecution", &request.to_string()).await.json();
    let id = started["pipelineExecutionId"].as_str().expect("started").to_string();
    wait_for(&server.client(), name, &id, PipelineExecutionStatus::Succeeded).await;
    id
}

async fn execution(server: &TestServer, name: &str, id: &str) -> Value {
    let body = json!({"pipelineName": name, "pipelineExecutionId": id}).to_string();
    server.call("GetPipelineExecution", &body).await.json()["pipelineExecution"].clone()
}

/// The source action's output variables in an execution.
async fn source_variables(server: &TestServer, name: &str, id: &str) -> Value {
    let body = json!({"pipelineName": name, "filter": {"pipelineExecutionId": id}}).to_string();
    let listed = server.call("ListActionExecutions", &body).await.json();
    let details = listed["actionExecutionDetails"].as_array().cloned().unwrap_or_default();
    let source = details.iter().find(|d| d["actionName"] == "Source").expect("source ran");
    source["output"]["outputVariables"].clone()
}

#[tokio::test]
async fn s3_source_revisions_have_aws_members_and_stay_the_same_until_the_object_changes() {
    let server = TestServer::fast().await;
    server
        .call(
            "CreatePipeline",
            &json!({"pipeline": serde_json::from_str::<Value>(&pipeline_json("s3src")).expect("json")}).to_string(),
        )
        .await;
    let first = first_execution(&server.client(), "s3src").await;
    wait_for(&server.client(), "s3src", &first, PipelineExecutionStatus::Succeeded).await;
    let second = run_to_success(&server, "s3src", json!({})).await;

    let one = execution(&server, "s3src", &first).await;
    let version = one["artifactRevisions"][0]["revisionId"].as_str().expect("a version").to_string();
    assert_eq!(version.len(), 32, "{version}");
    let summary = format!("Amazon S3 version id: {version}");
    // Exactly AWS's members: no change identifier, no creation time.
    assert_eq!(
        one["artifactRevisions"],
        json!([{"name": "SourceOutput", "revisionId": version, "revisionSummary": summary}])
    );
    // Ordinary executions carry no executionType.
    assert!(one.get("executionType").is_none(), "{one}");
    let two = execution(&server, "s3src", &second).await;
    assert_eq!(two["artifactRevisions"], one["artifactRevisions"], "the same object, the same revision");
    let (vars_one, vars_two) =
        (source_variables(&server, "s3src", &first).await, source_variables(&server, "s3src", &second).await);
    assert_eq!(vars_one["VersionId"], version.as_str());
    assert!(vars_one["ETag"].as_str().is_some_and(|e| e.len() == 32 && e.chars().all(|c| c.is_ascii_hexdigit())));
    assert_eq!(vars_one, vars_two, "the same version and ETag on every run");

    let listed = server.call("ListPipelineExecutions", r#"{"pipelineName": "s3src"}"#).await.json();
    for summary_out in listed["pipelineExecutionSummaries"].as_array().expect("summaries") {
        assert_eq!(
            summary_out["sourceRevisions"],
            json!([{"actionName": "Source", "revisionId": version, "revisionSummary": summary}])
        );
        assert!(summary_out.get("executionType").is_none(), "{summary_out}");
    }
    let state = server.call("GetPipelineState", r#"{"name": "s3src"}"#).await.json();
    assert_eq!(state["stageStates"][0]["actionStates"][0]["currentRevision"], json!({"revisionId": version}));

    // Another version by override is that execution's only; the object's current version comes back after it.
    let overridden = run_to_success(
        &server,
        "s3src",
        json!({"sourceRevisions": [{"actionName": "Source", "revisionType": "S3_OBJECT_VERSION_ID", "revisionValue": "older.version"}]}),
    )
    .await;
    let older = execution(&server, "s3src", &overridden).await;
    assert_eq!(older["artifactRevisions"][0]["revisionSummary"], "Amazon S3 version id: older.version");
    let other_etag = source_variables(&server, "s3src", &overridden).await["ETag"].clone();
    assert_ne!(other_etag, vars_one["ETag"], "another version, another ETag");
    let after = run_to_success(&server, "s3src", json!({})).await;
    assert_eq!(execution(&server, "s3src", &after).await["artifactRevisions"], one["artifactRevisions"]);
}

#[tokio::test]
async fn action_type_ids_carry_their_shape_name_on_the_wire() {
    let server = TestServer::fast().await;
    let created = server
        .call(
            "CreatePipeline",
            &json!({"pipeline": serde_json::from_str::<Value>(&pipeline_json("typed")).expect("json")}).to_string(),
        )
        .await
        .json();
    let id = &created["pipeline"]["stages"][0]["actions"][0]["actionTypeId"];
    assert_eq!(
        id,
        &json!({"__type": "ActionTypeId", "category": "Source", "owner": "AWS", "provider": "S3", "version": "1"})
    );
    let first = first_execution(&server.client(), "typed").await;
    wait_for(&server.client(), "typed", &first, PipelineExecutionStatus::Succeeded).await;
    let body = json!({"pipelineName": "typed", "filter": {"pipelineExecutionId": first}}).to_string();
    let listed = server.call("ListActionExecutions", &body).await.json();
    assert_eq!(listed["actionExecutionDetails"][0]["input"]["actionTypeId"]["__type"], "ActionTypeId");
    // A declaration read back with the member is accepted as it is.
    let mut pipeline = server.call("GetPipeline", r#"{"name": "typed"}"#).await.json()["pipeline"].clone();
    pipeline["stages"][1]["actions"][0]["configuration"]["Extract"] = json!("false");
    let updated = server.call("UpdatePipeline", &json!({"pipeline": pipeline}).to_string()).await;
    assert_eq!(updated.status, 200, "{}", updated.text());
}

/// A pipeline with an S3 source and one stage of manual approvals, each `(name, configuration)`.
fn approvals_pipeline(name: &str, approvals: &[(&str, Value)]) -> String {
    let mut pipeline: Value = serde_json::from_str(&pipeline_json(name)).expect("json");
    let actions: Vec<Value> = approvals
        .iter()
        .map(|(action, configuration)| {
            json!({"name": action, "configuration": configuration,
                   "actionTypeId": {"category": "Approval", "owner": "AWS", "provider": "Manual", "version": "1"}})
        })
        .collect();
    pipeline["stages"][1] = json!({"name": "Review", "actions": actions});
    json!({"pipeline": pipeline}).to_string()
}

/// The latest execution of each action of stage `stage` in GetPipelineState, once every one has one.
async fn latest_executions(server: &TestServer, name: &str, stage: usize) -> Vec<Value> {
    eventually("every action of the stage to run", || async {
        let state = server.call("GetPipelineState", &json!({"name": name}).to_string()).await.json();
        let actions = state["stageStates"][stage]["actionStates"].as_array()?.clone();
        let latest: Vec<Value> = actions.iter().map(|a| a["latestExecution"].clone()).collect();
        latest.iter().all(Value::is_object).then_some(latest)
    })
    .await
}

fn keys(value: &Value) -> Vec<&str> {
    value.as_object().map(|o| o.keys().map(String::as_str).collect()).unwrap_or_default()
}

async fn answer(
    server: &TestServer,
    name: &str,
    action: &str,
    token: &Value,
    status: &str,
    summary: &str,
) -> crate::common::HttpResponse {
    let body = json!({"pipelineName": name, "stageName": "Review", "actionName": action, "token": token,
                      "result": {"status": status, "summary": summary}});
    server.call("PutApprovalResult", &body.to_string()).await
}

#[tokio::test]
async fn approvals_answer_and_show_as_aws_does() {
    let server = TestServer::fast().await;
    let required = json!({"IsSummaryRequired": "true", "CustomData": "Review it"});
    server.call("CreatePipeline", &approvals_pipeline("gates", &[("One", required), ("Two", json!({}))])).await;
    let waiting = latest_executions(&server, "gates", 1).await;
    let (one, two) = (&waiting[0], &waiting[1]);
    assert_eq!(keys(one), ["actionExecutionId", "status", "token"], "{one}");

    // A required summary: an empty or blank one is refused, and the approval still waits.
    for summary in ["", "   "] {
        let refused = answer(&server, "gates", "One", &one["token"], "Approved", summary).await;
        assert_eq!(refused.status, 400, "{}", refused.text());
        assert_eq!(refused.json()["__type"], "InvalidApprovalTokenException");
        assert_eq!(
            refused.json()["message"],
            "Action 'One' in stage 'Review' requires a summary. Provide a summary in the approval result and try again."
        );
    }
    assert_eq!(latest_executions(&server, "gates", 1).await[0]["status"], "InProgress");
    // Without the requirement an empty summary is fine.
    assert_eq!(answer(&server, "gates", "Two", &two["token"], "Approved", "").await.status, 200);
    let rejected = answer(&server, "gates", "One", &one["token"], "Rejected", "Review/One/Rejected").await;
    assert_eq!(rejected.status, 200, "{}", rejected.text());

    // In the state: summary, time and approver; neither the token as an external id nor error details.
    let answered = latest_executions(&server, "gates", 1).await;
    let wanted = ["actionExecutionId", "lastStatusChange", "lastUpdatedBy", "status", "summary"];
    assert_eq!(keys(&answered[0]), wanted, "{}", answered[0]);
    assert_eq!(
        (answered[0]["status"].as_str(), answered[0]["summary"].as_str()),
        (Some("Failed"), Some("Review/One/Rejected"))
    );
    // An empty summary is shown as none.
    assert_eq!(
        keys(&answered[1]),
        ["actionExecutionId", "lastStatusChange", "lastUpdatedBy", "status"],
        "{}",
        answered[1]
    );
    assert_eq!(answered[1]["status"], "Succeeded");

    // In the history: the token and summary as the result, no error details.
    let id = first_execution(&server.client(), "gates").await;
    let body = json!({"pipelineName": "gates", "filter": {"pipelineExecutionId": id}}).to_string();
    let listed = server.call("ListActionExecutions", &body).await.json();
    let detail = |action: &str| {
        listed["actionExecutionDetails"]
            .as_array()
            .and_then(|d| d.iter().find(|d| d["actionName"] == action))
            .cloned()
            .expect("listed")
    };
    assert_eq!(
        detail("One")["output"],
        json!({"outputArtifacts": [], "executionResult": {"externalExecutionId": one["token"], "externalExecutionSummary": "Review/One/Rejected"}, "outputVariables": {}})
    );
    assert_eq!(detail("Two")["output"]["executionResult"], json!({"externalExecutionId": two["token"]}));
    wait_for(&server.client(), "gates", &id, PipelineExecutionStatus::Failed).await;
}

#[tokio::test]
async fn an_abandoned_approval_shows_only_that_it_was_canceled() {
    let server = TestServer::fast().await;
    server.call("CreatePipeline", &approvals_pipeline("dropped", &[("Gate", json!({}))])).await;
    latest_executions(&server, "dropped", 1).await;
    let id = first_execution(&server.client(), "dropped").await;
    let body = json!({"pipelineName": "dropped", "pipelineExecutionId": id, "abandon": true, "reason": "no"});
    assert_eq!(server.call("StopPipelineExecution", &body.to_string()).await.status, 200);
    wait_for(&server.client(), "dropped", &id, PipelineExecutionStatus::Stopped).await;
    let latest = latest_executions(&server, "dropped", 1).await;
    let run_id = latest[0]["actionExecutionId"].clone();
    assert_eq!(
        latest[0],
        json!({"actionExecutionId": run_id, "status": "Abandoned", "summary": "The approval action has been canceled."})
    );
    let body = json!({"pipelineName": "dropped", "filter": {"pipelineExecutionId": id}}).to_string();
    let listed = server.call("ListActionExecutions", &body).await.json();
    let gate = &listed["actionExecutionDetails"][0];
    assert_eq!((gate["actionName"].as_str(), gate["status"].as_str()), (Some("Gate"), Some("Abandoned")));
    assert_eq!(gate["output"], json!({"outputArtifacts": [], "outputVariables": {}}), "no execution result");
}

#[tokio::test]
async fn a_source_stage_rollback_lists_only_the_target_revision() {
    let server = TestServer::fast().await;
    let declared = serde_json::from_str::<Value>(&pipeline_json("back")).expect("json");
    server.call("CreatePipeline", &json!({"pipeline": declared}).to_string()).await;
    let first = first_execution(&server.client(), "back").await;
    wait_for(&server.client(), "back", &first, PipelineExecutionStatus::Succeeded).await;
    let target = execution(&server, "back", &first).await["artifactRevisions"].clone();
    let newer = json!({"sourceRevisions": [{"actionName": "Source", "revisionType": "S3_OBJECT_VERSION_ID", "revisionValue": "newer.version"}]});
    run_to_success(&server, "back", newer).await;

    let body = json!({"pipelineName": "back", "stageName": "Source", "targetPipelineExecutionId": first});
    let rolled = server.call("RollbackStage", &body.to_string()).await.json();
    let id = rolled["pipelineExecutionId"].as_str().expect("rollback").to_string();
    wait_for(&server.client(), "back", &id, PipelineExecutionStatus::Succeeded).await;
    let rollback = execution(&server, "back", &id).await;
    assert_eq!(rollback["artifactRevisions"], target, "the source action picked up the target's revision again");
    assert_eq!(rollback["executionType"], "ROLLBACK");
    let listed = server.call("ListPipelineExecutions", r#"{"pipelineName": "back"}"#).await.json();
    let summary = &listed["pipelineExecutionSummaries"][0];
    assert_eq!(summary["pipelineExecutionId"], id.as_str());
    let version = &target[0]["revisionId"];
    assert_eq!(
        summary["sourceRevisions"],
        json!([{"actionName": "Source", "revisionId": version, "revisionSummary": format!("Amazon S3 version id: {}", version.as_str().unwrap_or_default())}])
    );
    assert_eq!(source_variables(&server, "back", &id).await["VersionId"], *version);
}

#[tokio::test]
async fn variables_come_in_the_order_aws_returns_them() {
    let server = TestServer::fast().await;
    let mut pipeline: Value = serde_json::from_str(&pipeline_json("ordered")).expect("json");
    pipeline["pipelineType"] = json!("V2");
    pipeline["variables"] = json!([
        {"name": "Middle", "defaultValue": "m"}, {"name": "Alpha", "defaultValue": "a"}, {"name": "Zulu", "defaultValue": "z"}
    ]);
    server.call("CreatePipeline", &json!({"pipeline": pipeline}).to_string()).await;
    let names = |execution: &Value| -> Vec<String> {
        execution["variables"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|v| v["name"].as_str().map(str::to_string))
            .collect()
    };
    let overrides = json!({"variables": [{"name": "Middle", "value": "m2"}, {"name": "Alpha", "value": "a2"}]});
    let id = run_to_success(&server, "ordered", overrides).await;
    // AWS answered Alpha, Zulu, Middle to this very request [NATIVE].
    assert_eq!(names(&execution(&server, "ordered", &id).await), ["Alpha", "Zulu", "Middle"]);
    let id = run_to_success(&server, "ordered", json!({})).await;
    // The order is the names' own, overridden or not [issue 28].
    assert_eq!(names(&execution(&server, "ordered", &id).await), ["Alpha", "Zulu", "Middle"]);
}

#[tokio::test]
async fn a_stop_reason_becomes_the_summary_once_stopped() {
    let server = TestServer::fast().await;
    server.set_behaviors(json!([{"action": "Deploy", "outcome": "hold"}])).await;
    server
        .call(
            "CreatePipeline",
            &json!({"pipeline": serde_json::from_str::<Value>(&pipeline_json("halt")).expect("json")}).to_string(),
        )
        .await;
    let id = first_execution(&server.client(), "halt").await;
    latest_executions(&server, "halt", 1).await;
    let stop = json!({"pipelineName": "halt", "pipelineExecutionId": id, "abandon": false, "reason": "release freeze"});
    assert_eq!(server.call("StopPipelineExecution", &stop.to_string()).await.status, 200);
    // Stopping: no summary yet, as AWS shows it.
    let stopping = execution(&server, "halt", &id).await;
    assert_eq!(stopping["status"], "Stopping");
    assert!(stopping.get("statusSummary").is_none(), "{stopping}");
    let request = json!({"pipelineName": "halt", "pipelineExecutionId": id, "stageName": "Deploy", "actionName": "Deploy", "outcome": "succeed"});
    assert_eq!(crate::common::complete(&server, request).await.status, 200);
    wait_for(&server.client(), "halt", &id, PipelineExecutionStatus::Stopped).await;
    assert_eq!(execution(&server, "halt", &id).await["statusSummary"], "release freeze");
    let listed = server.call("ListPipelineExecutions", r#"{"pipelineName": "halt"}"#).await.json();
    let summary = &listed["pipelineExecutionSummaries"][0];
    assert_eq!(
        (summary["statusSummary"].as_str(), summary["stopTrigger"]["reason"].as_str()),
        (Some("release freeze"), Some("release freeze"))
    );
}

#[tokio::test]
async fn console_links_follow_aws_templates_in_the_pipeline_region() {
    let server = TestServer::fast().await;
    let client = server.client_as("AKIDTESTTEST", "eu-west-1");
    let mut pipeline: Value = serde_json::from_str(&pipeline_json("links")).expect("json");
    pipeline["stages"].as_array_mut().expect("stages").push(json!({"name": "Publish", "actions": [{
        "name": "Fn", "actionTypeId": {"category": "Deploy", "owner": "AWS", "provider": "Lambda", "version": "1"},
        "configuration": {"FunctionName": "fn"}, "inputArtifacts": [{"name": "SourceOutput"}]}]}));
    client.create_pipeline().pipeline(crate::sdk_json::pipeline(&pipeline)).send().await.expect("created");
    let state = client.get_pipeline_state().name("links").send().await.expect("state");
    let urls: Vec<Option<&str>> = state.stage_states().iter().map(|s| s.action_states()[0].entity_url()).collect();
    assert_eq!(
        urls,
        [
            Some("https://console.aws.amazon.com/s3/home?region=eu-west-1#"),
            Some("https://console.aws.amazon.com/s3/buckets/site-bucket/?region=eu-west-1&tab=overview"),
            // AWS's newer template: {Console} and {Region} expanded.
            Some("https://console.aws.amazon.com/lambda/home?region=eu-west-1#/functions/fn"),
        ]
    );
}
