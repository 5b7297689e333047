//! TLS owns rustls configuration: server certificates by SNI, credential files and their rotation, upstream client TLS.
