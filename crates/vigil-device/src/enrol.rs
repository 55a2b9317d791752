//! Enrolment: the device makes its key pair and a CSR, and trades them with its one-time token
//! for a certificate (`POST /api/v1/enroll`, docs/device-enrolment.md).

use std::time::Duration;

use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

use crate::Identity;

/// Why enrolment failed.
#[derive(Debug, thiserror::Error)]
pub enum EnrolError {
    /// The token is not `vigil1.<id>.<secret>`.
    #[error("the enrolment token is malformed")]
    Token,
    /// The hub's answer holds no certificate naming a device.
    #[error("the hub's answer is not a device certificate")]
    Certificate,
    /// The key or CSR could not be made.
    #[error("cannot make the key pair or CSR: {0}")]
    Key(#[from] rcgen::Error),
    /// The CA certificate does not parse.
    #[error("the CA certificate is not valid PEM")]
    Ca,
    /// The hub could not be reached (or its certificate is not from the CA).
    #[error("cannot reach the hub: {0}")]
    Transport(String),
    /// The hub refused, with this status and problem type.
    #[error("the hub refused the enrolment: {status} {problem}")]
    Refused {
        /// HTTP status.
        status: u16,
        /// The problem document's `type`, or the body's start.
        problem: String,
    },
}

/// Enrols the device `token` was made for at `hub` (`https://host:port`), trusting only
/// `ca_pem`. The device learns its id from its certificate.
pub async fn enrol(hub: &str, ca_pem: &str, token: &str) -> Result<Identity, EnrolError> {
    if !well_formed(token) {
        return Err(EnrolError::Token);
    }
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
    let csr = rcgen::CertificateParams::default().serialize_request(&key)?;
    let response = post(
        &format!("{}/api/v1/enroll", hub.trim_end_matches('/')),
        ca_pem,
        token,
        csr.der().to_vec(),
    )
    .await?;
    let leaf = CertificateDer::pem_slice_iter(response.as_bytes())
        .next()
        .and_then(Result::ok)
        .ok_or(EnrolError::Certificate)?;
    let device = vigil_pki::identity::device_id(&leaf).map_err(|_| EnrolError::Certificate)?;
    Ok(Identity {
        device,
        chain_pem: response,
        key_pem: key.serialize_pem(),
        ca_pem: ca_pem.to_owned(),
    })
}

/// Sends a CSR with `token` as bearer credential; the body of a 201.
pub async fn post(
    url: &str,
    ca_pem: &str,
    token: &str,
    csr_der: Vec<u8>,
) -> Result<String, EnrolError> {
    let ca = reqwest::Certificate::from_pem(ca_pem.as_bytes()).map_err(|_| EnrolError::Ca)?;
    let client = reqwest::Client::builder()
        .tls_certs_only([ca])
        .timeout(Duration::from_secs(30))
        .build()
        .map_err(|e| EnrolError::Transport(e.to_string()))?;
    let response = client
        .post(url)
        .bearer_auth(token)
        .header("Content-Type", "application/pkcs10")
        .body(csr_der)
        .send()
        .await
        .map_err(|e| EnrolError::Transport(e.to_string()))?;
    let status = response.status();
    let body = response
        .text()
        .await
        .map_err(|e| EnrolError::Transport(e.to_string()))?;
    if status.as_u16() != 201 {
        let problem = serde_problem_type(&body).unwrap_or_else(|| body.chars().take(80).collect());
        return Err(EnrolError::Refused {
            status: status.as_u16(),
            problem,
        });
    }
    Ok(body)
}

/// Whether `token` has the shape `vigil1.<id>.<secret>` (the hub judges the rest); checked
/// before a key is made for nothing.
fn well_formed(token: &str) -> bool {
    let mut parts = token.splitn(3, '.');
    matches!(
        (parts.next(), parts.next(), parts.next()),
        (Some("vigil1"), Some(id), Some(secret)) if !id.is_empty() && !secret.is_empty()
    )
}

/// The `"type"` of an RFC 9457 problem document, found without a JSON parser (the body is
/// small and Vigil's own).
fn serde_problem_type(body: &str) -> Option<String> {
    let start = body.find("\"type\"")? + 6;
    let rest = body
        .get(start..)?
        .trim_start()
        .strip_prefix(':')?
        .trim_start();
    let rest = rest.strip_prefix('"')?;
    Some(rest.get(..rest.find('"')?)?.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_malformed_token_is_caught_before_a_key_is_made() {
        assert!(well_formed("vigil1.f010d769.c2VjcmV0"));
        assert!(!well_formed("vigil2.f010d769.x"));
        assert!(!well_formed("vigil1.f010d769."));
        assert!(!well_formed("vigil1..x"));
        assert!(!well_formed("vigil1.f010d769"));
        assert!(!well_formed(""));
    }

    #[test]
    fn the_problem_type_is_found() {
        assert_eq!(
            serde_problem_type(r#"{"type": "urn:vigil:problem:token-spent", "title": "x"}"#)
                .as_deref(),
            Some("urn:vigil:problem:token-spent")
        );
        assert_eq!(serde_problem_type("not json"), None);
    }
}
