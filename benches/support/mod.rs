//! What the server benchmarks share: a free port, resident memory, raw AWS JSON requests on keep-alive
//! connections, a timed load and its report.

#![allow(dead_code)]

pub mod floor;

use std::net::TcpListener;
use std::process::Child;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("a free port")
}

pub fn rss_kib(child: &Child) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{}/status", child.id())).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// CPU time the process `pid` has used so far (all its threads, user and system).
pub fn cpu_time(pid: u32) -> Duration {
    static TICKS: std::sync::LazyLock<f64> = std::sync::LazyLock::new(|| {
        std::process::Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
            .unwrap_or(100.0)
    });
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which is in parentheses and may hold spaces): utime and stime are 12th and 13th.
    let fields: Vec<&str> =
        stat.rsplit_once(')').map(|(_, rest)| rest.split_whitespace().collect()).unwrap_or_default();
    let ticks = |i: usize| fields.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    Duration::from_secs_f64((ticks(11) + ticks(12)) / *TICKS)
}

/// The body of the response `exchange` left in `buffer`.
pub fn body(buffer: &[u8]) -> &str {
    let start = buffer.windows(4).position(|w| w == b"\r\n\r\n").map_or(buffer.len(), |end| end + 4);
    std::str::from_utf8(&buffer[start..]).unwrap_or_default()
}

/// A V2 PARALLEL pipeline named `name` of three stages, one action each (Source S3, Build CodeBuild, Deploy S3).
pub fn parallel_pipeline(name: &str) -> serde_json::Value {
    let at = |c: &str, p: &str| serde_json::json!({"category": c, "owner": "AWS", "provider": p, "version": "1"});
    serde_json::json!({
        "name": name, "roleArn": "arn:aws:iam::123456789012:role/r", "pipelineType": "V2", "executionMode": "PARALLEL",
        "artifactStore": {"type": "S3", "location": "artifacts"},
        "stages": [
            {"name": "Source", "actions": [{"name": "Src", "actionTypeId": at("Source", "S3"),
                "configuration": {"S3Bucket": "b", "S3ObjectKey": "k"}, "outputArtifacts": [{"name": "Code"}]}]},
            {"name": "Build", "actions": [{"name": "Build", "actionTypeId": at("Build", "CodeBuild"),
                "configuration": {"ProjectName": "p"}, "inputArtifacts": [{"name": "Code"}], "outputArtifacts": [{"name": "Bin"}]}]},
            {"name": "Deploy", "actions": [{"name": "Ship", "actionTypeId": at("Deploy", "S3"),
                "configuration": {"BucketName": "site", "Extract": "true"}, "inputArtifacts": [{"name": "Bin"}]}]}
        ]
    })
}

pub fn request(operation: &str, body: &str) -> Vec<u8> {
    format!(
        "POST / HTTP/1.1\r\nHost: localhost\r\nX-Amz-Target: CodePipeline_20150709.{operation}\r\n\
         Content-Type: application/x-amz-json-1.1\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// Sends one request on a keep-alive connection and reads the whole response; returns the status code.
pub async fn exchange(stream: &mut TcpStream, buffer: &mut Vec<u8>, request: &[u8]) -> std::io::Result<u16> {
    stream.write_all(request).await?;
    buffer.clear();
    let mut chunk = [0u8; 8192];
    loop {
        if let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = std::str::from_utf8(&buffer[..end]).unwrap_or_default();
            let status = head.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
            let length: usize = head
                .lines()
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.eq_ignore_ascii_case("content-length").then(|| v.trim().parse().ok())?
                })
                .unwrap_or(0);
            while buffer.len() < end + 4 + length {
                let n = stream.read(&mut chunk).await?;
                if n == 0 {
                    return Err(std::io::ErrorKind::UnexpectedEof.into());
                }
                buffer.extend_from_slice(&chunk[..n]);
            }
            return Ok(status);
        }
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        buffer.extend_from_slice(&chunk[..n]);
    }
}

pub struct Run {
    pub requests: usize,
    pub errors: usize,
    pub elapsed: Duration,
    pub latencies_us: Vec<u32>,
}

pub async fn load(addr: &str, request: Vec<u8>, connections: usize, duration: Duration) -> Run {
    let start = Instant::now();
    let deadline = start + duration;
    let mut tasks = Vec::new();
    for _ in 0..connections {
        let addr = addr.to_string();
        let request = request.clone();
        tasks.push(tokio::spawn(async move {
            let mut stream = TcpStream::connect(&addr).await.expect("connects");
            stream.set_nodelay(true).expect("nodelay");
            let mut buffer = Vec::with_capacity(16 * 1024);
            let mut latencies = Vec::with_capacity(500_000);
            let mut errors = 0;
            while Instant::now() < deadline {
                let t = Instant::now();
                match exchange(&mut stream, &mut buffer, &request).await {
                    Ok(200) => latencies.push(u32::try_from(t.elapsed().as_micros()).unwrap_or(u32::MAX)),
                    Ok(_) => errors += 1,
                    Err(_) => {
                        errors += 1;
                        stream = TcpStream::connect(&addr).await.expect("reconnects");
                    }
                }
            }
            (latencies, errors)
        }));
    }
    let mut latencies_us = Vec::new();
    let mut errors = 0;
    for task in tasks {
        let (l, e) = task.await.expect("load task");
        latencies_us.extend(l);
        errors += e;
    }
    let elapsed = start.elapsed();
    latencies_us.sort_unstable();
    Run { requests: latencies_us.len(), errors, elapsed, latencies_us }
}

pub fn percentile(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    f64::from(sorted[rank.min(sorted.len() - 1)]) / 1000.0
}

pub fn report(name: &str, run: &Run, connections: usize) {
    let rps = run.requests as f64 / run.elapsed.as_secs_f64();
    println!(
        "{name:<14} {connections} conns  {rps:>9.0} req/s  p50 {:.3} ms  p90 {:.3} ms  p99 {:.3} ms  max {:.3} ms  ({} requests, {} errors)",
        percentile(&run.latencies_us, 50.0),
        percentile(&run.latencies_us, 90.0),
        percentile(&run.latencies_us, 99.0),
        percentile(&run.latencies_us, 100.0),
        run.requests,
        run.errors,
    );
}
