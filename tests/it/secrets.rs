//! Secret configuration values are returned in clear only inside job data: masked in history and declarations, never
//! substituted into URLs, and never carried by a masked `****` into an action that changed.

use serde_json::{Value, json};

use crate::common::{TestServer, eventually};

fn at(category: &str, owner: &str, provider: &str) -> Value {
    json!({"category": category, "owner": owner, "provider": provider, "version": "1"})
}

/// A custom Build type `Worker` with a required key `Project`, a secret `Token` and an optional `Note`.
fn worker_type(settings: Value) -> Value {
    json!({"category": "Build", "provider": "Worker", "version": "1", "settings": settings,
        "configurationProperties": [
            {"name": "Project", "required": true, "key": true, "secret": false, "queryable": true},
            {"name": "Token", "required": true, "key": false, "secret": true},
            {"name": "Note", "required": false, "key": false, "secret": false}],
        "inputArtifactDetails": {"minimumCount": 0, "maximumCount": 1},
        "outputArtifactDetails": {"minimumCount": 0, "maximumCount": 0}})
}

/// GitHub (v1) source, whose OAuthToken is secret, then a custom Worker build whose Token is secret.
fn pipeline(token: &str, branch: &str) -> Value {
    json!({"name": "secretive", "roleArn": "arn:aws:iam::123456789012:role/r",
    "artifactStore": {"type": "S3", "location": "bucket"},
    "stages": [
        {"name": "Source", "actions": [{"name": "Src", "actionTypeId": at("Source", "ThirdParty", "GitHub"),
            "configuration": {"Owner": "org", "Repo": "app", "Branch": branch, "OAuthToken": token,
                "PollForSourceChanges": "false"},
            "outputArtifacts": [{"name": "Code"}]}]},
        {"name": "Build", "actions": [{"name": "Work", "actionTypeId": at("Build", "Custom", "Worker"),
            "configuration": {"Project": "web", "Token": "wt-#{codepipeline.PipelineExecutionId}"},
            "inputArtifacts": [{"name": "Code"}]}]}
    ]})
}

async fn create(server: &TestServer, token: &str) {
    let response = server.call("CreateCustomActionType", &worker_type(json!({})).to_string()).await;
    assert_eq!(response.status, 200, "{}", response.text());
    let response = server.call("CreatePipeline", &json!({"pipeline": pipeline(token, "main")}).to_string()).await;
    assert_eq!(response.status, 200, "{}", response.text());
}

/// The stored OAuthToken of the current version of `secretive`.
fn stored_token(server: &TestServer) -> String {
    let scope = codepipeline_local::state::Scope { account: "000000000000".into(), region: "us-east-1".into() };
    server.server.state().store().read(&scope, |data| {
        let definition = data.pipelines["secretive"].current();
        definition.stages[0].actions[0].configuration.as_ref().expect("configuration")["OAuthToken"].clone()
    })
}

/// Every string in a JSON document.
fn strings(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::String(s) => out.push(s.clone()),
        Value::Array(items) => items.iter().for_each(|v| strings(v, out)),
        Value::Object(map) => map.values().for_each(|v| strings(v, out)),
        _ => {}
    }
}

#[tokio::test]
async fn history_masks_secret_configuration_and_job_data_does_not() {
    let server = TestServer::fast().await;
    create(&server, "ghp-SECRET-1234").await;
    let job = eventually("the worker's job", || async {
        let poll = json!({"actionTypeId": at("Build", "Custom", "Worker"), "queryParam": {"Project": "web"}});
        let jobs = server.call("PollForJobs", &poll.to_string()).await.json();
        jobs["jobs"].as_array().and_then(|j| j.first().cloned())
    })
    .await;
    let execution = job["data"]["pipelineContext"]["pipelineExecutionId"].as_str().expect("execution").to_string();
    // Job data carries the secret in clear, resolved.
    assert_eq!(job["data"]["actionConfiguration"]["configuration"]["Token"], format!("wt-{execution}"));

    let history = server.call("ListActionExecutions", r#"{"pipelineName": "secretive"}"#).await.json();
    let details = history["actionExecutionDetails"].as_array().expect("details");
    let work = details.iter().find(|d| d["actionName"] == "Work").expect("the worker ran");
    assert_eq!(work["input"]["configuration"], json!({"Project": "web", "Token": "****"}));
    assert_eq!(work["input"]["resolvedConfiguration"], json!({"Project": "web", "Token": "****"}));
    let source = details.iter().find(|d| d["actionName"] == "Src").expect("the source ran");
    assert_eq!(source["input"]["configuration"]["OAuthToken"], "****");
    assert_eq!(source["input"]["resolvedConfiguration"]["OAuthToken"], "****");
    assert_eq!(source["input"]["configuration"]["Branch"], "main", "other values are shown");

    // Nowhere outside job data.
    for (operation, body) in [
        ("ListActionExecutions", json!({"pipelineName": "secretive"})),
        ("GetPipeline", json!({"name": "secretive"})),
        ("GetPipelineState", json!({"name": "secretive"})),
        ("GetPipelineExecution", json!({"pipelineName": "secretive", "pipelineExecutionId": execution})),
        ("ListPipelineExecutions", json!({"pipelineName": "secretive"})),
    ] {
        let mut found = Vec::new();
        strings(&server.call(operation, &body.to_string()).await.json(), &mut found);
        for text in found {
            assert!(!text.contains("ghp-SECRET") && !text.contains(&format!("wt-{execution}")), "{operation}: {text}");
        }
    }
}

#[tokio::test]
async fn url_templates_may_not_name_secret_or_optional_properties() {
    let server = TestServer::start().await;
    for (template, why) in [
        ("https://ci.example.test/{Config:Token}", "which is secret"),
        ("https://ci.example.test/{Config:Note}", "which is not required"),
        ("https://ci.example.test/{Config:Nothing}", "does not declare"),
    ] {
        for member in ["entityUrlTemplate", "executionUrlTemplate", "revisionUrlTemplate"] {
            let body = worker_type(json!({member: template}));
            let message = server.error("CreateCustomActionType", &body.to_string(), "ValidationException").await;
            assert!(message.contains(why) && message.contains(member), "{message}");
            let mut partner = body.clone();
            partner.as_object_mut().map(|o| o.remove("configurationProperties"));
            partner["configurationProperties"] = body["configurationProperties"].clone();
            let response = server.control("POST", "/_emulator/third-party-action-types", &partner).await;
            assert_eq!(response.status, 400, "{}", response.text());
            assert!(response.json()["message"].as_str().is_some_and(|m| m.contains(why)), "{}", response.text());
        }
    }
    let fine = worker_type(json!({"entityUrlTemplate": "https://ci.example.test/{Config:Project}",
        "executionUrlTemplate": "https://ci.example.test/{Config:Project}/{ExternalExecutionId}"}));
    let response = server.call("CreateCustomActionType", &fine.to_string()).await;
    assert_eq!(response.status, 200, "{}", response.text());
    // UpdateActionType holds partner and built-in ThirdParty types to the same rule.
    let github = json!({"category": "Source", "owner": "ThirdParty", "provider": "GitHub", "version": "1"});
    let mut declaration = server.call("GetActionType", &github.to_string()).await.json()["actionType"].clone();
    declaration["urls"]["entityUrlTemplate"] = json!("https://github.com/{Config:OAuthToken}");
    let body = json!({"actionType": declaration}).to_string();
    let message = server.error("UpdateActionType", &body, "ValidationException").await;
    assert!(message.contains("which is secret"), "{message}");
}

#[tokio::test]
async fn a_masked_secret_is_kept_only_when_nothing_else_of_its_action_changed() {
    let server = TestServer::fast().await;
    create(&server, "ghp-SECRET-1234").await;
    let echo = server.call("GetPipeline", r#"{"name": "secretive"}"#).await.json()["pipeline"].clone();
    assert_eq!(echo["stages"][0]["actions"][0]["configuration"]["OAuthToken"], "****");

    // Sent back unchanged (while the pipeline around changes), the secret is kept.
    let mut update = echo.clone();
    let deploy = json!({"name": "Deploy", "actions": [{"name": "Ship", "actionTypeId": at("Deploy", "AWS", "S3"),
        "configuration": {"BucketName": "site", "Extract": "true"}, "inputArtifacts": [{"name": "Code"}]}]});
    update["stages"].as_array_mut().expect("stages").push(deploy);
    let response = server.call("UpdatePipeline", &json!({"pipeline": update}).to_string()).await;
    assert_eq!(response.status, 200, "{}", response.text());
    assert_eq!(stored_token(&server), "ghp-SECRET-1234");

    // Another value of the same action changed: the masked value does not carry the secret over.
    let mut moved = echo.clone();
    moved["stages"][0]["actions"][0]["configuration"]["Branch"] = json!("attacker-branch");
    let message = server
        .error("UpdatePipeline", &json!({"pipeline": moved}).to_string(), "InvalidActionDeclarationException")
        .await;
    assert!(message.contains("OAuthToken") && message.contains("Src"), "{message}");
    let version = server.call("GetPipeline", r#"{"name": "secretive"}"#).await.json()["pipeline"]["version"].clone();
    assert_eq!(version, 2, "the refused update stored nothing");

    // The attack: keep the name and the masked token, but make it an action of a custom type that hands its
    // configuration to a job worker.
    let properties: Vec<Value> = ["Owner", "Repo", "Branch", "OAuthToken", "PollForSourceChanges"]
        .iter()
        .map(|n| json!({"name": n, "required": false, "key": false, "secret": *n == "OAuthToken"}))
        .collect();
    let thief = json!({"category": "Source", "provider": "Thief", "version": "1",
        "configurationProperties": properties,
        "inputArtifactDetails": {"minimumCount": 0, "maximumCount": 0},
        "outputArtifactDetails": {"minimumCount": 1, "maximumCount": 1}});
    assert_eq!(server.call("CreateCustomActionType", &thief.to_string()).await.status, 200);
    let mut stolen = echo.clone();
    stolen["stages"][0]["actions"][0]["actionTypeId"] = at("Source", "Custom", "Thief");
    let message = server
        .error("UpdatePipeline", &json!({"pipeline": stolen}).to_string(), "InvalidActionDeclarationException")
        .await;
    assert!(message.contains("OAuthToken"), "{message}");
    let poll = json!({"actionTypeId": at("Source", "Custom", "Thief")});
    let jobs = server.call("PollForJobs", &poll.to_string()).await.json();
    assert_eq!(jobs["jobs"], json!([]), "no job hands the secret out");
    assert_eq!(stored_token(&server), "ghp-SECRET-1234");

    // A new secret value sent in clear replaces the old one.
    let mut replaced = echo.clone();
    replaced["stages"][0]["actions"][0]["configuration"]["OAuthToken"] = json!("ghp-NEW-5678");
    replaced["stages"][0]["actions"][0]["configuration"]["Branch"] = json!("release");
    let response = server.call("UpdatePipeline", &json!({"pipeline": replaced}).to_string()).await;
    assert_eq!(response.status, 200, "{}", response.text());
    assert_eq!(stored_token(&server), "ghp-NEW-5678");
}
