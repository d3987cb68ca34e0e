//! Stage conditions and rules through `aws-sdk-codepipeline`: entry, success and failure conditions with each rule
//! provider, overrides, rule execution history, and the recovery paths conditions start. Behaviour rules steer rules
//! as they do actions, and the emulator clock opens deployment windows.

use aws_sdk_codepipeline::Client;
use aws_sdk_codepipeline::error::ProvideErrorMetadata;
use aws_sdk_codepipeline::types::{
    ConditionExecutionStatus, ConditionType, ExecutionType, LatestInPipelineExecutionFilter, PipelineExecutionStatus,
    PipelineVariable, RuleExecutionFilter, RuleExecutionStatus, StageRetryMode, StartTimeRange,
};
use chrono::{Timelike, Utc};
use serde_json::{Value, json};

use crate::common::{TestServer, complete, eventually, first_execution, status, wait_for};
use crate::sdk_json;

fn rule(name: &str, provider: &str, configuration: Value) -> Value {
    json!({"name": name, "ruleTypeId": {"category": "Rule", "owner": "AWS", "provider": provider, "version": "1"},
           "configuration": configuration})
}

fn variable_check(name: &str, operator: &str, value: &str) -> Value {
    rule(name, "VariableCheck", json!({"Variable": "#{variables.Env}", "Operator": operator, "Value": value}))
}

/// A V2 pipeline: Source, then Gate (one CodeBuild action, with `gate` merged into the stage: its conditions), then
/// Deploy. The pipeline variable `Env` defaults to `dev`.
fn pipeline(name: &str, gate: Value) -> Value {
    let at = |c: &str, p: &str| json!({"category": c, "owner": "AWS", "provider": p, "version": "1"});
    let mut gate_stage = json!({"name": "Gate", "actions": [{"name": "Test", "actionTypeId": at("Build", "CodeBuild"),
        "configuration": {"ProjectName": "tests"}, "inputArtifacts": [{"name": "Code"}]}]});
    for (key, value) in gate.as_object().into_iter().flatten() {
        gate_stage[key] = value.clone();
    }
    json!({
        "name": name, "roleArn": "arn:aws:iam::123456789012:role/r", "pipelineType": "V2",
        "executionMode": "QUEUED",
        "variables": [{"name": "Env", "defaultValue": "dev"}],
        "artifactStore": {"type": "S3", "location": "artifact-bucket"},
        "stages": [
            {"name": "Source", "actions": [{"name": "Src", "actionTypeId": at("Source", "S3"),
                "configuration": {"S3Bucket": "b", "S3ObjectKey": "k.zip"}, "outputArtifacts": [{"name": "Code"}]}]},
            gate_stage,
            {"name": "Deploy", "actions": [{"name": "Ship", "actionTypeId": at("Deploy", "S3"),
                "configuration": {"BucketName": "site", "Extract": "true"}, "inputArtifacts": [{"name": "Code"}]}]}
        ]
    })
}

async fn create(client: &Client, declaration: &Value) -> String {
    client.create_pipeline().pipeline(sdk_json::pipeline(declaration)).send().await.expect("pipeline");
    first_execution(client, declaration["name"].as_str().expect("name")).await
}

async fn start(client: &Client, name: &str, env: &str) -> String {
    let variable = PipelineVariable::builder().name("Env").value(env).build().expect("variable");
    let out = client.start_pipeline_execution().name(name).variables(variable).send().await.expect("start");
    out.pipeline_execution_id().expect("id").to_string()
}

/// The JSON state of stage `stage`.
async fn stage_state(server: &TestServer, name: &str, stage: usize) -> Value {
    server.call("GetPipelineState", &json!({"name": name}).to_string()).await.json()["stageStates"][stage].clone()
}

/// The state of the first rule of a stage state's condition of `key` (e.g. `beforeEntryConditionState`).
fn first_rule(stage_state: &Value, key: &str) -> Value {
    stage_state[key]["conditionStates"][0]["ruleStates"][0].clone()
}

/// Creates the pipeline and checks that its first execution fails on a Gate entry rule with a ConfigurationError
/// whose message mentions `mention`.
async fn assert_configuration_error(server: &TestServer, declaration: &Value, mention: &str) {
    let client = server.client();
    let name = declaration["name"].as_str().expect("name");
    let id = create(&client, declaration).await;
    wait_for(&client, name, &id, PipelineExecutionStatus::Failed).await;
    let state = stage_state(server, name, 1).await;
    let execution = &first_rule(&state, "beforeEntryConditionState")["latestExecution"];
    assert_eq!(execution["errorDetails"]["code"], "ConfigurationError");
    assert!(execution["errorDetails"]["message"].as_str().unwrap_or_default().contains(mention), "{execution}");
}

/// Waits until the stage's condition of `key` (e.g. `beforeEntryConditionState`) is in progress.
async fn wait_condition(server: &TestServer, name: &str, key: &str) {
    eventually(&format!("{key} to be in progress"), || async {
        let state = stage_state(server, name, 1).await;
        (state[key]["latestExecution"]["status"] == "InProgress").then_some(())
    })
    .await;
}

/// Creates pipeline `name` whose Gate stage has a `FAIL` condition of `kind` (`beforeEntry` or `onSuccess`) with the
/// one rule `held`, which a behaviour rule holds; returns the first execution once the condition is being evaluated.
async fn holding(server: &TestServer, name: &str, kind: &str, held: Value) -> String {
    server.set_behaviors(json!([{"rule": held["name"], "outcome": "hold"}])).await;
    let declaration = pipeline(name, json!({kind: {"conditions": [{"result": "FAIL", "rules": [held]}]}}));
    let id = create(&server.client(), &declaration).await;
    wait_condition(server, name, &format!("{kind}ConditionState")).await;
    id
}

/// How many times each action ran in the execution.
async fn action_runs(client: &Client, name: &str, id: &str, action: &str) -> usize {
    let filter = aws_sdk_codepipeline::types::ActionExecutionFilter::builder().pipeline_execution_id(id).build();
    let out = client.list_action_executions().pipeline_name(name).filter(filter).send().await.expect("history");
    out.action_execution_details().iter().filter(|d| d.action_name() == Some(action)).count()
}

/// The rule executions of an execution, newest first, as (rule name, status).
async fn rule_runs(client: &Client, name: &str, id: &str) -> Vec<(String, RuleExecutionStatus)> {
    let filter = RuleExecutionFilter::builder().pipeline_execution_id(id).build();
    let out = client.list_rule_executions().pipeline_name(name).filter(filter).send().await.expect("rule history");
    out.rule_execution_details()
        .iter()
        .map(|d| (d.rule_name().unwrap_or_default().to_string(), d.status().cloned().expect("status")))
        .collect()
}

async fn override_condition(
    client: &Client,
    name: &str,
    stage: &str,
    id: &str,
    kind: ConditionType,
) -> Result<(), (String, String)> {
    client
        .override_stage_condition()
        .pipeline_name(name)
        .stage_name(stage)
        .pipeline_execution_id(id)
        .condition_type(kind)
        .send()
        .await
        .map(|_| ())
        .map_err(|e| (e.code().unwrap_or_default().to_string(), e.message().unwrap_or_default().to_string()))
}

#[tokio::test]
async fn variable_check_entry_conditions_enter_fail_or_skip_the_stage() {
    let server = TestServer::fast().await;
    let client = server.client();
    let gate = |result: &str| json!({"beforeEntry": {"conditions": [{"result": result, "rules": [variable_check("IsProd", "EQ", "prod")]}]}});

    // FAIL: Env is dev, so the check fails and the stage fails without running its actions.
    let failing = create(&client, &pipeline("fails", gate("FAIL"))).await;
    wait_for(&client, "fails", &failing, PipelineExecutionStatus::Failed).await;
    assert_eq!(action_runs(&client, "fails", &failing, "Test").await, 0, "no action ran");
    let out = client.get_pipeline_state().name("fails").send().await.expect("state");
    let gate_state = &out.stage_states()[1];
    assert_eq!(gate_state.latest_execution().map(|e| e.status().as_str()), Some("Failed"));
    let condition = gate_state.before_entry_condition_state().expect("entry condition state");
    assert_eq!(condition.latest_execution().and_then(|e| e.status()), Some(&ConditionExecutionStatus::Failed));
    let rule_state = &condition.condition_states()[0].rule_states()[0];
    assert_eq!(rule_state.rule_name(), Some("IsProd"));
    let rule_execution = rule_state.latest_execution().expect("rule execution");
    assert_eq!(rule_execution.status(), Some(&RuleExecutionStatus::Failed));
    assert!(rule_execution.summary().unwrap_or_default().contains("'dev' EQ 'prod'"), "{rule_execution:?}");
    assert!(gate_state.on_success_condition_state().is_none());

    // The same check passes with Env=prod: the stage runs and the execution goes on.
    let passing = start(&client, "fails", "prod").await;
    wait_for(&client, "fails", &passing, PipelineExecutionStatus::Succeeded).await;
    assert_eq!(action_runs(&client, "fails", &passing, "Test").await, 1);
    let state = stage_state(&server, "fails", 1).await;
    assert_eq!(state["beforeEntryConditionState"]["latestExecution"]["status"], "Succeeded");

    // SKIP: the stage is Skipped and the execution moves on to Deploy.
    let skipped = create(&client, &pipeline("skips", gate("SKIP"))).await;
    wait_for(&client, "skips", &skipped, PipelineExecutionStatus::Succeeded).await;
    assert_eq!(action_runs(&client, "skips", &skipped, "Test").await, 0);
    assert_eq!(action_runs(&client, "skips", &skipped, "Ship").await, 1, "the execution went on");
    assert_eq!(stage_state(&server, "skips", 1).await["latestExecution"]["status"], "Skipped");

    // A skipped stage can be neither retried nor rolled back.
    let err = client
        .retry_stage_execution()
        .pipeline_name("skips")
        .stage_name("Gate")
        .pipeline_execution_id(&skipped)
        .retry_mode(StageRetryMode::FailedActions)
        .send()
        .await
        .expect_err("skipped stages are not retried");
    assert_eq!(err.code(), Some("StageNotRetryableException"));
    let err = client
        .rollback_stage()
        .pipeline_name("skips")
        .stage_name("Gate")
        .target_pipeline_execution_id(&skipped)
        .send()
        .await
        .expect_err("skipped stages are not rolled back");
    assert_eq!(err.code(), Some("UnableToRollbackStageException"));
}

#[tokio::test]
async fn variable_check_operators_compare_resolved_variables() {
    let server = TestServer::fast().await;
    let client = server.client();
    let rules = json!([
        variable_check("Ne", "NE", "prod"),
        variable_check("Contains", "CONTAINS", "ev"),
        variable_check("Matches", "MATCHES", "d[a-z]+"),
    ]);
    let declaration = pipeline("ops", json!({"beforeEntry": {"conditions": [{"result": "FAIL", "rules": rules}]}}));
    let first = create(&client, &declaration).await;
    wait_for(&client, "ops", &first, PipelineExecutionStatus::Succeeded).await;
    let mut passed = rule_runs(&client, "ops", &first).await;
    passed.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        passed,
        [
            ("Contains".to_string(), RuleExecutionStatus::Succeeded),
            ("Matches".to_string(), RuleExecutionStatus::Succeeded),
            ("Ne".to_string(), RuleExecutionStatus::Succeeded)
        ]
    );

    // With Env=prod, NE fails and CONTAINS fails; MATCHES must match the whole value, so it fails too.
    let second = start(&client, "ops", "prod").await;
    wait_for(&client, "ops", &second, PipelineExecutionStatus::Failed).await;
    let runs = rule_runs(&client, "ops", &second).await;
    assert_eq!(runs.len(), 3);
    assert!(runs.iter().all(|(_, s)| *s == RuleExecutionStatus::Failed), "{runs:?}");

    // The resolved configuration is recorded with the declared one.
    let filter = RuleExecutionFilter::builder().pipeline_execution_id(&second).build();
    let out = client.list_rule_executions().pipeline_name("ops").filter(filter).send().await.expect("history");
    let detail = out.rule_execution_details().iter().find(|d| d.rule_name() == Some("Ne")).expect("Ne");
    let input = detail.input().expect("input");
    assert_eq!(input.configuration().and_then(|c| c.get("Variable")).map(String::as_str), Some("#{variables.Env}"));
    assert_eq!(input.resolved_configuration().and_then(|c| c.get("Variable")).map(String::as_str), Some("prod"));
    assert_eq!(input.rule_type_id().map(|t| t.provider()), Some("VariableCheck"));
    let result = detail.output().and_then(|o| o.execution_result()).expect("result");
    assert_eq!(result.error_details().and_then(|e| e.code()), Some("JobFailed"));
    assert_eq!(detail.stage_name(), Some("Gate"));
    assert_eq!(detail.pipeline_version(), Some(1));
}

#[tokio::test]
async fn a_deployment_window_holds_the_stage_until_the_clock_reaches_it() {
    let server = TestServer::fast().await;
    let client = server.client();
    // A window that opens three hours from now (in UTC+01:00) and lasts an hour, every day.
    let hour = (Utc::now().hour() + 1 + 3) % 24;
    let window =
        rule("Window", "DeploymentWindow", json!({"Cron": format!("* * {hour} ? * * *"), "TimeZone": "UTC+01:00"}));
    let declaration =
        pipeline("window", json!({"beforeEntry": {"conditions": [{"result": "FAIL", "rules": [window]}]}}));
    let id = create(&client, &declaration).await;
    wait_condition(&server, "window", "beforeEntryConditionState").await;
    let state = stage_state(&server, "window", 1).await;
    assert_eq!(state["latestExecution"]["status"], "InProgress", "the execution is in the stage, waiting");
    let rule_state = &first_rule(&state, "beforeEntryConditionState");
    assert_eq!(rule_state["ruleName"], "Window");
    assert_eq!(rule_state["latestExecution"]["status"], "InProgress");

    server.advance_clock(3600.0).await;
    assert_eq!(status(&client, "window", &id).await, PipelineExecutionStatus::InProgress, "still closed");
    assert_eq!(action_runs(&client, "window", &id, "Test").await, 0);

    server.advance_clock(3.0 * 3600.0).await;
    wait_for(&client, "window", &id, PipelineExecutionStatus::Succeeded).await;
    let runs = rule_runs(&client, "window", &id).await;
    assert_eq!(runs, [("Window".to_string(), RuleExecutionStatus::Succeeded)]);
}

#[tokio::test]
async fn an_invalid_deployment_window_fails_its_rule() {
    let server = TestServer::fast().await;
    let window = rule("Window", "DeploymentWindow", json!({"Cron": "* * 9 ? * MON-FRI *", "TimeZone": "Mars/Base"}));
    let declaration = pipeline("badzone", json!({"beforeEntry": {"conditions": [{"rules": [window]}]}}));
    assert_configuration_error(&server, &declaration, "Mars/Base").await;
}

#[tokio::test]
async fn overriding_a_waiting_entry_condition_lets_the_execution_in() {
    let server = TestServer::fast().await;
    let client = server.client();
    let alarm = rule("Alarm", "CloudWatchAlarm", json!({"AlarmName": "errors", "AlarmStates": "ALARM"}));
    let id = holding(&server, "gated", "beforeEntry", alarm).await;

    // Refusals: no success condition is being evaluated, unknown stage, unknown execution.
    let (code, _) = override_condition(&client, "gated", "Gate", &id, ConditionType::OnSuccess).await.expect_err("no");
    assert_eq!(code, "ConditionNotOverridableException");
    let (code, _) = override_condition(&client, "gated", "Nope", &id, ConditionType::BeforeEntry).await.expect_err("?");
    assert_eq!(code, "StageNotFoundException");
    let unknown = "00000000-0000-0000-0000-000000000000";
    let (code, _) =
        override_condition(&client, "gated", "Gate", unknown, ConditionType::BeforeEntry).await.expect_err("unknown");
    assert_eq!(code, "ConditionNotOverridableException");
    let err = client
        .override_stage_condition()
        .pipeline_name("nope")
        .stage_name("Gate")
        .pipeline_execution_id(&id)
        .condition_type(ConditionType::BeforeEntry)
        .send()
        .await
        .expect_err("no pipeline");
    assert_eq!(err.code(), Some("PipelineNotFoundException"));

    override_condition(&client, "gated", "Gate", &id, ConditionType::BeforeEntry).await.expect("override");
    wait_for(&client, "gated", &id, PipelineExecutionStatus::Succeeded).await;
    let state = stage_state(&server, "gated", 1).await;
    let condition = &state["beforeEntryConditionState"];
    assert_eq!(condition["latestExecution"]["status"], "Overridden");
    assert_eq!(first_rule(&state, "beforeEntryConditionState")["latestExecution"]["status"], "Abandoned");
    assert_eq!(action_runs(&client, "gated", &id, "Test").await, 1, "the stage's actions ran");

    // Once it has ended, the condition can't be overridden again.
    let (code, _) = override_condition(&client, "gated", "Gate", &id, ConditionType::BeforeEntry).await.expect_err("");
    assert_eq!(code, "ConditionNotOverridableException");
}

#[tokio::test]
async fn only_the_latest_execution_in_a_stage_can_be_overridden_and_skip_conditions_never() {
    let server = TestServer::fast().await;
    let client = server.client();
    server.set_behaviors(json!([{"rule": "Slow", "outcome": "hold"}])).await;
    let slow = rule("Slow", "LambdaInvoke", json!({"FunctionName": "check"}));
    let mut declaration =
        pipeline("par", json!({"beforeEntry": {"conditions": [{"result": "FAIL", "rules": [slow.clone()]}]}}));
    declaration["executionMode"] = json!("PARALLEL");
    let first = create(&client, &declaration).await;
    wait_condition(&server, "par", "beforeEntryConditionState").await;
    let second = start(&client, "par", "dev").await;
    eventually("the second execution to wait in Gate", || async {
        let state = stage_state(&server, "par", 1).await;
        (state["latestExecution"]["pipelineExecutionId"] == second.as_str()).then_some(())
    })
    .await;
    let (code, message) =
        override_condition(&client, "par", "Gate", &first, ConditionType::BeforeEntry).await.expect_err("not latest");
    assert_eq!(code, "NotLatestPipelineExecutionException", "{message}");
    override_condition(&client, "par", "Gate", &second, ConditionType::BeforeEntry).await.expect("latest");
    wait_for(&client, "par", &second, PipelineExecutionStatus::Succeeded).await;

    // A condition whose result is SKIP cannot be overridden [DOC].
    let skip = pipeline("skip", json!({"beforeEntry": {"conditions": [{"result": "SKIP", "rules": [slow]}]}}));
    let id = create(&client, &skip).await;
    wait_condition(&server, "skip", "beforeEntryConditionState").await;
    let (code, _) = override_condition(&client, "skip", "Gate", &id, ConditionType::BeforeEntry).await.expect_err("");
    assert_eq!(code, "ConditionNotOverridableException");
}

#[tokio::test]
async fn a_held_rule_ends_through_the_control_endpoint() {
    let server = TestServer::fast().await;
    let client = server.client();
    let mut check = rule("Check", "Commands", json!({}));
    check["commands"] = json!(["./smoke-test.sh"]);
    let id = holding(&server, "held", "onSuccess", check).await;
    assert_eq!(stage_state(&server, "held", 1).await["latestExecution"]["status"], "InProgress");

    let missing = complete(
        &server,
        json!({"pipelineName": "held", "pipelineExecutionId": id, "stageName": "Gate",
        "ruleName": "Other", "outcome": "fail"}),
    )
    .await;
    assert_eq!(missing.status, 404);
    let both = complete(
        &server,
        json!({"pipelineName": "held", "pipelineExecutionId": id, "stageName": "Gate",
        "ruleName": "Check", "actionName": "Test"}),
    )
    .await;
    assert_eq!(both.status, 400);
    let done = complete(
        &server,
        json!({"pipelineName": "held", "pipelineExecutionId": id, "stageName": "Gate",
        "ruleName": "Check", "outcome": "fail", "message": "smoke test failed"}),
    )
    .await;
    assert_eq!(done.status, 200, "{}", done.text());
    assert!(done.json()["ruleExecutionId"].is_string());

    // The success condition failed with FAIL: the stage fails although its actions succeeded.
    wait_for(&client, "held", &id, PipelineExecutionStatus::Failed).await;
    let state = stage_state(&server, "held", 1).await;
    assert_eq!(state["latestExecution"]["status"], "Failed");
    assert_eq!(state["onSuccessConditionState"]["latestExecution"]["status"], "Failed");
    let execution = &first_rule(&state, "onSuccessConditionState")["latestExecution"];
    assert_eq!(execution["errorDetails"]["message"], "smoke test failed");
    assert_eq!(action_runs(&client, "held", &id, "Ship").await, 0, "the execution stopped at Gate");

    // A retry evaluates the success condition again once the actions are done.
    server.set_behaviors(json!([])).await;
    client
        .retry_stage_execution()
        .pipeline_name("held")
        .stage_name("Gate")
        .pipeline_execution_id(&id)
        .retry_mode(StageRetryMode::FailedActions)
        .send()
        .await
        .expect("retry");
    wait_for(&client, "held", &id, PipelineExecutionStatus::Succeeded).await;
    let runs = rule_runs(&client, "held", &id).await;
    assert_eq!(
        runs,
        [("Check".to_string(), RuleExecutionStatus::Succeeded), ("Check".to_string(), RuleExecutionStatus::Failed)]
    );
}

#[tokio::test]
async fn overriding_a_success_condition_completes_the_stage() {
    let server = TestServer::fast().await;
    let client = server.client();
    let bake = rule("Bake", "CloudWatchAlarm", json!({"AlarmName": "latency", "WaitTime": "30"}));
    let id = holding(&server, "bake", "onSuccess", bake).await;
    let (code, _) = override_condition(&client, "bake", "Gate", &id, ConditionType::BeforeEntry).await.expect_err("");
    assert_eq!(code, "ConditionNotOverridableException", "the entry condition is not the one in progress");
    override_condition(&client, "bake", "Gate", &id, ConditionType::OnSuccess).await.expect("override");
    wait_for(&client, "bake", &id, PipelineExecutionStatus::Succeeded).await;
    let state = stage_state(&server, "bake", 1).await;
    assert_eq!(state["latestExecution"]["status"], "Succeeded");
    assert_eq!(state["onSuccessConditionState"]["latestExecution"]["status"], "Overridden");
}

#[tokio::test]
async fn a_cloudwatch_alarm_rule_watches_for_its_wait_time_on_the_clock() {
    let server = TestServer::fast().await;
    let client = server.client();
    let bake = rule("Bake", "CloudWatchAlarm", json!({"AlarmName": "latency", "WaitTime": "30"}));
    let declaration = pipeline("watch", json!({"onSuccess": {"conditions": [{"result": "FAIL", "rules": [bake]}]}}));
    let id = create(&client, &declaration).await;
    wait_condition(&server, "watch", "onSuccessConditionState").await;
    server.advance_clock(29.0 * 60.0).await;
    assert_eq!(status(&client, "watch", &id).await, PipelineExecutionStatus::InProgress);
    server.advance_clock(60.0).await;
    wait_for(&client, "watch", &id, PipelineExecutionStatus::Succeeded).await;
    let state = stage_state(&server, "watch", 1).await;
    let rule_execution = &first_rule(&state, "onSuccessConditionState")["latestExecution"];
    assert_eq!(rule_execution["status"], "Succeeded");
    assert_eq!(rule_execution["summary"], "Alarm latency is not in state ALARM.");
}

#[tokio::test]
async fn a_failed_success_condition_with_rollback_rolls_the_stage_back() {
    let server = TestServer::fast().await;
    let client = server.client();
    let alarm = rule("Alarm", "CloudWatchAlarm", json!({"AlarmName": "errors"}));
    let declaration =
        pipeline("roll", json!({"onSuccess": {"conditions": [{"result": "ROLLBACK", "rules": [alarm]}]}}));
    let good = create(&client, &declaration).await;
    wait_for(&client, "roll", &good, PipelineExecutionStatus::Succeeded).await;

    server.set_behaviors(json!([{"rule": "Alarm", "outcome": "fail", "message": "errors is in ALARM"}])).await;
    let bad = start(&client, "roll", "dev").await;
    wait_for(&client, "roll", &bad, PipelineExecutionStatus::Failed).await;
    let rollback = eventually("an automatic rollback", || async {
        let out = client.list_pipeline_executions().pipeline_name("roll").send().await.ok()?;
        let newest = out.pipeline_execution_summaries().first()?.clone();
        (newest.execution_type() == Some(&ExecutionType::Rollback)).then_some(newest)
    })
    .await;
    assert_eq!(rollback.trigger().and_then(|t| t.trigger_type()).map(|t| t.as_str()), Some("AutomatedRollback"));
    assert_eq!(rollback.trigger().and_then(|t| t.trigger_detail()), Some(bad.as_str()));
    let target = rollback.rollback_metadata().and_then(|m| m.rollback_target_pipeline_execution_id());
    assert_eq!(target, Some(good.as_str()));
    let rollback_id = rollback.pipeline_execution_id().expect("id").to_string();
    // The rollback passes its success condition again (the behaviour still fails it, and a rollback never rolls
    // back), so it fails; what matters is that it ran the stage.
    eventually("the rollback to end", || async {
        let s = status(&client, "roll", &rollback_id).await;
        (s != PipelineExecutionStatus::InProgress).then_some(())
    })
    .await;
    assert_eq!(action_runs(&client, "roll", &rollback_id, "Test").await, 1);
}

#[tokio::test]
async fn failure_conditions_decide_between_plain_failure_rollback_and_retry() {
    let server = TestServer::fast().await;
    let client = server.client();
    // Roll back when Env is not prod (the rule fails), else just fail.
    let declaration = pipeline(
        "onfail",
        json!({"onFailure": {"conditions": [{"result": "ROLLBACK", "rules": [variable_check("IsProd", "EQ", "prod")]}]}}),
    );
    let good = create(&client, &declaration).await;
    wait_for(&client, "onfail", &good, PipelineExecutionStatus::Succeeded).await;

    server.set_behaviors(json!([{"action": "Test", "outcome": "fail"}])).await;
    // Env=prod: the rule passes, so the result does not apply and the stage just fails.
    let plain = start(&client, "onfail", "prod").await;
    wait_for(&client, "onfail", &plain, PipelineExecutionStatus::Failed).await;
    let state = stage_state(&server, "onfail", 1).await;
    assert_eq!(state["onFailureConditionState"]["latestExecution"]["status"], "Succeeded");
    let out = client.list_pipeline_executions().pipeline_name("onfail").send().await.expect("list");
    assert!(out.pipeline_execution_summaries().iter().all(|e| e.execution_type() != Some(&ExecutionType::Rollback)));

    // Env=dev: the rule fails, so the stage rolls back to the execution that last succeeded there.
    let rolled = start(&client, "onfail", "dev").await;
    wait_for(&client, "onfail", &rolled, PipelineExecutionStatus::Failed).await;
    let rollback = eventually("an automatic rollback", || async {
        let out = client.list_pipeline_executions().pipeline_name("onfail").send().await.ok()?;
        let newest = out.pipeline_execution_summaries().first()?.clone();
        (newest.execution_type() == Some(&ExecutionType::Rollback)).then_some(newest)
    })
    .await;
    let target = rollback.rollback_metadata().and_then(|m| m.rollback_target_pipeline_execution_id());
    assert_eq!(target, Some(good.as_str()));

    // RETRY with conditions: one automatic retry when the rule fails.
    let retrying = pipeline(
        "retry",
        json!({"onFailure": {"result": "RETRY", "retryConfiguration": {"retryMode": "FAILED_ACTIONS"},
            "conditions": [{"result": "RETRY", "rules": [variable_check("IsProd", "EQ", "prod")]}]}}),
    );
    let id = create(&client, &retrying).await;
    wait_for(&client, "retry", &id, PipelineExecutionStatus::Failed).await;
    eventually("one automatic retry", || async {
        let state = stage_state(&server, "retry", 1).await;
        (state["retryStageMetadata"]["autoStageRetryAttempt"] == 1
            && state["latestExecution"]["status"] == "Failed"
            && status(&client, "retry", &id).await == PipelineExecutionStatus::Failed)
            .then_some(())
    })
    .await;
    assert_eq!(action_runs(&client, "retry", &id, "Test").await, 2, "one automatic retry, then it stays failed");
    assert_eq!(rule_runs(&client, "retry", &id).await.len(), 2, "the failure condition ran after each failure");
}

#[tokio::test]
async fn retrying_a_stage_that_failed_its_entry_condition_checks_it_again() {
    let server = TestServer::fast().await;
    let client = server.client();
    server.set_behaviors(json!([{"rule": "Lambda", "outcome": "fail", "errorCode": "JobFailed"}])).await;
    let lambda = rule("Lambda", "LambdaInvoke", json!({"FunctionName": "gatekeeper", "UserParameters": "x"}));
    let declaration =
        pipeline("reentry", json!({"beforeEntry": {"conditions": [{"result": "FAIL", "rules": [lambda]}]}}));
    let id = create(&client, &declaration).await;
    wait_for(&client, "reentry", &id, PipelineExecutionStatus::Failed).await;

    server.set_behaviors(json!([])).await;
    client
        .retry_stage_execution()
        .pipeline_name("reentry")
        .stage_name("Gate")
        .pipeline_execution_id(&id)
        .retry_mode(StageRetryMode::FailedActions)
        .send()
        .await
        .expect("retry");
    wait_for(&client, "reentry", &id, PipelineExecutionStatus::Succeeded).await;
    assert_eq!(
        rule_runs(&client, "reentry", &id).await,
        [("Lambda".to_string(), RuleExecutionStatus::Succeeded), ("Lambda".to_string(), RuleExecutionStatus::Failed)]
    );
    assert_eq!(action_runs(&client, "reentry", &id, "Test").await, 1);
    let state = stage_state(&server, "reentry", 1).await;
    let rule_execution = &first_rule(&state, "beforeEntryConditionState")["latestExecution"];
    assert_eq!(rule_execution["summary"], "The AWS Lambda function gatekeeper succeeded.");
}

#[tokio::test]
async fn rule_execution_history_filters_and_pages() {
    let server = TestServer::fast().await;
    let client = server.client();
    let rules = json!([variable_check("A", "NE", "x"), variable_check("B", "NE", "y")]);
    let declaration = pipeline("history", json!({"beforeEntry": {"conditions": [{"result": "FAIL", "rules": rules}]}}));
    let first = create(&client, &declaration).await;
    wait_for(&client, "history", &first, PipelineExecutionStatus::Succeeded).await;
    let second = start(&client, "history", "dev").await;
    wait_for(&client, "history", &second, PipelineExecutionStatus::Succeeded).await;

    // Every rule execution, newest first, one page at a time.
    let mut seen = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let out = client
            .list_rule_executions()
            .pipeline_name("history")
            .max_results(1)
            .set_next_token(token.clone())
            .send()
            .await
            .expect("page");
        assert_eq!(out.rule_execution_details().len(), 1);
        let detail = &out.rule_execution_details()[0];
        seen.push(detail.pipeline_execution_id().unwrap_or_default().to_string());
        token = out.next_token().map(str::to_string);
        if token.is_none() {
            break;
        }
    }
    assert_eq!(seen.len(), 4);
    assert!(seen[..2].iter().all(|e| e == &second), "newest first: {seen:?}");
    assert!(seen[2..].iter().all(|e| e == &first));

    // Filters: one execution, or the latest run of each rule in one.
    assert_eq!(rule_runs(&client, "history", &first).await.len(), 2);
    let latest = LatestInPipelineExecutionFilter::builder()
        .pipeline_execution_id(&second)
        .start_time_range(StartTimeRange::Latest)
        .build()
        .expect("filter");
    let filter = RuleExecutionFilter::builder().latest_in_pipeline_execution(latest).build();
    let out = client.list_rule_executions().pipeline_name("history").filter(filter).send().await.expect("latest");
    assert_eq!(out.rule_execution_details().len(), 2);

    // Errors: an unknown execution, a token from elsewhere, an unknown pipeline.
    let filter = RuleExecutionFilter::builder().pipeline_execution_id("00000000-0000-0000-0000-000000000000").build();
    let err = client.list_rule_executions().pipeline_name("history").filter(filter).send().await.expect_err("none");
    assert_eq!(err.code(), Some("PipelineExecutionNotFoundException"));
    let err = client
        .list_rule_executions()
        .pipeline_name("history")
        .next_token("not-a-token")
        .send()
        .await
        .expect_err("bad token");
    assert_eq!(err.code(), Some("InvalidNextTokenException"));
    let err = client.list_rule_executions().pipeline_name("nope").send().await.expect_err("no pipeline");
    assert_eq!(err.code(), Some("PipelineNotFoundException"));
}

#[tokio::test]
async fn an_unresolvable_variable_fails_the_rule_with_a_configuration_error() {
    let server = TestServer::fast().await;
    let check = rule("Check", "VariableCheck", json!({"Variable": "#{Nope.Value}", "Operator": "EQ", "Value": "x"}));
    let declaration = pipeline("unresolved", json!({"beforeEntry": {"conditions": [{"rules": [check]}]}}));
    // Unknown namespaces are refused when the pipeline is created, so reference one that exists but lacks the key.
    let mut declaration = declaration;
    declaration["stages"][0]["actions"][0]["namespace"] = json!("Nope");
    assert_configuration_error(&server, &declaration, "#{Nope.Value}").await;
}

#[tokio::test]
async fn stop_and_abandon_abandons_a_waiting_condition() {
    let server = TestServer::fast().await;
    let client = server.client();
    let wait = rule("Wait", "LambdaInvoke", json!({"FunctionName": "f"}));
    let id = holding(&server, "abandon", "beforeEntry", wait).await;
    client
        .stop_pipeline_execution()
        .pipeline_name("abandon")
        .pipeline_execution_id(&id)
        .abandon(true)
        .send()
        .await
        .expect("stop");
    wait_for(&client, "abandon", &id, PipelineExecutionStatus::Stopped).await;
    let state = stage_state(&server, "abandon", 1).await;
    assert_eq!(state["latestExecution"]["status"], "Stopped");
    assert_eq!(state["beforeEntryConditionState"]["latestExecution"]["status"], "Abandoned");
    assert_eq!(rule_runs(&client, "abandon", &id).await, [("Wait".to_string(), RuleExecutionStatus::Abandoned)]);
}
