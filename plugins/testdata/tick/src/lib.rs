//! Ticks every 20 ms, counting ticks in shared data; registers a queue whose items it
//! records on `on_queue_ready`. Requests read both and enqueue their path.

use std::time::Duration;

use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType, LogLevel};

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Info);
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(Root { queue: 0 }) });
}}

struct Root {
    queue: u32,
}

impl Context for Root {}

fn read_u64(ctx: &dyn Context, key: &str) -> u64 {
    ctx.get_shared_data(key)
        .0
        .and_then(|v| v.try_into().ok())
        .map(u64::from_le_bytes)
        .unwrap_or(0)
}

impl RootContext for Root {
    fn on_vm_start(&mut self, _: usize) -> bool {
        self.queue = self.register_shared_queue("events");
        true
    }

    fn on_configure(&mut self, _: usize) -> bool {
        self.set_tick_period(Duration::from_millis(20));
        true
    }

    fn on_tick(&mut self) {
        loop {
            let (value, cas) = self.get_shared_data("ticks");
            let n = value.and_then(|v| v.try_into().ok()).map(u64::from_le_bytes).unwrap_or(0) + 1;
            if self.set_shared_data("ticks", Some(&n.to_le_bytes()), cas).is_ok() {
                break;
            }
        }
    }

    fn on_queue_ready(&mut self, queue_id: u32) {
        while let Ok(Some(item)) = self.dequeue_shared_queue(queue_id) {
            let _ = self.set_shared_data("last_event", Some(&item), None);
        }
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }

    fn create_http_context(&self, _: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(Req { queue: self.queue }))
    }
}

struct Req {
    queue: u32,
}

impl Context for Req {}

impl HttpContext for Req {
    fn on_http_request_headers(&mut self, _: usize, _: bool) -> Action {
        let ticks = read_u64(self, "ticks");
        self.set_http_request_header("x-ticks", Some(&ticks.to_string()));
        let last = self.get_shared_data("last_event").0.unwrap_or_default();
        self.set_http_request_header("x-last-event", Some(&String::from_utf8_lossy(&last)));
        let path = self.get_http_request_header(":path").unwrap_or_default();
        let _ = self.enqueue_shared_queue(self.queue, Some(path.as_bytes()));
        Action::Continue
    }
}
