//! Pipelines started from outside the API: V1 webhook deliveries and source changes (issue 13).

use aws_sdk_codepipeline::Client;
use codepipeline_local::Config;
use hmac::{Hmac, KeyInit, Mac};
use serde_json::{Value, json};

use crate::common::{HttpResponse, TestServer, eventually, pipeline_json};

const SECRET: &str = "2f9c0c1e6b7d4a58";
const COMMIT: &str = "9f2c4e1a7b3d5c6e8f0a1b2c3d4e5f6a7b8c9d0e";

/// The test pipeline (`pipeline_json`) with its source action replaced: `provider` (owner `owner`) and
/// `configuration`; its other members are added as given.
fn with_source(name: &str, owner: &str, provider: &str, configuration: Value, extra: Value) -> String {
    let mut pipeline: Value = serde_json::from_str(&pipeline_json(name)).expect("json");
    let source = &mut pipeline["stages"][0]["actions"][0];
    source["actionTypeId"]["owner"] = json!(owner);
    source["actionTypeId"]["provider"] = json!(provider);
    source["configuration"] = configuration;
    if let (Some(target), Some(extra)) = (pipeline.as_object_mut(), extra.as_object()) {
        target.extend(extra.clone());
    }
    json!({"pipeline": pipeline}).to_string()
}

/// A V1 pipeline whose source is a GitHub (OAuth) action on acme/web, branch main.
fn github_pipeline(name: &str) -> String {
    let configuration = json!({"Owner": "acme", "Repo": "web", "Branch": "main", "OAuthToken": "gh-token",
        "PollForSourceChanges": "false"});
    with_source(name, "ThirdParty", "GitHub", configuration, json!({}))
}

/// Creates a webhook on pipeline `site` and returns its URL's path.
async fn webhook(server: &TestServer, name: &str, authentication: &str, configuration: Value) -> String {
    let body = json!({"webhook": {
        "name": name, "targetPipeline": "site", "targetAction": "Source",
        "filters": [
            {"jsonPath": "$.ref", "matchEquals": "refs/heads/{Branch}"},
            {"jsonPath": "$.repository.full_name", "matchEquals": "{Owner}/{Repo}"}
        ],
        "authentication": authentication, "authenticationConfiguration": configuration
    }});
    let response = server.call("PutWebhook", &body.to_string()).await;
    assert_eq!(response.status, 200, "{}", response.text());
    let url = response.json()["webhook"]["url"].as_str().expect("url").to_string();
    let path = url.find("/webhooks/us-east-1/").map(|at| url[at..].to_string());
    path.unwrap_or_else(|| panic!("a webhook URL on this server: {url}"))
}

fn push(branch: &str) -> String {
    json!({
        "ref": format!("refs/heads/{branch}"), "before": "1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d", "after": COMMIT,
        "created": false, "deleted": false,
        "head_commit": {"id": COMMIT, "message": "Tune cache headers", "timestamp": "2026-03-02T10:14:55+01:00"},
        "repository": {"full_name": "acme/web", "default_branch": "main"}
    })
    .to_string()
}

fn sign(body: &str) -> String {
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(SECRET.as_bytes()).expect("key");
    mac.update(body.as_bytes());
    let bytes = mac.finalize().into_bytes();
    format!("sha256={}", bytes.iter().map(|b| format!("{b:02x}")).collect::<String>())
}

fn sign_sha1(body: &str) -> String {
    let mut mac = Hmac::<sha1::Sha1>::new_from_slice(SECRET.as_bytes()).expect("key");
    mac.update(body.as_bytes());
    let bytes = mac.finalize().into_bytes();
    format!("sha1={}", bytes.iter().map(|b| format!("{b:02x}")).collect::<String>())
}

async fn deliver(server: &TestServer, path: &str, headers: &[(&str, &str)], body: &str) -> HttpResponse {
    let mut all = vec![("Content-Type", "application/json")];
    all.extend_from_slice(headers);
    server.connect().await.request("POST", path, &all, body.as_bytes()).await
}

async fn execution_count(client: &Client, pipeline: &str) -> usize {
    let listed = client.list_pipeline_executions().pipeline_name(pipeline).send().await.expect("lists");
    listed.pipeline_execution_summaries().len()
}

#[tokio::test]
async fn a_signed_github_push_starts_the_webhook_target_with_its_commit() {
    let server = TestServer::fast().await;
    let client = server.client();
    assert_eq!(server.call("CreatePipeline", &github_pipeline("site")).await.status, 200);
    let path = webhook(&server, "github", "GITHUB_HMAC", json!({"SecretToken": SECRET})).await;
    let before = execution_count(&client, "site").await;

    // Unsigned, wrongly signed: 403, nothing starts.
    let body = push("main");
    let unsigned = deliver(&server, &path, &[("X-GitHub-Event", "push")], &body).await;
    assert_eq!(unsigned.status, 403, "{}", unsigned.text());
    assert_eq!(unsigned.json()["__type"], "ForbiddenException");
    let forged = sign(&push("dev"));
    let wrong = deliver(&server, &path, &[("X-GitHub-Event", "push"), ("X-Hub-Signature-256", &forged)], &body).await;
    assert_eq!(wrong.status, 403, "{}", wrong.text());

    // A ping and a push to another branch are answered and start nothing.
    let ping = json!({"zen": "Keep calm and ship.", "hook_id": 1, "repository": {"full_name": "acme/web"}}).to_string();
    let pinged =
        deliver(&server, &path, &[("X-GitHub-Event", "ping"), ("X-Hub-Signature-256", &sign(&ping))], &ping).await;
    assert_eq!((pinged.status, pinged.json()["started"].clone()), (200, json!(false)), "{}", pinged.text());
    let other = push("dev");
    let filtered =
        deliver(&server, &path, &[("X-GitHub-Event", "push"), ("X-Hub-Signature-256", &sign(&other))], &other).await;
    assert_eq!(filtered.status, 200, "{}", filtered.text());
    assert_eq!(filtered.json()["started"], false);
    let reason = filtered.json()["reason"].as_str().unwrap_or_default().to_string();
    assert!(reason.starts_with("Filter 1 ($.ref) did not match"), "{reason}");
    assert!(reason.contains("refs/heads/dev"), "{reason}");
    assert_eq!(execution_count(&client, "site").await, before);

    // A signed push to main starts the pipeline on exactly the pushed commit.
    let started =
        deliver(&server, &path, &[("X-GitHub-Event", "push"), ("X-Hub-Signature-256", &sign(&body))], &body).await;
    assert_eq!(started.status, 200, "{}", started.text());
    let answer = started.json();
    assert_eq!((answer["started"].clone(), answer["pipelineName"].clone()), (json!(true), json!("site")));
    let id = answer["pipelineExecutionId"].as_str().expect("id").to_string();
    let execution = eventually("the source revision", || async {
        let got = client.get_pipeline_execution().pipeline_name("site").pipeline_execution_id(&id).send().await.ok()?;
        let execution = got.pipeline_execution()?.clone();
        (!execution.artifact_revisions().is_empty()).then_some(execution)
    })
    .await;
    let trigger = execution.trigger().expect("trigger");
    assert_eq!(trigger.trigger_type().map(|t| t.as_str()), Some("Webhook"));
    assert_eq!(trigger.trigger_detail(), Some("arn:aws:codepipeline:us-east-1:000000000000:webhook:github"));
    let revision = &execution.artifact_revisions()[0];
    assert_eq!((revision.revision_id(), revision.revision_summary()), (Some(COMMIT), Some("Tune cache headers")));
    let listed = client.list_webhooks().send().await.expect("lists");
    assert!(listed.webhooks()[0].last_triggered().is_some(), "lastTriggered is set");

    // GitHub's older SHA-1 signature is accepted too.
    let sha1 =
        deliver(&server, &path, &[("X-GitHub-Event", "push"), ("X-Hub-Signature", &sign_sha1(&body))], &body).await;
    assert_eq!((sha1.status, sha1.json()["started"].clone()), (200, json!(true)), "{}", sha1.text());

    // GitHub's form-encoded deliveries (`payload=<JSON>`) are signed over the form body.
    let form = format!("payload={}", percent_encoding::utf8_percent_encode(&body, percent_encoding::NON_ALPHANUMERIC));
    let headers = [
        ("Content-Type", "application/x-www-form-urlencoded"),
        ("X-GitHub-Event", "push"),
        ("X-Hub-Signature-256", &sign(&form)),
    ];
    let posted = server.connect().await.request("POST", &path, &headers, form.as_bytes()).await;
    assert_eq!((posted.status, posted.json()["started"].clone()), (200, json!(true)), "{}", posted.text());

    // A signed body that is not JSON is a 400; an unknown webhook a 404; neither starts anything.
    let count = execution_count(&client, "site").await;
    let junk = "not json";
    let refused = deliver(&server, &path, &[("X-Hub-Signature-256", &sign(junk))], junk).await;
    assert_eq!(refused.status, 400, "{}", refused.text());
    let unknown = deliver(&server, "/webhooks/us-east-1/0000", &[], &body).await;
    assert_eq!((unknown.status, unknown.json()["__type"].clone()), (404, json!("NotFoundException")));
    assert_eq!(execution_count(&client, "site").await, count);
}

#[tokio::test]
async fn ip_webhooks_check_the_client_address() {
    let server = TestServer::fast().await;
    assert_eq!(server.call("CreatePipeline", &github_pipeline("site")).await.status, 200);
    let loopback = webhook(&server, "local", "IP", json!({"AllowedIPRange": "127.0.0.0/8"})).await;
    let private = webhook(&server, "private", "IP", json!({"AllowedIPRange": "10.0.0.0/8"})).await;
    let open = webhook(&server, "open", "UNAUTHENTICATED", json!({})).await;
    let body = push("main");
    assert_eq!(deliver(&server, &loopback, &[], &body).await.json()["started"], true);
    assert_eq!(deliver(&server, &open, &[], &body).await.json()["started"], true);
    let refused = deliver(&server, &private, &[("X-Forwarded-For", "10.1.2.3")], &body).await;
    assert_eq!(refused.status, 403, "X-Forwarded-For is not trusted by default: {}", refused.text());

    let trusting = TestServer::with_config(Config { trust_forwarded_for: true, ..Config::default() }).await;
    assert_eq!(trusting.call("CreatePipeline", &github_pipeline("site")).await.status, 200);
    let private = webhook(&trusting, "private", "IP", json!({"AllowedIPRange": "10.0.0.0/8"})).await;
    let accepted = deliver(&trusting, &private, &[("X-Forwarded-For", "10.1.2.3, 127.0.0.1")], &body).await;
    assert_eq!((accepted.status, accepted.json()["started"].clone()), (200, json!(true)), "{}", accepted.text());
    let outside = deliver(&trusting, &private, &[("X-Forwarded-For", "192.0.2.1")], &body).await;
    assert_eq!(outside.status, 403);
}

/// A pipeline whose S3 source watches `key` in source-bucket, with the given PollForSourceChanges (absent: AWS's
/// default, true).
fn s3_pipeline(name: &str, key: &str, polls: Option<&str>) -> String {
    let mut declaration: Value = serde_json::from_str(&pipeline_json(name)).expect("json");
    let configuration = &mut declaration["stages"][0]["actions"][0]["configuration"];
    configuration["S3ObjectKey"] = json!(key);
    if let Some(polls) = polls {
        configuration["PollForSourceChanges"] = json!(polls);
    }
    json!({"pipeline": declaration}).to_string()
}

async fn source_change(server: &TestServer, body: Value) -> HttpResponse {
    server.control("POST", "/_emulator/source-changes", &body).await
}

fn started(answer: &Value) -> Vec<(String, String)> {
    let mut started: Vec<(String, String)> = answer["started"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|s| {
            (s["pipelineName"].as_str().unwrap_or("").into(), s["pipelineExecutionId"].as_str().unwrap_or("").into())
        })
        .collect();
    started.sort();
    started
}

async fn source_revision(client: &Client, pipeline: &str, id: &str) -> aws_sdk_codepipeline::types::PipelineExecution {
    eventually("the source revision", || async {
        let got =
            client.get_pipeline_execution().pipeline_name(pipeline).pipeline_execution_id(id).send().await.ok()?;
        let execution = got.pipeline_execution()?.clone();
        (!execution.artifact_revisions().is_empty()).then_some(execution)
    })
    .await
}

#[tokio::test]
async fn an_s3_upload_starts_every_pipeline_watching_the_object() {
    let server = TestServer::fast().await;
    let client = server.client();
    for (name, key, polls) in
        [("polling", "app.zip", None), ("events", "app.zip", Some("false")), ("elsewhere", "other.zip", None)]
    {
        assert_eq!(server.call("CreatePipeline", &s3_pipeline(name, key, polls)).await.status, 200);
    }
    let change =
        json!({"provider": "S3", "bucket": "source-bucket", "key": "app.zip", "versionId": "v2.Qx7pL2vN9kRt4"});
    let response = source_change(&server, change).await;
    assert_eq!(response.status, 200, "{}", response.text());
    let answer = response.json();
    let names: Vec<String> = started(&answer).into_iter().map(|(name, _)| name).collect();
    assert_eq!(names, ["events", "polling"]);
    assert_eq!(answer["skipped"], json!([]));
    for (name, id) in started(&answer) {
        let execution = source_revision(&client, &name, &id).await;
        assert_eq!(execution.artifact_revisions()[0].revision_id(), Some("v2.Qx7pL2vN9kRt4"), "{name}");
        let trigger = execution.trigger().expect("trigger");
        let (kind, detail) = (trigger.trigger_type().map(|t| t.as_str().to_string()), trigger.trigger_detail());
        if name == "polling" {
            assert_eq!((kind.as_deref(), detail), (Some("PollForSourceChanges"), Some("Source")));
        } else {
            assert_eq!(kind.as_deref(), Some("CloudWatchEvent"));
            assert!(detail.is_some_and(|d| d.starts_with("arn:aws:events:us-east-1:000000000000:rule/")), "{detail:?}");
        }
    }
    // The object's current version is now v2: a manual start picks it up too, with a stable ETag.
    let manual = client.start_pipeline_execution().name("elsewhere").send().await.expect("starts");
    let id = manual.pipeline_execution_id().expect("id").to_string();
    let other = source_revision(&client, "elsewhere", &id).await;
    assert_ne!(other.artifact_revisions()[0].revision_id(), Some("v2.Qx7pL2vN9kRt4"), "another object");
    let manual = client.start_pipeline_execution().name("polling").send().await.expect("starts");
    let id = manual.pipeline_execution_id().expect("id").to_string();
    let execution = source_revision(&client, "polling", &id).await;
    assert_eq!(execution.artifact_revisions()[0].revision_id(), Some("v2.Qx7pL2vN9kRt4"));

    // S3's own EventBridge event works the same; without a version id, the upload gets a new one.
    let event = json!({"version": "0", "detail-type": "Object Created", "source": "aws.s3", "account": "111122223333",
        "region": "us-east-1", "detail": {"bucket": {"name": "source-bucket"}, "object": {"key": "other.zip"}}});
    let response = source_change(&server, event).await;
    assert_eq!(response.status, 200, "{}", response.text());
    let started = started(&response.json());
    assert_eq!(started.len(), 1);
    let execution = source_revision(&client, "elsewhere", &started[0].1).await;
    let version = execution.artifact_revisions()[0].revision_id().unwrap_or_default().to_string();
    assert_eq!(version.len(), 32, "{version}");

    // An upload nothing reports only changes what later executions pick up.
    let quiet = json!({"provider": "S3", "bucket": "source-bucket", "key": "app.zip", "versionId": "v3", "startPipelines": false});
    let answer = source_change(&server, quiet).await.json();
    assert_eq!((answer["started"].clone(), answer["skipped"].clone()), (json!([]), json!([])), "{answer}");
    let manual = client.start_pipeline_execution().name("events").send().await.expect("starts");
    let id = manual.pipeline_execution_id().expect("id").to_string();
    assert_eq!(source_revision(&client, "events", &id).await.artifact_revisions()[0].revision_id(), Some("v3"));

    // Bad bodies are 400s and start nothing.
    for bad in [json!({"provider": "S3", "bucket": "source-bucket"}), json!({"provider": "GCS"}), json!([1])] {
        let response = source_change(&server, bad.clone()).await;
        assert_eq!(response.status, 400, "{bad}: {}", response.text());
    }
}

#[tokio::test]
async fn ecr_pushes_and_codecommit_commits_start_their_pipelines() {
    let server = TestServer::fast().await;
    let client = server.client();
    let images = with_source("images", "AWS", "ECR", json!({"RepositoryName": "web-app"}), json!({}));
    assert_eq!(server.call("CreatePipeline", &images).await.status, 200);
    let configuration = json!({"RepositoryName": "web-app", "BranchName": "main", "PollForSourceChanges": "false"});
    let repo = with_source("repo", "AWS", "CodeCommit", configuration, json!({}));
    assert_eq!(server.call("CreatePipeline", &repo).await.status, 200);

    let digest = "sha256:3b6f1c0a9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f4a3b2c1d0e9f8a7b6c5d4e3f2a";
    let push = json!({"version": "0", "detail-type": "ECR Image Action", "source": "aws.ecr", "detail": {
        "result": "SUCCESS", "repository-name": "web-app", "action-type": "PUSH", "image-tag": "latest",
        "image-digest": digest}});
    let answer = source_change(&server, push).await.json();
    let started_images = started(&answer);
    assert_eq!(started_images.len(), 1, "{answer}");
    let execution = source_revision(&client, "images", &started_images[0].1).await;
    assert_eq!(execution.artifact_revisions()[0].revision_id(), Some(digest));
    assert_eq!(execution.trigger().and_then(|t| t.trigger_type()).map(|t| t.as_str()), Some("CloudWatchEvent"));
    let other_tag = json!({"provider": "ECR", "repositoryName": "web-app", "imageTag": "v2"});
    assert_eq!(source_change(&server, other_tag).await.json()["started"], json!([]));

    let commit = json!({"version": "0", "detail-type": "CodeCommit Repository State Change", "source": "aws.codecommit",
        "detail": {"event": "referenceUpdated", "repositoryName": "web-app", "referenceType": "branch",
                   "referenceName": "main", "commitId": COMMIT}});
    let answer = source_change(&server, commit).await.json();
    let started_repo = started(&answer);
    assert_eq!(started_repo.len(), 1, "{answer}");
    let execution = source_revision(&client, "repo", &started_repo[0].1).await;
    assert_eq!(execution.artifact_revisions()[0].revision_id(), Some(COMMIT));
    let deleted = json!({"detail-type": "CodeCommit Repository State Change", "source": "aws.codecommit",
        "detail": {"event": "referenceDeleted", "repositoryName": "web-app", "referenceType": "branch",
                   "referenceName": "main"}});
    let ignored = source_change(&server, deleted).await.json();
    assert_eq!(ignored["started"], json!([]));
    assert!(ignored["ignored"].is_string(), "{ignored}");
}

const CONNECTION: &str =
    "arn:aws:codeconnections:us-east-1:000000000000:connection/6d3a8b0e-1f2c-4d5e-9a7b-0c1d2e3f4a5b";

/// A V2 pipeline whose source reads example-org/web-app (branch main) through a connection.
fn connection_pipeline(name: &str, configuration: Value, triggers: Option<Value>) -> String {
    let mut config =
        json!({"ConnectionArn": CONNECTION, "FullRepositoryId": "example-org/web-app", "BranchName": "main"});
    if let (Some(target), Some(extra)) = (config.as_object_mut(), configuration.as_object()) {
        target.extend(extra.clone());
    }
    let mut extra = json!({"pipelineType": "V2"});
    if let Some(triggers) = triggers {
        extra["triggers"] = triggers;
    }
    with_source(name, "AWS", "CodeStarSourceConnection", config, extra)
}

fn names(list: &Value) -> Vec<String> {
    let mut names: Vec<String> =
        list.as_array().into_iter().flatten().filter_map(|s| s["pipelineName"].as_str().map(str::to_string)).collect();
    names.sort();
    names
}

async fn git(server: &TestServer, path: &str, body: Value) -> Value {
    let response = server.control("POST", path, &body).await;
    assert_eq!(response.status, 200, "{}", response.text());
    response.json()
}

/// The output variables of the source action of an execution, once it has run.
async fn source_variables(client: &Client, pipeline: &str, id: &str) -> std::collections::HashMap<String, String> {
    eventually("the source action's output", || async {
        let filter = aws_sdk_codepipeline::types::ActionExecutionFilter::builder().pipeline_execution_id(id).build();
        let listed = client.list_action_executions().pipeline_name(pipeline).filter(filter).send().await.ok()?;
        let source = listed.action_execution_details().iter().find(|d| d.action_name() == Some("Source"))?;
        source.output()?.output_variables().filter(|v| !v.is_empty()).cloned()
    })
    .await
}

#[tokio::test]
async fn git_pushes_and_pull_requests_start_the_pipelines_that_take_them() {
    let server = TestServer::fast().await;
    let client = server.client();
    let triggers = json!([{"providerType": "CodeStarSourceConnection", "gitConfiguration": {
        "sourceActionName": "Source",
        "push": [{"branches": {"includes": ["main", "release/*"]}, "filePaths": {"includes": ["src/**"], "excludes": ["**/*.md"]}}],
        "pullRequest": [{"events": ["OPEN", "UPDATED"], "branches": {"includes": ["main"]}}]}}]);
    for (name, configuration, triggers) in [
        ("default", json!({}), None),
        ("filtered", json!({}), Some(triggers)),
        ("quiet", json!({"DetectChanges": "false"}), None),
        ("elsewhere", json!({"FullRepositoryId": "example-org/other"}), None),
    ] {
        let created = server.call("CreatePipeline", &connection_pipeline(name, configuration, triggers)).await;
        assert_eq!(created.status, 200, "{}", created.text());
    }

    // GetPipeline shows the push trigger AWS adds to a V2 pipeline that declares none, on the action's branch.
    let shown = |name: &str| {
        let server = &server;
        let name = name.to_string();
        async move {
            server.call("GetPipeline", &json!({"name": name}).to_string()).await.json()["pipeline"]["triggers"].clone()
        }
    };
    let default_trigger = json!([{"providerType": "CodeStarSourceConnection", "gitConfiguration": {
        "sourceActionName": "Source", "push": [{"branches": {"includes": ["main"]}}]}}]);
    assert_eq!(shown("default").await, default_trigger);
    assert_eq!(shown("quiet").await, Value::Null, "DetectChanges false: no default trigger");
    assert_eq!(shown("filtered").await[0]["gitConfiguration"]["pullRequest"][0]["events"], json!(["OPEN", "UPDATED"]));

    // A push to main that changes source files: both the default detection and the trigger take it.
    let push = json!({"repository": "example-org/web-app", "branch": "main", "commitId": COMMIT,
        "commitMessage": "Tune cache headers", "filePaths": ["src/cache.rs", "README.md"]});
    let answer = git(&server, "/_emulator/git/push", push).await;
    assert_eq!(names(&answer["started"]), ["default", "filtered"], "{answer}");
    assert_eq!(names(&answer["skipped"]), ["quiet"], "{answer}");
    let reason = answer["skipped"][0]["reason"].as_str().unwrap_or_default();
    assert!(reason.contains("DetectChanges is false"), "{reason}");
    for started in answer["started"].as_array().into_iter().flatten() {
        let (pipeline, id) =
            (started["pipelineName"].as_str().expect("name"), started["pipelineExecutionId"].as_str().expect("id"));
        let execution = source_revision(&client, pipeline, id).await;
        let trigger = execution.trigger().expect("trigger");
        let expected = if pipeline == "default" { "Webhook" } else { "WebhookV2" };
        assert_eq!(trigger.trigger_type().map(|t| t.as_str()), Some(expected), "{pipeline}");
        assert_eq!(trigger.trigger_detail(), Some(CONNECTION));
        let revision = &execution.artifact_revisions()[0];
        assert_eq!(revision.revision_id(), Some(COMMIT));
        let url = revision.revision_url().unwrap_or_default();
        assert!(url.contains("referenceType=COMMIT&FullRepositoryId=example-org/web-app"), "{url}");
        assert!(url.ends_with(&format!("&Commit={COMMIT}")), "{url}");
        let summary: Value = serde_json::from_str(revision.revision_summary().unwrap_or("{}")).expect("JSON summary");
        assert_eq!(summary["CommitMessage"], "Tune cache headers");
        let variables = source_variables(&client, pipeline, id).await;
        assert_eq!(variables.get("CommitId").map(String::as_str), Some(COMMIT));
        assert_eq!(variables.get("BranchName").map(String::as_str), Some("main"));
        assert_eq!(variables.get("ConnectionArn").map(String::as_str), Some(CONNECTION));
        // The STARTED event's trigger tells the commit, as AWS's git-triggered events do.
        let events = server.control("GET", &format!("/_emulator/events?executionId={id}"), &Value::Null).await.json();
        let trigger = &events["events"][0]["event"]["detail"]["execution-trigger"];
        assert_eq!(trigger["trigger-type"], expected, "{trigger}");
        assert_eq!((trigger["commit-id"].clone(), trigger["branch-name"].clone()), (json!(COMMIT), json!("main")));
        assert_eq!(trigger["commit-message"], "Tune cache headers");
        assert_eq!(trigger["connection-arn"], CONNECTION);
        assert_eq!(trigger["full-repository-name"], "example-org/web-app");
    }

    // Documentation only: the trigger's file filter refuses it; a feature branch is nobody's.
    let docs = json!({"repository": "example-org/web-app", "branch": "main", "commitId": "1111111111111111111111111111111111111111",
        "filePaths": ["src/guide.md"]});
    let answer = git(&server, "/_emulator/git/push", docs).await;
    assert_eq!(names(&answer["started"]), ["default"], "{answer}");
    let feature = json!({"repository": "example-org/web-app", "branch": "feature/x", "commitId": "2222222222222222222222222222222222222222"});
    let answer = git(&server, "/_emulator/git/push", feature).await;
    assert_eq!(answer["started"], json!([]), "{answer}");
    let release = json!({"repository": "example-org/web-app", "branch": "release/2", "commitId": "3333333333333333333333333333333333333333",
        "filePaths": ["src/lib.rs"]});
    assert_eq!(names(&git(&server, "/_emulator/git/push", release).await["started"]), ["filtered"]);

    // A pull request into main runs its source branch's head, only where a pull-request trigger takes it.
    let head = "0c1d2e3f4a5b6c7d8e9f0a1b2c3d4e5f6a7b8c9d";
    let opened = json!({"repository": "example-org/web-app", "event": "OPEN", "sourceBranch": "feature/cache",
        "destinationBranch": "main", "commitId": head, "pullRequestId": "42"});
    let answer = git(&server, "/_emulator/git/pull-request", opened).await;
    assert_eq!(names(&answer["started"]), ["filtered"], "{answer}");
    let id = answer["started"][0]["pipelineExecutionId"].as_str().expect("id").to_string();
    let variables = source_variables(&client, "filtered", &id).await;
    assert_eq!(variables.get("CommitId").map(String::as_str), Some(head));
    assert_eq!(variables.get("BranchName").map(String::as_str), Some("feature/cache"));
    let closed = json!({"repository": "example-org/web-app", "event": "CLOSED", "sourceBranch": "feature/cache",
        "destinationBranch": "main", "commitId": head});
    assert_eq!(git(&server, "/_emulator/git/pull-request", closed).await["started"], json!([]));

    // Bad bodies are 400s.
    for (path, bad) in [
        ("/_emulator/git/push", json!({"repository": "example-org/web-app", "commitId": COMMIT})),
        (
            "/_emulator/git/push",
            json!({"repository": "example-org/web-app", "branch": "main", "tag": "v1", "commitId": COMMIT}),
        ),
        ("/_emulator/git/push", json!({"repository": "example-org/web-app", "branch": "main"})),
        (
            "/_emulator/git/pull-request",
            json!({"repository": "r", "event": "MERGED", "sourceBranch": "a",
            "destinationBranch": "b", "commitId": "c"}),
        ),
    ] {
        let response = server.control("POST", path, &bad).await;
        assert_eq!(response.status, 400, "{bad}: {}", response.text());
    }
}

#[tokio::test]
async fn provider_deliveries_replay_unchanged() {
    let server = TestServer::fast().await;
    let triggers = json!([{"providerType": "CodeStarSourceConnection", "gitConfiguration": {
        "sourceActionName": "Source",
        "push": [{"tags": {"includes": ["v*"]}}, {"branches": {"includes": ["main"]}}],
        "pullRequest": [{"branches": {"includes": ["main"]}}]}}]);
    let created = server.call("CreatePipeline", &connection_pipeline("web", json!({}), Some(triggers))).await;
    assert_eq!(created.status, 200, "{}", created.text());
    let deliver = |headers: Vec<(&'static str, &'static str)>, body: Value| {
        let server = &server;
        async move {
            let mut all = vec![("Content-Type", "application/json")];
            all.extend(headers);
            server.connect().await.request("POST", "/_emulator/git/webhook", &all, body.to_string().as_bytes()).await
        }
    };
    // GitHub push (integrations.md §5.1, own values).
    let github_push = json!({"ref": "refs/heads/main", "before": "1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d",
        "after": COMMIT, "created": false, "deleted": false, "forced": false, "base_ref": null,
        "commits": [{"id": COMMIT, "message": "Tune cache headers", "timestamp": "2026-03-02T10:14:55+01:00",
            "author": {"name": "Alice Doe", "email": "alice@example.com", "username": "alice"},
            "added": [], "removed": [], "modified": ["web/nginx.conf"]}],
        "head_commit": {"id": COMMIT, "message": "Tune cache headers", "timestamp": "2026-03-02T10:14:55+01:00"},
        "repository": {"full_name": "example-org/web-app", "default_branch": "main"},
        "pusher": {"name": "alice", "email": "alice@example.com"}});
    let response = deliver(vec![("X-GitHub-Event", "push")], github_push).await;
    assert_eq!(names(&response.json()["started"]), ["web"], "{}", response.text());
    let ping = json!({"zen": "Keep calm and ship.", "hook_id": 1, "repository": {"full_name": "example-org/web-app"}});
    let response = deliver(vec![("X-GitHub-Event", "ping")], ping).await;
    assert_eq!((response.status, response.json()["started"].clone()), (200, json!([])));
    // GitLab tag push and merge request.
    let tag = json!({"object_kind": "tag_push", "ref": "refs/tags/v1.4.0",
        "before": "0000000000000000000000000000000000000000", "after": COMMIT, "checkout_sha": COMMIT,
        "project": {"path_with_namespace": "example-org/web-app"}, "commits": [], "total_commits_count": 0});
    let response = deliver(vec![("X-Gitlab-Event", "Tag Push Hook")], tag).await;
    assert_eq!(names(&response.json()["started"]), ["web"], "{}", response.text());
    let merge_request = json!({"object_kind": "merge_request", "project": {"path_with_namespace": "example-org/web-app"},
        "object_attributes": {"iid": 42, "action": "update", "state": "opened", "source_branch": "feature/cache",
            "target_branch": "main", "oldrev": "5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b1c2d3e4f",
            "last_commit": {"id": "0c1d2e3f4a5b6c7d8e9f0a1b2c3d4e5f6a7b8c9d", "message": "Add cache tests"}}});
    let response = deliver(vec![("X-Gitlab-Event", "Merge Request Hook")], merge_request).await;
    assert_eq!(names(&response.json()["started"]), ["web"], "{}", response.text());
    // Bitbucket push and a declined pull request.
    let bitbucket = json!({"actor": {"display_name": "Alice Doe"}, "repository": {"full_name": "example-org/web-app"},
        "push": {"changes": [{"created": false, "closed": false,
            "new": {"type": "branch", "name": "main", "target": {"type": "commit", "hash": COMMIT, "message": "Tune\n"}}}]}});
    let response = deliver(vec![("X-Event-Key", "repo:push")], bitbucket).await;
    assert_eq!(names(&response.json()["started"]), ["web"], "{}", response.text());
    let declined = json!({"repository": {"full_name": "example-org/web-app"}, "pullrequest": {"id": 42}});
    let response = deliver(vec![("X-Event-Key", "pullrequest:rejected")], declined).await;
    assert_eq!(response.json()["started"], json!([]));
    assert!(response.json()["ignored"].is_string());
    // No provider header, or a delivery missing what it needs: 400.
    let response = deliver(vec![], json!({"ref": "refs/heads/main"})).await;
    assert_eq!(response.status, 400, "{}", response.text());
    let response = deliver(vec![("X-GitHub-Event", "push")], json!({"ref": "refs/heads/main"})).await;
    assert_eq!(response.status, 400, "{}", response.text());
}
