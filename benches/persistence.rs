//! Persistence benchmark: the same requests against the server in memory and with `--data-dir`, side by side, then
//! a restart of the server with everything the run left on disk.
//!
//! Run with `cargo bench --bench persistence` (add `-- --seconds 5 --connections 8`). For each mode it starts the
//! optimized binary, creates the fixture pipeline, and drives `GetPipeline` (a read), `TagResource` and
//! `StartPipelineExecution` (small writes, each committed before it is answered) over keep-alive connections. With
//! the data directory it then reports the bytes on disk per execution, kills the server (`kill -9`) and measures how
//! long a new one takes to load it all and answer.

mod support;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tokio::net::TcpStream;

use support::{exchange, free_port, load, report, request};

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

fn main() {
    let seconds = arg("--seconds", 3);
    let connections = usize::try_from(arg("--connections", 8)).unwrap_or(8);
    let dir = std::env::temp_dir().join(format!("cpl-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    for data_dir in [None, Some(dir.as_path())] {
        let mode = if data_dir.is_some() { "--data-dir" } else { "in memory" };
        println!("== {mode}");
        let port = free_port();
        let addr = format!("127.0.0.1:{port}");
        let mut child = spawn(port, data_dir);
        runtime.block_on(async {
            first_answer(&addr, Instant::now()).await;
            let pipeline = include_str!("../fixtures/bench/pipeline.json");
            let mut stream = TcpStream::connect(&addr).await.expect("connects");
            let mut buffer = Vec::new();
            let create = request("CreatePipeline", &format!(r#"{{"pipeline": {pipeline}}}"#));
            assert_eq!(exchange(&mut stream, &mut buffer, &create).await.expect("created"), 200);
            let duration = Duration::from_secs(seconds);
            let get = request("GetPipeline", r#"{"name": "bench"}"#);
            load(&addr, get.clone(), connections, Duration::from_millis(300)).await;
            report("GetPipeline", &load(&addr, get, connections, duration).await, connections);
            let tag = request(
                "TagResource",
                r#"{"resourceArn": "arn:aws:codepipeline:us-east-1:000000000000:bench", "tags": [{"key": "k", "value": "v"}]}"#,
            );
            report("TagResource", &load(&addr, tag, connections, duration).await, connections);
            let start = request("StartPipelineExecution", r#"{"name": "bench"}"#);
            let run = load(&addr, start, connections, duration).await;
            report("StartExecution", &run, connections);
            // Let the started executions finish.
            tokio::time::sleep(Duration::from_secs(2)).await;
            if let Some(dir) = data_dir {
                let bytes: u64 = std::fs::read_dir(dir)
                    .expect("data directory")
                    .filter_map(|e| e.ok()?.metadata().ok())
                    .map(|m| m.len())
                    .sum();
                let executions = run.requests as u64;
                println!(
                    "on disk: {:.1} MiB for {executions} executions, {} bytes per execution",
                    bytes as f64 / 1_048_576.0,
                    bytes / executions.max(1)
                );
            }
        });
        let _ = child.kill();
        let _ = child.wait();
        if let Some(dir) = data_dir {
            let port = free_port();
            let addr = format!("127.0.0.1:{port}");
            let spawned = Instant::now();
            let mut child = spawn(port, Some(dir));
            let ready = runtime.block_on(first_answer(&addr, spawned));
            println!(
                "restart after kill -9: first request answered {:.0} ms after process start",
                ready.as_secs_f64() * 1000.0
            );
            let _ = child.kill();
            let _ = child.wait();
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}
