//! Upstream behaviour against real servers on 127.0.0.1: pooling, protocols, TLS, load
//! balancing, circuit breaking, outlier detection and snapshot updates.

// Helpers and spawned tasks here are test code too: a panic is a failed test.
#![allow(clippy::unwrap_used)]

mod balancing;
mod breaking;
mod errors;
mod outlier;
mod pooling;
mod support;
mod updates;
