//! Engine benchmark. Run with `cargo bench --bench engine`.
//!
//! 1. Wall time: a server (in this process) with 1 ms actions runs 1,000 executions of a 3-stage pipeline at once
//!    (PARALLEL mode, 10 pipelines x 100 executions), started over HTTP; the time from the first start to the last
//!    execution finishing.
//! 2. Scheduler overhead per action transition: the same 1,000 executions driven by the pure step function on a
//!    virtual clock, so only the engine's own work is timed (no sleeps, no sockets).
//! 3. Memory per finished execution: 100,000 executions run to completion the same way, 1,000 in flight at a time
//!    (10 per pipeline on 100 pipelines); resident memory grows by this much per finished execution.

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use codepipeline_local::engine::step::{self, StartRequest, StepEnv};
use codepipeline_local::state::declaration::{PipelineDeclaration, PipelineType};
use codepipeline_local::state::execution::{ExecutionTrigger, TriggerType};
use codepipeline_local::state::{Definition, PipelineRecord, Scope, Timestamp};
use codepipeline_local::{Config, RunningServer};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use support::parallel_pipeline;

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("VmRSS:")).and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

async fn post(stream: &mut TcpStream, operation: &str, body: &str) -> String {
    let request = format!(
        "POST / HTTP/1.1\r\nHost: x\r\nX-Amz-Target: CodePipeline_20150709.{operation}\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.expect("write");
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        let n = stream.read(&mut chunk).await.expect("read");
        buffer.extend_from_slice(&chunk[..n]);
        if let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buffer[..end]).to_string();
            let length: usize = head
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().parse().unwrap_or(0))
                })
                .unwrap_or(0);
            while buffer.len() < end + 4 + length {
                let n = stream.read(&mut chunk).await.expect("read");
                buffer.extend_from_slice(&chunk[..n]);
            }
            return String::from_utf8_lossy(&buffer[end + 4..end + 4 + length]).to_string();
        }
    }
}

async fn wall_time() {
    let server =
        RunningServer::start(Config { port: 0, action_duration_ms: 1, ..Config::default() }).await.expect("server");
    let mut stream = TcpStream::connect(server.addr()).await.expect("connect");
    for p in 0..10 {
        let body = json!({"pipeline": parallel_pipeline(&format!("bench-{p}"))}).to_string();
        post(&mut stream, "CreatePipeline", &body).await;
    }
    // Let the executions CreatePipeline started finish first.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let store = Arc::clone(server.state().store());
    let scope = Scope { account: "000000000000".into(), region: "us-east-1".into() };
    // A live event-stream reader, counting what it receives.
    let mut events_stream = TcpStream::connect(server.addr()).await.expect("connect");
    events_stream
        .write_all(b"GET /_emulator/events/stream HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .expect("subscribe");
    // The answer's head comes once the stream has subscribed: nothing after it is missed.
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        let n = events_stream.read(&mut byte).await.expect("the stream's head");
        assert!(n == 1, "the stream closed");
        head.push(byte[0]);
    }
    let received = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let reader = {
        let received = Arc::clone(&received);
        tokio::spawn(async move {
            let mut chunk = vec![0u8; 64 * 1024];
            let mut tail: Vec<u8> = b"\n".to_vec();
            while let Ok(n) = events_stream.read(&mut chunk).await {
                if n == 0 {
                    break;
                }
                tail.extend_from_slice(&chunk[..n]);
                let found = tail.windows(6).filter(|w| w == b"\ndata:").count();
                received.fetch_add(found, std::sync::atomic::Ordering::Relaxed);
                let keep = tail.len().saturating_sub(5);
                tail.drain(..keep);
            }
        })
    };
    let before = received.load(std::sync::atomic::Ordering::Relaxed);
    let started = Instant::now();
    for i in 0..1000 {
        let body = json!({"name": format!("bench-{}", i % 10)}).to_string();
        post(&mut stream, "StartPipelineExecution", &body).await;
    }
    let all_started = started.elapsed();
    loop {
        let (active, total) = store.read(&scope, |d| {
            d.pipelines
                .values()
                .fold((0, 0), |(a, t), r| (a + r.runtime.active.len(), t + r.runtime.executions.count()))
        });
        if active == 0 && total == 1010 {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(60), "executions did not finish");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let finished = started.elapsed();
    let succeeded = store.read(&scope, |d| {
        d.pipelines
            .values()
            .flat_map(|r| r.runtime.executions.iter())
            .filter(|e| format!("{:?}", e.status) == "Succeeded")
            .count()
    });
    println!(
        "1,000 executions of a 3-stage pipeline with 1 ms actions (PARALLEL, 10 pipelines): all started over HTTP in \
         {:.0} ms, all finished {:.0} ms after the first start ({succeeded} of 1010 succeeded)",
        all_started.as_secs_f64() * 1000.0,
        finished.as_secs_f64() * 1000.0
    );
    // Every execution emits 14 events (pipeline 2, three stages 2 each, three actions 2 each).
    let expected = 1000 * 14;
    let deadline = Instant::now() + Duration::from_secs(10);
    while received.load(std::sync::atomic::Ordering::Relaxed) - before < expected && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let delivered = received.load(std::sync::atomic::Ordering::Relaxed) - before;
    let streamed = started.elapsed();
    println!(
        "events: {delivered} of {expected} delivered to a live event-stream reader within {:.0} ms of the first start \
         ({:.0} events/s)",
        streamed.as_secs_f64() * 1000.0,
        delivered as f64 / streamed.as_secs_f64()
    );
    reader.abort();
    let _ = server.shutdown().await;
}

fn record(name: &str) -> PipelineRecord {
    let declared: PipelineDeclaration = serde_json::from_value(parallel_pipeline(name)).expect("declaration");
    let definition = Arc::new(Definition::new(declared.with_defaults(1, PipelineType::V2), Vec::new(), Vec::new()));
    let arn = format!("arn:aws:codepipeline:us-east-1:123456789012:{name}");
    PipelineRecord::new(arn, Timestamp::from_millis(0), definition, Default::default())
}

/// Runs `per_pipeline` executions on each of `pipelines` pipelines to completion on a virtual clock, `wave` per
/// pipeline at a time. Returns the time spent in the engine and the number of action transitions (starts and
/// completions).
fn drive(pipelines: usize, per_pipeline: usize, wave: usize, records: &mut Vec<PipelineRecord>) -> (Duration, usize) {
    let base = records.len();
    for p in 0..pipelines {
        records.push(record(&format!("virtual-{}", base + p)));
    }
    let mut spent = Duration::ZERO;
    let mut now = 1_000_i64;
    for _ in 0..per_pipeline / wave {
        spent += drive_wave(&mut records[base..], wave, &mut now);
    }
    let runs: usize = records[base..].iter().flat_map(|r| r.runtime.executions.iter()).map(|e| e.actions.len()).sum();
    // Each action run is started once and completed once.
    (spent, runs * 2)
}

fn drive_wave(records: &mut [PipelineRecord], per_pipeline: usize, clock: &mut i64) -> Duration {
    let scope = Scope { account: "123456789012".into(), region: "us-east-1".into() };
    let mut spent = Duration::ZERO;
    let mut now = *clock;
    let names: Vec<String> = records.iter().map(|r| r.arn.rsplit(':').next().unwrap_or_default().to_string()).collect();
    let catalogue = codepipeline_local::state::catalogue::Catalogue::load().expect("catalogue");
    let ids = codepipeline_local::engine::ids::Ids::random();
    let timer = Instant::now();
    for record in records.iter_mut() {
        for _ in 0..per_pipeline {
            let request = StartRequest {
                trigger: ExecutionTrigger { trigger_type: TriggerType::StartPipelineExecution, trigger_detail: None },
                variables: Vec::new(),
                overrides: Vec::new(),
            };
            step::start_execution(record, request, &ids, Timestamp::from_millis(now));
        }
    }
    spent += timer.elapsed();
    let sources = codepipeline_local::state::sources::Sources::default();
    // The events of every state change are rendered and released as the engine does (here at once, as in memory).
    let events = codepipeline_local::engine::events::EventHub::new(10_000);
    loop {
        let mut next: Option<i64> = None;
        let timer = Instant::now();
        for (record, name) in records.iter_mut().zip(&names) {
            let env = StepEnv {
                scope: &scope,
                catalogue: &catalogue,
                pipeline: name,
                behaviors: &[],
                duration_ms: 1,
                max_executions: usize::MAX,
                lambda: false,
                real: codepipeline_local::engine::providers::artifacts::Real::default(),
                ids: &ids,
                sources: &sources,
            };
            let due = step::advance(record, &env, Timestamp::from_millis(now));
            let changes = step::take_changes(record);
            let rendered = events.render_changes(&scope, name, record, &sources, changes, &ids);
            events.release(rendered);
            if let Some(due) = due {
                next = Some(next.map_or(due.millis(), |n: i64| n.min(due.millis())));
            }
        }
        spent += timer.elapsed();
        match next {
            Some(due) => now = due.max(now + 1),
            None => break,
        }
    }
    *clock = now;
    spent
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    runtime.block_on(wall_time());

    let mut records = Vec::new();
    let (spent, transitions) = drive(10, 100, 100, &mut records);
    println!(
        "scheduler overhead: {transitions} action transitions in {:.1} ms of engine time = {:.2} µs per transition",
        spent.as_secs_f64() * 1000.0,
        spent.as_secs_f64() * 1e6 / transitions as f64
    );
    drop(records);

    let mut records = Vec::with_capacity(100);
    let before = rss_kib();
    let (spent, transitions) = drive(100, 1000, 10, &mut records);
    let after = rss_kib();
    let finished: usize = records.iter().map(|r| r.runtime.executions.count()).sum();
    println!(
        "memory: {finished} finished executions grew resident memory by {:.1} MiB = {:.0} bytes per execution \
         ({:.2} µs engine time per transition over {transitions} transitions)",
        (after.saturating_sub(before)) as f64 / 1024.0,
        (after.saturating_sub(before)) as f64 * 1024.0 / finished as f64,
        spent.as_secs_f64() * 1e6 / transitions as f64
    );
}
