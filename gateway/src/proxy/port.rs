//! What one Gateway port does with a new connection: plain HTTP, plain TCP proxying,
//! or TLS, where the ClientHello's SNI picks the server, which either terminates (HTTPS,
//! or TLS-then-TCP) or passes the bytes through untouched (PASSTHROUGH). The plan is
//! rebuilt whenever the snapshot changes the port's servers, and read per connection.

use std::sync::Arc;

use hyper_util::server::graceful::Watcher;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

use super::http::ConnInfo;
use super::listener::serve_hyper;
use super::tcp::{self, L4};
use super::ProxyState;
use crate::router::snapshot::{GatewayServer, Listener, ServerProtocol, ServerTlsMode};
use crate::tls::{peek_client_hello, CredentialStore, PrefixedStream, SniAcceptor};

/// How the port treats connections, built from the servers the snapshot puts on it.
pub struct PortPlan {
    kind: Kind,
    /// The servers the plan was built from; `HandshakeInfo::server_index` indexes it.
    servers: Vec<Arc<GatewayServer>>,
}

enum Kind {
    Http,
    Tcp,
    Tls {
        acceptor: Arc<SniAcceptor>,
        /// Some server passes TLS through: the ClientHello is peeked before deciding.
        any_passthrough: bool,
    },
}

/// Identifies a Gateway server and its TLS mode: `ns/gateway/port-name/MODE`.
pub fn tls_server_id(server: &GatewayServer) -> String {
    let mode = server.tls.as_ref().map(|t| t.mode);
    format!("{}/{}/{mode:?}", server.gateway, server.port_name)
}

impl PortPlan {
    /// The plan for `listener`. Errors name what is wrong (an HTTP and a TLS server on
    /// one port, a TLS server that cannot be terminated here).
    pub fn build(listener: &Listener, store: &CredentialStore) -> Result<PortPlan, String> {
        let port = listener.port;
        let servers = listener.servers.clone();
        let is_tls = |s: &GatewayServer| s.tls.is_some();
        let kind = if servers.iter().any(|s| is_tls(s)) {
            if let Some(plain) = servers.iter().find(|s| !is_tls(s)) {
                return Err(format!(
                    "gateway port {port}: server {} ({}) has no TLS settings but shares the port with TLS servers",
                    plain.port_name, plain.gateway
                ));
            }
            let acceptor = SniAcceptor::for_listener(listener, store.clone())
                .map_err(|e| format!("gateway port {port}: {e}"))?;
            Kind::Tls {
                acceptor: Arc::new(acceptor),
                any_passthrough: servers.iter().any(|s| passthrough(s)),
            }
        } else if servers.iter().all(|s| s.protocol == ServerProtocol::Tcp) && !servers.is_empty() {
            Kind::Tcp
        } else if let Some(tcp) = servers.iter().find(|s| s.protocol == ServerProtocol::Tcp) {
            return Err(format!(
                "gateway port {port}: TCP server {} ({}) shares the port with HTTP servers",
                tcp.port_name, tcp.gateway
            ));
        } else {
            Kind::Http
        };
        Ok(PortPlan { kind, servers })
    }

    /// Loads every terminating server's certificate now, so a missing or broken
    /// credential is reported when the config applies rather than only as failed
    /// handshakes. The port serves either way (a credential may appear later).
    pub fn check_credentials(&self) -> Vec<String> {
        let Kind::Tls { acceptor, .. } = &self.kind else {
            return Vec::new();
        };
        self.servers
            .iter()
            .enumerate()
            .filter(|(i, _)| !acceptor.is_passthrough(*i))
            .filter_map(|(i, s)| {
                let e = acceptor.server_config(i).err()?;
                Some(format!(
                    "gateway port {}: server {} ({}): {e}; its handshakes fail until it loads",
                    s.port, s.port_name, s.gateway
                ))
            })
            .collect()
    }

    /// `http`, `tcp` or `tls`, for messages.
    pub fn describe(&self) -> &'static str {
        match &self.kind {
            Kind::Http => "http",
            Kind::Tcp => "tcp",
            Kind::Tls { .. } => "tls",
        }
    }
}

fn passthrough(s: &GatewayServer) -> bool {
    s.tls.as_ref().is_some_and(|t| {
        matches!(
            t.mode,
            ServerTlsMode::Passthrough | ServerTlsMode::AutoPassthrough
        )
    })
}

/// Handles one accepted connection according to `plan`.
pub async fn serve_connection(
    plan: Arc<PortPlan>,
    state: Arc<ProxyState>,
    mut tcp: TcpStream,
    mut info: ConnInfo,
    watcher: Watcher,
) {
    let (acceptor, any_passthrough) = match &plan.kind {
        Kind::Http => return serve_hyper(tcp, Arc::new(info), state, watcher).await,
        Kind::Tcp => {
            info.scheme = "tcp";
            return tcp::proxy(&state, tcp, &info, L4::Tcp).await;
        }
        Kind::Tls {
            acceptor,
            any_passthrough,
        } => (acceptor.clone(), *any_passthrough),
    };
    // The TLS paths are boxed: inline, their handshake futures would size every plain
    // HTTP connection's task (kept for as long as the connection stays open).
    if !any_passthrough {
        return Box::pin(terminate(&plan, &acceptor, state, tcp, info, watcher)).await;
    }
    let peek = Box::pin(peek_client_hello(
        &mut tcp,
        crate::tls::DEFAULT_HANDSHAKE_TIMEOUT,
    ));
    let hello = match peek.await {
        Ok(h) => h,
        Err(e) => {
            tracing::debug!(port = info.port, remote = %info.remote, "closing: {e}");
            return;
        }
    };
    let sni = hello.info.sni.clone();
    let io = PrefixedStream::new(hello.bytes, tcp);
    match acceptor.select(sni.as_deref()) {
        Some(i) if acceptor.is_passthrough(i) => {
            info.sni = sni.map(Arc::from);
            info.scheme = "tls";
            Box::pin(tcp::proxy(&state, io, &info, L4::Passthrough)).await
        }
        Some(_) => Box::pin(terminate(&plan, &acceptor, state, io, info, watcher)).await,
        None => tracing::debug!(
            port = info.port,
            "closing: no server for SNI {}",
            sni.as_deref().unwrap_or("(none)")
        ),
    }
}

/// Completes the TLS handshake with the server the SNI picked, then serves HTTP (HTTPS
/// servers) or proxies the decrypted bytes (TLS servers that terminate).
async fn terminate<IO>(
    plan: &PortPlan,
    acceptor: &SniAcceptor,
    state: Arc<ProxyState>,
    io: IO,
    mut info: ConnInfo,
    watcher: Watcher,
) where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (tls, hs) = match acceptor.accept(io).await {
        Ok(accepted) => accepted,
        Err(e) => {
            tracing::debug!(port = info.port, remote = %info.remote, "TLS handshake: {e}");
            return;
        }
    };
    let Some(server) = plan.servers.get(hs.server_index) else {
        return;
    };
    info.sni = hs.sni.map(Arc::from);
    info.tls_server = Some(Arc::from(tls_server_id(server)));
    if server.protocol == ServerProtocol::Tls {
        info.scheme = "tls";
        return tcp::proxy(&state, tls, &info, L4::Tcp).await;
    }
    info.scheme = "https";
    serve_hyper(tls, Arc::new(info), state, watcher).await
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::router::snapshot::ServerTlsPolicy;

    fn server(
        name: &str,
        protocol: ServerProtocol,
        mode: Option<ServerTlsMode>,
    ) -> Arc<GatewayServer> {
        Arc::new(GatewayServer {
            gateway: "default/gw".into(),
            selector: Default::default(),
            port_name: name.into(),
            port: 443,
            protocol,
            hosts: vec![format!("{name}.example")],
            tls: mode.map(|mode| ServerTlsPolicy {
                mode,
                credential_name: Some(name.into()),
                server_certificate: None,
                private_key: None,
                ca_certificates: None,
                subject_alt_names: vec![],
                min_tls13: false,
            }),
            https_redirect: false,
            vhosts: Default::default(),
            tcp_rules: vec![],
            tls_rules: vec![],
        })
    }

    fn plan(servers: Vec<Arc<GatewayServer>>) -> Result<PortPlan, String> {
        let listener = Listener { port: 443, servers };
        PortPlan::build(&listener, &CredentialStore::without_root())
    }

    #[test]
    fn the_servers_decide_what_a_port_does() {
        use ServerProtocol::*;
        assert_eq!(
            plan(vec![server("a", Http, None)]).unwrap().describe(),
            "http"
        );
        assert_eq!(
            plan(vec![server("a", Tcp, None)]).unwrap().describe(),
            "tcp"
        );
        let mixed = plan(vec![
            server("a", Https, Some(ServerTlsMode::Simple)),
            server("b", Tls, Some(ServerTlsMode::Passthrough)),
        ])
        .unwrap();
        assert_eq!(mixed.describe(), "tls");
        assert!(matches!(
            mixed.kind,
            Kind::Tls {
                any_passthrough: true,
                ..
            }
        ));
    }

    #[test]
    fn ports_that_cannot_work_are_refused_with_the_reason() {
        use ServerProtocol::*;
        let e = plan(vec![
            server("a", Https, Some(ServerTlsMode::Simple)),
            server("plain", Http, None),
        ])
        .err()
        .unwrap();
        assert!(e.contains("plain") && e.contains("no TLS settings"), "{e}");
        let e = plan(vec![server("a", Http, None), server("t", Tcp, None)])
            .err()
            .unwrap();
        assert!(e.contains("TCP server t"), "{e}");
        let e = plan(vec![server("m", Https, Some(ServerTlsMode::IstioMutual))])
            .err()
            .unwrap();
        assert!(e.contains("ISTIO_MUTUAL"), "{e}");
    }

    #[test]
    fn missing_credentials_are_reported_but_passthrough_needs_none() {
        let p = plan(vec![
            server("a", ServerProtocol::Https, Some(ServerTlsMode::Simple)),
            server("b", ServerProtocol::Tls, Some(ServerTlsMode::Passthrough)),
        ])
        .unwrap();
        let problems = p.check_credentials();
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].contains("server a"), "{problems:?}");
    }
}
