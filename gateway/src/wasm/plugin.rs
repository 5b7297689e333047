//! One configured plugin at run time: its compiled module, a lock-free pool of idle
//! instances (each serves one stream at a time), its failure state, and a background
//! driver for ticks, queue notifications and root-context HTTP calls.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use crossbeam_queue::ArrayQueue;

use super::engine::CompiledModule;
use super::instance::{PluginFailure, PluginInstance};
use super::spec::{FailStrategy, PluginSpec};
use super::state::PluginContext;
use super::stream::run_callouts;

/// How long FAIL_RELOAD waits before trying again after an instance failed to start,
/// doubling up to `MAX_RELOAD_BACKOFF`.
const RELOAD_BACKOFF: Duration = Duration::from_secs(1);
const MAX_RELOAD_BACKOFF: Duration = Duration::from_secs(30);
/// Driver wake-up when no tick period is set (to notice newly set ones).
const IDLE_DRIVER_WAKE: Duration = Duration::from_millis(500);
/// Idle instances kept for reuse. Each stream holds an instance from its request
/// headers to its log, so a gateway with N requests in flight needs N; an instance
/// returned to a full pool is dropped and the next stream pays for a new one
/// (instantiation, `_start`, `on_vm_start`, `on_configure` and the linear memory's
/// mmap/munmap). With the pool sized by CPUs (8 here), 32 connections under load made
/// that the common case: +64 CPU-µs per request instead of a few.
const MAX_IDLE_INSTANCES: usize = 256;

pub struct LoadedPlugin {
    pub spec: PluginSpec,
    pub compiled: Arc<CompiledModule>,
    pub ctx: Arc<PluginContext>,
    idle: ArrayQueue<Box<PluginInstance>>,
    /// FAIL_CLOSE/FAIL_OPEN: a failure sticks until the plugin is loaded again.
    failed: AtomicBool,
    /// FAIL_RELOAD: no new instance before this (ms since `epoch`).
    retry_after_ms: AtomicU64,
    backoff_ms: AtomicU64,
    epoch: Instant,
}

impl LoadedPlugin {
    /// Starts the first instance, so a bad module or config fails here, up-front.
    pub fn load(
        spec: PluginSpec,
        compiled: Arc<CompiledModule>,
        ctx: Arc<PluginContext>,
    ) -> Result<Arc<LoadedPlugin>, PluginFailure> {
        let first = PluginInstance::start(&compiled, ctx.clone())?;
        let plugin = Arc::new(LoadedPlugin {
            spec,
            compiled,
            ctx,
            idle: ArrayQueue::new(MAX_IDLE_INSTANCES),
            failed: AtomicBool::new(false),
            retry_after_ms: AtomicU64::new(0),
            backoff_ms: AtomicU64::new(0),
            epoch: Instant::now(),
        });
        plugin.release(first);
        start_driver(&plugin);
        Ok(plugin)
    }

    pub fn name(&self) -> &str {
        &self.spec.name
    }

    pub fn is_failed(&self) -> bool {
        self.failed.load(Ordering::Relaxed)
    }

    /// An idle instance, or a new one. Never blocks on other streams.
    pub fn checkout(&self) -> Result<Box<PluginInstance>, PluginFailure> {
        if let Some(inst) = self.idle.pop() {
            return Ok(inst);
        }
        let now = self.epoch.elapsed().as_millis() as u64;
        if now < self.retry_after_ms.load(Ordering::Relaxed) {
            return Err(PluginFailure {
                plugin: self.spec.name.clone(),
                reason: "waiting to retry after the plugin failed to start".into(),
            });
        }
        match PluginInstance::start(&self.compiled, self.ctx.clone()) {
            Ok(inst) => {
                self.backoff_ms.store(0, Ordering::Relaxed);
                Ok(inst)
            }
            Err(e) => {
                let backoff = (self.backoff_ms.load(Ordering::Relaxed) * 2).clamp(
                    RELOAD_BACKOFF.as_millis() as u64,
                    MAX_RELOAD_BACKOFF.as_millis() as u64,
                );
                self.backoff_ms.store(backoff, Ordering::Relaxed);
                self.retry_after_ms.store(now + backoff, Ordering::Relaxed);
                Err(e)
            }
        }
    }

    /// Returns a healthy instance to the pool. One with root-context HTTP calls in
    /// flight first finishes them on a background task.
    pub fn release(self: &Arc<Self>, inst: Box<PluginInstance>) {
        if inst.has_callouts() {
            if let Ok(handle) = tokio::runtime::Handle::try_current() {
                let plugin = self.clone();
                handle.spawn(async move {
                    let mut inst = inst;
                    let ok = run_callouts(&mut inst, 1).await.is_ok();
                    if ok {
                        plugin.put_idle(inst);
                    }
                });
                return;
            }
            tracing::warn!(plugin = %self.spec.name, "plugin made HTTP calls outside a runtime; they are dropped");
        }
        self.put_idle(inst);
    }

    fn put_idle(&self, inst: Box<PluginInstance>) {
        // A full pool means more instances than concurrent streams need: drop extras.
        let _ = self.idle.push(inst);
    }

    /// Records a failed instance (already dropped by the caller) per the strategy.
    pub fn record_failure(&self, failure: &PluginFailure) {
        tracing::error!(plugin = %self.spec.name, strategy = ?self.spec.fail_strategy, error = %failure.reason, "wasm plugin failed");
        if self.spec.fail_strategy != FailStrategy::FailReload {
            self.failed.store(true, Ordering::Relaxed);
            // Idle instances of a failed plugin will not be used again.
            while self.idle.pop().is_some() {}
        }
    }

    pub fn idle_instances(&self) -> usize {
        self.idle.len()
    }

    /// Ticks due idle instances and delivers queue notifications. Returns when the
    /// next tick is due, if any instance wants ticks.
    fn drive(self: &Arc<Self>, ready_queues: Vec<u32>) -> Option<Instant> {
        let mut earliest: Option<Instant> = None;
        let mut queues = ready_queues.into_iter();
        let now = Instant::now();
        for _ in 0..self.idle.len() {
            let Some(mut inst) = self.idle.pop() else {
                break;
            };
            let mut result = Ok(());
            if inst.next_tick.is_some_and(|t| t <= now) {
                result = inst.tick();
            }
            if result.is_ok() {
                if let Some(token) = queues.next() {
                    result = inst.queue_ready(token);
                }
            }
            match result {
                Ok(()) => {
                    if let Some(t) = inst.next_tick {
                        earliest = Some(earliest.map_or(t, |e| e.min(t)));
                    }
                    self.release(inst);
                }
                Err(e) => self.record_failure(&e),
            }
        }
        // Notifications no idle instance could take are tried again next round.
        let left: Vec<u32> = queues.collect();
        if !left.is_empty() {
            let mut ready = self
                .ctx
                .events
                .ready
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            ready.extend(left);
        }
        earliest
    }
}

fn start_driver(plugin: &Arc<LoadedPlugin>) {
    let Ok(handle) = tokio::runtime::Handle::try_current() else {
        tracing::debug!(plugin = %plugin.spec.name, "no async runtime: ticks and queue notifications are not driven");
        return;
    };
    let weak: Weak<LoadedPlugin> = Arc::downgrade(plugin);
    let events = plugin.ctx.events.clone();
    handle.spawn(async move {
        // Drive once right away to learn the tick periods set during configure.
        let mut wait = Duration::from_millis(1);
        loop {
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = events.notify.notified() => {}
            }
            let Some(plugin) = weak.upgrade() else { return };
            if plugin.is_failed() {
                return;
            }
            let ready =
                std::mem::take(&mut *events.ready.lock().unwrap_or_else(|p| p.into_inner()));
            let pending_queues = !ready.is_empty();
            wait = plugin
                .drive(ready)
                .map(|t| {
                    t.saturating_duration_since(Instant::now())
                        .max(Duration::from_millis(1))
                })
                .unwrap_or(IDLE_DRIVER_WAKE);
            if pending_queues
                && !events
                    .ready
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .is_empty()
            {
                wait = wait.min(Duration::from_millis(10));
            }
        }
    });
}
