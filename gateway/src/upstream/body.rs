//! The upstream response body: hyper's body plus the request's place in the cluster's
//! counters, released when the body ends or is dropped (so least-request, circuit
//! breaking and idle timeouts see requests that are still streaming). An HTTP/1.1
//! connection returns to its pool the moment its response body ends.

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

    fn finish(&mut self) {
        if let Some(active) = self.active.take() {
            active.complete();
        }
    }
}

impl Drop for UpstreamBody {
    /// An empty body (HEAD, 204, `content-length: 0`) is complete without being read.
    fn drop(&mut self) {
        if self.inner.is_end_stream() {
            self.finish();
        }
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
        match &polled {
            Poll::Ready(None) => self.finish(),
            Poll::Ready(Some(Err(_))) => self.active = None,
            _ => {}
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
