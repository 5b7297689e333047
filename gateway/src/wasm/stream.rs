//! One HTTP stream through a plugin chain: request callbacks in chain order, response
//! callbacks in reverse (as Envoy runs encoder filters), pause/continue, body buffering,
//! HTTP calls while the stream waits, and the failure strategy when a plugin fails.

use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use futures_util::stream::{FuturesUnordered, StreamExt};
use http::{HeaderMap, StatusCode};

use super::abi::Action;
use super::callout::{CalloutError, CalloutResponse};
use super::instance::{Callback, PluginFailure, PluginInstance};
use super::plugin::LoadedPlugin;
use super::spec::FailStrategy;
use super::state::{CallResult, HttpExchange};
use super::types::{LocalResponse, RequestLine, StreamInfo, Verdict};

/// A body a plugin buffers (by pausing on chunks) may grow to this; beyond it the
/// stream answers 413.
pub const MAX_BUFFERED_BODY: usize = 32 << 20;

pub(super) enum SlotState {
    Active(Box<PluginInstance>),
    /// FAIL_OPEN after a failure: the stream goes on without this plugin.
    Skipped,
    /// The plugin failed before this stream reached it: answer 503 when it would run.
    FailClosed,
    Finished,
}

pub(super) struct Slot {
    pub plugin: Arc<LoadedPlugin>,
    pub state: SlotState,
    pub ctx: u32,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Dir {
    Request,
    Response,
}

enum Outcome {
    Continue,
    Pause,
    Respond(LocalResponse),
}

/// Per direction: where headers are held and which body is buffered at which slot.
#[derive(Default)]
struct DirState {
    /// Position (in this direction's order) of the plugin holding the headers.
    held_at: Option<usize>,
    /// The caller has not taken back headers it left with the stream.
    head_owed: bool,
    /// Position of the plugin buffering the body, and the data so far.
    buffered: Option<(usize, BytesMut)>,
}

/// A stream's plugin contexts. Each plugin instance is checked out of its pool for the
/// stream's lifetime and returned when the stream ends (on drop at the latest).
pub struct Stream {
    slots: Vec<Slot>,
    ex: Box<HttpExchange>,
    req: DirState,
    resp: DirState,
    finished: bool,
}

pub(super) fn fail_stream_response() -> LocalResponse {
    LocalResponse {
        status: StatusCode::SERVICE_UNAVAILABLE,
        headers: HeaderMap::new(),
        body: Bytes::new(),
        details: "wasm_fail_stream".into(),
        grpc_status: None,
    }
}

impl Stream {
    pub(super) fn new(slots: Vec<Slot>, info: StreamInfo) -> Stream {
        let ex = Box::new(HttpExchange {
            info: Some(Arc::new(info)),
            ..Default::default()
        });
        Stream {
            slots,
            ex,
            req: DirState::default(),
            resp: DirState::default(),
            finished: false,
        }
    }

    /// Plugins running on this stream (including skipped ones), in request order.
    pub fn plugin_names(&self) -> Vec<&str> {
        self.slots.iter().map(|s| s.plugin.name()).collect()
    }

    /// Request headers through every plugin. On `Verdict::Pause` the stream keeps the
    /// head (see `take_request_head`).
    pub async fn on_request_headers(
        &mut self,
        headers: &mut HeaderMap,
        line: &mut RequestLine,
        end_of_stream: bool,
    ) -> Verdict {
        std::mem::swap(headers, &mut self.ex.request_headers);
        std::mem::swap(line, &mut self.ex.request_line);
        self.ex.has_request_headers = true;
        let verdict = self.headers_from(Dir::Request, 0, end_of_stream).await;
        if matches!(verdict, Verdict::Pause) {
            self.req.head_owed = true;
        } else {
            // Give the head back, keeping a copy for response-phase and log reads.
            *headers = self.ex.request_headers.clone();
            *line = self.ex.request_line.clone();
        }
        verdict
    }

    /// After a request-headers `Pause`, once a body call returned `Continue`: the head
    /// as the plugins left it. `None` when nothing is owed.
    pub fn take_request_head(&mut self) -> Option<(HeaderMap, RequestLine)> {
        if !self.req.head_owed || self.req.held_at.is_some() {
            return None;
        }
        self.req.head_owed = false;
        Some((
            self.ex.request_headers.clone(),
            self.ex.request_line.clone(),
        ))
    }

    /// A request body chunk. `Continue`: forward `*body` (which may now hold earlier
    /// buffered chunks too). `Pause`: forward nothing yet.
    pub async fn on_request_body(&mut self, body: &mut Bytes, end_of_stream: bool) -> Verdict {
        self.body(Dir::Request, body, end_of_stream).await
    }

    pub async fn on_request_trailers(&mut self, trailers: &mut HeaderMap) -> Verdict {
        std::mem::swap(trailers, &mut self.ex.request_trailers);
        self.ex.has_request_trailers = true;
        let v = self.trailers(Dir::Request).await;
        std::mem::swap(trailers, &mut self.ex.request_trailers);
        self.ex.has_request_trailers = false;
        v
    }

    /// Response headers through every plugin in reverse order. Plugins may edit
    /// `:status`, which is written back to `status`.
    pub async fn on_response_headers(
        &mut self,
        headers: &mut HeaderMap,
        status: &mut StatusCode,
        end_of_stream: bool,
    ) -> Verdict {
        std::mem::swap(headers, &mut self.ex.response_headers);
        self.ex.status = Some(*status);
        let verdict = self.headers_from(Dir::Response, 0, end_of_stream).await;
        if matches!(verdict, Verdict::Pause) {
            self.resp.head_owed = true;
        } else {
            *headers = self.ex.response_headers.clone();
            *status = self.ex.status.unwrap_or(*status);
        }
        verdict
    }

    pub fn take_response_head(&mut self) -> Option<(HeaderMap, StatusCode)> {
        if !self.resp.head_owed || self.resp.held_at.is_some() {
            return None;
        }
        self.resp.head_owed = false;
        Some((
            self.ex.response_headers.clone(),
            self.ex.status.unwrap_or(StatusCode::OK),
        ))
    }

    pub async fn on_response_body(&mut self, body: &mut Bytes, end_of_stream: bool) -> Verdict {
        self.body(Dir::Response, body, end_of_stream).await
    }

    pub async fn on_response_trailers(&mut self, trailers: &mut HeaderMap) -> Verdict {
        std::mem::swap(trailers, &mut self.ex.response_trailers);
        self.ex.has_response_trailers = true;
        let v = self.trailers(Dir::Response).await;
        std::mem::swap(trailers, &mut self.ex.response_trailers);
        self.ex.has_response_trailers = false;
        v
    }

    /// Envoy's `response.code_details` for `on_log` (default `via_upstream`).
    pub fn set_response_code_details(&mut self, details: &str) {
        self.ex.response_code_details = details.to_string();
    }

    /// Ends the stream: `on_done`, `on_log`, `on_delete` on every plugin, and returns
    /// the instances to their pools. Dropping the stream does the same.
    pub fn on_log(&mut self) {
        if self.finished {
            return;
        }
        self.finished = true;
        for i in 0..self.slots.len() {
            let slot = &mut self.slots[i];
            let SlotState::Active(mut inst) =
                std::mem::replace(&mut slot.state, SlotState::Finished)
            else {
                continue;
            };
            std::mem::swap(inst.exchange(), &mut self.ex);
            inst.exchange().context_id = slot.ctx;
            let r = inst.finish_stream_context(slot.ctx, true);
            std::mem::swap(inst.exchange(), &mut self.ex);
            match r {
                Ok(()) => slot.plugin.release(inst),
                Err(e) => slot.plugin.record_failure(&e),
            }
        }
    }

    fn order(&self, dir: Dir, pos: usize) -> usize {
        match dir {
            Dir::Request => pos,
            Dir::Response => self.slots.len() - 1 - pos,
        }
    }

    fn dir_state(&mut self, dir: Dir) -> &mut DirState {
        match dir {
            Dir::Request => &mut self.req,
            Dir::Response => &mut self.resp,
        }
    }

    fn header_count(&self, dir: Dir) -> usize {
        match dir {
            Dir::Request => self.ex.request_headers.len() + 4,
            Dir::Response => self.ex.response_headers.len() + 1,
        }
    }

    async fn headers_from(&mut self, dir: Dir, from: usize, end_of_stream: bool) -> Verdict {
        let cb = if dir == Dir::Request {
            Callback::RequestHeaders
        } else {
            Callback::ResponseHeaders
        };
        for pos in from..self.slots.len() {
            let count = self.header_count(dir);
            match self
                .run_slot(self.order(dir, pos), cb, count, end_of_stream)
                .await
            {
                Outcome::Continue => {}
                Outcome::Respond(r) => return Verdict::LocalResponse(r),
                // Nothing more will arrive to resume a stream that ended: go on.
                Outcome::Pause if end_of_stream => {}
                Outcome::Pause => {
                    self.dir_state(dir).held_at = Some(pos);
                    return Verdict::Pause;
                }
            }
        }
        Verdict::Continue
    }

    async fn body(&mut self, dir: Dir, body: &mut Bytes, end_of_stream: bool) -> Verdict {
        let cb = if dir == Dir::Request {
            Callback::RequestBody
        } else {
            Callback::ResponseBody
        };
        let mut chunk = std::mem::take(body);
        let mut pos = 0;
        loop {
            let limit = self
                .dir_state(dir)
                .held_at
                .map_or(self.slots.len(), |h| h + 1);
            if pos >= limit {
                let Some(held) = self.dir_state(dir).held_at.take() else {
                    break;
                };
                // The holder let the body through: its headers move on first.
                match self.headers_from(dir, held + 1, false).await {
                    Verdict::Continue => continue,
                    Verdict::Pause => {
                        self.dir_state(dir).buffered = Some((held + 1, BytesMut::from(&chunk[..])));
                        return Verdict::Pause;
                    }
                    other => return other,
                }
            }
            if let Some((at, _)) = &self.dir_state(dir).buffered {
                if *at == pos {
                    let (_, mut buf) = self.dir_state(dir).buffered.take().unwrap_or_default();
                    buf.extend_from_slice(&chunk);
                    chunk = buf.freeze();
                }
            }
            self.set_body(dir, chunk);
            let outcome = self
                .run_slot(self.order(dir, pos), cb, self.body_len(dir), end_of_stream)
                .await;
            chunk = self.take_body(dir);
            match outcome {
                Outcome::Respond(r) => return Verdict::LocalResponse(r),
                Outcome::Pause if !end_of_stream => {
                    if chunk.len() > MAX_BUFFERED_BODY {
                        return Verdict::LocalResponse(LocalResponse {
                            status: StatusCode::PAYLOAD_TOO_LARGE,
                            headers: HeaderMap::new(),
                            body: Bytes::new(),
                            details: "wasm_body_too_large".into(),
                            grpc_status: None,
                        });
                    }
                    self.dir_state(dir).buffered = Some((pos, BytesMut::from(&chunk[..])));
                    return Verdict::Pause;
                }
                Outcome::Pause | Outcome::Continue => {}
            }
            pos += 1;
        }
        *body = chunk;
        Verdict::Continue
    }

    fn set_body(&mut self, dir: Dir, b: Bytes) {
        match dir {
            Dir::Request => self.ex.request_body = b,
            Dir::Response => self.ex.response_body = b,
        }
    }

    fn take_body(&mut self, dir: Dir) -> Bytes {
        match dir {
            Dir::Request => std::mem::take(&mut self.ex.request_body),
            Dir::Response => std::mem::take(&mut self.ex.response_body),
        }
    }

    fn body_len(&self, dir: Dir) -> usize {
        match dir {
            Dir::Request => self.ex.request_body.len(),
            Dir::Response => self.ex.response_body.len(),
        }
    }

    async fn trailers(&mut self, dir: Dir) -> Verdict {
        let cb = if dir == Dir::Request {
            Callback::RequestTrailers
        } else {
            Callback::ResponseTrailers
        };
        for pos in 0..self.slots.len() {
            let count = match dir {
                Dir::Request => self.ex.request_trailers.len(),
                Dir::Response => self.ex.response_trailers.len(),
            };
            if let Outcome::Respond(r) = self.run_slot(self.order(dir, pos), cb, count, true).await
            {
                return Verdict::LocalResponse(r);
            }
        }
        Verdict::Continue
    }

    /// Runs one plugin's callback, then any HTTP calls it made while it holds the
    /// stream, until it resumes, answers, or has nothing left in flight.
    async fn run_slot(
        &mut self,
        index: usize,
        cb: Callback,
        count: usize,
        end_of_stream: bool,
    ) -> Outcome {
        let slot = &mut self.slots[index];
        let inst = match &mut slot.state {
            SlotState::Active(inst) => inst,
            SlotState::FailClosed => return Outcome::Respond(fail_stream_response()),
            SlotState::Skipped | SlotState::Finished => return Outcome::Continue,
        };
        std::mem::swap(inst.exchange(), &mut self.ex);
        let ex = inst.exchange();
        ex.context_id = slot.ctx;
        ex.resumed = false;
        ex.local_response = None;
        let mut result = inst.stream_callback(cb, slot.ctx, count, end_of_stream);
        if let Ok(Action::Pause) = result {
            if inst.has_callouts() {
                result = run_callouts(inst, slot.ctx).await.map(|()| {
                    if inst.exchange().resumed {
                        Action::Continue
                    } else {
                        Action::Pause
                    }
                });
            }
        }
        std::mem::swap(inst.exchange(), &mut self.ex);
        match result {
            Err(failure) => self.fail(index, failure),
            Ok(_) if self.ex.local_response.is_some() => Outcome::Respond(
                self.ex
                    .local_response
                    .take()
                    .unwrap_or_else(fail_stream_response),
            ),
            Ok(Action::Continue) => Outcome::Continue,
            Ok(Action::Pause) if self.ex.resumed => Outcome::Continue,
            Ok(Action::Pause) => Outcome::Pause,
        }
    }

    fn fail(&mut self, index: usize, failure: PluginFailure) -> Outcome {
        let slot = &mut self.slots[index];
        slot.plugin.record_failure(&failure);
        match slot.plugin.spec.fail_strategy {
            FailStrategy::FailOpen => {
                slot.state = SlotState::Skipped;
                Outcome::Continue
            }
            FailStrategy::FailClose | FailStrategy::FailReload => {
                slot.state = SlotState::FailClosed;
                Outcome::Respond(fail_stream_response())
            }
        }
    }
}

impl Drop for Stream {
    fn drop(&mut self) {
        self.on_log();
    }
}

/// Starts the instance's pending HTTP calls and delivers each response as it arrives.
/// For a stream context it stops as soon as the plugin resumes or answers (calls still
/// in flight are cancelled); for the root context it runs until none are left.
pub(super) async fn run_callouts(inst: &mut PluginInstance, ctx: u32) -> Result<(), PluginFailure> {
    let callout = inst.callout();
    let mut inflight = FuturesUnordered::new();
    loop {
        for c in inst.take_callouts() {
            let fut = callout.call(&c.upstream, c.request, c.trailers, c.timeout);
            let (token, context_id, timeout) = (c.token, c.context_id, c.timeout);
            inflight.push(async move {
                let r = match tokio::time::timeout(timeout, fut).await {
                    Ok(r) => r,
                    Err(_) => Err(CalloutError::Timeout),
                };
                (token, context_id, r)
            });
        }
        let Some((token, context_id, result)) = inflight.next().await else {
            return Ok(());
        };
        let call = match result {
            Ok(CalloutResponse {
                status,
                headers,
                body,
                trailers,
            }) => CallResult {
                status: Some(status),
                headers,
                body,
                trailers,
            },
            Err(e) => {
                tracing::debug!(error = %e, "plugin HTTP call failed");
                CallResult::default()
            }
        };
        let counts = (
            call.headers.len() + call.status.map_or(0, |_| 1),
            call.body.len(),
            call.trailers.len(),
        );
        inst.set_call_response(Some(call));
        let r = inst.http_call_response(context_id, token, counts.0, counts.1, counts.2);
        inst.set_call_response(None);
        r?;
        let ex = inst.exchange();
        if ctx != 1 && (ex.resumed || ex.local_response.is_some()) {
            inst.take_callouts();
            return Ok(());
        }
    }
}
