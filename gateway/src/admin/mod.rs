//! Admin owns the operator endpoints: /config_dump, /clusters, /stats/prometheus, readiness.
