//! Counts requests in shared data with compare-and-swap (correct across instances) and
//! in metrics: a counter, a gauge of the last path length and a histogram of lengths.

use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType, LogLevel, MetricType, Status};

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Info);
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(Root { ids: (0, 0, 0) }) });
}}

struct Root {
    ids: (u32, u32, u32),
}

impl Context for Root {}

impl RootContext for Root {
    fn on_vm_start(&mut self, _: usize) -> bool {
        let define = |t, n| hostcalls::define_metric(t, n).unwrap_or(u32::MAX);
        self.ids = (
            define(MetricType::Counter, "wasmtest_requests_total"),
            define(MetricType::Gauge, "wasmtest_last_path_length"),
            define(MetricType::Histogram, "wasmtest_path_length"),
        );
        true
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }

    fn create_http_context(&self, _: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(Count { ids: self.ids }))
    }
}

struct Count {
    ids: (u32, u32, u32),
}

impl Context for Count {}

impl HttpContext for Count {
    fn on_http_request_headers(&mut self, _: usize, _: bool) -> Action {
        let mut count = 0u64;
        for _ in 0..100 {
            let (value, cas) = self.get_shared_data("requests");
            let current = value
                .and_then(|v| v.try_into().ok())
                .map(u64::from_le_bytes)
                .unwrap_or(0);
            count = current + 1;
            match self.set_shared_data("requests", Some(&count.to_le_bytes()), cas) {
                Ok(()) => break,
                Err(Status::CasMismatch) => continue,
                Err(_) => break,
            }
        }
        let len = self.get_http_request_header(":path").map(|p| p.len()).unwrap_or(0) as u64;
        let _ = hostcalls::increment_metric(self.ids.0, 1);
        let _ = hostcalls::record_metric(self.ids.1, len);
        let _ = hostcalls::record_metric(self.ids.2, len);
        let total = hostcalls::get_metric(self.ids.0).unwrap_or(0);
        self.set_http_request_header("x-count", Some(&count.to_string()));
        self.set_http_request_header("x-metric-total", Some(&total.to_string()));
        Action::Continue
    }
}
