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
