//! `meshgate demo` as a test runs it: temperature-api and temperature-service in this
//! process, the gateway and the two sidecars as child processes of the real binary
//! (`CARGO_BIN_EXE_meshgate`), the demo's CA and config in a fresh folder.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use meshgate::cli::demo::{prepare, proxy_commands, DemoPorts};

pub fn local(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// The running demo; dropping it kills the proxies and removes its folder.
pub struct Demo {
    pub ports: DemoPorts,
    pub dir: PathBuf,
    /// The config folder the proxies watch (hot reload).
    pub config: PathBuf,
    proxies: Vec<Child>,
}

impl Drop for Demo {
    fn drop(&mut self) {
        for c in &mut self.proxies {
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Demo {
    /// Starts the demo on `gateway` with every other port moved by `offset`, and waits
    /// (at most 30 s) until the gateway and the sidecars accept connections.
    pub async fn start(exe: &str, gateway: u16, offset: u16, tag: &str) -> Demo {
        let ports = DemoPorts::new(gateway, offset);
        let dir = std::env::temp_dir().join(format!("meshgate-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let config = prepare(&dir, &ports).unwrap();

        let service = tokio::net::TcpListener::bind(local(ports.service_app))
            .await
            .unwrap();
        tokio::spawn(temperature_service::serve(
            service,
            std::future::pending::<()>(),
        ));
        let api = tokio::net::TcpListener::bind(local(ports.api_app))
            .await
            .unwrap();
        let api_config = temperature_api::ApiConfig::new(
            format!("http://127.0.0.1:{}", ports.api_outbound)
                .parse()
                .unwrap(),
        )
        .with_authority(
            "temperature-service.default.svc.cluster.local:8080"
                .parse()
                .unwrap(),
        );
        tokio::spawn(temperature_api::serve(
            api,
            api_config,
            std::future::pending::<()>(),
        ));

        let proxies = proxy_commands(&ports, &dir)
            .into_iter()
            .map(|(_, args)| {
                Command::new(exe)
                    .args(&args)
                    .stdout(Stdio::null())
                    .spawn()
                    .unwrap()
            })
            .collect();
        let demo = Demo {
            ports,
            dir,
            config,
            proxies,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        for p in [
            ports.gateway,
            ports.api_inbound,
            ports.api_outbound,
            ports.service_inbound,
            ports.gateway_metrics,
            ports.api_metrics,
            ports.service_metrics,
        ] {
            wait_port(p, deadline).await;
        }
        demo
    }

    /// The three proxies' scrape endpoints, named as Prometheus jobs.
    pub fn metrics_targets(&self) -> [(&'static str, SocketAddr); 3] {
        [
            ("gateway", local(self.ports.gateway_metrics)),
            ("temperature-api", local(self.ports.api_metrics)),
            ("temperature-service", local(self.ports.service_metrics)),
        ]
    }

    /// The demo's request through the gateway.
    pub fn gateway_url(&self) -> String {
        format!(
            "http://127.0.0.1:{}/?from=Celsius&to=Kelvin&temperature=150",
            self.ports.gateway
        )
    }

    /// Replaces a config file the way an editor would: a new file renamed into place,
    /// so the watcher never reads half of it.
    pub fn write_config(&self, name: &str, text: &str) {
        let tmp = self.config.join(format!(".{name}.tmp"));
        std::fs::write(&tmp, text).unwrap();
        std::fs::rename(&tmp, self.config.join(name)).unwrap();
    }

    pub fn read_config(&self, name: &str) -> String {
        std::fs::read_to_string(self.config.join(name)).unwrap()
    }
}

async fn wait_port(port: u16, deadline: Instant) {
    while tokio::net::TcpStream::connect(local(port)).await.is_err() {
        assert!(Instant::now() < deadline, "port {port} never opened");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `meshgate_config_version` from a proxy's scrape endpoint.
pub async fn config_version(metrics: SocketAddr) -> Option<u64> {
    let body = tokio::time::timeout(
        Duration::from_secs(5),
        super::get(metrics, "/stats/prometheus"),
    )
    .await
    .ok()?
    .body;
    body.lines()
        .find_map(|l| l.strip_prefix("meshgate_config_version "))
        .and_then(|v| v.trim().parse().ok())
}

/// Waits (at most `limit`) until the proxy at `metrics` runs config `version` or later.
pub async fn wait_config_version(metrics: SocketAddr, version: u64, limit: Duration) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if config_version(metrics).await.is_some_and(|v| v >= version) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}
