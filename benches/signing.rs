//! What opt-in signing and IAM cost: GetPipeline throughput of the same signed request against three servers, one
//! without checks, one with `--verify-signatures` and one with `--enforce-iam` (a five-statement policy with
//! wildcards and a condition), alternating three times; the best of each and its share of the unchecked one.
//!
//! Run with `cargo bench --bench signing` (add `-- --connections 8 --seconds 5` to change the load, `--binary PATH`
//! to measure another build).

mod support;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, SystemTime};

use tokio::net::TcpStream;

use support::{Run, exchange, free_port, load, report};

const KEY: (&str, &str) = ("AKIABENCH00000000001", "bench-secret");

/// The bench principal: reads everything, acts on `bench*` pipelines, never deletes, passes one role.
fn credentials() -> String {
    serde_json::json!({"principals": [{"accessKeyId": KEY.0, "secretAccessKey": KEY.1, "account": "111111111111",
        "arn": "arn:aws:iam::111111111111:user/bench", "policies": [{"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": ["codepipeline:Get*", "codepipeline:List*"], "Resource": "*"},
            {"Effect": "Allow", "Action": "codepipeline:*", "Resource": "arn:aws:codepipeline:*:111111111111:bench*"},
            {"Effect": "Deny", "Action": "codepipeline:Delete*", "Resource": "*"},
            {"Effect": "Allow", "Action": "iam:PassRole", "Resource": "*",
             "Condition": {"StringEquals": {"iam:PassedToService": "codepipeline.amazonaws.com"}}},
            {"Effect": "Allow", "Action": "codestar-connections:PassConnection", "Resource": "*"}]}]}]})
    .to_string()
}

/// A raw HTTP/1.1 AWS JSON request for `operation`, signed by the bench key now.
fn signed(addr: &str, operation: &str, body: &str) -> Vec<u8> {
    use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
    let target = format!("CodePipeline_20150709.{operation}");
    let headers = [("host", addr), ("x-amz-target", target.as_str()), ("content-type", "application/x-amz-json-1.1")];
    let identity = aws_credential_types::Credentials::new(KEY.0, KEY.1, None, None, "bench").into();
    let params = aws_sigv4::sign::v4::SigningParams::builder()
        .identity(&identity)
        .region("us-east-1")
        .name("codepipeline")
        .time(SystemTime::now())
        .settings(SigningSettings::default())
        .build()
        .expect("params")
        .into();
    let signable = SignableRequest::new("POST", "/", headers.iter().copied(), SignableBody::Bytes(body.as_bytes()))
        .expect("signable");
    let (instructions, _) = sign(signable, &params).expect("signs").into_parts();
    let mut text = String::from("POST / HTTP/1.1\r\n");
    for (name, value) in headers.iter().copied().chain(instructions.headers()) {
        text.push_str(&format!("{name}: {value}\r\n"));
    }
    text.push_str(&format!("content-length: {}\r\n\r\n{body}", body.len()));
    text.into_bytes()
}

fn rate(run: &Run) -> f64 {
    run.requests as f64 / run.elapsed.as_secs_f64()
}

fn start(binary: &str, port: u16, flags: &[&str]) -> Child {
    Command::new(binary)
        .args(["--port", &port.to_string(), "--log-level", "warn"])
        .args(flags)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("server starts")
}

fn main() {
    let (mut connections, mut seconds, mut binary) = (8usize, 5u64, None);
    let args: Vec<String> = std::env::args().collect();
    for pair in args.windows(2) {
        match pair[0].as_str() {
            "--connections" => connections = pair[1].parse().unwrap_or(8),
            "--seconds" => seconds = pair[1].parse().unwrap_or(5),
            "--binary" => binary = Some(pair[1].clone()),
            _ => {}
        }
    }
    let binary = binary.unwrap_or_else(|| env!("CARGO_BIN_EXE_codepipeline-local").to_string());
    let file = std::env::temp_dir().join(format!("cpl-bench-credentials-{}.json", std::process::id()));
    std::fs::write(&file, credentials()).expect("writes the credentials file");
    let file = file.display().to_string();
    let modes: [(&str, Vec<&str>); 3] = [
        ("unchecked", vec![]),
        ("--verify-signatures", vec!["--verify-signatures", "--credentials", &file]),
        ("--enforce-iam", vec!["--enforce-iam", "--credentials", &file]),
    ];
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    runtime.block_on(async {
        let mut servers = Vec::new();
        for (name, flags) in &modes {
            let port = free_port();
            let child = start(&binary, port, flags);
            let addr = format!("127.0.0.1:{port}");
            let pipeline = include_str!("../fixtures/bench/pipeline.json");
            let create = signed(&addr, "CreatePipeline", &format!(r#"{{"pipeline": {pipeline}}}"#));
            let mut buffer = Vec::new();
            let stream = loop {
                if let Ok(stream) = TcpStream::connect(&addr).await {
                    break stream;
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            };
            let mut stream = stream;
            let status = exchange(&mut stream, &mut buffer, &create).await.expect("created");
            assert_eq!(status, 200, "{name}: {}", String::from_utf8_lossy(&buffer));
            let get = signed(&addr, "GetPipeline", r#"{"name": "bench"}"#);
            assert_eq!(exchange(&mut stream, &mut buffer, &get).await.expect("read"), 200, "{name}");
            load(&addr, get.clone(), connections, Duration::from_millis(300)).await;
            servers.push((*name, child, addr, get, None::<Run>));
        }
        let duration = Duration::from_secs(seconds);
        for _ in 0..3 {
            for (_, _, addr, get, best) in servers.iter_mut() {
                let run = load(addr, get.clone(), connections, duration).await;
                if best.as_ref().is_none_or(|b| rate(&run) > rate(b)) {
                    *best = Some(run);
                }
            }
        }
        let unchecked = servers[0].4.as_ref().map(rate).unwrap_or(1.0);
        for (name, child, _, _, best) in servers.iter_mut() {
            if let Some(best) = best {
                report(&format!("GetPipeline {name}"), best, connections);
                println!(
                    "GetPipeline {name}: {:.0}% of unchecked (best of 3 each, alternating)",
                    100.0 * rate(best) / unchecked
                );
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    });
}
