//! The emulator's own endpoints, outside the AWS surface: health checks and state control.
//!
//! | endpoint | what it does |
//! |---|---|
//! | `GET /health` | 200 with the version and uptime |
//! | `GET /_localstack/health` | LocalStack's health document, so existing readiness checks work unchanged |
//! | `POST /_emulator/reset` | drops all state of every account and region, and resets the clock |

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::routing::{get, post};
use serde_json::{Value, json};

use crate::server::AppState;

/// The routes of the control endpoints.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/health", get(health))
        .route("/_localstack/health", get(localstack_health))
        .route("/_emulator/reset", post(reset))
}

async fn health(State(app): State<AppState>) -> Json<Value> {
    Json(json!({
        "status": "running",
        "service": "codepipeline",
        "version": env!("CARGO_PKG_VERSION"),
        "uptimeSeconds": app.uptime().as_secs_f64(),
        "serviceModel": {"apiVersion": "2015-07-09", "botocoreVersion": app.model().source_version},
    }))
}

async fn localstack_health() -> Json<Value> {
    Json(json!({
        "services": {"codepipeline": "running"},
        "edition": "codepipeline-local",
        "version": env!("CARGO_PKG_VERSION"),
    }))
}

async fn reset(State(app): State<AppState>) -> Json<Value> {
    app.store().reset();
    tracing::info!("all state reset");
    Json(json!({"status": "reset"}))
}

/// Asks a running server for `GET /health` and tells whether it answered 200. Used by `--check-health`, so a
/// container health check needs nothing but the binary. A wildcard listen address is probed on loopback.
pub fn probe_health(host: &str, port: u16) -> Result<(), String> {
    let host = match host {
        "0.0.0.0" | "" => "127.0.0.1",
        "::" | "[::]" => "::1",
        other => other,
    };
    let addr = (host, port)
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {host}:{port}: {e}"))?
        .next()
        .ok_or_else(|| format!("no address for {host}:{port}"))?;
    let timeout = Duration::from_secs(3);
    let mut stream =
        TcpStream::connect_timeout(&addr, timeout).map_err(|e| format!("cannot connect to {addr}: {e}"))?;
    stream.set_read_timeout(Some(timeout)).map_err(|e| e.to_string())?;
    stream
        .write_all(b"GET /health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .map_err(|e| format!("cannot send to {addr}: {e}"))?;
    let mut head = [0u8; 32];
    let n = stream.read(&mut head).map_err(|e| format!("no answer from {addr}: {e}"))?;
    if head[..n].starts_with(b"HTTP/1.1 200") {
        Ok(())
    } else {
        Err(format!("unexpected answer from {addr}: {}", String::from_utf8_lossy(&head[..n])))
    }
}
