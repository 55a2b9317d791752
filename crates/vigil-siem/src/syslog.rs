//! RFC 5424 syslog messages, and the octet-counted frame of RFC 6587 §3.4.1 / RFC 5425 §4.3.
//!
//! ```text
//! <162>1 2025-11-29T08:15:00.250Z hub.example.org vigil 4242 identity_conflict [vigil@32473 id="42" kind="identity_conflict" severity="high" device="pump-1" technique="T0849"] CEF:0|Vigil|…
//! ```
//!
//! Choices, each where RFC 5424 leaves one to the sender:
//!
//! - **Facility** `local4` (20) by default. Facilities 4 and 10 (security/authorization) are
//!   where a host's own sshd, sudo and PAM write, often to root-only files; Vigil's alerts are
//!   an application's findings about other machines, and `local0`–`local7` are the facilities
//!   RFC 5424 §6.2.1 leaves to the site, so a SOC can route Vigil's stream on its own. Any
//!   facility can be configured.
//! - **Severity** from Vigil's: critical → 1 Alert ("action must be taken immediately": a patient
//!   may be at risk), high → 2 Critical, medium → 4 Warning, low → 5 Notice, info → 6
//!   Informational. 0 Emergency ("system is unusable") and 3 Error (the sender's own failures)
//!   describe the sender's state, which an alert never does.
//! - **SD-ID** `vigil@<PEN>`. RFC 5424 §7.2.2 makes a private SD-ID `name@<private enterprise
//!   number>`. Vigil has no PEN of its own, so the default is 32473, the number RFC 5612
//!   reserves for documentation: it cannot collide with a real enterprise's SD-IDs and says
//!   plainly that it is unregistered. A hospital (or the project, once it registers one) sets
//!   its own with `enterprise_number`.
//! - **MSG** is CEF or a JSON object. It is written without a BOM when it is all ASCII (then it
//!   is valid `MSG-ANY` and nothing can misread it) and with the BOM of §6.4 when it is not.
//! - **Size**: a message longer than the sink's limit loses facts from the end first (each
//!   format then says how many it left out), then its MSG, keeping header and STRUCTURED-DATA
//!   whole; only a limit below those is met by cutting the end (§6.1 allows truncation at the
//!   end), at a character boundary.

use serde::{Deserialize, Serialize};
use vigil_model::Severity;

use crate::record::{Record, kind_name};
use crate::{cef, json};

/// The APP-NAME of every message.
pub const APP_NAME: &str = "vigil";
/// RFC 5612's example enterprise number, the default of the SD-ID's `@` part.
pub const DOCUMENTATION_PEN: u32 = 32473;
/// Longest HOSTNAME (RFC 5424 §6.2.4).
pub const MAX_HOSTNAME: usize = 255;
/// Longest MSGID (RFC 5424 §6.2.7).
pub const MAX_MSGID: usize = 32;
/// The smallest message every syslog receiver must accept (RFC 5426 §3.2): no limit below it.
pub const MIN_MESSAGE_BYTES: usize = 480;

const NILVALUE: &str = "-";
const BOM: &str = "\u{FEFF}";

/// What a syslog message carries as its MSG.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// ArcSight Common Event Format ([`crate::cef`]).
    Cef,
    /// One JSON object ([`crate::json`]).
    Json,
}

/// A syslog facility (RFC 5424 §6.2.1, table 1), by its conventional name. Each variant's
/// documentation gives its code and RFC 5424's description.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Facility {
    /// 0, kernel messages.
    Kern,
    /// 1, user-level messages.
    User,
    /// 2, mail system.
    Mail,
    /// 3, system daemons.
    Daemon,
    /// 4, security/authorization messages.
    Auth,
    /// 5, messages generated internally by syslogd.
    Syslog,
    /// 6, line printer subsystem.
    Lpr,
    /// 7, network news subsystem.
    News,
    /// 8, UUCP subsystem.
    Uucp,
    /// 9, clock daemon.
    Cron,
    /// 10, security/authorization messages.
    Authpriv,
    /// 11, FTP daemon.
    Ftp,
    /// 12, NTP subsystem.
    Ntp,
    /// 13, log audit.
    Audit,
    /// 14, log alert.
    Alert,
    /// 15, clock daemon.
    Clock,
    /// 16, local use 0.
    Local0,
    /// 17, local use 1.
    Local1,
    /// 18, local use 2.
    Local2,
    /// 19, local use 3.
    Local3,
    /// 20, local use 4: Vigil's default.
    #[default]
    Local4,
    /// 21, local use 5.
    Local5,
    /// 22, local use 6.
    Local6,
    /// 23, local use 7.
    Local7,
}

impl Facility {
    /// Its numerical code, 0 to 23.
    pub fn code(self) -> u8 {
        self as u8
    }
}

/// The syslog severity (RFC 5424 §6.2.1) of a Vigil severity; the mapping is explained in the
/// module's documentation.
pub fn severity(severity: Severity) -> u8 {
    match severity {
        Severity::Critical => 1,
        Severity::High => 2,
        Severity::Medium => 4,
        Severity::Low => 5,
        Severity::Info => 6,
    }
}

/// Why a header field cannot be sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HeaderError {
    /// Empty, longer than the field allows, or holding a byte outside printable US-ASCII
    /// (33 to 126). The text itself is not repeated.
    #[error("{field} must be 1 to {max} printable US-ASCII characters (no spaces)")]
    NotPrintable {
        /// Which field.
        field: &'static str,
        /// Its longest length.
        max: usize,
    },
}

/// Whether `text` is 1 to `max` printable US-ASCII characters (`PRINTUSASCII`, %d33-126).
pub fn is_printable(text: &str, max: usize) -> bool {
    (1..=max).contains(&text.len()) && text.bytes().all(|b| (33..=126).contains(&b))
}

/// Who sends: the parts of the header that are the same for every message of a hub.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    hostname: Option<String>,
    procid: Option<String>,
    enterprise_number: u32,
}

impl Origin {
    /// The hub's `hostname` (its FQDN or address; `None` writes the NILVALUE), with the
    /// process id as PROCID and `enterprise_number` in the SD-ID.
    pub fn new(hostname: Option<&str>, enterprise_number: u32) -> Result<Origin, HeaderError> {
        if let Some(name) = hostname
            && !is_printable(name, MAX_HOSTNAME)
        {
            return Err(HeaderError::NotPrintable {
                field: "hostname",
                max: MAX_HOSTNAME,
            });
        }
        Ok(Origin {
            hostname: hostname.map(str::to_owned),
            procid: Some(std::process::id().to_string()),
            enterprise_number,
        })
    }

    /// Leaves PROCID as the NILVALUE (for reproducible output in tests and documentation).
    pub fn without_procid(mut self) -> Origin {
        self.procid = None;
        self
    }

    /// The hostname, if known.
    pub fn hostname(&self) -> Option<&str> {
        self.hostname.as_deref()
    }

    /// The SD-ID of Vigil's SD-ELEMENT: `vigil@32473`.
    pub fn sd_id(&self) -> String {
        format!("vigil@{}", self.enterprise_number)
    }
}

/// A whole message for `record`, its MSG in `format`, at most `max_bytes` long (see the module
/// documentation for what gives way first).
pub fn message(
    record: &Record,
    origin: &Origin,
    facility: Facility,
    format: Format,
    max_bytes: usize,
) -> Vec<u8> {
    let head = header_and_data(record, origin, facility);
    for shown in (0..=record.facts.len()).rev() {
        let msg = match format {
            Format::Cef => cef::format(record, origin.hostname(), shown),
            Format::Json => json::line(record, origin.hostname(), shown),
        };
        let bom = if msg.is_ascii() { "" } else { BOM };
        if head.len() + 1 + bom.len() + msg.len() <= max_bytes {
            return [head.as_str(), " ", bom, msg.as_str()]
                .concat()
                .into_bytes();
        }
    }
    let mut whole = head;
    if whole.len() > max_bytes {
        let mut cut = max_bytes;
        while !whole.is_char_boundary(cut) {
            cut -= 1;
        }
        whole.truncate(cut);
    }
    whole.into_bytes()
}

/// `MSG-LEN SP SYSLOG-MSG`: octet counting (RFC 6587 §3.4.1, and RFC 5425 §4.3 for TLS).
pub fn octet_counted(message: &[u8]) -> Vec<u8> {
    let mut frame = format!("{} ", message.len()).into_bytes();
    frame.extend_from_slice(message);
    frame
}

/// `PRI VERSION SP TIMESTAMP SP HOSTNAME SP APP-NAME SP PROCID SP MSGID SP STRUCTURED-DATA`.
fn header_and_data(record: &Record, origin: &Origin, facility: Facility) -> String {
    let pri = u16::from(facility.code()) * 8 + u16::from(severity(record.severity));
    let kind = kind_name(record.kind);
    let msgid = if is_printable(&kind, MAX_MSGID) {
        kind.as_str()
    } else {
        NILVALUE
    };
    let mut out = format!(
        "<{pri}>1 {} {} {APP_NAME} {} {msgid} [{}",
        record.time,
        origin.hostname.as_deref().unwrap_or(NILVALUE),
        origin.procid.as_deref().unwrap_or(NILVALUE),
        origin.sd_id(),
    );
    let mut param = |name: &str, value: &str| {
        out.push(' ');
        out.push_str(name);
        out.push_str("=\"");
        escape_param_value(value, &mut out);
        out.push('"');
    };
    param("id", &record.id.to_string());
    param("kind", &kind);
    param("severity", &record.severity.to_string());
    if let Some(device) = &record.device {
        param("device", device.as_str());
    }
    if let Some(patient) = &record.patient {
        param("patient", patient.as_str());
    }
    if let Some(technique) = &record.technique {
        param("technique", technique);
    }
    out.push(']');
    out
}

/// Appends `value` as a PARAM-VALUE: `"`, `\` and `]` escaped with a backslash (RFC 5424
/// §6.3.3).
pub fn escape_param_value(value: &str, out: &mut String) {
    for c in value.chars() {
        if matches!(c, '"' | '\\' | ']') {
            out.push('\\');
        }
        out.push(c);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use vigil_model::{Alert, AlertKind, DeviceId, Evidence, PatientId, Timestamp};

    fn record(evidence: Vec<Evidence>) -> Record {
        Record::new(
            42,
            &Alert {
                time: Timestamp::from_unix_millis(1_764_404_100_250).unwrap(),
                severity: Severity::High,
                kind: AlertKind::IdentityConflict,
                device: DeviceId::new("pump-1").ok(),
                patient: PatientId::new("p-17").ok(),
                evidence,
                attack_technique: Some("T0849".into()),
            },
        )
    }

    fn fact(name: &str, value: &str) -> Evidence {
        Evidence::Fact {
            name: name.into(),
            value: value.into(),
        }
    }

    fn origin() -> Origin {
        Origin::new(Some("hub.example.org"), DOCUMENTATION_PEN)
            .unwrap()
            .without_procid()
    }

    #[test]
    fn header_and_structured_data_follow_rfc_5424() {
        let text = String::from_utf8(message(
            &record(vec![fact("new_address", "10.0.0.9")]),
            &origin(),
            Facility::Local4,
            Format::Json,
            8192,
        ))
        .unwrap();
        let (head, msg) = text.split_once("] ").unwrap();
        assert_eq!(
            head,
            "<162>1 2025-11-29T08:15:00.250Z hub.example.org vigil - identity_conflict \
             [vigil@32473 id=\"42\" kind=\"identity_conflict\" severity=\"high\" device=\"pump-1\" \
             patient=\"p-17\" technique=\"T0849\""
        );
        assert!(msg.starts_with("{\"id\":42,"), "{msg}");
    }

    #[test]
    fn pri_combines_facility_and_mapped_severity() {
        let mut r = record(vec![]);
        for (severity, facility, pri) in [
            (Severity::Critical, Facility::Local4, "<161>"),
            (Severity::Info, Facility::Kern, "<6>"),
            (Severity::Medium, Facility::Authpriv, "<84>"),
            (Severity::Low, Facility::Local7, "<189>"),
        ] {
            r.severity = severity;
            let text = message(&r, &origin(), facility, Format::Cef, 8192);
            assert!(text.starts_with(pri.as_bytes()), "{pri}");
        }
        assert_eq!(Facility::default().code(), 20);
        assert_eq!(Facility::Local7.code(), 23);
    }

    #[test]
    fn nil_values_where_nothing_is_known() {
        let origin = Origin::new(None, 1).unwrap().without_procid();
        let text = String::from_utf8(message(
            &record(vec![]),
            &origin,
            Facility::User,
            Format::Cef,
            8192,
        ))
        .unwrap();
        assert!(
            text.starts_with(
                "<10>1 2025-11-29T08:15:00.250Z - vigil - identity_conflict [vigil@1 "
            )
        );
        let with_pid = Origin::new(None, 1).unwrap();
        let text = message(
            &record(vec![]),
            &with_pid,
            Facility::User,
            Format::Cef,
            8192,
        );
        let pid = format!(" vigil {} ", std::process::id());
        assert!(String::from_utf8(text).unwrap().contains(&pid));
    }

    #[test]
    fn param_values_escape_quote_backslash_and_bracket() {
        let mut out = String::new();
        escape_param_value(r#"a"b\c]d=e"#, &mut out);
        assert_eq!(out, r#"a\"b\\c\]d=e"#);
    }

    #[test]
    fn hostnames_must_be_printable_ascii_within_255() {
        for bad in ["", "hub one", "hüb", &"h".repeat(256), "tab\there"] {
            assert_eq!(
                Origin::new(Some(bad), 1),
                Err(HeaderError::NotPrintable {
                    field: "hostname",
                    max: MAX_HOSTNAME
                })
            );
        }
        assert!(Origin::new(Some(&"h".repeat(255)), 1).is_ok());
        assert!(is_printable("!~", 2) && !is_printable("abc", 2));
    }

    #[test]
    fn a_non_ascii_msg_starts_with_the_bom_and_an_ascii_one_does_not() {
        let ascii = message(
            &record(vec![]),
            &origin(),
            Facility::Local4,
            Format::Cef,
            8192,
        );
        assert!(!ascii.windows(3).any(|w| w == BOM.as_bytes()));
        let text = message(
            &record(vec![fact("user", "Zoë")]),
            &origin(),
            Facility::Local4,
            Format::Json,
            8192,
        );
        let text = String::from_utf8(text).unwrap();
        assert!(text.contains("] \u{FEFF}{\"id\":42"), "{text}");
    }

    #[test]
    fn too_long_drops_facts_from_the_end_and_says_so() {
        let facts: Vec<Evidence> = (0..20)
            .map(|i| fact(&format!("fact{i}"), &"v".repeat(100)))
            .collect();
        let r = record(facts);
        let whole = message(&r, &origin(), Facility::Local4, Format::Json, 65_000);
        assert!(whole.len() > 2000);
        for format in [Format::Json, Format::Cef] {
            let text = message(&r, &origin(), Facility::Local4, format, 1180);
            assert!(text.len() <= 1180, "{}", text.len());
            let text = String::from_utf8(text).unwrap();
            assert!(text.contains("fact0"), "{text}");
            assert!(!text.contains("fact19"), "{text}");
            if format == Format::Json {
                let (_, msg) = text.split_once("] ").unwrap();
                let value: serde_json::Value = serde_json::from_str(msg).unwrap();
                assert!(value["facts_omitted"].as_u64().unwrap() > 0);
            } else {
                assert!(text.contains("more facts left out"), "{text}");
            }
        }
    }

    #[test]
    fn below_the_header_only_the_end_is_cut() {
        let long_host = "h".repeat(255);
        let origin = Origin::new(Some(&long_host), DOCUMENTATION_PEN).unwrap();
        let mut r = record(vec![fact("a", "b")]);
        r.device = DeviceId::new("d".repeat(64)).ok();
        r.patient = PatientId::new("p".repeat(64)).ok();
        let head = header_and_data(&r, &origin, Facility::Local4);
        // Room for the header and STRUCTURED-DATA but not the MSG: the MSG goes, SD stays whole.
        let text = message(&r, &origin, Facility::Local4, Format::Cef, head.len() + 10);
        assert_eq!(text, head.as_bytes());
        // Not even that: the end is cut.
        assert!(head.len() > MIN_MESSAGE_BYTES);
        let text = message(
            &r,
            &origin,
            Facility::Local4,
            Format::Cef,
            MIN_MESSAGE_BYTES,
        );
        assert_eq!(text.len(), MIN_MESSAGE_BYTES);
        assert!(head.as_bytes().starts_with(&text));
    }

    #[test]
    fn octet_counting_prefixes_the_length() {
        assert_eq!(octet_counted(b"<13>1 - - - - - -"), b"17 <13>1 - - - - - -");
        let msg = "é".repeat(5);
        assert_eq!(octet_counted(msg.as_bytes())[..3], *b"10 ");
    }
}
