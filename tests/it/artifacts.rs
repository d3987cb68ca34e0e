//! Real artifacts: with an S3 neighbour (moto's server), the outputs of simulated actions are zip objects at the
//! keys the API shows; a missing artifact bucket fails the action.

use std::io::Read as _;

use codepipeline_local::Config;
use codepipeline_local::config::SdkEnvironment;
use serde_json::{Value, json};

use crate::common::{TestServer, eventually};
use crate::moto::Moto;

fn config(moto: &Moto) -> Config {
    let environment = SdkEnvironment::from_variables([("AWS_ENDPOINT_URL_S3".to_string(), moto.url())]);
    Config { action_duration_ms: 5, sdk_environment: environment, ..Config::default() }
}

fn pipeline(name: &str, bucket: &str) -> Value {
    let at = |category: &str, provider: &str| json!({"category": category, "owner": "AWS", "provider": provider, "version": "1"});
    json!({"pipeline": {
        "name": name, "roleArn": "arn:aws:iam::123456789012:role/r",
        "artifactStore": {"type": "S3", "location": bucket},
        "stages": [
            {"name": "Source", "actions": [{"name": "Checkout", "actionTypeId": at("Source", "CodeCommit"),
                "configuration": {"RepositoryName": "app", "BranchName": "main"}, "outputArtifacts": [{"name": "Code"}]}]},
            {"name": "Build", "actions": [{"name": "Compile", "actionTypeId": at("Build", "CodeBuild"),
                "configuration": {"ProjectName": "app"}, "inputArtifacts": [{"name": "Code"}],
                "outputArtifacts": [{"name": "Built"}]}]}
        ]
    }})
}

/// The status of the pipeline's first execution, once it has ended.
async fn ended(server: &TestServer, name: &str) -> (String, Value) {
    eventually(&format!("{name} to end"), || async {
        let listed = server.call("ListPipelineExecutions", &json!({"pipelineName": name}).to_string()).await.json();
        let status = listed["pipelineExecutionSummaries"][0]["status"].as_str()?.to_string();
        (status != "InProgress").then(|| {
            let id = listed["pipelineExecutionSummaries"][0]["pipelineExecutionId"].clone();
            (status, id)
        })
    })
    .await
}

/// `(action name, bucket, key)` of every output artifact the action executions show.
async fn outputs(server: &TestServer, name: &str) -> Vec<(String, String, String)> {
    let listed = server.call("ListActionExecutions", &json!({"pipelineName": name}).to_string()).await.json();
    let mut found = Vec::new();
    for detail in listed["actionExecutionDetails"].as_array().into_iter().flatten() {
        for artifact in detail["output"]["outputArtifacts"].as_array().into_iter().flatten() {
            let location = &artifact["s3location"];
            found.push((
                detail["actionName"].as_str().unwrap_or_default().to_string(),
                location["bucket"].as_str().unwrap_or_default().to_string(),
                location["key"].as_str().unwrap_or_default().to_string(),
            ));
        }
    }
    found
}

#[tokio::test]
async fn simulated_actions_write_their_outputs_as_zips_and_a_missing_bucket_fails_the_action() {
    let moto = Moto::start().await;
    moto.create_bucket("artifact-bucket").await;
    let server = TestServer::with_config(config(&moto)).await;

    let created =
        server.call("CreatePipeline", &pipeline("real-artifacts-pipeline", "artifact-bucket").to_string()).await;
    assert_eq!(created.status, 200, "{}", created.text());
    let (status, _) = ended(&server, "real-artifacts-pipeline").await;
    assert_eq!(status, "Succeeded");
    let written = outputs(&server, "real-artifacts-pipeline").await;
    assert_eq!(written.len(), 2, "{written:?}");
    let (_, bucket, source_key) = written.iter().find(|(a, _, _)| a == "Checkout").expect("the source's output");
    // AWS's layout: the pipeline name to 20 characters, the artifact name to 10, 7 random characters.
    assert!(source_key.starts_with("real-artifacts-pipel/Code/"), "{source_key}");
    let (status, source) = moto.get_object(bucket, source_key).await;
    assert_eq!(status, 200, "the source's output is in the artifact bucket");
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(source.clone())).expect("a zip");
    let mut described = String::new();
    archive
        .by_name("codepipeline-local-revision.json")
        .expect("the revision file")
        .read_to_string(&mut described)
        .expect("reads");
    let described: Value = serde_json::from_str(&described).expect("JSON");
    assert_eq!(described["action"], "Checkout");
    assert!(described["revision"]["revisionId"].as_str().is_some_and(|r| r.len() == 40), "{described}");
    // The build passes its input on.
    let (_, _, built_key) = written.iter().find(|(a, _, _)| a == "Compile").expect("the build's output");
    assert!(built_key.starts_with("real-artifacts-pipel/Built/"), "{built_key}");
    let (status, built) = moto.get_object(bucket, built_key).await;
    assert_eq!((status, built), (200, source), "the build's output is its input, passed on");

    // A bucket the neighbour does not have: the first action that writes fails, naming it.
    let created = server.call("CreatePipeline", &pipeline("nowhere", "no-such-bucket").to_string()).await;
    assert_eq!(created.status, 200, "{}", created.text());
    let (status, _) = ended(&server, "nowhere").await;
    assert_eq!(status, "Failed");
    let state = server.call("GetPipelineState", r#"{"name": "nowhere"}"#).await.json();
    let latest = &state["stageStates"][0]["actionStates"][0]["latestExecution"];
    assert_eq!(latest["status"], "Failed", "{state}");
    let message = latest["errorDetails"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("\"no-such-bucket\" does not exist in the S3 neighbour"), "{message}");
}

#[tokio::test]
async fn a_neighbour_that_refuses_connections_fails_the_action_naming_it() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("binds").local_addr().expect("address").port();
    let environment =
        SdkEnvironment::from_variables([("AWS_ENDPOINT_URL_S3".to_string(), format!("http://127.0.0.1:{closed}"))]);
    let server =
        TestServer::with_config(Config { action_duration_ms: 5, sdk_environment: environment, ..Config::default() })
            .await;
    let created = server.call("CreatePipeline", &pipeline("refused", "artifact-bucket").to_string()).await;
    assert_eq!(created.status, 200, "{}", created.text());
    let (status, _) = ended(&server, "refused").await;
    assert_eq!(status, "Failed");
    let state = server.call("GetPipelineState", r#"{"name": "refused"}"#).await.json();
    let message = state["stageStates"][0]["actionStates"][0]["latestExecution"]["errorDetails"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(message.contains(&format!("to the S3 neighbour (http://127.0.0.1:{closed})")), "{message}");
    assert!(message.contains("Could not write the output artifact \"artifact-bucket/refused/Code/"), "{message}");
    assert!(message.contains("Connection refused"), "what the neighbour did is said: {message}");
    // Nothing else stalled: the server answers at once.
    assert_eq!(server.call("ListPipelines", "{}").await.status, 200);
}

/// A neighbour on a free port that reads each request and answers it with `answer`, or never answers (`None`).
async fn misbehaving_neighbour(answer: Option<&'static str>) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("binds");
    let address = listener.local_addr().expect("address");
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((mut stream, _)) = listener.accept().await {
            let mut buffer = vec![0u8; 65536];
            let _ = stream.read(&mut buffer).await;
            match answer {
                Some(answer) => {
                    let _ = stream.write_all(answer.as_bytes()).await;
                }
                None => held.push(stream),
            }
        }
    });
    format!("http://{address}")
}

async fn failure_with_neighbour(endpoint: String, timeout_ms: u64) -> String {
    let environment = SdkEnvironment::from_variables([("AWS_ENDPOINT_URL_S3".to_string(), endpoint)]);
    let config = Config {
        action_duration_ms: 5,
        sdk_environment: environment,
        neighbour_timeout: std::time::Duration::from_millis(timeout_ms),
        ..Config::default()
    };
    let server = TestServer::with_config(config).await;
    let created = server.call("CreatePipeline", &pipeline("faulty", "artifact-bucket").to_string()).await;
    assert_eq!(created.status, 200, "{}", created.text());
    let (status, _) = ended(&server, "faulty").await;
    assert_eq!(status, "Failed");
    assert_eq!(server.call("ListPipelines", "{}").await.status, 200, "nothing else stalls");
    let state = server.call("GetPipelineState", r#"{"name": "faulty"}"#).await.json();
    state["stageStates"][0]["actionStates"][0]["latestExecution"]["errorDetails"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

#[tokio::test]
async fn a_neighbour_that_answers_500_or_hangs_fails_the_action_after_its_retries() {
    let failing = misbehaving_neighbour(Some(
        "HTTP/1.1 500 Internal Server Error\r\nContent-Type: application/xml\r\nContent-Length: 93\r\n\r\n\
         <Error><Code>InternalError</Code><Message>We encountered an internal error.</Message></Error>",
    ))
    .await;
    let message = failure_with_neighbour(failing.clone(), 5_000).await;
    assert!(message.contains(&format!("to the S3 neighbour ({failing})")), "{message}");
    assert!(message.contains("InternalError"), "{message}");

    let hanging = misbehaving_neighbour(None).await;
    let started = std::time::Instant::now();
    let message = failure_with_neighbour(hanging.clone(), 300).await;
    assert!(message.contains(&format!("to the S3 neighbour ({hanging})")), "{message}");
    assert!(message.to_ascii_lowercase().contains("timeout") || message.contains("timed out"), "{message}");
    assert!(started.elapsed() < std::time::Duration::from_secs(15), "took {:?}", started.elapsed());
}

#[tokio::test]
async fn steering_decides_without_the_neighbour_and_a_completed_held_action_writes_its_outputs() {
    let moto = Moto::start().await;
    moto.create_bucket("artifact-bucket").await;
    let server = TestServer::with_config(config(&moto)).await;
    // A failing rule fails the action with its own message: nothing is written.
    server
        .set_behaviors(
            json!([{"pipeline": "failing", "action": "Checkout", "outcome": "fail", "message": "no such branch"}]),
        )
        .await;
    server.call("CreatePipeline", &pipeline("failing", "artifact-bucket").to_string()).await;
    let (status, _) = ended(&server, "failing").await;
    assert_eq!(status, "Failed");
    let state = server.call("GetPipelineState", r#"{"name": "failing"}"#).await.json();
    let error = &state["stageStates"][0]["actionStates"][0]["latestExecution"]["errorDetails"];
    assert_eq!(error["message"], "no such branch", "{state}");

    // A held action, completed with success, writes its outputs before it ends.
    server.set_behaviors(json!([{"pipeline": "held", "action": "Checkout", "outcome": "hold"}])).await;
    server.call("CreatePipeline", &pipeline("held", "artifact-bucket").to_string()).await;
    let id = eventually("the held execution", || async {
        let listed = server.call("ListPipelineExecutions", r#"{"pipelineName": "held"}"#).await.json();
        listed["pipelineExecutionSummaries"][0]["pipelineExecutionId"].as_str().map(str::to_string)
    })
    .await;
    let completed = crate::common::complete(
        &server,
        json!({"pipelineName": "held", "pipelineExecutionId": id, "stageName": "Source", "actionName": "Checkout"}),
    )
    .await;
    assert_eq!(completed.status, 200, "{}", completed.text());
    let (status, _) = ended(&server, "held").await;
    assert_eq!(status, "Succeeded");
    let written = outputs(&server, "held").await;
    let (_, bucket, key) = written.iter().find(|(a, _, _)| a == "Checkout").expect("the source's output");
    assert_eq!(moto.get_object(bucket, key).await.0, 200, "the completed action's output was written");

    // A held S3 deploy, completed with success, deploys before it ends.
    moto.seed_source("source-bucket", "app.zip").await;
    moto.create_bucket("site").await;
    server.set_behaviors(json!([{"pipeline": "held-deploy", "action": "Ship", "outcome": "hold"}])).await;
    let mut declaration = s3_source_pipeline("held-deploy", "source-bucket", "app.zip");
    declaration["pipeline"]["stages"][1] = json!({"name": "Deploy", "actions": [{"name": "Ship",
        "actionTypeId": {"category": "Deploy", "owner": "AWS", "provider": "S3", "version": "1"},
        "configuration": {"BucketName": "site", "Extract": "false", "ObjectKey": "held/app.zip"},
        "inputArtifacts": [{"name": "Code"}]}]});
    server.call("CreatePipeline", &declaration.to_string()).await;
    let id = eventually("the deploy to be held", || async {
        let state = server.call("GetPipelineState", r#"{"name": "held-deploy"}"#).await.json();
        let latest = &state["stageStates"][1]["actionStates"][0]["latestExecution"];
        (latest["status"] == "InProgress")
            .then(|| state["stageStates"][1]["latestExecution"]["pipelineExecutionId"].clone())
    })
    .await;
    let completed = crate::common::complete(
        &server,
        json!({"pipelineName": "held-deploy", "pipelineExecutionId": id, "stageName": "Deploy", "actionName": "Ship"}),
    )
    .await;
    assert_eq!(completed.status, 200, "{}", completed.text());
    let (status, _) = ended(&server, "held-deploy").await;
    assert_eq!(status, "Succeeded");
    assert_eq!(moto.get_object("site", "held/app.zip").await.0, 200, "the completed deploy deployed");
}

fn s3_source_pipeline(name: &str, bucket: &str, key: &str) -> Value {
    let mut declaration = pipeline(name, "artifact-bucket");
    declaration["pipeline"]["stages"][0]["actions"][0] = json!({"name": "Checkout",
        "actionTypeId": {"category": "Source", "owner": "AWS", "provider": "S3", "version": "1"},
        "configuration": {"S3Bucket": bucket, "S3ObjectKey": key, "PollForSourceChanges": "false"},
        "outputArtifacts": [{"name": "Code"}]});
    declaration
}

async fn source_error(server: &TestServer, name: &str) -> Value {
    let (status, _) = ended(server, name).await;
    assert_eq!(status, "Failed");
    let state = server.call("GetPipelineState", &json!({"name": name}).to_string()).await.json();
    state["stageStates"][0]["actionStates"][0]["latestExecution"]["errorDetails"].clone()
}

#[tokio::test]
async fn an_s3_source_reads_the_objects_version_from_the_neighbour() {
    let moto = Moto::start().await;
    moto.create_bucket("artifact-bucket").await;
    moto.create_bucket("source-bucket").await;
    moto.enable_versioning("source-bucket").await;
    let uploaded = b"PK\x05\x06\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0".to_vec();
    let version = moto.put_object("source-bucket", "app.zip", &uploaded).await.expect("a version id");
    let server = TestServer::with_config(config(&moto)).await;

    server.call("CreatePipeline", &s3_source_pipeline("from-s3", "source-bucket", "app.zip").to_string()).await;
    let (status, id) = ended(&server, "from-s3").await;
    assert_eq!(status, "Succeeded");
    let execution = server
        .call("GetPipelineExecution", &json!({"pipelineName": "from-s3", "pipelineExecutionId": id}).to_string())
        .await
        .json();
    let revision = &execution["pipelineExecution"]["artifactRevisions"][0];
    assert_eq!(revision["revisionId"], json!(version), "{execution}");
    assert_eq!(revision["revisionSummary"], json!(format!("Amazon S3 version id: {version}")));
    let listed = server.call("ListActionExecutions", r#"{"pipelineName": "from-s3"}"#).await.json();
    let source = listed["actionExecutionDetails"]
        .as_array()
        .and_then(|d| d.iter().find(|d| d["actionName"] == "Checkout"))
        .cloned()
        .expect("the source's execution");
    let variables = &source["output"]["outputVariables"];
    assert_eq!(variables["VersionId"], json!(version));
    assert_eq!(variables["BucketName"], "source-bucket");
    let etag = variables["ETag"].as_str().expect("an ETag");
    assert!(!etag.contains('"') && etag.len() == 32, "the ETag without quotes: {etag}");
    let location = &source["output"]["outputArtifacts"][0]["s3location"];
    let copied =
        moto.get_object(location["bucket"].as_str().unwrap_or(""), location["key"].as_str().unwrap_or("")).await;
    assert_eq!(copied, (200, uploaded), "the artifact is the object's version, unchanged");

    // A missing object, and an unversioned bucket, fail the action as AWS words it.
    server.call("CreatePipeline", &s3_source_pipeline("missing", "source-bucket", "nope.zip").to_string()).await;
    let error = source_error(&server, "missing").await;
    assert_eq!(error["code"], "ConfigurationError");
    assert_eq!(
        error["message"],
        "Could not access the Amazon S3 object: \"source-bucket/nope.zip\". Make sure that the names of the bucket and object are both correct."
    );
    moto.create_bucket("plain-bucket").await;
    moto.put_object("plain-bucket", "app.zip", b"zip").await;
    server.call("CreatePipeline", &s3_source_pipeline("unversioned", "plain-bucket", "app.zip").to_string()).await;
    let error = source_error(&server, "unversioned").await;
    assert_eq!(error["code"], "ConfigurationError");
    assert!(error["message"].as_str().is_some_and(|m| m.contains("is not versioned")), "{error}");
}

/// A zip of `(name, text)` files.
fn zip_of(files: &[(&str, &str)]) -> Vec<u8> {
    use std::io::Write as _;
    let mut buffer = std::io::Cursor::new(Vec::new());
    let mut zip = zip::ZipWriter::new(&mut buffer);
    for (name, text) in files {
        zip.start_file(*name, zip::write::SimpleFileOptions::default()).expect("a file");
        zip.write_all(text.as_bytes()).expect("written");
    }
    zip.finish().expect("finished");
    buffer.into_inner()
}

#[tokio::test]
async fn an_s3_deploy_puts_the_artifact_or_its_files_in_the_target_bucket() {
    let moto = Moto::start().await;
    moto.create_bucket("artifact-bucket").await;
    moto.create_bucket("site").await;
    moto.create_bucket("source-bucket").await;
    moto.enable_versioning("source-bucket").await;
    let archive = zip_of(&[("index.html", "<h1>hello</h1>"), ("nested\\config.json", "{\"a\": 1}")]);
    moto.put_object("source-bucket", "site.zip", &archive).await.expect("a version");
    let server = TestServer::with_config(config(&moto)).await;
    let deploy = |name: &str, configuration: Value| {
        json!({"name": name, "actionTypeId": {"category": "Deploy", "owner": "AWS", "provider": "S3", "version": "1"},
            "configuration": configuration, "inputArtifacts": [{"name": "Code"}]})
    };
    let mut declaration = s3_source_pipeline("deploys", "source-bucket", "site.zip");
    declaration["pipeline"]["stages"][1] = json!({"name": "Deploy", "actions": [
        deploy("Files", json!({"BucketName": "site", "Extract": "true", "CacheControl": "max-age=60"})),
        deploy("Whole", json!({"BucketName": "site", "Extract": "false", "ObjectKey": "raw/site.zip"}))
    ]});
    server.call("CreatePipeline", &declaration.to_string()).await;
    let (status, _) = ended(&server, "deploys").await;
    assert_eq!(status, "Succeeded");
    assert_eq!(moto.get_object("site", "index.html").await, (200, b"<h1>hello</h1>".to_vec()));
    assert_eq!(moto.get_object("site", "nested/config.json").await, (200, b"{\"a\": 1}".to_vec()));
    assert_eq!(moto.get_object("site", "raw/site.zip").await, (200, archive), "the artifact, unchanged");
    let state = server.call("GetPipelineState", r#"{"name": "deploys"}"#).await.json();
    let actions = &state["stageStates"][1]["actionStates"];
    assert_eq!(actions[0]["latestExecution"]["externalExecutionId"], "site", "no ObjectKey: the bucket alone");
    assert_eq!(actions[1]["latestExecution"]["externalExecutionId"], "site/raw/site.zip");
    assert_eq!(actions[0]["latestExecution"]["summary"], "Deployment Succeeded");

    // Checked at run time, in AWS's words.
    let mut declaration = s3_source_pipeline("badly", "source-bucket", "site.zip");
    declaration["pipeline"]["stages"][1] =
        json!({"name": "Deploy", "actions": [deploy("Files", json!({"BucketName": "site", "Extract": "yes"}))]});
    server.call("CreatePipeline", &declaration.to_string()).await;
    let (status, _) = ended(&server, "badly").await;
    assert_eq!(status, "Failed");
    let state = server.call("GetPipelineState", r#"{"name": "badly"}"#).await.json();
    let error = &state["stageStates"][1]["actionStates"][0]["latestExecution"]["errorDetails"];
    assert_eq!(error["code"], "ConfigurationError");
    assert_eq!(
        error["message"],
        "Invalid value for configuration property 'yes': 'Extract'. Edit your pipeline and set 'Extract' to either 'true' or 'false'."
    );
}

#[tokio::test]
async fn stopping_abandons_work_waiting_for_a_neighbour() {
    let hanging = misbehaving_neighbour(None).await;
    let environment = SdkEnvironment::from_variables([("AWS_ENDPOINT_URL_S3".to_string(), hanging)]);
    let config = Config { action_duration_ms: 5, sdk_environment: environment, ..Config::default() };
    let server = TestServer::with_config(config).await;
    server.call("CreatePipeline", &pipeline("stuck", "artifact-bucket").to_string()).await;
    let id = eventually("the execution", || async {
        let listed = server.call("ListPipelineExecutions", r#"{"pipelineName": "stuck"}"#).await.json();
        listed["pipelineExecutionSummaries"][0]["pipelineExecutionId"].as_str().map(str::to_string)
    })
    .await;
    let stop = json!({"pipelineName": "stuck", "pipelineExecutionId": id, "abandon": true, "reason": "stuck"});
    let answer = server.call("StopPipelineExecution", &stop.to_string()).await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    let (status, _) = ended(&server, "stuck").await;
    assert_eq!(status, "Stopped");
    let state = server.call("GetPipelineState", r#"{"name": "stuck"}"#).await.json();
    assert_eq!(state["stageStates"][0]["actionStates"][0]["latestExecution"]["status"], "Abandoned", "{state}");
}

#[tokio::test]
async fn outputs_still_being_written_when_the_server_is_killed_are_written_after_the_restart() {
    use crate::persistence::{TempDir, spawn_with_env, try_aws};
    let dir = TempDir::new("storing");
    // First a neighbour that never answers: the source's output is being written when the server is killed.
    let hanging = misbehaving_neighbour(None).await;
    let (mut child, addr) = spawn_with_env(&dir.0, &[], &[("AWS_ENDPOINT_URL_S3", hanging.as_str())]);
    let created = tokio::task::spawn_blocking({
        let addr = addr.clone();
        move || try_aws(&addr, "CreatePipeline", &pipeline("survivor", "artifact-bucket"))
    })
    .await
    .expect("joins");
    assert_eq!(created.0, Some(200), "{}", created.1);
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    child.kill().expect("kill -9");
    child.wait().expect("reaped");

    // Then a neighbour that works: the write is handed over again, and the pipeline goes on.
    let moto = Moto::start().await;
    moto.create_bucket("artifact-bucket").await;
    let moto_url = moto.url();
    let (mut child, addr) = spawn_with_env(&dir.0, &[], &[("AWS_ENDPOINT_URL_S3", moto_url.as_str())]);
    let status = eventually("the pipeline to succeed after the restart", || async {
        let addr = addr.clone();
        let listed = tokio::task::spawn_blocking(move || {
            try_aws(&addr, "ListPipelineExecutions", &json!({"pipelineName": "survivor"}))
        })
        .await
        .ok()?;
        let status = listed.1["pipelineExecutionSummaries"][0]["status"].as_str()?.to_string();
        (status != "InProgress").then_some(status)
    })
    .await;
    let listed = {
        let addr = addr.clone();
        tokio::task::spawn_blocking(move || {
            try_aws(&addr, "ListActionExecutions", &json!({"pipelineName": "survivor"}))
        })
        .await
        .expect("joins")
    };
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(status, "Succeeded");
    let source = listed.1["actionExecutionDetails"]
        .as_array()
        .and_then(|d| d.iter().find(|d| d["actionName"] == "Checkout"))
        .cloned()
        .expect("the source's execution");
    let location = &source["output"]["outputArtifacts"][0]["s3location"];
    let object =
        moto.get_object(location["bucket"].as_str().unwrap_or(""), location["key"].as_str().unwrap_or("")).await;
    assert_eq!(object.0, 200, "the output was written after the restart");
}

#[tokio::test]
async fn an_https_neighbour_with_its_own_certificate_is_trusted_through_the_ca_bundle() {
    // A certificate authority of our own and a certificate it signed for localhost, as AWS's emulator has: moto
    // serves HTTPS with the certificate, and the bundle holds the authority.
    let directory = std::env::temp_dir().join(format!("cpl-tls-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&directory).expect("a directory");
    let path = |name: &str| directory.join(name).display().to_string();
    std::fs::write(
        path("leaf.ext"),
        "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
    )
    .expect("writes");
    let steps: [Vec<String>; 3] = [
        ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=neighbour-test-ca"]
            .map(String::from)
            .into_iter()
            .chain(["-keyout".into(), path("ca.key"), "-out".into(), path("ca.pem")])
            .collect(),
        ["req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost"]
            .map(String::from)
            .into_iter()
            .chain(["-keyout".into(), path("leaf.key"), "-out".into(), path("leaf.csr")])
            .collect(),
        ["x509", "-req", "-days", "2", "-CAcreateserial"]
            .map(String::from)
            .into_iter()
            .chain(["-in".into(), path("leaf.csr"), "-CA".into(), path("ca.pem"), "-CAkey".into(), path("ca.key")])
            .chain(["-extfile".into(), path("leaf.ext"), "-out".into(), path("leaf.pem")])
            .collect(),
    ];
    for step in steps {
        let made = std::process::Command::new("openssl").args(&step).output().expect("openssl runs");
        assert!(made.status.success(), "{}", String::from_utf8_lossy(&made.stderr));
    }
    let (certificate, key) = (directory.join("ca.pem"), directory.join("leaf.key"));
    let moto = Moto::start_tls(&directory.join("leaf.pem"), &key).await;
    let https = format!("https://localhost:{}", moto.addr.rsplit(':').next().unwrap_or_default());
    let environment = |bundle: bool| {
        let mut variables = vec![("AWS_ENDPOINT_URL_S3".to_string(), https.clone())];
        if bundle {
            variables.push(("AWS_CA_BUNDLE".to_string(), certificate.display().to_string()));
        }
        SdkEnvironment::from_variables(variables)
    };

    // Trusted through AWS_CA_BUNDLE: the artifact store works over TLS.
    let trusted = TestServer::with_config(Config {
        action_duration_ms: 5,
        sdk_environment: environment(true),
        ..Config::default()
    })
    .await;
    let sdk = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&moto.sdk_config())
            .endpoint_url(&https)
            .force_path_style(true)
            .http_client(
                aws_smithy_http_client::Builder::new()
                    .tls_provider(aws_smithy_http_client::tls::Provider::Rustls(
                        aws_smithy_http_client::tls::rustls_provider::CryptoMode::Ring,
                    ))
                    .tls_context(
                        aws_smithy_http_client::tls::TlsContext::builder()
                            .with_trust_store(
                                aws_smithy_http_client::tls::TrustStore::empty()
                                    .with_pem_certificate(std::fs::read(&certificate).expect("reads")),
                            )
                            .build()
                            .expect("a context"),
                    )
                    .build_https(),
            )
            .build(),
    );
    sdk.create_bucket().bucket("artifact-bucket").send().await.expect("a bucket, over TLS");
    let created = trusted.call("CreatePipeline", &pipeline("over-tls", "artifact-bucket").to_string()).await;
    assert_eq!(created.status, 200, "{}", created.text());
    let (status, _) = ended(&trusted, "over-tls").await;
    assert_eq!(status, "Succeeded");
    let written = outputs(&trusted, "over-tls").await;
    let (_, bucket, key) = written.first().cloned().expect("an output");
    assert!(sdk.head_object().bucket(bucket).key(key).send().await.is_ok(), "the output is in the bucket");

    // Without it, the neighbour's certificate is not trusted: the action fails and says so.
    let untrusted = TestServer::with_config(Config {
        action_duration_ms: 5,
        sdk_environment: environment(false),
        neighbour_timeout: std::time::Duration::from_secs(2),
        ..Config::default()
    })
    .await;
    untrusted.call("CreatePipeline", &pipeline("untrusted", "artifact-bucket").to_string()).await;
    let (status, _) = ended(&untrusted, "untrusted").await;
    assert_eq!(status, "Failed");
    let state = untrusted.call("GetPipelineState", r#"{"name": "untrusted"}"#).await.json();
    let message = state["stageStates"][0]["actionStates"][0]["latestExecution"]["errorDetails"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(message.to_lowercase().contains("certificate"), "{message}");

    // A bundle that holds no certificate stops the server at start, naming it.
    let empty = directory.join("empty.pem");
    std::fs::write(&empty, "not a certificate").expect("writes");
    let refused = codepipeline_local::app::AppState::new(Config { aws_ca_bundle: Some(empty), ..Config::default() });
    let error = refused.err().map(|e| e.to_string()).unwrap_or_default();
    assert!(error.contains("cannot use the CA bundle") && error.contains("empty.pem"), "{error}");
    let _ = std::fs::remove_dir_all(&directory);
}
