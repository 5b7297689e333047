//! Credentials (`credentialName` folders or inline file paths) loaded on demand, cached,
//! and re-read when their files change, so replacing the files rotates the certificate
//! for new handshakes without a restart.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use rustls::sign::CertifiedKey;
use rustls::RootCertStore;

use super::{pem, provider, TlsError};

/// How often a credential's files are checked for changes (on access).
pub const CHECK_INTERVAL: Duration = Duration::from_secs(1);

/// File names inside `DIR/NAME/`: Kubernetes TLS secret keys first, then Istio's generic ones.
const CERT_NAMES: [&str; 2] = ["tls.crt", "cert"];
const KEY_NAMES: [&str; 2] = ["tls.key", "key"];
const CA_NAMES: [&str; 2] = ["ca.crt", "cacert"];

/// Where a credential comes from.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum CredentialSource {
    /// `credentialName: NAME`: the folder `DIR/NAME` of the store.
    Named(String),
    /// Inline file paths (`serverCertificate`/`privateKey`/`caCertificates` and friends).
    Files {
        cert: Option<PathBuf>,
        key: Option<PathBuf>,
        ca: Option<PathBuf>,
    },
}

/// One loaded credential. Immutable: a rotation produces a new `Arc<Credential>`.
#[derive(Debug)]
pub struct Credential {
    pub source: CredentialSource,
    /// Certificate chain and signing key, when the credential holds a pair.
    pub certified_key: Option<Arc<CertifiedKey>>,
    /// Trust anchors from the CA file, when present.
    pub ca: Option<Arc<RootCertStore>>,
    /// What to name in errors about a missing part.
    cert_hint: String,
    ca_hint: String,
}

impl Credential {
    /// The certificate and key, or an error naming the files that were looked for.
    pub fn certified_key(&self) -> Result<&Arc<CertifiedKey>, TlsError> {
        self.certified_key.as_ref().ok_or_else(|| {
            TlsError::credential(&self.cert_hint, "no certificate/key pair: file not found")
        })
    }

    /// The CA bundle, or an error naming the files that were looked for.
    pub fn ca(&self) -> Result<&Arc<RootCertStore>, TlsError> {
        self.ca
            .as_ref()
            .ok_or_else(|| TlsError::credential(&self.ca_hint, "no CA certificate: file not found"))
    }
}

/// Loads and caches credentials; cheap to clone (shared state).
#[derive(Clone, Debug)]
pub struct CredentialStore {
    inner: Arc<StoreInner>,
}

#[derive(Debug)]
struct StoreInner {
    root: Option<PathBuf>,
    check_interval: Duration,
    entries: Mutex<HashMap<CredentialSource, Arc<Entry>>>,
}

#[derive(Debug)]
struct Entry {
    source: CredentialSource,
    state: Mutex<Option<Loaded>>,
}

#[derive(Debug)]
struct Loaded {
    current: Result<Arc<Credential>, TlsError>,
    stamps: Vec<Option<FileStamp>>,
    checked: Instant,
}

/// What changes when a file is rewritten or replaced (by rename or a symlink swap).
#[derive(Debug, Clone, PartialEq, Eq)]
struct FileStamp {
    modified: Option<SystemTime>,
    len: u64,
    #[cfg(unix)]
    inode: u64,
}

impl CredentialStore {
    /// A store resolving `credentialName`s under `root` (`--credentials DIR`).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self::build(Some(root.into()), CHECK_INTERVAL)
    }

    /// A store for inline file paths only; named credentials are an error.
    pub fn without_root() -> Self {
        Self::build(None, CHECK_INTERVAL)
    }

    /// Like [`CredentialStore::new`] with a different change-check interval.
    pub fn with_check_interval(root: impl Into<PathBuf>, interval: Duration) -> Self {
        Self::build(Some(root.into()), interval)
    }

    fn build(root: Option<PathBuf>, check_interval: Duration) -> Self {
        CredentialStore {
            inner: Arc::new(StoreInner {
                root,
                check_interval,
                entries: Mutex::new(HashMap::new()),
            }),
        }
    }

    pub fn root(&self) -> Option<&Path> {
        self.inner.root.as_deref()
    }

    /// The current credential `NAME` (`DIR/NAME/...`).
    pub fn get(&self, name: &str) -> Result<Arc<Credential>, TlsError> {
        self.get_source(&CredentialSource::Named(name.to_string()))
    }

    /// The current credential for `source`, re-read if its files changed since the last
    /// check (checks happen at most once per check interval). A reload that fails keeps the
    /// previous good credential, so a half-written rotation never breaks serving.
    pub fn get_source(&self, source: &CredentialSource) -> Result<Arc<Credential>, TlsError> {
        let entry = {
            let mut entries = self.inner.entries.lock().unwrap_or_else(|p| p.into_inner());
            entries
                .entry(source.clone())
                .or_insert_with(|| {
                    Arc::new(Entry {
                        source: source.clone(),
                        state: Mutex::new(None),
                    })
                })
                .clone()
        };
        entry.current(self.inner.root.as_deref(), self.inner.check_interval)
    }
}

impl Entry {
    fn current(
        &self,
        root: Option<&Path>,
        interval: Duration,
    ) -> Result<Arc<Credential>, TlsError> {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(loaded) = state.as_ref() {
            if loaded.checked.elapsed() < interval {
                return loaded.current.clone();
            }
        }
        let paths = Paths::resolve(&self.source, root);
        let stamps = paths.as_ref().map(Paths::stamps).unwrap_or_default();
        if let Some(loaded) = state.as_mut() {
            loaded.checked = Instant::now();
            if paths.is_ok() && loaded.stamps == stamps {
                return loaded.current.clone();
            }
        }
        let fresh = paths.and_then(|p| p.load(&self.source)).map(Arc::new);
        match (state.as_mut(), fresh) {
            (Some(loaded), Err(e)) if loaded.current.is_ok() => {
                // Keep serving the last good credential; the stamps stay old so the next
                // check tries again (the writer may be half-way through a rotation).
                tracing::warn!(error = %e, "credential changed but does not load; keeping the previous one");
                loaded.current.clone()
            }
            (_, fresh) => {
                *state = Some(Loaded {
                    current: fresh.clone(),
                    stamps,
                    checked: Instant::now(),
                });
                fresh
            }
        }
    }
}

/// The files one credential is read from, with the alternatives that are watched.
struct Paths {
    /// The folder (named credentials) or the first given file: what errors name.
    cert: Option<PathBuf>,
    key: Option<PathBuf>,
    ca: Option<PathBuf>,
    cert_hint: String,
    ca_hint: String,
    /// Every file whose appearance, change or removal means "reload".
    watched: Vec<PathBuf>,
}

impl Paths {
    fn resolve(source: &CredentialSource, root: Option<&Path>) -> Result<Paths, TlsError> {
        match source {
            CredentialSource::Files { cert, key, ca } => {
                let watched = [cert, key, ca].into_iter().flatten().cloned().collect();
                let show = |p: &Option<PathBuf>| {
                    p.as_ref()
                        .map(|p| p.display().to_string())
                        .unwrap_or_else(|| "(not set)".into())
                };
                Ok(Paths {
                    cert: cert.clone(),
                    key: key.clone(),
                    ca: ca.clone(),
                    cert_hint: format!("{} + {}", show(cert), show(key)),
                    ca_hint: show(ca),
                    watched,
                })
            }
            CredentialSource::Named(name) => {
                let Some(root) = root else {
                    return Err(TlsError::Config(format!(
                        "credentialName '{name}' needs a credentials folder (--credentials DIR)"
                    )));
                };
                check_name(name)?;
                let dir = root.join(name);
                if !dir.is_dir() {
                    return Err(TlsError::credential(&dir, "credential folder not found"));
                }
                // Istio also reads the CA from a separate secret named `NAME-cacert`.
                let ca_dir = root.join(format!("{name}-cacert"));
                let mut watched: Vec<PathBuf> = CERT_NAMES
                    .iter()
                    .chain(&KEY_NAMES)
                    .chain(&CA_NAMES)
                    .map(|f| dir.join(f))
                    .collect();
                watched.extend(CA_NAMES.iter().map(|f| ca_dir.join(f)));
                let first = |d: &Path, names: &[&str]| {
                    names.iter().map(|n| d.join(n)).find(|p| p.is_file())
                };
                Ok(Paths {
                    cert: first(&dir, &CERT_NAMES),
                    key: first(&dir, &KEY_NAMES),
                    ca: first(&dir, &CA_NAMES).or_else(|| first(&ca_dir, &CA_NAMES)),
                    cert_hint: format!("{}/{{tls.crt,tls.key}} (or cert/key)", dir.display()),
                    ca_hint: format!(
                        "{}/ca.crt (or cacert, or {}/ca.crt)",
                        dir.display(),
                        ca_dir.display()
                    ),
                    watched,
                })
            }
        }
    }

    fn stamps(&self) -> Vec<Option<FileStamp>> {
        self.watched.iter().map(|p| stamp(p)).collect()
    }

    fn load(&self, source: &CredentialSource) -> Result<Credential, TlsError> {
        let certified_key = match (&self.cert, &self.key) {
            (Some(cert), Some(key)) => Some(Arc::new(load_pair(cert, key)?)),
            (Some(cert), None) => {
                return Err(TlsError::credential(
                    cert,
                    format!("certificate without a private key: {}", self.cert_hint),
                ))
            }
            (None, Some(key)) => {
                return Err(TlsError::credential(
                    key,
                    format!("private key without a certificate: {}", self.cert_hint),
                ))
            }
            (None, None) => None,
        };
        let ca = match &self.ca {
            Some(ca) => Some(Arc::new(pem::read_roots(ca)?)),
            None => None,
        };
        if certified_key.is_none() && ca.is_none() {
            return Err(TlsError::credential(
                &self.cert_hint,
                "no certificate, key or CA file found",
            ));
        }
        Ok(Credential {
            source: source.clone(),
            certified_key,
            ca,
            cert_hint: self.cert_hint.clone(),
            ca_hint: self.ca_hint.clone(),
        })
    }
}

fn load_pair(cert: &Path, key: &Path) -> Result<CertifiedKey, TlsError> {
    let chain = pem::read_certs(cert)?;
    let key_der = pem::read_private_key(key)?;
    CertifiedKey::from_der(chain, key_der, &provider()).map_err(|e| {
        TlsError::credential(
            key,
            format!("unusable private key for {}: {e}", cert.display()),
        )
    })
}

/// Names are Kubernetes object names: no path tricks.
fn check_name(name: &str) -> Result<(), TlsError> {
    let ok = !name.is_empty()
        && name != "."
        && name != ".."
        && name.len() <= 253
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'));
    if ok {
        Ok(())
    } else {
        Err(TlsError::Config(format!(
            "credentialName '{name}' is not a valid name (letters, digits, '-', '.', '_')"
        )))
    }
}

fn stamp(path: &Path) -> Option<FileStamp> {
    let meta = std::fs::metadata(path).ok()?;
    Some(FileStamp {
        modified: meta.modified().ok(),
        len: meta.len(),
        #[cfg(unix)]
        inode: std::os::unix::fs::MetadataExt::ino(&meta),
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn names_cannot_escape_the_folder() {
        for bad in ["", ".", "..", "../etc", "a/b", "a\\b"] {
            assert!(check_name(bad).is_err(), "{bad:?} accepted");
        }
        check_name("httpbin-credential").unwrap();
    }

    #[test]
    fn missing_credential_names_the_path() {
        let store = CredentialStore::new("/nonexistent-meshgate-creds");
        let err = store.get("web").unwrap_err().to_string();
        assert!(err.contains("/nonexistent-meshgate-creds/web"), "{err}");
        let err = CredentialStore::without_root()
            .get("web")
            .unwrap_err()
            .to_string();
        assert!(err.contains("--credentials"), "{err}");
    }
}
