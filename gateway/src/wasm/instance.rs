//! One instantiated plugin VM: its store, its exported callbacks, and guest calls made
//! safe — each bounded by an epoch deadline, memory capped by a limiter, and any trap
//! turned into a `PluginFailure` that poisons only this instance.

use std::sync::Arc;

use wasmtime::{Instance, Store, StoreLimitsBuilder, Trap, TypedFunc};

use super::abi::{AbiVersion, Action};
use super::engine::{engine, CompiledModule, EPOCH_TICK};
use super::host::PROC_EXIT;
use super::state::{HostState, HttpExchange, PendingCallout, PluginContext};

/// Linear memory one instance may grow to.
pub const MEMORY_LIMIT: usize = 64 << 20;
/// Epoch ticks a stream callback may run (≈100 ms of CPU, far beyond any sane filter).
pub const STREAM_CALL_TICKS: u64 = 10;
/// Start-up (`_initialize`, `on_vm_start`, `on_configure`) may parse big configs.
pub const INIT_CALL_TICKS: u64 = 500;

/// A plugin instance that trapped, ran out of time or memory, or refused its config.
#[derive(Debug, Clone, thiserror::Error)]
#[error("plugin {plugin}: {reason}")]
pub struct PluginFailure {
    pub plugin: String,
    pub reason: String,
}

type Cb1 = TypedFunc<i32, ()>;
type Cb2 = TypedFunc<(i32, i32), ()>;
type Cb2R = TypedFunc<(i32, i32), i32>;
type Cb3R = TypedFunc<(i32, i32, i32), i32>;
type Cb5 = TypedFunc<(i32, i32, i32, i32, i32), ()>;

/// Headers callbacks take `end_of_stream` since ABI 0.2; 0.1.0 ones do not.
enum HeadersCb {
    V1(Cb2R),
    V2(Cb3R),
}

#[derive(Default)]
struct Exports {
    on_context_create: Option<Cb2>,
    on_vm_start: Option<Cb2R>,
    on_configure: Option<Cb2R>,
    on_tick: Option<Cb1>,
    on_queue_ready: Option<Cb2>,
    on_request_headers: Option<HeadersCb>,
    on_request_body: Option<Cb3R>,
    on_request_trailers: Option<Cb2R>,
    on_response_headers: Option<HeadersCb>,
    on_response_body: Option<Cb3R>,
    on_response_trailers: Option<Cb2R>,
    on_http_call_response: Option<Cb5>,
    on_done: Option<TypedFunc<i32, i32>>,
    on_log: Option<Cb1>,
    on_delete: Option<Cb1>,
}

pub struct PluginInstance {
    store: Store<HostState>,
    exports: Exports,
    next_context: u32,
    /// When the next `on_tick` is due, if the plugin asked for ticks.
    pub next_tick: Option<std::time::Instant>,
}

/// Which stream callback to run.
#[derive(Debug, Clone, Copy)]
pub enum Callback {
    RequestHeaders,
    RequestBody,
    RequestTrailers,
    ResponseHeaders,
    ResponseBody,
    ResponseTrailers,
}

impl PluginInstance {
    /// Instantiates and starts the VM: `_initialize`/`_start`, then the root context's
    /// `on_context_create`, `on_vm_start` and `on_configure`.
    pub fn start(
        compiled: &CompiledModule,
        ctx: Arc<PluginContext>,
    ) -> Result<Box<PluginInstance>, PluginFailure> {
        let name = ctx.name.clone();
        let fail = |reason: String| PluginFailure {
            plugin: name.clone(),
            reason,
        };
        let limits = StoreLimitsBuilder::new()
            .memory_size(MEMORY_LIMIT)
            .instances(1)
            .build();
        let mut store = Store::new(engine(), HostState::new(ctx.clone(), limits));
        store.limiter(|s| &mut s.limits);
        store.epoch_deadline_trap();
        store.set_epoch_deadline(INIT_CALL_TICKS);
        let instance = compiled
            .pre
            .instantiate(&mut store)
            .map_err(|e| fail(describe(&e, &store, INIT_CALL_TICKS, "instantiating")))?;
        let memory = instance.get_memory(&mut store, "memory");
        let alloc = instance
            .get_typed_func::<i32, i32>(&mut store, "proxy_on_memory_allocate")
            .or_else(|_| instance.get_typed_func::<i32, i32>(&mut store, "malloc"))
            .map_err(|_| fail("exports neither proxy_on_memory_allocate nor malloc".into()))?;
        store.data_mut().memory = memory;
        store.data_mut().alloc = Some(alloc);
        store.data_mut().abi = compiled.abi;
        let exports = Exports::find(&instance, &mut store, compiled.abi).map_err(fail)?;
        let mut inst = Box::new(PluginInstance {
            store,
            exports,
            next_context: 2,
            next_tick: None,
        });

        for entry in ["_initialize", "_start"] {
            if let Ok(f) = instance.get_typed_func::<(), ()>(&mut inst.store, entry) {
                let r = inst.call(INIT_CALL_TICKS, entry, |s| f.call(s, ()));
                // A command module's `_start` may end with proc_exit(0): that is success.
                if r.is_err() && inst.store.data().exit_code != Some(0) {
                    return Err(r.err().unwrap_or_else(|| fail(format!("{entry} failed"))));
                }
                inst.store.data_mut().exit_code = None;
                break;
            }
        }
        if let Some(f) = inst.exports.on_context_create.clone() {
            inst.call(INIT_CALL_TICKS, "proxy_on_context_create", |s| {
                f.call(s, (1, 0))
            })?;
        }
        if let Some(f) = inst.exports.on_vm_start.clone() {
            let len = ctx.vm_config.len() as i32;
            if inst.call(INIT_CALL_TICKS, "proxy_on_vm_start", |s| {
                f.call(s, (1, len))
            })? == 0
            {
                return Err(fail("proxy_on_vm_start returned false".into()));
            }
        }
        if let Some(f) = inst.exports.on_configure.clone() {
            let len = ctx.config.len() as i32;
            if inst.call(INIT_CALL_TICKS, "proxy_on_configure", |s| {
                f.call(s, (1, len))
            })? == 0
            {
                return Err(fail(
                    "proxy_on_configure returned false: the plugin rejected its configuration"
                        .into(),
                ));
            }
        }
        inst.reschedule_tick();
        Ok(inst)
    }

    /// Runs one guest call under a deadline of `ticks` epochs.
    fn call<R>(
        &mut self,
        ticks: u64,
        what: &str,
        f: impl FnOnce(&mut Store<HostState>) -> wasmtime::Result<R>,
    ) -> Result<R, PluginFailure> {
        self.store.set_epoch_deadline(ticks);
        f(&mut self.store).map_err(|e| PluginFailure {
            plugin: self.store.data().plugin.name.clone(),
            reason: describe(&e, &self.store, ticks, what),
        })
    }

    pub fn tick_period(&self) -> Option<std::time::Duration> {
        self.store.data().tick_period
    }

    fn reschedule_tick(&mut self) {
        self.next_tick = self.tick_period().map(|p| std::time::Instant::now() + p);
    }

    /// Boxed so a stream lends it to an instance by swapping a pointer.
    pub fn exchange(&mut self) -> &mut Box<HttpExchange> {
        &mut self.store.data_mut().http
    }

    pub fn take_callouts(&mut self) -> Vec<PendingCallout> {
        std::mem::take(&mut self.store.data_mut().callouts)
    }

    pub fn callout(&self) -> Arc<dyn super::callout::HttpCallout> {
        self.store.data().plugin.callout.clone()
    }

    pub fn has_callouts(&self) -> bool {
        !self.store.data().callouts.is_empty()
    }

    /// Creates an HTTP context under the root context and returns its id.
    pub fn create_stream_context(&mut self) -> Result<u32, PluginFailure> {
        let id = self.next_context;
        self.next_context = self.next_context.checked_add(1).unwrap_or(2);
        self.store.data_mut().effective_context = id;
        if let Some(f) = self.exports.on_context_create.clone() {
            self.call(STREAM_CALL_TICKS, "proxy_on_context_create", |s| {
                f.call(s, (id as i32, 1))
            })?;
        }
        Ok(id)
    }

    /// Runs a stream callback. `count` is the header count or the body size.
    pub fn stream_callback(
        &mut self,
        cb: Callback,
        ctx: u32,
        count: usize,
        end_of_stream: bool,
    ) -> Result<Action, PluginFailure> {
        let (ctx, n, eos) = (
            ctx as i32,
            count.min(i32::MAX as usize) as i32,
            end_of_stream as i32,
        );
        self.store.data_mut().effective_context = ctx as u32;
        let e = &self.exports;
        let r = match cb {
            Callback::RequestHeaders | Callback::ResponseHeaders => {
                let f = if matches!(cb, Callback::RequestHeaders) {
                    &e.on_request_headers
                } else {
                    &e.on_response_headers
                };
                match f {
                    Some(HeadersCb::V2(f)) => {
                        let f = f.clone();
                        self.call(STREAM_CALL_TICKS, "headers callback", |s| {
                            f.call(s, (ctx, n, eos))
                        })?
                    }
                    Some(HeadersCb::V1(f)) => {
                        let f = f.clone();
                        self.call(STREAM_CALL_TICKS, "headers callback", |s| {
                            f.call(s, (ctx, n))
                        })?
                    }
                    None => 0,
                }
            }
            Callback::RequestBody | Callback::ResponseBody => {
                let f = if matches!(cb, Callback::RequestBody) {
                    &e.on_request_body
                } else {
                    &e.on_response_body
                };
                match f.clone() {
                    Some(f) => self.call(STREAM_CALL_TICKS, "body callback", |s| {
                        f.call(s, (ctx, n, eos))
                    })?,
                    None => 0,
                }
            }
            Callback::RequestTrailers | Callback::ResponseTrailers => {
                let f = if matches!(cb, Callback::RequestTrailers) {
                    &e.on_request_trailers
                } else {
                    &e.on_response_trailers
                };
                match f.clone() {
                    Some(f) => self.call(STREAM_CALL_TICKS, "trailers callback", |s| {
                        f.call(s, (ctx, n))
                    })?,
                    None => 0,
                }
            }
        };
        Ok(Action::from_guest(r))
    }

    /// Delivers an HTTP call's response (already placed in the store) to `ctx`.
    pub fn http_call_response(
        &mut self,
        ctx: u32,
        token: u32,
        headers: usize,
        body: usize,
        trailers: usize,
    ) -> Result<(), PluginFailure> {
        self.store.data_mut().effective_context = ctx;
        let Some(f) = self.exports.on_http_call_response.clone() else {
            return Ok(());
        };
        let args = (
            ctx as i32,
            token as i32,
            headers as i32,
            body.min(i32::MAX as usize) as i32,
            trailers as i32,
        );
        self.call(STREAM_CALL_TICKS, "proxy_on_http_call_response", |s| {
            f.call(s, args)
        })
    }

    pub fn set_call_response(&mut self, response: Option<super::state::CallResult>) {
        self.store.data_mut().call_response = response;
    }

    /// `on_done`, `on_log` (when `log`), `on_delete` for a finished stream context.
    pub fn finish_stream_context(&mut self, ctx: u32, log: bool) -> Result<(), PluginFailure> {
        self.store.data_mut().effective_context = ctx;
        let c = ctx as i32;
        if let Some(f) = self.exports.on_done.clone() {
            self.call(STREAM_CALL_TICKS, "proxy_on_done", |s| f.call(s, c))?;
        }
        if log {
            if let Some(f) = self.exports.on_log.clone() {
                self.call(STREAM_CALL_TICKS, "proxy_on_log", |s| f.call(s, c))?;
            }
        }
        if let Some(f) = self.exports.on_delete.clone() {
            self.call(STREAM_CALL_TICKS, "proxy_on_delete", |s| f.call(s, c))?;
        }
        // Calls still pending for this context are dropped with it.
        self.store
            .data_mut()
            .callouts
            .retain(|c| c.context_id != ctx);
        self.store.data_mut().effective_context = 1;
        Ok(())
    }

    pub fn tick(&mut self) -> Result<(), PluginFailure> {
        self.store.data_mut().effective_context = 1;
        *self.store.data_mut().http = HttpExchange::default();
        if let Some(f) = self.exports.on_tick.clone() {
            self.call(STREAM_CALL_TICKS, "proxy_on_tick", |s| f.call(s, 1))?;
        }
        self.reschedule_tick();
        Ok(())
    }

    pub fn queue_ready(&mut self, token: u32) -> Result<(), PluginFailure> {
        self.store.data_mut().effective_context = 1;
        match self.exports.on_queue_ready.clone() {
            Some(f) => self.call(STREAM_CALL_TICKS, "proxy_on_queue_ready", |s| {
                f.call(s, (1, token as i32))
            }),
            None => Ok(()),
        }
    }
}

impl Exports {
    fn find(
        instance: &Instance,
        store: &mut Store<HostState>,
        abi: AbiVersion,
    ) -> Result<Exports, String> {
        fn opt<P: wasmtime::WasmParams, R: wasmtime::WasmResults>(
            instance: &Instance,
            store: &mut Store<HostState>,
            name: &str,
        ) -> Result<Option<TypedFunc<P, R>>, String> {
            if instance.get_func(&mut *store, name).is_none() {
                return Ok(None);
            }
            instance
                .get_typed_func::<P, R>(&mut *store, name)
                .map(Some)
                .map_err(|e| format!("export {name} has an unexpected signature: {e:#}"))
        }
        let headers =
            |store: &mut Store<HostState>, name: &str| -> Result<Option<HeadersCb>, String> {
                if abi == AbiVersion::V0_1_0 {
                    if let Ok(Some(f)) = opt::<(i32, i32), i32>(instance, store, name) {
                        return Ok(Some(HeadersCb::V1(f)));
                    }
                }
                Ok(opt::<(i32, i32, i32), i32>(instance, store, name)?.map(HeadersCb::V2))
            };
        Ok(Exports {
            on_context_create: opt(instance, store, "proxy_on_context_create")?,
            on_vm_start: opt(instance, store, "proxy_on_vm_start")?,
            on_configure: opt(instance, store, "proxy_on_configure")?,
            on_tick: opt(instance, store, "proxy_on_tick")?,
            on_queue_ready: opt(instance, store, "proxy_on_queue_ready")?,
            on_request_headers: headers(store, "proxy_on_request_headers")?,
            on_request_body: opt(instance, store, "proxy_on_request_body")?,
            on_request_trailers: opt(instance, store, "proxy_on_request_trailers")?,
            on_response_headers: headers(store, "proxy_on_response_headers")?,
            on_response_body: opt(instance, store, "proxy_on_response_body")?,
            on_response_trailers: opt(instance, store, "proxy_on_response_trailers")?,
            on_http_call_response: opt(instance, store, "proxy_on_http_call_response")?,
            on_done: opt(instance, store, "proxy_on_done")?,
            on_log: opt(instance, store, "proxy_on_log")?,
            on_delete: opt(instance, store, "proxy_on_delete")?,
        })
    }
}

/// Operator-facing text for a failed guest call.
fn describe(e: &wasmtime::Error, store: &Store<HostState>, ticks: u64, what: &str) -> String {
    if let Some(code) = store.data().exit_code {
        return format!("{what}: the plugin called proc_exit({code})");
    }
    if e.to_string() == PROC_EXIT {
        return format!("{what}: the plugin called proc_exit");
    }
    match e.downcast_ref::<Trap>() {
        Some(Trap::Interrupt) => format!(
            "{what}: ran longer than its {} ms budget and was interrupted",
            ticks * EPOCH_TICK.as_millis() as u64
        ),
        Some(trap) => format!("{what}: trapped: {trap}"),
        None => format!("{what}: {e:#}"),
    }
}
