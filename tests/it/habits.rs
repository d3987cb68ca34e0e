//! Habits from LocalStack and moto (issue 29): bodiless control requests, their reset endpoints, init hooks, and
//! docker-compose host names.

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::common::TestServer;
use codepipeline_local::config::Config;

/// Sends `request` as it is on its own connection; the status and the body of the answer.
async fn raw(addr: &str, request: &str) -> (u16, String) {
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connects");
    stream.write_all(request.as_bytes()).await.expect("writes");
    let mut response = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut response)).await;
    let response = String::from_utf8_lossy(&response).into_owned();
    let status = response.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    (status, response.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default())
}

async fn pipelines(server: &TestServer) -> usize {
    let listed = server.call("ListPipelines", "{}").await.json();
    listed["pipelines"].as_array().map_or(0, Vec::len)
}

async fn create(server: &TestServer, name: &str) {
    let pipeline = crate::common::pipeline_json(name);
    let created = server.call("CreatePipeline", &format!(r#"{{"pipeline": {pipeline}}}"#)).await;
    assert_eq!(created.status, 200, "{}", created.text());
}

#[tokio::test]
async fn curl_style_resets_work_and_what_a_page_could_send_stays_refused() {
    let server = TestServer::fast().await;
    let addr = server.url().trim_start_matches("http://").to_string();
    // What `curl -X POST http://localhost:4566/_emulator/reset` sends: no body, no Content-Type.
    for path in ["/_emulator/reset", "/_localstack/state/reset", "/moto-api/reset"] {
        create(&server, "p").await;
        assert_eq!(pipelines(&server).await, 1);
        let curl = format!(
            "POST {path} HTTP/1.1\r\nHost: localhost:4566\r\nUser-Agent: curl/8.5.0\r\nAccept: */*\r\nConnection: close\r\n\r\n"
        );
        let (status, body) = raw(&addr, &curl).await;
        assert_eq!(status, 200, "{path}: {body}");
        assert_eq!(serde_json::from_str::<Value>(&body).ok().map(|b| b["status"].clone()), Some(json!("reset")));
        assert_eq!(pipelines(&server).await, 0, "{path} reset everything");
    }
    // Scoped as /_emulator/reset is: one account only.
    create(&server, "kept").await;
    let other = r#"{"account": "111111111111"}"#;
    let scoped = format!(
        "POST /moto-api/reset HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{other}",
        other.len()
    );
    assert_eq!(raw(&addr, &scoped).await.0, 200);
    assert_eq!(pipelines(&server).await, 1, "another account's reset keeps this one's pipeline");

    // What a web page could send is refused as before.
    let refused = [
        ("Origin: https://evil.example\r\n", "", 403),
        ("Sec-Fetch-Site: cross-site\r\nSec-Fetch-Mode: no-cors\r\n", "", 415),
        ("Content-Type: text/plain\r\n", "{}", 415),
        ("Content-Type: application/x-www-form-urlencoded\r\n", "a=b", 415),
        ("", "{}", 415),
    ];
    for (headers, body, expected) in refused {
        let request = format!(
            "POST /_emulator/reset HTTP/1.1\r\nHost: localhost\r\n{headers}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        let (status, answer) = raw(&addr, &request).await;
        assert_eq!(status, expected, "{headers:?} {body:?}: {answer}");
    }
    assert_eq!(pipelines(&server).await, 1, "nothing was reset");
}

#[tokio::test]
async fn a_compose_service_name_with_a_port_is_allowed_and_a_refusal_names_what_to_set() {
    for allowed in ["codepipeline", "codepipeline:4566", "CodePipeline"] {
        let server = TestServer::with_config(Config { allowed_hosts: vec![allowed.into()], ..Config::default() }).await;
        let addr = server.url().trim_start_matches("http://").to_string();
        let request = "GET /_emulator/partitions HTTP/1.1\r\nHost: codepipeline:4566\r\nConnection: close\r\n\r\n";
        let (status, body) = raw(&addr, request).await;
        assert_eq!(status, 200, "{allowed}: {body}");
    }
    let server = TestServer::fast().await;
    let addr = server.url().trim_start_matches("http://").to_string();
    let request = "GET /_emulator/partitions HTTP/1.1\r\nHost: codepipeline:4566\r\nConnection: close\r\n\r\n";
    let (status, body) = raw(&addr, request).await;
    assert_eq!(status, 403);
    let message = serde_json::from_str::<Value>(&body).map(|b| b["message"].clone()).unwrap_or_default();
    assert_eq!(
        message,
        "Control requests addressed to host 'codepipeline' are refused; allow it with --allowed-hosts codepipeline \
         (or CODEPIPELINE_LOCAL_ALLOWED_HOSTS=codepipeline)"
    );
    // An entry that is not a host name stops the server at start, saying why.
    let refused = codepipeline_local::app::AppState::new(Config {
        allowed_hosts: vec!["http://codepipeline:4566/".into()],
        ..Config::default()
    });
    let error = refused.err().map(|e| e.to_string()).unwrap_or_default();
    assert!(error.contains("--allowed-hosts http://codepipeline:4566/: not a host name"), "{error}");
}

/// Writes `text` at `path` (creating its folder), executable or not.
fn script(path: &std::path::Path, text: &str, executable: bool) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(path.parent().expect("a folder")).expect("folder");
    std::fs::write(path, text).expect("writes");
    let mode = if executable { 0o755 } else { 0o644 };
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("mode");
}

/// The binary started with `args`, its log read on a thread from the start; the address comes with its Ready. line.
fn spawn_logged(args: &[&str]) -> (std::process::Child, Arc<Mutex<Vec<String>>>, std::thread::JoinHandle<()>, String) {
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_codepipeline-local"))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("binary starts");
    let stdout = child.stdout.take().expect("piped");
    let log = Arc::new(Mutex::new(Vec::<String>::new()));
    let (address, ready_line) = std::sync::mpsc::channel::<String>();
    let reader = {
        let log = Arc::clone(&log);
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if line.trim_end().ends_with("Ready.") {
                    let addr = line.split("http://").nth(1).and_then(|r| r.split_whitespace().next()).unwrap_or("");
                    let _ = address.send(addr.to_string());
                }
                log.lock().unwrap_or_else(|p| p.into_inner()).push(line);
            }
        })
    };
    let addr = ready_line.recv_timeout(Duration::from_secs(20)).expect("a Ready. line");
    (child, log, reader, addr)
}

#[test]
fn init_hooks_run_at_each_stage_with_the_endpoint_and_report_as_localstack_does() {
    let dir = std::env::temp_dir().join(format!("cpl-init-{}", uuid::Uuid::new_v4()));
    let marks = dir.join("marks");
    std::fs::create_dir_all(&marks).expect("folder");
    let init = dir.join("init");
    script(&init.join("boot.d/boot.sh"), &format!("echo booted > {}/boot\n", marks.display()), false);
    // A ready script creates a pipeline through the endpoint it is given, with Python's standard library only.
    let create = r#"python3 - <<'EOF'
import json, os, urllib.request
pipeline = {"name": "from-init", "roleArn": "arn:aws:iam::123456789012:role/r",
  "artifactStore": {"type": "S3", "location": "artifacts"},
  "stages": [
    {"name": "Source", "actions": [{"name": "Src", "actionTypeId": {"category": "Source", "owner": "AWS", "provider": "S3", "version": "1"},
      "configuration": {"S3Bucket": "b", "S3ObjectKey": "k.zip", "PollForSourceChanges": "false"}, "outputArtifacts": [{"name": "Out"}]}]},
    {"name": "Approve", "actions": [{"name": "Gate", "actionTypeId": {"category": "Approval", "owner": "AWS", "provider": "Manual", "version": "1"}}]}]}
request = urllib.request.Request(os.environ["AWS_ENDPOINT_URL"] + "/", data=json.dumps({"pipeline": pipeline}).encode(),
  headers={"X-Amz-Target": "CodePipeline_20150709.CreatePipeline", "Content-Type": "application/x-amz-json-1.1"})
print("created", json.load(urllib.request.urlopen(request))["pipeline"]["name"], "with key", os.environ["AWS_ACCESS_KEY_ID"])
EOF
"#;
    script(&init.join("ready.d/01-create.sh"), create, false);
    script(&init.join("ready.d/02-fail.sh"), "echo about to fail\nexit 3\n", false);
    script(&init.join("ready.d/03-exec"), "#!/bin/sh\necho exec ran\n", true);
    script(&init.join("ready.d/notes.txt"), "not a script\n", false);
    script(&init.join("ready.d/nested/04-nested.sh"), "echo nested ran\n", false);
    script(&init.join("shutdown.d/bye.sh"), &format!("echo bye > {}/bye\n", marks.display()), false);

    let init_arg = init.display().to_string();
    let (mut child, log, reader, addr) = spawn_logged(&["--port", "0", "--init-dir", &init_arg]);
    assert!(marks.join("boot").exists(), "boot scripts ran before Ready.");
    let deadline = Instant::now() + Duration::from_secs(20);
    let ready = loop {
        let body = crate::process::exchange(&addr, "GET", "/_localstack/init/ready", None, "");
        let report: Value = serde_json::from_str(&body).unwrap_or_default();
        if report["completed"] == true {
            break report;
        }
        assert!(Instant::now() < deadline, "the ready stage never completed: {report}");
        std::thread::sleep(Duration::from_millis(50));
    };
    let states: Vec<(String, String)> = ready["scripts"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|s| (s["name"].as_str().unwrap_or("").to_string(), s["state"].as_str().unwrap_or("").to_string()))
        .collect();
    let expected = [
        ("01-create.sh", "SUCCESSFUL"),
        ("02-fail.sh", "ERROR"),
        ("03-exec", "SUCCESSFUL"),
        ("04-nested.sh", "SUCCESSFUL"),
    ];
    assert_eq!(states, expected.map(|(n, s)| (n.to_string(), s.to_string())), "{ready}");
    assert!(ready["scripts"].as_array().into_iter().flatten().all(|s| s["stage"] == "READY"));
    let all: Value = serde_json::from_str(&crate::process::exchange(&addr, "GET", "/_localstack/init", None, ""))
        .unwrap_or_default();
    assert_eq!(all["completed"], json!({"BOOT": true, "START": true, "READY": true, "SHUTDOWN": false}), "{all}");
    assert_eq!(all["scripts"][0], json!({"stage": "BOOT", "name": "boot.sh", "state": "SUCCESSFUL"}));
    let missing = crate::process::exchange(&addr, "GET", "/_localstack/init/later", None, "");
    assert!(missing.contains("NotFoundException"), "{missing}");
    // The pipeline the script created is there.
    let listed = crate::process::exchange(&addr, "POST", "/", Some("ListPipelines"), "{}");
    assert!(listed.contains("\"from-init\""), "{listed}");

    // Shutdown scripts run when the server is asked to stop.
    let status = std::process::Command::new("kill").args(["-TERM", &child.id().to_string()]).status().expect("kill");
    assert!(status.success());
    let _ = child.wait();
    let _ = reader.join();
    assert!(marks.join("bye").exists(), "shutdown scripts ran");
    let log = log.lock().unwrap_or_else(|p| p.into_inner()).join("\n");
    for expected in
        ["created from-init with key test", "about to fail", "failed with exit code 3", "exec ran", "nested ran"]
    {
        assert!(log.contains(expected), "the log has {expected:?}: {log}");
    }
    assert!(log.contains("notes.txt is neither executable nor a .sh file; skipped"), "{log}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn an_embedded_emulator_serves_on_a_free_port_and_stops_when_dropped() {
    let emulator = codepipeline_local::RunningServer::ephemeral().await.expect("starts");
    let url = emulator.url();
    assert!(url.starts_with("http://127.0.0.1:") && !url.ends_with(":4566"), "{url}");
    let addr = url.trim_start_matches("http://").to_string();
    let (status, body) = raw(&addr, "GET /health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").await;
    assert_eq!(status, 200, "{body}");
    // Two at once do not collide.
    let second = codepipeline_local::RunningServer::ephemeral().await.expect("starts too");
    assert_ne!(second.url(), url);
    drop(emulator);
    let deadline = Instant::now() + Duration::from_secs(10);
    while tokio::net::TcpStream::connect(&addr).await.is_ok() {
        assert!(Instant::now() < deadline, "still listening after the drop");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    second.shutdown().await.expect("stops");
}

#[test]
fn start_errors_go_to_stderr_and_say_what_to_do() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("binds");
    let port = taken.local_addr().expect("address").port().to_string();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_codepipeline-local"))
        .args(["--port", &port])
        .output()
        .expect("runs");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("the port is in use") && stderr.contains("--port (CODEPIPELINE_LOCAL_PORT)"), "{stderr}");
    assert!(!String::from_utf8_lossy(&output.stdout).contains("in use"), "not in the log");
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_codepipeline-local"))
        .args(["--port", "0", "--allowed-hosts", "http://x/"])
        .output()
        .expect("runs");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("cannot start: --allowed-hosts http://x/: not a host name"), "{stderr}");
}

#[test]
fn debug_logs_a_line_per_request_and_the_root_names_health_and_the_dashboard() {
    let (mut child, log, reader, addr) = spawn_logged(&["--port", "0", "--log-level", "debug"]);
    let root = crate::process::exchange(&addr, "GET", "/", None, "");
    assert!(root.contains("GET /health") && root.contains("/_emulator/ui/"), "{root}");
    crate::process::exchange(&addr, "GET", "/health", None, "");
    crate::process::exchange(&addr, "GET", "/_emulator/partitions?account=1", None, "");
    crate::process::exchange(&addr, "GET", "/no/such/route", None, "");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let text = log.lock().unwrap_or_else(|p| p.into_inner()).join("\n");
        let seen = [
            "path=/health status=200",
            "path=/_emulator/partitions status=200",
            "path=/no/such/route status=404",
            "method=GET path=/ status=405",
        ]
        .iter()
        .all(|line| text.contains(line));
        if seen {
            assert!(!text.contains("account=1"), "the query is not logged: {text}");
            break;
        }
        assert!(Instant::now() < deadline, "one line per request: {text}");
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
    let _ = reader.join();
}
