//! Mesh identity over 127.0.0.1: `meshgate ca init`, mTLS between workload identities,
//! STRICT/PERMISSIVE inbound, and certificate renewal.
#![allow(clippy::unwrap_used)]

mod cli;
mod mtls;
mod renewal;
mod support;
