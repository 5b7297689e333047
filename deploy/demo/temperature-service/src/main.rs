//! `temperature-service --listen ADDR`: runs the demo's gRPC temperature converter until
//! Ctrl-C.

use std::{net::SocketAddr, process::ExitCode};

use clap::Parser;
use tokio::net::TcpListener;

/// The demo's gRPC temperature converter (Celsius, Fahrenheit, Kelvin) over h2c.
#[derive(Debug, Parser)]
#[command(name = "temperature-service", version)]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt().with_max_level(log_level()).init();
    let args = Args::parse();
    let listener = match TcpListener::bind(args.listen).await {
        Ok(listener) => listener,
        Err(err) => {
            eprintln!(
                "temperature-service: cannot listen on {}: {err}",
                args.listen
            );
            return ExitCode::FAILURE;
        }
    };
    let local = listener.local_addr().map_or(args.listen, |addr| addr);
    println!("temperature-service: gRPC (h2c) on {local}");
    let shutdown = async {
        // If the signal handler cannot be installed, run until killed.
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    match temperature_service::serve(listener, shutdown).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("temperature-service: {err}");
            ExitCode::FAILURE
        }
    }
}

/// `RUST_LOG` as one level (`info`, `debug`, ...); `warn` when unset or not a level.
fn log_level() -> tracing::Level {
    std::env::var("RUST_LOG")
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(tracing::Level::WARN)
}
