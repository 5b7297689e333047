//! Reads whole bodies: buffers the request body (pausing on every chunk until the
//! end), rejects bodies containing `forbidden`, upper-cases the rest, and reports the
//! length in a request header it sets after the body (the headers wait for it).
//! Appends `!` to the response body.

use proxy_wasm::traits::{Context, HttpContext};
use proxy_wasm::types::{Action, LogLevel};

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Info);
    proxy_wasm::set_http_context(|_, _| -> Box<dyn HttpContext> { Box::new(Body) });
}}

struct Body;

impl Context for Body {}

impl HttpContext for Body {
    fn on_http_request_headers(&mut self, _: usize, end_of_stream: bool) -> Action {
        // Hold the headers until the body was seen.
        if end_of_stream {
            Action::Continue
        } else {
            Action::Pause
        }
    }

    fn on_http_request_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        if !end_of_stream {
            return Action::Pause;
        }
        let body = self.get_http_request_body(0, body_size).unwrap_or_default();
        if body.windows(9).any(|w| w == b"forbidden") {
            self.send_http_response(403, vec![], Some(b"body rejected"));
            return Action::Pause;
        }
        self.set_http_request_header("x-body-len", Some(&body.len().to_string()));
        let upper = body.to_ascii_uppercase();
        self.set_http_request_body(0, body_size, &upper);
        Action::Continue
    }

    fn on_http_response_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        if end_of_stream {
            self.set_http_response_body(body_size, 0, b"!");
        }
        Action::Continue
    }
}
