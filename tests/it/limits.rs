//! Bounded resources: connections that send too slowly or sit idle are closed, and what a small request can make
//! the server keep is bounded.

use std::time::Duration;

use codepipeline_local::Config;

use crate::common::{HttpResponse, TestServer};

/// A server with short connection bounds, so the tests need no long waits.
async fn impatient() -> TestServer {
    TestServer::with_config(Config {
        header_timeout: Duration::from_millis(300),
        body_timeout: Duration::from_millis(300),
        idle_timeout: Duration::from_millis(300),
        ..Config::default()
    })
    .await
}

#[tokio::test]
async fn a_request_head_that_never_completes_is_closed() {
    let server = impatient().await;
    let mut conn = server.connect().await;
    conn.write(b"POST / HTTP/1.1\r\nHost: localhost\r\nX-Amz-Target: CodePipeline_20150709.ListPipelines\r\n").await;
    // The head trickles in, one header line at a time, but is never finished.
    for _ in 0..3 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        conn.write(b"X-Slow: 1\r\n").await;
    }
    assert!(conn.closed_within(Duration::from_secs(3)).await.is_some(), "a slow head holds its connection");
}

#[tokio::test]
async fn many_slow_connections_are_all_closed() {
    let server = impatient().await;
    let mut conns = Vec::new();
    for _ in 0..50 {
        let mut conn = server.connect().await;
        conn.write(b"POST / HTTP/1.1\r\nHost: local").await;
        conns.push(conn);
    }
    for conn in &mut conns {
        assert!(conn.closed_within(Duration::from_secs(3)).await.is_some(), "a half-sent head is held forever");
    }
    // The server still answers.
    assert_eq!(server.call("ListPipelines", "{}").await.status, 200);
}

#[tokio::test]
async fn idle_keep_alive_connections_are_closed_and_busy_ones_are_not() {
    let server = impatient().await;
    let mut conn = server.connect().await;
    // Requests closer together than the idle bound keep the connection, for longer than the bound in all.
    for _ in 0..5 {
        assert_eq!(conn.aws("ListPipelines", "{}").await.status, 200);
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    assert_eq!(conn.aws("ListPipelines", "{}").await.status, 200);
    // Then it sits idle and is closed.
    assert!(conn.closed_within(Duration::from_secs(3)).await.is_some(), "an idle connection is held forever");
}

#[tokio::test]
async fn a_stalled_body_is_answered_408_and_its_connection_closed() {
    let server = impatient().await;
    let mut conn = server.connect().await;
    conn.write(
        b"POST / HTTP/1.1\r\nHost: localhost\r\nX-Amz-Target: CodePipeline_20150709.ListPipelines\r\n\
          Content-Type: application/x-amz-json-1.1\r\nContent-Length: 100\r\n\r\n{\"next",
    )
    .await;
    let sent = conn.closed_within(Duration::from_secs(3)).await.expect("the connection is closed");
    let text = String::from_utf8_lossy(&sent);
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(text.contains("RequestTimeoutException"), "{text}");
}

#[tokio::test]
async fn control_bodies_over_the_limit_get_the_json_413() {
    let server = TestServer::start().await;
    let body = format!(r#"{{"rules": [], "padding": "{}"}}"#, "x".repeat(9 * 1024 * 1024));
    let response: HttpResponse = server
        .connect()
        .await
        .request("PUT", "/_emulator/behaviors", &[("Content-Type", "application/json")], body.as_bytes())
        .await;
    assert_eq!(response.status, 413, "{}", response.text());
    assert_eq!(response.json()["__type"], "RequestEntityTooLargeException");
    assert_eq!(response.header("content-type"), Some("application/x-amz-json-1.1"));
}

#[tokio::test]
async fn trigger_bodies_over_the_limit_get_the_json_413() {
    let server = TestServer::start().await;
    let body = format!(r#"{{"ref": "refs/heads/main", "padding": "{}"}}"#, "x".repeat(9 * 1024 * 1024));
    for path in ["/webhooks/us-east-1/anything", "/_emulator/git/webhook", "/_emulator/source-changes"] {
        let headers = [("Content-Type", "application/json"), ("X-GitHub-Event", "push")];
        let response: HttpResponse = server.connect().await.request("POST", path, &headers, body.as_bytes()).await;
        assert_eq!(response.status, 413, "{path}: {}", response.text());
        assert_eq!(response.json()["__type"], "RequestEntityTooLargeException", "{path}");
    }
}

#[tokio::test]
async fn requests_that_change_nothing_create_no_partition() {
    let server = TestServer::start().await;
    let store = server.server.state().store();
    for (i, region) in
        ["ap-south-1", "ap-south-2", "eu-south-1", "eu-south-2", "me-south-1", "af-south-1"].iter().enumerate()
    {
        let client = server.client_as("111122223333", region);
        match i {
            0 => {
                client.delete_webhook().name("nothing").send().await.expect("a no-op delete succeeds");
            }
            1 => {
                client.delete_pipeline().name("nothing").send().await.expect("a no-op delete succeeds");
            }
            2 => {
                let id = aws_sdk_codepipeline::types::ActionCategory::Build;
                client.delete_custom_action_type().category(id).provider("P").version("1").send().await.expect("ok");
            }
            3 => {
                let mut declaration = crate::common::sdk_pipeline("refused");
                declaration.stages.truncate(1);
                client.create_pipeline().pipeline(declaration).send().await.expect_err("one stage is refused");
            }
            4 => {
                client.start_pipeline_execution().name("nothing").send().await.expect_err("no such pipeline");
            }
            _ => {
                let err = client.deregister_webhook_with_third_party().webhook_name("nothing").send().await;
                err.expect_err("no such webhook");
            }
        }
    }
    assert_eq!(store.partition_count(), 0, "a request that changed nothing left a partition behind");
    let client = server.client_as("111122223333", "ap-south-1");
    client.create_pipeline().pipeline(crate::common::sdk_pipeline("kept")).send().await.expect("created");
    assert_eq!(store.partition_count(), 1);
}

#[tokio::test]
async fn page_tokens_work_only_where_they_were_issued() {
    let server = TestServer::start().await;
    let owner = server.client_as("111122223333", "eu-west-1");
    for name in ["a", "b", "c"] {
        owner.create_pipeline().pipeline(crate::common::sdk_pipeline(name)).send().await.expect("created");
    }
    let first = owner.list_pipelines().max_results(1).send().await.expect("lists");
    let token = first.next_token().expect("more pages").to_string();
    for (key, region) in [("444455556666", "eu-west-1"), ("111122223333", "eu-west-2"), ("AKIDEXAMPLE", "eu-west-1")] {
        let other = server.client_as(key, region);
        other.create_pipeline().pipeline(crate::common::sdk_pipeline("a")).send().await.expect("created");
        other.create_pipeline().pipeline(crate::common::sdk_pipeline("z")).send().await.expect("created");
        let err = other.list_pipelines().next_token(&token).send().await.expect_err("a foreign token");
        assert!(err.into_service_error().is_invalid_next_token_exception(), "{key}/{region}");
    }
    let second = owner.list_pipelines().max_results(1).next_token(&token).send().await.expect("its own token");
    assert_eq!(second.pipelines()[0].name(), Some("b"));

    // A pipeline's execution history token does not page through another pipeline's history.
    for _ in 0..2 {
        owner.start_pipeline_execution().name("a").send().await.expect("started");
    }
    let page = owner.list_pipeline_executions().pipeline_name("a").max_results(1).send().await.expect("lists");
    let token = page.next_token().expect("more pages").to_string();
    let err = owner.list_pipeline_executions().pipeline_name("b").next_token(&token).send().await;
    assert!(err.expect_err("another pipeline").into_service_error().is_invalid_next_token_exception());
}

fn at(category: &str, provider: &str) -> serde_json::Value {
    serde_json::json!({"category": category, "owner": "AWS", "provider": provider, "version": "1"})
}

/// A V2 pipeline: S3 source, then a CodeBuild action `Build` with `configuration`; the pipeline variable `Big`
/// defaults to 1,000 characters.
fn amplifying(name: &str, configuration: serde_json::Value, gate: serde_json::Value) -> serde_json::Value {
    let mut build = serde_json::json!({"name": "Build", "actions": [{"name": "Build", "actionTypeId": at("Build", "CodeBuild"),
        "configuration": configuration, "inputArtifacts": [{"name": "Code"}]}]});
    for (key, value) in gate.as_object().into_iter().flatten() {
        build[key] = value.clone();
    }
    serde_json::json!({"name": name, "roleArn": "arn:aws:iam::123456789012:role/r", "pipelineType": "V2",
        "variables": [{"name": "Big", "defaultValue": "x".repeat(1000)}],
        "artifactStore": {"type": "S3", "location": "bucket"},
        "stages": [
            {"name": "Source", "actions": [{"name": "Src", "actionTypeId": at("Source", "S3"),
                "configuration": {"S3Bucket": "b", "S3ObjectKey": "k.zip"}, "outputArtifacts": [{"name": "Code"}]}]},
            build]})
}

async fn finished_history(server: &TestServer, name: &str) -> serde_json::Value {
    let client = server.client();
    let id = crate::common::first_execution(&client, name).await;
    crate::common::wait_for(&client, name, &id, aws_sdk_codepipeline::types::PipelineExecutionStatus::Failed).await;
    let body = serde_json::json!({"pipelineName": name}).to_string();
    server.call("ListActionExecutions", &body).await.json()
}

#[tokio::test]
async fn variables_may_not_grow_a_value_past_the_models_limit() {
    let server = TestServer::fast().await;
    // 51 references to a 1,000-character variable: 51,000 characters once resolved, from a 714-character value.
    let value = "#{variables.Big}".repeat(51);
    let pipeline = amplifying("grows", serde_json::json!({"ProjectName": value}), serde_json::json!({}));
    let response = server.call("CreatePipeline", &serde_json::json!({"pipeline": pipeline}).to_string()).await;
    assert_eq!(response.status, 200, "{}", response.text());
    let history = finished_history(&server, "grows").await;
    let build = history["actionExecutionDetails"]
        .as_array()
        .expect("details")
        .iter()
        .find(|d| d["actionName"] == "Build")
        .cloned();
    let build = build.expect("the build ran");
    assert_eq!(build["status"], "Failed");
    let error = &build["output"]["executionResult"]["errorDetails"];
    assert_eq!(error["code"], "JobFailed", "{build}");
    assert!(
        build["output"]["executionResult"]["externalExecutionSummary"]
            .as_str()
            .is_some_and(|m| m.contains("ProjectName") && m.contains("50000")),
        "{error}"
    );
    assert_eq!(build["input"]["resolvedConfiguration"]["ProjectName"], value, "the resolved value was not stored");
    assert!(history.to_string().len() < 20_000, "the history carries no amplified value");

    // Just under the limit is fine.
    let fits =
        amplifying("fits", serde_json::json!({"ProjectName": "#{variables.Big}".repeat(50)}), serde_json::json!({}));
    server.call("CreatePipeline", &serde_json::json!({"pipeline": fits}).to_string()).await;
    let client = server.client();
    let id = crate::common::first_execution(&client, "fits").await;
    crate::common::wait_for(&client, "fits", &id, aws_sdk_codepipeline::types::PipelineExecutionStatus::Succeeded)
        .await;
}

#[tokio::test]
async fn variables_may_not_grow_a_configuration_past_its_total_bound() {
    let server = TestServer::fast().await;
    // Six values of 49,000 characters each once resolved: every one within the limit, 294,000 in all.
    let value = serde_json::json!("#{variables.Big}".repeat(49));
    let keys = ["ActionMode", "StackName", "ChangeSetName", "TemplatePath", "ParameterOverrides", "RoleArn"];
    let configuration: serde_json::Map<String, serde_json::Value> =
        keys.iter().map(|k| (k.to_string(), value.clone())).collect();
    let mut pipeline = amplifying("wide", serde_json::json!({}), serde_json::json!({}));
    pipeline["stages"][1]["actions"][0]["actionTypeId"] = at("Deploy", "CloudFormation");
    pipeline["stages"][1]["actions"][0]["configuration"] = serde_json::Value::Object(configuration);
    let response = server.call("CreatePipeline", &serde_json::json!({"pipeline": pipeline}).to_string()).await;
    assert_eq!(response.status, 200, "{}", response.text());
    let history = finished_history(&server, "wide").await;
    let details = history["actionExecutionDetails"].as_array().expect("details");
    let build = details.iter().find(|d| d["actionName"] == "Build").expect("the action ran");
    let error = &build["output"]["executionResult"]["errorDetails"];
    assert_eq!(error["code"], "JobFailed", "{error}");
    assert!(
        build["output"]["executionResult"]["externalExecutionSummary"].as_str().is_some_and(|m| m.contains("in all")),
        "{error}"
    );
}

#[tokio::test]
async fn a_rule_value_may_not_grow_past_the_rule_limit() {
    let server = TestServer::fast().await;
    let gate = serde_json::json!({"beforeEntry": {"conditions": [{"result": "FAIL", "rules": [{"name": "Check",
        "ruleTypeId": {"category": "Rule", "owner": "AWS", "provider": "VariableCheck", "version": "1"},
        "configuration": {"Variable": "#{variables.Big}".repeat(11), "Operator": "EQ", "Value": "x"}}]}]}});
    let pipeline = amplifying("ruled", serde_json::json!({"ProjectName": "p"}), gate);
    let response = server.call("CreatePipeline", &serde_json::json!({"pipeline": pipeline}).to_string()).await;
    assert_eq!(response.status, 200, "{}", response.text());
    let client = server.client();
    let id = crate::common::first_execution(&client, "ruled").await;
    crate::common::wait_for(&client, "ruled", &id, aws_sdk_codepipeline::types::PipelineExecutionStatus::Failed).await;
    let rules = server.call("ListRuleExecutions", r#"{"pipelineName": "ruled"}"#).await.json();
    let error = &rules["ruleExecutionDetails"][0]["output"]["executionResult"]["errorDetails"];
    assert_eq!(error["code"], "JobFailed", "{rules}");
    assert!(error["message"].as_str().is_some_and(|m| m.contains("10000")), "{error}");
}

#[tokio::test]
async fn only_the_ten_latest_versions_are_readable() {
    let server = TestServer::fast().await;
    let client = server.client();
    client.create_pipeline().pipeline(crate::common::sdk_pipeline("versioned")).send().await.expect("created");
    let first = crate::common::first_execution(&client, "versioned").await;
    for _ in 0..12 {
        client.update_pipeline().pipeline(crate::common::sdk_pipeline("versioned")).send().await.expect("updated");
    }
    for version in 1..=3 {
        let err = client.get_pipeline().name("versioned").version(version).send().await.expect_err("forgotten");
        assert!(err.into_service_error().is_pipeline_not_found_exception(), "version {version}");
    }
    for version in 4..=13 {
        let got = client.get_pipeline().name("versioned").version(version).send().await.expect("kept");
        assert_eq!(got.pipeline().and_then(|p| p.version()), Some(version));
    }
    let err = client.get_pipeline().name("versioned").version(14).send().await.expect_err("not yet");
    assert!(err.into_service_error().is_pipeline_version_not_found_exception());
    // The first execution still reads its own version's names.
    let history = client.list_action_executions().pipeline_name("versioned").send().await.expect("history");
    let of_first: Vec<_> = history
        .action_execution_details()
        .iter()
        .filter(|d| d.pipeline_execution_id() == Some(first.as_str()))
        .map(|d| (d.stage_name().unwrap_or_default(), d.pipeline_version()))
        .collect();
    assert!(of_first.contains(&("Source", Some(1))), "{of_first:?}");
}

#[tokio::test]
async fn matches_patterns_are_checked_when_the_pipeline_is_created() {
    let server = TestServer::start().await;
    for (pattern, why) in [
        ("release/(", "not a regular expression"),
        ("(a{1000}){1000}", "not a regular expression"),
        ("#{variables.Big}", "variable reference"),
    ] {
        let gate = serde_json::json!({"beforeEntry": {"conditions": [{"result": "FAIL", "rules": [{"name": "Check",
            "ruleTypeId": {"category": "Rule", "owner": "AWS", "provider": "VariableCheck", "version": "1"},
            "configuration": {"Variable": "#{variables.Big}", "Operator": "MATCHES", "Value": pattern}}]}]}});
        let pipeline = amplifying("patterned", serde_json::json!({"ProjectName": "p"}), gate);
        let body = serde_json::json!({"pipeline": pipeline}).to_string();
        let message = server.error("CreatePipeline", &body, "InvalidStageDeclarationException").await;
        assert!(message.contains(why) && message.contains("Check"), "{pattern}: {message}");
    }
    assert_eq!(server.server.state().store().partition_count(), 0, "nothing was created");
}

#[tokio::test]
async fn variables_may_not_grow_one_executions_configurations_past_their_bound() {
    let server = TestServer::fast().await;
    // 25 actions, each changing five values of 40,000 characters: 5,000,000 in all, over the 4 MiB an execution
    // may hold, though each action is within its own bounds.
    let value = serde_json::json!("#{variables.Big}".repeat(40));
    let action = |i: usize| {
        let configuration: serde_json::Map<String, serde_json::Value> =
            ["ActionMode", "StackName", "ChangeSetName", "TemplatePath", "ParameterOverrides"]
                .iter()
                .map(|k| (k.to_string(), value.clone()))
                .collect();
        serde_json::json!({"name": format!("Stack{i:02}"), "actionTypeId": at("Deploy", "CloudFormation"),
            "configuration": configuration, "inputArtifacts": [{"name": "Code"}]})
    };
    let mut pipeline = amplifying("many", serde_json::json!({}), serde_json::json!({}));
    pipeline["stages"][1]["actions"] = serde_json::Value::Array((0..25).map(action).collect());
    let response = server.call("CreatePipeline", &serde_json::json!({"pipeline": pipeline}).to_string()).await;
    assert_eq!(response.status, 200, "{}", response.text());
    let history = finished_history(&server, "many").await;
    let details = history["actionExecutionDetails"].as_array().expect("details");
    let refused: Vec<_> = details
        .iter()
        .filter(|d| {
            d["output"]["executionResult"]["externalExecutionSummary"]
                .as_str()
                .is_some_and(|m| m.contains("this execution's actions and rules"))
        })
        .collect();
    assert_eq!(refused.len(), 5, "the actions past the bound fail: {history}");
    assert_eq!(details.iter().filter(|d| d["status"] == "Succeeded").count(), 21, "the source and 20 stacks");
}
