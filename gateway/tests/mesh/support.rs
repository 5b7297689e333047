//! Test helpers: a throwaway CA folder, workload identities, an inbound sidecar port.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use meshgate::mesh::{
    init_ca, CaInitOptions, InboundConnection, MeshInbound, MtlsMode, SpiffeId, WorkloadCerts,
};
use rustls::pki_types::ServerName;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> Self {
        let dir = std::env::temp_dir().join(format!(
            "meshgate-mesh-{tag}-{}-{}",
            std::process::id(),
            fastrand::u64(..)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A mesh CA in a temporary folder.
pub fn mesh_ca(tag: &str) -> TempDir {
    let dir = TempDir::new(tag);
    init_ca(&dir.0, &CaInitOptions::default()).unwrap();
    dir
}

pub fn id(ns: &str, sa: &str) -> SpiffeId {
    SpiffeId::in_cluster(ns, sa).unwrap()
}

pub fn workload(ca: &TempDir, ns: &str, sa: &str, lifetime: Duration) -> WorkloadCerts {
    WorkloadCerts::from_ca_dir(&ca.0, id(ns, sa), lifetime).unwrap()
}

/// What the inbound side saw for one connection.
#[derive(Debug)]
pub enum Seen {
    Mtls(SpiffeId),
    Plaintext(Vec<u8>),
    Refused(String),
}

/// A sidecar inbound port: accepts with `mode`, echoes mTLS and plaintext alike.
pub async fn inbound(
    certs: &WorkloadCerts,
    mode: MtlsMode,
) -> (SocketAddr, mpsc::UnboundedReceiver<Seen>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let inbound = Arc::new(
        MeshInbound::new(certs)
            .unwrap()
            .with_handshake_timeout(Duration::from_secs(5)),
    );
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let (inbound, tx) = (inbound.clone(), tx.clone());
            tokio::spawn(async move {
                match inbound.accept(tcp, mode).await {
                    Ok(InboundConnection::Mtls { stream, peer }) => {
                        let _ = tx.send(Seen::Mtls(peer));
                        echo(*stream).await;
                    }
                    Ok(InboundConnection::Plaintext(mut tcp)) => {
                        let mut buf = vec![0u8; 5];
                        let _ = tcp.read_exact(&mut buf).await;
                        let _ = tx.send(Seen::Plaintext(buf.clone()));
                        let _ = tcp.write_all(&buf).await;
                        echo(tcp).await;
                    }
                    Err(e) => {
                        let _ = tx.send(Seen::Refused(e.to_string()));
                    }
                }
            });
        }
    });
    (addr, rx)
}

async fn echo<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(mut stream: S) {
    let mut buf = [0u8; 1024];
    while let Ok(n) = stream.read(&mut buf).await {
        if n == 0 || stream.write_all(&buf[..n]).await.is_err() {
            break;
        }
    }
}

pub type MeshStream = tokio_rustls::client::TlsStream<TcpStream>;

pub async fn dial(
    addr: SocketAddr,
    config: Arc<rustls::ClientConfig>,
) -> Result<MeshStream, String> {
    let tcp = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
    let name = ServerName::try_from("server.default.svc.cluster.local").unwrap();
    tokio_rustls::TlsConnector::from(config)
        .connect(name, tcp)
        .await
        .map_err(|e| e.to_string())
}

pub async fn ping<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(
    stream: &mut S,
) -> Result<(), String> {
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

pub async fn next(rx: &mut mpsc::UnboundedReceiver<Seen>) -> Seen {
    tokio::time::timeout(Duration::from_secs(10), rx.recv())
        .await
        .expect("no inbound outcome")
        .expect("inbound gone")
}
