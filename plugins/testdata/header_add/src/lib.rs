//! Adds headers both ways, exposes properties as headers, and edits pseudo-headers:
//! `x-set-path` on the request rewrites `:path`; `x-set-status` on the response
//! rewrites `:status`.

use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType, LogLevel};

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Info);
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(Root { value: String::new() }) });
}}

struct Root {
    value: String,
}

impl Context for Root {}

impl RootContext for Root {
    fn on_configure(&mut self, _: usize) -> bool {
        // The configuration is JSON: a string value is taken raw, anything else as text.
        let config = self.get_plugin_configuration().unwrap_or_default();
        let text = String::from_utf8_lossy(&config).to_string();
        self.value = text.trim_matches('"').to_string();
        true
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }

    fn create_http_context(&self, _: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(Http { value: self.value.clone() }))
    }
}

struct Http {
    value: String,
}

impl Context for Http {}

fn prop(ctx: &dyn Context, path: Vec<&str>) -> String {
    ctx.get_property(path).map(|b| String::from_utf8_lossy(&b).to_string()).unwrap_or_default()
}

impl HttpContext for Http {
    fn on_http_request_headers(&mut self, _: usize, _: bool) -> Action {
        self.add_http_request_header("x-wasm-request", &self.value);
        if let Some(path) = self.get_http_request_header("x-set-path") {
            self.set_http_request_header(":path", Some(&path));
        }
        let seen = format!(
            "{} {} {}",
            self.get_http_request_header(":method").unwrap_or_default(),
            self.get_http_request_header(":authority").unwrap_or_default(),
            self.get_http_request_header(":path").unwrap_or_default()
        );
        self.set_http_request_header("x-seen", Some(&seen));
        self.set_http_request_header("x-remove-me", None);
        if self.get_http_request_header("x-want-props").is_some() {
            let port = self
                .get_property(vec!["source", "port"])
                .map(|b| u64::from_le_bytes(b[..8].try_into().unwrap_or([0; 8])))
                .unwrap_or(0);
            let props = format!(
                "name={} root={} ns={} app={} src={} port={} url_path={} mtls={:?} sni={}",
                prop(self, vec!["plugin_name"]),
                prop(self, vec!["plugin_root_id"]),
                prop(self, vec!["node", "metadata", "NAMESPACE"]),
                prop(self, vec!["node", "metadata", "LABELS", "app"]),
                prop(self, vec!["source", "address"]),
                port,
                prop(self, vec!["request", "url_path"]),
                self.get_property(vec!["connection", "mtls"]).map(|b| b.to_vec()),
                prop(self, vec!["connection", "requested_server_name"]),
            );
            self.set_http_request_header("x-props", Some(&props));
        }
        let count = self.get_http_request_headers().len();
        self.set_http_request_header("x-header-count", Some(&count.to_string()));
        Action::Continue
    }

    fn on_http_response_headers(&mut self, _: usize, _: bool) -> Action {
        self.add_http_response_header("x-wasm-response", &self.value);
        let status = self.get_http_response_header(":status").unwrap_or_default();
        self.set_http_response_header("x-upstream-status", Some(&status));
        if let Some(s) = self.get_http_response_header("x-set-status") {
            self.set_http_response_header(":status", Some(&s));
        }
        // Request headers are still readable while the response flows.
        if let Some(p) = self.get_http_request_header(":path") {
            self.set_http_response_header("x-request-path", Some(&p));
        }
        Action::Continue
    }
}
