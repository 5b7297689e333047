//! `temperature-api --listen ADDR --temperature-service URL [--authority HOST:PORT]`:
//! runs the demo's HTTP temperature API until Ctrl-C.

use std::{net::SocketAddr, process::ExitCode, time::Duration};

use clap::Parser;
use http::uri::Authority;
use http::Uri;
use temperature_api::ApiConfig;
use tokio::net::TcpListener;

/// The demo's HTTP temperature API: GET /?from=Celsius&to=Kelvin&temperature=150.
#[derive(Debug, Parser)]
#[command(name = "temperature-api", version)]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:3000")]
    listen: SocketAddr,
    /// Where temperature-service (or the sidecar's outbound port) listens, as http://HOST:PORT.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    temperature_service: Uri,
    /// `:authority` to send instead of the target's, e.g.
    /// temperature-service.default.svc.cluster.local:8080.
    #[arg(long)]
    authority: Option<Authority>,
    /// Bound on each call to temperature-service, in milliseconds.
    #[arg(long, default_value_t = 5000)]
    timeout_ms: u64,
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt().with_max_level(log_level()).init();
    let args = Args::parse();
    let config = ApiConfig {
        temperature_service: args.temperature_service,
        authority: args.authority,
        timeout: Duration::from_millis(args.timeout_ms),
    };
    if let Err(err) = config.validate() {
        eprintln!("temperature-api: {err}");
        return ExitCode::FAILURE;
    }
    let listener = match TcpListener::bind(args.listen).await {
        Ok(listener) => listener,
        Err(err) => {
            eprintln!("temperature-api: cannot listen on {}: {err}", args.listen);
            return ExitCode::FAILURE;
        }
    };
    let local = listener.local_addr().map_or(args.listen, |addr| addr);
    println!(
        "temperature-api: http://{local} -> {} (authority {})",
        config.temperature_service,
        config
            .effective_authority()
            .map_or_else(|| "-".to_string(), |authority| authority.to_string())
    );
    let shutdown = async {
        // If the signal handler cannot be installed, run until killed.
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    match temperature_api::serve(listener, config, shutdown).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("temperature-api: {err}");
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
