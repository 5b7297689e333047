//! Loops forever when the request carries `x-spin`; tries to take 256 MiB of memory
//! when it carries `x-hog`.

use proxy_wasm::traits::{Context, HttpContext};
use proxy_wasm::types::{Action, LogLevel};

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Info);
    proxy_wasm::set_http_context(|_, _| -> Box<dyn HttpContext> { Box::new(Spin) });
}}

struct Spin;

impl Context for Spin {}

impl HttpContext for Spin {
    fn on_http_request_headers(&mut self, _: usize, _: bool) -> Action {
        if self.get_http_request_header("x-spin").is_some() {
            let mut i: u64 = 0;
            loop {
                i = core::hint::black_box(i.wrapping_add(1));
            }
        }
        if self.get_http_request_header("x-hog").is_some() {
            let hog = vec![1u8; 256 << 20];
            core::hint::black_box(&hog);
        }
        self.add_http_request_header("x-spin-plugin", "ran");
        Action::Continue
    }
}
