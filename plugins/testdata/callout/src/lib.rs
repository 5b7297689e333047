//! Auth-style plugin: asks the `auth` cluster about the request's `authorization`
//! header and pauses; a 200 lets the request go on with `x-user` copied from the
//! answer, anything else (or a failed call) answers 403 with the auth server's body.

use std::time::Duration;

use proxy_wasm::traits::{Context, HttpContext};
use proxy_wasm::types::{Action, LogLevel};

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Info);
    proxy_wasm::set_http_context(|_, _| -> Box<dyn HttpContext> { Box::new(Auth) });
}}

struct Auth;

impl Context for Auth {
    fn on_http_call_response(&mut self, _: u32, _: usize, body_size: usize, _: usize) {
        let status = self.get_http_call_response_header(":status").unwrap_or_default();
        if status == "200" {
            let user = self.get_http_call_response_header("x-user").unwrap_or_default();
            self.set_http_request_header("x-user", Some(&user));
            self.resume_http_request();
        } else {
            let body = self.get_http_call_response_body(0, body_size).unwrap_or_default();
            let status = if status.is_empty() { "none".to_string() } else { status };
            self.send_http_response(403, vec![("x-auth-status", &status)], Some(&body));
        }
    }
}

impl HttpContext for Auth {
    fn on_http_request_headers(&mut self, _: usize, _: bool) -> Action {
        let token = self.get_http_request_header("authorization").unwrap_or_default();
        let timeout = self
            .get_http_request_header("x-auth-timeout-ms")
            .and_then(|t| t.parse().ok())
            .unwrap_or(2000);
        match self.dispatch_http_call(
            "auth",
            vec![(":method", "GET"), (":path", "/check"), (":authority", "auth.local"), ("x-token", &token)],
            None,
            vec![],
            Duration::from_millis(timeout),
        ) {
            Ok(_) => Action::Pause,
            Err(_) => {
                self.send_http_response(500, vec![], Some(b"auth cluster unknown"));
                Action::Pause
            }
        }
    }
}
