use std::collections::HashSet;
use std::time::{Duration, Instant, SystemTime};

use meshgate::mesh::{client_config, MtlsMode};

use crate::support::*;

#[tokio::test]
async fn short_lived_certificates_are_renewed_and_connections_keep_working() {
    let ca = mesh_ca("renew");
    let lifetime = Duration::from_secs(2);
    let server = workload(&ca, "default", "server", lifetime);
    let client = workload(&ca, "default", "client", lifetime);
    let _renew_server = server.spawn_renewal();
    let _renew_client = client.spawn_renewal();
    let first = server.current();
    let (addr, mut seen) = inbound(&server, MtlsMode::Strict).await;
    let config = client_config(&client, Some(id("default", "server"))).unwrap();

    let mut established = dial(addr, config.clone()).await.unwrap();
    ping(&mut established).await.unwrap();

    // Handshake until well past the first certificates' expiry: each must succeed, so the
    // later ones necessarily ran on renewed certificates (on both sides). A fresh client
    // config per connection forces full handshakes (no session resumption).
    let start = Instant::now();
    let mut server_leaves = HashSet::new();
    while SystemTime::now() < first.not_after + Duration::from_secs(1) {
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "first certificate never expired?"
        );
        let fresh = client_config(&client, Some(id("default", "server"))).unwrap();
        let mut conn = dial(addr, fresh).await.unwrap();
        ping(&mut conn).await.unwrap();
        server_leaves.insert(conn.get_ref().1.peer_certificates().unwrap()[0].to_vec());
        assert!(matches!(next(&mut seen).await, Seen::Mtls(_)));
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(
        server_leaves.len() >= 2,
        "the server certificate never changed"
    );
    assert_ne!(server.current().serial, first.serial);
    assert!(server.current().not_after > first.not_after);
    // A connection made with the first certificates is untouched by renewals.
    ping(&mut established).await.unwrap();
}

#[tokio::test]
async fn renew_now_publishes_a_new_certificate() {
    let ca = mesh_ca("renew-now");
    let certs = workload(&ca, "default", "api", Duration::from_secs(3600));
    let before = certs.current();
    let renewed = certs.renew().unwrap();
    assert_ne!(renewed.serial, before.serial);
    assert_eq!(certs.current().serial, renewed.serial);
    let half = certs.renew_at().duration_since(SystemTime::now()).unwrap();
    assert!(
        half > Duration::from_secs(1700) && half <= Duration::from_secs(1800),
        "{half:?}"
    );
}
