//! Answers 403 itself when the request carries `x-deny`.

use proxy_wasm::traits::{Context, HttpContext};
use proxy_wasm::types::{Action, LogLevel};

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Info);
    proxy_wasm::set_http_context(|_, _| -> Box<dyn HttpContext> { Box::new(Deny) });
}}

struct Deny;

impl Context for Deny {}

impl HttpContext for Deny {
    fn on_http_request_headers(&mut self, _: usize, _: bool) -> Action {
        if let Some(reason) = self.get_http_request_header("x-deny") {
            self.send_http_response(403, vec![("x-denied-by", "wasm"), ("x-reason", &reason)], Some(b"denied by plugin"));
            return Action::Pause;
        }
        self.add_http_request_header("x-deny-checked", "1");
        Action::Continue
    }
}
