//! CloudFormation deploys against moto's server: a pipeline S3 source -> CloudFormation -> S3 deploy really creates
//! the stack and deploys into the bucket the stack made; every action mode; failures in the action's words.

use std::io::{Read as _, Write as _};

use codepipeline_local::Config;
use codepipeline_local::config::SdkEnvironment;
use serde_json::{Value, json};

use crate::common::{TestServer, eventually};
use crate::moto::Moto;

/// A server whose S3 and CloudFormation act on `moto`.
pub fn config(moto: &Moto, services: &[&str]) -> Config {
    let environment =
        SdkEnvironment::from_variables(services.iter().map(|s| (format!("AWS_ENDPOINT_URL_{s}"), moto.url())));
    Config { action_duration_ms: 5, sdk_environment: environment, ..Config::default() }
}

/// A zip of `files`.
pub fn zip(files: &[(&str, &str)]) -> Vec<u8> {
    let mut buffer = std::io::Cursor::new(Vec::new());
    let mut zip = zip::ZipWriter::new(&mut buffer);
    for (name, text) in files {
        zip.start_file(*name, zip::write::SimpleFileOptions::default()).expect("starts");
        zip.write_all(text.as_bytes()).expect("writes");
    }
    zip.finish().expect("finishes");
    buffer.into_inner()
}

/// The text of `name` in the zip `bytes`.
pub fn unzip(bytes: &[u8], name: &str) -> String {
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes)).expect("a zip");
    let mut text = String::new();
    archive.by_name(name).expect("the file").read_to_string(&mut text).expect("reads");
    text
}

/// A Source stage whose S3 source `Bundle` reads `releases/app.zip` into the artifact `App`, polling as `polls` says.
pub fn release_source(polls: &str) -> Value {
    json!({"name": "Source", "actions": [{"name": "Bundle", "actionTypeId": at("Source", "S3"),
        "configuration": {"S3Bucket": "releases", "S3ObjectKey": "app.zip", "PollForSourceChanges": polls},
        "outputArtifacts": [{"name": "App"}]}]})
}

pub fn at(category: &str, provider: &str) -> Value {
    json!({"category": category, "owner": "AWS", "provider": provider, "version": "1"})
}

/// A template that makes a bucket named by a parameter, and says its name and ARN.
const TEMPLATE: &str = r#"{
  "Parameters": {"SiteName": {"Type": "String"}, "Stage": {"Type": "String", "Default": "dev"}},
  "Resources": {"Site": {"Type": "AWS::S3::Bucket", "Properties": {"BucketName": {"Ref": "SiteName"}}}},
  "Outputs": {
    "SiteBucket": {"Value": {"Ref": "Site"}},
    "SiteArn": {"Value": {"Fn::GetAtt": ["Site", "Arn"]}},
    "Stage": {"Value": {"Ref": "Stage"}}
  }
}"#;

/// The status of the `nth` execution (0 = latest) once it has ended, and its id.
pub async fn ended(server: &TestServer, name: &str, count: usize) -> (String, String) {
    eventually(&format!("{name} to end"), || async {
        let listed = server.call("ListPipelineExecutions", &json!({"pipelineName": name}).to_string()).await.json();
        let summaries = listed["pipelineExecutionSummaries"].as_array()?;
        let latest = summaries.first().filter(|_| summaries.len() >= count)?;
        let status = latest["status"].as_str()?.to_string();
        (status != "InProgress").then(|| (status, latest["pipelineExecutionId"].as_str().unwrap_or("").to_string()))
    })
    .await
}

/// The latest execution of an action, as GetPipelineState shows it.
pub async fn action_state(server: &TestServer, pipeline: &str, stage: usize) -> Value {
    let state = server.call("GetPipelineState", &json!({"name": pipeline}).to_string()).await.json();
    state["stageStates"][stage]["actionStates"][0]["latestExecution"].clone()
}

async fn outputs_of(server: &TestServer, pipeline: &str, action: &str) -> Value {
    let listed = server.call("ListActionExecutions", &json!({"pipelineName": pipeline}).to_string()).await.json();
    let details = listed["actionExecutionDetails"].as_array().cloned().unwrap_or_default();
    details.into_iter().find(|d| d["actionName"] == action).map(|d| d["output"].clone()).unwrap_or_default()
}

#[tokio::test]
async fn an_s3_source_deploys_a_stack_and_then_into_the_bucket_the_stack_made() {
    let moto = Moto::start().await;
    moto.create_bucket("artifacts").await;
    moto.seed_source("releases", "app.zip").await;
    let bundle = zip(&[
        ("template.json", TEMPLATE),
        ("site/index.html", "<h1>hello</h1>"),
        ("params.json", r#"{"Stage": "prod"}"#),
    ]);
    moto.put_object("releases", "app.zip", &bundle).await;
    let server = TestServer::with_config(config(&moto, &["S3", "CLOUDFORMATION"])).await;
    let definition = json!({"pipeline": {
        "name": "stack-pipeline", "roleArn": "arn:aws:iam::123456789012:role/r",
        "artifactStore": {"type": "S3", "location": "artifacts"},
        "stages": [
            release_source("false"),
            {"name": "Infra", "actions": [{"name": "Stack", "actionTypeId": at("Deploy", "CloudFormation"),
                "namespace": "Infra",
                "configuration": {
                    "ActionMode": "CREATE_UPDATE", "StackName": "site-stack",
                    "TemplatePath": "App::template.json",
                    "ParameterOverrides": "{\"SiteName\": \"site-from-stack\", \"Stage\": {\"Fn::GetParam\": [\"App\", \"params.json\", \"Stage\"]}}",
                    "OutputFileName": "outputs.json"},
                "inputArtifacts": [{"name": "App"}], "outputArtifacts": [{"name": "StackOutputs"}]}]},
            {"name": "Publish", "actions": [{"name": "Site", "actionTypeId": at("Deploy", "S3"),
                "configuration": {"BucketName": "#{Infra.SiteBucket}", "Extract": "true"},
                "inputArtifacts": [{"name": "App"}]}]}
        ]
    }});
    let created = server.call("CreatePipeline", &definition.to_string()).await;
    assert_eq!(created.status, 200, "{}", created.text());
    let (status, _) = ended(&server, "stack-pipeline", 1).await;
    let infra = action_state(&server, "stack-pipeline", 1).await;
    assert_eq!(status, "Succeeded", "{infra}");

    // The stack is real, with the overrides (one read from a file in the artifact) as its parameters.
    let cloudformation = aws_sdk_cloudformation::Client::new(&moto.sdk_config());
    let stacks = cloudformation.describe_stacks().stack_name("site-stack").send().await.expect("the stack exists");
    let stack = &stacks.stacks()[0];
    assert_eq!(stack.stack_status().map(|s| s.as_str()), Some("CREATE_COMPLETE"));
    assert_eq!(infra["externalExecutionId"].as_str(), stack.stack_id(), "{infra}");
    let stage_parameter = stack.parameters().iter().find(|p| p.parameter_key() == Some("Stage"));
    assert_eq!(stage_parameter.and_then(|p| p.parameter_value()), Some("prod"));

    // Its outputs are the action's variables and the outputs file.
    let output = outputs_of(&server, "stack-pipeline", "Stack").await;
    assert_eq!(output["outputVariables"]["SiteBucket"], "site-from-stack", "{output}");
    assert_eq!(output["outputVariables"]["Stage"], "prod", "{output}");
    let location = &output["outputArtifacts"][0]["s3location"];
    let (got, bytes) =
        moto.get_object(location["bucket"].as_str().unwrap_or(""), location["key"].as_str().unwrap_or("")).await;
    assert_eq!(got, 200);
    let file: Value = serde_json::from_str(&unzip(&bytes, "outputs.json")).expect("JSON");
    assert_eq!(file["SiteBucket"], "site-from-stack", "{file}");

    // The S3 deploy used the stack's output: the site is in the bucket the stack made.
    let (got, page) = moto.get_object("site-from-stack", "site/index.html").await;
    assert_eq!((got, page.as_slice()), (200, b"<h1>hello</h1>".as_slice()));

    // Run again with nothing changed: "No updates are to be performed" is a success that changes nothing.
    let started = server.call("StartPipelineExecution", r#"{"name": "stack-pipeline"}"#).await;
    assert_eq!(started.status, 200);
    let (status, _) = ended(&server, "stack-pipeline", 2).await;
    let infra = action_state(&server, "stack-pipeline", 1).await;
    assert_eq!(status, "Succeeded", "{infra}");
    assert_eq!(
        outputs_of(&server, "stack-pipeline", "Stack").await["outputVariables"]["SiteBucket"],
        "site-from-stack"
    );
}

/// A pipeline whose source is `bundle` and whose second stage is one CloudFormation action configured so.
async fn deploy_once(server: &TestServer, moto: &Moto, name: &str, bundle: &[u8], configuration: Value) -> Value {
    moto.put_object("releases", "app.zip", bundle).await;
    let definition = json!({"pipeline": {
        "name": name, "roleArn": "arn:aws:iam::123456789012:role/r",
        "artifactStore": {"type": "S3", "location": "artifacts"},
        "stages": [
            release_source("false"),
            {"name": "Infra", "actions": [{"name": "Stack", "actionTypeId": at("Deploy", "CloudFormation"),
                "configuration": configuration, "inputArtifacts": [{"name": "App"}]}]}
        ]
    }});
    let created = server.call("CreatePipeline", &definition.to_string()).await;
    assert_eq!(created.status, 200, "{}", created.text());
    let (status, _) = ended(server, name, 1).await;
    let state = action_state(server, name, 1).await;
    assert_eq!(state["status"].as_str(), Some(status.as_str()), "{state}");
    state
}

#[tokio::test]
async fn change_sets_are_made_and_executed_stacks_deleted_and_bad_input_fails_the_action() {
    let moto = Moto::start().await;
    moto.create_bucket("artifacts").await;
    moto.seed_source("releases", "app.zip").await;
    let server = TestServer::with_config(config(&moto, &["S3", "CLOUDFORMATION"])).await;
    let cloudformation = aws_sdk_cloudformation::Client::new(&moto.sdk_config());
    let bundle = zip(&[("template.json", TEMPLATE)]);
    let mode = |mode: &str| {
        json!({"ActionMode": mode, "StackName": "sets", "ChangeSetName": "release", "TemplatePath": "App::template.json",
            "ParameterOverrides": "{\"SiteName\": \"bucket-by-change-set\"}"})
    };

    // CHANGE_SET_REPLACE makes the change set and leaves the stack as it was (here: under review).
    let state = deploy_once(&server, &moto, "make-set", &bundle, mode("CHANGE_SET_REPLACE")).await;
    assert_eq!(state["status"], "Succeeded", "{state}");
    let set = cloudformation.describe_change_set().stack_name("sets").change_set_name("release").send().await;
    let set = set.expect("the change set exists");
    assert_eq!(set.status().map(|s| s.as_str()), Some("CREATE_COMPLETE"));
    let (bucket, _) = moto.get_object("bucket-by-change-set", "x").await;
    assert_eq!(bucket, 404, "nothing is deployed before the change set runs");

    // CHANGE_SET_EXECUTE runs it.
    let state = deploy_once(&server, &moto, "run-set", &bundle, mode("CHANGE_SET_EXECUTE")).await;
    assert_eq!(state["status"], "Succeeded", "{state}");
    let stacks = cloudformation.describe_stacks().stack_name("sets").send().await.expect("the stack");
    assert_eq!(stacks.stacks()[0].stack_status().map(|s| s.as_str()), Some("CREATE_COMPLETE"));

    // DELETE_ONLY deletes it; a second time there is nothing to delete, which succeeds too.
    let state = deploy_once(&server, &moto, "delete", &bundle, mode("DELETE_ONLY")).await;
    assert_eq!(state["status"], "Succeeded", "{state}");
    let gone = cloudformation.describe_stacks().stack_name("sets").send().await;
    let deleted = gone.map(|s| s.stacks()[0].stack_status().map(|s| s.as_str().to_string()));
    assert!(!matches!(deleted, Ok(Some(ref status)) if status != "DELETE_COMPLETE"), "{deleted:?}");
    let state = deploy_once(&server, &moto, "delete-again", &bundle, mode("DELETE_ONLY")).await;
    assert_eq!(state["status"], "Succeeded", "{state}");

    // A template path the artifact does not hold: AWS's words.
    let missing = json!({"ActionMode": "CREATE_UPDATE", "StackName": "broken", "TemplatePath": "App::nowhere.yml"});
    let state = deploy_once(&server, &moto, "missing-file", &bundle, missing).await;
    assert_eq!(state["status"], "Failed");
    assert_eq!(state["errorDetails"]["code"], "ConfigurationError", "{state}");
    assert_eq!(state["errorDetails"]["message"], "File [nowhere.yml] does not exist in artifact [App]");

    // A template that is not JSON, and an artifact that is not a zip: clear failures, no stack.
    let broken = zip(&[("template.json", "{\"Resources\": ")]);
    let configuration =
        json!({"ActionMode": "CREATE_UPDATE", "StackName": "broken", "TemplatePath": "App::template.json"});
    let state = deploy_once(&server, &moto, "bad-template", &broken, configuration.clone()).await;
    assert_eq!(state["status"], "Failed");
    let message = state["errorDetails"]["message"].as_str().unwrap_or_default();
    assert!(message.starts_with("Template format error: JSON not well-formed."), "{message}");
    let state = deploy_once(&server, &moto, "not-a-zip", b"plain text", configuration).await;
    assert_eq!(state["status"], "Failed");
    let message = state["errorDetails"]["message"].as_str().unwrap_or_default();
    assert!(message.starts_with("The input artifact App is not a readable zip"), "{message}");
    assert!(cloudformation.describe_stacks().stack_name("broken").send().await.is_err(), "no stack was made");

    // CloudFormation refuses the stack (moto: a bucket name too short; AWS would roll the stack back): its answer
    // is passed through in the form AWS gives it.
    let refused = json!({"ActionMode": "CREATE_UPDATE", "StackName": "refused",
        "TemplatePath": "App::template.json", "ParameterOverrides": "{\"SiteName\": \"b\"}"});
    let state = deploy_once(&server, &moto, "refused", &bundle, refused).await;
    assert_eq!(state["status"], "Failed", "{state}");
    let message = state["errorDetails"]["message"].as_str().unwrap_or_default();
    assert!(message.contains(" (Service: AmazonCloudFormation; Status Code: 400; Error Code: "), "{message}");
}

#[tokio::test]
async fn polling_starts_the_pipeline_for_each_new_version_and_only_while_it_polls() {
    let moto = Moto::start().await;
    moto.create_bucket("artifacts").await;
    let first = moto.seed_source("releases", "app.zip").await;
    let server = TestServer::with_config(Config {
        poll_interval: std::time::Duration::from_millis(20),
        ..config(&moto, &["S3"])
    })
    .await;
    let mut definition = json!({"pipeline": {
        "name": "polled", "roleArn": "arn:aws:iam::123456789012:role/r",
        "artifactStore": {"type": "S3", "location": "artifacts"},
        "stages": [
            release_source("TRUE"),
            {"name": "Ship", "actions": [{"name": "Copy", "actionTypeId": at("Deploy", "S3"),
                "configuration": {"BucketName": "artifacts", "Extract": "false", "ObjectKey": "shipped.zip"},
                "inputArtifacts": [{"name": "App"}]}]}
        ]
    }});
    let created = server.call("CreatePipeline", &definition.to_string()).await;
    assert_eq!(created.status, 200, "{}", created.text());

    // The first execution comes from polling, not from CreatePipeline, and runs the object's current version.
    let (status, id) = ended(&server, "polled", 1).await;
    assert_eq!(status, "Succeeded");
    let listed = server.call("ListPipelineExecutions", r#"{"pipelineName": "polled"}"#).await.json();
    let summaries = listed["pipelineExecutionSummaries"].as_array().cloned().unwrap_or_default();
    assert_eq!(summaries.len(), 1, "{listed}");
    assert_eq!(summaries[0]["trigger"], json!({"triggerType": "PollForSourceChanges", "triggerDetail": "Bundle"}));
    assert_eq!(summaries[0]["sourceRevisions"][0]["revisionId"].as_str(), Some(first.as_str()), "{listed}");

    // A new version (the same bytes) starts it again, with that version; and only once.
    let uploaded = std::time::Instant::now();
    let second = moto.put_object("releases", "app.zip", b"PK\x05\x06\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0").await;
    let second = second.expect("a version");
    eventually("the new version to start the pipeline", || async {
        let listed = server.call("ListPipelineExecutions", r#"{"pipelineName": "polled"}"#).await.json();
        (listed["pipelineExecutionSummaries"].as_array()?.len() == 2).then_some(())
    })
    .await;
    eprintln!("upload to start, polling every 20 ms: {:?}", uploaded.elapsed());
    let (status, newer) = ended(&server, "polled", 2).await;
    assert_eq!(status, "Succeeded");
    assert_ne!(newer, id);
    let listed = server.call("ListPipelineExecutions", r#"{"pipelineName": "polled"}"#).await.json();
    assert_eq!(
        listed["pipelineExecutionSummaries"][0]["sourceRevisions"][0]["revisionId"].as_str(),
        Some(second.as_str())
    );
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let listed = server.call("ListPipelineExecutions", r#"{"pipelineName": "polled"}"#).await.json();
    assert_eq!(
        listed["pipelineExecutionSummaries"].as_array().map(Vec::len),
        Some(2),
        "an unchanged object starts nothing"
    );

    // Polling off ("False" does not poll): uploads start nothing. On again: a run on the current, unchanged version.
    definition["pipeline"]["stages"][0]["actions"][0]["configuration"]["PollForSourceChanges"] = json!("False");
    assert_eq!(server.call("UpdatePipeline", &definition.to_string()).await.status, 200);
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    let third = moto.put_object("releases", "app.zip", b"PK\x05\x06\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0").await;
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let listed = server.call("ListPipelineExecutions", r#"{"pipelineName": "polled"}"#).await.json();
    assert_eq!(listed["pipelineExecutionSummaries"].as_array().map(Vec::len), Some(2), "{listed}");
    definition["pipeline"]["stages"][0]["actions"][0]["configuration"]["PollForSourceChanges"] = json!("true");
    assert_eq!(server.call("UpdatePipeline", &definition.to_string()).await.status, 200);
    let (status, _) = ended(&server, "polled", 3).await;
    assert_eq!(status, "Succeeded");
    let listed = server.call("ListPipelineExecutions", r#"{"pipelineName": "polled"}"#).await.json();
    assert_eq!(listed["pipelineExecutionSummaries"][0]["sourceRevisions"][0]["revisionId"].as_str(), third.as_deref());
    // Off and on again with nothing uploaded: the action already started its pipeline for this version, so nothing
    // starts (a real AWS session, issue 28).
    definition["pipeline"]["stages"][0]["actions"][0]["configuration"]["PollForSourceChanges"] = json!("false");
    assert_eq!(server.call("UpdatePipeline", &definition.to_string()).await.status, 200);
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    definition["pipeline"]["stages"][0]["actions"][0]["configuration"]["PollForSourceChanges"] = json!("true");
    assert_eq!(server.call("UpdatePipeline", &definition.to_string()).await.status, 200);
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let listed = server.call("ListPipelineExecutions", r#"{"pipelineName": "polled"}"#).await.json();
    assert_eq!(listed["pipelineExecutionSummaries"].as_array().map(Vec::len), Some(3), "{listed}");

    // Pointed at an object that is not there: no execution, and the action shows why, without an execution id.
    let source = |definition: &mut Value, key: &str| {
        definition["pipeline"]["stages"][0]["actions"][0]["configuration"]["S3ObjectKey"] = json!(key);
    };
    source(&mut definition, "later.zip");
    assert_eq!(server.call("UpdatePipeline", &definition.to_string()).await.status, 200);
    let failed = eventually("the action to show the missing object", || async {
        let state = action_state(&server, "polled", 0).await;
        (state["status"] == "Failed").then_some(state)
    })
    .await;
    let message = "Could not access the Amazon S3 object: \"releases/later.zip\". Make sure that the names of the bucket and object are both correct.";
    assert_eq!(failed["errorDetails"], json!({"code": "ConfigurationError", "message": message}), "{failed}");
    assert!(failed.get("actionExecutionId").is_none() && failed.get("lastStatusChange").is_some(), "{failed}");
    let state = server.call("GetPipelineState", r#"{"name": "polled"}"#).await.json();
    assert!(state["stageStates"][0]["actionStates"][0].get("currentRevision").is_none(), "{state}");
    // Uploaded: the next poll starts the pipeline on it, and the action shows its run again.
    let later = moto.put_object("releases", "later.zip", b"PK\x05\x06\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0").await;
    let (status, _) = ended(&server, "polled", 4).await;
    assert_eq!(status, "Succeeded");
    let listed = server.call("ListPipelineExecutions", r#"{"pipelineName": "polled"}"#).await.json();
    assert_eq!(listed["pipelineExecutionSummaries"][0]["sourceRevisions"][0]["revisionId"].as_str(), later.as_deref());
    assert_eq!(action_state(&server, "polled", 0).await["status"], "Succeeded");
}

/// The files of `examples/real-actions/app`, zipped as the README says.
fn example_bundle() -> Vec<u8> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/real-actions/app");
    let read = |path: &str| std::fs::read_to_string(root.join(path)).expect("an example file");
    let (template, page) = (read("template.yaml"), read("site/index.html"));
    zip(&[("template.yaml", template.as_str()), ("site/index.html", page.as_str())])
}

#[tokio::test]
async fn the_readme_walk_through_deploys_the_example_when_a_release_is_uploaded() {
    let moto = Moto::start().await;
    moto.create_bucket("demo-artifacts").await;
    moto.create_bucket("demo-releases").await;
    moto.enable_versioning("demo-releases").await;
    let server = TestServer::with_config(Config {
        poll_interval: std::time::Duration::from_millis(20),
        ..config(&moto, &["S3", "CLOUDFORMATION"])
    })
    .await;
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/real-actions/pipeline.json");
    let definition = std::fs::read_to_string(path).expect("the example pipeline");
    let created = server.call("CreatePipeline", &definition).await;
    assert_eq!(created.status, 200, "{}", created.text());
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    let listed = server.call("ListPipelineExecutions", r#"{"pipelineName": "demo"}"#).await.json();
    assert_eq!(listed["pipelineExecutionSummaries"], json!([]), "nothing to deploy before a release is uploaded");

    let uploaded = std::time::Instant::now();
    moto.put_object("demo-releases", "app.zip", &example_bundle()).await;
    let (status, _) = ended(&server, "demo", 1).await;
    eprintln!("upload to a deployed 3-stage pipeline, polling every 20 ms: {:?}", uploaded.elapsed());
    let publish = action_state(&server, "demo", 2).await;
    assert_eq!(status, "Succeeded", "{publish}");
    let listed = server.call("ListPipelineExecutions", r#"{"pipelineName": "demo"}"#).await.json();
    assert_eq!(listed["pipelineExecutionSummaries"][0]["trigger"]["triggerType"], "PollForSourceChanges");
    let cloudformation = aws_sdk_cloudformation::Client::new(&moto.sdk_config());
    let stacks = cloudformation.describe_stacks().stack_name("demo-site").send().await.expect("the stack");
    assert_eq!(stacks.stacks()[0].stack_status().map(|s| s.as_str()), Some("CREATE_COMPLETE"));
    let (got, page) = moto.get_object("demo-site", "site/index.html").await;
    assert_eq!(got, 200);
    assert!(String::from_utf8_lossy(&page).contains("a pipeline that really ran"));
}

#[tokio::test]
async fn a_polled_version_starts_its_pipeline_once_even_across_a_restart() {
    let moto = Moto::start().await;
    moto.create_bucket("artifacts").await;
    moto.seed_source("releases", "app.zip").await;
    let directory = crate::persistence::TempDir::new("polled-restart");
    let config = || Config {
        poll_interval: std::time::Duration::from_millis(20),
        data_dir: Some(directory.0.clone()),
        ..config(&moto, &["S3"])
    };
    let definition = json!({"pipeline": {
        "name": "polled-once", "roleArn": "arn:aws:iam::123456789012:role/r",
        "artifactStore": {"type": "S3", "location": "artifacts"},
        "stages": [release_source("true"), {"name": "Ship", "actions": [{"name": "Copy",
            "actionTypeId": at("Deploy", "S3"), "inputArtifacts": [{"name": "App"}],
            "configuration": {"BucketName": "artifacts", "Extract": "false", "ObjectKey": "shipped.zip"}}]}]
    }});
    let server = TestServer::with_config(config()).await;
    assert_eq!(server.call("CreatePipeline", &definition.to_string()).await.status, 200);
    let (status, _) = ended(&server, "polled-once", 1).await;
    assert_eq!(status, "Succeeded");
    server.server.shutdown().await.expect("stops");

    // The version it started for is kept: polls after the restart start nothing more until a new version comes.
    let server = TestServer::with_config(config()).await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let listed = server.call("ListPipelineExecutions", r#"{"pipelineName": "polled-once"}"#).await.json();
    assert_eq!(listed["pipelineExecutionSummaries"].as_array().map(Vec::len), Some(1), "{listed}");
    moto.put_object("releases", "app.zip", b"PK\x05\x06\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0").await;
    let (status, _) = ended(&server, "polled-once", 2).await;
    assert_eq!(status, "Succeeded");
}
