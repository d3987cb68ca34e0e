//! Control endpoints follow the verified identity (issue 30, item 3): with `--verify-signatures`, a control request
//! is signed, and acts on its signer's account only unless the signer is an administrator.

use std::time::SystemTime;

use aws_sdk_codepipeline::Client;
use codepipeline_local::config::Config;
use serde_json::{Value, json};

use crate::common::{HttpResponse, Signed, TestServer, eventually, send_signed};

const DEPLOYER: (&str, &str) = ("AKIADEPLOYER00000001", "deployer-secret");
const OTHER: (&str, &str) = ("AKIAOTHERACCOUNT0002", "other-secret");
const ADMIN: (&str, &str) = ("AKIAADMINISTRATOR003", "admin-secret");

async fn verifying() -> TestServer {
    let file = std::env::temp_dir().join(format!("cpl-control-{}.json", uuid::Uuid::new_v4()));
    let principals = json!({"principals": [
        {"accessKeyId": DEPLOYER.0, "secretAccessKey": DEPLOYER.1, "account": "111111111111",
         "arn": "arn:aws:iam::111111111111:user/deployer"},
        {"accessKeyId": OTHER.0, "secretAccessKey": OTHER.1, "account": "222222222222",
         "arn": "arn:aws:iam::222222222222:user/other"},
        {"accessKeyId": ADMIN.0, "secretAccessKey": ADMIN.1, "account": "111111111111",
         "arn": "arn:aws:iam::111111111111:user/admin", "admin": true}]});
    std::fs::write(&file, principals.to_string()).expect("writes");
    // Every action waits to be completed through the control endpoint.
    let behaviors = std::env::temp_dir().join(format!("cpl-hold-{}.json", uuid::Uuid::new_v4()));
    std::fs::write(&behaviors, json!({"rules": [{"outcome": "hold"}]}).to_string()).expect("writes");
    let config = Config {
        verify_signatures: true,
        credentials: Some(file),
        behaviors: Some(behaviors),
        action_duration_ms: 5,
        ..Config::default()
    };
    TestServer::with_config(config).await
}

fn client(server: &TestServer, key: (&str, &str)) -> Client {
    crate::common::keyed_client(&server.url(), "us-east-1", key, None)
}

/// A control request signed by `key` (in the headers, or the query string as a link or an event stream is).
async fn control(
    server: &TestServer,
    key: (&str, &str),
    method: &str,
    path: &str,
    body: Option<Value>,
) -> HttpResponse {
    control_signed(server, key, method, path, body, false).await
}

async fn control_signed(
    server: &TestServer,
    key: (&str, &str),
    method: &str,
    path: &str,
    body: Option<Value>,
    query: bool,
) -> HttpResponse {
    let text = body.map(|b| b.to_string()).unwrap_or_default();
    let json = [("content-type", "application/json")];
    let headers: &[(&str, &str)] = if text.is_empty() { &[] } else { &json };
    let signed = Signed { key, time: SystemTime::now(), query, method, path, headers, body: &text };
    send_signed(&server.url(), signed, |_| {}).await
}

fn forbidden(response: &HttpResponse, user: &str) {
    assert_eq!(response.status, 403, "{}", response.text());
    let message = response.json()["message"].as_str().unwrap_or_default().to_string();
    assert!(message.starts_with(&format!("User: {user} ")) && message.contains("\"admin\": true"), "{message}");
}

#[tokio::test]
async fn a_signer_acts_on_its_own_account_through_the_control_endpoints_and_an_admin_on_any() {
    let server = verifying().await;
    let deployer = client(&server, DEPLOYER);
    deployer.create_pipeline().pipeline(crate::common::sdk_pipeline("p")).send().await.expect("created");
    let other = client(&server, OTHER);
    other.create_pipeline().pipeline(crate::common::sdk_pipeline("q")).send().await.expect("created");
    let id = crate::common::first_execution(&deployer, "p").await;
    let complete = json!({"pipelineName": "p", "pipelineExecutionId": id, "stageName": "Source",
        "actionName": "Source", "outcome": "fail", "account": "111111111111"});

    // Unsigned, or signed with the wrong secret, nothing is answered.
    let unsigned = server.control("GET", "/_emulator/events", &Value::Null).await;
    assert_eq!(unsigned.json()["__type"], "MissingAuthenticationTokenException", "{}", unsigned.text());
    let wrong = control(&server, (DEPLOYER.0, "not-the-secret"), "GET", "/_emulator/events", None).await;
    assert_eq!(wrong.json()["__type"], "InvalidSignatureException", "{}", wrong.text());

    // Another account's signer reaches nothing of account 111111111111.
    let who = "arn:aws:iam::222222222222:user/other";
    forbidden(&control(&server, OTHER, "POST", "/_emulator/actions/complete", Some(complete.clone())).await, who);
    forbidden(&control(&server, OTHER, "GET", "/_emulator/events?account=111111111111", None).await, who);
    let push =
        json!({"repository": "org/app", "branch": "main", "commitId": "a".repeat(40), "account": "111111111111"});
    forbidden(&control(&server, OTHER, "POST", "/_emulator/git/push", Some(push)).await, who);
    forbidden(&control(&server, OTHER, "GET", "/_emulator/state?includeSecrets=true", None).await, who);
    forbidden(&control(&server, OTHER, "POST", "/_emulator/clock/advance", Some(json!({"seconds": 60}))).await, who);
    let reset = control(&server, OTHER, "POST", "/_emulator/reset", Some(json!({"account": "111111111111"}))).await;
    forbidden(&reset, who);
    let partitions = control(&server, OTHER, "GET", "/_emulator/partitions", None).await.json();
    let accounts: Vec<&str> =
        partitions["partitions"].as_array().into_iter().flatten().filter_map(|p| p["account"].as_str()).collect();
    assert_eq!(accounts, ["222222222222"], "{partitions}");
    assert_eq!(crate::common::status(&deployer, "p", &id).await.as_str(), "InProgress", "untouched");

    // Its own account is its to read, in the headers or a presigned link (as an event stream or a download is).
    let events = control(&server, OTHER, "GET", "/_emulator/events", None).await.json();
    let pipelines: Vec<&str> = events["events"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e["event"]["detail"]["pipeline"].as_str())
        .collect();
    assert!(!pipelines.is_empty() && pipelines.iter().all(|p| *p == "q"), "{events}");
    let linked = control_signed(&server, DEPLOYER, "GET", "/_emulator/events?pipeline=p", None, true).await;
    assert_eq!(linked.status, 200, "{}", linked.text());
    assert!(linked.text().contains("\"pipeline\":\"p\""), "{}", linked.text());

    // The dashboard's own files hold no data, and are served to anyone.
    assert_eq!(server.control("GET", "/_emulator/ui/", &Value::Null).await.status, 200);

    // An administrator acts on any account.
    let all = control(&server, ADMIN, "GET", "/_emulator/partitions", None).await.json();
    assert_eq!(all["partitions"].as_array().map(Vec::len), Some(2), "{all}");
    assert_eq!(control(&server, ADMIN, "GET", "/_emulator/state", None).await.status, 200);
    let done = control(&server, ADMIN, "POST", "/_emulator/actions/complete", Some(complete)).await;
    assert_eq!(done.status, 200, "{}", done.text());
    eventually("the failed action to fail its execution", || async {
        (crate::common::status(&deployer, "p", &id).await.as_str() == "Failed").then_some(())
    })
    .await;

    // A signed reset drops the signer's partition; every account's is an administrator's to drop.
    forbidden(&control(&server, OTHER, "POST", "/_emulator/reset", Some(json!({"all": true}))).await, who);
    assert_eq!(control(&server, OTHER, "POST", "/_emulator/reset", None).await.status, 200);
    assert!(other.list_pipelines().send().await.expect("lists").pipelines().is_empty());
    assert_eq!(deployer.list_pipelines().send().await.expect("lists").pipelines().len(), 1, "another account's");
    assert_eq!(control(&server, ADMIN, "POST", "/_emulator/reset", Some(json!({"all": true}))).await.status, 200);
    assert!(deployer.list_pipelines().send().await.expect("lists").pipelines().is_empty());
}
