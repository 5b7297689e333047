use std::sync::Arc;

use super::*;

/// A ClientHello body with the given extensions block (None: no extensions at all).
fn hello_body(extensions: Option<Vec<u8>>) -> Vec<u8> {
    let mut b = vec![3, 3];
    b.extend_from_slice(&[7u8; 32]); // random
    b.push(0); // session id
    b.extend_from_slice(&[0, 2, 0x13, 0x01]); // one cipher suite
    b.extend_from_slice(&[1, 0]); // null compression
    if let Some(ext) = extensions {
        b.extend_from_slice(&(ext.len() as u16).to_be_bytes());
        b.extend_from_slice(&ext);
    }
    b
}

fn ext(kind: u16, data: &[u8]) -> Vec<u8> {
    let mut e = kind.to_be_bytes().to_vec();
    e.extend_from_slice(&(data.len() as u16).to_be_bytes());
    e.extend_from_slice(data);
    e
}

fn sni_ext(name: &str) -> Vec<u8> {
    let mut entry = vec![0u8];
    entry.extend_from_slice(&(name.len() as u16).to_be_bytes());
    entry.extend_from_slice(name.as_bytes());
    let mut list = (entry.len() as u16).to_be_bytes().to_vec();
    list.extend_from_slice(&entry);
    ext(0, &list)
}

fn alpn_ext(protocols: &[&[u8]]) -> Vec<u8> {
    let mut entries = Vec::new();
    for p in protocols {
        entries.push(p.len() as u8);
        entries.extend_from_slice(p);
    }
    let mut list = (entries.len() as u16).to_be_bytes().to_vec();
    list.extend_from_slice(&entries);
    ext(16, &list)
}

/// Wraps a body into a handshake message split into records of at most `record_max` bytes.
fn records(body: &[u8], record_max: usize) -> Vec<u8> {
    let mut hs = vec![1u8];
    hs.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
    hs.extend_from_slice(body);
    let mut out = Vec::new();
    for chunk in hs.chunks(record_max) {
        out.extend_from_slice(&[0x16, 3, 1]);
        out.extend_from_slice(&(chunk.len() as u16).to_be_bytes());
        out.extend_from_slice(chunk);
    }
    out
}

fn sample() -> Vec<u8> {
    let mut exts = ext(23, &[]);
    exts.extend(sni_ext("Shop.Example.COM."));
    exts.extend(alpn_ext(&[b"h2", b"http/1.1"]));
    records(&hello_body(Some(exts)), 1 << 14)
}

#[test]
fn reads_sni_and_alpn() {
    let parsed = parse_client_hello(&sample());
    let want = ClientHelloInfo {
        sni: Some("shop.example.com".into()),
        alpn: vec![b"h2".to_vec(), b"http/1.1".to_vec()],
    };
    assert_eq!(parsed, ClientHelloParse::Complete(want));
}

#[test]
fn hello_without_extensions_has_no_sni() {
    let parsed = parse_client_hello(&records(&hello_body(None), 1 << 14));
    assert_eq!(
        parsed,
        ClientHelloParse::Complete(ClientHelloInfo::default())
    );
}

#[test]
fn hello_split_over_small_records() {
    let mut exts = sni_ext("a.example.com");
    exts.extend(alpn_ext(&[b"h2"]));
    let bytes = records(&hello_body(Some(exts)), 7);
    match parse_client_hello(&bytes) {
        ClientHelloParse::Complete(info) => assert_eq!(info.sni.as_deref(), Some("a.example.com")),
        other => panic!("{other:?}"),
    }
}

#[test]
fn every_prefix_is_incomplete() {
    let bytes = sample();
    for n in 0..bytes.len() {
        assert_eq!(
            parse_client_hello(&bytes[..n]),
            ClientHelloParse::Incomplete,
            "prefix {n}"
        );
    }
}

#[test]
fn plaintext_and_garbage_are_recognised() {
    assert_eq!(
        parse_client_hello(b"GET / HTTP/1.1\r\n"),
        ClientHelloParse::NotTls
    );
    assert_eq!(parse_client_hello(b"G"), ClientHelloParse::NotTls);
    assert_eq!(parse_client_hello(&[0x16, 9]), ClientHelloParse::NotTls);
    assert!(matches!(
        parse_client_hello(&[0x16, 3, 1, 0, 0]),
        ClientHelloParse::Malformed(_)
    ));
    assert!(matches!(
        parse_client_hello(&[0x16, 3, 1, 0xff, 0xff]),
        ClientHelloParse::Malformed(_)
    ));
    // A ServerHello (type 2) is not a ClientHello.
    let mut bytes = sample();
    bytes[5] = 2;
    assert!(matches!(
        parse_client_hello(&bytes),
        ClientHelloParse::Malformed(_)
    ));
    // An extension length running past the end.
    let mut exts = sni_ext("a.example.com");
    exts.extend_from_slice(&[0, 16, 0xff, 0xff]);
    let bytes = records(&hello_body(Some(exts)), 1 << 14);
    assert!(matches!(
        parse_client_hello(&bytes),
        ClientHelloParse::Malformed(_)
    ));
    // A name with a NUL byte is rejected, not passed on.
    let bytes = records(&hello_body(Some(sni_ext("a\0b.com"))), 1 << 14);
    assert!(matches!(
        parse_client_hello(&bytes),
        ClientHelloParse::Malformed(_)
    ));
}

#[test]
fn random_mutations_never_panic() {
    let base = sample();
    let mut rng = fastrand::Rng::with_seed(7);
    for _ in 0..20_000 {
        let mut bytes = base.clone();
        for _ in 0..rng.usize(1..6) {
            let i = rng.usize(..bytes.len());
            bytes[i] = rng.u8(..);
        }
        bytes.truncate(rng.usize(..=bytes.len()));
        let _ = parse_client_hello(&bytes);
        let noise: Vec<u8> = (0..rng.usize(..300)).map(|_| rng.u8(..)).collect();
        let _ = parse_client_hello(&noise);
    }
}

#[test]
fn parses_a_real_rustls_client_hello() {
    let mut roots = rustls::RootCertStore::empty();
    let ca = rcgen::generate_simple_self_signed(vec!["x".into()]).unwrap();
    roots.add(ca.cert.der().clone()).unwrap();
    let mut config = rustls::ClientConfig::builder_with_provider(crate::tls::provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec()];
    let name = rustls::pki_types::ServerName::try_from("api.example.com").unwrap();
    let mut conn = rustls::ClientConnection::new(Arc::new(config), name).unwrap();
    let mut bytes = Vec::new();
    while conn.wants_write() {
        conn.write_tls(&mut bytes).unwrap();
    }
    match parse_client_hello(&bytes) {
        ClientHelloParse::Complete(info) => {
            assert_eq!(info.sni.as_deref(), Some("api.example.com"));
            assert_eq!(info.alpn, vec![b"h2".to_vec()]);
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn peek_returns_every_byte_read_and_prefixed_stream_replays_them() {
    let bytes = sample();
    let (mut client, mut server) = tokio::io::duplex(64);
    let sent = bytes.clone();
    let writer = tokio::spawn(async move {
        use tokio::io::AsyncWriteExt;
        for chunk in sent.chunks(10) {
            client.write_all(chunk).await.unwrap();
        }
        client.write_all(b"after").await.unwrap();
        client
    });
    let peeked = peek_client_hello(&mut server, Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(peeked.info.sni.as_deref(), Some("shop.example.com"));
    assert!(bytes.starts_with(&peeked.bytes) || peeked.bytes.starts_with(&bytes));
    let _client = writer.await.unwrap();
    let mut replay = PrefixedStream::new(peeked.bytes, server);
    let mut all = vec![0u8; bytes.len() + 5];
    replay.read_exact(&mut all).await.unwrap();
    assert_eq!(&all[..bytes.len()], &bytes[..]);
    assert_eq!(&all[bytes.len()..], b"after");
}

#[tokio::test]
async fn peek_reports_plaintext_with_its_bytes_and_times_out_on_silence() {
    let (mut client, mut server) = tokio::io::duplex(64);
    tokio::io::AsyncWriteExt::write_all(&mut client, b"GET / HTTP/1.1\r\n")
        .await
        .unwrap();
    match peek_client_hello(&mut server, Duration::from_secs(5)).await {
        Err(PeekError::NotTls { first: b'G', bytes }) => assert!(bytes.starts_with(b"GET")),
        other => panic!("{other:?}"),
    }
    let (_quiet, mut server) = tokio::io::duplex(64);
    let err = peek_client_hello(&mut server, Duration::from_millis(100))
        .await
        .unwrap_err();
    assert!(matches!(err, PeekError::Timeout(_)), "{err}");
}
