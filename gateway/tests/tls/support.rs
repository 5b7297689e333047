//! Test helpers: a throwaway folder, TLS servers and clients on 127.0.0.1 (certificates
//! from tests/common/certs.rs).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use meshgate::router::snapshot::{ServerTlsMode, ServerTlsPolicy};
use meshgate::tls::{HandshakeInfo, SniAcceptor, TlsServer};
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::ClientConfig;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> Self {
        let dir = std::env::temp_dir().join(format!(
            "meshgate-test-{tag}-{}-{}",
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

// The same rcgen CA, leaves and credential folders as the e2e tests.
#[allow(dead_code)]
#[path = "../common/certs.rs"]
mod certs;
pub use certs::{write_credential_files, Ca, Leaf};

pub fn policy(mode: ServerTlsMode, credential: &str) -> ServerTlsPolicy {
    ServerTlsPolicy {
        mode,
        credential_name: Some(credential.into()),
        server_certificate: None,
        private_key: None,
        ca_certificates: None,
        subject_alt_names: vec![],
        min_tls13: false,
    }
}

pub fn server(hosts: &[&str], policy: ServerTlsPolicy) -> TlsServer {
    TlsServer {
        hosts: hosts.iter().map(|h| h.to_string()).collect(),
        policy,
    }
}

/// A TLS echo server; every handshake outcome is reported on `results`.
pub struct TestServer {
    pub addr: SocketAddr,
    pub results: mpsc::UnboundedReceiver<Result<HandshakeInfo, String>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl TestServer {
    pub async fn next_result(&mut self) -> Result<HandshakeInfo, String> {
        tokio::time::timeout(std::time::Duration::from_secs(10), self.results.recv())
            .await
            .expect("server reported no handshake outcome")
            .expect("server gone")
    }
}

pub async fn serve(acceptor: SniAcceptor) -> TestServer {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, results) = mpsc::unbounded_channel();
    let acceptor = Arc::new(acceptor);
    let task = tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let (acceptor, tx) = (acceptor.clone(), tx.clone());
            tokio::spawn(async move {
                match acceptor.accept(tcp).await {
                    Ok((stream, info)) => {
                        let _ = tx.send(Ok(info));
                        echo(stream).await;
                    }
                    Err(e) => {
                        let _ = tx.send(Err(e.to_string()));
                    }
                }
            });
        }
    });
    TestServer {
        addr,
        results,
        task,
    }
}

pub async fn echo<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(mut stream: S) {
    let mut buf = [0u8; 1024];
    while let Ok(n) = stream.read(&mut buf).await {
        if n == 0 || stream.write_all(&buf[..n]).await.is_err() {
            break;
        }
    }
}

pub fn client_config(
    roots: &[CertificateDer<'static>],
    client: Option<&Leaf>,
) -> Arc<ClientConfig> {
    let mut store = rustls::RootCertStore::empty();
    for root in roots {
        store.add(root.clone()).unwrap();
    }
    let builder = ClientConfig::builder_with_provider(meshgate::tls::provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(store);
    let mut config = match client {
        Some(leaf) => {
            let chain = rustls_pemfile::certs(&mut leaf.cert_pem.as_bytes())
                .collect::<Result<Vec<_>, _>>()
                .unwrap();
            let key = rustls_pemfile::private_key(&mut leaf.key_pem.as_bytes())
                .unwrap()
                .unwrap();
            builder.with_client_auth_cert(chain, key).unwrap()
        }
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Arc::new(config)
}

pub type ClientStream = tokio_rustls::client::TlsStream<TcpStream>;

pub async fn connect(
    addr: SocketAddr,
    config: Arc<ClientConfig>,
    name: &str,
) -> Result<ClientStream, String> {
    let tcp = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
    let name = ServerName::try_from(name.to_string()).map_err(|e| e.to_string())?;
    tokio_rustls::TlsConnector::from(config)
        .connect(name, tcp)
        .await
        .map_err(|e| e.to_string())
}

/// Sends a line and expects it echoed: proves the connection really works (in TLS 1.3 a
/// rejected client certificate only shows up here, after the client's handshake ended).
pub async fn ping(stream: &mut ClientStream) -> Result<(), String> {
    stream
        .write_all(b"ping\n")
        .await
        .map_err(|e| e.to_string())?;
    let mut buf = [0u8; 5];
    stream
        .read_exact(&mut buf)
        .await
        .map_err(|e| e.to_string())?;
    if &buf == b"ping\n" {
        Ok(())
    } else {
        Err(format!("unexpected echo {buf:?}"))
    }
}

pub fn server_leaf(stream: &ClientStream) -> CertificateDer<'static> {
    stream.get_ref().1.peer_certificates().unwrap()[0]
        .clone()
        .into_owned()
}
