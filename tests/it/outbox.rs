//! The outbox: what a change sends out (events in the history and on the stream, EventBridge PutEvents, SNS
//! approval messages, Lambda invocations) leaves only once the change is saved. A change whose commit fails sends
//! nothing; an event streamed before a `kill -9` always names a change that is still there after the restart.

use std::io::{Read, Write};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{StatusCode, Uri};
use codepipeline_local::Config;
use serde_json::{Value, json};

use crate::common::{TestServer, eventually};
use crate::persistence::{TempDir, spawn, try_aws};

/// Everything a fake neighbour (EventBridge, SNS and Lambda on one address) was sent: path and body of each request.
type Received = Arc<Mutex<Vec<String>>>;

/// A fake AWS neighbour that records every request and answers each as a success.
async fn neighbour() -> (String, Received) {
    async fn record(State(received): State<Received>, uri: Uri, body: Bytes) -> (StatusCode, String) {
        let text = format!("{uri} {}", String::from_utf8_lossy(&body));
        received.lock().unwrap_or_else(|p| p.into_inner()).push(text);
        (StatusCode::OK, json!({"FailedEntryCount": 0, "Entries": [{"EventId": "e"}]}).to_string())
    }
    let received = Received::default();
    let app = Router::new().fallback(record).with_state(Arc::clone(&received));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app).await.expect("serve") });
    (url, received)
}

fn at(category: &str, provider: &str) -> Value {
    json!({"category": category, "owner": "AWS", "provider": provider, "version": "1"})
}

/// Source, then a stage that invokes the Lambda function `fn-<name>` beside an approval that notifies the topic
/// `topic-<name>`: every effect kind, each naming its pipeline.
fn reaching_out(name: &str) -> Value {
    json!({
        "name": name, "roleArn": "arn:aws:iam::123456789012:role/r",
        "artifactStore": {"type": "S3", "location": "artifact-bucket"},
        "stages": [
            {"name": "Source", "actions": [{"name": "Src", "actionTypeId": at("Source", "S3"),
                "configuration": {"S3Bucket": "b", "S3ObjectKey": "k.zip"}, "outputArtifacts": [{"name": "Code"}]}]},
            {"name": "Check", "actions": [
                {"name": "Fn", "actionTypeId": at("Invoke", "Lambda"),
                    "configuration": {"FunctionName": format!("fn-{name}")}, "inputArtifacts": [{"name": "Code"}]},
                {"name": "Gate", "actionTypeId": at("Approval", "Manual"),
                    "configuration": {"NotificationArn": format!("arn:aws:sns:us-east-1:000000000000:topic-{name}")}}
            ]}
        ]
    })
}

/// Reads the event stream in the background into a shared text.
async fn follow_stream(server: &TestServer) -> Arc<Mutex<String>> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let text = Arc::new(Mutex::new(String::new()));
    let mut stream = tokio::net::TcpStream::connect(server.server.addr()).await.expect("connects");
    let request = "GET /_emulator/events/stream HTTP/1.1\r\nHost: localhost\r\n\r\n";
    stream.write_all(request.as_bytes()).await.expect("sends");
    let shared = Arc::clone(&text);
    tokio::spawn(async move {
        let mut chunk = [0u8; 8192];
        while let Ok(n @ 1..) = stream.read(&mut chunk).await {
            shared.lock().unwrap_or_else(|p| p.into_inner()).push_str(&String::from_utf8_lossy(&chunk[..n]));
        }
    });
    // The stream answers its headers once subscribed.
    eventually("the stream to open", || async {
        text.lock().unwrap_or_else(|p| p.into_inner()).contains("text/event-stream").then_some(())
    })
    .await;
    text
}

#[tokio::test]
async fn a_change_whose_commit_fails_reaches_no_subscriber_and_no_neighbour() {
    let dir = TempDir::new("outbox");
    let (endpoint, received) = neighbour().await;
    let config = Config {
        data_dir: Some(dir.0.clone()),
        max_data_bytes: Some(256 * 1024),
        action_duration_ms: 5,
        eventbridge_endpoint: Some(endpoint.clone()),
        sns_endpoint: Some(endpoint.clone()),
        lambda_endpoint: Some(endpoint),
        ..Config::default()
    };
    let server = TestServer::with_config(config.clone()).await;
    let stream = follow_stream(&server).await;
    let mut created = Vec::new();
    let mut refused = None;
    for i in 0..400 {
        let name = format!("reach-{i:03}");
        let response = server.call("CreatePipeline", &json!({"pipeline": reaching_out(&name)}).to_string()).await;
        match response.status {
            200 => created.push(name),
            503 => {
                refused = Some(name);
                break;
            }
            other => panic!("CreatePipeline answered {other}: {}", response.text()),
        }
    }
    let refused = refused.expect("the database fills up");
    assert!(created.len() > 3, "some pipelines fit before the database filled up");
    // The first pipelines reached their Check stage (their function was invoked) before the database filled.
    eventually("the first pipeline's function to be invoked", || async {
        let received = received.lock().unwrap_or_else(|p| p.into_inner());
        received.iter().any(|r| r.contains("fn-reach-000")).then_some(())
    })
    .await;
    // Long enough for the engine to pick the reloaded partition up again (a second after the failed save) and for
    // deliveries to go out.
    tokio::time::sleep(Duration::from_millis(1_500)).await;

    let history = server.control("GET", "/_emulator/events", &Value::Null).await.text();
    let streamed = stream.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let sent = received.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let quoted = format!("\"{refused}\"");
    let escaped = format!("\\\"{refused}\\\"");
    assert!(streamed.contains("reach-000"), "the stream carried the saved changes: {streamed}");
    assert!(!history.contains(&quoted), "the history shows the refused pipeline: {history}");
    assert!(!streamed.contains(&escaped) && !streamed.contains(&quoted), "the stream showed the refused pipeline");
    let leaked: Vec<&String> = sent.iter().filter(|r| r.contains(&refused)).collect();
    assert!(leaked.is_empty(), "a neighbour was told of the refused pipeline: {leaked:#?}");

    // Everything a neighbour was told is on disk: after a restart, every pipeline whose function was invoked or
    // whose approval was announced has its Check stage running.
    let reached: Vec<&String> = created
        .iter()
        .filter(|name| sent.iter().any(|r| r.contains(&format!("fn-{name}/")) || r.contains(&format!("topic-{name}"))))
        .collect();
    assert!(!reached.is_empty());
    server.server.shutdown().await.expect("stops");
    let server = TestServer::with_config(Config { lambda_endpoint: None, ..config }).await;
    for name in reached {
        let state = server.call("GetPipelineState", &json!({"name": name}).to_string()).await.json();
        let check = &state["stageStates"][1]["latestExecution"]["status"];
        assert_eq!(check, "InProgress", "{name} told a neighbour of its Check stage, which was not saved: {state}");
    }
}

/// The events a stream reader received: (execution id, detail type, state).
fn streamed_events(text: &str) -> Vec<(String, String, String)> {
    text.lines()
        .filter_map(|line| line.strip_prefix("data:"))
        .filter_map(|data| serde_json::from_str::<Value>(data.trim()).ok())
        .map(|event| {
            let field = |name: &str| event["detail"][name].as_str().unwrap_or_default().to_string();
            (field("execution-id"), event["detail-type"].as_str().unwrap_or_default().to_string(), field("state"))
        })
        .collect()
}

#[test]
fn every_event_streamed_before_a_kill_names_a_change_still_there_after_the_restart() {
    let dir = TempDir::new("streamed");
    let (mut child, mut addr) = spawn(&dir.0, &[]);
    let pipeline = json!({
        "name": "busy", "roleArn": "arn:aws:iam::123456789012:role/r", "pipelineType": "V2",
        "executionMode": "PARALLEL", "artifactStore": {"type": "S3", "location": "artifact-bucket"},
        "stages": [
            {"name": "Source", "actions": [{"name": "Src", "actionTypeId": at("Source", "S3"),
                "configuration": {"S3Bucket": "b", "S3ObjectKey": "k.zip"}, "outputArtifacts": [{"name": "Code"}]}]},
            {"name": "Build", "actions": [{"name": "Compile", "actionTypeId": at("Build", "CodeBuild"),
                "configuration": {"ProjectName": "p"}, "inputArtifacts": [{"name": "Code"}]}]}
        ]
    });
    assert_eq!(try_aws(&addr, "CreatePipeline", &json!({"pipeline": pipeline})).0, Some(200));
    let mut checked = 0;
    for round in 0..4 {
        // A reader on the stream, and concurrent writers starting executions, until the kill.
        let mut reader = std::net::TcpStream::connect(&addr).expect("stream connects");
        reader.write_all(b"GET /_emulator/events/stream HTTP/1.1\r\nHost: localhost\r\n\r\n").expect("sends");
        let streamed = Arc::new(Mutex::new(String::new()));
        let sink = Arc::clone(&streamed);
        let reading = std::thread::spawn(move || {
            let mut chunk = [0u8; 8192];
            while let Ok(n @ 1..) = reader.read(&mut chunk) {
                sink.lock().unwrap_or_else(|p| p.into_inner()).push_str(&String::from_utf8_lossy(&chunk[..n]));
            }
        });
        let writers: Vec<_> = (0..4)
            .map(|_| {
                let addr = addr.clone();
                std::thread::spawn(move || {
                    while try_aws(&addr, "StartPipelineExecution", &json!({"name": "busy"})).0.is_some() {}
                })
            })
            .collect();
        let jitter = u64::from(uuid::Uuid::new_v4().as_bytes()[0]) % 200;
        std::thread::sleep(Duration::from_millis(100 + jitter));
        child.kill().expect("kill -9");
        child.wait().expect("reaped");
        for writer in writers {
            writer.join().expect("writer ends");
        }
        reading.join().expect("reader ends");
        let events = streamed_events(&streamed.lock().unwrap_or_else(|p| p.into_inner()));
        assert!(!events.is_empty(), "round {round}: events were streamed before the kill");
        (child, addr) = spawn(&dir.0, &[]);
        for (execution, detail_type, state) in &events {
            let body = json!({"pipelineName": "busy", "pipelineExecutionId": execution});
            let (status, answer) = try_aws(&addr, "GetPipelineExecution", &body);
            let status = status.expect("the restarted server answers");
            assert_eq!(status, 200, "round {round}: streamed {detail_type} {state} of {execution}, lost: {answer}");
            // A streamed end of an execution is an end that was saved: nothing after the restart can undo it.
            if detail_type.contains("Pipeline Execution") && state == "SUCCEEDED" {
                let status = &answer["pipelineExecution"]["status"];
                assert_eq!(status, "Succeeded", "round {round}: {execution} streamed SUCCEEDED, then {answer}");
            }
            checked += 1;
        }
    }
    assert!(checked > 0);
    child.kill().expect("kill");
    let _ = child.wait();
}
