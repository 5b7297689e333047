//! The process-wide wasmtime engine: one compiler configuration, an epoch ticker that
//! bounds every guest call, and a cache of compiled modules keyed by sha256 so a module
//! used by many listeners or config versions compiles once.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::Duration;

use wasmtime::{Config, Engine, ExternType, InstancePre, Linker, Module, OptLevel};

use super::abi::AbiVersion;
use super::host;
use super::state::HostState;

/// How often the epoch advances. A guest call's deadline is counted in these ticks.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);

/// A module compiled and linked, ready to instantiate cheaply.
pub struct CompiledModule {
    pub abi: AbiVersion,
    pub pre: InstancePre<HostState>,
}

pub fn engine() -> &'static Engine {
    static ENGINE: OnceLock<Engine> = OnceLock::new();
    ENGINE.get_or_init(|| {
        let mut config = Config::new();
        config.epoch_interruption(true);
        config.cranelift_opt_level(OptLevel::Speed);
        // Keep instantiation cheap and memory small: no huge virtual reservations or
        // guard regions per instance beyond wasmtime's defaults for 32-bit memories.
        let engine = match Engine::new(&config) {
            Ok(e) => e,
            Err(e) => {
                // The configuration above is static; failing here is a build defect.
                tracing::error!(error = %e, "wasm engine configuration rejected, using defaults");
                Engine::default()
            }
        };
        start_epoch_ticker(engine.weak());
        engine
    })
}

fn start_epoch_ticker(engine: wasmtime::EngineWeak) {
    let spawned = std::thread::Builder::new()
        .name("wasm-epoch".into())
        .spawn(move || loop {
            std::thread::sleep(EPOCH_TICK);
            match engine.upgrade() {
                Some(e) => e.increment_epoch(),
                None => return,
            }
        });
    if let Err(e) = spawned {
        tracing::error!(error = %e, "cannot start the wasm epoch thread: runaway plugins will not be interrupted");
    }
}

/// Compiles `wasm` (or returns the cached compile) and links it against the host.
pub fn compile(wasm: &[u8]) -> Result<Arc<CompiledModule>, String> {
    static CACHE: OnceLock<Mutex<HashMap<String, Weak<CompiledModule>>>> = OnceLock::new();
    let sha = super::fetch::sha256_hex(wasm);
    let cache = CACHE.get_or_init(Default::default);
    if let Some(hit) = lock(cache).get(&sha).and_then(Weak::upgrade) {
        return Ok(hit);
    }
    // Compile outside the lock: it takes ~100 ms and other modules may compile meanwhile.
    let compiled = Arc::new(compile_uncached(wasm)?);
    let mut map = lock(cache);
    map.retain(|_, w| w.strong_count() > 0);
    if let Some(hit) = map.get(&sha).and_then(Weak::upgrade) {
        return Ok(hit);
    }
    map.insert(sha, Arc::downgrade(&compiled));
    Ok(compiled)
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poison| poison.into_inner())
}

fn compile_uncached(wasm: &[u8]) -> Result<CompiledModule, String> {
    let engine = engine();
    let module =
        Module::new(engine, wasm).map_err(|e| format!("not a valid wasm module: {e:#}"))?;
    let abi = AbiVersion::detect(module.exports().map(|e| e.name())).ok_or_else(|| {
        "the module exports no proxy_abi_version_* function: it was not built with a \
         proxy-wasm SDK"
            .to_string()
    })?;
    if !module.exports().any(|e| e.name() == "memory") {
        return Err("the module exports no memory".into());
    }
    let (base, known) = base_linker();
    let mut linker = base.clone();
    link_unknown_imports(&mut linker, known, &module)?;
    let pre = linker
        .instantiate_pre(&module)
        .map_err(|e| format!("cannot link the module: {e:#}"))?;
    Ok(CompiledModule { abi, pre })
}

/// The linker with every host function, and the `(module, name)` pairs it defines.
type BaseLinker = (Linker<HostState>, HashSet<(String, String)>);

fn base_linker() -> &'static BaseLinker {
    static LINKER: OnceLock<BaseLinker> = OnceLock::new();
    LINKER.get_or_init(|| {
        let mut linker = Linker::new(engine());
        let mut names = HashSet::new();
        if let Err(e) = host::add_to_linker(&mut linker, &mut names) {
            tracing::error!(error = %e, "wasm host functions failed to link");
        }
        (linker, names)
    })
}

/// Imports the host does not provide become functions that log once and trap, so such
/// a module still loads and only fails if it actually calls them.
fn link_unknown_imports(
    linker: &mut Linker<HostState>,
    known: &HashSet<(String, String)>,
    module: &Module,
) -> Result<(), String> {
    let mut stubbed = HashSet::new();
    for import in module.imports() {
        let (m, n) = (import.module().to_string(), import.name().to_string());
        if known.contains(&(m.clone(), n.clone())) || !stubbed.insert((m.clone(), n.clone())) {
            continue;
        }
        match import.ty() {
            ExternType::Func(ty) => {
                tracing::warn!(import = %format!("{m}.{n}"), "plugin imports a function this host does not provide; calling it fails the plugin");
                let logged = std::sync::atomic::AtomicBool::new(false);
                let what = format!("{m}.{n}");
                linker
                    .func_new(&m, &n, ty, move |_, _, _| {
                        if !logged.swap(true, std::sync::atomic::Ordering::Relaxed) {
                            tracing::error!(import = %what, "plugin called a host function this proxy does not provide");
                        }
                        Err(wasmtime::Error::msg(format!("host function {what} is not provided")))
                    })
                    .map_err(|e| format!("cannot stub import {m}.{n}: {e:#}"))?;
            }
            other => {
                return Err(format!(
                    "the module imports {m}.{n} ({}), which this host cannot provide",
                    match other {
                        ExternType::Memory(_) => "a memory",
                        ExternType::Table(_) => "a table",
                        ExternType::Global(_) => "a global",
                        _ => "a non-function",
                    }
                ));
            }
        }
    }
    Ok(())
}

/// Every `(module, name)` function the host links, sorted: what a plugin may import
/// without trapping when it calls it (`meshgate plugin check` compares against this).
pub fn host_imports() -> Vec<(String, String)> {
    let mut names: Vec<_> = base_linker().1.iter().cloned().collect();
    names.sort();
    names
}

/// A module compiled and linked against this host. While a value lives, the module
/// stays in the process-wide compile cache, so chains loading the same bytes skip
/// compilation (a test process loads one plugin many times).
#[derive(Clone)]
pub struct PrecompiledModule(#[allow(dead_code)] Arc<CompiledModule>);

/// Compiles and links `wasm` exactly as `PluginChain::new` would, without starting it:
/// the error is the one a WasmPlugin using this module would report.
pub fn precompile(wasm: &[u8]) -> Result<PrecompiledModule, String> {
    compile(wasm).map(PrecompiledModule)
}
