//! The PKI files in the data directory.
//!
//! ```text
//! DIR/pki/            0700
//!   ca.crt.pem        the hospital CA certificate (public; devices trust it)
//!   ca.key.pem        0600, the CA's private key (until it moves to an HSM)
//!   hub.crt.pem       the hub's TLS server certificate followed by the CA certificate
//!   hub.key.pem       0600, the hub's TLS private key
//!   crl.pem           the current signed revocation list
//! ```
//!
//! Keys are written with `create_new` and mode 0600 from the first byte (never chmod-ed after),
//! certificates and CRLs atomically (temporary file, fsync, rename), so a crash never leaves a
//! half-written file where a reader expects a whole one.

use std::fs::{self, DirBuilder, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rcgen::KeyPair;
use time::{Duration, OffsetDateTime};

use crate::ca::HospitalCa;
use crate::facts::CertificateFacts;
use crate::{IssuedCertificate, PkiError};

/// How long the hub's server certificate is valid.
pub const HUB_CERT_LIFETIME: Duration = Duration::days(365);
/// `vigil serve` re-issues the hub certificate when less than this remains.
pub const HUB_CERT_RENEW_BEFORE: Duration = Duration::days(30);

const SECRET_MODE: u32 = 0o600;
const PUBLIC_MODE: u32 = 0o644;

/// The PKI folder of a data directory.
#[derive(Debug, Clone)]
pub struct PkiDir {
    root: PathBuf,
}

impl PkiDir {
    /// The PKI folder of `data_dir` (not touched until used).
    pub fn new(data_dir: &Path) -> PkiDir {
        PkiDir {
            root: data_dir.join("pki"),
        }
    }

    /// Path of the CA certificate.
    pub fn ca_cert_path(&self) -> PathBuf {
        self.root.join("ca.crt.pem")
    }
    /// Path of the CA private key.
    pub fn ca_key_path(&self) -> PathBuf {
        self.root.join("ca.key.pem")
    }
    /// Path of the hub certificate chain.
    pub fn hub_cert_path(&self) -> PathBuf {
        self.root.join("hub.crt.pem")
    }
    /// Path of the hub private key.
    pub fn hub_key_path(&self) -> PathBuf {
        self.root.join("hub.key.pem")
    }
    /// Path of the current CRL.
    pub fn crl_path(&self) -> PathBuf {
        self.root.join("crl.pem")
    }

    /// Creates the CA (ECDSA P-256), the hub's key and server certificate for `hostnames`, and
    /// an empty CRL. Refuses to overwrite an existing CA.
    pub fn create(
        &self,
        organization: &str,
        hostnames: &[String],
        now: OffsetDateTime,
    ) -> Result<HospitalCa, PkiError> {
        DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&self.root)
            .map_err(|source| self.file_error(&self.root, source))?;
        let (ca, ca_key_pem) = HospitalCa::generate(organization, now)?;
        write_new(&self.ca_key_path(), ca_key_pem.as_bytes(), SECRET_MODE)?;
        write_atomic(&self.ca_cert_path(), ca.cert_pem().as_bytes(), PUBLIC_MODE)?;
        self.issue_hub_certificate(&ca, hostnames, now)?;
        let crl = ca.sign_crl(&[], 1, now, now + Duration::days(7))?;
        self.write_crl(&crl)?;
        Ok(ca)
    }

    /// Loads the CA with its key from the key file.
    pub fn load_ca(&self) -> Result<HospitalCa, PkiError> {
        let cert = self.read(&self.ca_cert_path())?;
        let key = self.read(&self.ca_key_path())?;
        let key = KeyPair::from_pem(&key).map_err(|_| PkiError::CaKey)?;
        HospitalCa::load(&cert, Arc::new(key))
    }

    /// Makes a new hub key and server certificate for `hostnames`, replacing the old ones.
    pub fn issue_hub_certificate(
        &self,
        ca: &HospitalCa,
        hostnames: &[String],
        now: OffsetDateTime,
    ) -> Result<IssuedCertificate, PkiError> {
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
        let issued = ca.issue_server(hostnames, &key, HUB_CERT_LIFETIME, now)?;
        // Key first: a crash between the two leaves a new key with the old certificate, which
        // the next start detects (mismatch) and repairs by issuing again.
        write_atomic(
            &self.hub_key_path(),
            key.serialize_pem().as_bytes(),
            SECRET_MODE,
        )?;
        write_atomic(
            &self.hub_cert_path(),
            ca.chain_pem(&issued).as_bytes(),
            PUBLIC_MODE,
        )?;
        Ok(issued)
    }

    /// Facts and names of the current hub certificate (the first in its chain file).
    pub fn hub_certificate(&self) -> Result<(CertificateFacts, Vec<String>), PkiError> {
        use rustls_pki_types::CertificateDer;
        use rustls_pki_types::pem::PemObject;
        let pem = self.read(&self.hub_cert_path())?;
        let der =
            CertificateDer::from_pem_slice(pem.as_bytes()).map_err(|_| PkiError::Certificate)?;
        Ok((
            CertificateFacts::from_der(&der)?,
            crate::facts::server_names(&der)?,
        ))
    }

    /// Writes a signed CRL (DER) as PEM, atomically.
    pub fn write_crl(&self, der: &[u8]) -> Result<(), PkiError> {
        write_atomic(
            &self.crl_path(),
            pem("X509 CRL", der).as_bytes(),
            PUBLIC_MODE,
        )
    }

    /// Reads a PEM file of this folder.
    pub fn read(&self, path: &Path) -> Result<String, PkiError> {
        fs::read_to_string(path).map_err(|source| self.file_error(path, source))
    }

    fn file_error(&self, path: &Path, source: std::io::Error) -> PkiError {
        file_error(path, source)
    }
}

/// PEM with the given label.
pub fn pem(label: &str, der: &[u8]) -> String {
    use base64::Engine;
    let body = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in body.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(line));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

fn file_error(path: &Path, source: std::io::Error) -> PkiError {
    PkiError::File {
        path: path.to_owned(),
        source,
    }
}

/// Creates `path` with `mode` from the start; fails if it exists.
fn write_new(path: &Path, contents: &[u8], mode: u32) -> Result<(), PkiError> {
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .map_err(|e| file_error(path, e))?;
    file.write_all(contents)
        .and_then(|()| file.sync_all())
        .map_err(|e| file_error(path, e))
}

/// Replaces `path` atomically: a temporary file with `mode`, fsync, rename, fsync of the folder.
pub fn write_atomic(path: &Path, contents: &[u8], mode: u32) -> Result<(), PkiError> {
    let tmp = path.with_extension("tmp");
    let _ = fs::remove_file(&tmp);
    write_new(&tmp, contents, mode)?;
    fs::rename(&tmp, path).map_err(|e| file_error(path, e))?;
    if let Some(dir) = path.parent() {
        fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| file_error(dir, e))?;
    }
    Ok(())
}
