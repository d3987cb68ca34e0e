//! The `codepipeline-local` binary: parses flags, sets up logging, serves until SIGINT or SIGTERM.

#![forbid(unsafe_code)]
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;
use codepipeline_local::config::{Config, LogFormat, use_colour};
use codepipeline_local::server::READY_TARGET;
use codepipeline_local::{AppState, run};
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> ExitCode {
    let mut config = Config::parse();
    config.sdk_environment = codepipeline_local::config::SdkEnvironment::from_process();
    if config.check_health {
        return match codepipeline_local::control::probe_health(&config.host, config.port) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("unhealthy: {e}");
                ExitCode::FAILURE
            }
        };
    }
    // The Ready. line has its own target, enabled whatever the level, so a supervisor can always wait for it. The
    // signing crate's debug and trace lines print canonical requests, session tokens included: never shown.
    let filter = EnvFilter::try_new(&config.log_level).and_then(|f| {
        Ok(f.add_directive(format!("{READY_TARGET}=info").parse()?).add_directive("aws_sigv4=warn".parse()?))
    });
    let filter = match filter {
        Ok(filter) => filter,
        Err(e) => {
            eprintln!("invalid --log-level '{}': {e}", config.log_level);
            return ExitCode::from(2);
        }
    };
    let colour = use_colour(std::io::stdout().is_terminal(), std::env::var_os("NO_COLOR").as_deref());
    let subscriber = tracing_subscriber::fmt().with_env_filter(filter).with_target(false).with_ansi(colour);
    match config.log_format {
        LogFormat::Text => subscriber.init(),
        LogFormat::Json => subscriber.json().flatten_event(true).init(),
    }

    // Errors that stop the server go to stderr, where a terminal or a supervisor shows them apart from the log.
    let state = match AppState::new(config.clone()) {
        Ok(state) => state,
        Err(e) => {
            eprintln!("codepipeline-local cannot start: {e}");
            return ExitCode::FAILURE;
        }
    };
    let listener = match tokio::net::TcpListener::bind((config.host.as_str(), config.port)).await {
        Ok(listener) => listener,
        Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => {
            eprintln!(
                "codepipeline-local cannot listen on {}:{}: the port is in use (another codepipeline-local, or \
                 LocalStack?). Stop it, or choose another port with --port (CODEPIPELINE_LOCAL_PORT)",
                config.host, config.port
            );
            return ExitCode::FAILURE;
        }
        Err(e) => {
            eprintln!("codepipeline-local cannot listen on {}:{}: {e}", config.host, config.port);
            return ExitCode::FAILURE;
        }
    };
    match run(listener, state, shutdown_signal()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("codepipeline-local stopped on an error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Completes on SIGINT (Ctrl-C) or SIGTERM (docker stop).
async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::warn!("cannot listen for Ctrl-C: {e}");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(e) => {
                tracing::warn!("cannot listen for SIGTERM: {e}");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => tracing::info!("SIGINT received, shutting down"),
        () = terminate => tracing::info!("SIGTERM received, shutting down"),
    }
}
