//! `PluginHarness`: one plugin loaded into Meshgate's `PluginChain` on a private
//! single-threaded runtime, driven the way the proxy drives it.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures_util::future::BoxFuture;
use http::HeaderMap;
use meshgate::wasm::{
    plugin_metrics, precompile, sha256_hex, CalloutError, CalloutResponse, FailStrategy,
    HttpCallout, MetricValue, PluginChain, PluginSpec, PrecompiledModule, RequestLine, StreamInfo,
    Verdict,
};

use crate::capture::Captured;
use crate::exchange::{Forwarded, LocalReply, Outcome, Request, Response};
use crate::LogLine;

type Handler = Arc<dyn Fn(http::Request<Bytes>) -> Option<http::Response<Bytes>> + Send + Sync>;

/// A plugin that failed to load: why, and what it logged on the way.
#[derive(Debug)]
pub struct LoadError {
    pub reason: String,
    pub logs: Vec<LogLine>,
}

impl std::fmt::Display for LoadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "the plugin failed to load: {}", self.reason)?;
        for l in &self.logs {
            write!(f, "\n  {l}")?;
        }
        Ok(())
    }
}

impl std::error::Error for LoadError {}

/// Options for loading a plugin: config, root id, fail strategy, fake upstreams for
/// its HTTP calls.
pub struct HarnessBuilder {
    wasm: std::io::Result<Vec<u8>>,
    path: String,
    config: serde_json::Value,
    root_id: String,
    vm_id: Option<String>,
    fail_strategy: FailStrategy,
    upstreams: HashMap<String, Handler>,
    client: SocketAddr,
}

impl HarnessBuilder {
    /// `pluginConfig`, as in the WasmPlugin (`null` for none).
    pub fn config(mut self, config: serde_json::Value) -> Self {
        self.config = config;
        self
    }

    /// `pluginName` (the root id).
    pub fn root_id(mut self, root_id: &str) -> Self {
        self.root_id = root_id.to_string();
        self
    }

    /// Harnesses with the same vm_id share `shared` data; each gets its own by default.
    pub fn vm_id(mut self, vm_id: &str) -> Self {
        self.vm_id = Some(vm_id.to_string());
        self
    }

    pub fn fail_strategy(mut self, s: FailStrategy) -> Self {
        self.fail_strategy = s;
        self
    }

    /// Answers the plugin's HTTP calls to `upstream` with `handler`.
    pub fn upstream(
        mut self,
        upstream: &str,
        handler: impl Fn(http::Request<Bytes>) -> http::Response<Bytes> + Send + Sync + 'static,
    ) -> Self {
        self.upstreams
            .insert(upstream.to_string(), Arc::new(move |r| Some(handler(r))));
        self
    }

    /// A known upstream whose calls all fail (unreachable, reset): the plugin gets a
    /// response with no status, as from a real failed call.
    pub fn failing_upstream(mut self, upstream: &str) -> Self {
        self.upstreams
            .insert(upstream.to_string(), Arc::new(|_| None));
        self
    }

    /// The client address requests come from unless they set their own.
    pub fn client(mut self, addr: SocketAddr) -> Self {
        self.client = addr;
        self
    }

    pub fn build(self) -> Result<PluginHarness, LoadError> {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        let logs = Captured::default();
        let wasm = self.wasm.map_err(|e| LoadError {
            reason: format!("reading {}: {e}", self.path),
            logs: Vec::new(),
        })?;
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| LoadError {
                reason: format!("starting a runtime: {e}"),
                logs: Vec::new(),
            })?;
        keep_compiled(&wasm);
        let name = match self.root_id.as_str() {
            "" => "test/plugin".to_string(),
            r => format!("test/{r}"),
        };
        let mut spec = PluginSpec::new(name.clone(), wasm);
        spec.root_id = self.root_id;
        spec.vm_id = self
            .vm_id
            .unwrap_or_else(|| format!("{name}#{}", NEXT.fetch_add(1, Ordering::Relaxed)));
        spec.fail_strategy = self.fail_strategy;
        spec.config = match &self.config {
            serde_json::Value::Null => Vec::new(),
            v => v.to_string().into_bytes(),
        };
        let callouts = Arc::new(FakeUpstreams(self.upstreams));
        let dispatch = logs.dispatch();
        let chain = tracing::dispatcher::with_default(&dispatch, || {
            let _enter = rt.enter();
            PluginChain::new(vec![spec], callouts)
        })
        .map_err(|errors| LoadError {
            reason: errors
                .into_iter()
                .map(|(_, e)| e)
                .collect::<Vec<_>>()
                .join("; "),
            logs: logs.lines(),
        })?;
        Ok(PluginHarness {
            chain,
            rt,
            logs,
            dispatch,
            client: self.client,
        })
    }
}

/// Keeps each module's compile for the whole test process: compiling takes seconds in
/// a debug build, and every test loads the same module again.
fn keep_compiled(wasm: &[u8]) {
    static KEPT: OnceLock<Mutex<HashMap<String, PrecompiledModule>>> = OnceLock::new();
    let sha = sha256_hex(wasm);
    let mut kept = KEPT
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    if let std::collections::hash_map::Entry::Vacant(slot) = kept.entry(sha) {
        // A module that does not compile is reported by the chain's own load below.
        if let Ok(m) = precompile(wasm) {
            slot.insert(m);
        }
    }
}

struct FakeUpstreams(HashMap<String, Handler>);

impl HttpCallout for FakeUpstreams {
    fn has_upstream(&self, upstream: &str) -> bool {
        self.0.contains_key(upstream)
    }

    fn call(
        &self,
        upstream: &str,
        request: http::Request<Bytes>,
        trailers: HeaderMap,
        _: Duration,
    ) -> BoxFuture<'static, Result<CalloutResponse, CalloutError>> {
        let handler = self.0.get(upstream).cloned();
        let upstream = upstream.to_string();
        Box::pin(async move {
            let Some(handler) = handler else {
                return Err(CalloutError::UnknownUpstream(upstream));
            };
            let Some(response) = handler(request) else {
                return Err(CalloutError::Failed(
                    "the test upstream failed the call".into(),
                ));
            };
            let (parts, body) = response.into_parts();
            Ok(CalloutResponse {
                status: parts.status,
                headers: parts.headers,
                body,
                trailers,
            })
        })
    }
}

/// A loaded plugin. Each `request`/`exchange` is a new stream through it.
pub struct PluginHarness {
    chain: PluginChain,
    rt: tokio::runtime::Runtime,
    logs: Captured,
    dispatch: tracing::Dispatch,
    client: SocketAddr,
}

impl PluginHarness {
    /// Loads the `.wasm` at `path` with `pluginConfig` = `config`.
    pub fn load(
        path: impl AsRef<Path>,
        config: serde_json::Value,
    ) -> Result<PluginHarness, LoadError> {
        PluginHarness::builder(path).config(config).build()
    }

    pub fn builder(path: impl AsRef<Path>) -> HarnessBuilder {
        let path = path.as_ref();
        HarnessBuilder {
            wasm: std::fs::read(path),
            path: path.display().to_string(),
            config: serde_json::Value::Null,
            root_id: String::new(),
            vm_id: None,
            fail_strategy: FailStrategy::FailClose,
            upstreams: HashMap::new(),
            client: SocketAddr::from(([127, 0, 0, 1], 40000)),
        }
    }

    /// Sends `req` through the request callbacks only.
    pub fn request(&self, req: Request) -> Outcome {
        self.run(req, None)
    }

    /// Sends `req`, then (if it was forwarded) `resp` back through the response callbacks.
    pub fn exchange(&self, req: Request, resp: Response) -> Outcome {
        self.run(req, Some(resp))
    }

    /// Every line logged since the plugin was loaded (plugin and host).
    pub fn logs(&self) -> Vec<LogLine> {
        self.logs.lines()
    }

    /// A metric the plugin defined. Metrics are process-wide (summed over every
    /// instance of every plugin defining the name), as in the proxy.
    pub fn metric(&self, name: &str) -> Option<MetricValue> {
        plugin_metrics()
            .into_iter()
            .find(|m| m.name == name)
            .map(|m| m.value)
    }

    fn run(&self, req: Request, resp: Option<Response>) -> Outcome {
        let start = self.logs.len();
        let mut out = tracing::dispatcher::with_default(&self.dispatch, || {
            self.rt.block_on(drive(&self.chain, req, resp, self.client))
        });
        out.logs = self.logs.since(start);
        out
    }
}

fn local(r: meshgate::wasm::LocalResponse, logs: Vec<LogLine>) -> Outcome {
    Outcome {
        local_response: Some(LocalReply {
            status: r.status.as_u16(),
            headers: r.headers,
            body: r.body,
            details: r.details,
        }),
        upstream_request: None,
        response: None,
        stalled: false,
        logs,
    }
}

fn stalled() -> Outcome {
    Outcome {
        local_response: None,
        upstream_request: None,
        response: None,
        stalled: true,
        logs: Vec::new(),
    }
}

fn chunks(body: &Bytes, size: Option<usize>) -> Vec<Bytes> {
    let size = size.unwrap_or(body.len()).max(1);
    (0..body.len())
        .step_by(size)
        .map(|i| body.slice(i..(i + size).min(body.len())))
        .collect()
}

/// The proxy's side of one stream: headers, body chunks, taking the head back after a
/// pause, then the response the same way.
async fn drive(
    chain: &PluginChain,
    req: Request,
    resp: Option<Response>,
    client: SocketAddr,
) -> Outcome {
    let mut stream = chain.new_stream(StreamInfo {
        source: Some(req.client.unwrap_or(client)),
        ..StreamInfo::default()
    });
    let mut headers = req.headers;
    let mut line = RequestLine::new(req.method, req.scheme, req.authority, req.path);
    let has_body = !req.body.is_empty();
    let mut held = match stream
        .on_request_headers(&mut headers, &mut line, !has_body)
        .await
    {
        Verdict::LocalResponse(r) => return local(r, Vec::new()),
        Verdict::Continue => false,
        Verdict::Pause => true,
    };
    let mut body = BytesMut::new();
    let parts = chunks(&req.body, req.chunk_size);
    for (i, chunk) in parts.iter().enumerate() {
        let mut chunk = chunk.clone();
        match stream
            .on_request_body(&mut chunk, i + 1 == parts.len())
            .await
        {
            Verdict::LocalResponse(r) => return local(r, Vec::new()),
            Verdict::Continue => {
                body.extend_from_slice(&chunk);
                if held {
                    if let Some((h, l)) = stream.take_request_head() {
                        headers = h;
                        line = l;
                        held = false;
                    }
                }
            }
            Verdict::Pause => {}
        }
    }
    if held {
        return stalled();
    }
    let forwarded = Forwarded {
        method: line.method,
        path: line.path,
        authority: line.authority,
        status: 0,
        headers,
        body: body.freeze(),
    };
    let mut out = Outcome {
        local_response: None,
        upstream_request: Some(forwarded),
        response: None,
        stalled: false,
        logs: Vec::new(),
    };
    let Some(resp) = resp else {
        stream.on_log();
        return out;
    };
    let mut headers = resp.headers;
    let mut status = resp.status;
    let has_body = !resp.body.is_empty();
    let mut held = match stream
        .on_response_headers(&mut headers, &mut status, !has_body)
        .await
    {
        Verdict::LocalResponse(r) => return local(r, Vec::new()),
        Verdict::Continue => false,
        Verdict::Pause => true,
    };
    let mut body = BytesMut::new();
    let parts = chunks(&resp.body, None);
    for (i, chunk) in parts.iter().enumerate() {
        let mut chunk = chunk.clone();
        match stream
            .on_response_body(&mut chunk, i + 1 == parts.len())
            .await
        {
            Verdict::LocalResponse(r) => return local(r, Vec::new()),
            Verdict::Continue => {
                body.extend_from_slice(&chunk);
                if held {
                    if let Some((h, s)) = stream.take_response_head() {
                        headers = h;
                        status = s;
                        held = false;
                    }
                }
            }
            Verdict::Pause => {}
        }
    }
    if held {
        out.stalled = true;
        return out;
    }
    stream.on_log();
    out.response = Some(Forwarded {
        method: String::new(),
        path: String::new(),
        authority: String::new(),
        status: status.as_u16(),
        headers,
        body: body.freeze(),
    });
    out
}
