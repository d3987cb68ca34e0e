//! Events delivered to a real EventBridge implementation: moto's server, with a rule that sends CodePipeline's
//! events to an SQS queue (issue 14). `.ci/run` installs moto's server.

use std::time::Duration;

use aws_sdk_codepipeline::types::PipelineExecutionStatus;
use codepipeline_local::Config;
use serde_json::{Value, json};

use crate::common::{Conn, TestServer, eventually, first_execution, pipeline_json, wait_for};
use crate::moto::Moto;

impl Moto {
    /// One AWS JSON call.
    async fn call(&self, target: &str, json_version: &str, body: Value) -> Value {
        let content_type = format!("application/x-amz-json-{json_version}");
        let authorization = format!(
            "AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/{}/aws4_request, SignedHeaders=host, Signature=0",
            if target.starts_with("AmazonSQS") { "sqs" } else { "events" }
        );
        let headers =
            [("X-Amz-Target", target), ("Content-Type", content_type.as_str()), ("Authorization", &authorization)];
        let response = Conn::open(&self.addr).await.request("POST", "/", &headers, body.to_string().as_bytes()).await;
        assert_eq!(response.status, 200, "{target}: {}", response.text());
        response.json()
    }
}

#[tokio::test]
async fn events_reach_an_sqs_queue_through_eventbridge() {
    let moto = Moto::start().await;
    let queue = moto.call("AmazonSQS.CreateQueue", "1.0", json!({"QueueName": "pipeline-events"})).await;
    let queue_url = queue["QueueUrl"].as_str().expect("queue url").to_string();
    let attributes = moto
        .call("AmazonSQS.GetQueueAttributes", "1.0", json!({"QueueUrl": queue_url, "AttributeNames": ["QueueArn"]}))
        .await;
    let queue_arn = attributes["Attributes"]["QueueArn"].as_str().expect("queue arn").to_string();
    let pattern = json!({"source": ["aws.codepipeline"]}).to_string();
    moto.call("AWSEvents.PutRule", "1.1", json!({"Name": "pipelines", "EventPattern": pattern})).await;
    moto.call(
        "AWSEvents.PutTargets",
        "1.1",
        json!({"Rule": "pipelines", "Targets": [{"Id": "queue", "Arn": queue_arn}]}),
    )
    .await;

    let config = Config {
        action_duration_ms: 5,
        eventbridge_endpoint: Some(format!("http://{}", moto.addr)),
        ..Config::default()
    };
    let server = TestServer::with_config(config).await;
    let client = server.client();
    let declaration: Value = serde_json::from_str(&pipeline_json("shipped")).expect("json");
    assert_eq!(server.call("CreatePipeline", &json!({"pipeline": declaration}).to_string()).await.status, 200);
    let id = first_execution(&client, "shipped").await;
    wait_for(&client, "shipped", &id, PipelineExecutionStatus::Succeeded).await;

    let received = moto.receive(&queue_url, 10).await;
    assert_eq!(received.len(), 10, "{received:#?}");
    let mut states: Vec<String> = received
        .iter()
        .map(|e| {
            let detail = &e["detail"];
            format!(
                "{} {} {}",
                e["detail-type"].as_str().unwrap_or(""),
                detail["stage"].as_str().unwrap_or("-"),
                detail["state"].as_str().unwrap_or("")
            )
        })
        .collect();
    states.sort();
    assert!(states.contains(&"CodePipeline Pipeline Execution State Change - SUCCEEDED".to_string()), "{states:?}");
    assert!(states.contains(&"CodePipeline Action Execution State Change Deploy STARTED".to_string()), "{states:?}");
    let done =
        received.iter().find(|e| e["detail"]["state"] == "SUCCEEDED" && e["detail"]["stage"].is_null()).expect("done");
    assert_eq!(done["source"], "aws.codepipeline");
    assert_eq!(done["resources"], json!(["arn:aws:codepipeline:us-east-1:000000000000:shipped"]));
    assert_eq!(done["detail"]["execution-id"], id.as_str());
    assert_eq!(done["detail"]["version"].as_f64(), Some(1.0));
    // The queue can have the events before the delivery task has read EventBridge's answer.
    eventually("the deliveries to be counted", || async {
        let health = server.control("GET", "/health", &Value::Null).await.json();
        (health["eventDelivery"]["delivered"] == 10).then_some(())
    })
    .await;
}

#[tokio::test]
async fn an_unreachable_endpoint_slows_nothing() {
    let config =
        Config { action_duration_ms: 5, eventbridge_endpoint: Some("http://127.0.0.1:1".into()), ..Config::default() };
    let server = TestServer::with_config(config).await;
    let client = server.client();
    let declaration: Value = serde_json::from_str(&pipeline_json("alone")).expect("json");
    let started = std::time::Instant::now();
    assert_eq!(server.call("CreatePipeline", &json!({"pipeline": declaration}).to_string()).await.status, 200);
    let id = first_execution(&client, "alone").await;
    wait_for(&client, "alone", &id, PipelineExecutionStatus::Succeeded).await;
    assert!(started.elapsed() < Duration::from_secs(2), "the pipeline ran at its own pace: {:?}", started.elapsed());
    let failed = eventually("the failures to be counted", || async {
        let health = server.control("GET", "/health", &Value::Null).await.json();
        let failed = health["eventDelivery"]["failed"].as_u64().unwrap_or(0);
        (failed == 10).then_some(failed)
    })
    .await;
    assert_eq!(failed, 10);
}

impl Moto {
    /// One AWS query-protocol call (SNS); the XML answer.
    async fn query(&self, form: &str) -> String {
        let authorization =
            "AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/sns/aws4_request, SignedHeaders=host, Signature=0";
        let headers = [("Content-Type", "application/x-www-form-urlencoded"), ("Authorization", authorization)];
        let response = Conn::open(&self.addr).await.request("POST", "/", &headers, form.as_bytes()).await;
        assert_eq!(response.status, 200, "{form}: {}", response.text());
        response.text()
    }

    /// A new SQS queue: (URL, ARN).
    async fn queue(&self, name: &str) -> (String, String) {
        let queue = self.call("AmazonSQS.CreateQueue", "1.0", json!({"QueueName": name})).await;
        let url = queue["QueueUrl"].as_str().expect("queue url").to_string();
        let attributes = self
            .call("AmazonSQS.GetQueueAttributes", "1.0", json!({"QueueUrl": url, "AttributeNames": ["QueueArn"]}))
            .await;
        (url, attributes["Attributes"]["QueueArn"].as_str().expect("queue arn").to_string())
    }

    /// The messages of a queue, waiting up to 10 s for the first `wanted`.
    async fn receive(&self, url: &str, wanted: usize) -> Vec<Value> {
        let mut received = Vec::new();
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while received.len() < wanted && std::time::Instant::now() < deadline {
            let batch = self
                .call(
                    "AmazonSQS.ReceiveMessage",
                    "1.0",
                    json!({"QueueUrl": url, "MaxNumberOfMessages": 10, "WaitTimeSeconds": 1}),
                )
                .await;
            for message in batch["Messages"].as_array().into_iter().flatten() {
                received.push(serde_json::from_str(message["Body"].as_str().unwrap_or("{}")).expect("JSON"));
            }
        }
        received
    }
}

#[tokio::test]
async fn approvals_publish_aws_s_message_to_their_topic() {
    let moto = Moto::start().await;
    let (queue_url, queue_arn) = moto.queue("approvals").await;
    let created = moto.query("Action=CreateTopic&Name=release-approvals").await;
    let topic =
        created.split("<TopicArn>").nth(1).and_then(|r| r.split("</TopicArn>").next()).expect("topic").to_string();
    let subscribe = format!(
        "Action=Subscribe&TopicArn={}&Protocol=sqs&Endpoint={}",
        percent_encoding::utf8_percent_encode(&topic, percent_encoding::NON_ALPHANUMERIC),
        percent_encoding::utf8_percent_encode(&queue_arn, percent_encoding::NON_ALPHANUMERIC)
    );
    moto.query(&subscribe).await;

    // --aws-endpoint sets the SNS endpoint too (and S3's: the artifact store is there).
    moto.create_bucket("artifact-bucket").await;
    moto.seed_source("source-bucket", "app.zip").await;
    // The S3 source polls (AWS's default): its first execution comes from polling.
    let config = Config {
        action_duration_ms: 5,
        aws_endpoint: Some(format!("http://{}", moto.addr)),
        poll_interval: std::time::Duration::from_millis(20),
        ..Config::default()
    };
    let server = TestServer::with_config(config).await;
    let client = server.client();
    let mut declaration: Value = serde_json::from_str(&pipeline_json("gated")).expect("json");
    declaration["variables"] = json!([{"name": "Ticket", "defaultValue": "REL-42"}]);
    declaration["pipelineType"] = json!("V2");
    declaration["stages"].as_array_mut().expect("stages").insert(
        1,
        json!({"name": "Approve", "actions": [{
            "name": "Gate",
            "actionTypeId": {"category": "Approval", "owner": "AWS", "provider": "Manual", "version": "1"},
            "configuration": {"NotificationArn": topic, "CustomData": "Check #{variables.Ticket} first."}
        }]}),
    );
    assert_eq!(server.call("CreatePipeline", &json!({"pipeline": declaration}).to_string()).await.status, 200);
    let id = first_execution(&client, "gated").await;

    let received = moto.receive(&queue_url, 1).await;
    assert_eq!(received.len(), 1, "{received:#?}");
    let envelope = &received[0];
    assert_eq!(envelope["Type"], "Notification");
    assert_eq!(envelope["Subject"], "APPROVAL NEEDED: AWS CodePipeline gated for action Gate");
    let message: Value = serde_json::from_str(envelope["Message"].as_str().unwrap_or("{}")).expect("message");
    let approval = &message["approval"];
    assert_eq!((approval["pipelineName"].clone(), approval["stageName"].clone()), (json!("gated"), json!("Approve")));
    assert_eq!(approval["customData"], "Check REL-42 first.", "variables are resolved");
    assert_eq!(approval["externalEntityLink"], Value::Null);
    let token = approval["token"].as_str().expect("token").to_string();
    assert!(
        approval["approvalReviewLink"]
            .as_str()
            .unwrap_or_default()
            .ends_with(&format!("#/Approve/Gate/approve/{token}"))
    );
    assert_eq!(approval["expires"].as_str().map(str::len), Some(17), "minute precision: {}", approval["expires"]);

    // The token in the message answers the approval.
    let result = aws_sdk_codepipeline::types::ApprovalResult::builder()
        .summary("ok")
        .status(aws_sdk_codepipeline::types::ApprovalStatus::Approved)
        .build()
        .expect("result");
    client
        .put_approval_result()
        .pipeline_name("gated")
        .stage_name("Approve")
        .action_name("Gate")
        .token(&token)
        .result(result)
        .send()
        .await
        .expect("approved");
    wait_for(&client, "gated", &id, PipelineExecutionStatus::Succeeded).await;
    eventually("the notification to be counted", || async {
        let health = server.control("GET", "/health", &Value::Null).await.json();
        (health["approvalNotifications"]["delivered"] == 1).then_some(())
    })
    .await;
}
