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

/// Waits for the line ending in `Ready.` on the child's stdout and returns every line read until then.
fn lines_until_ready(child: &mut std::process::Child) -> Vec<String> {
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
            return seen;
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
        let lines = lines_until_ready(&mut child);
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
    let mut child = Command::new(env!("CARGO_BIN_EXE_codepipeline-local"))
        .args(["--port", "0", "--shutdown-timeout", "1s"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("binary starts");
    let lines = lines_until_ready(&mut child);
    let addr = lines
        .last()
        .and_then(|l| l.split("http://").nth(1))
        .and_then(|rest| rest.split_whitespace().next())
        .expect("the Ready line names the address")
        .to_string();
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
