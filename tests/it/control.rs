//! The emulator's own endpoints and the server's lifecycle.

use std::time::Duration;

use aws_sdk_codepipeline::types::PipelineExecutionStatus;
use serde_json::Value;

use crate::common::{Conn, HttpResponse, TestServer, complete, first_execution, pipeline_json, sdk_pipeline, wait_for};

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

/// Sends a request with the given `Host` and extra headers on a fresh connection.
async fn raw(
    server: &TestServer,
    method: &str,
    path: &str,
    host: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> HttpResponse {
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {host}\r\nContent-Length: {}\r\n", body.len());
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    let mut conn = server.connect().await;
    conn.write(head.as_bytes()).await;
    conn.write(body.as_bytes()).await;
    conn.read_response().await
}

const JSON: (&str, &str) = ("Content-Type", "application/json");

async fn behavior_count(server: &TestServer) -> usize {
    let rules = server.control("GET", "/_emulator/behaviors", &Value::Null).await.json();
    rules["rules"].as_array().map_or(0, Vec::len)
}

#[tokio::test]
async fn state_changing_control_requests_must_be_json() {
    let server = TestServer::start().await;
    let rules = r#"{"rules": [{"outcome": "fail"}]}"#;
    // What a web page can send cross-site without a preflight, and a request with no type at all.
    for content_type in
        [Some("text/plain"), Some("application/x-www-form-urlencoded"), Some("multipart/form-data"), None]
    {
        let headers: Vec<(&str, &str)> = content_type.map(|t| ("Content-Type", t)).into_iter().collect();
        let response = raw(&server, "PUT", "/_emulator/behaviors", "localhost", &headers, rules).await;
        assert_eq!(response.status, 415, "{content_type:?}: {}", response.text());
        assert_eq!(response.json()["__type"], "UnsupportedMediaTypeException");
        // With no type and no body, nothing about it could come from a page: curl's bare POST resets (issue 29).
        let response = raw(&server, "POST", "/_emulator/reset", "localhost", &headers, "").await;
        let expected = if content_type.is_none() { 200 } else { 415 };
        assert_eq!(response.status, expected, "{content_type:?}");
    }
    assert_eq!(behavior_count(&server).await, 0, "nothing changed");
    let response = raw(
        &server,
        "PUT",
        "/_emulator/behaviors",
        "localhost",
        &[("Content-Type", "application/json; charset=utf-8")],
        rules,
    )
    .await;
    assert_eq!(response.status, 200, "{}", response.text());
    assert_eq!(behavior_count(&server).await, 1);
    // Reading needs no content type.
    assert_eq!(raw(&server, "GET", "/_emulator/behaviors", "localhost", &[], "").await.status, 200);
}

#[tokio::test]
async fn web_pages_of_other_origins_are_refused() {
    let server = TestServer::start().await;
    let host = server.server.addr().to_string();
    let rules = r#"{"rules": [{"outcome": "hold"}]}"#;
    for origin in ["http://evil.example", "https://attacker.test:4566", "null", "http://localhost.evil.example"] {
        let response = raw(&server, "PUT", "/_emulator/behaviors", &host, &[JSON, ("Origin", origin)], rules).await;
        assert_eq!(response.status, 403, "{origin}: {}", response.text());
        assert_eq!(response.json()["__type"], "ForbiddenException");
        let read = raw(&server, "GET", "/_emulator/third-party-action-types", &host, &[("Origin", origin)], "").await;
        assert_eq!(read.status, 403, "{origin} reads partner client tokens");
    }
    assert_eq!(behavior_count(&server).await, 0, "nothing changed");
    // The server's own origin and loopback origins may.
    let own = format!("http://{host}");
    for origin in [own.as_str(), "http://localhost:3000", "http://127.0.0.1:8080", "http://[::1]:9000"] {
        let response = raw(&server, "PUT", "/_emulator/behaviors", &host, &[JSON, ("Origin", origin)], rules).await;
        assert_eq!(response.status, 200, "{origin}: {}", response.text());
    }
    // The AWS endpoint and health checks are not control endpoints.
    let aws = raw(
        &server,
        "POST",
        "/",
        &host,
        &[("Origin", "http://evil.example"), ("X-Amz-Target", "CodePipeline_20150709.ListPipelines")],
        "{}",
    )
    .await;
    assert_eq!(aws.status, 200, "{}", aws.text());
    assert_eq!(raw(&server, "GET", "/health", "evil.example", &[], "").await.status, 200);
}

#[tokio::test]
async fn allowed_origins_and_hosts_extend_the_defaults() {
    let server = TestServer::with_config(codepipeline_local::Config {
        allowed_origins: vec!["http://dashboard.example.test:8080".into()],
        allowed_hosts: vec!["codepipeline".into()],
        public_url: Some("http://hooks.example.test:4566".into()),
        ..codepipeline_local::Config::default()
    })
    .await;
    let rules = r#"{"rules": []}"#;
    let origin = ("Origin", "http://dashboard.example.test:8080");
    assert_eq!(raw(&server, "PUT", "/_emulator/behaviors", "localhost", &[JSON, origin], rules).await.status, 200);
    let other = ("Origin", "http://dashboard.example.test:9999");
    assert_eq!(raw(&server, "PUT", "/_emulator/behaviors", "localhost", &[JSON, other], rules).await.status, 403);
    for host in ["codepipeline:4566", "hooks.example.test:4566", "CodePipeline"] {
        let response = raw(&server, "GET", "/_emulator/behaviors", host, &[], "").await;
        assert_eq!(response.status, 200, "{host}: {}", response.text());
    }
    let public = ("Origin", "http://hooks.example.test:4566");
    assert_eq!(
        raw(&server, "PUT", "/_emulator/behaviors", "hooks.example.test:4566", &[JSON, public], rules).await.status,
        200
    );
}

#[tokio::test]
async fn host_names_that_could_be_rebound_are_refused() {
    let server = TestServer::start().await;
    // A page of evil.example whose name now resolves to 127.0.0.1 sends its own origin and host.
    let evil = [JSON, ("Origin", "http://evil.example:4566")];
    let response = raw(&server, "POST", "/_emulator/reset", "evil.example:4566", &evil, "").await;
    assert_eq!(response.status, 403, "{}", response.text());
    let read = raw(&server, "GET", "/_emulator/third-party-action-types", "evil.example:4566", &[], "").await;
    assert_eq!(read.status, 403);
    assert!(read.json()["message"].as_str().is_some_and(|m| m.contains("--allowed-hosts")), "{}", read.text());
    // Loopback names and addresses, and IP addresses (which cannot be rebound), are answered.
    for host in ["localhost:4566", "app.localhost", "127.0.0.1:4566", "[::1]:4566", "192.168.1.20:4566"] {
        assert_eq!(raw(&server, "GET", "/_emulator/behaviors", host, &[], "").await.status, 200, "{host}");
    }
    for host in ["user@localhost", "localhost/x", "local host"] {
        assert_eq!(raw(&server, "GET", "/_emulator/behaviors", host, &[], "").await.status, 403, "{host}");
    }
}

#[tokio::test]
async fn control_endpoints_act_in_the_callers_account_and_region() {
    let server = TestServer::fast().await;
    // Hold every action of account 111122223333 only.
    server.set_behaviors(serde_json::json!([{"account": "111122223333", "outcome": "hold"}])).await;
    let held = server.client_as("111122223333", "us-east-1");
    let free = server.client_as("444455556666", "us-east-1");
    for client in [&held, &free] {
        client.create_pipeline().pipeline(sdk_pipeline("p")).send().await.expect("created");
    }
    let id = first_execution(&held, "p").await;
    wait_for(&free, "p", &first_execution(&free, "p").await, PipelineExecutionStatus::Succeeded).await;
    assert_eq!(crate::common::status(&held, "p", &id).await, PipelineExecutionStatus::InProgress, "held");

    // Completing the held action from another account finds nothing there.
    let request = serde_json::json!({"pipelineName": "p", "pipelineExecutionId": id, "stageName": "Source",
        "actionName": "Source", "outcome": "succeed"});
    let mut elsewhere = request.clone();
    elsewhere["account"] = "444455556666".into();
    assert_eq!(complete(&server, elsewhere).await.status, 404);
    let mut own = request.clone();
    own["account"] = "111122223333".into();
    assert_eq!(complete(&server, own).await.status, 200);

    // A reset that names an account drops only that account's state.
    let response = server.control("POST", "/_emulator/reset", &serde_json::json!({"account": "444455556666"})).await;
    assert_eq!(response.status, 200, "{}", response.text());
    assert!(free.list_pipelines().send().await.expect("lists").pipelines().is_empty());
    assert_eq!(held.list_pipelines().send().await.expect("lists").pipelines().len(), 1, "another account kept");
}

#[tokio::test]
async fn webhook_urls_ignore_a_host_header_that_is_not_a_plain_host() {
    let server = TestServer::start().await;
    let create = format!(r#"{{"pipeline": {}}}"#, pipeline_json("hooked"));
    assert_eq!(server.call("CreatePipeline", &create).await.status, 200);
    let webhook = |name: &str| {
        serde_json::json!({"webhook": {"name": name, "targetPipeline": "hooked", "targetAction": "Source",
            "filters": [], "authentication": "UNAUTHENTICATED", "authenticationConfiguration": {}}})
        .to_string()
    };
    let target = ("X-Amz-Target", "CodePipeline_20150709.PutWebhook");
    let own = server.server.addr().to_string();
    for (i, host) in ["evil.example/path?x=", "user@evil.example", "a b"].into_iter().enumerate() {
        let response = raw(&server, "POST", "/", host, &[target], &webhook(&format!("h{i}"))).await;
        assert_eq!(response.status, 200, "{}", response.text());
        let url = response.json()["webhook"]["url"].as_str().unwrap_or_default().to_string();
        assert!(url.starts_with(&format!("http://{own}/webhooks/us-east-1/")), "{host}: {url}");
    }
    let response = raw(&server, "POST", "/", "pipelines.example.test:4566", &[target], &webhook("named")).await;
    let url = response.json()["webhook"]["url"].as_str().unwrap_or_default().to_string();
    assert!(url.starts_with("http://pipelines.example.test:4566/webhooks/us-east-1/"), "{url}");
}

#[tokio::test]
async fn the_router_alone_runs_pipelines_and_a_reset_cancels_every_timer() {
    use tower::ServiceExt;
    let state = codepipeline_local::AppState::new(codepipeline_local::Config {
        action_duration_ms: 5,
        ..codepipeline_local::Config::default()
    })
    .expect("state");
    let call = |target: &str, body: String| {
        axum::http::Request::post("/")
            .header("x-amz-target", format!("CodePipeline_20150709.{target}"))
            .header("content-type", "application/x-amz-json-1.1")
            .body(axum::body::Body::from(body))
            .expect("request")
    };
    let router = codepipeline_local::app(state.clone());
    let created = router
        .clone()
        .oneshot(call("CreatePipeline", format!(r#"{{"pipeline": {}}}"#, pipeline_json("alone"))))
        .await
        .expect("answer");
    assert_eq!(created.status(), 200);
    // No listener and no run(): the engine runs because the state does.
    let status = crate::common::eventually("the first execution to succeed", || {
        let router = router.clone();
        async move {
            let listed =
                router.oneshot(call("ListPipelineExecutions", r#"{"pipelineName": "alone"}"#.into())).await.ok()?;
            let body = axum::body::to_bytes(listed.into_body(), 1 << 20).await.ok()?;
            let listed: Value = serde_json::from_slice(&body).ok()?;
            let status = listed["pipelineExecutionSummaries"][0]["status"].as_str()?.to_string();
            (status == "Succeeded").then_some(status)
        }
    })
    .await;
    assert_eq!(status, "Succeeded");

    // A held action keeps a timeout pending; a reset cancels it with the state.
    state.engine().set_behaviors(vec![serde_json::from_value(serde_json::json!({"outcome": "hold"})).expect("rule")]);
    let held =
        router.clone().oneshot(call("StartPipelineExecution", r#"{"name": "alone"}"#.into())).await.expect("answer");
    assert_eq!(held.status(), 200);
    crate::common::eventually("a timeout to be pending", || async {
        (state.engine().pending_timers() > 0).then_some(())
    })
    .await;
    state.reset().expect("reset");
    assert_eq!(state.engine().pending_timers(), 0);
}
