//! Every answer checked against the service model: the members of a successful response must be the output shape's
//! (with the model's types and enum values), and its required members must be there. The test harness runs this on
//! every successful raw AWS call of every test, so a member the model does not know cannot creep in unnoticed.

use std::sync::LazyLock;

use serde_json::Value;

static MODEL: LazyLock<Value> = LazyLock::new(|| {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/model/service-2.json"))
        .expect("the service model");
    serde_json::from_str(&text).expect("the service model is JSON")
});

/// Members AWS sends that the model does not describe, by structure: `ActionTypeId` carries its shape name.
const EXTRA_MEMBERS: &[(&str, &str)] = &[("ActionTypeId", "__type")];

/// The live service's deviations from the model (`fixtures/model/overrides.json`): members AWS leaves out of its
/// answers although the model requires them, by structure.
static OUTPUT_OPTIONAL: LazyLock<Value> = LazyLock::new(|| {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/model/overrides.json"))
        .expect("the model overrides");
    serde_json::from_str(&text).expect("the model overrides are JSON")
});

fn optional_in_output(shape: &str, member: &str) -> bool {
    OUTPUT_OPTIONAL["shapes"][shape]["outputOptional"]
        .as_array()
        .is_some_and(|members| members.iter().any(|m| m.as_str() == Some(member)))
}

/// The differences between `body`, the answer to `operation`, and the operation's output shape (empty when it fits).
pub fn output_mismatches(operation: &str, body: &Value) -> Vec<String> {
    let Some(output) = MODEL["operations"][operation]["output"]["shape"].as_str() else {
        return if body.as_object().is_some_and(|o| o.is_empty()) || body.is_null() {
            Vec::new()
        } else {
            vec![format!("{operation} has no output shape, yet answered {body}")]
        };
    };
    let mut out = Vec::new();
    check(output, body, "$", &mut out);
    out
}

fn check(shape_name: &str, value: &Value, path: &str, out: &mut Vec<String>) {
    let shape = &MODEL["shapes"][shape_name];
    let kind = shape["type"].as_str().unwrap_or_default();
    let fits = match kind {
        "structure" => {
            let Some(object) = value.as_object() else {
                out.push(format!("{path}: {shape_name} must be an object, not {value}"));
                return;
            };
            let members = &shape["members"];
            for (name, member) in object {
                if EXTRA_MEMBERS.contains(&(shape_name, name.as_str())) {
                    continue;
                }
                match members[name]["shape"].as_str() {
                    Some(member_shape) => check(member_shape, member, &format!("{path}.{name}"), out),
                    None => out.push(format!("{path}.{name}: not a member of {shape_name}")),
                }
            }
            for required in shape["required"].as_array().into_iter().flatten().filter_map(Value::as_str) {
                if !object.contains_key(required) && !optional_in_output(shape_name, required) {
                    out.push(format!("{path}.{required}: required by {shape_name}, missing"));
                }
            }
            true
        }
        "list" => match value.as_array() {
            Some(items) => {
                let member = shape["member"]["shape"].as_str().unwrap_or_default();
                for (i, item) in items.iter().enumerate() {
                    check(member, item, &format!("{path}[{i}]"), out);
                }
                true
            }
            None => false,
        },
        "map" => match value.as_object() {
            Some(entries) => {
                let member = shape["value"]["shape"].as_str().unwrap_or_default();
                for (key, item) in entries {
                    check(member, item, &format!("{path}.{key}"), out);
                }
                true
            }
            None => false,
        },
        "string" => match value.as_str() {
            Some(text) => {
                if let Some(allowed) = shape["enum"].as_array()
                    && !allowed.iter().any(|a| a.as_str() == Some(text))
                {
                    out.push(format!("{path}: {text:?} is not a value of {shape_name}"));
                }
                true
            }
            None => false,
        },
        "integer" | "long" => value.is_i64() || value.is_u64(),
        "boolean" => value.is_boolean(),
        "timestamp" | "double" | "float" => value.is_number(),
        "blob" => value.is_string(),
        other => {
            out.push(format!("{path}: the model's type {other:?} of {shape_name} is not checked"));
            true
        }
    };
    if !fits {
        out.push(format!("{path}: {value} is not a {kind} ({shape_name})"));
    }
}

#[test]
fn the_checker_catches_strays_and_missing_members() {
    let good = serde_json::json!({"pipelineExecutionId": "x"});
    assert!(output_mismatches("StartPipelineExecution", &good).is_empty());
    let stray = serde_json::json!({"pipelineExecutionId": "x", "extra": 1});
    assert_eq!(
        output_mismatches("StartPipelineExecution", &stray),
        ["$.extra: not a member of StartPipelineExecutionOutput"]
    );
    let wrong = serde_json::json!({"pipelineExecutionSummaries": [{"status": "Sleeping"}]});
    assert_eq!(
        output_mismatches("ListPipelineExecutions", &wrong),
        ["$.pipelineExecutionSummaries[0].status: \"Sleeping\" is not a value of PipelineExecutionStatus"]
    );
}

/// Calls `operation` with `body`, expects 200 (the harness checks the answer's shape), remembers the operation.
async fn ok(
    server: &crate::common::TestServer,
    seen: &mut std::collections::BTreeSet<String>,
    operation: &str,
    body: Value,
) -> Value {
    let response = server.call(operation, &body.to_string()).await;
    assert_eq!(response.status, 200, "{operation} {body}: {}", response.text());
    seen.insert(operation.to_string());
    if response.body.is_empty() { Value::Null } else { response.json() }
}

/// Waits until `find` sees what it looks for in the answers to `operation`.
async fn until(
    server: &crate::common::TestServer,
    operation: &str,
    body: Value,
    find: impl Fn(&Value) -> Option<Value>,
) -> Value {
    crate::common::eventually(operation, || {
        let body = body.to_string();
        let find = &find;
        async move { find(&server.call(operation, &body).await.json()) }
    })
    .await
}

#[test]
fn every_operation_answers_within_its_output_shape() {
    // The scenario's futures nest deeper than a test thread's stack allows in a debug build: a bigger thread.
    let scenario = std::thread::Builder::new().stack_size(64 << 20).spawn(|| {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        runtime.block_on(every_operation());
    });
    assert!(scenario.expect("thread").join().is_ok(), "the scenario failed (its panic is printed above)");
}

/// All 44 operations, each answered successfully at least once.
async fn every_operation() {
    use serde_json::json;
    let server = crate::common::TestServer::fast().await;
    let seen = &mut std::collections::BTreeSet::new();
    let at = |c: &str, o: &str, p: &str, v: &str| json!({"category": c, "owner": o, "provider": p, "version": v});
    server.set_behaviors(json!([{"rule": "Alarm", "outcome": "hold"}])).await;

    // Action and rule types.
    ok(&server, seen, "ListActionTypes", json!({})).await;
    ok(&server, seen, "ListRuleTypes", json!({})).await;
    ok(&server, seen, "GetActionType", json!({"category": "Source", "owner": "AWS", "provider": "S3", "version": "1"}))
        .await;
    let github = ok(
        &server,
        seen,
        "GetActionType",
        json!({"category": "Source", "owner": "ThirdParty", "provider": "GitHub", "version": "1"}),
    )
    .await;
    ok(&server, seen, "UpdateActionType", json!({"actionType": github["actionType"]})).await;
    ok(&server, seen, "CreateCustomActionType", json!({"category": "Build", "provider": "Worker", "version": "1",
        "inputArtifactDetails": {"minimumCount": 0, "maximumCount": 1}, "outputArtifactDetails": {"minimumCount": 0, "maximumCount": 1}})).await;
    let partner = server.control("POST", "/_emulator/third-party-action-types", &json!({
        "category": "Deploy", "provider": "Acme", "version": "1",
        "inputArtifactDetails": {"minimumCount": 0, "maximumCount": 1}, "outputArtifactDetails": {"minimumCount": 0, "maximumCount": 0}})).await.json();
    let client_token = partner["clientToken"].as_str().expect("client token").to_string();

    // A pipeline with every kind of work: a job worker, a held entry condition, an approval, a simulated deploy.
    let pipeline = json!({
        "name": "every", "roleArn": "arn:aws:iam::123456789012:role/r", "pipelineType": "V2",
        "artifactStore": {"type": "S3", "location": "artifact-bucket"},
        "stages": [
            {"name": "Source", "actions": [{"name": "Src", "actionTypeId": at("Source", "AWS", "S3", "1"),
                "configuration": {"S3Bucket": "b", "S3ObjectKey": "k.zip"}, "outputArtifacts": [{"name": "Code"}]}]},
            {"name": "Build", "actions": [{"name": "Work", "actionTypeId": at("Build", "Custom", "Worker", "1"), "inputArtifacts": [{"name": "Code"}]}]},
            {"name": "Gate", "beforeEntry": {"conditions": [{"rules": [{"name": "Alarm",
                "ruleTypeId": {"category": "Rule", "owner": "AWS", "provider": "CloudWatchAlarm", "version": "1"},
                "configuration": {"AlarmName": "a"}}]}]},
             "actions": [{"name": "Approve", "actionTypeId": at("Approval", "AWS", "Manual", "1")}]},
            {"name": "Deploy", "actions": [{"name": "Ship", "actionTypeId": at("Deploy", "AWS", "CodeDeploy", "1"),
                "configuration": {"ApplicationName": "app", "DeploymentGroupName": "g"}, "inputArtifacts": [{"name": "Code"}]}]},
            {"name": "Partner", "actions": [{"name": "Acme", "actionTypeId": at("Deploy", "ThirdParty", "Acme", "1")}]}
        ]
    });
    let created = ok(&server, seen, "CreatePipeline", json!({"pipeline": pipeline})).await;
    let arn = format!(
        "arn:aws:codepipeline:us-east-1:000000000000:{}",
        created["pipeline"]["name"].as_str().unwrap_or_default()
    );
    ok(&server, seen, "GetPipeline", json!({"name": "every"})).await;
    ok(&server, seen, "ListPipelines", json!({})).await;
    ok(&server, seen, "TagResource", json!({"resourceArn": arn, "tags": [{"key": "team", "value": "a"}]})).await;
    ok(&server, seen, "ListTagsForResource", json!({"resourceArn": arn})).await;
    ok(&server, seen, "UntagResource", json!({"resourceArn": arn, "tagKeys": ["team"]})).await;
    let webhook = json!({"webhook": {"name": "hook", "targetPipeline": "every", "targetAction": "Src",
        "filters": [{"jsonPath": "$.ref", "matchEquals": "refs/heads/main"}], "authentication": "UNAUTHENTICATED",
        "authenticationConfiguration": {}}});
    ok(&server, seen, "PutWebhook", webhook).await;
    ok(&server, seen, "ListWebhooks", json!({})).await;
    ok(&server, seen, "RegisterWebhookWithThirdParty", json!({"webhookName": "hook"})).await;
    ok(&server, seen, "DeregisterWebhookWithThirdParty", json!({"webhookName": "hook"})).await;
    ok(&server, seen, "DeleteWebhook", json!({"name": "hook"})).await;

    // The job worker's side.
    let worker = at("Build", "Custom", "Worker", "1");
    let job = until(&server, "PollForJobs", json!({"actionTypeId": worker}), |out| out["jobs"].get(0).cloned()).await;
    seen.insert("PollForJobs".into());
    let job_id = job["id"].clone();
    ok(&server, seen, "AcknowledgeJob", json!({"jobId": job_id, "nonce": job["nonce"]})).await;
    ok(&server, seen, "GetJobDetails", json!({"jobId": job_id})).await;
    ok(&server, seen, "PutJobSuccessResult", json!({"jobId": job_id})).await;
    let first = ok(&server, seen, "ListPipelineExecutions", json!({"pipelineName": "every"})).await;
    let first = first["pipelineExecutionSummaries"][0]["pipelineExecutionId"].clone();

    // The held entry condition, overridden; then the approval.
    until(&server, "ListRuleExecutions", json!({"pipelineName": "every"}), |out| {
        out["ruleExecutionDetails"].get(0).cloned()
    })
    .await;
    ok(&server, seen, "ListRuleExecutions", json!({"pipelineName": "every"})).await;
    ok(
        &server,
        seen,
        "OverrideStageCondition",
        json!({"pipelineName": "every", "stageName": "Gate",
        "pipelineExecutionId": first, "conditionType": "BEFORE_ENTRY"}),
    )
    .await;
    let token = until(&server, "GetPipelineState", json!({"name": "every"}), |out| {
        out["stageStates"][2]["actionStates"][0]["latestExecution"].get("token").cloned()
    })
    .await;
    seen.insert("GetPipelineState".into());
    ok(
        &server,
        seen,
        "PutApprovalResult",
        json!({"pipelineName": "every", "stageName": "Gate", "actionName": "Approve",
        "token": token, "result": {"status": "Approved", "summary": "ok"}}),
    )
    .await;

    // The partner's side.
    let acme = at("Deploy", "ThirdParty", "Acme", "1");
    let partner_job =
        until(&server, "PollForThirdPartyJobs", json!({"actionTypeId": acme}), |out| out["jobs"].get(0).cloned()).await;
    seen.insert("PollForThirdPartyJobs".into());
    let partner_id = partner_job["jobId"].clone();
    let details =
        ok(&server, seen, "GetThirdPartyJobDetails", json!({"jobId": partner_id, "clientToken": client_token})).await;
    ok(
        &server,
        seen,
        "AcknowledgeThirdPartyJob",
        json!({"jobId": partner_id, "nonce": details["jobDetails"]["nonce"], "clientToken": client_token}),
    )
    .await;
    ok(&server, seen, "PutThirdPartyJobSuccessResult", json!({"jobId": partner_id, "clientToken": client_token})).await;
    until(&server, "GetPipelineExecution", json!({"pipelineName": "every", "pipelineExecutionId": first}), |out| {
        (out["pipelineExecution"]["status"] == "Succeeded").then_some(Value::Null)
    })
    .await;
    ok(&server, seen, "GetPipelineExecution", json!({"pipelineName": "every", "pipelineExecutionId": first})).await;
    let history = ok(
        &server,
        seen,
        "ListActionExecutions",
        json!({"pipelineName": "every", "filter": {"pipelineExecutionId": first}}),
    )
    .await;
    let ship = history["actionExecutionDetails"]
        .as_array()
        .and_then(|d| d.iter().find(|d| d["actionName"] == "Ship"))
        .cloned()
        .expect("Ship ran");
    ok(&server, seen, "ListDeployActionExecutionTargets", json!({"actionExecutionId": ship["actionExecutionId"]}))
        .await;
    ok(
        &server,
        seen,
        "RollbackStage",
        json!({"pipelineName": "every", "stageName": "Deploy", "targetPipelineExecutionId": first}),
    )
    .await;

    // A second execution: its job fails, the stage is retried, then the execution is stopped.
    let second =
        ok(&server, seen, "StartPipelineExecution", json!({"name": "every"})).await["pipelineExecutionId"].clone();
    let job = until(&server, "PollForJobs", json!({"actionTypeId": worker}), |out| out["jobs"].get(0).cloned()).await;
    ok(
        &server,
        seen,
        "PutJobFailureResult",
        json!({"jobId": job["id"], "failureDetails": {"type": "JobFailed", "message": "no"}}),
    )
    .await;
    until(&server, "GetPipelineExecution", json!({"pipelineName": "every", "pipelineExecutionId": second}), |out| {
        (out["pipelineExecution"]["status"] == "Failed").then_some(Value::Null)
    })
    .await;
    ok(&server, seen, "RetryStageExecution", json!({"pipelineName": "every", "stageName": "Build", "pipelineExecutionId": second, "retryMode": "FAILED_ACTIONS"})).await;
    ok(
        &server,
        seen,
        "StopPipelineExecution",
        json!({"pipelineName": "every", "pipelineExecutionId": second, "abandon": true}),
    )
    .await;

    // Transitions, revisions, updates and deletions.
    ok(
        &server,
        seen,
        "DisableStageTransition",
        json!({"pipelineName": "every", "stageName": "Deploy", "transitionType": "Inbound", "reason": "freeze"}),
    )
    .await;
    ok(
        &server,
        seen,
        "EnableStageTransition",
        json!({"pipelineName": "every", "stageName": "Deploy", "transitionType": "Inbound"}),
    )
    .await;
    ok(
        &server,
        seen,
        "PutActionRevision",
        json!({"pipelineName": "every", "stageName": "Source", "actionName": "Src",
        "actionRevision": {"revisionId": "v2", "revisionChangeId": "v2", "created": 1_700_000_000}}),
    )
    .await;
    let mut declared = created["pipeline"].clone();
    declared["stages"][4]["actions"][0]["configuration"] = json!({});
    ok(&server, seen, "UpdatePipeline", json!({"pipeline": declared})).await;
    ok(&server, seen, "DeletePipeline", json!({"name": "every"})).await;
    ok(&server, seen, "DeleteCustomActionType", json!({"category": "Build", "provider": "Worker", "version": "1"}))
        .await;

    // The partner's failure result, on a pipeline of its own.
    let lone = json!({"name": "lone", "roleArn": "arn:aws:iam::123456789012:role/r",
        "artifactStore": {"type": "S3", "location": "artifact-bucket"},
        "stages": [
            {"name": "Source", "actions": [{"name": "Src", "actionTypeId": at("Source", "AWS", "S3", "1"),
                "configuration": {"S3Bucket": "b", "S3ObjectKey": "k.zip"}, "outputArtifacts": [{"name": "Code"}]}]},
            {"name": "Partner", "actions": [{"name": "Acme", "actionTypeId": at("Deploy", "ThirdParty", "Acme", "1")}]}]});
    ok(&server, seen, "CreatePipeline", json!({"pipeline": lone})).await;
    let partner_job =
        until(&server, "PollForThirdPartyJobs", json!({"actionTypeId": acme}), |out| out["jobs"].get(0).cloned()).await;
    ok(
        &server,
        seen,
        "PutThirdPartyJobFailureResult",
        json!({"jobId": partner_job["jobId"], "clientToken": client_token,
        "failureDetails": {"type": "JobFailed", "message": "no"}}),
    )
    .await;

    let all: std::collections::BTreeSet<String> =
        MODEL["operations"].as_object().map(|o| o.keys().cloned().collect()).unwrap_or_default();
    let missed: Vec<&String> = all.difference(seen).collect();
    assert!(missed.is_empty(), "operations not answered successfully: {missed:?}");
    assert_eq!(all.len(), 44);
}
