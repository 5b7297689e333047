//! Mesh owns sidecar identity: the local CA, workload certificates, SPIFFE checks and PeerAuthentication.
