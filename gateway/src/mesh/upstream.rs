//! Originating TLS towards upstreams: mesh mTLS (ISTIO_MUTUAL) with this workload's
//! identity, checking the destination's SPIFFE identity, and SIMPLE/MUTUAL from
//! credential files. Client configs are built once per (identity, ALPN) and reused;
//! the workload certificate inside them renews on its own.

use std::io;
use std::sync::Arc;

use dashmap::DashMap;
use rustls::pki_types::ServerName;
use rustls::ClientConfig;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use super::{client_config as mesh_client_config, SpiffeId, WorkloadCerts};
use crate::config::hosts::fqdn_namespace;
use crate::router::{Cluster, Endpoint, UpstreamTls, UpstreamTlsMode};
use crate::tls::{self, CredentialStore};
use crate::upstream::{BoxFuture, TlsStream, UpstreamTlsConnector};

/// ALPN protocol list, as a cache key.
type Alpn = Vec<Vec<u8>>;
/// Mesh configs by expected peer identity and ALPN.
type MeshConfigs = DashMap<(Option<String>, Alpn), Arc<ClientConfig>>;
/// File-based configs by cluster and ALPN, with the policy they were built from.
type FileConfigs = DashMap<(Arc<str>, Alpn), (UpstreamTls, Arc<ClientConfig>)>;

pub struct MeshTlsConnector {
    certs: Option<WorkloadCerts>,
    credentials: CredentialStore,
    mesh: MeshConfigs,
    simple: FileConfigs,
}

impl MeshTlsConnector {
    /// `certs`: this proxy's mesh identity (None: ISTIO_MUTUAL destinations fail with
    /// a clear error). `credentials`: where `credentialName` files live.
    pub fn new(certs: Option<WorkloadCerts>, credentials: CredentialStore) -> Self {
        MeshTlsConnector {
            certs,
            credentials,
            mesh: DashMap::new(),
            simple: DashMap::new(),
        }
    }

    /// The identity the destination must present: the DestinationRule's first SPIFFE
    /// `subjectAltNames`, else the endpoint's service account in the service's namespace.
    fn expected_peer(
        tls: &UpstreamTls,
        endpoint: &Endpoint,
        cluster: &Cluster,
    ) -> Option<SpiffeId> {
        if let Some(id) = tls
            .subject_alt_names
            .iter()
            .find_map(|s| s.parse::<SpiffeId>().ok())
        {
            return Some(id);
        }
        let sa = endpoint.service_account.as_deref()?;
        SpiffeId::in_cluster(fqdn_namespace(&cluster.host).unwrap_or("default"), sa).ok()
    }

    fn mesh_config(
        &self,
        expected: Option<SpiffeId>,
        alpn: &[&'static [u8]],
    ) -> io::Result<Arc<ClientConfig>> {
        let certs = self.certs.as_ref().ok_or_else(|| {
            io::Error::other("ISTIO_MUTUAL needs a mesh identity: start the proxy with --ca DIR")
        })?;
        let key = (
            expected.as_ref().map(|e| e.to_string()),
            alpn.iter().map(|p| p.to_vec()).collect::<Vec<_>>(),
        );
        if let Some(c) = self.mesh.get(&key) {
            return Ok(c.clone());
        }
        let base =
            mesh_client_config(certs, expected).map_err(|e| io::Error::other(e.to_string()))?;
        let mut config = (*base).clone();
        config.alpn_protocols = key.1.clone();
        let config = Arc::new(config);
        self.mesh.insert(key, config.clone());
        Ok(config)
    }

    fn file_config(
        &self,
        cluster: &Cluster,
        tls: &UpstreamTls,
        alpn: &[&'static [u8]],
    ) -> io::Result<Arc<ClientConfig>> {
        let key = (
            cluster.name.clone(),
            alpn.iter().map(|p| p.to_vec()).collect::<Vec<_>>(),
        );
        if let Some(entry) = self.simple.get(&key) {
            if entry.0 == *tls {
                return Ok(entry.1.clone());
            }
        }
        let config = tls::client_config(tls, &self.credentials, alpn)
            .map_err(|e| io::Error::other(e.to_string()))?;
        self.simple.insert(key, (tls.clone(), config.clone()));
        Ok(config)
    }
}

impl UpstreamTlsConnector for MeshTlsConnector {
    fn connect<'a>(
        &'a self,
        tcp: TcpStream,
        endpoint: &'a Endpoint,
        cluster: &'a Cluster,
        alpn: &'a [&'static [u8]],
    ) -> BoxFuture<'a, io::Result<TlsStream>> {
        Box::pin(async move {
            let Some(policy) = cluster.policy.tls.as_ref() else {
                return Err(io::Error::other("no TLS policy for this cluster"));
            };
            let (config, name) = match policy.mode {
                UpstreamTlsMode::IstioMutual => {
                    let expected = Self::expected_peer(policy, endpoint, cluster);
                    let name = ServerName::try_from(cluster.host.clone()).map_err(|e| {
                        io::Error::other(format!("server name {}: {e}", cluster.host))
                    })?;
                    (self.mesh_config(expected, alpn)?, name)
                }
                UpstreamTlsMode::Simple | UpstreamTlsMode::Mutual => {
                    let name = tls::upstream_server_name(policy, &cluster.host)
                        .map_err(|e| io::Error::other(e.to_string()))?;
                    (self.file_config(cluster, policy, alpn)?, name)
                }
                UpstreamTlsMode::Disable => {
                    return Err(io::Error::other("TLS is disabled for this cluster"))
                }
            };
            let stream = TlsConnector::from(config).connect(name, tcp).await?;
            let negotiated_h2 = stream.get_ref().1.alpn_protocol() == Some(b"h2");
            Ok(TlsStream {
                io: Box::new(stream),
                negotiated_h2,
            })
        })
    }
}
