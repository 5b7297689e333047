//! Writes access-log entries from a dedicated thread through a bounded channel, so a
//! slow or blocked stdout never stalls a data-path worker: when the channel is full the
//! entry is dropped and counted (`meshgate_access_log_dropped_total`).

use std::io::{BufWriter, Write};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::thread::JoinHandle;

use prometheus_client::metrics::counter::Counter;

use super::access_log::{format_json, format_text, AccessLogEntry, AccessLogFormat};

/// Entries queued before new ones are dropped.
pub const DEFAULT_ACCESS_LOG_QUEUE: usize = 8192;

/// The data-path side: cheap to clone, never blocks.
#[derive(Clone, Debug)]
pub struct AccessLog {
    tx: SyncSender<AccessLogEntry>,
    dropped: Counter,
}

impl AccessLog {
    /// Starts the writer thread. `sink` is usually `std::io::stdout()`; `dropped` is
    /// usually `ProxyMetrics::access_log_dropped()`.
    pub fn spawn(
        format: AccessLogFormat,
        sink: Box<dyn Write + Send>,
        queue: usize,
        dropped: Counter,
    ) -> std::io::Result<(AccessLog, AccessLogThread)> {
        let (tx, rx) = mpsc::sync_channel(queue.max(1));
        let thread = std::thread::Builder::new()
            .name("meshgate-access-log".into())
            .spawn(move || write_loop(format, sink, rx))?;
        Ok((AccessLog { tx, dropped }, AccessLogThread(thread)))
    }

    /// Queues `entry`; returns false (and counts a drop) when the writer is behind or
    /// gone.
    pub fn log(&self, entry: AccessLogEntry) -> bool {
        match self.tx.try_send(entry) {
            Ok(()) => true,
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                self.dropped.inc();
                false
            }
        }
    }
}

/// The writer thread. It exits after every [`AccessLog`] clone is dropped and the
/// queue is written out.
#[derive(Debug)]
pub struct AccessLogThread(JoinHandle<()>);

impl AccessLogThread {
    /// Waits for the queue to drain (drop every `AccessLog` first).
    pub fn join(self) {
        if self.0.join().is_err() {
            tracing::warn!("access log writer thread panicked");
        }
    }
}

fn write_loop(format: AccessLogFormat, sink: Box<dyn Write + Send>, rx: Receiver<AccessLogEntry>) {
    let mut out = BufWriter::with_capacity(64 * 1024, sink);
    let mut line = String::with_capacity(512);
    let mut failed = false;
    // Block for the next entry, then take whatever else is queued before flushing, so
    // a burst becomes one write.
    while let Ok(first) = rx.recv() {
        let mut next = Some(first);
        while let Some(entry) = next {
            line.clear();
            match format {
                AccessLogFormat::Text => format_text(&mut line, &entry),
                AccessLogFormat::Json => format_json(&mut line, &entry),
            }
            if let Err(e) = out.write_all(line.as_bytes()) {
                report_once(&mut failed, &e);
            }
            next = rx.try_recv().ok();
        }
        if let Err(e) = out.flush() {
            report_once(&mut failed, &e);
        }
    }
    let _ = out.flush();
}

fn report_once(failed: &mut bool, e: &std::io::Error) {
    if !*failed {
        tracing::warn!(error = %e, "access log write failed; further errors are not reported");
        *failed = true;
    }
}
