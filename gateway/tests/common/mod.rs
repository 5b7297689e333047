//! Shared helpers for the end-to-end tests: the real `meshgate gateway` binary on
//! loopback ports, config written into a temp folder, echo backends (HTTP/1.1 + h2c,
//! TCP, TLS), an HTTP client and rcgen certificates.
#![allow(dead_code, unused_imports, clippy::unwrap_used)]

pub mod backend;
pub mod certs;
pub mod client;
pub mod yaml;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub use backend::{Backend, TcpEcho};
pub use client::{Http, Resp};

/// A folder removed when dropped.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> Self {
        let dir = std::env::temp_dir().join(format!(
            "meshgate-e2e-{tag}-{}-{}",
            std::process::id(),
            fastrand::u64(..)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A loopback port nobody listens on right now.
pub fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// Writes `contents` to `path` by rename, as an editor or a ConfigMap update would.
pub fn write_atomic(path: &Path, contents: &str) {
    let tmp = path.with_extension(format!("tmp{}", fastrand::u32(..)));
    std::fs::write(&tmp, contents).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

/// Starts a gateway: config, which Gateway ports to map, and extra flags.
pub struct GatewayBuilder {
    yaml: String,
    ports: Vec<u32>,
    credentials: Option<PathBuf>,
    extra: Vec<String>,
}

impl GatewayBuilder {
    pub fn ports(mut self, ports: &[u32]) -> Self {
        self.ports = ports.to_vec();
        self
    }

    pub fn credentials(mut self, dir: &Path) -> Self {
        self.credentials = Some(dir.to_path_buf());
        self
    }

    pub fn arg(mut self, a: &str) -> Self {
        self.extra.push(a.to_string());
        self
    }

    pub async fn start(self) -> Gateway {
        let dir = TempDir::new("gw");
        let config = dir.path().join("config");
        std::fs::create_dir_all(&config).unwrap();
        let file = config.join("config.yaml");
        write_atomic(&file, &self.yaml);
        let ports: BTreeMap<u32, u16> = self.ports.iter().map(|p| (*p, free_port())).collect();
        let metrics_port = free_port();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_meshgate"));
        cmd.arg("gateway")
            .arg("--config")
            .arg(&config)
            .args(["--bind", "127.0.0.1"])
            .args(["--admin", "127.0.0.1:0"])
            .args(["--metrics", &format!("127.0.0.1:{metrics_port}")])
            .args(["--health", "127.0.0.1:0"])
            .args(["--reload-interval", "200ms"])
            .args(["--access-log-format", "off"]);
        for (g, l) in &ports {
            cmd.arg("--port-map").arg(format!("{g}={l}"));
        }
        if let Some(c) = &self.credentials {
            cmd.arg("--credentials").arg(c);
        }
        cmd.args(&self.extra);
        cmd.env("RUST_LOG", "meshgate=debug")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("meshgate binary runs");
        let log = Arc::new(Mutex::new(String::new()));
        let stderr = child.stderr.take().unwrap();
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let mut l = sink.lock().unwrap();
                l.push_str(&line);
                l.push('\n');
            }
        });
        let mut gw = Gateway {
            child,
            dir,
            file,
            ports,
            log,
            metrics_port,
        };
        gw.wait_ready().await;
        gw
    }
}

/// A running `meshgate gateway`, killed when dropped.
pub struct Gateway {
    child: Child,
    dir: TempDir,
    file: PathBuf,
    ports: BTreeMap<u32, u16>,
    log: Arc<Mutex<String>>,
    metrics_port: u16,
}

impl Gateway {
    /// `http://127.0.0.1:PORT/stats/prometheus` of this gateway.
    pub fn metrics_url(&self) -> String {
        format!("http://127.0.0.1:{}/stats/prometheus", self.metrics_port)
    }

    pub fn with_config(yaml: &str) -> GatewayBuilder {
        GatewayBuilder {
            yaml: yaml.to_string(),
            ports: vec![80],
            credentials: None,
            extra: Vec::new(),
        }
    }

    /// Waits until every mapped port accepts connections (ready means serving).
    async fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        for port in self.ports.values() {
            loop {
                if tokio::net::TcpStream::connect(("127.0.0.1", *port))
                    .await
                    .is_ok()
                {
                    break;
                }
                if let Ok(Some(status)) = self.child.try_wait() {
                    panic!("gateway exited with {status}:\n{}", self.log());
                }
                assert!(
                    Instant::now() < deadline,
                    "gateway port {port} never accepted:\n{}",
                    self.log()
                );
                tokio::time::sleep(Duration::from_millis(25)).await;
            }
        }
    }

    /// The local address Gateway port `port` is served on.
    pub fn addr(&self, port: u32) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.ports[&port]))
    }

    /// `http://127.0.0.1:LOCAL{path}` for Gateway port `port`.
    pub fn url(&self, port: u32, path: &str) -> String {
        format!("http://{}{path}", self.addr(port))
    }

    /// Replaces the config file (by rename); the gateway notices within its reload interval.
    pub fn write_config(&self, yaml: &str) {
        write_atomic(&self.file, yaml);
    }

    pub fn config_dir(&self) -> &Path {
        self.dir.path()
    }

    /// Everything the gateway wrote to stderr so far.
    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// Waits until stderr contains `needle`; false on timeout.
    pub async fn wait_log(&self, needle: &str, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if self.log().contains(needle) {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        false
    }

    pub fn sigterm(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Waits for the process to exit, up to `timeout`.
    pub async fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Some(s) = self.child.try_wait().unwrap() {
                return Some(s);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        None
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("--- gateway stderr ---\n{}", self.log());
        }
    }
}

/// Polls `check` every 50 ms until it returns true or `timeout` passes.
pub async fn eventually<F, Fut>(timeout: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if check().await {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Share of `count` in `total`, as a fraction.
pub fn share(count: usize, total: usize) -> f64 {
    count as f64 / total as f64
}
