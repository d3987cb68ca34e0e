//! The emulator's own endpoints and the server's lifecycle.

use std::time::Duration;

use serde_json::Value;

use crate::common::{Conn, TestServer, pipeline_json};

#[tokio::test]
async fn health_reports_version_and_uptime() {
    let server = TestServer::start().await;
    let response = server.connect().await.request("GET", "/health", &[], b"").await;
    assert_eq!(response.status, 200);
    let body = response.json();
    assert_eq!(body["status"], "running");
    assert_eq!(body["version"], env!("CARGO_PKG_VERSION"));
    assert!(body["uptimeSeconds"].as_f64().is_some_and(|s| s >= 0.0), "{body}");
}

#[tokio::test]
async fn localstack_health_says_codepipeline_is_running() {
    let server = TestServer::start().await;
    let response = server.connect().await.request("GET", "/_localstack/health", &[], b"").await;
    assert_eq!(response.status, 200);
    assert_eq!(response.json()["services"]["codepipeline"], "running");
}

#[tokio::test]
async fn reset_drops_all_state() {
    let server = TestServer::start().await;
    let body = format!(r#"{{"pipeline": {}}}"#, pipeline_json("to-be-dropped"));
    assert_eq!(server.call("CreatePipeline", &body).await.status, 200);
    let other_region = server.client_as("123456789012", "sa-east-1");
    other_region.create_pipeline().pipeline(crate::common::sdk_pipeline("elsewhere")).send().await.expect("created");

    let response = server.control("POST", "/_emulator/reset", &Value::Null).await;
    assert_eq!(response.status, 200, "{}", response.text());

    let list = server.call("ListPipelines", "{}").await.json();
    assert_eq!(list["pipelines"].as_array().map(Vec::len), Some(0));
    let list = other_region.list_pipelines().send().await.expect("lists");
    assert!(list.pipelines().is_empty());
    // The name is free again.
    assert_eq!(server.call("CreatePipeline", &body).await.status, 200);
}

#[tokio::test]
async fn shutdown_lets_an_in_flight_request_finish() {
    let server = TestServer::start().await;
    let addr = server.server.addr().to_string();
    let mut conn = Conn::open(&addr).await;
    // Start a request whose body has not fully arrived.
    let body = br#"{"maxResults": 10}"#;
    let head = format!(
        "POST / HTTP/1.1\r\nHost: localhost\r\nX-Amz-Target: CodePipeline_20150709.ListPipelines\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    conn.write(head.as_bytes()).await;
    conn.write(&body[..5]).await;
    tokio::time::sleep(Duration::from_millis(50)).await;

    let shutdown = tokio::spawn(server.server.shutdown());
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(!shutdown.is_finished(), "shutdown waits for the in-flight request");

    conn.write(&body[5..]).await;
    let response = conn.read_response().await;
    assert_eq!(response.status, 200, "{}", response.text());
    tokio::time::timeout(Duration::from_secs(5), shutdown)
        .await
        .expect("shutdown completes once the request is done")
        .expect("task joins")
        .expect("server stops cleanly");
    assert!(tokio::net::TcpStream::connect(&addr).await.is_err(), "no longer listening");
}
