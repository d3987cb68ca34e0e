//! Bounded resources: connections that send too slowly or sit idle are closed, and what a small request can make
//! the server keep is bounded.

use std::time::Duration;

use codepipeline_local::Config;

use crate::common::{HttpResponse, TestServer};

/// A server with short connection bounds, so the tests need no long waits.
async fn impatient() -> TestServer {
    TestServer::with_config(Config {
        header_timeout: Duration::from_millis(300),
        body_timeout: Duration::from_millis(300),
        idle_timeout: Duration::from_millis(300),
        ..Config::default()
    })
    .await
}

#[tokio::test]
async fn a_request_head_that_never_completes_is_closed() {
    let server = impatient().await;
    let mut conn = server.connect().await;
    conn.write(b"POST / HTTP/1.1\r\nHost: localhost\r\nX-Amz-Target: CodePipeline_20150709.ListPipelines\r\n").await;
    // The head trickles in, one header line at a time, but is never finished.
    for _ in 0..3 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        conn.write(b"X-Slow: 1\r\n").await;
    }
    assert!(conn.closed_within(Duration::from_secs(3)).await.is_some(), "a slow head holds its connection");
}

#[tokio::test]
async fn many_slow_connections_are_all_closed() {
    let server = impatient().await;
    let mut conns = Vec::new();
    for _ in 0..50 {
        let mut conn = server.connect().await;
        conn.write(b"POST / HTTP/1.1\r\nHost: local").await;
        conns.push(conn);
    }
    for conn in &mut conns {
        assert!(conn.closed_within(Duration::from_secs(3)).await.is_some(), "a half-sent head is held forever");
    }
    // The server still answers.
    assert_eq!(server.call("ListPipelines", "{}").await.status, 200);
}

#[tokio::test]
async fn idle_keep_alive_connections_are_closed_and_busy_ones_are_not() {
    let server = impatient().await;
    let mut conn = server.connect().await;
    // Requests closer together than the idle bound keep the connection, for longer than the bound in all.
    for _ in 0..5 {
        assert_eq!(conn.aws("ListPipelines", "{}").await.status, 200);
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    assert_eq!(conn.aws("ListPipelines", "{}").await.status, 200);
    // Then it sits idle and is closed.
    assert!(conn.closed_within(Duration::from_secs(3)).await.is_some(), "an idle connection is held forever");
}

#[tokio::test]
async fn a_stalled_body_is_answered_408_and_its_connection_closed() {
    let server = impatient().await;
    let mut conn = server.connect().await;
    conn.write(
        b"POST / HTTP/1.1\r\nHost: localhost\r\nX-Amz-Target: CodePipeline_20150709.ListPipelines\r\n\
          Content-Type: application/x-amz-json-1.1\r\nContent-Length: 100\r\n\r\n{\"next",
    )
    .await;
    let sent = conn.closed_within(Duration::from_secs(3)).await.expect("the connection is closed");
    let text = String::from_utf8_lossy(&sent);
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(text.contains("RequestTimeoutException"), "{text}");
}

#[tokio::test]
async fn control_bodies_over_the_limit_get_the_json_413() {
    let server = TestServer::start().await;
    let body = format!(r#"{{"rules": [], "padding": "{}"}}"#, "x".repeat(9 * 1024 * 1024));
    let response: HttpResponse = server
        .connect()
        .await
        .request("PUT", "/_emulator/behaviors", &[("Content-Type", "application/json")], body.as_bytes())
        .await;
    assert_eq!(response.status, 413, "{}", response.text());
    assert_eq!(response.json()["__type"], "RequestEntityTooLargeException");
    assert_eq!(response.header("content-type"), Some("application/x-amz-json-1.1"));
}

#[tokio::test]
async fn requests_that_change_nothing_create_no_partition() {
    let server = TestServer::start().await;
    let store = server.server.state().store();
    for (i, region) in
        ["ap-south-1", "ap-south-2", "eu-south-1", "eu-south-2", "me-south-1", "af-south-1"].iter().enumerate()
    {
        let client = server.client_as("111122223333", region);
        match i {
            0 => {
                client.delete_webhook().name("nothing").send().await.expect("a no-op delete succeeds");
            }
            1 => {
                client.delete_pipeline().name("nothing").send().await.expect("a no-op delete succeeds");
            }
            2 => {
                let id = aws_sdk_codepipeline::types::ActionCategory::Build;
                client.delete_custom_action_type().category(id).provider("P").version("1").send().await.expect("ok");
            }
            3 => {
                let mut declaration = crate::common::sdk_pipeline("refused");
                declaration.stages.truncate(1);
                client.create_pipeline().pipeline(declaration).send().await.expect_err("one stage is refused");
            }
            4 => {
                client.start_pipeline_execution().name("nothing").send().await.expect_err("no such pipeline");
            }
            _ => {
                let err = client.deregister_webhook_with_third_party().webhook_name("nothing").send().await;
                err.expect_err("no such webhook");
            }
        }
    }
    assert_eq!(store.partition_count(), 0, "a request that changed nothing left a partition behind");
    let client = server.client_as("111122223333", "ap-south-1");
    client.create_pipeline().pipeline(crate::common::sdk_pipeline("kept")).send().await.expect("created");
    assert_eq!(store.partition_count(), 1);
}

#[tokio::test]
async fn page_tokens_work_only_where_they_were_issued() {
    let server = TestServer::start().await;
    let owner = server.client_as("111122223333", "eu-west-1");
    for name in ["a", "b", "c"] {
        owner.create_pipeline().pipeline(crate::common::sdk_pipeline(name)).send().await.expect("created");
    }
    let first = owner.list_pipelines().max_results(1).send().await.expect("lists");
    let token = first.next_token().expect("more pages").to_string();
    for (key, region) in [("444455556666", "eu-west-1"), ("111122223333", "eu-west-2"), ("AKIDEXAMPLE", "eu-west-1")] {
        let other = server.client_as(key, region);
        other.create_pipeline().pipeline(crate::common::sdk_pipeline("a")).send().await.expect("created");
        other.create_pipeline().pipeline(crate::common::sdk_pipeline("z")).send().await.expect("created");
        let err = other.list_pipelines().next_token(&token).send().await.expect_err("a foreign token");
        assert!(err.into_service_error().is_invalid_next_token_exception(), "{key}/{region}");
    }
    let second = owner.list_pipelines().max_results(1).next_token(&token).send().await.expect("its own token");
    assert_eq!(second.pipelines()[0].name(), Some("b"));

    // A pipeline's execution history token does not page through another pipeline's history.
    for _ in 0..2 {
        owner.start_pipeline_execution().name("a").send().await.expect("started");
    }
    let page = owner.list_pipeline_executions().pipeline_name("a").max_results(1).send().await.expect("lists");
    let token = page.next_token().expect("more pages").to_string();
    let err = owner.list_pipeline_executions().pipeline_name("b").next_token(&token).send().await;
    assert!(err.expect_err("another pipeline").into_service_error().is_invalid_next_token_exception());
}
