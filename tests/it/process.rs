//! The real binary: flags from the environment, the `Ready.` line, and shutdown on SIGTERM.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[test]
fn binary_logs_ready_with_its_address_and_stops_on_sigterm() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_codepipeline-local"))
        .env("CODEPIPELINE_LOCAL_PORT", "0")
        .env("CODEPIPELINE_LOCAL_LOG_FORMAT", "json")
        .env("CODEPIPELINE_LOCAL_DEFAULT_REGION", "eu-north-1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("binary starts");
    let stdout = child.stdout.take().expect("stdout piped");
    let mut lines = BufReader::new(stdout).lines();
    let deadline = Instant::now() + Duration::from_secs(20);
    let ready = loop {
        assert!(Instant::now() < deadline, "no Ready. line in time");
        let line = lines.next().expect("a log line").expect("readable");
        let event: serde_json::Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}"));
        let message = event["message"].as_str().unwrap_or_default().to_string();
        if message.ends_with("Ready.") {
            break message;
        }
    };
    assert!(ready.contains("eu-north-1"), "{ready}");
    let addr = ready
        .split("http://")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .expect("the line names the address")
        .to_string();
    let port: u16 = addr.rsplit(':').next().and_then(|p| p.parse().ok()).expect("a port");
    assert_ne!(port, 0, "port 0 was replaced by the real port");
    std::net::TcpStream::connect(&addr).expect("accepts connections once Ready.");
    let probe = Command::new(env!("CARGO_BIN_EXE_codepipeline-local"))
        .args(["--check-health", "--host", "0.0.0.0", "--port", &port.to_string()])
        .status()
        .expect("probe runs");
    assert!(probe.success(), "--check-health succeeds against a running server");

    let status = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().expect("kill runs");
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(10);
    let exit = loop {
        if let Some(exit) = child.try_wait().expect("waitable") {
            break exit;
        }
        assert!(Instant::now() < deadline, "did not stop on SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(exit.success(), "clean exit on SIGTERM: {exit:?}");
}

#[test]
fn help_lists_flags_and_bad_flags_fail() {
    let output = Command::new(env!("CARGO_BIN_EXE_codepipeline-local")).arg("--help").output().expect("runs");
    assert!(output.status.success());
    let help = String::from_utf8_lossy(&output.stdout);
    for flag in ["--host", "--port", "--default-region", "--default-account", "--log-level", "--log-format"] {
        assert!(help.contains(flag), "{flag} missing from --help");
    }
    let output = Command::new(env!("CARGO_BIN_EXE_codepipeline-local"))
        .args(["--default-account", "nope"])
        .output()
        .expect("runs");
    assert!(!output.status.success());
}

#[test]
fn check_health_fails_when_nothing_listens() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("free port").port();
    let status = Command::new(env!("CARGO_BIN_EXE_codepipeline-local"))
        .args(["--check-health", "--port", &port.to_string()])
        .stderr(Stdio::null())
        .status()
        .expect("probe runs");
    assert!(!status.success());
}

/// Starts the binary with `args` (stdout piped), waits for its `Ready.` line, and returns the child, the lines read
/// until then, and the address it listens on.
/// The binary started with `args`: the child, its log lines until `Ready.`, its address, and the rest of its log
/// (complete once the child has exited).
pub(crate) fn start_binary(
    args: &[&str],
    stderr: Stdio,
) -> (std::process::Child, Vec<String>, String, std::thread::JoinHandle<String>) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_codepipeline-local"))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(stderr)
        .spawn()
        .expect("binary starts");
    let (lines, rest) = lines_until_ready(&mut child);
    let addr = lines
        .last()
        .and_then(|l| l.split("http://").nth(1))
        .and_then(|rest| rest.split_whitespace().next())
        .expect("the Ready line names the address")
        .to_string();
    (child, lines, addr, rest)
}

/// Waits for the line ending in `Ready.` on the child's stdout and returns every line read until then, and the rest of
/// the output, read meanwhile (so the child never writes to a closed pipe).
fn lines_until_ready(child: &mut std::process::Child) -> (Vec<String>, std::thread::JoinHandle<String>) {
    let stdout = child.stdout.take().expect("stdout piped");
    let mut lines = BufReader::new(stdout).lines();
    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        assert!(Instant::now() < deadline, "no Ready. line in time: {seen:?}");
        let line = lines.next().expect("a log line").expect("readable");
        let ready = line.trim_end().ends_with("Ready.");
        seen.push(line);
        if ready {
            let rest = std::thread::spawn(move || lines.map_while(Result::ok).collect::<Vec<_>>().join("\n"));
            return (seen, rest);
        }
    }
}

#[test]
fn text_logs_in_a_pipe_have_no_colour_codes_and_ready_shows_at_every_level() {
    for level in ["error", "off", "info"] {
        let mut child = Command::new(env!("CARGO_BIN_EXE_codepipeline-local"))
            .args(["--port", "0", "--log-level", level])
            .env_remove("NO_COLOR")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("binary starts");
        let (lines, _) = lines_until_ready(&mut child);
        let _ = child.kill();
        let _ = child.wait();
        for line in &lines {
            assert!(!line.contains('\u{1b}'), "an ANSI escape in a piped log line at level {level}: {line:?}");
        }
        assert!(lines.last().is_some_and(|l| l.contains("listening on http://")), "{level}: {lines:?}");
    }
}

#[test]
fn an_unknown_log_level_is_a_start_up_error() {
    for bad in ["verbose", "codepipeline_local"] {
        let output = Command::new(env!("CARGO_BIN_EXE_codepipeline-local"))
            .args(["--port", "0", "--log-level", bad])
            .output()
            .expect("runs");
        assert!(!output.status.success(), "--log-level {bad} was accepted");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains("is not a log level"), "{stderr}");
    }
}

#[test]
fn sigterm_ends_the_process_within_its_bound_even_with_half_sent_requests() {
    use std::io::Write;
    let (mut child, _, addr, _) = start_binary(&["--port", "0", "--shutdown-timeout", "1s"], Stdio::null());
    // One connection stops in the middle of its head, another in the middle of its body.
    let mut head = std::net::TcpStream::connect(&addr).expect("connects");
    head.write_all(b"POST / HTTP/1.1\r\nHost: localhost\r\nX-Amz-Ta").expect("writes");
    let mut body = std::net::TcpStream::connect(&addr).expect("connects");
    body.write_all(
        b"POST / HTTP/1.1\r\nHost: localhost\r\nX-Amz-Target: CodePipeline_20150709.ListPipelines\r\n\
          Content-Length: 50\r\n\r\n{\"nex",
    )
    .expect("writes");
    std::thread::sleep(Duration::from_millis(200));

    let asked = Instant::now();
    let status = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().expect("kill runs");
    assert!(status.success());
    let exit = loop {
        if let Some(exit) = child.try_wait().expect("waitable") {
            break exit;
        }
        if asked.elapsed() > Duration::from_secs(8) {
            let _ = child.kill();
            panic!("still running 8 s after SIGTERM with a 1 s shutdown bound");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(exit.success(), "{exit:?}");
    assert!(asked.elapsed() >= Duration::from_millis(900), "the open requests were given their time");
    drop((head, body));
}

/// One request on its own connection (`Connection: close`); returns the response body.
pub(crate) fn exchange(addr: &str, method: &str, path: &str, target: Option<&str>, body: &str) -> String {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).expect("connects");
    let target = target.map(|t| format!("X-Amz-Target: CodePipeline_20150709.{t}\r\n")).unwrap_or_default();
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nContent-Type: application/json\r\n\
         {target}Content-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).expect("writes");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("reads");
    response.split_once("\r\n\r\n").map(|(_, body)| body.to_string()).unwrap_or_default()
}

#[test]
fn no_secret_token_or_nonce_reaches_the_logs_at_any_level() {
    use serde_json::json;
    let args = ["--port", "0", "--log-level", "trace", "--action-duration-ms", "5"];
    let (mut child, lines, addr, rest) = start_binary(&args, Stdio::piped());
    let aws =
        |operation: &str, body: serde_json::Value| exchange(&addr, "POST", "/", Some(operation), &body.to_string());
    let at = |c: &str, o: &str, p: &str| json!({"category": c, "owner": o, "provider": p, "version": "1"});
    let none = json!({"minimumCount": 0, "maximumCount": 1});
    aws(
        "CreateCustomActionType",
        json!({"category": "Build", "provider": "Worker", "version": "1",
        "configurationProperties": [{"name": "Project", "required": true, "key": true, "secret": false, "queryable": true},
            {"name": "Token", "required": true, "key": false, "secret": true}],
        "inputArtifactDetails": none, "outputArtifactDetails": none}),
    );
    let pipeline = json!({"name": "p", "roleArn": "arn:aws:iam::123456789012:role/r",
        "artifactStore": {"type": "S3", "location": "bucket"},
        "stages": [
            {"name": "Source", "actions": [{"name": "Src", "actionTypeId": at("Source", "ThirdParty", "GitHub"),
                "configuration": {"Owner": "o", "Repo": "r", "Branch": "main", "OAuthToken": "OAUTH-SECRET-1"},
                "outputArtifacts": [{"name": "Code"}]}]},
            {"name": "Build", "actions": [{"name": "Work", "actionTypeId": at("Build", "Custom", "Worker"),
                "configuration": {"Project": "web", "Token": "TOKEN-SECRET-2"}, "inputArtifacts": [{"name": "Code"}]}]}]});
    aws("CreatePipeline", json!({"pipeline": pipeline}));
    aws(
        "PutWebhook",
        json!({"webhook": {"name": "h", "targetPipeline": "p", "targetAction": "Src", "filters": [],
        "authentication": "GITHUB_HMAC", "authenticationConfiguration": {"SecretToken": "WEBHOOK-SECRET-3"}}}),
    );
    let partner = json!({"category": "Deploy", "provider": "Acme", "version": "1", "clientToken": "CLIENT-SECRET-4",
        "inputArtifactDetails": none, "outputArtifactDetails": none});
    exchange(&addr, "POST", "/_emulator/third-party-action-types", None, &partner.to_string());
    let deadline = Instant::now() + Duration::from_secs(10);
    let job = loop {
        let polled: serde_json::Value =
            serde_json::from_str(&aws("PollForJobs", json!({"actionTypeId": at("Build", "Custom", "Worker")})))
                .expect("JSON");
        if let Some(job) = polled["jobs"].as_array().and_then(|j| j.first()).cloned() {
            break job;
        }
        assert!(Instant::now() < deadline, "no job");
        std::thread::sleep(Duration::from_millis(20));
    };
    let (id, nonce) = (job["id"].as_str().expect("id"), job["nonce"].as_str().expect("nonce").to_string());
    aws("AcknowledgeJob", json!({"jobId": id, "nonce": "not-the-nonce"}));
    aws("AcknowledgeJob", json!({"jobId": id, "nonce": nonce}));
    aws("AcknowledgeThirdPartyJob", json!({"jobId": id, "nonce": nonce, "clientToken": "CLIENT-SECRET-4"}));
    aws("GetThirdPartyJobDetails", json!({"jobId": id, "clientToken": "CLIENT-SECRET-4"}));
    aws("PutJobSuccessResult", json!({"jobId": id}));
    // A refused update that names the secret's key, and a malformed request carrying a secret.
    let mut moved = pipeline.clone();
    moved["stages"][0]["actions"][0]["configuration"]["OAuthToken"] = json!("****");
    moved["stages"][0]["actions"][0]["configuration"]["Branch"] = json!("other");
    aws("UpdatePipeline", json!({"pipeline": moved}));
    aws(
        "PutWebhook",
        json!({"webhook": {"name": "h2", "targetPipeline": "nope", "targetAction": "Src", "filters": [],
        "authentication": "GITHUB_HMAC", "authenticationConfiguration": {"SecretToken": "WEBHOOK-SECRET-3"}}}),
    );

    let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
    let mut logs = lines.join("\n");
    logs.push_str(&rest.join().expect("the log is read"));
    let mut errors = String::new();
    if let Some(err) = child.stderr.as_mut() {
        use std::io::Read;
        err.read_to_string(&mut errors).expect("reads stderr");
    }
    let _ = child.wait();
    logs.push_str(&errors);
    assert!(logs.lines().count() > 10, "trace logging is on: {logs}");
    for secret in ["OAUTH-SECRET-1", "TOKEN-SECRET-2", "WEBHOOK-SECRET-3", "CLIENT-SECRET-4", nonce.as_str()] {
        assert!(!logs.contains(secret), "{secret} was logged:\n{logs}");
    }
}

#[test]
fn the_start_up_log_names_the_neighbours_and_skips_an_endpoint_that_is_this_server() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").expect("binds").local_addr().expect("address").port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_codepipeline-local"))
        .args(["--port", &port.to_string()])
        .env("AWS_ENDPOINT_URL", format!("http://localhost:{port}"))
        .env("AWS_ENDPOINT_URL_SNS", "http://127.0.0.1:9")
        .env("AWS_ENDPOINT_URL_CLOUDFORMATION", "http://127.0.0.1:9")
        .env("AWS_ENDPOINT_URL_CODEBUILD", "http://127.0.0.1:9")
        .env("AWS_SECRET_ACCESS_KEY", "do-not-log-me")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("binary starts");
    let (lines, _) = lines_until_ready(&mut child);
    let _ = child.kill();
    let _ = child.wait();
    let log = lines.join("\n");
    assert!(log.contains("acting for real on neighbours: SNS at http://127.0.0.1:9 (AWS_ENDPOINT_URL_SNS)"), "{log}");
    assert!(
        log.contains(
            "stay simulated until an S3 neighbour holds the artifacts: CloudFormation at http://127.0.0.1:9 \
             (AWS_ENDPOINT_URL_CLOUDFORMATION), CodeBuild at http://127.0.0.1:9 (AWS_ENDPOINT_URL_CODEBUILD)"
        ),
        "{log}"
    );
    let itself = format!(
        "http://localhost:{port} from AWS_ENDPOINT_URL is not called, since it is this server: Lambda, EventBridge, S3, \
         ECS"
    );
    assert!(log.contains(&itself), "{log}");
    assert!(!log.contains("do-not-log-me"), "{log}");
}
