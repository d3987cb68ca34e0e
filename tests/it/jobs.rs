//! A job worker for a custom action, written against `aws-sdk-codepipeline`: polling with query parameters,
//! acknowledging with nonces, continuation, success with output variables, failure, repeats, visibility and
//! timeouts on the emulator clock.

use std::collections::HashMap;

use aws_sdk_codepipeline::Client;
use aws_sdk_codepipeline::error::ProvideErrorMetadata;
use aws_sdk_codepipeline::types::{
    ActionCategory, ActionConfigurationProperty, ActionOwner, ActionTypeId, ArtifactDetails, ExecutionDetails,
    FailureDetails, FailureType, Job, PipelineExecutionStatus,
};
use serde_json::json;

use crate::common::{TestServer, eventually};
use crate::sdk_json;

fn worker_type() -> ActionTypeId {
    ActionTypeId::builder()
        .category(ActionCategory::Build)
        .owner(ActionOwner::Custom)
        .provider("Worker")
        .version("1")
        .build()
        .expect("id")
}

async fn setup(server: &TestServer) -> Client {
    let client = server.client();
    let property = |name: &str, required: bool, secret: bool, queryable: bool| {
        ActionConfigurationProperty::builder()
            .name(name)
            .required(required)
            .key(!secret)
            .secret(secret)
            .queryable(queryable)
            .build()
            .expect("property")
    };
    client
        .create_custom_action_type()
        .category(ActionCategory::Build)
        .provider("Worker")
        .version("1")
        .configuration_properties(property("ProjectName", true, false, true))
        .configuration_properties(property("Token", false, true, false))
        .input_artifact_details(ArtifactDetails::builder().minimum_count(1).maximum_count(1).build())
        .output_artifact_details(ArtifactDetails::builder().minimum_count(0).maximum_count(1).build())
        .send()
        .await
        .expect("custom type");
    let at = |c: &str, o: &str, p: &str| json!({"category": c, "owner": o, "provider": p, "version": "1"});
    let pipeline = json!({
        "name": "worked", "roleArn": "arn:aws:iam::123456789012:role/r",
        "artifactStore": {"type": "S3", "location": "artifact-bucket"},
        "stages": [
            {"name": "Source", "actions": [{"name": "Src", "actionTypeId": at("Source", "AWS", "S3"),
                "configuration": {"S3Bucket": "source-bucket", "S3ObjectKey": "k.zip"}, "outputArtifacts": [{"name": "Code"}]}]},
            {"name": "Build", "actions": [{"name": "Job", "namespace": "Worker", "actionTypeId": at("Build", "Custom", "Worker"),
                "configuration": {"ProjectName": "web", "Token": "s3cret"},
                "inputArtifacts": [{"name": "Code"}], "outputArtifacts": [{"name": "Built"}]}]},
            {"name": "Deploy", "actions": [{"name": "Ship", "actionTypeId": at("Deploy", "AWS", "S3"),
                "configuration": {"BucketName": "site", "Extract": "false", "ObjectKey": "build-#{Worker.BuildNumber}.zip"},
                "inputArtifacts": [{"name": "Built"}]}]}
        ]
    });
    client.create_pipeline().pipeline(sdk_json::pipeline(&pipeline)).send().await.expect("pipeline");
    client
}

async fn poll(client: &Client, project: &str) -> Vec<Job> {
    let out = client
        .poll_for_jobs()
        .action_type_id(worker_type())
        .max_batch_size(5)
        .query_param("ProjectName", project)
        .send()
        .await
        .expect("polls");
    out.jobs().to_vec()
}

async fn next_job(client: &Client) -> Job {
    eventually("a job", || async { poll(client, "web").await.into_iter().next() }).await
}

async fn execution_status(client: &Client) -> PipelineExecutionStatus {
    let list = client.list_pipeline_executions().pipeline_name("worked").send().await.expect("lists");
    list.pipeline_execution_summaries()[0].status().cloned().expect("status")
}

async fn job_action_state(server: &TestServer) -> serde_json::Value {
    let state = server.call("GetPipelineState", r#"{"name": "worked"}"#).await.json();
    state["stageStates"][1]["actionStates"][0]["latestExecution"].clone()
}

#[tokio::test]
async fn a_job_worker_polls_acknowledges_continues_and_succeeds() {
    let server = TestServer::fast().await;
    let client = setup(&server).await;
    assert!(poll(&client, "other-project").await.is_empty(), "the query parameter selects jobs");
    let job = next_job(&client).await;
    let id = job.id().expect("id").to_string();
    assert_eq!(job.account_id(), Some("000000000000"));
    let data = job.data().expect("data");
    let config = data.action_configuration().and_then(|c| c.configuration()).cloned().unwrap_or_default();
    assert_eq!(config.get("Token").map(String::as_str), Some("s3cret"), "secrets are in clear in job data");
    let context = data.pipeline_context().expect("context");
    assert_eq!(context.pipeline_name(), Some("worked"));
    assert_eq!(context.stage().and_then(|s| s.name()), Some("Build"));
    assert_eq!(context.action().and_then(|a| a.name()), Some("Job"));
    assert_eq!(context.pipeline_arn(), Some("arn:aws:codepipeline:us-east-1:000000000000:worked"));
    let input = &data.input_artifacts()[0];
    assert_eq!(input.name(), Some("Code"));
    let location = input.location().and_then(|l| l.s3_location()).expect("location");
    assert_eq!(location.bucket_name(), "artifact-bucket");
    assert!(location.object_key().starts_with("worked/Code/"));
    assert!(input.revision().is_some(), "the source revision of the input");
    assert_eq!(data.output_artifacts()[0].name(), Some("Built"));
    assert!(data.artifact_credentials().is_some());
    assert_eq!(data.continuation_token(), None);

    // Secrets stay masked everywhere else.
    let pipeline = server.call("GetPipeline", r#"{"name": "worked"}"#).await.json();
    assert_eq!(pipeline["pipeline"]["stages"][1]["actions"][0]["configuration"]["Token"], "****");

    let err = client.acknowledge_job().job_id(&id).nonce("wrong").send().await.expect_err("bad nonce");
    assert!(err.into_service_error().is_invalid_nonce_exception());
    let ack =
        client.acknowledge_job().job_id(&id).nonce(job.nonce().expect("nonce")).send().await.expect("acknowledged");
    assert_eq!(ack.status().map(|s| s.as_str()), Some("InProgress"));
    let details = client.get_job_details().job_id(&id).send().await.expect("details");
    assert_eq!(details.job_details().and_then(|d| d.id()), Some(id.as_str()));

    // A continuation token and output variables together are refused, and the job is not consumed.
    let err = client
        .put_job_success_result()
        .job_id(&id)
        .continuation_token("half")
        .output_variables("BuildNumber", "1")
        .send()
        .await
        .expect_err("both");
    assert_eq!(err.message(), Some("A job can not contain both a continuation token and output variables."));

    client
        .put_job_success_result()
        .job_id(&id)
        .continuation_token("half-way")
        .execution_details(ExecutionDetails::builder().summary("compiling").percent_complete(50).build())
        .send()
        .await
        .expect("continued");
    let state = job_action_state(&server).await;
    assert_eq!(state["status"], "InProgress", "a continuation keeps the action running");
    assert_eq!(state["percentComplete"], 50);
    let second = next_job(&client).await;
    assert_ne!(second.id(), Some(id.as_str()), "a new job");
    assert_eq!(second.data().and_then(|d| d.continuation_token()), Some("half-way"));
    assert_eq!(
        second.data().and_then(|d| d.pipeline_context()).and_then(|c| c.action()).and_then(|a| a.action_execution_id()),
        context.action().and_then(|a| a.action_execution_id()),
        "for the same action execution"
    );
    let second_id = second.id().expect("id").to_string();
    client.acknowledge_job().job_id(&second_id).nonce(second.nonce().expect("nonce")).send().await.expect("ack");
    let success =
        || {
            client.put_job_success_result().job_id(&second_id).output_variables("BuildNumber", "42").execution_details(
                ExecutionDetails::builder().summary("built").external_execution_id("build-42").build(),
            )
        };
    success().send().await.expect("succeeded");
    success().send().await.expect("an identical repeat is accepted");
    let err = client
        .put_job_success_result()
        .job_id(&second_id)
        .output_variables("BuildNumber", "43")
        .send()
        .await
        .expect_err("conflict");
    assert_eq!(
        err.message().map(str::to_string),
        Some(format!(
            "The status of job with id {second_id} is already set to the desired value. It cannot be updated with the same status, but different result or output variables."
        ))
    );
    let failure = FailureDetails::builder().r#type(FailureType::JobFailed).message("late").build().expect("details");
    let err = client
        .put_job_failure_result()
        .job_id(&second_id)
        .failure_details(failure)
        .send()
        .await
        .expect_err("terminated");
    assert_eq!(err.message().map(str::to_string), Some(format!("Job with id {second_id} has already terminated")));

    eventually("the execution to succeed", || async {
        (execution_status(&client).await == PipelineExecutionStatus::Succeeded).then_some(())
    })
    .await;
    let state = job_action_state(&server).await;
    assert_eq!((state["summary"].as_str(), state["externalExecutionId"].as_str()), (Some("built"), Some("build-42")));
    let history = client.list_action_executions().pipeline_name("worked").send().await.expect("history");
    let ship = history.action_execution_details().iter().find(|d| d.action_name() == Some("Ship")).expect("ship");
    let resolved: HashMap<String, String> =
        ship.input().and_then(|i| i.resolved_configuration()).cloned().unwrap_or_default();
    assert_eq!(
        resolved.get("ObjectKey").map(String::as_str),
        Some("build-42.zip"),
        "output variables feed later actions"
    );
}

#[tokio::test]
async fn a_failed_job_fails_the_action_with_its_details() {
    let server = TestServer::fast().await;
    let client = setup(&server).await;
    let job = next_job(&client).await;
    let failure = FailureDetails::builder()
        .r#type(FailureType::ConfigurationError)
        .message("no such Jenkins job")
        .external_execution_id("jenkins-7")
        .build()
        .expect("details");
    client
        .put_job_failure_result()
        .job_id(job.id().expect("id"))
        .failure_details(failure)
        .send()
        .await
        .expect("failed");
    eventually("the execution to fail", || async {
        (execution_status(&client).await == PipelineExecutionStatus::Failed).then_some(())
    })
    .await;
    let state = job_action_state(&server).await;
    assert_eq!(state["errorDetails"], json!({"code": "ConfigurationError", "message": "no such Jenkins job"}));
    assert_eq!(state["externalExecutionId"], "jenkins-7");
}

#[tokio::test]
async fn unacknowledged_jobs_come_back_and_jobs_time_out_on_the_clock() {
    let server = TestServer::fast().await;
    let client = setup(&server).await;
    let job = next_job(&client).await;
    assert!(poll(&client, "web").await.is_empty(), "a handed-out job is invisible for a while");
    server.advance_clock(31.0).await;
    let again = poll(&client, "web").await;
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].id(), job.id(), "the same job, handed out again");
    assert_ne!(again[0].nonce(), job.nonce(), "with a new nonce");
    let err = client
        .acknowledge_job()
        .job_id(job.id().expect("id"))
        .nonce(job.nonce().expect("nonce"))
        .send()
        .await
        .expect_err("old nonce");
    assert!(err.into_service_error().is_invalid_nonce_exception());

    // Custom actions time out after 24 hours.
    server.advance_clock(24.0 * 3600.0).await;
    assert_eq!(execution_status(&client).await, PipelineExecutionStatus::Failed);
    assert_eq!(job_action_state(&server).await["status"], "Failed");
    let err = client.put_job_success_result().job_id(job.id().expect("id")).send().await.expect_err("timed out");
    assert!(err.into_service_error().is_invalid_job_state_exception());
}

#[tokio::test]
async fn poll_and_job_errors() {
    let server = TestServer::fast().await;
    let client = server.client();
    let aws = ActionTypeId::builder()
        .category(ActionCategory::Build)
        .owner(ActionOwner::Aws)
        .provider("CodeBuild")
        .version("1")
        .build()
        .expect("id");
    let err = client.poll_for_jobs().action_type_id(aws).send().await.expect_err("owner AWS");
    assert_eq!(err.code(), Some("ValidationException"));
    assert_eq!(err.message(), Some("ActionType with owner 'AWS' is not supported"));
    let err = client.poll_for_jobs().action_type_id(worker_type()).send().await.expect_err("no such type");
    assert!(err.into_service_error().is_action_type_not_found_exception());
    let unknown = "0d8a7e1c-1d2b-4c1e-9f3a-2b7c6d5e4f3a";
    let err = client.get_job_details().job_id(unknown).send().await.expect_err("unknown job");
    assert_eq!(err.message().map(str::to_string), Some(format!("Job with id '{unknown}' does not exist")));
    let err = client.acknowledge_job().job_id(unknown).nonce("n").send().await.expect_err("unknown job");
    assert!(err.into_service_error().is_job_not_found_exception());
    let err = client.put_job_success_result().job_id("not-a-uuid").send().await.expect_err("malformed");
    assert_eq!(err.code(), Some("ValidationException"));
}

// --- Partner (ThirdParty) jobs ---------------------------------------------------------------------------------------

fn partner_type() -> ActionTypeId {
    ActionTypeId::builder()
        .category(ActionCategory::Deploy)
        .owner(ActionOwner::ThirdParty)
        .provider("AcmeDeploy")
        .version("2")
        .build()
        .expect("id")
}

async fn register_partner(server: &TestServer) -> (String, String) {
    let body = json!({
        "category": "Deploy", "provider": "AcmeDeploy", "version": "2",
        "configurationProperties": [{"name": "Environment", "required": true, "key": true, "secret": false},
                                    {"name": "ApiKey", "required": false, "key": false, "secret": true}],
        "inputArtifactDetails": {"minimumCount": 1, "maximumCount": 1},
        "outputArtifactDetails": {"minimumCount": 0, "maximumCount": 0}
    });
    let response = server.control("POST", "/_emulator/third-party-action-types", &body).await;
    assert_eq!(response.status, 200, "{}", response.text());
    let registered = response.json();
    (
        registered["clientId"].as_str().expect("client id").to_string(),
        registered["clientToken"].as_str().expect("token").to_string(),
    )
}

async fn partner_pipeline(client: &Client) {
    client.create_pipeline().pipeline(partner_pipeline_declaration()).send().await.expect("pipeline");
}

fn partner_pipeline_declaration() -> aws_sdk_codepipeline::types::PipelineDeclaration {
    let at = |c: &str, o: &str, p: &str, v: &str| json!({"category": c, "owner": o, "provider": p, "version": v});
    let pipeline = json!({
        "name": "partnered", "roleArn": "arn:aws:iam::123456789012:role/r",
        "artifactStore": {"type": "S3", "location": "artifact-bucket"},
        "stages": [
            {"name": "Source", "actions": [{"name": "Src", "actionTypeId": at("Source", "AWS", "S3", "1"),
                "configuration": {"S3Bucket": "b", "S3ObjectKey": "k.zip"}, "outputArtifacts": [{"name": "Code"}]}]},
            {"name": "Deploy", "actions": [{"name": "Acme", "actionTypeId": at("Deploy", "ThirdParty", "AcmeDeploy", "2"),
                "configuration": {"Environment": "prod", "ApiKey": "k3y"}, "inputArtifacts": [{"name": "Code"}]}]}
        ]
    });
    sdk_json::pipeline(&pipeline)
}

#[tokio::test]
async fn a_partner_job_worker_uses_its_client_token() {
    let server = TestServer::fast().await;
    let client = server.client();
    let (client_id, token) = register_partner(&server).await;
    let listed = client.list_action_types().action_owner_filter(ActionOwner::ThirdParty).send().await.expect("lists");
    assert!(
        listed.action_types().iter().any(|t| t.id().is_some_and(|id| id.provider() == "AcmeDeploy")),
        "registered types are listed"
    );
    partner_pipeline(&client).await;

    let job = eventually("a partner job", || async {
        let out = client.poll_for_third_party_jobs().action_type_id(partner_type()).send().await.ok()?;
        out.jobs().first().cloned()
    })
    .await;
    assert_eq!(job.client_id(), Some(client_id.as_str()));
    let job_id = job.job_id().expect("job id").to_string();

    let err =
        client.get_third_party_job_details().job_id(&job_id).client_token("wrong").send().await.expect_err("token");
    assert!(err.into_service_error().is_invalid_client_token_exception());
    let details =
        client.get_third_party_job_details().job_id(&job_id).client_token(&token).send().await.expect("details");
    let details = details.job_details().expect("details");
    let config = details
        .data()
        .and_then(|d| d.action_configuration())
        .and_then(|c| c.configuration())
        .cloned()
        .unwrap_or_default();
    assert_eq!(config.get("ApiKey").map(String::as_str), Some("k3y"), "secrets in clear for the partner");
    let nonce = details.nonce().expect("nonce").to_string();
    let ack = client
        .acknowledge_third_party_job()
        .job_id(&job_id)
        .nonce(&nonce)
        .client_token(&token)
        .send()
        .await
        .expect("ack");
    assert_eq!(ack.status().map(|s| s.as_str()), Some("InProgress"));
    // The custom-action API does not serve partner jobs.
    let err = client.get_job_details().job_id(&job_id).send().await.expect_err("not a custom job");
    assert!(err.into_service_error().is_job_not_found_exception());

    let err = client
        .put_third_party_job_success_result()
        .job_id(&job_id)
        .client_token("wrong")
        .send()
        .await
        .expect_err("token");
    assert!(err.into_service_error().is_invalid_client_token_exception());
    client
        .put_third_party_job_success_result()
        .job_id(&job_id)
        .client_token(&token)
        .execution_details(ExecutionDetails::builder().summary("deployed by Acme").build())
        .send()
        .await
        .expect("succeeded");
    eventually("the execution to succeed", || async {
        let list = client.list_pipeline_executions().pipeline_name("partnered").send().await.ok()?;
        (list.pipeline_execution_summaries()[0].status() == Some(&PipelineExecutionStatus::Succeeded)).then_some(())
    })
    .await;

    // A failure through the partner API.
    client.start_pipeline_execution().name("partnered").send().await.expect("started");
    let job = eventually("another partner job", || async {
        let out = client.poll_for_third_party_jobs().action_type_id(partner_type()).send().await.ok()?;
        out.jobs().first().cloned()
    })
    .await;
    let failure = FailureDetails::builder()
        .r#type(FailureType::PermissionError)
        .message("no access to prod")
        .build()
        .expect("details");
    client
        .put_third_party_job_failure_result()
        .job_id(job.job_id().expect("id"))
        .client_token(&token)
        .failure_details(failure)
        .send()
        .await
        .expect("failed");
    eventually("the execution to fail", || async {
        let list = client.list_pipeline_executions().pipeline_name("partnered").send().await.ok()?;
        (list.pipeline_execution_summaries()[0].status() == Some(&PipelineExecutionStatus::Failed)).then_some(())
    })
    .await;
}

#[tokio::test]
async fn partner_types_load_from_a_file_and_survive_reset() {
    let path = std::env::temp_dir().join(format!("partners-{}.json", uuid::Uuid::new_v4()));
    let file = json!({"actionTypes": [{
        "category": "Deploy", "provider": "AcmeDeploy", "version": "2", "clientToken": "file-token",
        "configurationProperties": [{"name": "Environment", "required": true, "key": true, "secret": false},
                                    {"name": "ApiKey", "required": false, "key": false, "secret": true}],
        "inputArtifactDetails": {"minimumCount": 1, "maximumCount": 1},
        "outputArtifactDetails": {"minimumCount": 0, "maximumCount": 0}
    }]});
    std::fs::write(&path, file.to_string()).expect("written");
    let config = codepipeline_local::Config {
        action_duration_ms: 5,
        third_party_action_types: Some(path.clone()),
        ..Default::default()
    };
    let server = TestServer::with_config(config).await;
    let response = server.control("POST", "/_emulator/reset", &serde_json::Value::Null).await;
    assert_eq!(response.status, 200);
    let client = server.client();
    partner_pipeline(&client).await;
    let job = eventually("a partner job", || async {
        let out = client.poll_for_third_party_jobs().action_type_id(partner_type()).send().await.ok()?;
        out.jobs().first().cloned()
    })
    .await;
    client
        .get_third_party_job_details()
        .job_id(job.job_id().expect("id"))
        .client_token("file-token")
        .send()
        .await
        .expect("the file's token works");
    let err = client
        .poll_for_third_party_jobs()
        .action_type_id(
            ActionTypeId::builder()
                .category(ActionCategory::Deploy)
                .owner(ActionOwner::ThirdParty)
                .provider("Nobody")
                .version("1")
                .build()
                .expect("id"),
        )
        .send()
        .await
        .expect_err("unregistered");
    assert!(err.into_service_error().is_action_type_not_found_exception());
    let _ = std::fs::remove_file(path);
}

#[tokio::test]
async fn output_variables_over_the_quota_are_refused_and_the_job_stays_open() {
    let server = TestServer::fast().await;
    let client = setup(&server).await;
    let job = next_job(&client).await;
    let id = job.id().expect("id");
    let value = "v".repeat(1_000);
    // 130 variables of about 1 KB: over the 122,880-byte quota of an action's output variables.
    let mut oversized = client.put_job_success_result().job_id(id);
    for i in 0..130 {
        oversized = oversized.output_variables(format!("var{i}"), value.clone());
    }
    let err = oversized.send().await.expect_err("too large");
    assert!(err.into_service_error().is_output_variables_size_exceeded_exception());
    assert_eq!(job_action_state(&server).await["status"], "InProgress");
    client.put_job_success_result().job_id(id).output_variables("BuildNumber", "7").send().await.expect("fits");
    eventually("the execution to succeed", || async {
        (execution_status(&client).await == PipelineExecutionStatus::Succeeded).then_some(())
    })
    .await;
}

#[tokio::test]
async fn registered_partner_types_can_be_read_and_updated() {
    let server = TestServer::fast().await;
    let (_, token) = register_partner(&server).await;
    let id = json!({"category": "Deploy", "owner": "ThirdParty", "provider": "AcmeDeploy", "version": "2"});
    let got = server.call("GetActionType", &id.to_string()).await;
    assert_eq!(got.status, 200, "{}", got.text());
    let mut declaration = got.json()["actionType"].clone();
    assert_eq!(declaration["id"], id);
    let names: Vec<_> =
        declaration["properties"].as_array().expect("properties").iter().map(|p| p["name"].clone()).collect();
    assert_eq!(names, [json!("Environment"), json!("ApiKey")]);
    assert_eq!(declaration["properties"][1]["noEcho"], true, "the secret property is noEcho");

    // An update adds a required property: pipelines are validated against it, and the worker keeps its token.
    declaration["properties"]
        .as_array_mut()
        .expect("properties")
        .push(json!({"name": "Region", "optional": false, "key": false, "noEcho": false}));
    declaration["description"] = json!("Acme deployments");
    let response = server.call("UpdateActionType", &json!({"actionType": declaration}).to_string()).await;
    assert_eq!(response.status, 200, "{}", response.text());
    let got = server.call("GetActionType", &id.to_string()).await.json();
    assert_eq!(got["actionType"]["description"], "Acme deployments");
    let client = server.client();
    let err =
        client.create_pipeline().pipeline(partner_pipeline_declaration()).send().await.expect_err("missing Region");
    let message = err.into_service_error().meta().message().unwrap_or_default().to_string();
    assert!(message.contains("missing required configuration 'Region'"), "{message}");
    let listed = server.control("GET", "/_emulator/third-party-action-types", &serde_json::Value::Null).await.json();
    assert_eq!(listed["actionTypes"][0]["clientToken"], token.as_str(), "the client token survives the update");
}

#[tokio::test]
async fn with_an_s3_neighbour_a_job_worker_moves_its_artifacts_with_the_job_credentials() {
    let moto = crate::moto::Moto::start().await;
    moto.create_bucket("artifact-bucket").await;
    moto.seed_source("source-bucket", "k.zip").await;
    let environment =
        codepipeline_local::config::SdkEnvironment::from_variables([("AWS_ENDPOINT_URL_S3".to_string(), moto.url())]);
    let config = codepipeline_local::Config {
        action_duration_ms: 5,
        aws_access_key_id: Some("AKIANEIGHBOUR".into()),
        aws_secret_access_key: Some("neighbour-secret".into()),
        sdk_environment: environment,
        // The S3 source polls (AWS's default): its first execution comes from polling.
        poll_interval: std::time::Duration::from_millis(20),
        ..codepipeline_local::Config::default()
    };
    let server = TestServer::with_config(config).await;
    let client = setup(&server).await;
    let job = next_job(&client).await;
    let credentials = job.data().and_then(|d| d.artifact_credentials()).expect("credentials");
    assert_eq!(credentials.access_key_id(), "AKIANEIGHBOUR");
    assert_eq!(credentials.secret_access_key(), "neighbour-secret");
    assert!(!credentials.session_token().is_empty(), "AWS always sends one");

    // A worker downloads its input and uploads its output with those credentials, as on AWS.
    let sdk = aws_types::SdkConfig::builder()
        .behavior_version(aws_smithy_runtime_api::client::behavior_version::BehaviorVersion::latest())
        .endpoint_url(moto.url())
        .region(aws_types::region::Region::new("us-east-1"))
        .credentials_provider(aws_credential_types::provider::SharedCredentialsProvider::new(
            aws_credential_types::Credentials::new(
                credentials.access_key_id(),
                credentials.secret_access_key(),
                Some(credentials.session_token().to_string()),
                None,
                "job",
            ),
        ))
        .http_client(aws_smithy_http_client::Builder::new().build_http())
        .build();
    let s3 = aws_sdk_s3::Client::from_conf(aws_sdk_s3::config::Builder::from(&sdk).force_path_style(true).build());
    let data = job.data().expect("data");
    let location = |artifact: &aws_sdk_codepipeline::types::Artifact| {
        let at = artifact.location().and_then(|l| l.s3_location()).expect("an S3 location");
        (at.bucket_name().to_string(), at.object_key().to_string())
    };
    let (bucket, key) = location(&data.input_artifacts()[0]);
    let input = s3.get_object().bucket(&bucket).key(&key).send().await.expect("the input downloads");
    let input = input.body.collect().await.expect("reads").into_bytes();
    assert_eq!(input.as_ref(), moto.get_object("source-bucket", "k.zip").await.1.as_slice(), "the source's object");
    let (bucket, key) = location(&data.output_artifacts()[0]);
    let built = b"PK\x05\x06built-by-the-worker\0\0".to_vec();
    let body = aws_sdk_s3::primitives::ByteStream::from(built.clone());
    s3.put_object().bucket(&bucket).key(&key).body(body).send().await.expect("the output uploads");
    moto.create_bucket("site").await;
    let id = job.id().expect("id");
    client.acknowledge_job().job_id(id).nonce(job.nonce().expect("nonce")).send().await.expect("acknowledged");
    client.put_job_success_result().job_id(id).output_variables("BuildNumber", "7").send().await.expect("succeeds");
    eventually("the worker's output to be deployed", || async {
        let (status, bytes) = moto.get_object("site", "build-7.zip").await;
        (status == 200).then_some(bytes)
    })
    .await;
    assert_eq!(moto.get_object("site", "build-7.zip").await.1, built, "the next stage deployed what the worker wrote");

    // Without one, placeholders: nothing would accept them, and nothing real is handed out.
    let plain = TestServer::fast().await;
    let client = setup(&plain).await;
    let job = next_job(&client).await;
    let credentials = job.data().and_then(|d| d.artifact_credentials()).expect("credentials");
    assert_eq!(credentials.access_key_id(), "ASIACODEPIPELINELOCAL");
}
