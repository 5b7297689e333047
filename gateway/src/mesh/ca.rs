//! The local mesh CA (`meshgate ca init DIR`): a root certificate and key on disk that
//! sign short-lived workload certificates.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose, SanType, SerialNumber, PKCS_ECDSA_P256_SHA256,
};
use rustls::pki_types::{CertificateDer, PrivatePkcs8KeyDer};
use rustls::RootCertStore;

use super::spiffe::{SpiffeId, DEFAULT_TRUST_DOMAIN};
use super::MeshError;

pub const ROOT_CERT_FILE: &str = "root-cert.pem";
pub const CA_KEY_FILE: &str = "ca-key.pem";
/// Ten years, like Istio's self-signed root.
pub const DEFAULT_CA_VALIDITY: Duration = Duration::from_secs(3650 * 24 * 3600);
/// Certificates start this long before "now" so small clock differences do not reject them.
const CLOCK_SKEW: Duration = Duration::from_secs(60);

#[derive(Debug, Clone)]
pub struct CaInitOptions {
    pub trust_domain: String,
    pub validity: Duration,
    /// Replace an existing CA in the folder.
    pub force: bool,
}

impl Default for CaInitOptions {
    fn default() -> Self {
        CaInitOptions {
            trust_domain: DEFAULT_TRUST_DOMAIN.into(),
            validity: DEFAULT_CA_VALIDITY,
            force: false,
        }
    }
}

/// Writes a new root CA into `dir` (ECDSA P-256; `root-cert.pem`, and `ca-key.pem` as
/// PKCS#8 with mode 0600) and returns it loaded. Refuses to overwrite an existing CA
/// unless `force`.
pub fn init_ca(dir: &Path, opts: &CaInitOptions) -> Result<MeshCa, MeshError> {
    let cert_path = dir.join(ROOT_CERT_FILE);
    let key_path = dir.join(CA_KEY_FILE);
    if !opts.force && (cert_path.exists() || key_path.exists()) {
        return Err(MeshError::files(
            dir,
            "already holds a mesh CA; pass --force to replace it (every workload certificate must then be re-issued)",
        ));
    }
    SpiffeId::new(&opts.trust_domain, "x", "x").map_err(|_| {
        MeshError::Cert(format!(
            "'{}' is not a valid trust domain (lower-case letters, digits, '.', '-')",
            opts.trust_domain
        ))
    })?;
    std::fs::create_dir_all(dir).map_err(|e| MeshError::files(dir, e))?;

    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)
        .map_err(|e| MeshError::Cert(e.to_string()))?;
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, opts.trust_domain.as_str());
    dn.push(DnType::CommonName, "meshgate mesh root CA");
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let now = SystemTime::now();
    params.not_before = (now - CLOCK_SKEW).into();
    params.not_after = (now + opts.validity).into();
    params.serial_number = Some(random_serial());
    let cert = params
        .self_signed(&key)
        .map_err(|e| MeshError::Cert(e.to_string()))?;

    write_file(&key_path, key.serialize_pem().as_bytes(), 0o600)?;
    write_file(&cert_path, cert.pem().as_bytes(), 0o644)?;
    MeshCa::load(dir)
}

/// Writes through a temporary file and a rename so readers never see half a file; the
/// temporary file is created with `mode` so a key is never readable by others.
fn write_file(path: &Path, contents: &[u8], mode: u32) -> Result<(), MeshError> {
    let tmp = path.with_extension("pem.tmp");
    let _ = std::fs::remove_file(&tmp);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, mode);
    #[cfg(not(unix))]
    let _ = mode;
    let mut file = options.open(&tmp).map_err(|e| MeshError::files(&tmp, e))?;
    file.write_all(contents)
        .and_then(|()| file.sync_all())
        .map_err(|e| MeshError::files(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| MeshError::files(path, e))
}

fn random_serial() -> SerialNumber {
    let mut bytes: Vec<u8> = (0..16).map(|_| fastrand::u8(..)).collect();
    bytes[0] = (bytes[0] & 0x7f) | 0x01; // positive, and no leading zero byte
    SerialNumber::from_slice(&bytes)
}

/// A certificate issued to a workload.
#[derive(Debug)]
pub struct IssuedCert {
    /// Leaf first (the root is distributed separately, as `root-cert.pem`).
    pub chain: Vec<CertificateDer<'static>>,
    pub key: PrivatePkcs8KeyDer<'static>,
    pub not_after: SystemTime,
    pub serial: Vec<u8>,
}

/// A loaded CA: the root certificate and the key that signs with it.
pub struct MeshCa {
    root: CertificateDer<'static>,
    issuer: rcgen::Certificate,
    key: KeyPair,
    trust_domain: String,
    not_after: SystemTime,
    dir: PathBuf,
}

impl std::fmt::Debug for MeshCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MeshCa")
            .field("dir", &self.dir)
            .field("trust_domain", &self.trust_domain)
            .finish()
    }
}

impl MeshCa {
    /// Reads `DIR/root-cert.pem` and `DIR/ca-key.pem` and checks they belong together.
    pub fn load(dir: &Path) -> Result<Self, MeshError> {
        let cert_path = dir.join(ROOT_CERT_FILE);
        let key_path = dir.join(CA_KEY_FILE);
        let root = crate::tls::read_certs(&cert_path)?.remove(0);
        let key_pem =
            std::fs::read_to_string(&key_path).map_err(|e| MeshError::files(&key_path, e))?;
        let key = KeyPair::from_pem(&key_pem)
            .map_err(|e| MeshError::files(&key_path, format!("not a usable private key: {e}")))?;
        let (_, parsed) = x509_parser::parse_x509_certificate(&root).map_err(|e| {
            MeshError::files(&cert_path, format!("not a parsable certificate: {e}"))
        })?;
        if parsed.public_key().raw != key.public_key_der().as_slice() {
            return Err(MeshError::files(
                &key_path,
                format!("this key does not belong to {}", cert_path.display()),
            ));
        }
        let trust_domain = parsed
            .subject()
            .iter_organization()
            .next()
            .and_then(|o| o.as_str().ok())
            .unwrap_or(DEFAULT_TRUST_DOMAIN)
            .to_string();
        let not_after = SystemTime::UNIX_EPOCH
            + Duration::from_secs(
                u64::try_from(parsed.validity().not_after.timestamp()).unwrap_or(0),
            );
        let issuer = CertificateParams::from_ca_cert_der(&root)
            .and_then(|params| params.self_signed(&key))
            .map_err(|e| MeshError::files(&cert_path, format!("unusable CA certificate: {e}")))?;
        Ok(MeshCa {
            root,
            issuer,
            key,
            trust_domain,
            not_after,
            dir: dir.to_path_buf(),
        })
    }

    pub fn root_cert(&self) -> &CertificateDer<'static> {
        &self.root
    }

    /// A root store holding only this CA: what mesh peers are verified against.
    pub fn roots(&self) -> RootCertStore {
        let mut roots = RootCertStore::empty();
        // The root was parsed at load; adding it cannot fail for a certificate we issued.
        if let Err(e) = roots.add(self.root.clone()) {
            tracing::error!(error = %e, "mesh root certificate is not a usable trust anchor");
        }
        roots
    }

    pub fn trust_domain(&self) -> &str {
        &self.trust_domain
    }

    pub fn not_after(&self) -> SystemTime {
        self.not_after
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Issues a leaf for `id`: ECDSA P-256, URI SAN = the SPIFFE ID, server+client auth,
    /// valid from a minute ago for `lifetime` (never beyond the root's own expiry).
    pub fn issue(&self, id: &SpiffeId, lifetime: Duration) -> Result<IssuedCert, MeshError> {
        if lifetime.is_zero() {
            return Err(MeshError::Cert(
                "certificate lifetime must be above zero".into(),
            ));
        }
        if id.trust_domain != self.trust_domain {
            return Err(MeshError::Cert(format!(
                "{id} is outside this CA's trust domain '{}'",
                self.trust_domain
            )));
        }
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)
            .map_err(|e| MeshError::Cert(e.to_string()))?;
        let uri = id
            .to_string()
            .try_into()
            .map_err(|e| MeshError::Cert(format!("{id}: {e}")))?;
        let mut params = CertificateParams::default();
        // Istio's workload certificates carry the identity only in the SAN.
        params.distinguished_name = DistinguishedName::new();
        params.subject_alt_names = vec![SanType::URI(uri)];
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        params.use_authority_key_identifier_extension = true;
        let now = SystemTime::now();
        let not_after = (now + lifetime).min(self.not_after);
        params.not_before = (now - CLOCK_SKEW).into();
        params.not_after = not_after.into();
        let serial = random_serial();
        params.serial_number = Some(serial.clone());
        let cert = params
            .signed_by(&key, &self.issuer, &self.key)
            .map_err(|e| MeshError::Cert(e.to_string()))?;
        Ok(IssuedCert {
            chain: vec![cert.der().clone()],
            key: PrivatePkcs8KeyDer::from(key.serialize_der()),
            not_after,
            serial: serial.to_bytes(),
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn temp_dir(tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "meshgate-ca-{tag}-{}-{}",
            std::process::id(),
            fastrand::u64(..)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn init_writes_a_loadable_ca_with_a_private_key_file() {
        let dir = temp_dir("init");
        let ca = init_ca(&dir, &CaInitOptions::default()).unwrap();
        assert_eq!(ca.trust_domain(), "cluster.local");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.join(CA_KEY_FILE))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let key_pem = std::fs::read_to_string(dir.join(CA_KEY_FILE)).unwrap();
        assert!(key_pem.contains("BEGIN PRIVATE KEY"), "PKCS#8 expected");
        let years = ca
            .not_after()
            .duration_since(SystemTime::now())
            .unwrap()
            .as_secs()
            / (365 * 24 * 3600);
        assert_eq!(years, 9, "about ten years left");

        let err = init_ca(&dir, &CaInitOptions::default())
            .unwrap_err()
            .to_string();
        assert!(err.contains("--force"), "{err}");
        let replaced = init_ca(
            &dir,
            &CaInitOptions {
                force: true,
                ..Default::default()
            },
        )
        .unwrap();
        assert_ne!(replaced.root_cert(), ca.root_cert());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_key_from_another_ca_is_refused() {
        let (a, b) = (temp_dir("a"), temp_dir("b"));
        init_ca(&a, &CaInitOptions::default()).unwrap();
        init_ca(&b, &CaInitOptions::default()).unwrap();
        std::fs::copy(b.join(CA_KEY_FILE), a.join(CA_KEY_FILE)).unwrap();
        let err = MeshCa::load(&a).unwrap_err().to_string();
        assert!(err.contains("does not belong"), "{err}");
        std::fs::remove_dir_all(&a).unwrap();
        std::fs::remove_dir_all(&b).unwrap();
    }

    #[test]
    fn issued_leaf_carries_the_identity_and_both_usages() {
        let dir = temp_dir("issue");
        let ca = init_ca(&dir, &CaInitOptions::default()).unwrap();
        let id = SpiffeId::in_cluster("default", "reviews").unwrap();
        let issued = ca.issue(&id, Duration::from_secs(3600)).unwrap();
        assert_eq!(
            super::super::spiffe_id_from_cert(&issued.chain[0]),
            Some(id)
        );
        let (_, cert) = x509_parser::parse_x509_certificate(&issued.chain[0]).unwrap();
        let eku = cert.extended_key_usage().unwrap().unwrap().value;
        assert!(eku.server_auth && eku.client_auth);
        let left = issued.not_after.duration_since(SystemTime::now()).unwrap();
        assert!(left <= Duration::from_secs(3600) && left > Duration::from_secs(3500));
        let other = SpiffeId::new("other.domain", "default", "reviews").unwrap();
        assert!(ca.issue(&other, Duration::from_secs(60)).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
