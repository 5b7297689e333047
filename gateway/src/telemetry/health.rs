//! The proxy's own health metrics (`meshgate_*`): downstream connections, config
//! reloads, plugin failures and dropped access-log lines. The upstream ones (pools,
//! circuit breakers, ejections) are read from the clusters at scrape time
//! (`upstream::metrics`).
//! Each owner asks once for a small handle of cloned counters and keeps it.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ListenerLabel {
    listener: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PluginLabel {
    plugin: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReloadLabel {
    result: &'static str,
}

/// Registered `meshgate_*` families.
#[derive(Debug)]
pub struct ProxyMetrics {
    downstream_active: Family<ListenerLabel, Gauge>,
    downstream_total: Family<ListenerLabel, Counter>,
    config_version: Gauge,
    reloads_ok: Counter,
    reloads_rejected: Counter,
    wasm_traps: Family<PluginLabel, Counter>,
    wasm_timeouts: Family<PluginLabel, Counter>,
    access_log_dropped: Counter,
}

impl ProxyMetrics {
    pub fn new(registry: &mut Registry) -> ProxyMetrics {
        // Both reload series exist from the start, so `rate()` sees the first rejection.
        let reloads: Family<ReloadLabel, Counter> = Family::default();
        let reloads_ok = reloads.get_or_create(&ReloadLabel { result: "ok" }).clone();
        let reloads_rejected = reloads
            .get_or_create(&ReloadLabel { result: "rejected" })
            .clone();
        let m = ProxyMetrics {
            downstream_active: Family::default(),
            downstream_total: Family::default(),
            config_version: Gauge::default(),
            reloads_ok,
            reloads_rejected,
            wasm_traps: Family::default(),
            wasm_timeouts: Family::default(),
            access_log_dropped: Counter::default(),
        };
        let r = registry.sub_registry_with_prefix("meshgate");
        r.register(
            "downstream_connections_active",
            "Downstream connections open now, per listener",
            m.downstream_active.clone(),
        );
        r.register(
            "downstream_connections",
            "Downstream connections accepted, per listener",
            m.downstream_total.clone(),
        );
        r.register(
            "config_version",
            "Version of the routing snapshot in use",
            m.config_version.clone(),
        );
        r.register(
            "config_reloads",
            "Configuration reloads, by result (ok, rejected)",
            reloads,
        );
        r.register(
            "wasm_plugin_traps",
            "Wasm plugin traps, per plugin",
            m.wasm_traps.clone(),
        );
        r.register(
            "wasm_plugin_timeouts",
            "Wasm plugin calls stopped for exceeding their time budget, per plugin",
            m.wasm_timeouts.clone(),
        );
        r.register(
            "access_log_dropped",
            "Access log lines dropped because the writer fell behind",
            m.access_log_dropped.clone(),
        );
        m
    }

    /// Handles for one listener (name it by its address or port name).
    pub fn listener(&self, name: &str) -> ListenerStats {
        let l = ListenerLabel {
            listener: name.to_string(),
        };
        ListenerStats {
            active: self.downstream_active.get_or_create(&l).clone(),
            total: self.downstream_total.get_or_create(&l).clone(),
        }
    }

    /// Handles for one wasm plugin (`namespace/name` of its WasmPlugin).
    pub fn plugin(&self, name: &str) -> PluginStats {
        let l = PluginLabel {
            plugin: name.to_string(),
        };
        PluginStats {
            traps: self.wasm_traps.get_or_create(&l).clone(),
            timeouts: self.wasm_timeouts.get_or_create(&l).clone(),
        }
    }

    /// A new snapshot `version` is live.
    pub fn config_applied(&self, version: u64) {
        self.config_version
            .set(i64::try_from(version).unwrap_or(i64::MAX));
        self.reloads_ok.inc();
    }

    /// A reload was refused; the previous snapshot stays.
    pub fn config_rejected(&self) {
        self.reloads_rejected.inc();
    }

    /// The counter the access-log writer increments when it drops a line.
    pub fn access_log_dropped(&self) -> Counter {
        self.access_log_dropped.clone()
    }
}

/// Per-listener handles.
#[derive(Clone, Debug)]
pub struct ListenerStats {
    active: Gauge,
    total: Counter,
}

impl ListenerStats {
    /// Counts an accepted connection; it stays active until the guard drops.
    pub fn connection_opened(&self) -> ActiveGuard {
        self.total.inc();
        ActiveGuard::new(self.active.clone())
    }
}

/// Per-plugin handles.
#[derive(Clone, Debug)]
pub struct PluginStats {
    pub traps: Counter,
    pub timeouts: Counter,
}

/// Increments a gauge on creation and decrements it on drop, so early returns and
/// panics cannot leak an "active" count.
#[derive(Debug)]
pub struct ActiveGuard(Gauge);

impl ActiveGuard {
    fn new(gauge: Gauge) -> Self {
        gauge.inc();
        ActiveGuard(gauge)
    }
}

impl Drop for ActiveGuard {
    fn drop(&mut self) {
        self.0.dec();
    }
}
