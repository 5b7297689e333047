//! A real Prometheus server on loopback: a generated `static_configs` scrape config, its
//! own temporary data folder, and instant queries through `/api/v1/query`.
//!
//! Needs the `prometheus` binary (Debian: `apt-get install -y prometheus`; `.ci/run`
//! installs it) or `PROMETHEUS_BIN`. Tests call [`binary_or_skip`] and return early,
//! loudly, when it is absent.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use super::{get, url_encode};

/// The Prometheus binary: `PROMETHEUS_BIN`, else `prometheus` on `PATH`.
pub fn binary() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("PROMETHEUS_BIN") {
        return Some(PathBuf::from(p));
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join("prometheus"))
        .find(|p| p.is_file())
}

/// The binary, or a loud SKIPPED banner naming `test` (and `None`).
pub fn binary_or_skip(test: &str) -> Option<PathBuf> {
    let found = binary();
    if found.is_none() {
        eprintln!("\n=========================================================================");
        eprintln!("SKIPPED {test}: no `prometheus` binary on PATH");
        eprintln!("(install it: apt-get install -y prometheus, or set PROMETHEUS_BIN)");
        eprintln!("=========================================================================\n");
    }
    found
}

/// Kills Prometheus and removes its data folder however the test ends.
pub struct Prometheus {
    child: Child,
    dir: PathBuf,
    pub addr: SocketAddr,
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The scrape config: one job per target, every second, Istio's metrics path.
pub fn scrape_config(targets: &[(&str, SocketAddr)]) -> String {
    let mut config = String::from(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n",
    );
    for (job, addr) in targets {
        config.push_str(&format!(
            "  - job_name: {job}\n    metrics_path: /stats/prometheus\n    static_configs:\n      - targets: ['{addr}']\n"
        ));
    }
    config
}

impl Prometheus {
    /// Starts Prometheus scraping each `(job, address)` every second.
    pub fn start(binary: &Path, targets: &[(&str, SocketAddr)]) -> Prometheus {
        static SEQ: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "meshgate-prom-{}-{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("prometheus.yml"), scrape_config(targets)).unwrap();
        // Reserve a free loopback port for Prometheus' own API.
        let addr = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let log = std::fs::File::create(dir.join("prometheus.log")).unwrap();
        let child = Command::new(binary)
            .arg(format!(
                "--config.file={}",
                dir.join("prometheus.yml").display()
            ))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("data").display()
            ))
            .arg(format!("--web.listen-address={addr}"))
            .arg("--log.level=warn")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start prometheus");
        Prometheus { child, dir, addr }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("prometheus.log")).unwrap_or_default()
    }

    /// The instant-query result vector, or None while Prometheus is not answering.
    pub async fn query(&self, promql: &str) -> Option<Vec<serde_json::Value>> {
        let connect = tokio::net::TcpStream::connect(self.addr).await;
        if connect.is_err() {
            return None;
        }
        drop(connect);
        let reply = tokio::time::timeout(
            Duration::from_secs(10),
            get(
                self.addr,
                &format!("/api/v1/query?query={}", url_encode(promql)),
            ),
        )
        .await
        .ok()?;
        let v: serde_json::Value = serde_json::from_str(&reply.body).ok()?;
        if v["status"] != "success" {
            panic!("Prometheus refused {promql}: {}", reply.body);
        }
        v["data"]["result"].as_array().cloned()
    }

    /// Waits (at most `limit`) until `/-/ready` answers 200.
    pub async fn wait_ready(&self, limit: Duration) -> bool {
        let start = Instant::now();
        while start.elapsed() < limit {
            if tokio::net::TcpStream::connect(self.addr).await.is_ok()
                && get(self.addr, "/-/ready").await.status == 200
            {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        false
    }
}

/// The value of one instant-vector sample (NaN when missing).
pub fn sample_value(series: &serde_json::Value) -> f64 {
    series["value"][1]
        .as_str()
        .and_then(|s| s.parse().ok())
        .unwrap_or(f64::NAN)
}

/// One label of a result series; Prometheus drops empty labels, so absent is "".
pub fn label<'a>(series: &'a serde_json::Value, name: &str) -> &'a str {
    series["metric"][name].as_str().unwrap_or("")
}
