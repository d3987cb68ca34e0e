//! Persistence benchmark: the same work against the server in memory and with `--data-dir`, side by side, then a
//! restart of a server holding a large state.
//!
//! Run with `cargo bench --bench persistence` (options: `--seconds 3 --connections 8 --pipelines 1000
//! --executions 100`). For each mode it starts the optimized binary and measures:
//!
//! 1. `GetPipeline` (a read), `TagResource` and `StartPipelineExecution` (small writes, each committed before it is
//!    answered) over keep-alive connections: requests per second, latency, and the server's CPU time per request
//!    (steadier than the rate on a machine the load generator shares).
//! 2. 1,000 concurrent executions: 10 PARALLEL pipelines of three 1 ms actions, 100 executions each started from 8
//!    connections at once; the time from the first start until all have succeeded.
//!
//! With the data directory it then builds a large state (`--pipelines` pipelines with `--executions` finished
//! executions each, 1,000 x 100 by default), reports the bytes on disk per finished execution, kills the server
//! (`kill -9`) and measures how long a new one takes to load it all and answer, and its resident memory.

mod support;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;
use tokio::net::TcpStream;

use support::{body, cpu_time, exchange, free_port, load, parallel_pipeline, report, request, rss_kib};

fn spawn(port: u16, data_dir: Option<&std::path::Path>) -> Child {
    let mut command = Command::new(env!("CARGO_BIN_EXE_codepipeline-local"));
    command.args(["--port", &port.to_string(), "--log-level", "warn", "--action-duration-ms", "1"]);
    if let Some(dir) = data_dir {
        command.arg("--data-dir").arg(dir);
    }
    command.stdout(Stdio::null()).stderr(Stdio::inherit()).spawn().expect("server starts")
}

/// Waits for the first answered request; returns how long after `since` it came.
async fn first_answer(addr: &str, since: Instant) -> Duration {
    let list = request("ListPipelines", "{}");
    loop {
        if let Ok(mut stream) = TcpStream::connect(addr).await {
            let mut buffer = Vec::new();
            if let Ok(200) = exchange(&mut stream, &mut buffer, &list).await {
                return since.elapsed();
            }
        }
        assert!(since.elapsed() < Duration::from_secs(60), "server did not come up");
        tokio::time::sleep(Duration::from_micros(500)).await;
    }
}

fn arg(name: &str, default: u64) -> u64 {
    let args: Vec<String> = std::env::args().collect();
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).and_then(|v| v.parse().ok()).unwrap_or(default)
}

async fn call(stream: &mut TcpStream, buffer: &mut Vec<u8>, operation: &str, payload: &str) -> String {
    let status = exchange(stream, buffer, &request(operation, payload)).await.expect("answered");
    assert_eq!(status, 200, "{operation}: {}", body(buffer));
    body(buffer).to_string()
}

/// Sends `count` requests from 8 connections at once, request `i` being what `make(i)` gives (operation, body).
async fn from_8_connections(
    addr: &str,
    count: usize,
    make: impl Fn(usize) -> (&'static str, String) + Clone + Send + 'static,
) {
    let tasks: Vec<_> = (0..8)
        .map(|c| {
            let (addr, make) = (addr.to_string(), make.clone());
            tokio::spawn(async move {
                let mut stream = TcpStream::connect(&addr).await.expect("connects");
                let mut buffer = Vec::new();
                for i in (c..count).step_by(8) {
                    let (operation, payload) = make(i);
                    call(&mut stream, &mut buffer, operation, &payload).await;
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("answered");
    }
}

/// Creates `pipelines` PARALLEL pipelines named `{prefix}-N`.
async fn create_pipelines(addr: &str, prefix: &str, pipelines: usize) {
    let prefix = prefix.to_string();
    from_8_connections(addr, pipelines, move |p| {
        ("CreatePipeline", json!({"pipeline": parallel_pipeline(&format!("{prefix}-{p}"))}).to_string())
    })
    .await;
}

/// Starts `per_pipeline` executions of each pipeline `{prefix}-N`, all at once.
async fn start_executions(addr: &str, prefix: &str, pipelines: usize, per_pipeline: usize) {
    let prefix = prefix.to_string();
    from_8_connections(addr, pipelines * per_pipeline, move |i| {
        ("StartPipelineExecution", json!({"name": format!("{prefix}-{}", i % pipelines)}).to_string())
    })
    .await;
}

/// Waits until the newest `per_pipeline` executions of every pipeline `{prefix}-N` have succeeded, polling every
/// `every`.
async fn until_succeeded(addr: &str, prefix: &str, pipelines: usize, per_pipeline: usize, every: Duration) {
    let mut stream = TcpStream::connect(addr).await.expect("connects");
    let mut buffer = Vec::new();
    let started = Instant::now();
    let mut pending: Vec<usize> = (0..pipelines).collect();
    while !pending.is_empty() {
        let mut still = Vec::new();
        for p in pending {
            let list = json!({"pipelineName": format!("{prefix}-{p}"), "maxResults": per_pipeline.min(100)});
            let page = call(&mut stream, &mut buffer, "ListPipelineExecutions", &list.to_string()).await;
            if page.matches(r#""status":"Succeeded""#).count() < per_pipeline.min(100) {
                still.push(p);
            }
        }
        pending = still;
        assert!(started.elapsed() < Duration::from_secs(600), "executions did not finish");
        if !pending.is_empty() {
            tokio::time::sleep(every).await;
        }
    }
}

fn bytes_in(dir: &std::path::Path) -> u64 {
    std::fs::read_dir(dir).expect("data directory").filter_map(|e| e.ok()?.metadata().ok()).map(|m| m.len()).sum()
}

fn stop(mut child: Child) {
    let _ = child.kill();
    let _ = child.wait();
}

fn main() {
    let seconds = arg("--seconds", 3);
    let connections = usize::try_from(arg("--connections", 8)).unwrap_or(8);
    let big_pipelines = usize::try_from(arg("--pipelines", 1000)).unwrap_or(1000);
    let big_executions = usize::try_from(arg("--executions", 100)).unwrap_or(100);
    let root = std::env::temp_dir().join(format!("cpl-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    for disk in [false, true] {
        let dir = root.join("side-by-side");
        let data_dir = disk.then_some(dir.as_path());
        println!("== {}", if disk { "--data-dir" } else { "in memory" });
        let port = free_port();
        let addr = format!("127.0.0.1:{port}");
        let child = spawn(port, data_dir);
        let pid = child.id();
        runtime.block_on(async {
            first_answer(&addr, Instant::now()).await;
            let pipeline = include_str!("../fixtures/bench/pipeline.json");
            let mut stream = TcpStream::connect(&addr).await.expect("connects");
            let mut buffer = Vec::new();
            call(&mut stream, &mut buffer, "CreatePipeline", &format!(r#"{{"pipeline": {pipeline}}}"#)).await;
            let duration = Duration::from_secs(seconds);
            let get = request("GetPipeline", r#"{"name": "bench"}"#);
            load(&addr, get.clone(), connections, Duration::from_millis(300)).await;
            let tag = request(
                "TagResource",
                r#"{"resourceArn": "arn:aws:codepipeline:us-east-1:000000000000:bench", "tags": [{"key": "k", "value": "v"}]}"#,
            );
            let start = request("StartPipelineExecution", r#"{"name": "bench"}"#);
            for (name, request) in [("GetPipeline", get), ("TagResource", tag), ("StartExecution", start)] {
                let cpu = cpu_time(pid);
                let run = load(&addr, request, connections, duration).await;
                let per_request = (cpu_time(pid) - cpu).as_secs_f64() * 1e6 / run.requests.max(1) as f64;
                report(name, &run, connections);
                println!("{:<14} server CPU {per_request:.1} µs per request", "");
            }
            // Let the started executions finish, then 1,000 concurrent executions.
            tokio::time::sleep(Duration::from_secs(1)).await;
            create_pipelines(&addr, "wave", 10).await;
            until_succeeded(&addr, "wave", 10, 1, Duration::from_millis(5)).await;
            let started = Instant::now();
            start_executions(&addr, "wave", 10, 100).await;
            let all_started = started.elapsed();
            until_succeeded(&addr, "wave", 10, 100, Duration::from_millis(2)).await;
            println!(
                "1,000 concurrent executions (10 PARALLEL pipelines x 100, three 1 ms actions): all started in {:.0} \
                 ms, all succeeded {:.0} ms after the first start",
                all_started.as_secs_f64() * 1000.0,
                started.elapsed().as_secs_f64() * 1000.0
            );
        });
        stop(child);
    }

    println!("== --data-dir with {big_pipelines} pipelines x {big_executions} finished executions");
    let dir = root.join("large");
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let child = spawn(port, Some(&dir));
    runtime.block_on(async {
        first_answer(&addr, Instant::now()).await;
        let built = Instant::now();
        create_pipelines(&addr, "big", big_pipelines).await;
        start_executions(&addr, "big", big_pipelines, big_executions).await;
        until_succeeded(&addr, "big", big_pipelines, big_executions, Duration::from_millis(500)).await;
        // CreatePipeline started one more execution of each.
        let executions = big_pipelines * (big_executions + 1);
        let bytes = bytes_in(&dir);
        println!(
            "built in {:.1} s; on disk: {:.1} MiB for {executions} finished executions, {} bytes per execution \
             (database and write-ahead log)",
            built.elapsed().as_secs_f64(),
            bytes as f64 / 1_048_576.0,
            bytes / executions as u64
        );
    });
    stop(child);
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let spawned = Instant::now();
    let child = spawn(port, Some(&dir));
    let ready = runtime.block_on(first_answer(&addr, spawned));
    println!(
        "restart after kill -9: first request answered {:.0} ms after process start; resident memory {} MiB",
        ready.as_secs_f64() * 1000.0,
        rss_kib(&child).unwrap_or(0) / 1024
    );
    stop(child);
    let _ = std::fs::remove_dir_all(&root);
}
