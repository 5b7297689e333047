//! The set of listeners a snapshot asks for: opened when a Gateway port appears,
//! drained when it goes away, without a restart.

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::listener::{bind, serve};
use super::port::{serve_connection, PortPlan};
use super::ProxyState;
use crate::router::Snapshot;
use crate::tls::CredentialStore;

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
    /// Read per connection, so TLS settings and server changes apply to new
    /// connections without reopening the port.
    plan: Arc<ArcSwap<PortPlan>>,
}

/// The listeners currently open, keyed by Gateway port.
pub struct Listeners {
    state: Arc<ProxyState>,
    ports: PortMap,
    drain: Duration,
    credentials: CredentialStore,
    running: BTreeMap<u32, Running>,
}

impl Listeners {
    pub fn new(state: Arc<ProxyState>, ports: PortMap, drain: Duration) -> Self {
        Listeners {
            state,
            ports,
            drain,
            credentials: CredentialStore::without_root(),
            running: BTreeMap::new(),
        }
    }

    /// Where `credentialName`s are read from (`--credentials DIR`).
    pub fn with_credentials(mut self, store: CredentialStore) -> Self {
        self.credentials = store;
        self
    }

    /// Opens listeners for ports the snapshot has and we don't, drains the ones it no
    /// longer has, and gives the open ones the snapshot's servers and TLS settings.
    /// Returns what could not be applied (the rest still run; a port whose new
    /// settings are wrong keeps its previous ones).
    pub async fn sync(&mut self, snapshot: &Snapshot) -> Vec<String> {
        let mut errors = Vec::new();
        let gone: Vec<u32> = self
            .running
            .keys()
            .copied()
            .filter(|p| !snapshot.listeners.contains_key(p))
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
            let plan = match PortPlan::build(listener, &self.credentials) {
                Ok(p) => {
                    errors.extend(p.check_credentials());
                    Arc::new(p)
                }
                Err(e) => {
                    errors.push(e);
                    continue;
                }
            };
            if let Some(running) = self.running.get(port) {
                running.plan.store(plan);
                continue;
            }
            let Some(addr) = self.ports.local(*port) else {
                errors.push(format!(
                    "gateway port {port} has no local port (use --port-map {port}=LOCAL)"
                ));
                continue;
            };
            let tcp = match bind(addr, &format!("--port-map {port}={}", addr.port())).await {
                Ok(l) => l,
                Err(e) => {
                    errors.push(e.to_string());
                    continue;
                }
            };
            let (stop, rx) = watch::channel(false);
            let kind = plan.describe();
            let plan = Arc::new(ArcSwap::new(plan));
            let current = plan.clone();
            let state = self.state.clone();
            let stats = super::listener::listener_stats(&state, &tcp, *port);
            let task = tokio::spawn(serve(
                tcp,
                *port,
                "http",
                rx,
                self.drain,
                stats,
                move |tcp, info, watcher| {
                    serve_connection(current.load_full(), state.clone(), tcp, info, watcher)
                },
            ));
            tracing::info!("gateway port {port}: listening on {addr} ({kind})");
            self.running.insert(
                *port,
                Running {
                    stop,
                    task,
                    addr,
                    plan,
                },
            );
        }
        errors
    }

    /// Local addresses by Gateway port.
    pub fn addresses(&self) -> Vec<(u32, SocketAddr)> {
        self.running.iter().map(|(p, r)| (*p, r.addr)).collect()
    }

    /// Local addresses by Gateway port with what each serves (`http`, `tcp`, `tls`).
    pub fn described(&self) -> Vec<(u32, SocketAddr, &'static str)> {
        self.running
            .iter()
            .map(|(p, r)| (*p, r.addr, r.plan.load().describe()))
            .collect()
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
