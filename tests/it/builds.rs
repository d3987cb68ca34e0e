//! Builds that really run (`--run-builds`), against moto's S3 for their artifacts: a buildspec's phases in one
//! shell, exported variables and two output artifacts used by a later stage, AWS's failure message and what runs
//! after a failure, `on-failure: CONTINUE`, a stop that kills the build's processes, the project's timeout on the
//! emulator clock, and a `Commands` action.

use codepipeline_local::Config;
use serde_json::{Value, json};

use crate::common::{TestServer, eventually};
use crate::moto::Moto;
use crate::stacks::{action_state, at, config, ended, unzip, zip};

/// A server that runs builds, with moto's S3 for artifacts; the release bucket holds `files` as `app.zip`.
async fn setup(files: &[(&str, &str)]) -> (Moto, TestServer) {
    let moto = Moto::start().await;
    moto.create_bucket("artifacts").await;
    moto.create_bucket("site").await;
    moto.seed_source("releases", "app.zip").await;
    moto.put_object("releases", "app.zip", &zip(files)).await;
    let server = TestServer::with_config(Config { run_builds: true, ..config(&moto, &["S3"]) }).await;
    (moto, server)
}

fn pipeline(name: &str, build: Value, later: Vec<Value>) -> Value {
    let mut stages = vec![crate::stacks::release_source("false"), json!({"name": "Build", "actions": [build]})];
    stages.extend(later);
    json!({"pipeline": {"name": name, "roleArn": "arn:aws:iam::123456789012:role/r",
        "artifactStore": {"type": "S3", "location": "artifacts"}, "stages": stages}})
}

fn codebuild(outputs: &[&str]) -> Value {
    json!({"name": "Compile", "namespace": "Build", "actionTypeId": at("Build", "CodeBuild"),
        "configuration": {"ProjectName": "widgets",
            "EnvironmentVariables": "[{\"name\":\"FROM_ACTION\",\"value\":\"action-value\",\"type\":\"PLAINTEXT\"}]"},
        "inputArtifacts": [{"name": "App"}],
        "outputArtifacts": outputs.iter().map(|n| json!({"name": n})).collect::<Vec<_>>()})
}

const BUILDSPEC: &str = r#"version: 0.2
env:
  variables:
    GREETING: hello
  exported-variables: [BUILD_TAG, GREETING, FROM_ACTION]
phases:
  install:
    commands:
      - cd app
  build:
    commands:
      - BUILD_TAG="v$(cat version.txt)-$CODEBUILD_BUILD_NUMBER"
      - export BUILD_TAG
      - mkdir -p "$CODEBUILD_SRC_DIR/out/docs"
      - echo "$GREETING $BUILD_TAG from $(pwd | sed 's|.*/||')" > "$CODEBUILD_SRC_DIR/out/app.txt"
      - echo "$FROM_ACTION" > "$CODEBUILD_SRC_DIR/out/docs/readme.md"
artifacts:
  files: ['**/*']
  secondary-artifacts:
    Bin:
      files: [app.txt]
      base-directory: out
    Docs:
      files: ['docs/*']
      base-directory: out
"#;

#[tokio::test]
async fn a_buildspec_runs_in_one_shell_and_hands_its_artifacts_and_variables_to_the_next_stage() {
    let (moto, server) = setup(&[("buildspec.yml", BUILDSPEC), ("app/version.txt", "1.4")]).await;
    let deploy = json!({"name": "Publish", "actions": [
        {"name": "Bin", "actionTypeId": at("Deploy", "S3"), "inputArtifacts": [{"name": "Bin"}],
            "configuration": {"BucketName": "site", "Extract": "true", "ObjectKey": "#{Build.BUILD_TAG}"}},
        {"name": "Docs", "actionTypeId": at("Deploy", "S3"), "inputArtifacts": [{"name": "Docs"}],
            "configuration": {"BucketName": "site", "Extract": "true"}}]});
    let definition = pipeline("built", codebuild(&["Bin", "Docs"]), vec![deploy]);
    let created = server.call("CreatePipeline", &definition.to_string()).await;
    assert_eq!(created.status, 200, "{}", created.text());
    let (status, _) = ended(&server, "built", 1).await;
    let build = action_state(&server, "built", 1).await;
    assert_eq!(status, "Succeeded", "{build}");
    let id = build["externalExecutionId"].as_str().unwrap_or_default();
    assert!(id.starts_with("widgets:") && id.len() == "widgets:".len() + 36, "the build id: {id}");

    // The exported variables are the action's output variables; `cd app` in install held for the build phase.
    let listed = server.call("ListActionExecutions", r#"{"pipelineName": "built"}"#).await.json();
    let compile = listed["actionExecutionDetails"]
        .as_array()
        .and_then(|d| d.iter().find(|d| d["actionName"] == "Compile"))
        .cloned()
        .expect("the build ran");
    let variables = &compile["output"]["outputVariables"];
    assert_eq!(variables["BUILD_TAG"], "v1.4-1", "{variables}");
    assert_eq!(variables["GREETING"], "hello");
    assert_eq!(variables["FROM_ACTION"], "action-value");
    // The two artifacts went on to the next stage, which deployed them.
    let (got, app) = moto.get_object("site", "v1.4-1/app.txt").await;
    assert_eq!((got, String::from_utf8_lossy(&app).trim()), (200, "hello v1.4-1 from app"));
    let (got, readme) = moto.get_object("site", "docs/readme.md").await;
    assert_eq!((got, String::from_utf8_lossy(&readme).trim()), (200, "action-value"));
    let location = &compile["output"]["outputArtifacts"][0]["s3location"];
    let (_, bytes) =
        moto.get_object(location["bucket"].as_str().unwrap_or(""), location["key"].as_str().unwrap_or("")).await;
    assert!(unzip(&bytes, "app.txt").starts_with("hello"), "the Bin artifact is a zip of the selected files");
}

/// The message of the failure of the action of stage `stage` of `pipeline`.
async fn failure(server: &TestServer, pipeline: &str, stage: usize) -> String {
    action_state(server, pipeline, stage).await["errorDetails"]["message"].as_str().unwrap_or("").to_string()
}

/// A directory for markers the build's commands leave, outside the build.
fn markers() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("cpl-build-markers-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).expect("a directory");
    dir
}

#[tokio::test]
async fn a_failing_command_fails_the_action_in_aws_s_words_and_post_build_and_finally_still_run() {
    let dir = markers();
    let spec = format!(
        "version: 0.2\nphases:\n  build:\n    commands:\n      - echo compiling\n      - exit 3\n      - touch {m}/after-failure\n    finally:\n      - touch {m}/build-finally\n  post_build:\n    commands:\n      - touch {m}/post-build-$CODEBUILD_BUILD_SUCCEEDING\n",
        m = dir.display()
    );
    let (_moto, server) = setup(&[("buildspec.yml", &spec)]).await;
    let created = server.call("CreatePipeline", &pipeline("fails", codebuild(&[]), vec![]).to_string()).await;
    assert_eq!(created.status, 200, "{}", created.text());
    let (status, _) = ended(&server, "fails", 1).await;
    assert_eq!(status, "Failed");
    let build = action_state(&server, "fails", 1).await;
    assert_eq!(build["errorDetails"]["code"], "JobFailed");
    assert_eq!(
        build["errorDetails"]["message"],
        "Build terminated with state: FAILED. Phase: BUILD, Code: COMMAND_EXECUTION_ERROR, Message: Error while executing command: exit 3. Reason: exit status 3"
    );
    assert!(!dir.join("after-failure").exists(), "the phase's commands stop at the first failure");
    assert!(dir.join("build-finally").exists(), "finally runs after a failure");
    assert!(
        dir.join("post-build-0").exists(),
        "POST_BUILD runs after a failed BUILD, with CODEBUILD_BUILD_SUCCEEDING=0"
    );

    // A failed INSTALL ends the command phases, unless on-failure says CONTINUE.
    let spec = |on_failure: &str| {
        format!(
            "version: 0.2\nphases:\n  install:\n    {on_failure}commands:\n      - false\n  build:\n    commands:\n      - touch {m}/build-ran-{}\n",
            if on_failure.is_empty() { "default" } else { "continue" },
            m = dir.display()
        )
    };
    for (name, on_failure) in [("install-fails", ""), ("install-continues", "on-failure: CONTINUE\n    ")] {
        let bundle = zip(&[("buildspec.yml", &spec(on_failure))]);
        _moto.put_object("releases", "app.zip", &bundle).await;
        server.call("CreatePipeline", &pipeline(name, codebuild(&[]), vec![]).to_string()).await;
        let (status, _) = ended(&server, name, 1).await;
        assert_eq!(status, "Failed", "the build still fails");
        let message = failure(&server, name, 1).await;
        assert!(message.contains("Phase: INSTALL"), "{message}");
    }
    assert!(!dir.join("build-ran-default").exists(), "no BUILD after a failed INSTALL");
    assert!(dir.join("build-ran-continue").exists(), "on-failure: CONTINUE goes on to BUILD");

    // No buildspec: AWS's YAML_FILE_ERROR.
    _moto.put_object("releases", "app.zip", &zip(&[("README.md", "no buildspec")])).await;
    server.call("CreatePipeline", &pipeline("no-spec", codebuild(&[]), vec![]).to_string()).await;
    ended(&server, "no-spec", 1).await;
    let message = failure(&server, "no-spec", 1).await;
    assert!(
        message.starts_with(
            "Build terminated with state: FAILED. Phase: DOWNLOAD_SOURCE, Code: YAML_FILE_ERROR, Message: stat "
        ),
        "{message}"
    );
    assert!(message.ends_with("/buildspec.yml: no such file or directory"), "{message}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn a_stop_kills_the_build_s_processes_and_the_project_timeout_runs_on_the_emulator_clock() {
    let dir = markers();
    let spec = format!(
        "version: 0.2\nphases:\n  build:\n    commands:\n      - sleep 300 & echo $! > {m}/pid-$CODEBUILD_BUILD_NUMBER; wait\n",
        m = dir.display()
    );
    let (_moto, server) = setup(&[("buildspec.yml", &spec)]).await;
    server.call("CreatePipeline", &pipeline("long", codebuild(&[]), vec![]).to_string()).await;
    let pid = |number: u32| {
        let path = dir.join(format!("pid-{number}"));
        async move { std::fs::read_to_string(&path).ok().and_then(|p| p.trim().parse::<u32>().ok()) }
    };
    let first = eventually("the build's sleep to start", || pid(1)).await;
    assert!(std::path::Path::new(&format!("/proc/{first}")).exists());
    let listed = server.call("ListPipelineExecutions", r#"{"pipelineName": "long"}"#).await.json();
    let execution = listed["pipelineExecutionSummaries"][0]["pipelineExecutionId"].clone();
    let stop = json!({"pipelineName": "long", "pipelineExecutionId": execution, "abandon": true});
    assert_eq!(server.call("StopPipelineExecution", &stop.to_string()).await.status, 200);
    eventually("the stopped build's sleep to be killed", || async {
        (!std::path::Path::new(&format!("/proc/{first}")).exists()).then_some(())
    })
    .await;

    // The project's timeout (CodeBuild's default, 60 minutes) on the emulator clock: a timed-out build.
    server.call("StartPipelineExecution", r#"{"name": "long"}"#).await;
    let second = eventually("the second build's sleep to start", || pid(2)).await;
    let advanced = server.control("POST", "/_emulator/clock/advance", &json!({"seconds": 60 * 60})).await;
    assert_eq!(advanced.status, 200);
    let (status, _) = ended(&server, "long", 2).await;
    assert_eq!(status, "Failed");
    let message = failure(&server, "long", 1).await;
    assert!(message.starts_with("Build terminated with state: TIMED_OUT"), "{message}");
    eventually("the timed-out build's sleep to be killed", || async {
        (!std::path::Path::new(&format!("/proc/{second}")).exists()).then_some(())
    })
    .await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn a_commands_action_runs_its_commands_with_its_variables_and_files() {
    let (moto, server) = setup(&[("src/main.txt", "payload")]).await;
    let commands = json!({"name": "Package", "namespace": "Pkg", "actionTypeId": at("Compute", "Commands"),
        "commands": ["mkdir -p dist", "cp src/main.txt dist/out.txt", "export CHECKSUM=$(cksum < dist/out.txt | cut -d' ' -f1)",
            "export SEEN_RUN=\"$RUN\" SEEN_DIRECT=#{codepipeline.PipelineExecutionId}"],
        "outputVariables": ["CHECKSUM", "SEEN_RUN", "SEEN_DIRECT"],
        "environmentVariables": [{"name": "RUN", "value": "#{codepipeline.PipelineExecutionId}"}],
        "inputArtifacts": [{"name": "App"}], "outputArtifacts": [{"name": "Dist", "files": ["dist/**/*"]}]});
    let mut definition = pipeline(
        "commands",
        commands,
        vec![json!({"name": "Ship", "actions": [
        {"name": "Copy", "actionTypeId": at("Deploy", "S3"), "inputArtifacts": [{"name": "Dist"}],
            "configuration": {"BucketName": "site", "Extract": "true", "ObjectKey": "#{Pkg.CHECKSUM}"}}]})],
    );
    definition["pipeline"]["pipelineType"] = json!("V2");
    let created = server.call("CreatePipeline", &definition.to_string()).await;
    assert_eq!(created.status, 200, "{}", created.text());
    let (status, _) = ended(&server, "commands", 1).await;
    assert_eq!(status, "Succeeded", "{}", action_state(&server, "commands", 1).await);
    let listed = server.call("ListActionExecutions", r#"{"pipelineName": "commands"}"#).await.json();
    let package = listed["actionExecutionDetails"]
        .as_array()
        .and_then(|d| d.iter().find(|d| d["actionName"] == "Package"))
        .cloned()
        .expect("the commands ran");
    let checksum = package["output"]["outputVariables"]["CHECKSUM"].as_str().unwrap_or_default().to_string();
    // Variables in its commands and its environment variables' values are resolved.
    let execution = package["pipelineExecutionId"].clone();
    assert_eq!(package["output"]["outputVariables"]["SEEN_RUN"], execution, "{package}");
    assert_eq!(package["output"]["outputVariables"]["SEEN_DIRECT"], execution, "{package}");
    assert!(!checksum.is_empty() && checksum.chars().all(|c| c.is_ascii_digit()), "{package}");
    let (got, body) = moto.get_object("site", &format!("{checksum}/dist/out.txt")).await;
    assert_eq!((got, body), (200, b"payload".to_vec()));
}

#[tokio::test]
async fn a_shutdown_kills_a_running_build_and_after_the_restart_the_build_fails_as_it_cannot_resume() {
    let dir = markers();
    let data = crate::persistence::TempDir::new("build-restart");
    let spec = format!(
        "version: 0.2\nphases:\n  build:\n    commands:\n      - sleep 300 & echo $! > {}/pid; wait\n",
        dir.display()
    );
    let moto = Moto::start().await;
    moto.create_bucket("artifacts").await;
    moto.seed_source("releases", "app.zip").await;
    moto.put_object("releases", "app.zip", &zip(&[("buildspec.yml", &spec)])).await;
    let config = || Config { run_builds: true, data_dir: Some(data.0.clone()), ..config(&moto, &["S3"]) };
    let server = TestServer::with_config(config()).await;
    server.call("CreatePipeline", &pipeline("interrupted", codebuild(&[]), vec![]).to_string()).await;
    let path = dir.join("pid");
    let pid = eventually("the build's sleep to start", || async {
        std::fs::read_to_string(&path).ok().and_then(|p| p.trim().parse::<u32>().ok())
    })
    .await;
    server.server.shutdown().await.expect("stops");
    eventually("the shutdown to kill the build's processes", || async {
        (!std::path::Path::new(&format!("/proc/{pid}")).exists()).then_some(())
    })
    .await;

    let server = TestServer::with_config(config()).await;
    let (status, _) = ended(&server, "interrupted", 1).await;
    assert_eq!(status, "Failed");
    let message = failure(&server, "interrupted", 1).await;
    assert!(message.contains("a build cannot resume"), "{message}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn a_build_s_log_is_kept_and_followed_live_while_it_runs() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let dir = markers();
    let spec = format!(
        "version: 0.2\nphases:\n  build:\n    commands:\n      - echo first-line\n      - while [ ! -f {m}/go ]; do sleep 0.05; done\n      - echo after-the-reader-came\n",
        m = dir.display()
    );
    let (_moto, server) = setup(&[("buildspec.yml", &spec)]).await;
    server.call("CreatePipeline", &pipeline("logged", codebuild(&[]), vec![]).to_string()).await;
    // The build's action execution id, once it runs.
    let id = eventually("the build to run", || async {
        let listed = server.call("ListActionExecutions", r#"{"pipelineName": "logged"}"#).await.json();
        let details = listed["actionExecutionDetails"].as_array()?.clone();
        details
            .iter()
            .find(|d| d["actionName"] == "Compile")
            .and_then(|d| d["actionExecutionId"].as_str().map(String::from))
    })
    .await;
    eventually("the first line", || async {
        let log = server.control("GET", &format!("/_emulator/builds/{id}/log"), &json!({})).await;
        (log.status == 200 && log.text().contains("first-line")).then_some(())
    })
    .await;
    // A follower gets what was printed, then the lines as they come, then the end.
    let addr = server.url().trim_start_matches("http://").to_string();
    let mut stream = tokio::net::TcpStream::connect(&addr).await.expect("connects");
    let request = format!("GET /_emulator/builds/{id}/log/stream HTTP/1.1\r\nHost: localhost\r\n\r\n");
    stream.write_all(request.as_bytes()).await.expect("sends");
    let mut text = String::new();
    let mut chunk = [0u8; 16 * 1024];
    let mut released = false;
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    while !text.contains("event: end") {
        if !released && text.contains("data: first-line") {
            std::fs::write(dir.join("go"), "").expect("writes");
            released = true;
        }
        match tokio::time::timeout_at(deadline, stream.read(&mut chunk)).await {
            Ok(Ok(n)) if n > 0 => text.push_str(&String::from_utf8_lossy(&chunk[..n])),
            _ => panic!("the log stream ended or stalled: {text}"),
        }
    }
    assert!(text.contains("content-type: text/event-stream"), "{text}");
    assert!(text.contains("event: line\ndata: after-the-reader-came"), "a line printed while following: {text}");
    assert!(text.contains("Entering phase BUILD"), "CodeBuild's own lines: {text}");
    let kept = server.control("GET", &format!("/_emulator/builds/{id}/log"), &json!({})).await.text();
    assert!(kept.contains("first-line") && kept.contains("after-the-reader-came"), "{kept}");
    let missing = server.control("GET", "/_emulator/builds/not-an-id/log", &json!({})).await;
    assert_eq!(missing.status, 400, "{}", missing.text());
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn parameters_and_secrets_come_from_the_neighbours_are_masked_in_the_log_which_goes_to_cloudwatch_logs() {
    let spec = r#"version: 0.2
env:
  parameter-store:
    DB_HOST: /app/db-host
  secrets-manager:
    DB_PASSWORD: app/db:password
phases:
  build:
    commands:
      - echo "connecting to $DB_HOST with $DB_PASSWORD and $API_TOKEN"
      - printf '%s|%s|%s' "$DB_HOST" "$DB_PASSWORD" "$API_TOKEN" > seen.txt
artifacts:
  files: [seen.txt]
"#;
    let moto = Moto::start().await;
    moto.create_bucket("artifacts").await;
    moto.seed_source("releases", "app.zip").await;
    moto.put_object("releases", "app.zip", &zip(&[("buildspec.yml", spec)])).await;
    let ssm = aws_sdk_ssm::Client::new(&moto.sdk_config());
    ssm.put_parameter()
        .name("/app/db-host")
        .value("db.internal")
        .r#type(aws_sdk_ssm::types::ParameterType::String)
        .send()
        .await
        .expect("parameter");
    ssm.put_parameter()
        .name("/app/token")
        .value("tok-123456")
        .r#type(aws_sdk_ssm::types::ParameterType::SecureString)
        .send()
        .await
        .expect("parameter");
    let secrets = aws_sdk_secretsmanager::Client::new(&moto.sdk_config());
    secrets.create_secret().name("app/db").secret_string(r#"{"password": "s3cr3t-pw"}"#).send().await.expect("secret");
    let services = ["S3", "SSM", "SECRETS_MANAGER", "CLOUDWATCH_LOGS"];
    let server = TestServer::with_config(Config { run_builds: true, ..config(&moto, &services) }).await;
    let mut action = codebuild(&["Seen"]);
    action["configuration"]["EnvironmentVariables"] =
        json!(r#"[{"name":"API_TOKEN","value":"/app/token","type":"PARAMETER_STORE"}]"#);
    let created = server.call("CreatePipeline", &pipeline("secretive", action, vec![]).to_string()).await;
    assert_eq!(created.status, 200, "{}", created.text());
    let (status, _) = ended(&server, "secretive", 1).await;
    assert_eq!(status, "Succeeded", "{}", action_state(&server, "secretive", 1).await);
    let listed = server.call("ListActionExecutions", r#"{"pipelineName": "secretive"}"#).await.json();
    let compile = listed["actionExecutionDetails"]
        .as_array()
        .and_then(|d| d.iter().find(|d| d["actionName"] == "Compile"))
        .cloned()
        .expect("ran");
    let location = &compile["output"]["outputArtifacts"][0]["s3location"];
    let (_, bytes) =
        moto.get_object(location["bucket"].as_str().unwrap_or(""), location["key"].as_str().unwrap_or("")).await;
    assert_eq!(unzip(&bytes, "seen.txt"), "db.internal|s3cr3t-pw|tok-123456");
    let id = compile["actionExecutionId"].as_str().unwrap_or_default();
    let log = server.control("GET", &format!("/_emulator/builds/{id}/log"), &json!({})).await.text();
    assert!(
        log.contains("connecting to *** with *** and ***"),
        "parameters and secrets are masked, as CodeBuild does: {log}"
    );
    assert!(!log.contains("s3cr3t-pw") && !log.contains("tok-123456"), "{log}");

    // The log is in CloudWatch Logs, as CodeBuild puts it: /aws/codebuild/<project>, one stream per build.
    let logs = aws_sdk_cloudwatchlogs::Client::new(&moto.sdk_config());
    let streams = logs.describe_log_streams().log_group_name("/aws/codebuild/widgets").send().await.expect("the group");
    let stream = streams.log_streams()[0].log_stream_name().unwrap_or_default().to_string();
    let build_id = compile["output"]["executionResult"]["externalExecutionId"].as_str().unwrap_or_default();
    assert_eq!(build_id, format!("widgets:{stream}"), "the stream is the build's uuid");
    let events = logs
        .get_log_events()
        .log_group_name("/aws/codebuild/widgets")
        .log_stream_name(&stream)
        .send()
        .await
        .expect("events");
    assert!(events.events().iter().any(|e| e.message().is_some_and(|m| m.contains("connecting to *** with ***"))));

    // A parameter that does not exist: the build fails before any command, in AWS's form.
    let mut action = codebuild(&[]);
    action["configuration"]["EnvironmentVariables"] =
        json!(r#"[{"name":"X","value":"/missing","type":"PARAMETER_STORE"}]"#);
    server.call("CreatePipeline", &pipeline("unreadable", action, vec![]).to_string()).await;
    let (status, _) = ended(&server, "unreadable", 1).await;
    assert_eq!(status, "Failed");
    let message = failure(&server, "unreadable", 1).await;
    assert_eq!(
        message,
        "Build terminated with state: FAILED. Phase: DOWNLOAD_SOURCE, Code: Decrypted Variables Error, Message: parameter does not exist: /missing"
    );
}

#[tokio::test]
async fn a_codebuild_neighbour_s_project_gives_its_buildspec_variables_and_timeout() {
    let moto = Moto::start().await;
    moto.create_bucket("artifacts").await;
    moto.seed_source("releases", "app.zip").await;
    moto.put_object("releases", "app.zip", &zip(&[("ci/spec.yml", "version: 0.2\nenv:\n  exported-variables: [SEEN]\nphases:\n  build:\n    commands:\n      - export SEEN=\"$FROM_PROJECT/$FROM_ACTION\"\n")])).await;
    let codebuild = aws_sdk_codebuild::Client::new(&moto.sdk_config());
    let environment = |variable: &str| {
        aws_sdk_codebuild::types::ProjectEnvironment::builder()
            .r#type(aws_sdk_codebuild::types::EnvironmentType::LinuxContainer)
            .image("aws/codebuild/standard:7.0")
            .compute_type(aws_sdk_codebuild::types::ComputeType::BuildGeneral1Small)
            .environment_variables(
                aws_sdk_codebuild::types::EnvironmentVariable::builder()
                    .name(variable)
                    .value("from-project")
                    .build()
                    .expect("a variable"),
            )
            .build()
            .expect("an environment")
    };
    let project = |name: &str, buildspec: &str, timeout: i32| {
        codebuild
            .create_project()
            .name(name)
            .source(
                aws_sdk_codebuild::types::ProjectSource::builder()
                    .r#type(aws_sdk_codebuild::types::SourceType::Codepipeline)
                    .location("moto-requires-a-location")
                    .buildspec(buildspec)
                    .build()
                    .expect("a source"),
            )
            .artifacts(
                aws_sdk_codebuild::types::ProjectArtifacts::builder()
                    .r#type(aws_sdk_codebuild::types::ArtifactsType::Codepipeline)
                    .location("moto-requires-a-location")
                    .build()
                    .expect("artifacts"),
            )
            .environment(environment("FROM_PROJECT"))
            .service_role("arn:aws:iam::123456789012:role/codebuild")
            .timeout_in_minutes(timeout)
            .send()
    };
    project("widgets", "ci/spec.yml", 60).await.expect("a project");
    project("slow", "version: 0.2\nphases:\n  build:\n    commands:\n      - sleep 300\n", 5).await.expect("a project");
    let server = TestServer::with_config(Config { run_builds: true, ..config(&moto, &["S3", "CODEBUILD"]) }).await;

    // The project's buildspec (a path in the source) and variables; the action's variables win over them.
    server.call("CreatePipeline", &pipeline("projected", codebuild_action("widgets"), vec![]).to_string()).await;
    let (status, _) = ended(&server, "projected", 1).await;
    assert_eq!(status, "Succeeded", "{}", action_state(&server, "projected", 1).await);
    let listed = server.call("ListActionExecutions", r#"{"pipelineName": "projected"}"#).await.json();
    let seen = listed["actionExecutionDetails"][0]["output"]["outputVariables"]["SEEN"].clone();
    assert_eq!(seen, "from-project/action-value");

    // The project's timeout (5 minutes here), on the emulator clock.
    server.call("CreatePipeline", &pipeline("slow", codebuild_action("slow"), vec![]).to_string()).await;
    eventually("the slow build to run", || async {
        (action_state(&server, "slow", 1).await["status"] == "InProgress").then_some(())
    })
    .await;
    server.control("POST", "/_emulator/clock/advance", &json!({"seconds": 5 * 60})).await;
    let (status, _) = ended(&server, "slow", 1).await;
    assert_eq!(status, "Failed");
    let message = failure(&server, "slow", 1).await;
    assert!(
        message.starts_with("Build terminated with state: TIMED_OUT") && message.contains("5 minutes"),
        "{message}"
    );

    // A project the neighbour does not know fails the action as StartBuild would.
    server.call("CreatePipeline", &pipeline("unknown", codebuild_action("nope"), vec![]).to_string()).await;
    let (status, _) = ended(&server, "unknown", 1).await;
    assert_eq!(status, "Failed");
    let message = failure(&server, "unknown", 1).await;
    assert!(message.starts_with("Error calling startBuild: "), "{message}");
}

fn codebuild_action(project: &str) -> Value {
    let mut action = codebuild(&[]);
    action["configuration"]["ProjectName"] = json!(project);
    action
}

#[tokio::test]
async fn without_an_s3_neighbour_builds_keep_their_artifacts_in_the_emulator_s_own_store() {
    let server = TestServer::with_config(Config { action_duration_ms: 5, run_builds: true, ..Config::default() }).await;
    let spec = "version: 0.2\nenv:\n  exported-variables: [FILES]\nphases:\n  build:\n    commands:\n      - export FILES=$(ls | tr '\\n' ' ')\n      - echo built > built.txt\nartifacts:\n  files: [built.txt]\n";
    let definition = json!({"pipeline": {
        "name": "local-store", "roleArn": "arn:aws:iam::123456789012:role/r",
        "artifactStore": {"type": "S3", "location": "local-artifacts"},
        "stages": [
            {"name": "Source", "actions": [{"name": "Checkout", "actionTypeId": at("Source", "CodeCommit"),
                "configuration": {"RepositoryName": "app", "BranchName": "main"}, "outputArtifacts": [{"name": "App"}]}]},
            {"name": "Build", "actions": [{"name": "Compile", "namespace": "Build", "actionTypeId": at("Build", "CodeBuild"),
                "configuration": {"ProjectName": "widgets", "BuildspecOverride": spec},
                "inputArtifacts": [{"name": "App"}], "outputArtifacts": [{"name": "Built"}]}]},
            {"name": "Check", "actions": [{"name": "Read", "actionTypeId": at("Build", "CodeBuild"),
                "configuration": {"ProjectName": "checker", "BuildspecOverride": "version: 0.2\nphases:\n  build:\n    commands:\n      - grep -q built built.txt\n"},
                "inputArtifacts": [{"name": "Built"}]}]}
        ]
    }});
    let created = server.call("CreatePipeline", &definition.to_string()).await;
    assert_eq!(created.status, 200, "{}", created.text());
    let (status, _) = ended(&server, "local-store", 1).await;
    assert_eq!(status, "Succeeded", "{}", action_state(&server, "local-store", 2).await);
    let listed = server.call("ListActionExecutions", r#"{"pipelineName": "local-store"}"#).await.json();
    let compile = listed["actionExecutionDetails"]
        .as_array()
        .and_then(|d| d.iter().find(|d| d["actionName"] == "Compile"))
        .cloned()
        .expect("ran");
    // The simulated source's artifact was a real zip, unzipped into the build's directory.
    assert_eq!(compile["output"]["outputVariables"]["FILES"], "codepipeline-local-revision.json ");
    // Its output downloads from the emulator.
    let location = &compile["output"]["outputArtifacts"][0]["s3location"];
    let path = format!(
        "/_emulator/artifacts?bucket={}&key={}",
        location["bucket"].as_str().unwrap_or(""),
        location["key"].as_str().unwrap_or("")
    );
    let download = server.control("GET", &path, &json!({})).await;
    assert_eq!(download.status, 200, "{}", download.text());
    assert_eq!(unzip(&download.body, "built.txt").trim(), "built");
}

#[tokio::test]
async fn a_delegated_build_runs_on_the_codebuild_neighbour_and_is_followed_to_its_end() {
    let moto = Moto::start().await;
    moto.create_bucket("artifacts").await;
    moto.seed_source("releases", "app.zip").await;
    let neighbour = aws_sdk_codebuild::Client::new(&moto.sdk_config());
    neighbour
        .create_project()
        .name("widgets")
        .source(
            aws_sdk_codebuild::types::ProjectSource::builder()
                .r#type(aws_sdk_codebuild::types::SourceType::Codepipeline)
                .location("moto-requires-a-location")
                .build()
                .expect("a source"),
        )
        .artifacts(
            aws_sdk_codebuild::types::ProjectArtifacts::builder()
                .r#type(aws_sdk_codebuild::types::ArtifactsType::Codepipeline)
                .location("moto-requires-a-location")
                .build()
                .expect("artifacts"),
        )
        .environment(
            aws_sdk_codebuild::types::ProjectEnvironment::builder()
                .r#type(aws_sdk_codebuild::types::EnvironmentType::LinuxContainer)
                .image("aws/codebuild/standard:7.0")
                .compute_type(aws_sdk_codebuild::types::ComputeType::BuildGeneral1Small)
                .build()
                .expect("an environment"),
        )
        .service_role("arn:aws:iam::123456789012:role/codebuild")
        .send()
        .await
        .expect("a project");
    // moto's CodeBuild runs nothing: every build it is asked for reports SUCCEEDED (and writes no artifacts, so the
    // action here has none).
    let config = Config { delegate_builds: true, ..config(&moto, &["S3", "CODEBUILD"]) };
    let server = TestServer::with_config(config).await;
    server.call("CreatePipeline", &pipeline("delegated", codebuild(&[]), vec![]).to_string()).await;
    let (status, _) = ended(&server, "delegated", 1).await;
    let build = action_state(&server, "delegated", 1).await;
    assert_eq!(status, "Succeeded", "{build}");
    let id = build["externalExecutionId"].as_str().unwrap_or_default().to_string();
    let started = neighbour.list_builds_for_project().project_name("widgets").send().await.expect("builds");
    assert_eq!(started.ids(), std::slice::from_ref(&id), "the build the action followed is the neighbour's");
}

#[tokio::test]
async fn behaviour_rules_steer_builds_without_a_process_and_bad_buildspecs_fail_clearly() {
    let dir = markers();
    let spec = format!("version: 0.2\nphases:\n  build:\n    commands:\n      - touch {}/ran\n", dir.display());
    let (moto, server) = setup(&[("buildspec.yml", &spec)]).await;
    // A rule that fails the action decides it: no process starts.
    server.set_behaviors(json!([{"action": "Compile", "outcome": "fail", "message": "steered"}])).await;
    server.call("CreatePipeline", &pipeline("steered", codebuild(&[]), vec![]).to_string()).await;
    let (status, _) = ended(&server, "steered", 1).await;
    assert_eq!(status, "Failed");
    assert_eq!(failure(&server, "steered", 1).await, "steered");
    assert!(!dir.join("ran").exists(), "no build ran");
    server.set_behaviors(json!([])).await;

    // A buildspec that does not parse, a command that does not exist, an artifact selection that matches nothing.
    let cases: [(&str, &str, &[&str], &str); 3] = [
        (
            "unparsable",
            "version: 0.2\nphases: [",
            &[],
            "Phase: DOWNLOAD_SOURCE, Code: YAML_FILE_ERROR, Message: YAML file error: ",
        ),
        (
            "not-found",
            "version: 0.2\nphases:\n  build:\n    commands:\n      - no-such-tool --version\n",
            &[],
            "Phase: BUILD, Code: COMMAND_EXECUTION_ERROR, Message: Error while executing command: no-such-tool --version. Reason: exit status 127",
        ),
        (
            "no-match",
            "version: 0.2\nphases:\n  build:\n    commands:\n      - echo ok\nartifacts:\n  files: ['dist/**/*']\n",
            &["Out"],
            "Phase: UPLOAD_ARTIFACTS, Code: CLIENT_ERROR, Message: no matching artifact paths found",
        ),
    ];
    for (name, spec, outputs, expected) in cases {
        moto.put_object("releases", "app.zip", &zip(&[("buildspec.yml", spec)])).await;
        server.call("CreatePipeline", &pipeline(name, codebuild(outputs), vec![]).to_string()).await;
        let (status, _) = ended(&server, name, 1).await;
        assert_eq!(status, "Failed", "{name}");
        let message = failure(&server, name, 1).await;
        assert!(message.starts_with("Build terminated with state: FAILED. "), "{name}: {message}");
        assert!(message.contains(expected), "{name}: {message}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
