//! State on disk (`--data-dir`): restarts keep everything and running work resumes; a killed server loses no
//! acknowledged write; bad, foreign, newer or locked databases are refused; export and import round-trip; a full
//! disk answers 503 and leaves memory and disk agreeing.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use codepipeline_local::Config;
use serde_json::{Value, json};

use crate::common::{TestServer, complete, eventually};

/// A fresh directory under the system's temporary directory, removed when dropped.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(what: &str) -> TempDir {
        let path = std::env::temp_dir().join(format!("cpl-{what}-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&path).expect("temporary directory");
        TempDir(path)
    }

    fn database(&self) -> PathBuf {
        self.0.join("codepipeline-local.db")
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn config(dir: &Path) -> Config {
    Config { data_dir: Some(dir.to_path_buf()), action_duration_ms: 5, ..Config::default() }
}

fn at(category: &str, owner: &str, provider: &str) -> Value {
    json!({"category": category, "owner": owner, "provider": provider, "version": "1"})
}

/// Source -> Build (CodeBuild) -> Approve (manual) -> Deploy, in `mode`.
fn gated(name: &str, mode: &str) -> Value {
    json!({
        "name": name, "roleArn": "arn:aws:iam::123456789012:role/r", "pipelineType": "V2", "executionMode": mode,
        "artifactStore": {"type": "S3", "location": "artifact-bucket"},
        "variables": [{"name": "Env", "defaultValue": "dev"}],
        "stages": [
            {"name": "Source", "actions": [{"name": "Src", "namespace": "SourceVariables", "actionTypeId": at("Source", "AWS", "S3"),
                "configuration": {"S3Bucket": "src-bucket", "S3ObjectKey": "app.zip"}, "outputArtifacts": [{"name": "Code"}]}]},
            {"name": "Build", "actions": [{"name": "Compile", "namespace": "BuildVars", "actionTypeId": at("Build", "AWS", "CodeBuild"),
                "configuration": {"ProjectName": "app-#{SourceVariables.VersionId}"},
                "inputArtifacts": [{"name": "Code"}], "outputArtifacts": [{"name": "Bin"}]}]},
            {"name": "Approve", "actions": [{"name": "Gate", "actionTypeId": at("Approval", "AWS", "Manual"),
                "configuration": {"CustomData": "Ship #{codepipeline.PipelineExecutionId}?"}}]},
            {"name": "Deploy", "actions": [{"name": "Ship", "actionTypeId": at("Deploy", "AWS", "S3"),
                "configuration": {"BucketName": "site", "Extract": "true"}, "inputArtifacts": [{"name": "Bin"}]}]}
        ]
    })
}

/// Source -> Build by a custom job worker (with a secret configuration value).
fn worked(name: &str) -> Value {
    json!({
        "name": name, "roleArn": "arn:aws:iam::123456789012:role/r",
        "artifactStore": {"type": "S3", "location": "artifact-bucket"},
        "stages": [
            {"name": "Source", "actions": [{"name": "Src", "actionTypeId": at("Source", "AWS", "S3"),
                "configuration": {"S3Bucket": "b", "S3ObjectKey": "k.zip"}, "outputArtifacts": [{"name": "Code"}]}]},
            {"name": "Build", "actions": [{"name": "Job", "actionTypeId": at("Build", "Custom", "Worker"),
                "configuration": {"ProjectName": "web", "Token": "s3cret-value"},
                "inputArtifacts": [{"name": "Code"}]}]}
        ]
    })
}

async fn ok(server: &TestServer, operation: &str, body: Value) -> Value {
    let response = server.call(operation, &body.to_string()).await;
    assert_eq!(response.status, 200, "{operation}: {}", response.text());
    if response.body.is_empty() { Value::Null } else { response.json() }
}

async fn first_execution(server: &TestServer, pipeline: &str) -> String {
    eventually("an execution", || async {
        let out = ok(server, "ListPipelineExecutions", json!({"pipelineName": pipeline})).await;
        out["pipelineExecutionSummaries"].as_array()?.last()?["pipelineExecutionId"].as_str().map(str::to_string)
    })
    .await
}

async fn execution_status(server: &TestServer, pipeline: &str, id: &str) -> String {
    let out = ok(server, "GetPipelineExecution", json!({"pipelineName": pipeline, "pipelineExecutionId": id})).await;
    out["pipelineExecution"]["status"].as_str().unwrap_or_default().to_string()
}

async fn wait_status(server: &TestServer, pipeline: &str, id: &str, wanted: &str) {
    eventually(&format!("{pipeline} {id} to be {wanted}"), || async {
        (execution_status(server, pipeline, id).await == wanted).then_some(())
    })
    .await;
}

/// The approval token of the stage's action, once it waits.
async fn token(server: &TestServer, pipeline: &str, stage: &str) -> String {
    eventually("an approval token", || async {
        let state = ok(server, "GetPipelineState", json!({"name": pipeline})).await;
        let stage = state["stageStates"].as_array()?.iter().find(|s| s["stageName"] == stage)?.clone();
        stage["actionStates"][0]["latestExecution"]["token"].as_str().map(str::to_string)
    })
    .await
}

/// What a client can read of the state, as raw answers: compared before and after a restart.
async fn snapshot(server: &TestServer) -> Vec<(String, Value)> {
    let mut reads = vec![
        ("ListPipelines", json!({})),
        ("ListWebhooks", json!({})),
        ("ListActionTypes", json!({"actionOwnerFilter": "Custom"})),
        ("ListActionTypes", json!({"actionOwnerFilter": "ThirdParty"})),
        ("ListTagsForResource", json!({"resourceArn": "arn:aws:codepipeline:us-east-1:000000000000:queue"})),
    ];
    for pipeline in ["queue", "held", "worked", "slow"] {
        reads.push(("GetPipeline", json!({"name": pipeline})));
        reads.push(("GetPipelineState", json!({"name": pipeline})));
        reads.push(("ListPipelineExecutions", json!({"pipelineName": pipeline})));
        reads.push(("ListActionExecutions", json!({"pipelineName": pipeline})));
    }
    reads.push(("GetPipeline", json!({"name": "slow", "version": 1})));
    let mut out = Vec::new();
    for (operation, body) in reads {
        let answer = ok(server, operation, body.clone()).await;
        out.push((format!("{operation} {body}"), answer));
    }
    out
}

#[tokio::test]
async fn a_restart_keeps_every_resource_and_in_flight_work_resumes() {
    let dir = TempDir::new("restart");
    let server = TestServer::with_config(config(&dir.0)).await;
    server
        .set_behaviors(json!([
            {"pipeline": "held", "stage": "Build", "outcome": "hold"},
            {"pipeline": "slow", "stage": "Build", "delayMs": 200_000}
        ]))
        .await;
    // Every resource kind.
    let property = |name: &str, secret: bool| json!({"name": name, "required": !secret, "key": !secret, "secret": secret, "queryable": !secret});
    ok(
        &server,
        "CreateCustomActionType",
        json!({"category": "Build", "provider": "Worker", "version": "1",
            "configurationProperties": [property("ProjectName", false), property("Token", true)],
            "inputArtifactDetails": {"minimumCount": 0, "maximumCount": 1},
            "outputArtifactDetails": {"minimumCount": 0, "maximumCount": 1},
            "tags": [{"key": "team", "value": "ci"}]}),
    )
    .await;
    let partner = server
        .control(
            "POST",
            "/_emulator/third-party-action-types",
            &json!({"category": "Deploy", "provider": "Partner", "version": "1", "clientToken": "partner-token",
                "inputArtifactDetails": {"minimumCount": 0, "maximumCount": 1},
                "outputArtifactDetails": {"minimumCount": 0, "maximumCount": 0}}),
        )
        .await;
    assert_eq!(partner.status, 200, "{}", partner.text());
    ok(&server, "CreatePipeline", json!({"pipeline": gated("queue", "QUEUED"), "tags": [{"key": "k", "value": "v"}]}))
        .await;
    ok(&server, "CreatePipeline", json!({"pipeline": gated("held", "SUPERSEDED")})).await;
    ok(&server, "CreatePipeline", json!({"pipeline": gated("slow", "SUPERSEDED")})).await;
    ok(&server, "CreatePipeline", json!({"pipeline": worked("worked")})).await;
    ok(
        &server,
        "PutWebhook",
        json!({"webhook": {"name": "hook", "targetPipeline": "queue", "targetAction": "Src",
            "filters": [{"jsonPath": "$.ref", "matchEquals": "refs/heads/main"}],
            "authentication": "GITHUB_HMAC", "authenticationConfiguration": {"SecretToken": "hook-secret"}}}),
    )
    .await;
    ok(
        &server,
        "DisableStageTransition",
        json!({"pipelineName": "slow", "stageName": "Deploy", "transitionType": "Inbound", "reason": "frozen"}),
    )
    .await;
    // A pending approval and two queued executions behind it, in order.
    let first = first_execution(&server, "queue").await;
    let approval = token(&server, "queue", "Approve").await;
    let mut queued = Vec::new();
    for _ in 0..2 {
        let out = ok(&server, "StartPipelineExecution", json!({"name": "queue"})).await;
        queued.push(out["pipelineExecutionId"].as_str().expect("id").to_string());
    }
    // A held action, a slow one, and a job polled and acknowledged by a worker.
    let held = first_execution(&server, "held").await;
    let slow = first_execution(&server, "slow").await;
    let worked_execution = first_execution(&server, "worked").await;
    let job = eventually("a job", || async {
        let out =
            ok(&server, "PollForJobs", json!({"actionTypeId": at("Build", "Custom", "Worker"), "maxBatchSize": 1}))
                .await;
        out["jobs"].as_array()?.first().cloned()
    })
    .await;
    let (job_id, nonce) = (job["id"].as_str().expect("id"), job["nonce"].as_str().expect("nonce"));
    ok(&server, "AcknowledgeJob", json!({"jobId": job_id, "nonce": nonce})).await;
    server.advance_clock(100.0).await;
    eventually("the held and slow actions to run", || async {
        let held_state = ok(&server, "GetPipelineState", json!({"name": "held"})).await;
        let slow_state = ok(&server, "GetPipelineState", json!({"name": "slow"})).await;
        (held_state["stageStates"][1]["latestExecution"]["status"] == "InProgress"
            && slow_state["stageStates"][1]["latestExecution"]["status"] == "InProgress")
            .then_some(())
    })
    .await;
    // A second version while the slow action runs: its execution keeps the first, and ends Cancelled once the action
    // has finished (issue 28), after the restart.
    let mut updated = gated("slow", "SUPERSEDED");
    updated["stages"][3]["actions"][0]["configuration"]["Extract"] = json!("false");
    updated["version"] = json!(1);
    ok(&server, "UpdatePipeline", json!({"pipeline": updated})).await;
    // Nothing may still be moving when the state is read: the queued executions' 5 ms actions have ended and only
    // held work (the approval, the held and slow actions, the worker's job) is in progress.
    eventually("only held work to be in progress", || async {
        for (pipeline, held) in [("queue", "Gate"), ("held", "Compile"), ("worked", "Job"), ("slow", "Compile")] {
            let runs = ok(&server, "ListActionExecutions", json!({"pipelineName": pipeline})).await;
            let moving = runs["actionExecutionDetails"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|run| run["status"] == "InProgress" && run["actionName"] != held);
            if moving {
                return None;
            }
        }
        Some(())
    })
    .await;
    let before = snapshot(&server).await;
    let last_event = server.control("GET", "/_emulator/events", &Value::Null).await.json()["events"]
        .as_array()
        .and_then(|e| e.last())
        .map(|e| e["sequence"].as_u64().unwrap_or(0))
        .expect("events were published");
    server.server.shutdown().await.expect("stops");

    let server = TestServer::with_config(config(&dir.0)).await;
    let after = snapshot(&server).await;
    for ((what, a), (_, b)) in before.iter().zip(&after) {
        assert_eq!(a, b, "{what} reads the same after the restart");
    }
    let clock = server.control("POST", "/_emulator/clock/advance", &json!({"seconds": 0})).await.json();
    assert!(clock["offsetSeconds"].as_f64().expect("offset") >= 100.0, "the clock keeps its offset: {clock}");
    let behaviors = server.control("GET", "/_emulator/behaviors", &Value::Null).await.json();
    assert_eq!(behaviors["rules"].as_array().map(Vec::len), Some(2), "behaviour rules survive: {behaviors}");
    let partners = server.control("GET", "/_emulator/third-party-action-types", &Value::Null).await.text();
    assert!(partners.contains("partner-token"), "partner types keep their client token: {partners}");

    // The job worker that acknowledged before the restart answers after it.
    let details = ok(&server, "GetJobDetails", json!({"jobId": job_id})).await;
    assert_eq!(details["jobDetails"]["id"], job_id);
    ok(&server, "PutJobSuccessResult", json!({"jobId": job_id})).await;
    wait_status(&server, "worked", &worked_execution, "Succeeded").await;
    // The approval keeps its token; the queue keeps its order.
    ok(
        &server,
        "PutApprovalResult",
        json!({"pipelineName": "queue", "stageName": "Approve", "actionName": "Gate", "token": approval,
            "result": {"summary": "after the restart", "status": "Approved"}}),
    )
    .await;
    wait_status(&server, "queue", &first, "Succeeded").await;
    let state = ok(&server, "GetPipelineState", json!({"name": "queue"})).await;
    assert_eq!(state["stageStates"][2]["latestExecution"]["pipelineExecutionId"], queued[0].as_str(), "first in");
    // The held action is still held and can be completed.
    let completed = complete(
        &server,
        json!({"pipelineName": "held", "pipelineExecutionId": held, "stageName": "Build", "actionName": "Compile"}),
    )
    .await;
    assert_eq!(completed.status, 200, "{}", completed.text());
    token(&server, "held", "Approve").await;
    // The slow action finishes at its due time on the restored clock.
    assert_eq!(execution_status(&server, "slow", &slow).await, "InProgress");
    server.advance_clock(101.0).await;
    eventually("the slow action to finish", || async {
        let state = ok(&server, "GetPipelineState", json!({"name": "slow"})).await;
        (state["stageStates"][1]["actionStates"][0]["latestExecution"]["status"] == "Succeeded"
            && state["stageStates"][1]["latestExecution"]["status"] == "Cancelled")
            .then_some(())
    })
    .await;
    assert_eq!(execution_status(&server, "slow", &slow).await, "Cancelled", "the update's end survived the restart");
    // The event sequence goes on where it was.
    let events = server.control("GET", "/_emulator/events", &Value::Null).await.json();
    let first_new = events["events"][0]["sequence"].as_u64().expect("new events");
    assert!(first_new > last_event, "sequence {first_new} continues after {last_event}");
}

/// Starts the binary on `dir`, returning the child and its address.
pub fn spawn(dir: &Path, extra: &[&str]) -> (Child, String) {
    spawn_with_env(dir, extra, &[])
}

/// [`spawn`], with these environment variables.
pub fn spawn_with_env(dir: &Path, extra: &[&str], env: &[(&str, &str)]) -> (Child, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_codepipeline-local"))
        .args(["--port", "0", "--action-duration-ms", "5", "--data-dir"])
        .arg(dir)
        .args(extra)
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("binary starts");
    let Some(stdout) = child.stdout.take() else {
        let _ = child.kill();
        let _ = child.wait();
        panic!("stdout is piped");
    };
    let mut lines = BufReader::new(stdout).lines();
    loop {
        let Some(Ok(line)) = lines.next() else {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the server ended before its Ready. line");
        };
        if line.trim_end().ends_with("Ready.") {
            let addr = line.split("http://").nth(1).and_then(|r| r.split_whitespace().next()).expect("address");
            // Keep draining the pipe so the server never blocks on a full one.
            std::thread::spawn(move || for _ in lines.by_ref() {});
            return (child, addr.to_string());
        }
    }
}

fn aws(addr: &str, operation: &str, body: &Value) -> (u16, Value) {
    let (status, json) = try_aws(addr, operation, body);
    (status.expect("the server answers"), json)
}

/// What one writer had acknowledged when the server was killed.
#[derive(Default)]
struct Acknowledged {
    /// The last value of the writer's tag the server acknowledged.
    tag: Option<u64>,
    executions: Vec<String>,
}

#[test]
fn a_server_killed_at_any_moment_keeps_every_acknowledged_write() {
    let dir = TempDir::new("crash");
    let (mut child, mut addr) = spawn(&dir.0, &[]);
    let arn = "arn:aws:codepipeline:us-east-1:000000000000:crash";
    assert_eq!(aws(&addr, "CreatePipeline", &json!({"pipeline": gated("crash", "PARALLEL")})).0, 200);
    for round in 0..4u64 {
        let writers: Vec<_> = (0..6)
            .map(|writer| {
                let addr = addr.clone();
                std::thread::spawn(move || {
                    let mut acknowledged = Acknowledged::default();
                    for i in 0u64.. {
                        let (status, answer) = if i % 3 == 2 {
                            try_aws(&addr, "StartPipelineExecution", &json!({"name": "crash"}))
                        } else {
                            let tag = json!({"key": format!("writer-{writer}"), "value": format!("{round}-{i:08}")});
                            try_aws(&addr, "TagResource", &json!({"resourceArn": arn, "tags": [tag]}))
                        };
                        match status {
                            Some(200) if i % 3 == 2 => acknowledged
                                .executions
                                .push(answer["pipelineExecutionId"].as_str().unwrap_or_default().to_string()),
                            Some(200) => acknowledged.tag = Some(i),
                            Some(other) => panic!("answered {other}: {answer}"),
                            None => return acknowledged,
                        }
                    }
                    acknowledged
                })
            })
            .collect();
        // A moment that differs from round to round and from run to run.
        let jitter = u64::from(uuid::Uuid::new_v4().as_bytes()[0]) % 200;
        std::thread::sleep(Duration::from_millis(30 + jitter));
        child.kill().expect("kill -9");
        child.wait().expect("reaped");
        let acknowledged: Vec<Acknowledged> = writers.into_iter().map(|w| w.join().expect("writer ends")).collect();
        (child, addr) = spawn(&dir.0, &[]);
        let (status, tags) = aws(&addr, "ListTagsForResource", &json!({"resourceArn": arn}));
        assert_eq!(status, 200, "{tags}");
        let (_, executions) =
            aws(&addr, "ListPipelineExecutions", &json!({"pipelineName": "crash", "maxResults": 100}));
        let mut known: std::collections::HashSet<String> = std::collections::HashSet::new();
        let mut page = executions;
        loop {
            for summary in page["pipelineExecutionSummaries"].as_array().into_iter().flatten() {
                known.insert(summary["pipelineExecutionId"].as_str().unwrap_or_default().to_string());
            }
            let Some(next) = page["nextToken"].as_str().map(str::to_string) else { break };
            page = aws(
                &addr,
                "ListPipelineExecutions",
                &json!({"pipelineName": "crash", "maxResults": 100, "nextToken": next}),
            )
            .1;
        }
        let mut writes = 0;
        for (writer, acknowledged) in acknowledged.iter().enumerate() {
            if let Some(last) = acknowledged.tag {
                writes += 1;
                let value = tags["tags"]
                    .as_array()
                    .and_then(|t| t.iter().find(|t| t["key"] == format!("writer-{writer}")))
                    .and_then(|t| t["value"].as_str())
                    .unwrap_or_default()
                    .to_string();
                let (kept_round, kept) = value.split_once('-').expect("round-counter");
                let kept: u64 = kept.parse().expect("counter");
                assert!(
                    kept_round == round.to_string() && kept >= last,
                    "round {round}: writer {writer}'s acknowledged value {last} was lost (disk has {value})"
                );
            }
            for id in &acknowledged.executions {
                writes += 1;
                assert!(known.contains(id), "round {round}: acknowledged execution {id} was lost");
            }
        }
        assert!(writes > 0, "round {round}: some writes were acknowledged before the kill");
    }
    child.kill().expect("kill");
    let _ = child.wait();
}

pub fn try_aws(addr: &str, operation: &str, body: &Value) -> (Option<u16>, Value) {
    use std::io::{Read, Write};
    let body = body.to_string();
    let request = format!(
        "POST / HTTP/1.1\r\nHost: {addr}\r\nX-Amz-Target: CodePipeline_20150709.{operation}\r\n\
         Content-Type: application/x-amz-json-1.1\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let attempt = || -> Option<(u16, Value)> {
        let mut stream = std::net::TcpStream::connect(addr).ok()?;
        stream.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
        stream.write_all(request.as_bytes()).ok()?;
        let mut answer = String::new();
        stream.read_to_string(&mut answer).ok()?;
        let status = answer.split_whitespace().nth(1)?.parse().ok()?;
        let json = answer.split("\r\n\r\n").nth(1).and_then(|b| serde_json::from_str(b).ok()).unwrap_or(Value::Null);
        Some((status, json))
    };
    match attempt() {
        Some((status, json)) => (Some(status), json),
        None => (None, Value::Null),
    }
}

/// Runs the binary on `dir` expecting it to refuse to start; returns what it logged.
fn refused(dir: &Path) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_codepipeline-local"))
        .args(["--port", "0", "--data-dir"])
        .arg(dir)
        .output()
        .expect("runs");
    assert!(!output.status.success(), "the server must not start");
    format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr))
}

#[test]
fn corrupt_foreign_newer_and_locked_databases_are_refused_and_left_untouched() {
    // Not a database at all.
    let dir = TempDir::new("corrupt");
    let garbage = b"this is not an SQLite database, it only looks like a file in the way".repeat(100);
    std::fs::write(dir.database(), &garbage).expect("written");
    let log = refused(&dir.0);
    assert!(log.contains("is not a readable codepipeline-local database"), "{log}");
    assert_eq!(std::fs::read(dir.database()).expect("still there"), garbage, "nothing is overwritten");

    // Another application's SQLite database.
    let dir = TempDir::new("foreign");
    {
        let other = rusqlite::Connection::open(dir.database()).expect("opens");
        other.execute_batch("CREATE TABLE notes (text TEXT); INSERT INTO notes VALUES ('mine');").expect("written");
    }
    let before = std::fs::read(dir.database()).expect("there");
    let log = refused(&dir.0);
    assert!(log.contains("another application"), "{log}");
    assert_eq!(std::fs::read(dir.database()).expect("still there"), before, "nothing is overwritten");

    // Ours, from a newer version; and ours with a damaged row.
    let dir = TempDir::new("newer");
    let (mut child, addr) = spawn(&dir.0, &[]);
    assert_eq!(aws(&addr, "CreatePipeline", &json!({"pipeline": gated("p", "QUEUED")})).0, 200);
    // A second server on the same directory refuses to start while the first runs.
    let log = refused(&dir.0);
    assert!(log.contains("in use by another codepipeline-local server"), "{log}");
    child.kill().expect("kill");
    child.wait().expect("reaped");
    {
        let db = rusqlite::Connection::open(dir.database()).expect("opens");
        db.execute_batch("PRAGMA user_version = 99;").expect("bumped");
    }
    let log = refused(&dir.0);
    assert!(log.contains("newer codepipeline-local (schema version 99"), "{log}");
    {
        let db = rusqlite::Connection::open(dir.database()).expect("opens");
        db.execute_batch("PRAGMA user_version = 1; UPDATE pipelines SET body = '{\"name\": 7}';").expect("damaged");
    }
    let log = refused(&dir.0);
    assert!(log.contains("holds state that cannot be loaded") && log.contains("pipeline p"), "{log}");
}

#[tokio::test]
async fn export_and_import_round_trip_losslessly_and_bad_documents_change_nothing() {
    let source = TestServer::fast().await;
    let property = |name: &str, secret: bool| json!({"name": name, "required": !secret, "key": !secret, "secret": secret, "queryable": !secret});
    ok(
        &source,
        "CreateCustomActionType",
        json!({"category": "Build", "provider": "Worker", "version": "1",
            "configurationProperties": [property("ProjectName", false), property("Token", true)],
            "inputArtifactDetails": {"minimumCount": 0, "maximumCount": 1},
            "outputArtifactDetails": {"minimumCount": 0, "maximumCount": 1}}),
    )
    .await;
    ok(&source, "CreatePipeline", json!({"pipeline": worked("worked"), "tags": [{"key": "a", "value": "b"}]})).await;
    ok(&source, "CreatePipeline", json!({"pipeline": gated("gated", "QUEUED")})).await;
    token(&source, "gated", "Approve").await;
    ok(&source, "StartPipelineExecution", json!({"name": "gated"})).await;
    source.advance_clock(42.0).await;
    // Exported while nothing is due, so the copy cannot move on before it is read back.
    eventually("the second execution to wait for the approval stage", || async {
        let state = ok(&source, "GetPipelineState", json!({"name": "gated"})).await;
        state["stageStates"][2]["inboundExecutions"].as_array().is_some_and(|i| !i.is_empty()).then_some(())
    })
    .await;
    let masked = source.control("GET", "/_emulator/state", &Value::Null).await;
    assert_eq!(masked.status, 200);
    assert!(!masked.text().contains("s3cret-value"), "secrets are masked unless asked for");
    let exported = source.control("GET", "/_emulator/state?includeSecrets=true", &Value::Null).await;
    assert!(exported.text().contains("s3cret-value"));
    let document = exported.json();
    assert_eq!(document["format"], "codepipeline-local-state");
    assert_eq!(document["version"], 1);

    // Into a server with a data directory: all of it, and it survives that server's restart.
    let dir = TempDir::new("import");
    let target = TestServer::with_config(config(&dir.0)).await;
    ok(&target, "CreatePipeline", json!({"pipeline": gated("replaced", "QUEUED")})).await;
    let imported = target.control("PUT", "/_emulator/state", &document).await;
    assert_eq!(imported.status, 200, "{}", imported.text());
    let again = target.control("GET", "/_emulator/state?includeSecrets=true", &Value::Null).await.json();
    assert_eq!(again["partitions"], document["partitions"], "the round trip is lossless");
    assert_eq!(again["clockOffsetMillis"], document["clockOffsetMillis"]);
    target.server.shutdown().await.expect("stops");
    let target = TestServer::with_config(config(&dir.0)).await;
    let reloaded = target.control("GET", "/_emulator/state?includeSecrets=true", &Value::Null).await.json();
    assert_eq!(reloaded["partitions"], document["partitions"], "what was imported was saved");
    let approval = token(&target, "gated", "Approve").await;
    ok(
        &target,
        "PutApprovalResult",
        json!({"pipelineName": "gated", "stageName": "Approve", "actionName": "Gate", "token": approval,
            "result": {"summary": "imported", "status": "Approved"}}),
    )
    .await;

    eventually("the queued execution to wait for its own approval", || async {
        (token(&target, "gated", "Approve").await != approval).then_some(())
    })
    .await;
    // A bad document is refused whole: nothing changes.
    let before = eventually("nothing left to run", || async {
        let first = target.control("GET", "/_emulator/state?includeSecrets=true", &Value::Null).await.json();
        tokio::time::sleep(Duration::from_millis(50)).await;
        let second = target.control("GET", "/_emulator/state?includeSecrets=true", &Value::Null).await.json();
        (first["partitions"] == second["partitions"]).then_some(second)
    })
    .await;
    let mut broken = document.clone();
    broken["partitions"][0]["pipelines"][0]["executions"][0]["pipelineVersion"] = json!(77);
    let answer = target.control("PUT", "/_emulator/state", &broken).await;
    assert_eq!(answer.status, 400, "{}", answer.text());
    assert!(answer.text().contains("version 77"), "{}", answer.text());
    let mut newer = document.clone();
    newer["version"] = json!(2);
    let answer = target.control("PUT", "/_emulator/state", &newer).await;
    assert_eq!(answer.status, 400, "{}", answer.text());
    let unchanged = target.control("GET", "/_emulator/state?includeSecrets=true", &Value::Null).await.json();
    assert_eq!(unchanged["partitions"], before["partitions"], "a refused import changes nothing");
}

#[tokio::test]
async fn a_full_disk_answers_503_and_memory_and_disk_agree() {
    let dir = TempDir::new("full");
    let limited = Config { max_data_bytes: Some(256 * 1024), ..config(&dir.0) };
    let server = TestServer::with_config(limited.clone()).await;
    let mut created = Vec::new();
    let mut refusal = None;
    for i in 0..200 {
        let name = format!("pipeline-{i:03}");
        let response = server.call("CreatePipeline", &json!({"pipeline": gated(&name, "QUEUED")}).to_string()).await;
        if response.status == 200 {
            created.push(name);
            continue;
        }
        refusal = Some((name, response));
        break;
    }
    let (refused_name, response) = refusal.expect("the database fills up");
    assert_eq!(response.status, 503, "{}", response.text());
    assert_eq!(response.json()["__type"], "ServiceUnavailableException");
    // Nothing of the refused write was kept in memory.
    server.error("GetPipeline", &json!({"name": refused_name}).to_string(), "PipelineNotFoundException").await;
    let listed = |answer: Value| -> Vec<String> {
        answer["pipelines"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|p| p["name"].as_str().map(str::to_string))
            .collect()
    };
    let in_memory = listed(ok(&server, "ListPipelines", json!({"maxResults": 1000})).await);
    assert_eq!(in_memory, created);
    server.server.shutdown().await.expect("stops");
    let server = TestServer::with_config(limited).await;
    let on_disk = listed(ok(&server, "ListPipelines", json!({"maxResults": 1000})).await);
    assert_eq!(on_disk, created, "memory and disk agreed");
}
