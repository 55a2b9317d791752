//! Issuance, revocation and identity, checked with a third-party tool: CSRs made by
//! `openssl req` as well as by rcgen, certificates and CRLs verified by `openssl verify`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use std::path::Path;
use std::process::Command;

use time::{Duration, OffsetDateTime};
use vigil_model::DeviceId;
use vigil_pki::identity::device_id;
use vigil_pki::{
    CsrError, HospitalCa, IdentityError, KeyError, KeyKind, PkiDir, Revocation, RevocationReason,
    ValidatedCsr,
};

fn openssl(dir: &Path, args: &[&str]) -> (bool, String) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl runs");
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// Makes a key and CSR with `openssl req`; returns the CSR in PEM.
fn openssl_csr(dir: &Path, name: &str, key_args: &[&str]) -> Vec<u8> {
    let key = format!("{name}.key");
    let csr = format!("{name}.csr");
    let mut args = vec!["req", "-new", "-newkey"];
    args.extend_from_slice(key_args);
    args.extend_from_slice(&[
        "-nodes",
        "-keyout",
        &key,
        "-out",
        &csr,
        "-subj",
        "/CN=ignored",
    ]);
    let (ok, log) = openssl(dir, &args);
    assert!(ok, "{log}");
    std::fs::read(dir.join(csr)).unwrap()
}

fn rcgen_csr(alg: &'static rcgen::SignatureAlgorithm) -> Vec<u8> {
    let key = rcgen::KeyPair::generate_for(alg).unwrap();
    let params = rcgen::CertificateParams::new(vec!["evil.example".to_owned()]).unwrap();
    params.serialize_request(&key).unwrap().der().to_vec()
}

fn new_ca() -> HospitalCa {
    HospitalCa::generate("St. Example", OffsetDateTime::now_utc())
        .unwrap()
        .0
}

fn device(id: &str) -> DeviceId {
    DeviceId::new(id).unwrap()
}

/// Writes the CA and an issued certificate and runs `openssl verify` for client use.
fn openssl_verify(dir: &Path, ca: &HospitalCa, cert_pem: &str, extra: &[&str]) -> (bool, String) {
    std::fs::write(dir.join("ca.pem"), ca.cert_pem()).unwrap();
    std::fs::write(dir.join("leaf.pem"), cert_pem).unwrap();
    let mut args = vec!["verify", "-CAfile", "ca.pem", "-purpose", "sslclient"];
    args.extend_from_slice(extra);
    args.push("leaf.pem");
    openssl(dir, &args)
}

#[test]
fn openssl_csrs_of_accepted_key_types_are_issued_and_verify_with_openssl() {
    let tmp = tempfile::tempdir().unwrap();
    let ca = new_ca();
    let cases: &[(&str, &[&str], KeyKind, u32)] = &[
        (
            "p256",
            &["ec", "-pkeyopt", "ec_paramgen_curve:P-256"],
            KeyKind::EcdsaP256,
            256,
        ),
        (
            "p384",
            &["ec", "-pkeyopt", "ec_paramgen_curve:P-384"],
            KeyKind::EcdsaP384,
            384,
        ),
        ("rsa2048", &["rsa:2048"], KeyKind::Rsa, 2048),
        ("ed25519", &["ed25519"], KeyKind::Ed25519, 256),
    ];
    for (name, key_args, kind, bits) in cases {
        let csr = ValidatedCsr::parse(&openssl_csr(tmp.path(), name, key_args)).unwrap();
        assert_eq!((csr.key.kind, csr.key.bits), (*kind, *bits), "{name}");
        let id = device(&format!("dev-{name}"));
        let now = OffsetDateTime::now_utc();
        let issued = ca.issue_device(&id, &csr, Duration::days(30), now).unwrap();

        let (ok, log) = openssl_verify(tmp.path(), &ca, &issued.pem, &[]);
        assert!(ok, "{name}: {log}");
        assert_eq!(device_id(&issued.der).unwrap(), id);
        assert_eq!(issued.facts.device.as_ref(), Some(&id));
        assert_eq!(issued.facts.key.map(|k| k.kind), Some(*kind));
        assert_eq!(issued.facts.fingerprint.len(), 64);
        let lifetime = issued.facts.not_after.millis_since(issued.facts.not_before);
        assert_eq!(
            lifetime,
            (Duration::days(30) + Duration::minutes(5)).whole_milliseconds() as i64
        );

        // The certified key is the device's own: openssl agrees the key file matches.
        std::fs::write(tmp.path().join("leaf.pem"), &issued.pem).unwrap();
        let (_, from_cert) = openssl(
            tmp.path(),
            &["x509", "-in", "leaf.pem", "-noout", "-pubkey"],
        );
        let (_, from_key) = openssl(
            tmp.path(),
            &["pkey", "-in", &format!("{name}.key"), "-pubout"],
        );
        assert_eq!(from_cert, from_key, "{name}");
    }
}

#[test]
fn rcgen_csrs_are_issued_with_vigils_identity_not_the_requested_one() {
    let tmp = tempfile::tempdir().unwrap();
    let ca = new_ca();
    for alg in [
        &rcgen::PKCS_ECDSA_P256_SHA256,
        &rcgen::PKCS_ECDSA_P384_SHA384,
        &rcgen::PKCS_ED25519,
    ] {
        let csr = ValidatedCsr::parse(&rcgen_csr(alg)).unwrap();
        let issued = ca
            .issue_device(
                &device("pump-7"),
                &csr,
                Duration::days(30),
                OffsetDateTime::now_utc(),
            )
            .unwrap();
        let (ok, log) = openssl_verify(tmp.path(), &ca, &issued.pem, &[]);
        assert!(ok, "{log}");
        let (_, text) = openssl(tmp.path(), &["x509", "-in", "leaf.pem", "-noout", "-text"]);
        assert!(text.contains("URI:urn:vigil:device:pump-7"), "{text}");
        assert!(text.contains("TLS Web Client Authentication"), "{text}");
        assert!(
            !text.contains("evil.example"),
            "the requested SAN is ignored:\n{text}"
        );
        assert!(!text.contains("TLS Web Server Authentication"), "{text}");
        assert!(text.contains("CA:FALSE"), "{text}");
    }
}

#[test]
fn weak_or_unsupported_keys_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let rsa1024 = openssl_csr(tmp.path(), "rsa1024", &["rsa:1024"]);
    assert_eq!(
        ValidatedCsr::parse(&rsa1024).unwrap_err(),
        CsrError::Key(KeyError::RsaSize { bits: 1024 })
    );
    let p521 = openssl_csr(
        tmp.path(),
        "p521",
        &["ec", "-pkeyopt", "ec_paramgen_curve:P-521"],
    );
    assert_eq!(
        ValidatedCsr::parse(&p521).unwrap_err(),
        CsrError::Key(KeyError::Curve)
    );
    let k256 = openssl_csr(
        tmp.path(),
        "k256",
        &["ec", "-pkeyopt", "ec_paramgen_curve:secp256k1"],
    );
    assert_eq!(
        ValidatedCsr::parse(&k256).unwrap_err(),
        CsrError::Key(KeyError::Curve)
    );
}

#[test]
fn a_csr_whose_signature_does_not_verify_is_refused() {
    let mut der = rcgen_csr(&rcgen::PKCS_ECDSA_P256_SHA256);
    // The last bytes are the signature's; flipping one keeps the structure valid.
    let last = der.len() - 2;
    der[last] ^= 0x01;
    assert_eq!(ValidatedCsr::parse(&der).unwrap_err(), CsrError::Signature);
}

#[test]
fn malformed_and_oversized_input_gets_a_clear_error() {
    assert_eq!(ValidatedCsr::parse(b"").unwrap_err(), CsrError::Empty);
    assert_eq!(ValidatedCsr::parse(b"   \n").unwrap_err(), CsrError::Empty);
    assert_eq!(
        ValidatedCsr::parse(&vec![b'A'; vigil_pki::csr::MAX_CSR_BYTES + 1]).unwrap_err(),
        CsrError::TooLarge
    );
    assert_eq!(
        ValidatedCsr::parse(
            b"-----BEGIN CERTIFICATE REQUEST-----\n!!!\n-----END CERTIFICATE REQUEST-----\n"
        )
        .unwrap_err(),
        CsrError::Pem
    );
    let ca = new_ca();
    assert_eq!(
        ValidatedCsr::parse(ca.cert_pem().as_bytes()).unwrap_err(),
        CsrError::Pem,
        "a certificate is not a request"
    );
    assert_eq!(
        ValidatedCsr::parse(b"\x30\x03\x02\x01\x01").unwrap_err(),
        CsrError::Der
    );
    let mut der = rcgen_csr(&rcgen::PKCS_ECDSA_P256_SHA256);
    der.push(0);
    assert_eq!(
        ValidatedCsr::parse(&der).unwrap_err(),
        CsrError::Der,
        "trailing bytes"
    );
}

#[test]
fn revoked_certificates_fail_openssl_crl_checks() {
    let tmp = tempfile::tempdir().unwrap();
    let ca = new_ca();
    let csr = ValidatedCsr::parse(&rcgen_csr(&rcgen::PKCS_ECDSA_P256_SHA256)).unwrap();
    let now = OffsetDateTime::now_utc();
    let kept = ca
        .issue_device(&device("a"), &csr, Duration::days(30), now)
        .unwrap();
    let revoked = ca
        .issue_device(&device("b"), &csr, Duration::days(30), now)
        .unwrap();
    let crl = ca
        .sign_crl(
            &[Revocation {
                serial: revoked.facts.serial.clone(),
                revoked_at: now,
                reason: RevocationReason::KeyCompromise,
            }],
            2,
            now,
            now + Duration::days(7),
        )
        .unwrap();
    std::fs::write(
        tmp.path().join("crl.pem"),
        vigil_pki::pki_dir::pem("X509 CRL", &crl),
    )
    .unwrap();
    std::fs::write(tmp.path().join("ca.pem"), ca.cert_pem()).unwrap();
    let (ok, log) = openssl(
        tmp.path(),
        &[
            "crl", "-in", "crl.pem", "-CAfile", "ca.pem", "-noout", "-text",
        ],
    );
    assert!(ok && log.contains("verify OK"), "{log}");
    assert!(log.contains("Key Compromise"), "{log}");

    let crl_args = ["-crl_check", "-CRLfile", "crl.pem"];
    let (ok, log) = openssl_verify(tmp.path(), &ca, &kept.pem, &crl_args);
    assert!(ok, "{log}");
    let (ok, log) = openssl_verify(tmp.path(), &ca, &revoked.pem, &crl_args);
    assert!(!ok && log.contains("revoked"), "{log}");
}

#[test]
fn identity_refuses_certificates_that_name_no_device_or_are_not_for_clients() {
    let ca = new_ca();
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let server = ca
        .issue_server(
            &["localhost".into()],
            &key,
            Duration::days(1),
            OffsetDateTime::now_utc(),
        )
        .unwrap();
    assert_eq!(
        device_id(&server.der).unwrap_err(),
        IdentityError::NotForClientAuth
    );

    // A client certificate from elsewhere, without Vigil's SAN.
    let mut params = rcgen::CertificateParams::new(vec!["device.example".to_owned()]).unwrap();
    params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
    let foreign = params.self_signed(&key).unwrap();
    assert_eq!(
        device_id(foreign.der()).unwrap_err(),
        IdentityError::NoDeviceName
    );

    // Two device names in one certificate.
    let mut params = rcgen::CertificateParams::default();
    params.subject_alt_names = vec![
        rcgen::SanType::URI("urn:vigil:device:a".try_into().unwrap()),
        rcgen::SanType::URI("urn:vigil:device:b".try_into().unwrap()),
    ];
    params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
    let twice = params.self_signed(&key).unwrap();
    assert_eq!(
        device_id(twice.der()).unwrap_err(),
        IdentityError::SeveralDeviceNames
    );

    // An invalid id inside the URI.
    params.subject_alt_names = vec![rcgen::SanType::URI(
        "urn:vigil:device:a/b".try_into().unwrap(),
    )];
    let bad = params.self_signed(&key).unwrap();
    assert!(matches!(
        device_id(bad.der()).unwrap_err(),
        IdentityError::InvalidDeviceId(_)
    ));

    assert_eq!(
        device_id(b"not a certificate").unwrap_err(),
        IdentityError::Unparseable
    );
}

#[test]
fn pki_dir_creates_private_keys_and_reloads_the_same_ca() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().unwrap();
    let dir = PkiDir::new(tmp.path());
    let hosts = vec![
        "localhost".to_owned(),
        "127.0.0.1".to_owned(),
        "hub.ward7.example".to_owned(),
    ];
    let ca = dir
        .create("St. Example", &hosts, OffsetDateTime::now_utc())
        .unwrap();
    for (path, mode) in [
        (dir.ca_key_path(), 0o600),
        (dir.hub_key_path(), 0o600),
        (dir.ca_cert_path(), 0o644),
        (dir.hub_cert_path(), 0o644),
        (dir.crl_path(), 0o644),
    ] {
        let actual = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(actual, mode, "{}", path.display());
    }
    let loaded = dir.load_ca().unwrap();
    assert_eq!(loaded.cert_pem(), ca.cert_pem());
    assert!(
        dir.create("again", &hosts, OffsetDateTime::now_utc())
            .is_err(),
        "no overwrite"
    );

    // The hub certificate verifies as a server certificate for its names.
    let (ok, log) = openssl(
        tmp.path(),
        &[
            "verify",
            "-CAfile",
            "pki/ca.crt.pem",
            "-purpose",
            "sslserver",
            "-verify_hostname",
            "hub.ward7.example",
            "pki/hub.crt.pem",
        ],
    );
    assert!(ok, "{log}");
    let (ok, log) = openssl(
        tmp.path(),
        &[
            "verify",
            "-CAfile",
            "pki/ca.crt.pem",
            "-purpose",
            "sslserver",
            "-verify_ip",
            "127.0.0.1",
            "pki/hub.crt.pem",
        ],
    );
    assert!(ok, "{log}");
    let (ok, log) = openssl(
        tmp.path(),
        &[
            "crl",
            "-in",
            "pki/crl.pem",
            "-CAfile",
            "pki/ca.crt.pem",
            "-noout",
        ],
    );
    assert!(ok, "{log}");
}

#[test]
fn a_ca_refuses_a_key_that_is_not_its_own() {
    let ca = new_ca();
    let other = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    assert!(matches!(
        HospitalCa::from_pem(ca.cert_pem(), &other.serialize_pem()),
        Err(vigil_pki::PkiError::KeyMismatch)
    ));
}

#[test]
fn der_that_ends_in_a_whitespace_byte_is_not_trimmed() {
    // A DER CSR's last byte is part of its signature and is 0x0a or 0x20 in about one CSR in
    // a hundred; such a CSR must parse. Make CSRs until one ends in such a byte.
    for _ in 0..5_000 {
        let der = rcgen_csr(&rcgen::PKCS_ECDSA_P256_SHA256);
        if matches!(der.last(), Some(b'\n' | b' ' | b'\t' | b'\r' | 0x0c)) {
            ValidatedCsr::parse(&der).unwrap();
            return;
        }
    }
    panic!("no CSR ending in a whitespace byte in 5,000 tries");
}
