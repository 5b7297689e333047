//! A workload's certificate (`spiffe://TD/ns/NS/sa/SA`), issued by the mesh CA and renewed
//! in the background at half its lifetime. The current certificate is published with
//! ArcSwap: new handshakes pick up a renewal, established connections keep theirs.

use std::path::Path;
use std::sync::{Arc, Weak};
use std::time::{Duration, SystemTime};

use arc_swap::ArcSwap;
use rustls::pki_types::PrivateKeyDer;
use rustls::sign::CertifiedKey;
use rustls::RootCertStore;

use super::ca::MeshCa;
use super::spiffe::SpiffeId;
use super::MeshError;

/// Istio's default workload certificate lifetime.
pub const DEFAULT_CERT_LIFETIME: Duration = Duration::from_secs(24 * 3600);
/// Floor for the renewal loop's sleeps, so a tiny lifetime cannot make it spin.
const MIN_RENEWAL_WAIT: Duration = Duration::from_millis(50);
/// Longest wait before retrying a failed renewal.
const MAX_RETRY_WAIT: Duration = Duration::from_secs(30);

/// One issued certificate with its key, ready for rustls.
#[derive(Debug)]
pub struct WorkloadCert {
    pub id: SpiffeId,
    pub certified_key: Arc<CertifiedKey>,
    pub issued_at: SystemTime,
    pub not_after: SystemTime,
    pub serial: Vec<u8>,
}

/// The workload identity and its current certificate; cheap to clone (shared state).
#[derive(Debug, Clone)]
pub struct WorkloadCerts {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    ca: Arc<MeshCa>,
    id: SpiffeId,
    lifetime: Duration,
    roots: Arc<RootCertStore>,
    current: ArcSwap<WorkloadCert>,
}

impl WorkloadCerts {
    /// Issues the first certificate for `id` now.
    pub fn new(ca: Arc<MeshCa>, id: SpiffeId, lifetime: Duration) -> Result<Self, MeshError> {
        let first = issue(&ca, &id, lifetime)?;
        let roots = Arc::new(ca.roots());
        Ok(WorkloadCerts {
            inner: Arc::new(Inner {
                ca,
                id,
                lifetime,
                roots,
                current: ArcSwap::from_pointee(first),
            }),
        })
    }

    /// Loads the CA written by `meshgate ca init DIR` and issues the first certificate.
    pub fn from_ca_dir(dir: &Path, id: SpiffeId, lifetime: Duration) -> Result<Self, MeshError> {
        Self::new(Arc::new(MeshCa::load(dir)?), id, lifetime)
    }

    pub fn id(&self) -> &SpiffeId {
        &self.inner.id
    }

    pub fn trust_domain(&self) -> &str {
        self.inner.ca.trust_domain()
    }

    pub fn lifetime(&self) -> Duration {
        self.inner.lifetime
    }

    /// The certificate new handshakes use.
    pub fn current(&self) -> Arc<WorkloadCert> {
        self.inner.current.load_full()
    }

    /// The mesh root: what peers' certificates must chain to.
    pub fn roots(&self) -> Arc<RootCertStore> {
        self.inner.roots.clone()
    }

    /// When the current certificate is due for renewal (half its lifetime).
    pub fn renew_at(&self) -> SystemTime {
        renew_at(&self.current(), self.inner.lifetime)
    }

    /// Issues and publishes a new certificate now.
    pub fn renew(&self) -> Result<Arc<WorkloadCert>, MeshError> {
        self.inner.renew()
    }

    /// Renews at half-life in a tokio task until the returned handle or every clone of
    /// `self` is dropped. Must be called inside a tokio runtime.
    pub fn spawn_renewal(&self) -> RenewalTask {
        RenewalTask(tokio::spawn(renewal_loop(Arc::downgrade(&self.inner))))
    }
}

impl Inner {
    fn renew(&self) -> Result<Arc<WorkloadCert>, MeshError> {
        let fresh = Arc::new(issue(&self.ca, &self.id, self.lifetime)?);
        self.current.store(fresh.clone());
        Ok(fresh)
    }
}

fn renew_at(cert: &WorkloadCert, lifetime: Duration) -> SystemTime {
    (cert.issued_at + lifetime / 2).min(cert.not_after)
}

fn issue(ca: &MeshCa, id: &SpiffeId, lifetime: Duration) -> Result<WorkloadCert, MeshError> {
    let issued_at = SystemTime::now();
    let issued = ca.issue(id, lifetime)?;
    let certified_key = CertifiedKey::from_der(
        issued.chain,
        PrivateKeyDer::Pkcs8(issued.key),
        &crate::tls::provider(),
    )
    .map_err(|e| MeshError::Cert(format!("issued key unusable: {e}")))?;
    Ok(WorkloadCert {
        id: id.clone(),
        certified_key: Arc::new(certified_key),
        issued_at,
        not_after: issued.not_after,
        serial: issued.serial,
    })
}

async fn renewal_loop(inner: Weak<Inner>) {
    loop {
        let wait = {
            let Some(inner) = inner.upgrade() else { return };
            let due = renew_at(&inner.current.load(), inner.lifetime);
            due.duration_since(SystemTime::now()).unwrap_or_default()
        };
        tokio::time::sleep(wait.max(MIN_RENEWAL_WAIT)).await;
        let Some(inner) = inner.upgrade() else { return };
        match inner.renew() {
            Ok(cert) => tracing::debug!(id = %cert.id, "workload certificate renewed"),
            Err(e) => {
                let retry = (inner.lifetime / 10).clamp(MIN_RENEWAL_WAIT, MAX_RETRY_WAIT);
                tracing::warn!(id = %inner.id, error = %e, ?retry, "workload certificate renewal failed");
                drop(inner);
                tokio::time::sleep(retry).await;
            }
        }
    }
}

/// The background renewal; dropping it stops renewing.
#[derive(Debug)]
pub struct RenewalTask(tokio::task::JoinHandle<()>);

impl Drop for RenewalTask {
    fn drop(&mut self) {
        self.0.abort();
    }
}
