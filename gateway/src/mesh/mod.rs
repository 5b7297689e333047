//! Mesh owns sidecar identity: the local CA, workload certificates, SPIFFE checks and PeerAuthentication.

pub mod ca;
mod error;
pub mod identity;
mod mtls;
mod peer_auth;
mod spiffe;
pub mod upstream;

pub use ca::{init_ca, CaInitOptions, IssuedCert, MeshCa, CA_KEY_FILE, ROOT_CERT_FILE};
pub use error::MeshError;
pub use identity::{RenewalTask, WorkloadCert, WorkloadCerts, DEFAULT_CERT_LIFETIME};
pub use mtls::{
    client_config, detect_tls, peer_identity, server_config, InboundConnection, MeshInbound,
};
pub use peer_auth::{effective_mtls_mode, effective_mtls_mode_in, MtlsMode, ROOT_NAMESPACE};
pub use spiffe::{spiffe_id_from_cert, SpiffeId, SpiffeIdError, DEFAULT_TRUST_DOMAIN};
