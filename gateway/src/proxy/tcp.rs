//! TCP proxying for TCP servers and TLS PASSTHROUGH: route the connection (`tcp[]` by
//! port, `tls[]` by SNI), pick a destination by weight once per connection, connect to
//! the cluster and copy bytes both ways until either side closes. No route: close.

use std::sync::Arc;

use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};

use super::http::ConnInfo;
use super::ProxyState;
use crate::router::{pick_weighted, WeightedDestination};
use crate::upstream::SendContext;

/// Which rules route the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum L4 {
    /// `tcp[]` rules (TCP servers, TLS servers that terminate).
    Tcp,
    /// `tls[]` rules on the ClientHello's SNI; the bytes stay encrypted.
    Passthrough,
}

/// Proxies `downstream` to the destination its route picks; returns when both
/// directions are done or the connection could not be routed or connected.
pub async fn proxy<IO>(state: &Arc<ProxyState>, mut downstream: IO, info: &ConnInfo, l4: L4)
where
    IO: AsyncRead + AsyncWrite + Unpin,
{
    let snapshot = state.snapshot();
    let sni = info.sni.as_deref();
    let routed: Option<(&[WeightedDestination], u32)> = match l4 {
        L4::Tcp => snapshot
            .route_tcp(info.port, sni)
            .map(|(_, r)| (r.destinations.as_slice(), r.total_weight)),
        L4::Passthrough => sni
            .and_then(|sni| snapshot.route_tls(info.port, sni))
            .map(|(_, r)| (r.destinations.as_slice(), r.total_weight)),
    };
    let Some((dests, total)) = routed.filter(|(d, _)| !d.is_empty()) else {
        tracing::info!(
            port = info.port,
            remote = %info.remote,
            "closing {l4:?} connection: no route (SNI {})",
            sni.unwrap_or("none")
        );
        let _ = downstream.shutdown().await;
        return;
    };
    let dest = pick_weighted(dests, total, fastrand::u32(..));
    let Some(cluster) = snapshot
        .clusters
        .get(&dest.cluster)
        .or_else(|| state.local_clusters.get(&dest.cluster))
        .cloned()
    else {
        tracing::info!(port = info.port, "closing: no cluster {}", dest.cluster);
        return;
    };
    let ctx = SendContext {
        source_addr: Some(info.remote),
        local_addr: Some(info.local),
        ..Default::default()
    };
    let mut upstream = match state.upstream.connect_tcp(&cluster, &ctx).await {
        Ok((conn, _)) => conn,
        Err(e) => {
            tracing::info!(
                port = info.port,
                cluster = %cluster.name,
                "closing: {} ({})",
                e.body(),
                e.flag()
            );
            return;
        }
    };
    if let Err(e) = tokio::io::copy_bidirectional(&mut downstream, &mut upstream).await {
        tracing::debug!(port = info.port, cluster = %cluster.name, "tcp proxy ended: {e}");
    }
}
