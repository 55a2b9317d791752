//! ArcSight Common Event Format, as specified in *Micro Focus Security ArcSight Common Event
//! Format, Implementing ArcSight CEF, Version 25* (2017): the header, its escaping, severity,
//! and the keys of the extension dictionary used here.
//!
//! ```text
//! CEF:0|Vigil|Vigil|0.1.0|identity_conflict|Identity conflict|8|rt=1764404100250 dvchost=hub.example.org externalId=42 cat=identity cs1Label=deviceId cs1=pump-1 cs3Label=attackTechnique cs3=T0849 src=10.0.0.9 msg=previous_address: 10.0.0.5; new_address: 10.0.0.9
//! ```
//!
//! - Header: `|` and `\` escaped with `\`; a header holds no line breaks (they become spaces).
//! - Extension values: `\` and `=` escaped with `\`; CR and LF written as `\r` and `\n`.
//! - Severity: info 1, low 3, medium 5, high 8, critical 10 (CEF's bands: 0–3 Low, 4–6 Medium,
//!   7–8 High, 9–10 Very-High).
//! - Keys: `rt` (alert time, milliseconds since the epoch), `dvchost` (the hub), `externalId`
//!   (the alert's id in Vigil), `cat` (the kind's family), `cs1`/`cs1Label=deviceId`,
//!   `cs2`/`cs2Label=patientPseudonym` (Vigil's pseudonym, never an MRN),
//!   `cs3`/`cs3Label=attackTechnique`; from the facts, the address an alert is about
//!   (`address` or `new_address`) as `src` when IPv4 and `c6a2`/`c6a2Label=Source IPv6 Address`
//!   when IPv6, `suser` for a `user`, `act=refused` when the hub refused something; `msg` lists
//!   every fact as `name: value` separated by `; `.

use std::net::IpAddr;

use vigil_model::Severity;

use crate::record::{Record, kind_category, kind_name, kind_title};

/// The CEF version written.
pub const VERSION: u8 = 0;
/// Device Vendor and Device Product.
pub const VENDOR: &str = "Vigil";
/// Device Product.
pub const PRODUCT: &str = "Vigil";

/// The CEF severity (0–10) of a Vigil severity.
pub fn severity(severity: Severity) -> u8 {
    match severity {
        Severity::Info => 1,
        Severity::Low => 3,
        Severity::Medium => 5,
        Severity::High => 8,
        Severity::Critical => 10,
    }
}

/// The CEF line for `record`, with its first `shown_facts` facts (the rest counted in `msg`).
pub fn format(record: &Record, hostname: Option<&str>, shown_facts: usize) -> String {
    let mut out = format!("CEF:{VERSION}|");
    for field in [
        VENDOR,
        PRODUCT,
        env!("CARGO_PKG_VERSION"),
        &kind_name(record.kind),
        &kind_title(record.kind),
    ] {
        escape_header(field, &mut out);
        out.push('|');
    }
    out.push_str(&severity(record.severity).to_string());
    out.push('|');

    let mut extension = Extension(&mut out, true);
    extension.add("rt", &record.time.unix_millis().to_string());
    if let Some(host) = hostname {
        extension.add("dvchost", host);
    }
    extension.add("externalId", &record.id.to_string());
    extension.add("cat", kind_category(record.kind));
    if let Some(device) = &record.device {
        extension.add("cs1Label", "deviceId");
        extension.add("cs1", device.as_str());
    }
    if let Some(patient) = &record.patient {
        extension.add("cs2Label", "patientPseudonym");
        extension.add("cs2", patient.as_str());
    }
    if let Some(technique) = &record.technique {
        extension.add("cs3Label", "attackTechnique");
        extension.add("cs3", technique);
    }
    let shown = &record.facts[..shown_facts.min(record.facts.len())];
    let fact = |name: &str| {
        shown
            .iter()
            .find(|f| f.name == name)
            .map(|f| f.value.as_str())
    };
    match fact("address")
        .or_else(|| fact("new_address"))
        .and_then(|a| a.parse::<IpAddr>().ok())
    {
        Some(IpAddr::V4(v4)) => extension.add("src", &v4.to_string()),
        Some(IpAddr::V6(v6)) => {
            extension.add("c6a2Label", "Source IPv6 Address");
            extension.add("c6a2", &v6.to_string());
        }
        None => {}
    }
    if let Some(user) = fact("user") {
        extension.add("suser", user);
    }
    if fact("refused").is_some() {
        extension.add("act", "refused");
    }
    let omitted = record.facts.len() - shown.len() + record.facts_dropped;
    let mut msg = shown
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ");
    if omitted > 0 {
        if !msg.is_empty() {
            msg.push_str("; ");
        }
        msg.push_str(&format!("({omitted} more facts left out)"));
    }
    if !msg.is_empty() {
        extension.add("msg", &msg);
    }
    out
}

/// Appends a header field: `\` and `|` escaped; line breaks, which a header may not hold,
/// become spaces.
pub fn escape_header(value: &str, out: &mut String) {
    for c in value.chars() {
        match c {
            '\\' | '|' => {
                out.push('\\');
                out.push(c);
            }
            '\r' | '\n' => out.push(' '),
            _ => out.push(c),
        }
    }
}

/// Appends an extension value: `\` and `=` escaped, CR and LF as `\r` and `\n`.
pub fn escape_extension(value: &str, out: &mut String) {
    for c in value.chars() {
        match c {
            '\\' | '=' => {
                out.push('\\');
                out.push(c);
            }
            '\r' => out.push_str("\\r"),
            '\n' => out.push_str("\\n"),
            _ => out.push(c),
        }
    }
}

/// Writes `key=value` pairs separated by single spaces.
struct Extension<'a>(&'a mut String, bool);

impl Extension<'_> {
    fn add(&mut self, key: &str, value: &str) {
        if !self.1 {
            self.0.push(' ');
        }
        self.1 = false;
        self.0.push_str(key);
        self.0.push('=');
        escape_extension(value, self.0);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use vigil_model::{Alert, AlertKind, DeviceId, Evidence, Timestamp};

    fn record(kind: AlertKind, facts: &[(&str, &str)]) -> Record {
        Record::new(
            42,
            &Alert {
                time: Timestamp::from_unix_millis(1_764_404_100_250).unwrap(),
                severity: Severity::High,
                kind,
                device: DeviceId::new("pump-1").ok(),
                patient: None,
                evidence: facts
                    .iter()
                    .map(|(n, v)| Evidence::Fact {
                        name: (*n).into(),
                        value: (*v).into(),
                    })
                    .collect(),
                attack_technique: Some("T0849".into()),
            },
        )
    }

    /// Splits an extension the way a CEF parser does: a key starts after an unescaped space
    /// and ends at the first unescaped `=`.
    fn parse_extension(extension: &str) -> Vec<(String, String)> {
        let mut pairs: Vec<(String, String)> = Vec::new();
        let mut chars = extension.chars().peekable();
        let mut token = String::new();
        while let Some(c) = chars.next() {
            match c {
                '\\' => {
                    let next = chars.next().unwrap();
                    token.push(match next {
                        'n' => '\n',
                        'r' => '\r',
                        other => other,
                    });
                }
                '=' => {
                    // The key is the last word of what came before.
                    let (value, key) = match token.rsplit_once(' ') {
                        Some((value, key)) => (value.to_owned(), key.to_owned()),
                        None => (String::new(), token.clone()),
                    };
                    if let Some(last) = pairs.last_mut() {
                        last.1 = value;
                    }
                    pairs.push((key, String::new()));
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

    #[test]
    fn header_and_standard_keys() {
        let line = format(
            &record(
                AlertKind::IdentityConflict,
                &[
                    ("previous_address", "10.0.0.5"),
                    ("new_address", "10.0.0.9"),
                ],
            ),
            Some("hub.example.org"),
            usize::MAX,
        );
        assert_eq!(
            line,
            format!(
                "CEF:0|Vigil|Vigil|{}|identity_conflict|Identity conflict|8|rt=1764404100250 \
                 dvchost=hub.example.org externalId=42 cat=identity cs1Label=deviceId cs1=pump-1 \
                 cs3Label=attackTechnique cs3=T0849 src=10.0.0.9 \
                 msg=previous_address: 10.0.0.5; new_address: 10.0.0.9",
                env!("CARGO_PKG_VERSION")
            )
        );
    }

    #[test]
    fn header_escapes_pipe_and_backslash_and_drops_line_breaks() {
        let mut out = String::new();
        escape_header("a|b\\c=d\ne", &mut out);
        assert_eq!(out, r"a\|b\\c=d e");
    }

    #[test]
    fn extension_escapes_equals_backslash_and_line_breaks() {
        let mut out = String::new();
        escape_extension("a=b\\c|d\r\ne", &mut out);
        assert_eq!(out, r"a\=b\\c|d\r\ne");
    }

    #[test]
    fn hostile_fact_values_cannot_forge_keys() {
        let line = format(
            &record(
                AlertKind::TopicProbe,
                &[
                    ("refused", "x act=allowed src=1.2.3.4 \\"),
                    ("user", "dr=who"),
                ],
            ),
            None,
            usize::MAX,
        );
        let extension = line.splitn(8, '|').nth(7).unwrap();
        let pairs = parse_extension(extension);
        let keys: Vec<&str> = pairs.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            keys,
            [
                "rt",
                "externalId",
                "cat",
                "cs1Label",
                "cs1",
                "cs3Label",
                "cs3",
                "suser",
                "act",
                "msg"
            ]
        );
        let value = |key: &str| pairs.iter().find(|(k, _)| k == key).unwrap().1.clone();
        assert_eq!(value("suser"), "dr=who");
        assert_eq!(value("act"), "refused");
        assert_eq!(
            value("msg"),
            "refused: x act=allowed src=1.2.3.4 \\; user: dr=who"
        );
    }

    #[test]
    fn ipv6_sources_use_the_ipv6_custom_field_and_non_addresses_none() {
        let v6 = format(
            &record(AlertKind::AuthFailureBurst, &[("address", "2001:db8::7")]),
            None,
            usize::MAX,
        );
        assert!(
            v6.contains("c6a2Label=Source IPv6 Address c6a2=2001:db8::7"),
            "{v6}"
        );
        assert!(!v6.contains(" src="));
        let none = format(
            &record(AlertKind::AuthFailureBurst, &[("address", "not-an-ip")]),
            None,
            usize::MAX,
        );
        assert!(!none.contains(" src=") && !none.contains("c6a2"), "{none}");
    }

    #[test]
    fn severities_span_cefs_bands() {
        assert_eq!(severity(Severity::Info), 1);
        assert_eq!(severity(Severity::Low), 3);
        assert_eq!(severity(Severity::Medium), 5);
        assert_eq!(severity(Severity::High), 8);
        assert_eq!(severity(Severity::Critical), 10);
    }

    #[test]
    fn left_out_facts_are_counted_in_msg() {
        let r = record(AlertKind::Flood, &[("a", "1"), ("b", "2"), ("c", "3")]);
        let line = format(&r, None, 1);
        assert!(
            line.ends_with("msg=a: 1; (2 more facts left out)"),
            "{line}"
        );
        let line = format(&r, None, 0);
        assert!(line.ends_with("msg=(3 more facts left out)"), "{line}");
    }
}
