//! The one way a verified client certificate becomes a device identity.
//!
//! Every listener (HTTPS, MQTT) calls [`device_id`] on the leaf certificate *after* rustls has
//! verified the chain to the hospital CA, the validity period, the revocation list and the
//! extended key usage. This function adds Vigil's own rule: the certificate names exactly one
//! device, as SAN URI `urn:vigil:device:<id>`, and is meant for client authentication.

use vigil_model::{DeviceId, IdError};
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::X509Certificate;

use crate::DEVICE_URI_PREFIX;

/// Why a certificate does not identify a device.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdentityError {
    /// Not a DER X.509 certificate.
    #[error("client certificate cannot be parsed")]
    Unparseable,
    /// No SAN URI `urn:vigil:device:…`.
    #[error("client certificate names no Vigil device (no SAN URI urn:vigil:device:<id>)")]
    NoDeviceName,
    /// More than one device URI.
    #[error("client certificate names more than one Vigil device")]
    SeveralDeviceNames,
    /// The URI holds an invalid device id.
    #[error("client certificate names an invalid device id: {0}")]
    InvalidDeviceId(IdError),
    /// No extended key usage clientAuth.
    #[error("client certificate is not for client authentication (extended key usage)")]
    NotForClientAuth,
}

/// The device a verified client certificate (DER) identifies.
pub fn device_id(cert_der: &[u8]) -> Result<DeviceId, IdentityError> {
    let (rest, cert) =
        x509_parser::parse_x509_certificate(cert_der).map_err(|_| IdentityError::Unparseable)?;
    if !rest.is_empty() {
        return Err(IdentityError::Unparseable);
    }
    let eku = cert
        .extended_key_usage()
        .map_err(|_| IdentityError::Unparseable)?;
    if !eku.is_some_and(|e| e.value.client_auth) {
        return Err(IdentityError::NotForClientAuth);
    }
    device_id_of(&cert)
}

/// The device id named in a parsed certificate's SAN, without the key-usage check.
pub(crate) fn device_id_of(cert: &X509Certificate<'_>) -> Result<DeviceId, IdentityError> {
    let san = cert
        .subject_alternative_name()
        .map_err(|_| IdentityError::Unparseable)?;
    let mut names = san
        .iter()
        .flat_map(|ext| ext.value.general_names.iter())
        .filter_map(|name| match name {
            GeneralName::URI(uri) => uri.strip_prefix(DEVICE_URI_PREFIX),
            _ => None,
        });
    let id = names.next().ok_or(IdentityError::NoDeviceName)?;
    if names.next().is_some() {
        return Err(IdentityError::SeveralDeviceNames);
    }
    DeviceId::new(id).map_err(IdentityError::InvalidDeviceId)
}
