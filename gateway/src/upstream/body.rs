//! The upstream response body: hyper's body plus the request's place in the cluster's
//! counters, released when the body ends or is dropped (so least-request, circuit
//! breaking and idle timeouts see requests that are still streaming).

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;

use super::cluster::ActiveRequest;

pub struct UpstreamBody {
    inner: Incoming,
    active: Option<ActiveRequest>,
}

impl UpstreamBody {
    pub(crate) fn new(inner: Incoming, active: ActiveRequest) -> UpstreamBody {
        UpstreamBody {
            inner,
            active: Some(active),
        }
    }

    /// The bare hyper body; the request stops counting as active now.
    pub fn into_incoming(self) -> Incoming {
        self.inner
    }
}

impl std::fmt::Debug for UpstreamBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpstreamBody")
            .field("active", &self.active.is_some())
            .finish()
    }
}

impl Body for UpstreamBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if let Poll::Ready(None | Some(Err(_))) = &polled {
            self.active = None;
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
