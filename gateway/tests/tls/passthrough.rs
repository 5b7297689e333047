use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use meshgate::router::snapshot::ServerTlsMode;
use meshgate::tls::{peek_client_hello, CredentialStore, PrefixedStream, SniAcceptor};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

use crate::support::*;

/// One port with a PASSTHROUGH server (forwarded to `backend` untouched) and a SIMPLE
/// server (terminated here), as a gateway listener would run it. Reports each peeked SNI.
async fn gateway(
    acceptor: SniAcceptor,
    backend: SocketAddr,
) -> (
    SocketAddr,
    mpsc::UnboundedReceiver<Result<Option<String>, String>>,
) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = mpsc::unbounded_channel();
    let acceptor = Arc::new(acceptor);
    tokio::spawn(async move {
        while let Ok((mut tcp, _)) = listener.accept().await {
            let (acceptor, tx) = (acceptor.clone(), tx.clone());
            tokio::spawn(async move {
                let peeked = match peek_client_hello(&mut tcp, Duration::from_secs(5)).await {
                    Ok(p) => p,
                    Err(e) => {
                        let _ = tx.send(Err(e.to_string()));
                        return;
                    }
                };
                let _ = tx.send(Ok(peeked.info.sni.clone()));
                match acceptor.select(peeked.info.sni.as_deref()) {
                    Some(i) if acceptor.is_passthrough(i) => {
                        let mut upstream = TcpStream::connect(backend).await.unwrap();
                        upstream.write_all(&peeked.bytes).await.unwrap();
                        let _ = tokio::io::copy_bidirectional(&mut tcp, &mut upstream).await;
                    }
                    Some(_) => {
                        if let Ok((stream, _)) = acceptor
                            .accept(PrefixedStream::new(peeked.bytes, tcp))
                            .await
                        {
                            echo(stream).await;
                        }
                    }
                    None => {}
                }
            });
        }
    });
    (addr, rx)
}

#[tokio::test]
async fn passthrough_routes_on_the_peeked_sni_and_replays_the_hello() {
    let creds = TempDir::new("passthrough");
    let backend_ca = Ca::new("backend root");
    let gateway_ca = Ca::new("gateway root");
    let backend_leaf = backend_ca.server(&["p.example.com"]);
    let gateway_leaf = gateway_ca.server(&["t.example.com"]);
    write_credential_files(creds.path(), "backend", &backend_leaf, None, false);
    write_credential_files(creds.path(), "t", &gateway_leaf, None, false);
    let store = CredentialStore::new(creds.path());
    let backend = serve(
        SniAcceptor::new(
            vec![server(&["*"], policy(ServerTlsMode::Simple, "backend"))],
            store.clone(),
        )
        .unwrap(),
    )
    .await;
    let mut pass = policy(ServerTlsMode::Passthrough, "unused");
    pass.credential_name = None;
    let acceptor = SniAcceptor::new(
        vec![
            server(&["p.example.com"], pass),
            server(&["t.example.com"], policy(ServerTlsMode::Simple, "t")),
        ],
        store,
    )
    .unwrap();
    let (addr, mut peeks) = gateway(acceptor, backend.addr).await;
    let config = client_config(&[backend_ca.der(), gateway_ca.der()], None);

    // Passthrough: the client talks TLS with the backend itself, through the gateway.
    let mut conn = connect(addr, config.clone(), "p.example.com")
        .await
        .unwrap();
    ping(&mut conn).await.unwrap();
    assert_eq!(server_leaf(&conn), backend_leaf.der);
    assert_eq!(
        peeks.recv().await.unwrap(),
        Ok(Some("p.example.com".into()))
    );

    // Same port, a terminating server: the peeked bytes are replayed into the handshake.
    let mut conn = connect(addr, config, "t.example.com").await.unwrap();
    ping(&mut conn).await.unwrap();
    assert_eq!(server_leaf(&conn), gateway_leaf.der);
    assert_eq!(
        peeks.recv().await.unwrap(),
        Ok(Some("t.example.com".into()))
    );
}

#[tokio::test]
async fn garbage_and_plaintext_are_reported_not_crashed_on() {
    let (addr, mut peeks) = gateway(
        SniAcceptor::new(
            vec![server(&["*"], policy(ServerTlsMode::Simple, "none"))],
            CredentialStore::without_root(),
        )
        .unwrap(),
        "127.0.0.1:9".parse().unwrap(),
    )
    .await;
    let inputs: [(&[u8], &str); 4] = [
        (b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", "not a tls connection"),
        (&[0x16, 3, 1, 0, 8, 2, 0, 0, 4, 1, 2, 3, 4], "malformed"),
        (&[0x16, 3, 1, 0xff, 0xff], "malformed"),
        (&[0x16, 3, 1, 0, 200, 1, 0], "closed"),
    ];
    for (bytes, expected) in inputs {
        let mut tcp = TcpStream::connect(addr).await.unwrap();
        tcp.write_all(bytes).await.unwrap();
        tcp.shutdown().await.unwrap();
        let err = peeks.recv().await.unwrap().unwrap_err();
        assert!(err.to_lowercase().contains(expected), "{bytes:?}: {err}");
    }
    let mut rng = fastrand::Rng::with_seed(11);
    for _ in 0..50 {
        let mut noise: Vec<u8> = (0..rng.usize(1..400)).map(|_| rng.u8(..)).collect();
        noise[0] = 0x16;
        let mut tcp = TcpStream::connect(addr).await.unwrap();
        tcp.write_all(&noise).await.unwrap();
        tcp.shutdown().await.unwrap();
        assert!(peeks.recv().await.unwrap().is_err());
    }
}
