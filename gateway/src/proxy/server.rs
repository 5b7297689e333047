//! The set of listeners a snapshot asks for: opened when a Gateway port appears,
//! drained when it goes away, without a restart.

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::listener::{bind, serve_http, Plain};
use super::ProxyState;
use crate::router::{ServerProtocol, Snapshot};

/// Gateway port → local port (`--port-map 80=8080`); unmapped ports serve as numbered.
#[derive(Debug, Clone)]
pub struct PortMap {
    pub bind_ip: IpAddr,
    pub map: HashMap<u32, u16>,
}

impl PortMap {
    /// Istio's gateway pods serve 80 on 8080 and 443 on 8443.
    pub fn istio_defaults(bind_ip: IpAddr) -> Self {
        PortMap {
            bind_ip,
            map: HashMap::from([(80, 8080), (443, 8443)]),
        }
    }

    pub fn local(&self, gateway_port: u32) -> Option<SocketAddr> {
        let port = match self.map.get(&gateway_port) {
            Some(p) => *p,
            None => u16::try_from(gateway_port).ok()?,
        };
        Some(SocketAddr::new(self.bind_ip, port))
    }
}

struct Running {
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
    addr: SocketAddr,
}

/// The listeners currently open, keyed by Gateway port.
pub struct Listeners {
    state: Arc<ProxyState>,
    ports: PortMap,
    drain: Duration,
    running: BTreeMap<u32, Running>,
}

impl Listeners {
    pub fn new(state: Arc<ProxyState>, ports: PortMap, drain: Duration) -> Self {
        Listeners {
            state,
            ports,
            drain,
            running: BTreeMap::new(),
        }
    }

    /// Opens listeners for ports the snapshot has and we don't, drains the ones it no
    /// longer has. Returns what could not be opened (the rest still run).
    pub async fn sync(&mut self, snapshot: &Snapshot) -> Vec<String> {
        let mut errors = Vec::new();
        let wanted: Vec<u32> = snapshot.listeners.keys().copied().collect();
        let gone: Vec<u32> = self
            .running
            .keys()
            .copied()
            .filter(|p| !wanted.contains(p))
            .collect();
        for port in gone {
            if let Some(r) = self.running.remove(&port) {
                tracing::info!(
                    "gateway port {port}: removed from config, draining {}",
                    r.addr
                );
                let _ = r.stop.send(true);
            }
        }
        for (port, listener) in &snapshot.listeners {
            if self.running.contains_key(port) {
                continue;
            }
            let Some(addr) = self.ports.local(*port) else {
                errors.push(format!(
                    "gateway port {port} has no local port (use --port-map {port}=LOCAL)"
                ));
                continue;
            };
            let protocol = listener
                .servers
                .first()
                .map(|s| s.protocol)
                .unwrap_or(ServerProtocol::Http);
            let tcp = match bind(addr, &format!("--port-map {port}={}", addr.port())).await {
                Ok(l) => l,
                Err(e) => {
                    errors.push(e.to_string());
                    continue;
                }
            };
            let (stop, rx) = watch::channel(false);
            let state = self.state.clone();
            let drain = self.drain;
            let port = *port;
            let task = match protocol {
                ServerProtocol::Http | ServerProtocol::Http2 | ServerProtocol::Grpc => {
                    tokio::spawn(serve_http(
                        tcp,
                        port,
                        "http",
                        Arc::new(Plain),
                        state,
                        rx,
                        drain,
                    ))
                }
                other => {
                    errors.push(format!(
                        "gateway port {port}: {other:?} servers are not served yet"
                    ));
                    continue;
                }
            };
            tracing::info!("gateway port {port}: listening on {addr}");
            self.running.insert(port, Running { stop, task, addr });
        }
        errors
    }

    /// Local addresses by Gateway port.
    pub fn addresses(&self) -> Vec<(u32, SocketAddr)> {
        self.running.iter().map(|(p, r)| (*p, r.addr)).collect()
    }

    /// Stops accepting everywhere and waits for in-flight requests (bounded by drain).
    pub async fn shutdown(self) {
        for r in self.running.values() {
            let _ = r.stop.send(true);
        }
        for (_, r) in self.running {
            let _ = r.task.await;
        }
    }
}
