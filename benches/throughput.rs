//! Server benchmark: start-up latency, idle memory, and request throughput over loopback.
//!
//! Run with `cargo bench --bench throughput` (add `-- --connections 8 --seconds 10` to change the load).
//! It starts the optimized `codepipeline-local` binary as a separate process, measures the time from spawning it to
//! the first answered request, reads its resident memory once idle, then drives `GetPipeline`, `ListPipelines` and
//! signed webhook deliveries (HMAC, three filters; matching ones start an execution, the others are filtered out)
//! over concurrent keep-alive connections and reports throughput and latency percentiles. GetPipeline and
//! TagResource are also measured against the floor (`support::floor`, a bare axum server answering the same bytes),
//! alternating three times, and reported as the best of each and the emulator's share of the floor.

mod support;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use support::{Run, body, exchange, floor, free_port, load, report, request, rss_kib};

struct Options {
    connections: usize,
    seconds: u64,
    /// Another build of the server to measure (e.g. an earlier commit's), instead of this one.
    binary: Option<String>,
}

fn options() -> Options {
    let mut options = Options { connections: 8, seconds: 5, binary: None };
    let args: Vec<String> = std::env::args().collect();
    let mut i = 1;
    while i < args.len() {
        let value = args.get(i + 1).and_then(|v| v.parse::<u64>().ok());
        match (args[i].as_str(), value) {
            ("--connections", Some(v)) => {
                options.connections = usize::try_from(v).unwrap_or(8).max(1);
                i += 1;
            }
            ("--seconds", Some(v)) => {
                options.seconds = v.max(1);
                i += 1;
            }
            ("--binary", _) if i + 1 < args.len() => {
                options.binary = Some(args[i + 1].clone());
                i += 1;
            }
            _ => {} // cargo passes --bench; ignore what we do not know
        }
        i += 1;
    }
    options
}

/// Creates a webhook on pipeline `bench` (HMAC, three filters) and returns two signed deliveries: a push to `main`,
/// which matches, and a push to another branch, which the first filter stops.
async fn webhook_deliveries(stream: &mut TcpStream, buffer: &mut Vec<u8>) -> (Vec<u8>, Vec<u8>) {
    use hmac::{Hmac, KeyInit, Mac};
    const SECRET: &str = "bench-secret";
    let definition = r#"{"webhook": {"name": "bench", "targetPipeline": "bench", "targetAction": "Source",
        "filters": [{"jsonPath": "$.ref", "matchEquals": "refs/heads/{BranchName}"},
                    {"jsonPath": "$.repository.full_name", "matchEquals": "{FullRepositoryId}"},
                    {"jsonPath": "$.head_commit.author.username", "matchEquals": "alice"}],
        "authentication": "GITHUB_HMAC", "authenticationConfiguration": {"SecretToken": "bench-secret"}}}"#;
    assert_eq!(exchange(stream, buffer, &request("PutWebhook", definition)).await.expect("webhook"), 200);
    let text = String::from_utf8_lossy(buffer).to_string();
    let path = text
        .split("\"url\":\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .and_then(|url| url.find("/webhooks/").map(|at| url[at..].to_string()));
    let path = path.expect("the webhook's URL");
    let delivery = |branch: &str| {
        let body = format!(
            r#"{{"ref":"refs/heads/{branch}","before":"1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d","after":"9f2c4e1a7b3d5c6e8f0a1b2c3d4e5f6a7b8c9d0e","created":false,"deleted":false,"forced":false,"commits":[{{"id":"9f2c4e1a7b3d5c6e8f0a1b2c3d4e5f6a7b8c9d0e","message":"Tune cache headers","timestamp":"2026-03-02T10:14:55+01:00","author":{{"name":"Alice Doe","email":"alice@example.com","username":"alice"}},"added":[],"removed":[],"modified":["web/nginx.conf"]}}],"head_commit":{{"id":"9f2c4e1a7b3d5c6e8f0a1b2c3d4e5f6a7b8c9d0e","message":"Tune cache headers","timestamp":"2026-03-02T10:14:55+01:00","author":{{"name":"Alice Doe","email":"alice@example.com","username":"alice"}}}},"repository":{{"full_name":"org/app","default_branch":"main"}},"pusher":{{"name":"alice","email":"alice@example.com"}}}}"#
        );
        let mut mac = Hmac::<sha2::Sha256>::new_from_slice(SECRET.as_bytes()).expect("key");
        mac.update(body.as_bytes());
        let signature: String = mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect();
        format!(
            "POST {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nX-GitHub-Event: push\r\n\
             X-Hub-Signature-256: sha256={signature}\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .into_bytes()
    };
    (delivery("main"), delivery("feature/other"))
}

/// Reads `GET /_emulator/events/stream` until `stop`; returns how many events arrived.
async fn read_events(addr: String, stop: std::sync::Arc<std::sync::atomic::AtomicBool>) -> usize {
    let mut stream = TcpStream::connect(&addr).await.expect("connects");
    let request = "GET /_emulator/events/stream HTTP/1.1\r\nHost: localhost\r\n\r\n";
    stream.write_all(request.as_bytes()).await.expect("subscribes");
    let mut chunk = vec![0u8; 64 * 1024];
    let mut events = 0;
    let mut tail: Vec<u8> = Vec::new();
    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
        match tokio::time::timeout(Duration::from_millis(200), stream.read(&mut chunk)).await {
            Ok(Ok(0)) | Ok(Err(_)) => break,
            Ok(Ok(n)) => {
                tail.extend_from_slice(&chunk[..n]);
                events += tail.windows(6).filter(|w| w == b"\ndata:").count();
                let keep = tail.len().saturating_sub(5);
                tail.drain(..keep);
            }
            Err(_) => {}
        }
    }
    events
}

/// Requests per second of a run.
fn rate(run: &Run) -> f64 {
    run.requests as f64 / run.elapsed.as_secs_f64()
}

/// Measures `request` against the server and against the floor answering `answer`, alternating three times; prints
/// the best of each and the server's share of the floor.
async fn against_floor(name: &str, addr: &str, request: Vec<u8>, answer: &[u8], options: &Options) {
    let port = free_port();
    let mut floor_server = floor::spawn(port, answer);
    let floor_addr = format!("127.0.0.1:{port}");
    let (connections, duration) = (options.connections, Duration::from_secs(options.seconds));
    load(&floor_addr, request.clone(), connections, Duration::from_millis(300)).await;
    let (mut best, mut best_floor): (Option<Run>, Option<Run>) = (None, None);
    for _ in 0..3 {
        let run = load(addr, request.clone(), connections, duration).await;
        if best.as_ref().is_none_or(|b| rate(&run) > rate(b)) {
            best = Some(run);
        }
        let run = load(&floor_addr, request.clone(), connections, duration).await;
        if best_floor.as_ref().is_none_or(|b| rate(&run) > rate(b)) {
            best_floor = Some(run);
        }
    }
    let _ = floor_server.kill();
    let _ = floor_server.wait();
    let (Some(best), Some(best_floor)) = (best, best_floor) else { return };
    report(name, &best, connections);
    report(&format!("{name} floor"), &best_floor, connections);
    println!("{name}: {:.0}% of the floor (best of 3 each, alternating)", 100.0 * rate(&best) / rate(&best_floor));
}

fn main() {
    floor::serve_if_asked();
    let options = options();
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let binary = options.binary.clone().unwrap_or_else(|| env!("CARGO_BIN_EXE_codepipeline-local").to_string());

    let spawned = Instant::now();
    let mut child = Command::new(&binary)
        .args(["--port", &port.to_string(), "--log-level", "warn"])
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("server starts");

    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    runtime.block_on(async {
        // First answered request after process start.
        let list = request("ListPipelines", "{}");
        let first = loop {
            if let Ok(mut stream) = TcpStream::connect(&addr).await {
                let mut buffer = Vec::new();
                if let Ok(200) = exchange(&mut stream, &mut buffer, &list).await {
                    break spawned.elapsed();
                }
            }
            assert!(spawned.elapsed() < Duration::from_secs(10), "server did not come up");
            tokio::time::sleep(Duration::from_micros(200)).await;
        };
        println!("first request served {:.1} ms after process start", first.as_secs_f64() * 1000.0);

        tokio::time::sleep(Duration::from_secs(1)).await;
        let idle = rss_kib(&child).unwrap_or(0);
        println!("resident memory at idle: {:.1} MiB", idle as f64 / 1024.0);

        let pipeline = include_str!("../fixtures/bench/pipeline.json");
        let mut stream = TcpStream::connect(&addr).await.expect("connects");
        let mut buffer = Vec::new();
        let create = request("CreatePipeline", &format!(r#"{{"pipeline": {pipeline}}}"#));
        assert_eq!(exchange(&mut stream, &mut buffer, &create).await.expect("created"), 200);
        for i in 0..50 {
            let other = pipeline.replace("\"bench\"", &format!("\"bench-{i:02}\""));
            let create = request("CreatePipeline", &format!(r#"{{"pipeline": {other}}}"#));
            assert_eq!(exchange(&mut stream, &mut buffer, &create).await.expect("created"), 200);
        }

        let duration = Duration::from_secs(options.seconds);
        let connections = options.connections;
        // Warm up, then measure.
        load(&addr, request("GetPipeline", r#"{"name": "bench"}"#), connections, Duration::from_millis(500)).await;
        let get = request("GetPipeline", r#"{"name": "bench"}"#);
        assert_eq!(exchange(&mut stream, &mut buffer, &get).await.expect("read"), 200);
        let answer = body(&buffer).as_bytes().to_vec();
        against_floor("GetPipeline", &addr, get, &answer, &options).await;
        let arn = "arn:aws:codepipeline:us-east-1:000000000000:bench";
        let tag =
            request("TagResource", &format!(r#"{{"resourceArn": "{arn}", "tags": [{{"key": "k", "value": "v"}}]}}"#));
        assert_eq!(exchange(&mut stream, &mut buffer, &tag).await.expect("tagged"), 200);
        let answer = body(&buffer).as_bytes().to_vec();
        against_floor("TagResource", &addr, tag, &answer, &options).await;
        let list = load(&addr, request("ListPipelines", r#"{"maxResults": 10}"#), connections, duration).await;
        report("ListPipelines", &list, connections);
        // Webhook deliveries: GitHub pushes signed with HMAC-SHA256 through three JSONPath filters. Matching ones
        // each start an execution; the others are answered after the filters.
        let (matching, filtered) = webhook_deliveries(&mut stream, &mut buffer).await;
        let matching_again = matching.clone();
        let run = load(&addr, matching, connections, duration).await;
        report("Webhook start", &run, connections);
        let run = load(&addr, filtered, connections, duration).await;
        report("Webhook filter", &run, connections);
        // The same starts with 10 event-stream readers attached: what live subscribers cost the server.
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let readers: Vec<_> =
            (0..10).map(|_| tokio::spawn(read_events(addr.clone(), std::sync::Arc::clone(&stop)))).collect();
        tokio::time::sleep(Duration::from_millis(100)).await;
        let run = load(&addr, matching_again, connections, duration).await;
        report("Webhook +10 SSE", &run, connections);
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let mut events = 0;
        for reader in readers {
            events += reader.await.unwrap_or(0);
        }
        println!(
            "event stream: {} events to each of 10 readers ({:.0} events/s per reader)",
            events / 10,
            (events / 10) as f64 / run.elapsed.as_secs_f64()
        );
        let rss = rss_kib(&child).unwrap_or(0);
        println!("resident memory after load: {:.1} MiB", rss as f64 / 1024.0);
    });
    let _ = child.kill();
    let _ = child.wait();
}
