//! The floor: a bare axum server on the same HTTP stack as the emulator (hyper HTTP/1.1, a multi-threaded Tokio
//! runtime) that answers every `POST /` with a canned body and the headers an AWS JSON answer carries. What it serves
//! is the most the emulator could serve on this machine, so the benchmarks report the emulator's throughput as a
//! share of it, measured side by side in one run.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The argument that makes a benchmark binary serve the floor instead of measuring.
pub const FLOOR_FLAG: &str = "--floor-server";

/// Serves the floor on `port` with `body` until killed, if the process was started to (see [`spawn`]); returns
/// otherwise.
pub fn serve_if_asked() {
    let args: Vec<String> = std::env::args().collect();
    let Some(at) = args.iter().position(|a| a == FLOOR_FLAG) else { return };
    let port: u16 = args.get(at + 1).and_then(|p| p.parse().ok()).expect("a port after --floor-server");
    let body = std::fs::read(args.get(at + 2).expect("a body file after the port")).expect("the body file");
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    runtime.block_on(async move {
        let body = bytes::Bytes::from(body);
        let answer = move || {
            let body = body.clone();
            async move {
                (
                    [
                        ("content-type", "application/x-amz-json-1.1"),
                        ("x-amzn-requestid", "5f8c1e2a-3b4d-4e6f-8a9b-0c1d2e3f4a5b"),
                    ],
                    body,
                )
            }
        };
        let app = axum::Router::new().route("/", axum::routing::post(answer));
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await.expect("binds");
        axum::serve(listener, app).await.expect("serves");
    });
    std::process::exit(0);
}

/// Starts the floor (this benchmark binary, run again) on `port`, answering `body`; returns once it answers.
pub fn spawn(port: u16, body: &[u8]) -> Child {
    let file = std::env::temp_dir().join(format!("cpl-floor-{}-{port}.json", std::process::id()));
    std::fs::write(&file, body).expect("writes the body file");
    let child = Command::new(std::env::current_exe().expect("this binary"))
        .args([FLOOR_FLAG, &port.to_string()])
        .arg(&file)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("the floor starts");
    let started = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(started.elapsed() < Duration::from_secs(10), "the floor did not come up");
        std::thread::sleep(Duration::from_millis(5));
    }
    child
}
