//! What the store, the import and the event stream refuse or bound: documents that would brick the data directory
//! or that the API would have refused, masked secrets, file modes.

use std::os::unix::fs::PermissionsExt;

use codepipeline_local::Config;
use serde_json::{Value, json};

use crate::common::{TestServer, eventually};
use crate::persistence::TempDir;

fn config(dir: &std::path::Path) -> Config {
    Config { data_dir: Some(dir.to_path_buf()), action_duration_ms: 5, ..Config::default() }
}

fn pipeline(name: &str, token: &str) -> Value {
    let at = |category: &str, owner: &str, provider: &str| json!({"category": category, "owner": owner, "provider": provider, "version": "1"});
    json!({
        "name": name, "roleArn": "arn:aws:iam::123456789012:role/r",
        "artifactStore": {"type": "S3", "location": "artifact-bucket"},
        "stages": [
            {"name": "Source", "actions": [{"name": "Src", "actionTypeId": at("Source", "ThirdParty", "GitHub"),
                "configuration": {"Owner": "o", "Repo": "r", "Branch": "main", "OAuthToken": token},
                "outputArtifacts": [{"name": "Code"}]}]},
            {"name": "Approve", "actions": [{"name": "Gate", "actionTypeId": at("Approval", "AWS", "Manual")}]}
        ]
    })
}

async fn call(server: &TestServer, operation: &str, body: Value) -> Value {
    let response = server.call(operation, &body.to_string()).await;
    assert_eq!(response.status, 200, "{operation}: {}", response.text());
    if response.body.is_empty() { Value::Null } else { response.json() }
}

async fn export(server: &TestServer) -> Value {
    let exported = server.control("GET", "/_emulator/state?includeSecrets=true", &Value::Null).await;
    assert_eq!(exported.status, 200);
    exported.json()
}

/// The state once nothing moves any more (every pipeline waits at its approval).
async fn settled(server: &TestServer) -> Value {
    eventually("nothing left to run", || async {
        let first = export(server).await;
        tokio::time::sleep(std::time::Duration::from_millis(30)).await;
        let second = export(server).await;
        (first["partitions"] == second["partitions"]).then_some(second)
    })
    .await
}

/// Imports `document`, expecting a 400 whose message contains every one of `named`.
async fn refused(server: &TestServer, document: &Value, named: &[&str]) {
    let answer = server.control("PUT", "/_emulator/state", document).await;
    assert_eq!(answer.status, 400, "accepted: {}", answer.text());
    let message = answer.json()["message"].as_str().unwrap_or_default().to_string();
    for part in named {
        assert!(message.contains(part), "{part:?} is not named in: {message}");
    }
}

#[tokio::test]
async fn an_import_the_store_could_not_read_back_is_refused_and_the_directory_still_loads() {
    let dir = TempDir::new("bricking");
    let server = TestServer::with_config(config(&dir.0)).await;
    call(&server, "CreatePipeline", json!({"pipeline": pipeline("kept", "t0ken")})).await;
    let document = settled(&server).await;
    for sequence in [json!(9_223_372_036_854_775_808u64), json!(9_223_372_036_854_765_808u64), json!(1u64 << 53)] {
        let mut bad = document.clone();
        bad["nextEventSequence"] = sequence;
        refused(&server, &bad, &["nextEventSequence", "too large"]).await;
    }
    for offset in [i64::MAX, i64::MIN, 3_200_000_000_001] {
        let mut bad = document.clone();
        bad["clockOffsetMillis"] = json!(offset);
        refused(&server, &bad, &["clockOffsetMillis"]).await;
    }
    // The largest accepted values are saved and read back.
    let mut edge = document.clone();
    edge["nextEventSequence"] = json!((1u64 << 53) - 1);
    edge["clockOffsetMillis"] = json!(3_200_000_000_000i64);
    let answer = server.control("PUT", "/_emulator/state", &edge).await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    server.server.shutdown().await.expect("stops");
    let server = TestServer::with_config(config(&dir.0)).await;
    let reloaded = export(&server).await;
    // (The clock jumped a century, so the waiting approval has timed out since: the pipelines are what to compare.)
    let names = |d: &Value| {
        d["partitions"][0]["pipelines"].as_array().map(|p| p.iter().map(|p| p["name"].clone()).collect::<Vec<_>>())
    };
    assert_eq!(names(&reloaded), names(&document), "the imported state was saved and loads");
    assert_eq!(reloaded["clockOffsetMillis"], json!(3_200_000_000_000i64));
    assert!(reloaded["nextEventSequence"].as_u64() >= Some((1u64 << 53) - 1));
    call(&server, "StartPipelineExecution", json!({"name": "kept"})).await;
    // Nor can the clock be advanced past that bound.
    let answer = server.control("POST", "/_emulator/clock/advance", &json!({"seconds": 1})).await;
    assert_eq!(answer.status, 400, "{}", answer.text());
    assert!(answer.text().contains("at most"), "{}", answer.text());
}

#[tokio::test]
async fn an_import_is_held_to_what_the_api_accepts_and_names_the_first_offending_member() {
    let server = TestServer::fast().await;
    call(&server, "CreatePipeline", json!({"pipeline": pipeline("one", "t0ken")})).await;
    call(&server, "CreatePipeline", json!({"pipeline": pipeline("two", "t0ken")})).await;
    let document = settled(&server).await;
    let pipelines = "partitions[0].pipelines[0]";

    for name in ["../../etc/passwd", "a/b", "", "a\u{0}b", &"x".repeat(5000)] {
        let mut bad = document.clone();
        bad["partitions"][0]["pipelines"][0]["name"] = json!(name);
        refused(&server, &bad, &[&format!("{pipelines}.name")]).await;
    }
    for account in ["../..", "", "12345678901234567890"] {
        let mut bad = document.clone();
        bad["partitions"][0]["account"] = json!(account);
        refused(&server, &bad, &["partitions[0].account"]).await;
    }
    let mut bad = document.clone();
    bad["partitions"][0]["region"] = json!("../../tmp");
    refused(&server, &bad, &["partitions[0].region"]).await;

    let mut bad = document.clone();
    let first = bad["partitions"][0]["pipelines"][0]["executions"][0]["id"].clone();
    bad["partitions"][0]["pipelines"][1]["executions"][0]["id"] = first;
    refused(&server, &bad, &["partitions[0].pipelines[1].executions[0].id", "appears twice"]).await;

    let mut bad = document.clone();
    bad["partitions"][0]["pipelines"][0]["arn"] = json!("arn:aws:codepipeline:us-east-1:999999999999:one");
    refused(&server, &bad, &[&format!("{pipelines}.arn")]).await;

    // A declaration the API would refuse: by the model, and by CreatePipeline's structure rules.
    let mut bad = document.clone();
    bad["partitions"][0]["pipelines"][0]["definitions"][0]["declaration"]["stages"][0]["name"] = json!("no spaces");
    refused(&server, &bad, &["pipelines[0] (one) version 1", "stages.1.member.name"]).await;
    let mut bad = document.clone();
    let stages = &mut bad["partitions"][0]["pipelines"][0]["definitions"][0]["declaration"]["stages"];
    stages[1]["name"] = json!("Source");
    refused(&server, &bad, &["pipelines[0] (one) version 1", "Source"]).await;

    // Nothing of any refused document was applied.
    assert!(export(&server).await["partitions"] == document["partitions"], "a refused document changes nothing");
}

#[tokio::test]
async fn masked_secrets_are_refused_on_import_and_the_files_are_the_owners_alone() {
    let dir = TempDir::new("modes");
    let data = dir.0.join("nested").join("state");
    let server = TestServer::with_config(config(&data)).await;
    let mode = |path: &std::path::Path| std::fs::metadata(path).expect("exists").permissions().mode() & 0o777;
    assert_eq!(mode(&data), 0o700, "the data directory");
    assert_eq!(mode(&data.join("codepipeline-local.db")), 0o600, "the database");
    for entry in std::fs::read_dir(&data).expect("lists").flatten() {
        assert_eq!(mode(&entry.path()) & 0o077, 0, "{} is readable by others", entry.path().display());
    }

    call(&server, "CreatePipeline", json!({"pipeline": pipeline("guarded", "the-real-token")})).await;
    let masked = server.control("GET", "/_emulator/state", &Value::Null).await.json();
    refused(&server, &masked, &["OAuthToken", "Src", "****", "includeSecrets=true"]).await;

    call(
        &server,
        "PutWebhook",
        json!({"webhook": {"name": "hook", "targetPipeline": "guarded", "targetAction": "Src",
            "filters": [{"jsonPath": "$.ref", "matchEquals": "refs/heads/main"}],
            "authentication": "GITHUB_HMAC", "authenticationConfiguration": {"SecretToken": "hook-secret"}}}),
    )
    .await;
    let masked = server.control("GET", "/_emulator/state", &Value::Null).await.json();
    refused(&server, &masked, &["webhooks[0]", "SecretToken", "includeSecrets=true"]).await;

    // The secrets are still the real ones, and the full export imports.
    let full = export(&server).await;
    assert!(full.to_string().contains("the-real-token") && full.to_string().contains("hook-secret"));
    let answer = server.control("PUT", "/_emulator/state", &full).await;
    assert_eq!(answer.status, 200, "{}", answer.text());
}

#[tokio::test]
async fn a_filter_that_would_cost_unbounded_work_is_refused_and_a_deep_delivery_is_answered_at_once() {
    let server = TestServer::fast().await;
    call(&server, "CreatePipeline", json!({"pipeline": pipeline("site", "t0ken")})).await;
    let hook = |path: &str| {
        json!({"webhook": {"name": "deep", "targetPipeline": "site", "targetAction": "Src",
            "filters": [{"jsonPath": path}], "authentication": "UNAUTHENTICATED", "authenticationConfiguration": {}}})
    };
    let message =
        server.error("PutWebhook", &hook("$..*..*..*..*").to_string(), "InvalidWebhookFilterPatternException").await;
    assert!(message.contains("'..' 4 times") && message.contains("at most 1"), "{message}");

    // One recursive descent is allowed, and a payload nested as deep as JSON allows is answered within a second.
    let created = server.call("PutWebhook", &hook("$..*").to_string()).await;
    assert_eq!(created.status, 200, "{}", created.text());
    let url = created.json()["webhook"]["url"].as_str().expect("url").to_string();
    let path = &url[url.find("/webhooks/").expect("a webhook path")..];
    let deep = format!("{}{}", "{\"a\":[".repeat(60), "]}".repeat(60));
    let started = std::time::Instant::now();
    let answer =
        server.connect().await.request("POST", path, &[("Content-Type", "application/json")], deep.as_bytes()).await;
    assert!(answer.status < 500, "{}", answer.text());
    assert!(started.elapsed() < std::time::Duration::from_secs(1), "took {:?}", started.elapsed());

    // Nor does an import bring such a filter in.
    let mut document = settled(&server).await;
    document["partitions"][0]["webhooks"][0]["definition"]["filters"][0]["jsonPath"] = json!("$..a..b");
    refused(&server, &document, &["webhooks[0].definition.filters", "'..' 2 times"]).await;
}

#[tokio::test]
async fn an_event_stream_reader_that_stops_reading_has_its_connection_closed() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let config =
        Config { write_timeout: std::time::Duration::from_millis(300), action_duration_ms: 1, ..Config::default() };
    let server = TestServer::with_config(config).await;
    let at = |category: &str, provider: &str| json!({"category": category, "owner": "AWS", "provider": provider, "version": "1"});
    let quick = json!({
        "name": "busy", "roleArn": "arn:aws:iam::123456789012:role/r", "executionMode": "PARALLEL", "pipelineType": "V2",
        "artifactStore": {"type": "S3", "location": "artifact-bucket"},
        "stages": [
            {"name": "Source", "actions": [{"name": "Src", "actionTypeId": at("Source", "S3"),
                "configuration": {"S3Bucket": "b", "S3ObjectKey": "k.zip"}, "outputArtifacts": [{"name": "Code"}]}]},
            {"name": "Build", "actions": [{"name": "Make", "actionTypeId": at("Build", "CodeBuild"),
                "configuration": {"ProjectName": "p"}, "inputArtifacts": [{"name": "Code"}]}]}
        ]
    });
    call(&server, "CreatePipeline", json!({"pipeline": quick})).await;
    // More than the kernel buffers a connection's sends by default (4 MiB), so the server must block on it.
    for _ in 0..900 {
        call(&server, "StartPipelineExecution", json!({"name": "busy"})).await;
    }
    eventually("a long history", || async {
        let listed = server.control("GET", "/_emulator/events", &Value::Null).await.text();
        (listed.len() > 5_000_000).then_some(())
    })
    .await;

    // A reader asks for the whole history and takes none of it.
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket.set_recv_buffer_size(4096).expect("small buffer");
    let address = server.url().trim_start_matches("http://").parse().expect("address");
    let mut stream = socket.connect(address).await.expect("connects");
    let head = "GET /_emulator/events/stream?after=0 HTTP/1.1\r\nHost: localhost\r\nAccept: text/event-stream\r\n\r\n";
    stream.write_all(head.as_bytes()).await.expect("asks");
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;

    // The server gave up on it: what it had sent is there, then the connection ends.
    let mut received = 0usize;
    let ended = tokio::time::timeout(std::time::Duration::from_secs(5), async {
        let mut buffer = vec![0u8; 65536];
        loop {
            match stream.read(&mut buffer).await {
                Ok(0) | Err(_) => return,
                Ok(n) => received += n,
            }
        }
    })
    .await;
    assert!(ended.is_ok(), "the stalled reader's connection is still open after {received} bytes");
    assert!(received < 5_000_000, "the whole history was sent ({received} bytes): the reader never stalled");
    // The server itself is fine.
    call(&server, "ListPipelines", json!({})).await;
}

/// The first `want` bytes of an event stream (after its response head), read on a raw connection.
async fn stream_start(server: &TestServer, path_and_query: &str, last_event_id: Option<u64>, want: usize) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let address = server.url().trim_start_matches("http://").to_string();
    let mut stream = tokio::net::TcpStream::connect(address).await.expect("connects");
    let resume = last_event_id.map(|id| format!("Last-Event-ID: {id}\r\n")).unwrap_or_default();
    let head = format!("GET {path_and_query} HTTP/1.1\r\nHost: localhost\r\nAccept: text/event-stream\r\n{resume}\r\n");
    stream.write_all(head.as_bytes()).await.expect("asks");
    let mut text = String::new();
    let mut buffer = vec![0u8; 8192];
    let _ = tokio::time::timeout(std::time::Duration::from_secs(2), async {
        while text.len() < want {
            match stream.read(&mut buffer).await {
                Ok(0) | Err(_) => return,
                Ok(n) => text.push_str(&String::from_utf8_lossy(&buffer[..n])),
            }
        }
    })
    .await;
    text
}

#[tokio::test]
async fn a_reader_resuming_from_before_the_history_is_told_of_the_gap() {
    let dir = TempDir::new("gap");
    let server = TestServer::with_config(config(&dir.0)).await;
    call(&server, "CreatePipeline", json!({"pipeline": pipeline("seen", "t0ken")})).await;
    settled(&server).await;
    let listed = server.control("GET", "/_emulator/events", &Value::Null).await.json();
    let last = listed["events"].as_array().and_then(|e| e.last()).and_then(|e| e["sequence"].as_u64()).expect("events");
    assert!(listed.get("gap").is_none(), "a reader from the start misses nothing: {listed}");

    // After a restart the history starts empty: a reader resuming from before it is told, not silently served nothing.
    server.server.shutdown().await.expect("stops");
    let server = TestServer::with_config(config(&dir.0)).await;
    let after = last - 2;
    let listed = server.control("GET", &format!("/_emulator/events?after={after}"), &Value::Null).await.json();
    let gap = &listed["gap"];
    assert_eq!(gap["after"], json!(after), "{listed}");
    assert!(gap["resumesAt"].as_u64() > Some(last), "{listed}");
    assert!(gap["message"].as_str().is_some_and(|m| m.contains("no longer kept")), "{listed}");
    let streamed = stream_start(&server, "/_emulator/events/stream", Some(after), 200).await;
    assert!(streamed.contains("event: gap") && streamed.contains("resumesAt"), "{streamed}");
    // New events follow on, numbered above the gap, and a reader from there misses nothing.
    call(&server, "StartPipelineExecution", json!({"name": "seen"})).await;
    let horizon = gap["resumesAt"].as_u64().expect("a number");
    let listed = server.control("GET", &format!("/_emulator/events?after={}", horizon - 1), &Value::Null).await.json();
    assert!(listed.get("gap").is_none() && listed["events"][0]["sequence"].as_u64() >= Some(horizon), "{listed}");

    // The same when the bounded history let older events go.
    let small = TestServer::with_config(Config { event_history: 3, action_duration_ms: 5, ..Config::default() }).await;
    call(&small, "CreatePipeline", json!({"pipeline": pipeline("busy", "t0ken")})).await;
    settled(&small).await;
    let listed = small.control("GET", "/_emulator/events?after=0", &Value::Null).await.json();
    assert_eq!(listed["events"].as_array().map(Vec::len), Some(3), "{listed}");
    assert_eq!(listed["gap"]["resumesAt"], listed["events"][0]["sequence"], "{listed}");
    let streamed = stream_start(&small, "/_emulator/events/stream?after=0", None, 100).await;
    assert!(streamed.contains("event: gap"), "{streamed}");
}

/// The ids ListPipelineExecutions shows, newest first, and their statuses.
async fn listed_executions(server: &TestServer, pipeline: &str) -> Vec<(String, String)> {
    let listed = call(server, "ListPipelineExecutions", json!({"pipelineName": pipeline, "maxResults": 100})).await;
    let summaries = listed["pipelineExecutionSummaries"].as_array().cloned().unwrap_or_default();
    summaries
        .iter()
        .map(|s| {
            (
                s["pipelineExecutionId"].as_str().unwrap_or("").to_string(),
                s["status"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

#[tokio::test]
async fn retention_lets_the_oldest_finished_executions_go_and_spares_what_is_running_or_shown() {
    let dir = TempDir::new("retention");
    let config = Config { max_executions_per_pipeline: 5, ..config(&dir.0) };
    let server = TestServer::with_config(config.clone()).await;
    let at = |category: &str, owner: &str, provider: &str| json!({"category": category, "owner": owner, "provider": provider, "version": "1"});
    let declaration = json!({
        "name": "kept", "roleArn": "arn:aws:iam::123456789012:role/r", "pipelineType": "V2", "executionMode": "PARALLEL",
        "artifactStore": {"type": "S3", "location": "artifact-bucket"},
        "stages": [
            {"name": "Source", "actions": [{"name": "Src", "actionTypeId": at("Source", "AWS", "S3"),
                "configuration": {"S3Bucket": "b", "S3ObjectKey": "k.zip"}, "outputArtifacts": [{"name": "Code"}]}]},
            {"name": "Build", "actions": [{"name": "Make", "actionTypeId": at("Build", "AWS", "CodeBuild"),
                "configuration": {"ProjectName": "p"}, "inputArtifacts": [{"name": "Code"}]}]},
            {"name": "Approve", "actions": [{"name": "Gate", "actionTypeId": at("Approval", "AWS", "Manual")}]}
        ]
    });
    call(&server, "CreatePipeline", json!({"pipeline": declaration})).await;
    // The first execution waits at the approval; every later one fails its build and never gets there.
    let first = eventually("the first execution to wait for its approval", || async {
        let state = call(&server, "GetPipelineState", json!({"name": "kept"})).await;
        let approve = state["stageStates"][2].clone();
        approve["actionStates"][0]["latestExecution"]["token"].as_str()?;
        approve["latestExecution"]["pipelineExecutionId"].as_str().map(str::to_string)
    })
    .await;
    server.set_behaviors(json!([{"action": "Make", "outcome": "fail", "message": "broken build"}])).await;
    let mut started = Vec::new();
    for _ in 0..12 {
        let out = call(&server, "StartPipelineExecution", json!({"name": "kept"})).await;
        started.push(out["pipelineExecutionId"].as_str().expect("an id").to_string());
    }
    let listed = eventually("the started executions to fail", || async {
        let listed = listed_executions(&server, "kept").await;
        listed.iter().filter(|(_, status)| status == "InProgress").count().eq(&1).then_some(listed)
    })
    .await;
    // The five kept: the running one, spared, and the four newest.
    let ids: Vec<&str> = listed.iter().map(|(id, _)| id.as_str()).collect();
    let mut expected: Vec<&str> = started.iter().rev().take(4).map(String::as_str).collect();
    expected.push(&first);
    assert_eq!(ids, expected, "{listed:?}");
    let gone = &started[0];
    let answer = server
        .call("GetPipelineExecution", &json!({"pipelineName": "kept", "pipelineExecutionId": gone}).to_string())
        .await;
    assert_eq!(answer.status, 400, "{}", answer.text());
    assert!(answer.text().contains("PipelineExecutionNotFoundException"), "{}", answer.text());

    // Approved, it is finished, but GetPipelineState still shows it as the approval stage's latest: still kept.
    let token = call(&server, "GetPipelineState", json!({"name": "kept"})).await["stageStates"][2]["actionStates"][0]
        ["latestExecution"]["token"]
        .as_str()
        .expect("a token")
        .to_string();
    call(
        &server,
        "PutApprovalResult",
        json!({"pipelineName": "kept", "stageName": "Approve", "actionName": "Gate", "token": token,
            "result": {"summary": "fine", "status": "Approved"}}),
    )
    .await;
    for _ in 0..3 {
        call(&server, "StartPipelineExecution", json!({"name": "kept"})).await;
    }
    let listed = eventually("everything to finish", || async {
        let listed = listed_executions(&server, "kept").await;
        listed.iter().all(|(_, status)| status != "InProgress").then_some(listed)
    })
    .await;
    assert_eq!(listed.len(), 5, "{listed:?}");
    assert_eq!(listed.last().map(|(id, _)| id.as_str()), Some(first.as_str()), "{listed:?}");
    let state = call(&server, "GetPipelineState", json!({"name": "kept"})).await;
    assert_eq!(state["stageStates"][2]["latestExecution"]["pipelineExecutionId"], json!(first));

    // The executions let go are gone from the disk too, and what is kept reads back after a restart and an import.
    server.server.shutdown().await.expect("stops");
    {
        let db = rusqlite::Connection::open(dir.0.join("codepipeline-local.db")).expect("opens");
        let rows: i64 = db.query_row("SELECT COUNT(*) FROM executions", [], |r| r.get(0)).expect("counts");
        assert_eq!(rows, 5, "rows of executions let go are deleted");
    }
    let server = TestServer::with_config(config).await;
    assert_eq!(listed_executions(&server, "kept").await, listed);
    let document = settled(&server).await;
    assert!(document["partitions"][0]["pipelines"][0]["positions"].as_array().is_some_and(|p| p.len() == 5));
    let answer = server.control("PUT", "/_emulator/state", &document).await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    assert_eq!(listed_executions(&server, "kept").await, listed);
    call(&server, "StartPipelineExecution", json!({"name": "kept"})).await;
}

#[tokio::test]
async fn a_full_disk_is_retried_with_back_off_and_reported_by_the_health_endpoints() {
    let dir = TempDir::new("backoff");
    let config = Config { max_data_bytes: Some(192 * 1024), action_duration_ms: 150, ..config(&dir.0) };
    let server = TestServer::with_config(config).await;
    let health = server.control("GET", "/health", &Value::Null).await.json();
    assert_eq!(health["storage"]["state"], "ok", "{health}");
    // Pipelines whose executions keep moving (eight builds in a row each) while the database fills up.
    let at = |category: &str, provider: &str| json!({"category": category, "owner": "AWS", "provider": provider, "version": "1"});
    let builds: Vec<Value> = (0..8)
        .map(|i| {
            json!({"name": format!("Build{i}"), "actions": [{"name": "Make", "actionTypeId": at("Build", "CodeBuild"),
            "configuration": {"ProjectName": "p"}, "inputArtifacts": [{"name": "Code"}]}]})
        })
        .collect();
    let mut stages = vec![json!({"name": "Source", "actions": [{"name": "Src", "actionTypeId": at("Source", "S3"),
        "configuration": {"S3Bucket": "b", "S3ObjectKey": "k.zip"}, "outputArtifacts": [{"name": "Code"}]}]})];
    stages.extend(builds);
    let mut full = false;
    for i in 0..300 {
        let declaration = json!({"name": format!("p{i}"), "roleArn": "arn:aws:iam::123456789012:role/r",
            "artifactStore": {"type": "S3", "location": "artifact-bucket"}, "stages": stages});
        let created = server.call("CreatePipeline", &json!({"pipeline": declaration}).to_string()).await;
        if created.status == 503 {
            full = true;
            break;
        }
    }
    assert!(full, "the database never filled up");
    let health = server.control("GET", "/health", &Value::Null).await.json();
    assert!(health["storage"]["failedCommits"].as_u64() >= Some(1), "{health}");
    assert!(health["storage"]["lastError"].as_str().is_some_and(|e| e.contains("full")), "{health}");
    let localstack = server.control("GET", "/_localstack/health", &Value::Null).await.json();
    assert!(localstack["storage"]["failedCommits"].as_u64() >= Some(1), "{localstack}");

    // While it stays full, the engine tries again less and less often: not hundreds of times.
    let before = health["storage"]["failedCommits"].as_u64().expect("a count");
    tokio::time::sleep(std::time::Duration::from_secs(4)).await;
    let health = server.control("GET", "/health", &Value::Null).await.json();
    let failed = health["storage"]["failedCommits"].as_u64().expect("a count") - before;
    // (Without the back-off: over 200.)
    assert!(failed <= 6, "{failed} failed commits in 4 s: {health}");
    // Small writes may still fit now and then, so the state reads full while the latest commit failed, else ok.
    let state = health["storage"]["state"].as_str().unwrap_or_default();
    assert!(state == "full" || state == "ok", "{health}");
    assert_eq!(health["storage"]["full"], json!(state == "full"), "{health}");
}

#[tokio::test]
async fn the_import_size_and_the_number_of_behaviour_rules_are_capped() {
    let server = TestServer::with_config(Config { max_import_bytes: 4096, ..Config::default() }).await;
    call(&server, "CreatePipeline", json!({"pipeline": pipeline("small", "t0ken")})).await;
    let mut document = settled(&server).await;
    document["padding"] = json!("x".repeat(8192));
    let answer = server.control("PUT", "/_emulator/state", &document).await;
    assert_eq!(answer.status, 413, "{}", answer.text());
    assert!(answer.text().contains("--max-import-bytes"), "{}", answer.text());

    let rules: Vec<Value> = (0..1001).map(|i| json!({"action": format!("A{i}"), "outcome": "fail"})).collect();
    let answer = server.control("PUT", "/_emulator/behaviors", &json!({"rules": rules})).await;
    assert_eq!(answer.status, 400, "{}", answer.text());
    assert!(answer.text().contains("1001 behaviour rules; at most 1000"), "{}", answer.text());
    let answer = server.control("PUT", "/_emulator/behaviors", &json!({"rules": rules[..1000]})).await;
    assert_eq!(answer.status, 200, "{}", answer.text());

    let big = TestServer::fast().await;
    let mut document = settled(&big).await;
    document["behaviors"] = json!(rules);
    refused(&big, &document, &["behaviors", "at most 1000"]).await;
}
