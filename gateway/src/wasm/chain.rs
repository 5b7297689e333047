//! A listener's ordered plugins, compiled and started up-front, handing out streams.

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use bytes::Bytes;

use super::callout::HttpCallout;
use super::engine;
use super::plugin::LoadedPlugin;
use super::shared::PluginEvents;
use super::spec::{sort_for_execution, FailStrategy, PluginSpec};
use super::state::PluginContext;
use super::stream::{Slot, SlotState, Stream};
use super::types::StreamInfo;

/// The plugins one listener runs, in execution order. Cheap to clone; streams created
/// from it keep working across config swaps (they hold their own plugin references).
#[derive(Clone)]
pub struct PluginChain {
    plugins: Arc<[Arc<LoadedPlugin>]>,
}

impl std::fmt::Debug for PluginChain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.plugins.iter().map(|p| p.name()))
            .finish()
    }
}

impl PluginChain {
    /// Compiles (or reuses the cached compile of) every module and starts one instance
    /// of each, so the chain is ready before the listener accepts. Specs are put in
    /// execution order (phase, then priority). Every plugin that fails is reported as
    /// `(name, error)`.
    pub fn new(
        mut specs: Vec<PluginSpec>,
        callout: Arc<dyn HttpCallout>,
    ) -> Result<PluginChain, Vec<(String, String)>> {
        sort_for_execution(&mut specs);
        let mut plugins = Vec::with_capacity(specs.len());
        let mut errors = Vec::new();
        for spec in specs {
            let name = spec.name.clone();
            let compiled = match engine::compile(&spec.wasm) {
                Ok(c) => c,
                Err(e) => {
                    errors.push((name, e));
                    continue;
                }
            };
            let ctx = Arc::new(PluginContext {
                name: spec.name.clone(),
                root_id: spec.root_id.clone(),
                vm_id: spec.vm_id.clone(),
                config: Bytes::from(spec.config.clone()),
                vm_config: Bytes::from(spec.vm_config.clone()),
                env: spec.vm_env.clone(),
                node_metadata: spec.node_metadata.clone(),
                callout: callout.clone(),
                events: Arc::new(PluginEvents::default()),
                warned_grpc: AtomicBool::new(false),
                warned_unsupported: AtomicBool::new(false),
            });
            match LoadedPlugin::load(spec, compiled, ctx) {
                Ok(p) => plugins.push(p),
                Err(e) => errors.push((name, e.reason)),
            }
        }
        if errors.is_empty() {
            Ok(PluginChain {
                plugins: plugins.into(),
            })
        } else {
            Err(errors)
        }
    }

    pub fn is_empty(&self) -> bool {
        self.plugins.is_empty()
    }

    /// Plugin names in execution order.
    pub fn plugin_names(&self) -> Vec<String> {
        self.plugins.iter().map(|p| p.name().to_string()).collect()
    }

    /// Idle instances per plugin, in execution order (for admin/debug output).
    pub fn idle_instances(&self) -> Vec<usize> {
        self.plugins.iter().map(|p| p.idle_instances()).collect()
    }

    /// Starts a stream: takes an instance of every plugin that applies to the
    /// stream's listener and port (`match[]`) and creates its HTTP context. Never
    /// waits on other streams; a plugin without an idle instance starts a new one.
    pub fn new_stream(&self, info: StreamInfo) -> Stream {
        let mut slots = Vec::with_capacity(self.plugins.len());
        for plugin in self.plugins.iter() {
            if !plugin.spec.applies_to(info.listener, info.port) {
                continue;
            }
            let strategy = plugin.spec.fail_strategy;
            let failed_state = if strategy == FailStrategy::FailOpen {
                SlotState::Skipped
            } else {
                SlotState::FailClosed
            };
            let (state, ctx) = if plugin.is_failed() {
                (failed_state, 0)
            } else {
                match plugin
                    .checkout()
                    .and_then(|mut inst| inst.create_stream_context().map(|ctx| (inst, ctx)))
                {
                    Ok((inst, ctx)) => (SlotState::Active(inst), ctx),
                    Err(e) => {
                        plugin.record_failure(&e);
                        (failed_state, 0)
                    }
                }
            };
            slots.push(Slot {
                plugin: plugin.clone(),
                state,
                ctx,
            });
        }
        Stream::new(slots, info)
    }
}
