//! Istio's TCP traffic shifting task through `meshgate gateway`: a TCP server on a
//! Gateway port, `tcp[]` routes weighted per connection, and connections without a
//! route closed.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use common::yaml::{destination_rule, service, virtual_service};
use common::{eventually, share, Gateway, TcpEcho};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

fn gateway() -> String {
    "apiVersion: networking.istio.io/v1
kind: Gateway
metadata:
  name: tcp-echo-gateway
spec:
  selector:
    istio: ingressgateway
  servers:
  - port:
      number: 31400
      name: tcp
      protocol: TCP
    hosts:
    - \"*\"
  - port:
      number: 31401
      name: tcp-unrouted
      protocol: TCP
    hosts:
    - \"*\"
---
"
    .to_string()
}

fn tcp_echo_vs(v1: u32, v2: u32) -> String {
    virtual_service(
        "tcp-echo",
        &["*"],
        &["tcp-echo-gateway"],
        &format!(
            "  tcp:
  - match:
    - port: 31400
    route:
    - destination:
        host: tcp-echo
        port:
          number: 9000
        subset: v1
      weight: {v1}
    - destination:
        host: tcp-echo
        port:
          number: 9000
        subset: v2
      weight: {v2}
"
        ),
    )
}

/// Opens a connection, sends `lines`, returns the backend names that answered (None
/// when the connection was closed without an answer).
async fn converse(addr: SocketAddr, lines: &[&str]) -> Option<Vec<String>> {
    let tcp = TcpStream::connect(addr).await.unwrap();
    let (r, mut w) = tcp.into_split();
    let mut reader = BufReader::new(r).lines();
    let mut names = Vec::new();
    for line in lines {
        w.write_all(format!("{line}\n").as_bytes()).await.ok()?;
        let answer = tokio::time::timeout(Duration::from_secs(10), reader.next_line())
            .await
            .expect("no answer within 10 s")
            .ok()??;
        let (name, echoed) = answer.split_once(' ').unwrap();
        assert_eq!(echoed, *line);
        names.push(name.to_string());
    }
    Some(names)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_traffic_shifting_80_20_per_connection() {
    let one = TcpEcho::start("one").await;
    let two = TcpEcho::start("two").await;
    let base = gateway()
        + &service(
            "tcp-echo",
            9000,
            "TCP",
            &[("v1", one.port()), ("v2", two.port())],
        )
        + &destination_rule("tcp-echo", &["v1", "v2"], "");
    let gw = Gateway::with_config(&(base.clone() + &tcp_echo_vs(100, 0)))
        .ports(&[31400, 31401])
        .start()
        .await;
    let addr = gw.addr(31400);
    for _ in 0..20 {
        assert_eq!(converse(addr, &["hello"]).await.unwrap(), ["one"]);
    }

    gw.write_config(&(base + &tcp_echo_vs(80, 20)));
    let applied = eventually(Duration::from_secs(10), || async move {
        converse(addr, &["probe"]).await.unwrap() == ["two"]
    })
    .await;
    assert!(applied, "80/20 never applied:\n{}", gw.log());

    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for _ in 0..250 {
        let mut set = tokio::task::JoinSet::new();
        for _ in 0..4 {
            set.spawn(converse(addr, &["a", "b", "c"]));
        }
        while let Some(names) = set.join_next().await {
            let names = names.unwrap().unwrap();
            // Weights apply per connection: every line of one connection goes to one backend.
            assert!(names.iter().all(|n| *n == names[0]), "{names:?}");
            *counts.entry(names[0].clone()).or_insert(0) += 1;
        }
    }
    let v1 = share(counts["one"], 1000);
    assert!((v1 - 0.8).abs() <= 0.05, "80/20 gave {counts:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tcp_connection_without_route_is_closed() {
    let one = TcpEcho::start("one").await;
    let yaml = gateway()
        + &service("tcp-echo", 9000, "TCP", &[("v1", one.port())])
        + &destination_rule("tcp-echo", &["v1", "v2"], "")
        + &tcp_echo_vs(100, 0);
    let gw = Gateway::with_config(&yaml)
        .ports(&[31400, 31401])
        .start()
        .await;
    // Waiting for the ports to accept made one routed connection on 31400; let it land.
    let connections = || one.connections.load(std::sync::atomic::Ordering::SeqCst);
    assert!(eventually(Duration::from_secs(5), || async { connections() == 1 }).await);
    let before = connections();
    assert_eq!(converse(gw.addr(31401), &["hello"]).await, None);
    assert_eq!(
        connections(),
        before,
        "an unrouted connection reached a backend"
    );
    assert_eq!(converse(gw.addr(31400), &["hello"]).await.unwrap(), ["one"]);
}
