//! What Vigil records about every certificate it issues or sees, for posture checks:
//! "certificate expiring", "one certificate used by two devices", "revoked but still trying".

use aws_lc_rs::digest;
use vigil_model::{DeviceId, Timestamp};
use x509_parser::prelude::X509Certificate;

use crate::identity::device_id_of;
use crate::key::KeyInfo;
use crate::{PkiError, hex};

/// Facts about one certificate. None of them is secret or PHI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateFacts {
    /// Serial number, lowercase hex.
    pub serial: String,
    /// Start of validity.
    pub not_before: Timestamp,
    /// End of validity.
    pub not_after: Timestamp,
    /// The certified key's kind and size, if Vigil's policy accepts it.
    pub key: Option<KeyInfo>,
    /// SHA-256 of the DER certificate, lowercase hex.
    pub fingerprint: String,
    /// The device the certificate names, if it names exactly one valid Vigil device id. For a
    /// certificate that failed verification this is a claim, not an identity.
    pub device: Option<DeviceId>,
}

impl CertificateFacts {
    /// Reads the facts from a DER certificate.
    pub fn from_der(der: &[u8]) -> Result<CertificateFacts, PkiError> {
        let (rest, cert) =
            x509_parser::parse_x509_certificate(der).map_err(|_| PkiError::Certificate)?;
        if !rest.is_empty() {
            return Err(PkiError::Certificate);
        }
        Ok(Self::of(&cert, der))
    }

    pub(crate) fn of(cert: &X509Certificate<'_>, der: &[u8]) -> CertificateFacts {
        let validity = cert.validity();
        let millis = |t: x509_parser::time::ASN1Time| {
            Timestamp::from_unix_millis(t.timestamp().saturating_mul(1000))
                .unwrap_or(Timestamp::EPOCH)
        };
        CertificateFacts {
            serial: hex::encode(cert.raw_serial()),
            not_before: millis(validity.not_before),
            not_after: millis(validity.not_after),
            key: KeyInfo::from_spki(cert.public_key()).ok(),
            fingerprint: fingerprint(der),
            device: device_id_of(cert).ok(),
        }
    }
}

/// SHA-256 fingerprint of DER bytes, lowercase hex.
pub fn fingerprint(der: &[u8]) -> String {
    hex::encode(digest::digest(&digest::SHA256, der).as_ref())
}

/// The DNS names and IP addresses in a certificate's subject alternative names, as text.
pub fn server_names(der: &[u8]) -> Result<Vec<String>, PkiError> {
    use x509_parser::extensions::GeneralName;
    let (_, cert) = x509_parser::parse_x509_certificate(der).map_err(|_| PkiError::Certificate)?;
    let san = cert
        .subject_alternative_name()
        .map_err(|_| PkiError::Certificate)?;
    Ok(san
        .iter()
        .flat_map(|ext| ext.value.general_names.iter())
        .filter_map(|name| match name {
            GeneralName::DNSName(dns) => Some((*dns).to_owned()),
            GeneralName::IPAddress(bytes) => match bytes.len() {
                4 => <[u8; 4]>::try_from(*bytes)
                    .ok()
                    .map(|b| std::net::IpAddr::from(b).to_string()),
                16 => <[u8; 16]>::try_from(*bytes)
                    .ok()
                    .map(|b| std::net::IpAddr::from(b).to_string()),
                _ => None,
            },
            _ => None,
        })
        .collect())
}
