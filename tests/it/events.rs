//! EventBridge events of state changes (issue 14): what `GET /_emulator/events` shows.

use aws_sdk_codepipeline::types::PipelineExecutionStatus;
use serde_json::{Value, json};

use crate::common::{TestServer, eventually, first_execution, pipeline_json, wait_for};

/// The events of a pipeline, as (detail type's first word after CodePipeline, stage/action, state).
async fn events(server: &TestServer, query: &str) -> Vec<Value> {
    let response = server.control("GET", &format!("/_emulator/events?{query}"), &Value::Null).await;
    assert_eq!(response.status, 200, "{}", response.text());
    response.json()["events"].as_array().cloned().unwrap_or_default()
}

fn summary(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .map(|e| {
            let event = &e["event"];
            let kind = event["detail-type"].as_str().unwrap_or("").split(' ').nth(1).unwrap_or("").to_string();
            let detail = &event["detail"];
            let what = match (detail["stage"].as_str(), detail["action"].as_str()) {
                (Some(stage), Some(action)) => format!(" {stage}/{action}"),
                (Some(stage), None) => format!(" {stage}"),
                _ => String::new(),
            };
            format!("{kind}{what} {}", detail["state"].as_str().unwrap_or(""))
        })
        .collect()
}

#[tokio::test]
async fn a_successful_run_emits_aws_events_in_order() {
    let server = TestServer::fast().await;
    let client = server.client();
    let mut pipeline = serde_json::from_str::<Value>(&pipeline_json("web")).expect("json");
    // A source that does not poll, so that CreatePipeline starts the execution.
    pipeline["stages"][0]["actions"][0]["configuration"]["PollForSourceChanges"] = json!("false");
    let created = server.call("CreatePipeline", &json!({"pipeline": pipeline}).to_string()).await;
    assert_eq!(created.status, 200, "{}", created.text());
    let id = first_execution(&client, "web").await;
    wait_for(&client, "web", &id, PipelineExecutionStatus::Succeeded).await;
    let all = eventually("the last event", || async {
        let all = events(&server, "pipeline=web").await;
        (all.len() >= 10).then_some(all)
    })
    .await;
    assert_eq!(
        summary(&all),
        [
            "Pipeline STARTED",
            "Stage Source STARTED",
            "Action Source/Source STARTED",
            "Action Source/Source SUCCEEDED",
            "Stage Source SUCCEEDED",
            "Stage Deploy STARTED",
            "Action Deploy/Deploy STARTED",
            "Action Deploy/Deploy SUCCEEDED",
            "Stage Deploy SUCCEEDED",
            "Pipeline SUCCEEDED",
        ]
    );
    let started = &all[0]["event"];
    assert_eq!(started["version"], "0");
    assert_eq!(started["source"], "aws.codepipeline");
    assert_eq!(started["account"], "000000000000");
    assert_eq!(started["region"], "us-east-1");
    assert_eq!(started["resources"], json!(["arn:aws:codepipeline:us-east-1:000000000000:web"]));
    let time = started["time"].as_str().unwrap_or_default();
    assert!(time.len() == 20 && time.ends_with('Z'), "second precision: {time}");
    let detail = &started["detail"];
    assert_eq!(detail["execution-id"], id.as_str());
    assert_eq!(detail["execution-trigger"]["trigger-type"], "CreatePipeline");
    assert_eq!(
        (detail["version"].to_string(), detail["pipeline-execution-attempt"].to_string()),
        ("1.0".into(), "1.0".into())
    );
    assert_eq!(detail["start-time"].as_str().map(str::len), Some(24), "milliseconds: {}", detail["start-time"]);
    assert_eq!(
        all[1]["event"]["detail"]["pipeline-execution-attempt"].to_string(),
        "0.0",
        "a first stage run counts 0"
    );
    let source_done = &all[3]["event"]["detail"];
    assert_eq!(source_done["type"], json!({"owner": "AWS", "provider": "S3", "category": "Source", "version": "1"}));
    assert_eq!(source_done["output-artifacts"][0]["name"], "SourceOutput");
    let summary_text = source_done["execution-result"]["external-execution-summary"].as_str().unwrap_or_default();
    assert!(summary_text.starts_with("Amazon S3 version id: "), "{summary_text}");
    assert_eq!(all[6]["event"]["detail"]["input-artifacts"][0]["name"], "SourceOutput");
    // Sequence ids increase; filters select.
    let sequences: Vec<u64> = all.iter().filter_map(|e| e["sequence"].as_u64()).collect();
    assert!(sequences.windows(2).all(|w| w[0] < w[1]), "{sequences:?}");
    let after = events(&server, &format!("pipeline=web&after={}", sequences[7])).await;
    assert_eq!(summary(&after), ["Stage Deploy SUCCEEDED", "Pipeline SUCCEEDED"]);
    let stages = events(&server, "detailType=CodePipeline%20Stage%20Execution%20State%20Change").await;
    assert_eq!(stages.len(), 4);
    assert!(events(&server, "pipeline=web&region=eu-west-1").await.is_empty(), "another region");
    assert_eq!(events(&server, &format!("executionId={id}")).await.len(), 10);
    let bad = server.control("GET", "/_emulator/events?after=x", &Value::Null).await;
    assert_eq!(bad.status, 400, "{}", bad.text());
    // A full reset forgets the kept events.
    assert_eq!(server.control("POST", "/_emulator/reset", &json!({})).await.status, 200);
    assert!(events(&server, "").await.is_empty());
}

async fn create(server: &TestServer, name: &str) {
    let declaration: Value = serde_json::from_str(&pipeline_json(name)).expect("json");
    let created = server.call("CreatePipeline", &json!({"pipeline": declaration}).to_string()).await;
    assert_eq!(created.status, 200, "{}", created.text());
}

/// Waits until the execution's events end with `last`, and returns its summary.
async fn until(server: &TestServer, id: &str, last: &str) -> (Vec<String>, Vec<Value>) {
    eventually(&format!("{id} to emit {last}"), || async {
        let all = events(server, &format!("executionId={id}")).await;
        let summary = summary(&all);
        (summary.last().map(String::as_str) == Some(last)).then_some((summary, all))
    })
    .await
}

#[tokio::test]
async fn failures_retries_and_stops_emit_their_events() {
    let server = TestServer::fast().await;
    let client = server.client();
    server
        .set_behaviors(json!([{"pipeline": "retry", "action": "Deploy", "outcome": "fail", "message": "boom"}]))
        .await;
    create(&server, "retry").await;
    let id = first_execution(&client, "retry").await;
    let (summary, all) = until(&server, &id, "Pipeline FAILED").await;
    assert_eq!(
        &summary[summary.len() - 3..],
        ["Action Deploy/Deploy FAILED", "Stage Deploy FAILED", "Pipeline FAILED"]
    );
    let failed = &all[all.len() - 3]["event"]["detail"];
    assert_eq!(failed["execution-result"]["error-code"], "JobFailed");
    assert_eq!(failed["execution-result"]["external-execution-summary"], "boom");
    assert!(failed.get("input-artifacts").is_none(), "a FAILED event carries no input artifacts");

    // A retry resumes the execution and the stage; every later event carries attempt 2.
    server.set_behaviors(json!([])).await;
    client
        .retry_stage_execution()
        .pipeline_name("retry")
        .stage_name("Deploy")
        .pipeline_execution_id(&id)
        .retry_mode(aws_sdk_codepipeline::types::StageRetryMode::FailedActions)
        .send()
        .await
        .expect("retried");
    let (summary, all) = until(&server, &id, "Pipeline SUCCEEDED").await;
    let resumed = summary.iter().position(|s| s == "Pipeline RESUMED").expect("resumed");
    assert_eq!(
        &summary[resumed..],
        [
            "Pipeline RESUMED",
            "Stage Deploy RESUMED",
            "Action Deploy/Deploy STARTED",
            "Action Deploy/Deploy SUCCEEDED",
            "Stage Deploy SUCCEEDED",
            "Pipeline SUCCEEDED"
        ]
    );
    for event in &all[resumed..] {
        assert_eq!(event["event"]["detail"]["pipeline-execution-attempt"].to_string(), "2.0", "{event}");
    }
    let retried_at =
        all[resumed]["event"]["detail"]["last-retry-attempt-time"].as_str().unwrap_or_default().to_string();
    assert_eq!(retried_at.len(), 24, "milliseconds: {retried_at}");
    assert_eq!(all[resumed + 1]["event"]["detail"]["stage-last-retry-attempt-time"], retried_at.as_str());
    assert!(all[0]["event"]["detail"].get("last-retry-attempt-time").is_none(), "not before the retry");

    // Stop and abandon a held action: stopping, abandoned, stopped.
    server.set_behaviors(json!([{"pipeline": "held", "action": "Deploy", "outcome": "hold"}])).await;
    create(&server, "held").await;
    let id = first_execution(&client, "held").await;
    until(&server, &id, "Action Deploy/Deploy STARTED").await;
    client
        .stop_pipeline_execution()
        .pipeline_name("held")
        .pipeline_execution_id(&id)
        .abandon(true)
        .reason("enough")
        .send()
        .await
        .expect("stopped");
    let (summary, all) = until(&server, &id, "Pipeline STOPPED").await;
    assert_eq!(
        &summary[summary.len() - 5..],
        [
            "Pipeline STOPPING",
            "Stage Deploy STOPPING",
            "Action Deploy/Deploy ABANDONED",
            "Stage Deploy STOPPED",
            "Pipeline STOPPED"
        ]
    );
    assert_eq!(all[all.len() - 5]["event"]["detail"]["stop-execution-comments"], "enough");
}

#[tokio::test]
async fn a_superseded_execution_says_so() {
    let server = TestServer::fast().await;
    let client = server.client();
    server.set_behaviors(json!([{"pipeline": "busy", "action": "Deploy", "outcome": "hold"}])).await;
    create(&server, "busy").await;
    let first = first_execution(&client, "busy").await;
    until(&server, &first, "Action Deploy/Deploy STARTED").await;
    // The second waits in front of Deploy; the third overtakes it there.
    let second = client.start_pipeline_execution().name("busy").send().await.expect("starts");
    let second = second.pipeline_execution_id().expect("id").to_string();
    until(&server, &second, "Stage Source SUCCEEDED").await;
    let third = client.start_pipeline_execution().name("busy").send().await.expect("starts");
    let third = third.pipeline_execution_id().expect("id").to_string();
    let (summary, _) = until(&server, &second, "Pipeline SUPERSEDED").await;
    assert_eq!(summary.first().map(String::as_str), Some("Pipeline STARTED"));
    let third_events = events(&server, &format!("executionId={third}")).await;
    assert_eq!(third_events[0]["event"]["detail"]["execution-trigger"]["trigger-type"], "StartPipelineExecution");
}

/// Opens the event stream and reads until `done` holds for what arrived (at most 10 s); returns the text.
async fn read_stream(server: &TestServer, query: &str, headers: &str, done: impl Fn(&str) -> bool) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = server.url().trim_start_matches("http://").to_string();
    let mut stream = tokio::net::TcpStream::connect(&addr).await.expect("connects");
    let request = format!("GET /_emulator/events/stream?{query} HTTP/1.1\r\nHost: localhost\r\n{headers}\r\n");
    stream.write_all(request.as_bytes()).await.expect("sends");
    let mut text = String::new();
    let mut chunk = [0u8; 16 * 1024];
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    while !done(&text) {
        let read = tokio::time::timeout_at(deadline, stream.read(&mut chunk)).await;
        match read {
            Ok(Ok(n)) if n > 0 => text.push_str(&String::from_utf8_lossy(&chunk[..n])),
            _ => panic!("the stream ended or stalled before it was done: {text}"),
        }
    }
    text
}

#[tokio::test]
async fn the_stream_delivers_live_and_resumes_with_last_event_id() {
    let server = TestServer::fast().await;
    let client = server.client();
    // `after=0`: whatever happened before the stream subscribed comes from the history, so nothing is missed.
    let watcher = read_stream(&server, "pipeline=live&after=0", "", |t| {
        t.contains("\"state\":\"SUCCEEDED\"") && t.contains("Pipeline Execution")
    });
    let create = async {
        create(&server, "live").await;
        create(&server, "other").await;
    };
    let (text, ()) = tokio::join!(watcher, create);
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(text.to_ascii_lowercase().contains("content-type: text/event-stream"), "{text}");
    assert!(text.contains("event: CodePipeline Pipeline Execution State Change\n"), "{text}");
    assert!(text.contains("\"pipeline\":\"live\""), "{text}");
    assert!(!text.contains("\"pipeline\":\"other\""), "filtered: {text}");
    let id = first_execution(&client, "live").await;
    wait_for(&client, "live", &id, PipelineExecutionStatus::Succeeded).await;

    // Resuming after the 5th event of the pipeline replays the rest, in order.
    let kept = events(&server, "pipeline=live").await;
    let fifth = kept[4]["sequence"].as_u64().expect("sequence");
    let expected = kept.len() - 5;
    let resumed = read_stream(&server, "pipeline=live", &format!("Last-Event-ID: {fifth}\r\n"), |t| {
        t.matches("\ndata: ").count() >= expected
    })
    .await;
    let ids: Vec<u64> =
        resumed.lines().filter_map(|l| l.strip_prefix("id: ")).filter_map(|v| v.trim().parse().ok()).collect();
    let wanted: Vec<u64> = kept[5..].iter().filter_map(|e| e["sequence"].as_u64()).collect();
    assert_eq!(ids, wanted);
}

#[tokio::test]
async fn a_rollback_starts_its_own_execution_with_its_trigger() {
    let server = TestServer::fast().await;
    let client = server.client();
    create(&server, "rolled").await;
    let first = first_execution(&client, "rolled").await;
    wait_for(&client, "rolled", &first, PipelineExecutionStatus::Succeeded).await;
    let second = client.start_pipeline_execution().name("rolled").send().await.expect("starts");
    let second = second.pipeline_execution_id().expect("id").to_string();
    wait_for(&client, "rolled", &second, PipelineExecutionStatus::Succeeded).await;
    let rollback = client
        .rollback_stage()
        .pipeline_name("rolled")
        .stage_name("Deploy")
        .target_pipeline_execution_id(&first)
        .send()
        .await
        .expect("rolls back");
    let id = rollback.pipeline_execution_id().to_string();
    let (summary, all) = until(&server, &id, "Pipeline SUCCEEDED").await;
    assert_eq!(
        summary,
        [
            "Pipeline STARTED",
            "Stage Deploy STARTED",
            "Action Deploy/Deploy STARTED",
            "Action Deploy/Deploy SUCCEEDED",
            "Stage Deploy SUCCEEDED",
            "Pipeline SUCCEEDED"
        ]
    );
    let trigger = &all[0]["event"]["detail"]["execution-trigger"];
    assert_eq!(trigger["trigger-type"], "ManualRollback");
    assert_eq!(all[0]["event"]["detail"]["execution-id"], id.as_str());
}
