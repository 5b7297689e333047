//! Telemetry owns Istio's standard metrics and the access log.
