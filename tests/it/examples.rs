//! Every example pipeline in `fixtures/pipelines/` runs: created as a user would create it, with the world around it
//! played by the test (approvals approved, custom jobs answered, the emulator clock advanced when nothing else
//! moves), its first execution ends with the status the example expects (`expectedStatus`, default `Succeeded`).

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::common::TestServer;

const TERMINAL: &[&str] = &["Succeeded", "Failed", "Stopped", "Superseded", "Cancelled"];

/// Does what the world around a pipeline would: approves waiting approvals and answers custom jobs with success.
/// Returns whether it did anything.
async fn play_the_world(server: &TestServer, name: &str, custom_types: &[Value]) -> bool {
    let mut acted = false;
    let state = server.call("GetPipelineState", &json!({"name": name}).to_string()).await.json();
    for stage in state["stageStates"].as_array().into_iter().flatten() {
        for action in stage["actionStates"].as_array().into_iter().flatten() {
            let Some(token) = action["latestExecution"]["token"].as_str() else { continue };
            let body = json!({"pipelineName": name, "stageName": stage["stageName"], "actionName": action["actionName"],
                "token": token, "result": {"summary": "looks good", "status": "Approved"}});
            let response = server.call("PutApprovalResult", &body.to_string()).await;
            assert_eq!(response.status, 200, "{name}: approving: {}", response.text());
            acted = true;
        }
    }
    for custom in custom_types {
        let id = json!({"category": custom["category"], "owner": "Custom", "provider": custom["provider"],
            "version": custom["version"]});
        let jobs =
            server.call("PollForJobs", &json!({"actionTypeId": id, "maxBatchSize": 10}).to_string()).await.json();
        for job in jobs["jobs"].as_array().into_iter().flatten() {
            let ack = json!({"jobId": job["id"], "nonce": job["nonce"]});
            assert_eq!(server.call("AcknowledgeJob", &ack.to_string()).await.status, 200);
            let done = json!({"jobId": job["id"], "executionDetails": {"summary": "worked by the examples test"}});
            let response = server.call("PutJobSuccessResult", &done.to_string()).await;
            assert_eq!(response.status, 200, "{name}: job: {}", response.text());
            acted = true;
        }
    }
    acted
}

#[tokio::test]
async fn every_example_pipeline_runs_to_the_status_it_expects() {
    let examples = crate::corpus::corpus();
    assert!(examples.len() >= 14, "the examples are all here");
    let server = TestServer::fast().await;
    let mut rules = Vec::new();
    for (_, example) in &examples {
        rules.extend(example["behaviors"]["rules"].as_array().into_iter().flatten().cloned());
    }
    server.set_behaviors(Value::Array(rules)).await;

    let mut outcomes = Vec::new();
    for (file, example) in &examples {
        let custom_types: Vec<Value> = example["customActionTypes"].as_array().cloned().unwrap_or_default();
        for custom in &custom_types {
            let response = server.call("CreateCustomActionType", &custom.to_string()).await;
            assert_eq!(response.status, 200, "{file}: {}", response.text());
        }
        let name = example["pipeline"]["name"].as_str().expect("a name").to_string();
        let response = server.call("CreatePipeline", &json!({"pipeline": example["pipeline"]}).to_string()).await;
        assert_eq!(response.status, 200, "{file}: {}", response.text());

        let deadline = Instant::now() + Duration::from_secs(30);
        let mut idle = 0;
        let status = loop {
            let list = server.call("ListPipelineExecutions", &json!({"pipelineName": name}).to_string()).await.json();
            let first =
                list["pipelineExecutionSummaries"].as_array().and_then(|s| s.last()).cloned().unwrap_or_default();
            let status = first["status"].as_str().unwrap_or_default().to_string();
            if TERMINAL.contains(&status.as_str()) {
                break (status, first["statusSummary"].clone());
            }
            assert!(Instant::now() < deadline, "{file}: still {status} after 30 s");
            if play_the_world(&server, &name, &custom_types).await {
                idle = 0;
                continue;
            }
            idle += 1;
            if idle >= 10 {
                // Nothing moves by itself: a deployment window or an alarm's wait time needs time to pass.
                server.advance_clock(3600.0).await;
                idle = 0;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        };
        let expected = example["expectedStatus"].as_str().unwrap_or("Succeeded");
        if status.0 != expected {
            let history = server.call("ListActionExecutions", &json!({"pipelineName": name}).to_string()).await.json();
            outcomes
                .push(format!("{file}: ended {} ({}), expected {expected}; history: {history}", status.0, status.1));
        }
    }
    assert!(outcomes.is_empty(), "{}", outcomes.join("\n\n"));
}

#[tokio::test]
async fn the_quick_start_file_is_create_pipeline_input_as_it_is() {
    // `--cli-input-json file://examples/quick-start.json` sends the file as it is: it must be CreatePipeline input
    // and nothing more, and stay the first example's pipeline.
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(root.join("examples/quick-start.json")).expect("the quick start file");
    let quick: Value = serde_json::from_str(&text).expect("json");
    let example: Value = serde_json::from_str(
        &std::fs::read_to_string(root.join("fixtures/pipelines/01-s3-static-site.json")).expect("the example"),
    )
    .expect("json");
    assert_eq!(quick, json!({"pipeline": example["pipeline"]}));
    let server = TestServer::fast().await;
    let created = server.call("CreatePipeline", &text).await;
    assert_eq!(created.status, 200, "{}", created.text());
}
