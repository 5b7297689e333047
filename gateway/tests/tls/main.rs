//! Real TLS over 127.0.0.1: SNI server choice, credential rotation, client-certificate
//! modes, passthrough SNI peeking, and upstream client configs.
#![allow(clippy::unwrap_used)]

mod mutual;
mod passthrough;
mod sni;
mod support;
mod upstream;
