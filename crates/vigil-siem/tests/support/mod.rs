//! Receivers for the delivery tests: a PKI made with rcgen, syslog listeners over UDP, TCP and
//! TLS that parse what they get, and a Standard Webhooks receiver over TLS that checks every
//! signature on its own (HMAC-SHA256 from aws-lc-rs, not the crate's signer).

#![allow(dead_code)] // each test uses its own part

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use base64::Engine as _;
use base64::prelude::BASE64_STANDARD;
use hyper_util::rt::TokioIo;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;
use vigil_model::{
    Alert, AlertKind, DeviceId, Evidence, PatientId, Phi, Quantity, Severity, Timestamp,
};

/// The clinical value every test alert carries: it must never arrive anywhere.
pub(crate) const CLINICAL_VALUE: f64 = 187.25;
pub(crate) const CLINICAL_TEXT: &str = "187.25";
pub(crate) const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// An alert numbered `n` with a clinical value, two facts and a hostile one.
pub(crate) fn alert(n: u64) -> Alert {
    Alert {
        time: Timestamp::from_unix_millis(1_764_404_100_000 + i64::try_from(n).unwrap()).unwrap(),
        severity: Severity::High,
        kind: AlertKind::CrossSignalMismatch,
        device: DeviceId::new("oxi-3").ok(),
        patient: PatientId::new("p-17").ok(),
        evidence: vec![
            Evidence::Clinical {
                quantity: Quantity::PulseRate,
                value: Phi::new(CLINICAL_VALUE),
            },
            Evidence::Fact {
                name: "sequence".into(),
                value: n.to_string(),
            },
            Evidence::Fact {
                name: "address".into(),
                value: "10.1.2.3".into(),
            },
            Evidence::Fact {
                name: "note".into(),
                value: "a=b \\ \"q\" ] | x".into(),
            },
        ],
        attack_technique: Some("T0856".into()),
    }
}

/// A CA and certificates it signs, written as PEM files in a temporary directory.
pub(crate) struct Pki {
    pub(crate) dir: tempfile::TempDir,
    pub(crate) ca_file: PathBuf,
    issuer: Issuer<'static, KeyPair>,
}

pub(crate) struct Leaf {
    pub(crate) chain: Vec<CertificateDer<'static>>,
    pub(crate) key: PrivateKeyDer<'static>,
    pub(crate) cert_file: PathBuf,
    pub(crate) key_file: PathBuf,
}

impl Pki {
    pub(crate) fn new(name: &str) -> Pki {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let cert = params.self_signed(&key).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let ca_file = dir.path().join("ca.pem");
        std::fs::write(&ca_file, cert.pem()).unwrap();
        Pki {
            dir,
            ca_file,
            issuer: Issuer::new(params, key),
        }
    }

    /// A leaf for `names` (DNS names or IP addresses).
    pub(crate) fn leaf(&self, file: &str, names: &[&str]) -> Leaf {
        let key = KeyPair::generate().unwrap();
        let params =
            CertificateParams::new(names.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>())
                .unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        let cert_file = self.dir.path().join(format!("{file}.pem"));
        let key_file = self.dir.path().join(format!("{file}.key"));
        std::fs::write(&cert_file, cert.pem()).unwrap();
        std::fs::write(&key_file, key.serialize_pem()).unwrap();
        Leaf {
            chain: vec![cert.der().clone()],
            key: PrivateKeyDer::from_pem_slice(key.serialize_pem().as_bytes()).unwrap(),
            cert_file,
            key_file,
        }
    }

    /// A server configuration for `leaf`; with `client_ca`, client certificates from it are
    /// required.
    pub(crate) fn server(
        &self,
        leaf: &Leaf,
        client_ca: Option<&Pki>,
        alpn: &[&[u8]],
    ) -> Arc<rustls::ServerConfig> {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let builder = rustls::ServerConfig::builder_with_provider(Arc::clone(&provider))
            .with_safe_default_protocol_versions()
            .unwrap();
        let builder = match client_ca {
            Some(ca) => {
                let mut roots = rustls::RootCertStore::empty();
                for cert in CertificateDer::pem_file_iter(&ca.ca_file).unwrap() {
                    roots.add(cert.unwrap()).unwrap();
                }
                let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                    Arc::new(roots),
                    provider,
                )
                .build()
                .unwrap();
                builder.with_client_cert_verifier(verifier)
            }
            None => builder.with_no_client_auth(),
        };
        let mut config = builder
            .with_single_cert(leaf.chain.clone(), leaf.key.clone_key())
            .unwrap();
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        Arc::new(config)
    }
}

/// One parsed RFC 5424 message.
#[derive(Debug, Clone)]
pub(crate) struct Syslog {
    pub(crate) pri: u16,
    pub(crate) timestamp: String,
    pub(crate) hostname: String,
    pub(crate) app: String,
    pub(crate) procid: String,
    pub(crate) msgid: String,
    pub(crate) sd_id: String,
    pub(crate) params: Vec<(String, String)>,
    pub(crate) msg: String,
    pub(crate) raw: String,
}

impl Syslog {
    pub(crate) fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Parses a message with one SD-ELEMENT, unescaping its PARAM-VALUEs (RFC 5424 §6.3.3).
pub(crate) fn parse_syslog(raw: &str) -> Syslog {
    let rest = raw.strip_prefix('<').unwrap();
    let (pri, rest) = rest.split_once(">1 ").unwrap();
    let mut fields = rest.splitn(6, ' ');
    let timestamp = fields.next().unwrap().to_owned();
    let hostname = fields.next().unwrap().to_owned();
    let app = fields.next().unwrap().to_owned();
    let procid = fields.next().unwrap().to_owned();
    let msgid = fields.next().unwrap().to_owned();
    let data = fields.next().unwrap();
    let data = data.strip_prefix('[').unwrap();
    let (sd_id, mut data) = data.split_once(' ').unwrap();
    let mut params = Vec::new();
    loop {
        let (name, after) = data.split_once("=\"").unwrap();
        let mut value = String::new();
        let mut chars = after.char_indices();
        let end = loop {
            let (i, c) = chars.next().unwrap();
            match c {
                '\\' => value.push(chars.next().unwrap().1),
                '"' => break i,
                ']' => panic!("unescaped ] in a PARAM-VALUE: {raw}"),
                _ => value.push(c),
            }
        };
        params.push((name.to_owned(), value));
        let after = &after[end + 1..];
        if let Some(next) = after.strip_prefix(' ') {
            data = next;
        } else {
            let msg = after.strip_prefix(']').unwrap();
            let msg = msg.strip_prefix(' ').unwrap_or(msg);
            let msg = msg.strip_prefix('\u{FEFF}').unwrap_or(msg);
            return Syslog {
                pri: pri.parse().unwrap(),
                timestamp,
                hostname,
                app,
                procid,
                msgid,
                sd_id: sd_id.to_owned(),
                params,
                msg: msg.to_owned(),
                raw: raw.to_owned(),
            };
        }
    }
}

/// A CEF line's extension as (key, unescaped value) pairs, split as a CEF parser splits it.
pub(crate) fn cef_extension(line: &str) -> Vec<(String, String)> {
    let extension = line.splitn(8, '|').nth(7).unwrap();
    let mut pairs: Vec<(String, String)> = Vec::new();
    let mut token = String::new();
    let mut chars = extension.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next().unwrap() {
                'n' => token.push('\n'),
                'r' => token.push('\r'),
                other => token.push(other),
            },
            '=' => {
                let (value, key) = token.rsplit_once(' ').unwrap_or(("", &token));
                if let Some(last) = pairs.last_mut() {
                    last.1 = value.to_owned();
                }
                pairs.push((key.to_owned(), String::new()));
                token.clear();
            }
            _ => token.push(c),
        }
    }
    if let Some(last) = pairs.last_mut() {
        last.1 = token;
    }
    pairs
}

/// A UDP receiver: every datagram, as text.
pub(crate) async fn udp_receiver() -> (SocketAddr, UnboundedReceiver<Vec<u8>>) {
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let address = socket.local_addr().unwrap();
    let (sender, receiver) = unbounded_channel();
    tokio::spawn(async move {
        let mut buffer = vec![0_u8; 70_000];
        while let Ok(n) = socket.recv(&mut buffer).await {
            if sender.send(buffer[..n].to_vec()).is_err() {
                return;
            }
        }
    });
    (address, receiver)
}

/// Reads one octet-counted frame (RFC 6587 §3.4.1); `None` at the end of the stream.
pub(crate) async fn read_frame<R: AsyncRead + Unpin>(reader: &mut R) -> Option<String> {
    let mut length = 0_usize;
    let mut digits = 0;
    loop {
        let byte = reader.read_u8().await.ok()?;
        if byte == b' ' {
            break;
        }
        assert!(byte.is_ascii_digit() && digits < 7, "bad frame length");
        assert!(digits > 0 || byte != b'0', "leading zero in a frame length");
        length = length * 10 + usize::from(byte - b'0');
        digits += 1;
    }
    let mut message = vec![0_u8; length];
    reader.read_exact(&mut message).await.ok()?;
    Some(String::from_utf8(message).unwrap())
}

/// A syslog receiver over TCP, or TLS when `tls` is given: every framed message of every
/// connection. Dropping the returned task handle (abort) stops it, listener and connections.
pub(crate) async fn stream_receiver(
    listener: TcpListener,
    tls: Option<Arc<rustls::ServerConfig>>,
    sender: UnboundedSender<String>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut connections = tokio::task::JoinSet::new();
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let sender = sender.clone();
            let tls = tls.clone();
            connections.spawn(async move {
                match tls {
                    Some(config) => {
                        let Ok(mut stream) = TlsAcceptor::from(config).accept(tcp).await else {
                            return;
                        };
                        while let Some(message) = read_frame(&mut stream).await {
                            let _ = sender.send(message);
                        }
                    }
                    None => {
                        let mut stream = tcp;
                        while let Some(message) = read_frame(&mut stream).await {
                            let _ = sender.send(message);
                        }
                    }
                }
            });
        }
    })
}

/// A listener that accepts connections and then says nothing, ever: a hung receiver.
pub(crate) async fn silent_receiver() -> (SocketAddr, JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        let mut held: Vec<TcpStream> = Vec::new();
        while let Ok((tcp, _)) = listener.accept().await {
            held.push(tcp);
        }
    });
    (address, task)
}

/// A webhook request as received, its signature checked by the receiver.
#[derive(Debug, Clone)]
pub(crate) struct Delivery {
    pub(crate) id: String,
    pub(crate) timestamp: u64,
    pub(crate) signature: String,
    pub(crate) signature_valid: bool,
    pub(crate) body: serde_json::Value,
    pub(crate) raw_body: String,
}

/// Checks a Standard Webhooks request as a receiver would: the timestamp within five minutes
/// of now, and one `v1,` signature equal to HMAC-SHA256(secret, id.timestamp.body).
pub(crate) fn verify(
    secret: &str,
    id: &str,
    timestamp: &str,
    signatures: &str,
    body: &[u8],
) -> bool {
    let key_bytes = BASE64_STANDARD
        .decode(secret.strip_prefix("whsec_").unwrap())
        .unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let Ok(sent) = timestamp.parse::<u64>() else {
        return false;
    };
    if sent.abs_diff(now) > 300 {
        return false;
    }
    let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, &key_bytes);
    let mut signed = format!("{id}.{timestamp}.").into_bytes();
    signed.extend_from_slice(body);
    signatures.split(' ').any(|entry| {
        entry
            .strip_prefix("v1,")
            .and_then(|b64| BASE64_STANDARD.decode(b64).ok())
            .is_some_and(|tag| aws_lc_rs::hmac::verify(&key, &signed, &tag).is_ok())
    })
}

/// A Standard Webhooks receiver over TLS at `/alerts`. It answers with `script`'s statuses in
/// turn, then 204 to everything.
pub(crate) async fn webhook_receiver(
    tls: Arc<rustls::ServerConfig>,
    script: Vec<u16>,
) -> (SocketAddr, UnboundedReceiver<Delivery>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let (sender, receiver) = unbounded_channel();
    let script = Arc::new(Mutex::new(script.into_iter()));
    let app = Router::new().route(
        "/alerts",
        post(move |headers: HeaderMap, body: Bytes| {
            let sender = sender.clone();
            let script = Arc::clone(&script);
            async move {
                let header = |name: &str| {
                    headers
                        .get(name)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or_default()
                        .to_owned()
                };
                let (id, timestamp, signature) = (
                    header("webhook-id"),
                    header("webhook-timestamp"),
                    header("webhook-signature"),
                );
                assert_eq!(header("content-type"), "application/json");
                let delivery = Delivery {
                    signature_valid: verify(SECRET, &id, &timestamp, &signature, &body),
                    id,
                    timestamp: timestamp.parse().unwrap_or_default(),
                    signature,
                    body: serde_json::from_slice(&body).unwrap(),
                    raw_body: String::from_utf8(body.to_vec()).unwrap(),
                };
                let _ = sender.send(delivery);
                let status = script.lock().unwrap().next().unwrap_or(204);
                StatusCode::from_u16(status).unwrap()
            }
        }),
    );
    let acceptor = TlsAcceptor::from(tls);
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            let app = app.clone();
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let service = hyper::service::service_fn(
                    move |request: hyper::Request<hyper::body::Incoming>| {
                        app.clone().oneshot(request)
                    },
                );
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tls), service)
                    .await;
            });
        }
    });
    (address, receiver)
}

/// The next item, or a failure after `seconds`.
pub(crate) async fn next<T>(receiver: &mut UnboundedReceiver<T>, seconds: u64) -> T {
    tokio::time::timeout(Duration::from_secs(seconds), receiver.recv())
        .await
        .expect("nothing arrived in time")
        .expect("the receiver ended")
}

/// Asserts nothing arrives within `millis`.
pub(crate) async fn nothing<T: std::fmt::Debug>(receiver: &mut UnboundedReceiver<T>, millis: u64) {
    if let Ok(Some(item)) =
        tokio::time::timeout(Duration::from_millis(millis), receiver.recv()).await
    {
        panic!("unexpected delivery: {item:?}");
    }
}
