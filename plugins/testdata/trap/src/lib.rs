//! Panics (a wasm trap, as built with panic=abort) when the request carries `x-crash`.

use proxy_wasm::traits::{Context, HttpContext};
use proxy_wasm::types::{Action, LogLevel};

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Info);
    proxy_wasm::set_http_context(|_, _| -> Box<dyn HttpContext> { Box::new(Trap) });
}}

struct Trap;

impl Context for Trap {}

impl HttpContext for Trap {
    fn on_http_request_headers(&mut self, _: usize, _: bool) -> Action {
        if self.get_http_request_header("x-crash").is_some() {
            panic!("crash requested");
        }
        self.add_http_request_header("x-trap-plugin", "ran");
        Action::Continue
    }
}
