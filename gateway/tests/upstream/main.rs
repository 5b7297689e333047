//! Upstream behaviour against real servers on 127.0.0.1: pooling, protocols, TLS, load
//! balancing, circuit breaking, outlier detection and snapshot updates.

mod balancing;
mod breaking;
mod errors;
mod outlier;
mod pooling;
mod support;
mod updates;
