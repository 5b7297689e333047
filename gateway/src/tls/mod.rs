//! TLS owns rustls configuration: server certificates by SNI, credential files and their rotation, upstream client TLS.
//!
//! Every config is built with the ring provider handed in explicitly ([`provider`]); nothing
//! relies on a process-wide default provider being installed.

mod client;
mod client_hello;
mod credentials;
mod error;
mod pem;
mod san;
mod server;
pub(crate) mod verify;

use std::sync::{Arc, OnceLock};

use rustls::crypto::CryptoProvider;

pub use client::{client_config, upstream_server_name};
pub use client_hello::{
    parse_client_hello, peek_client_hello, ClientHelloInfo, ClientHelloParse, PeekError,
    PeekedClientHello, PrefixedStream, MAX_CLIENT_HELLO_BYTES,
};
pub use credentials::{Credential, CredentialSource, CredentialStore, CHECK_INTERVAL};
pub use error::TlsError;
pub use pem::{read_certs, read_private_key, read_roots};
pub use san::{certificate_sans, matches_any_san};
pub use server::{
    HandshakeInfo, ServerTlsStream, SniAcceptor, TlsServer, DEFAULT_HANDSHAKE_TIMEOUT,
};

/// ALPN protocols offered by default, in preference order.
pub const DEFAULT_ALPN: [&[u8]; 2] = [b"h2", b"http/1.1"];

/// The ring crypto provider every config in the crate is built with.
pub fn provider() -> Arc<CryptoProvider> {
    static PROVIDER: OnceLock<Arc<CryptoProvider>> = OnceLock::new();
    PROVIDER
        .get_or_init(|| Arc::new(rustls::crypto::ring::default_provider()))
        .clone()
}

/// ALPN names as the owned list rustls configs hold.
pub(crate) fn alpn_list(alpn: &[&[u8]]) -> Vec<Vec<u8>> {
    alpn.iter().map(|p| p.to_vec()).collect()
}
