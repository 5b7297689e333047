//! A sidecar's inbound side: terminate mesh mTLS per the PeerAuthentication in effect,
//! remember the caller's SPIFFE identity, and send every request to the local app.

use std::collections::HashMap;
use std::sync::Arc;

use tokio::net::TcpStream;

use super::http::ConnInfo;
use super::listener::Accept;
use super::{InboundRoute, ProxyState};
use crate::mesh::{effective_mtls_mode, InboundConnection, MeshInbound};
use crate::router::{
    Cluster, ClusterName, ClusterPolicy, Endpoint, RetryPolicy, RouteAction, UpstreamProtocol,
    WeightedDestination,
};
use crate::upstream::BoxedIo;

/// Accepts inbound mesh connections: mTLS (STRICT), or either (PERMISSIVE).
pub struct MeshAccept {
    pub inbound: MeshInbound,
    pub state: Arc<ProxyState>,
}

impl Accept for MeshAccept {
    type Io = BoxedIo;

    async fn accept(&self, tcp: TcpStream, mut info: ConnInfo) -> Option<(BoxedIo, ConnInfo)> {
        let snapshot = self.state.snapshot();
        let w = &self.state.workload;
        let mode = effective_mtls_mode(
            &snapshot.peer_authentications,
            &w.namespace,
            &w.labels,
            info.port,
        );
        match self.inbound.accept(tcp, mode).await {
            Ok(InboundConnection::Mtls { stream, peer }) => {
                info.peer_identity = Some(Arc::from(peer.to_string()));
                Some((Box::new(*stream), info))
            }
            Ok(InboundConnection::Plaintext(tcp)) => Some((Box::new(tcp), info)),
            Err(e) => {
                tracing::info!("inbound connection from {} refused: {e}", info.remote);
                None
            }
        }
    }
}

/// The cluster and route for the local app on `127.0.0.1:app_port`, spoken in whatever
/// protocol the caller used (gRPC stays HTTP/2, HTTP/1.1 stays HTTP/1.1).
pub fn local_app(
    app_port: u16,
    service_port: u32,
) -> (InboundRoute, HashMap<ClusterName, Arc<Cluster>>) {
    let name: ClusterName = Arc::from(format!("inbound|{service_port}||"));
    let cluster = Arc::new(Cluster {
        name: name.clone(),
        host: "127.0.0.1".into(),
        port: u32::from(app_port),
        subset: None,
        protocol: UpstreamProtocol::Client,
        endpoints: vec![Endpoint {
            address: format!("127.0.0.1:{app_port}"),
            labels: Default::default(),
            weight: 1,
            service_account: None,
        }],
        dns: false,
        policy: ClusterPolicy::default(),
        missing: None,
    });
    let action = RouteAction {
        destinations: vec![WeightedDestination {
            cluster: name.clone(),
            host: "127.0.0.1".into(),
            subset: None,
            port: Some(u32::from(app_port)),
            weight: 1,
            headers: Default::default(),
        }],
        total_weight: 1,
        // The app is local: a retry would only repeat its answer.
        retries: RetryPolicy {
            attempts: 0,
            ..RetryPolicy::default()
        },
        ..Default::default()
    };
    (InboundRoute { action }, HashMap::from([(name, cluster)]))
}
