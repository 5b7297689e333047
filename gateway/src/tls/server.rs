//! Terminating TLS for one gateway port that serves several HTTPS servers chosen by SNI.
//!
//! rustls has one client-certificate verifier per `ServerConfig`, but MUTUAL, OPTIONAL_MUTUAL
//! and SIMPLE servers can share a port. So the ClientHello is read first (rustls `Acceptor`),
//! the server is chosen by its SNI, and the handshake continues with that server's own
//! `ServerConfig`. Each config is rebuilt when its credential rotates, so new handshakes
//! use the new certificate and CA while established connections keep theirs.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rustls::pki_types::CertificateDer;
use rustls::server::danger::ClientCertVerifier;
use rustls::server::{Acceptor, ClientHello, ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use rustls::version::{TLS12, TLS13};
use rustls::ServerConfig;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_rustls::LazyConfigAcceptor;

use super::credentials::{Credential, CredentialSource, CredentialStore};
use super::{alpn_list, provider, verify, TlsError, DEFAULT_ALPN};
use crate::router::snapshot::{Listener, ServerTlsMode, ServerTlsPolicy};

/// Longest a client may take to finish the handshake.
pub const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The TLS stream handed to the HTTP layer.
pub type ServerTlsStream<IO> = tokio_rustls::server::TlsStream<IO>;

/// One server of the port: its hosts (exact, `*.suffix` or `*`) and TLS policy.
#[derive(Debug, Clone)]
pub struct TlsServer {
    pub hosts: Vec<String>,
    pub policy: ServerTlsPolicy,
}

/// What the handshake settled.
#[derive(Debug, Clone)]
pub struct HandshakeInfo {
    /// SNI sent by the client, lower-cased.
    pub sni: Option<String>,
    /// Negotiated ALPN protocol (`h2`, `http/1.1`).
    pub alpn: Option<Vec<u8>>,
    /// The client's certificate chain (MUTUAL / OPTIONAL_MUTUAL), leaf first.
    pub peer_certs: Vec<CertificateDer<'static>>,
    /// Index of the chosen server in the list the acceptor was built from.
    pub server_index: usize,
}

/// Accepts TLS connections for one port, choosing the server by SNI.
#[derive(Debug)]
pub struct SniAcceptor {
    servers: Vec<Slot>,
    exact: Vec<(String, usize)>,
    /// (".example.com", index), longest suffix first.
    suffixes: Vec<(String, usize)>,
    catch_all: Option<usize>,
    store: CredentialStore,
    alpn: Vec<Vec<u8>>,
    handshake_timeout: Duration,
}

#[derive(Debug)]
struct Slot {
    policy: ServerTlsPolicy,
    /// None for PASSTHROUGH servers, which are never terminated here.
    source: Option<CredentialSource>,
    /// The config built for the credential it was built from.
    cached: Mutex<Option<(Arc<Credential>, Arc<ServerConfig>)>>,
}

impl SniAcceptor {
    /// Servers in the order of the Gateway; `HandshakeInfo::server_index` refers to it.
    pub fn new(servers: Vec<TlsServer>, store: CredentialStore) -> Result<Self, TlsError> {
        if servers.is_empty() {
            return Err(TlsError::Config(
                "a TLS port needs at least one server".into(),
            ));
        }
        let mut acceptor = SniAcceptor {
            servers: Vec::with_capacity(servers.len()),
            exact: Vec::new(),
            suffixes: Vec::new(),
            catch_all: None,
            store,
            alpn: alpn_list(&DEFAULT_ALPN),
            handshake_timeout: DEFAULT_HANDSHAKE_TIMEOUT,
        };
        for (index, server) in servers.into_iter().enumerate() {
            for host in &server.hosts {
                acceptor.add_host(&host.to_ascii_lowercase(), index);
            }
            acceptor.servers.push(Slot {
                source: credential_source(&server.policy, index)?,
                policy: server.policy,
                cached: Mutex::new(None),
            });
        }
        acceptor
            .suffixes
            .sort_by_key(|(suffix, _)| std::cmp::Reverse(suffix.len()));
        Ok(acceptor)
    }

    /// The TLS servers of a compiled listener; indexes are those of `listener.servers`.
    pub fn for_listener(listener: &Listener, store: CredentialStore) -> Result<Self, TlsError> {
        let servers = listener
            .servers
            .iter()
            .map(|s| {
                let policy = s.tls.clone().ok_or_else(|| {
                    TlsError::Config(format!(
                        "server {} on port {} has no tls settings",
                        s.port_name, s.port
                    ))
                })?;
                Ok(TlsServer {
                    hosts: s.hosts.clone(),
                    policy,
                })
            })
            .collect::<Result<Vec<_>, TlsError>>()?;
        Self::new(servers, store)
    }

    /// ALPN protocols offered (default `h2`, `http/1.1`).
    pub fn with_alpn(mut self, alpn: &[&[u8]]) -> Self {
        self.alpn = alpn_list(alpn);
        self
    }

    pub fn with_handshake_timeout(mut self, timeout: Duration) -> Self {
        self.handshake_timeout = timeout;
        self
    }

    fn add_host(&mut self, host: &str, index: usize) {
        // The first server naming a host keeps it, as Istio rejects the duplicate.
        if host == "*" {
            self.catch_all.get_or_insert(index);
        } else if let Some(suffix) = host.strip_prefix('*') {
            if !self.suffixes.iter().any(|(s, _)| s == suffix) {
                self.suffixes.push((suffix.to_string(), index));
            }
        } else if !self.exact.iter().any(|(h, _)| h == host) {
            self.exact.push((host.to_string(), index));
        }
    }

    /// The server for an SNI: exact host, then the longest `*.suffix`, then `*`. A client
    /// without SNI gets the `*` server, or the first one.
    pub fn select(&self, sni: Option<&str>) -> Option<usize> {
        let Some(sni) = sni else {
            return self.catch_all.or(Some(0));
        };
        let sni = sni.strip_suffix('.').unwrap_or(sni).to_ascii_lowercase();
        self.exact
            .iter()
            .find(|(h, _)| *h == sni)
            .or_else(|| {
                self.suffixes
                    .iter()
                    .find(|(s, _)| sni.len() > s.len() && sni.ends_with(s.as_str()))
            })
            .map(|(_, i)| *i)
            .or(self.catch_all)
    }

    /// True when server `index` forwards TLS untouched (PASSTHROUGH, AUTO_PASSTHROUGH).
    pub fn is_passthrough(&self, index: usize) -> bool {
        self.servers.get(index).is_some_and(|s| s.source.is_none())
    }

    /// The current `ServerConfig` of server `index`, rebuilt if its credential changed.
    pub fn server_config(&self, index: usize) -> Result<Arc<ServerConfig>, TlsError> {
        let slot = self
            .servers
            .get(index)
            .ok_or_else(|| TlsError::Config(format!("no server #{index}")))?;
        let source = slot.source.as_ref().ok_or(TlsError::Passthrough(index))?;
        let credential = self.store.get_source(source)?;
        let mut cached = slot.cached.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((built_from, config)) = cached.as_ref() {
            if Arc::ptr_eq(built_from, &credential) {
                return Ok(config.clone());
            }
        }
        let config = Arc::new(build_server_config(&slot.policy, &credential, &self.alpn)?);
        *cached = Some((credential, config.clone()));
        Ok(config)
    }

    /// Reads the ClientHello, picks the server by SNI and completes the handshake with
    /// that server's config, all within the handshake timeout. PASSTHROUGH servers are
    /// an error: for ports that have them, call `peek_client_hello` first, then hand a
    /// `PrefixedStream` here for the servers that terminate.
    pub async fn accept<IO>(&self, io: IO) -> Result<(ServerTlsStream<IO>, HandshakeInfo), TlsError>
    where
        IO: AsyncRead + AsyncWrite + Unpin,
    {
        let deadline = tokio::time::Instant::now() + self.handshake_timeout;
        let timeout = || TlsError::Timeout(self.handshake_timeout);
        let start =
            tokio::time::timeout_at(deadline, LazyConfigAcceptor::new(Acceptor::default(), io))
                .await
                .map_err(|_| timeout())?
                .map_err(|e| TlsError::Handshake(e.to_string()))?;
        let sni = start
            .client_hello()
            .server_name()
            .map(str::to_ascii_lowercase);
        let server_index = self
            .select(sni.as_deref())
            .ok_or_else(|| TlsError::NoServerForSni(sni.clone()))?;
        let config = self.server_config(server_index)?;
        let stream = tokio::time::timeout_at(deadline, start.into_stream(config))
            .await
            .map_err(|_| timeout())?
            .map_err(|e| TlsError::Handshake(e.to_string()))?;
        let conn = stream.get_ref().1;
        let info = HandshakeInfo {
            sni,
            alpn: conn.alpn_protocol().map(<[u8]>::to_vec),
            peer_certs: conn
                .peer_certificates()
                .map(|certs| certs.iter().map(|c| c.clone().into_owned()).collect())
                .unwrap_or_default(),
            server_index,
        };
        Ok((stream, info))
    }
}

/// Where a server's certificate comes from: `credentialName`, else inline files.
fn credential_source(
    policy: &ServerTlsPolicy,
    index: usize,
) -> Result<Option<CredentialSource>, TlsError> {
    match policy.mode {
        ServerTlsMode::Passthrough | ServerTlsMode::AutoPassthrough => return Ok(None),
        ServerTlsMode::IstioMutual => {
            return Err(TlsError::Config(format!(
            "server #{index}: ISTIO_MUTUAL uses the mesh workload certificate, not a credential; \
                 terminate it with mesh::server_config"
        )))
        }
        ServerTlsMode::Simple | ServerTlsMode::Mutual | ServerTlsMode::OptionalMutual => {}
    }
    if let Some(name) = &policy.credential_name {
        return Ok(Some(CredentialSource::Named(name.clone())));
    }
    match (&policy.server_certificate, &policy.private_key) {
        (Some(cert), Some(key)) => Ok(Some(CredentialSource::Files {
            cert: Some(PathBuf::from(cert)),
            key: Some(PathBuf::from(key)),
            ca: policy.ca_certificates.as_ref().map(PathBuf::from),
        })),
        _ => Err(TlsError::Config(format!(
            "server #{index}: TLS mode {:?} needs credentialName or serverCertificate + privateKey",
            policy.mode
        ))),
    }
}

fn build_server_config(
    policy: &ServerTlsPolicy,
    credential: &Credential,
    alpn: &[Vec<u8>],
) -> Result<ServerConfig, TlsError> {
    let key = credential.certified_key()?.clone();
    let verifier: Arc<dyn ClientCertVerifier> = match policy.mode {
        ServerTlsMode::Mutual | ServerTlsMode::OptionalMutual => {
            let mut builder =
                WebPkiClientVerifier::builder_with_provider(credential.ca()?.clone(), provider());
            if policy.mode == ServerTlsMode::OptionalMutual {
                builder = builder.allow_unauthenticated();
            }
            let webpki = builder
                .build()
                .map_err(|e| TlsError::Config(format!("client certificate verifier: {e}")))?;
            if policy.subject_alt_names.is_empty() {
                webpki
            } else {
                Arc::new(verify::CheckedClientVerifier::new(
                    webpki,
                    verify::san_list_check(policy.subject_alt_names.clone()),
                ))
            }
        }
        _ => WebPkiClientVerifier::no_client_auth(),
    };
    let versions: &[&rustls::SupportedProtocolVersion] = if policy.min_tls13 {
        &[&TLS13]
    } else {
        &[&TLS12, &TLS13]
    };
    let mut config = ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(versions)
        .map_err(|e| TlsError::Config(format!("TLS versions: {e}")))?
        .with_client_cert_verifier(verifier)
        .with_cert_resolver(Arc::new(FixedCert(key)));
    config.alpn_protocols = alpn.to_vec();
    Ok(config)
}

/// The certificate of one server at one point in time.
#[derive(Debug)]
struct FixedCert(Arc<CertifiedKey>);

impl ResolvesServerCert for FixedCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.clone())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn server(hosts: &[&str]) -> TlsServer {
        TlsServer {
            hosts: hosts.iter().map(|h| h.to_string()).collect(),
            policy: ServerTlsPolicy {
                mode: ServerTlsMode::Simple,
                credential_name: Some("c".into()),
                server_certificate: None,
                private_key: None,
                ca_certificates: None,
                subject_alt_names: vec![],
                min_tls13: false,
            },
        }
    }

    #[test]
    fn sni_selection_order() {
        let servers = vec![
            server(&["*.example.com"]),
            server(&["*.api.example.com"]),
            server(&["exact.api.example.com"]),
            server(&["*"]),
        ];
        let a = SniAcceptor::new(servers, CredentialStore::without_root()).unwrap();
        assert_eq!(a.select(Some("exact.api.example.com")), Some(2));
        assert_eq!(a.select(Some("EXACT.api.example.com.")), Some(2));
        assert_eq!(a.select(Some("v1.api.example.com")), Some(1));
        assert_eq!(a.select(Some("shop.example.com")), Some(0));
        assert_eq!(a.select(Some("example.com")), Some(3));
        assert_eq!(a.select(None), Some(3));
    }

    #[test]
    fn no_catch_all_means_unknown_sni_has_no_server() {
        let a = SniAcceptor::new(
            vec![server(&["a.test"]), server(&["b.test"])],
            CredentialStore::without_root(),
        )
        .unwrap();
        assert_eq!(a.select(Some("c.test")), None);
        assert_eq!(a.select(None), Some(0));
    }

    #[test]
    fn istio_mutual_and_missing_credentials_are_config_errors() {
        let mut s = server(&["a.test"]);
        s.policy.mode = ServerTlsMode::IstioMutual;
        let err = SniAcceptor::new(vec![s], CredentialStore::without_root()).unwrap_err();
        assert!(err.to_string().contains("ISTIO_MUTUAL"), "{err}");
        let mut s = server(&["a.test"]);
        s.policy.credential_name = None;
        let err = SniAcceptor::new(vec![s], CredentialStore::without_root()).unwrap_err();
        assert!(err.to_string().contains("credentialName"), "{err}");
    }
}
