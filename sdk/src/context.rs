//! The proxy-wasm contexts behind a [`Plugin`]: the root context parses the config once
//! in `on_configure`; each HTTP context turns the plugin's `Result<Decision>` into
//! proxy-wasm actions, reads bodies when asked, and runs HTTP-call continuations.

use std::collections::BTreeMap;
use std::rc::Rc;

use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, BufferType, ContextType};

use crate::callout::{read_response, Pending};
use crate::config::{self, OnError};
use crate::{Decision, Error, Plugin, Reply, Request, Response, Result};

fn plugin_name() -> String {
    hostcalls::get_property(vec!["plugin_name"])
        .ok()
        .flatten()
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| "plugin".into())
}

pub(crate) struct Root<P> {
    plugin: Option<Rc<P>>,
    on_error: OnError,
}

impl<P: Plugin> Root<P> {
    pub fn new(_context_id: u32) -> Root<P> {
        Root {
            plugin: None,
            on_error: P::ON_ERROR,
        }
    }
}

impl<P: Plugin> Context for Root<P> {}

impl<P: Plugin> RootContext for Root<P> {
    fn on_configure(&mut self, _size: usize) -> bool {
        let raw = hostcalls::get_buffer(BufferType::PluginConfiguration, 0, usize::MAX)
            .ok()
            .flatten()
            .unwrap_or_default();
        let (config, on_error) = match config::parse::<P::Config>(&raw, P::ON_ERROR) {
            Ok(parsed) => parsed,
            Err(e) => {
                log::error!("{}: invalid pluginConfig: {e}", plugin_name());
                return false;
            }
        };
        match P::configure(config) {
            Ok(plugin) => {
                self.plugin = Some(Rc::new(plugin));
                self.on_error = on_error;
                true
            }
            Err(e) => {
                log::error!("{}: pluginConfig rejected: {e}", plugin_name());
                false
            }
        }
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(Http {
            plugin: self.plugin.clone(),
            on_error: self.on_error,
            vars: BTreeMap::new(),
            pending: None,
            request_ended: false,
            reading_request_body: false,
            reading_response_body: false,
        }))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

/// Where a decision was made: it decides what "continue" means.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Stage {
    RequestHeaders,
    RequestBody,
    /// A call's continuation: the request is paused and must be resumed explicitly.
    CallResponse,
    ResponseHeaders,
    ResponseBody,
}

struct Http<P> {
    plugin: Option<Rc<P>>,
    on_error: OnError,
    vars: BTreeMap<String, String>,
    pending: Option<Pending>,
    /// The request had no body (end of stream with the headers).
    request_ended: bool,
    reading_request_body: bool,
    reading_response_body: bool,
}

impl<P: Plugin> Http<P> {
    fn plugin(&self) -> Result<Rc<P>> {
        // The host only creates streams for a configured plugin; another host might not.
        self.plugin.clone().ok_or_else(|| {
            Error::new("the plugin is not configured (its pluginConfig was rejected)")
        })
    }

    fn with_request(
        &mut self,
        f: impl FnOnce(&mut Request) -> Result<Decision>,
    ) -> Result<Decision> {
        let mut req = Request::from_host(std::mem::take(&mut self.vars));
        let r = f(&mut req);
        self.vars = req.vars;
        if let Some(p) = req.pending {
            self.pending = Some(p);
        }
        r
    }

    fn run_request_body(&mut self, body: Vec<u8>) -> Result<Decision> {
        let plugin = self.plugin()?;
        let len = body.len();
        self.with_request(|req| {
            req.body_len = Some(len);
            plugin.on_request_body(req, &body)
        })
    }

    /// Applies a request-side decision. `Continue` at `CallResponse` resumes the request.
    fn apply_request(&mut self, result: Result<Decision>, stage: Stage) -> Action {
        let decision = match result {
            Ok(d) => d,
            Err(e) => return self.failed(e, stage),
        };
        match decision {
            Decision::Continue => self.go_on(stage),
            Decision::Respond(reply) => self.respond(&reply),
            Decision::AwaitCall if self.pending.is_some() => Action::Pause,
            Decision::AwaitCall => self.failed(
                Error::new(
                    "Decision::AwaitCall without a call: use the value Request::call returns",
                ),
                stage,
            ),
            Decision::ReadBody if stage == Stage::RequestBody => self.go_on(stage),
            Decision::ReadBody if self.request_ended => {
                let r = self.run_request_body(Vec::new());
                self.apply_request(r, stage)
            }
            Decision::ReadBody => {
                self.reading_request_body = true;
                Action::Pause
            }
        }
    }

    fn apply_response(&mut self, result: Result<Decision>, stage: Stage, ended: bool) -> Action {
        match result {
            Err(e) => self.failed(e, stage),
            Ok(Decision::Continue) | Ok(Decision::AwaitCall) => Action::Continue,
            Ok(Decision::Respond(reply)) => self.respond(&reply),
            Ok(Decision::ReadBody) if stage == Stage::ResponseBody => Action::Continue,
            Ok(Decision::ReadBody) if ended => {
                let r = self.run_response_body(Vec::new());
                self.apply_response(r, Stage::ResponseBody, true)
            }
            Ok(Decision::ReadBody) => {
                self.reading_response_body = true;
                Action::Pause
            }
        }
    }

    fn run_response_body(&mut self, body: Vec<u8>) -> Result<Decision> {
        let plugin = self.plugin()?;
        let mut resp = Response::from_host(std::mem::take(&mut self.vars));
        resp.body_len = Some(body.len());
        let r = plugin.on_response_body(&mut resp, &body);
        self.vars = resp.vars;
        r
    }

    fn go_on(&self, stage: Stage) -> Action {
        if stage == Stage::CallResponse {
            if let Err(s) = hostcalls::resume_http_request() {
                log::error!("{}: cannot resume the request: {s:?}", plugin_name());
            }
        }
        Action::Continue
    }

    fn respond(&self, reply: &Reply) -> Action {
        if let Err(e) = reply.send() {
            log::error!("{}: {e}", plugin_name());
        }
        Action::Pause
    }

    /// A callback returned `Err`: log it, then deny or go on per `on_error`.
    fn failed(&self, e: Error, stage: Stage) -> Action {
        log::error!("{}: {e}", plugin_name());
        match self.on_error {
            OnError::Deny => self.respond(&Reply::json(
                500,
                &serde_json::json!({"error": "plugin error"}),
            )),
            OnError::Continue => self.go_on(stage),
        }
    }
}

impl<P: Plugin> Context for Http<P> {
    fn on_http_call_response(
        &mut self,
        token: u32,
        _headers: usize,
        body_size: usize,
        _trailers: usize,
    ) {
        let Some(pending) = self.pending.take_if(|p| p.token == token) else {
            return;
        };
        let result = read_response(body_size);
        let r = self.with_request(|req| (pending.then)(req, result));
        let _ = self.apply_request(r, Stage::CallResponse);
    }
}

impl<P: Plugin> HttpContext for Http<P> {
    fn on_http_request_headers(&mut self, _headers: usize, end_of_stream: bool) -> Action {
        self.request_ended = end_of_stream;
        let r = match self.plugin() {
            Ok(plugin) => self.with_request(|req| plugin.on_request(req)),
            Err(e) => Err(e),
        };
        self.apply_request(r, Stage::RequestHeaders)
    }

    fn on_http_request_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        if !self.reading_request_body {
            return Action::Continue;
        }
        if !end_of_stream {
            // Pausing on a chunk makes the proxy buffer it; the last call sees it all.
            return Action::Pause;
        }
        self.reading_request_body = false;
        let body = hostcalls::get_buffer(BufferType::HttpRequestBody, 0, body_size)
            .ok()
            .flatten()
            .unwrap_or_default();
        let r = self.run_request_body(body);
        self.apply_request(r, Stage::RequestBody)
    }

    fn on_http_response_headers(&mut self, _headers: usize, end_of_stream: bool) -> Action {
        let r = match self.plugin() {
            Ok(plugin) => {
                let mut resp = Response::from_host(std::mem::take(&mut self.vars));
                let r = plugin.on_response(&mut resp);
                self.vars = resp.vars;
                r
            }
            Err(e) => Err(e),
        };
        self.apply_response(r, Stage::ResponseHeaders, end_of_stream)
    }

    fn on_http_response_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        if !self.reading_response_body {
            return Action::Continue;
        }
        if !end_of_stream {
            return Action::Pause;
        }
        self.reading_response_body = false;
        let body = hostcalls::get_buffer(BufferType::HttpResponseBody, 0, body_size)
            .ok()
            .flatten()
            .unwrap_or_default();
        let r = self.run_response_body(body);
        self.apply_response(r, Stage::ResponseBody, true)
    }
}
