//! Request bodies that may need to go upstream more than once (retries, mirrors), and
//! response bodies that report their size when they finish (metrics, access log).

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body as HttpBody, Frame, SizeHint};
use http_body_util::BodyExt;

use super::local_reply::{full, Body, BoxError};

/// Bodies up to this size are buffered so a retry or mirror can send them again;
/// larger or unsized ones stream through once.
pub const REPLAY_LIMIT: u64 = 64 * 1024;

pub enum RequestBody {
    /// Fully read; can be sent any number of times.
    Replayable(Bytes),
    /// Streams through once.
    Streaming(Body),
}

impl RequestBody {
    /// Buffers `body` when `want_replay` and it is small and sized; streams it otherwise.
    pub async fn prepare(body: Body, want_replay: bool) -> Result<RequestBody, BoxError> {
        if body.is_end_stream() {
            return Ok(RequestBody::Replayable(Bytes::new()));
        }
        let small = body.size_hint().upper().is_some_and(|u| u <= REPLAY_LIMIT);
        if want_replay && small {
            Ok(RequestBody::Replayable(body.collect().await?.to_bytes()))
        } else {
            Ok(RequestBody::Streaming(body))
        }
    }

    pub fn replayable(&self) -> Option<&Bytes> {
        match self {
            RequestBody::Replayable(b) => Some(b),
            RequestBody::Streaming(_) => None,
        }
    }

    /// A body for one attempt: a copy when replayable, else the stream itself (once).
    pub fn take_for_attempt(&mut self) -> Body {
        match self {
            RequestBody::Replayable(b) => full(b.clone()),
            RequestBody::Streaming(_) => {
                let RequestBody::Streaming(body) =
                    std::mem::replace(self, RequestBody::Replayable(Bytes::new()))
                else {
                    return full(Bytes::new());
                };
                body
            }
        }
    }

    pub fn len_hint(&self) -> u64 {
        match self {
            RequestBody::Replayable(b) => b.len() as u64,
            RequestBody::Streaming(i) => i.size_hint().lower(),
        }
    }
}

/// Wraps a response body and calls `done(bytes, completed, grpc_status)` exactly once: at the end of
/// the stream, on error, or when the client goes away (dropped).
pub struct ObservedBody<F: FnOnce(u64, bool, Option<u32>) + Send + 'static> {
    inner: Body,
    bytes: u64,
    grpc_status: Option<u32>,
    done: Option<F>,
}

impl<F: FnOnce(u64, bool, Option<u32>) + Send + 'static> ObservedBody<F> {
    pub fn new(inner: Body, done: F) -> Self {
        ObservedBody {
            inner,
            bytes: 0,
            grpc_status: None,
            done: Some(done),
        }
    }

    fn finish(&mut self, completed: bool) {
        if let Some(done) = self.done.take() {
            done(self.bytes, completed, self.grpc_status);
        }
    }
}

impl<F: FnOnce(u64, bool, Option<u32>) + Send + 'static> Unpin for ObservedBody<F> {}

impl<F: FnOnce(u64, bool, Option<u32>) + Send + 'static> HttpBody for ObservedBody<F> {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(d) = frame.data_ref() {
                    this.bytes += d.len() as u64;
                } else if let Some(t) = frame.trailers_ref() {
                    this.grpc_status = super::retry::grpc_status_of(t);
                }
                if this.inner.is_end_stream() {
                    this.finish(true);
                }
            }
            Poll::Ready(Some(Err(_))) => this.finish(false),
            Poll::Ready(None) => this.finish(true),
            Poll::Pending => {}
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

impl<F: FnOnce(u64, bool, Option<u32>) + Send + 'static> Drop for ObservedBody<F> {
    fn drop(&mut self) {
        let completed = self.inner.is_end_stream();
        self.finish(completed);
    }
}
