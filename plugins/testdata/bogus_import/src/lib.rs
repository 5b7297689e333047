//! Imports a host function no proxy provides; calls it only when asked (`x-call-bogus`).

use proxy_wasm::traits::{Context, HttpContext};
use proxy_wasm::types::{Action, LogLevel};

#[link(wasm_import_module = "env")]
extern "C" {
    fn proxy_bogus_function(x: u32) -> u32;
}

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Info);
    proxy_wasm::set_http_context(|_, _| -> Box<dyn HttpContext> { Box::new(Bogus) });
}}

struct Bogus;

impl Context for Bogus {}

impl HttpContext for Bogus {
    fn on_http_request_headers(&mut self, _: usize, _: bool) -> Action {
        if self.get_http_request_header("x-call-bogus").is_some() {
            // SAFETY: an imported function taking and returning plain integers.
            let r = unsafe { proxy_bogus_function(7) };
            self.add_http_request_header("x-bogus-result", &r.to_string());
        }
        self.add_http_request_header("x-bogus-plugin", "loaded");
        Action::Continue
    }
}
