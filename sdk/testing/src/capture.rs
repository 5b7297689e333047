//! Collecting what plugins (and the host, about them) log while the harness drives
//! them: a tracing layer scoped to the harness's calls, so parallel tests each see
//! their own lines.

use std::fmt;
use std::sync::{Arc, Mutex};

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::prelude::*;

/// The target Meshgate logs plugins' `proxy_log` messages under.
pub const PLUGIN_TARGET: &str = "meshgate::wasm::plugin";

/// One log line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    pub level: Level,
    /// `meshgate::wasm::plugin` for the plugin's own logs; host modules otherwise.
    pub target: String,
    pub message: String,
    /// Other fields (`error = ...`, `plugin = ...`), as `name=value`.
    pub fields: Vec<String>,
}

impl LogLine {
    /// Logged by the plugin itself (not by the host about it).
    pub fn from_plugin(&self) -> bool {
        self.target == PLUGIN_TARGET
    }
}

impl fmt::Display for LogLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}: {}", self.level, self.target, self.message)?;
        for field in &self.fields {
            write!(f, " {field}")?;
        }
        Ok(())
    }
}

#[derive(Clone, Default)]
pub struct Captured(Arc<Mutex<Vec<LogLine>>>);

impl Captured {
    pub fn lines(&self) -> Vec<LogLine> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub fn len(&self) -> usize {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    pub fn since(&self, start: usize) -> Vec<LogLine> {
        self.lines().into_iter().skip(start).collect()
    }

    /// A dispatcher that records into this capture (and prints when `RUST_LOG` is set,
    /// so `RUST_LOG=debug cargo test` shows what happened).
    pub fn dispatch(&self) -> tracing::Dispatch {
        let layer = CaptureLayer(self.clone());
        let print = std::env::var("RUST_LOG").ok().map(|spec| {
            let filter = spec
                .parse::<tracing_subscriber::filter::Targets>()
                .unwrap_or_else(|_| tracing_subscriber::filter::Targets::new());
            tracing_subscriber::fmt::layer()
                .with_test_writer()
                .with_filter(filter)
        });
        tracing::Dispatch::new(tracing_subscriber::registry().with(layer).with(print))
    }
}

struct CaptureLayer(Captured);

impl<S: Subscriber> Layer<S> for CaptureLayer {
    fn on_event(&self, event: &Event<'_>, _: Context<'_, S>) {
        let mut v = Fields::default();
        event.record(&mut v);
        let line = LogLine {
            level: *event.metadata().level(),
            target: event.metadata().target().to_string(),
            message: v.message,
            fields: v.fields,
        };
        self.0
             .0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(line);
    }
}

#[derive(Default)]
struct Fields {
    message: String,
    fields: Vec<String>,
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message = value.to_string();
        } else {
            self.fields.push(format!("{}={value}", field.name()));
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if field.name() == "message" {
            self.message = format!("{value:?}");
        } else {
            self.fields.push(format!("{}={value:?}", field.name()));
        }
    }
}
