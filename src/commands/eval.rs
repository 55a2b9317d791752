//! `vigil eval --truth FILE`: scores the alerts of a simulated run against its ground truth.
//!
//! Per attack kind: recall (attacks with at least one matching alert), precision (alerts of the
//! kinds that should catch it that did match one) and detection latency (first matching alert
//! after the attack began, or, for an attack that alters readings, after its first forged
//! reading was sent: a CGM's next reading can be 5 minutes after the attack began). Then the false alerts: alerts about the run's devices and patients
//! that match no attack, per patient-day, and how many fell during clinical events (real
//! deteriorations, which must not be mistaken for attacks).
//!
//! An alert matches an attack when its kind is one that attack should raise ([`expected`]),
//! it names the attacked device or patient, and it was raised between the attack's start and
//! `--grace` seconds after its end, or, for an attack that alters readings, after its device's
//! first true reading since the end (the ground truth's `restored`: the change back from the
//! forged values is the attack's too, and a CGM's comes up to 5 minutes after the end).

use std::collections::BTreeMap;
use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;
use serde::Serialize;
use serde_json::Value;
use vigil_model::AlertKind;

use super::open_hub;
use crate::cli::{EvalArgs, LogArgs};

/// The alert kinds that detect an attack kind (the simulator's names, docs/simulator.md).
pub(crate) fn expected(attack: &str) -> &'static [AlertKind] {
    match attack {
        "stolen_certificate" => &[AlertKind::IdentityConflict],
        "replay" => &[AlertKind::Replay],
        "hide_desaturation" => &[AlertKind::CrossSignalMismatch],
        "fake_hypoglycaemia" => &[AlertKind::ImpossibleChange, AlertKind::CrossSignalMismatch],
        "implausible_injection" => &[AlertKind::ImplausibleValue],
        "flood" => &[AlertKind::Flood],
        "foreign_topic" => &[AlertKind::TopicProbe],
        "malformed_packets" => &[AlertKind::ProtocolViolation],
        "reused_token" | "forged_token" => &[AlertKind::TokenMisuse],
        _ => &[],
    }
}

/// An alert as scoring sees it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct SeenAlert {
    pub(crate) time: i64,
    pub(crate) kind: AlertKind,
    pub(crate) device: Option<String>,
    pub(crate) patient: Option<String>,
}

/// An attack or clinical event of the truth, as scoring sees it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Window {
    pub(crate) what: String,
    pub(crate) device: Option<String>,
    pub(crate) patient: Option<String>,
    pub(crate) start: i64,
    pub(crate) end: i64,
    /// For an attack that alters readings, when its first forged reading was sent: latency
    /// counts from there (before it nothing forged exists to detect).
    pub(crate) first_forged: Option<i64>,
    /// For an attack that alters readings, when its device's first true reading after the end
    /// was sent: alerts on the change back are the attack's until then.
    pub(crate) restored: Option<i64>,
}

/// A run's ground truth.
#[derive(Debug, Default)]
pub(crate) struct Truth {
    pub(crate) patients: Vec<String>,
    pub(crate) devices: Vec<String>,
    pub(crate) start: i64,
    pub(crate) end: i64,
    pub(crate) attacks: Vec<Window>,
    pub(crate) clinical: Vec<Window>,
}

/// One row of the report.
#[derive(Debug, Serialize, PartialEq)]
pub(crate) struct Row {
    pub(crate) attack: String,
    pub(crate) attacks: usize,
    pub(crate) detected: usize,
    pub(crate) recall: f64,
    pub(crate) precision: Option<f64>,
    pub(crate) latency_p50_s: Option<f64>,
    pub(crate) latency_p95_s: Option<f64>,
}

/// The whole report.
#[derive(Debug, Serialize, PartialEq)]
pub(crate) struct Report {
    pub(crate) rows: Vec<Row>,
    pub(crate) alerts: usize,
    pub(crate) false_alerts: usize,
    pub(crate) false_alerts_during_clinical_events: usize,
    pub(crate) patient_days: f64,
    pub(crate) false_alerts_per_patient_day: Option<f64>,
}

fn time_of(value: &Value) -> Option<i64> {
    let text = value.as_str()?;
    let parsed =
        time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339).ok()?;
    i64::try_from(parsed.unix_timestamp_nanos() / 1_000_000).ok()
}

/// Parses the ground-truth JSON lines of one run.
pub(crate) fn parse_truth(text: &str) -> anyhow::Result<Truth> {
    let mut truth = Truth::default();
    let mut forged = Vec::new();
    for (index, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let record: Value = serde_json::from_str(line)
            .with_context(|| format!("ground truth line {}: not JSON", index + 1))?;
        let text_of = |key: &str| record[key].as_str().map(str::to_owned);
        let window = |what: Option<String>| -> anyhow::Result<Window> {
            Ok(Window {
                what: what.unwrap_or_default(),
                device: text_of("device"),
                patient: text_of("patient_id").filter(|p| !p.is_empty()),
                start: time_of(&record["start_time"])
                    .with_context(|| format!("ground truth line {}: no start_time", index + 1))?,
                end: time_of(&record["end_time"])
                    .with_context(|| format!("ground truth line {}: no end_time", index + 1))?,
                first_forged: None,
                restored: None,
            })
        };
        match record["kind"].as_str() {
            Some("run") => {
                let names = |key: &str| -> Vec<String> {
                    record[key]
                        .as_array()
                        .map(|a| {
                            a.iter()
                                .filter_map(|v| v.as_str().map(str::to_owned))
                                .collect()
                        })
                        .unwrap_or_default()
                };
                truth.patients = names("patients");
                truth.devices = names("devices");
                truth.start = time_of(&record["start_time"]).unwrap_or(0);
            }
            Some("run_end") => truth.end = time_of(&record["end_time"]).unwrap_or(0),
            Some("attack") => truth.attacks.push(window(text_of("attack"))?),
            Some("clinical_event") => truth.clinical.push(window(text_of("event"))?),
            Some(kind @ ("first_forged" | "restored")) => forged.push((
                kind == "restored",
                text_of("attack"),
                text_of("device"),
                time_of(&record["start_time"]),
                time_of(&record["time"])
                    .with_context(|| format!("ground truth line {}: no time", index + 1))?,
            )),
            _ => {}
        }
    }
    // Each first forged (or first true again) reading to its attack: same kind, device, start.
    for (restored, what, device, start, at) in forged {
        if let Some(attack) = truth.attacks.iter_mut().find(|a| {
            what.as_deref() == Some(a.what.as_str()) && a.device == device && start == Some(a.start)
        }) {
            if restored {
                attack.restored = Some(at);
            } else {
                attack.first_forged = Some(at);
            }
        }
    }
    anyhow::ensure!(
        truth.start > 0 && truth.end > truth.start,
        "the ground truth has no complete run (its first line must be a run record, its last run_end)"
    );
    Ok(truth)
}

fn names(window: &Window, alert: &SeenAlert) -> bool {
    (window.device.is_some() && alert.device == window.device)
        || (window.patient.is_some() && alert.patient == window.patient)
}

fn during(window: &Window, alert: &SeenAlert, grace_ms: i64) -> bool {
    let end = window.end.max(window.restored.unwrap_or(window.end));
    alert.time >= window.start && alert.time <= end + grace_ms
}

fn percentile(sorted: &[f64], p: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::cast_precision_loss
    )]
    let index = ((sorted.len() as f64 - 1.0) * p).ceil() as usize;
    sorted.get(index).copied()
}

/// Scores `alerts` against `truth`, allowing `grace_ms` after an attack's end.
pub(crate) fn score(truth: &Truth, alerts: &[SeenAlert], grace_ms: i64) -> Report {
    // Only this run's alerts: about its devices or patients, within its time.
    let ours: Vec<&SeenAlert> = alerts
        .iter()
        .filter(|a| a.time >= truth.start && a.time <= truth.end + grace_ms)
        .filter(|a| {
            a.device.as_ref().is_some_and(|d| truth.devices.contains(d))
                || a.patient
                    .as_ref()
                    .is_some_and(|p| truth.patients.contains(p))
        })
        .collect();
    let mut kinds: BTreeMap<&str, Vec<&Window>> = BTreeMap::new();
    for attack in &truth.attacks {
        kinds.entry(attack.what.as_str()).or_default().push(attack);
    }
    let mut rows = Vec::new();
    for (kind, attacks) in &kinds {
        let wanted = expected(kind);
        let matches = |attack: &Window, alert: &SeenAlert| {
            wanted.contains(&alert.kind) && names(attack, alert) && during(attack, alert, grace_ms)
        };
        let mut latencies: Vec<f64> = Vec::new();
        for attack in attacks {
            if let Some(first) = ours
                .iter()
                .filter(|a| matches(attack, a))
                .map(|a| a.time)
                .min()
            {
                #[allow(clippy::cast_precision_loss)]
                let from = attack.first_forged.unwrap_or(attack.start);
                latencies.push((first - from).max(0) as f64 / 1000.0);
            }
        }
        latencies.sort_by(f64::total_cmp);
        // Alerts of the kinds that should catch this attack: those that caught one, and those
        // that match no attack of any kind (false). Alerts explained by another attack kind are
        // neither.
        let relevant: Vec<&&SeenAlert> = ours.iter().filter(|a| wanted.contains(&a.kind)).collect();
        let hits = relevant
            .iter()
            .filter(|a| attacks.iter().any(|attack| matches(attack, a)))
            .count();
        let unexplained = relevant
            .iter()
            .filter(|a| {
                !truth
                    .attacks
                    .iter()
                    .any(|attack| names(attack, a) && during(attack, a, grace_ms))
            })
            .count();
        #[allow(clippy::cast_precision_loss)]
        let precision = (hits + unexplained > 0).then(|| hits as f64 / (hits + unexplained) as f64);
        #[allow(clippy::cast_precision_loss)]
        rows.push(Row {
            attack: (*kind).to_owned(),
            attacks: attacks.len(),
            detected: latencies.len(),
            recall: latencies.len() as f64 / attacks.len() as f64,
            precision,
            latency_p50_s: percentile(&latencies, 0.5),
            latency_p95_s: percentile(&latencies, 0.95),
        });
    }
    // False alerts: about the run's subjects, explained by no attack (any kind, its subject, its
    // window): collateral alerts of an attack (a replay also leaves a sequence gap) are not false.
    let false_alerts: Vec<&&SeenAlert> = ours
        .iter()
        .filter(|a| {
            !truth
                .attacks
                .iter()
                .any(|attack| names(attack, a) && during(attack, a, grace_ms))
        })
        .collect();
    let during_clinical = false_alerts
        .iter()
        .filter(|a| {
            truth
                .clinical
                .iter()
                .any(|event| names(event, a) && during(event, a, grace_ms))
        })
        .count();
    #[allow(clippy::cast_precision_loss)]
    let patient_days =
        truth.patients.len() as f64 * (truth.end - truth.start) as f64 / 86_400_000.0;
    #[allow(clippy::cast_precision_loss)]
    Report {
        rows,
        alerts: ours.len(),
        false_alerts: false_alerts.len(),
        false_alerts_during_clinical_events: during_clinical,
        patient_days,
        false_alerts_per_patient_day: (patient_days > 0.0)
            .then(|| false_alerts.len() as f64 / patient_days),
    }
}

pub(crate) fn run(log: &LogArgs, args: EvalArgs) -> anyhow::Result<ExitCode> {
    let truth = parse_truth(&read(&args.truth)?)?;
    let hub = open_hub(log, &args.data_dir)?;
    let alerts: Vec<SeenAlert> = hub
        .store()
        .alerts(None, usize::MAX)?
        .into_iter()
        .map(|stored| SeenAlert {
            time: stored.alert.time.unix_millis(),
            kind: stored.alert.kind,
            device: stored.alert.device.map(|d| d.as_str().to_owned()),
            patient: stored.alert.patient.map(|p| p.as_str().to_owned()),
        })
        .collect();
    let grace = i64::from(args.grace) * 1000;
    let report = score(&truth, &alerts, grace);
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(ExitCode::SUCCESS);
    }
    let seconds = |v: Option<f64>| v.map_or_else(|| "—".to_owned(), |s| format!("{s:.2} s"));
    println!(
        "{:<24} {:>7} {:>8} {:>7} {:>9} {:>11} {:>11}",
        "attack", "attacks", "detected", "recall", "precision", "latency p50", "latency p95"
    );
    for row in &report.rows {
        println!(
            "{:<24} {:>7} {:>8} {:>7.2} {:>9} {:>11} {:>11}",
            row.attack,
            row.attacks,
            row.detected,
            row.recall,
            row.precision
                .map_or_else(|| "—".to_owned(), |p| format!("{p:.2}")),
            seconds(row.latency_p50_s),
            seconds(row.latency_p95_s)
        );
    }
    println!(
        "alerts about this run: {}; false alerts: {} ({} during clinical events) over {:.3} patient-days{}",
        report.alerts,
        report.false_alerts,
        report.false_alerts_during_clinical_events,
        report.patient_days,
        report
            .false_alerts_per_patient_day
            .map_or_else(String::new, |r| format!(" = {r:.1} per patient-day"))
    );
    Ok(ExitCode::SUCCESS)
}

fn read(path: &Path) -> anyhow::Result<String> {
    let metadata =
        std::fs::metadata(path).with_context(|| format!("cannot read {}", path.display()))?;
    anyhow::ensure!(
        metadata.len() <= 64 * 1024 * 1024,
        "{}: a ground truth file is at most 64 MiB",
        path.display()
    );
    std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    const TRUTH: &str = r#"{"kind":"run","seed":1,"patients":["p-0","p-1"],"devices":["mon-0","oxi-1"],"start_time":"2026-11-29T08:00:00Z"}
{"kind":"clinical_event","event":"desaturation","patient":1,"patient_id":"p-1","start":0.0,"end":600.0,"start_time":"2026-11-29T08:00:00Z","end_time":"2026-11-29T08:10:00Z"}
{"kind":"attack","attack":"hide_desaturation","patient":1,"patient_id":"p-1","device":"oxi-1","start":60,"end":120,"start_time":"2026-11-29T08:01:00Z","end_time":"2026-11-29T08:02:00Z"}
{"kind":"attack","attack":"flood","patient":0,"patient_id":"p-0","device":"mon-0","start":300,"end":310,"start_time":"2026-11-29T08:05:00Z","end_time":"2026-11-29T08:05:10Z"}
{"kind":"attack","attack":"flood","patient":1,"patient_id":"p-1","device":"oxi-1","start":400,"end":410,"start_time":"2026-11-29T08:06:40Z","end_time":"2026-11-29T08:06:50Z"}
{"kind":"run_end","end":3600.0,"end_time":"2026-11-29T09:00:00Z"}
"#;

    fn at(seconds: i64) -> i64 {
        time::macros::datetime!(2026-11-29 08:00 UTC).unix_timestamp() * 1000 + seconds * 1000
    }

    fn alert(
        seconds: i64,
        kind: AlertKind,
        device: Option<&str>,
        patient: Option<&str>,
    ) -> SeenAlert {
        SeenAlert {
            time: at(seconds),
            kind,
            device: device.map(str::to_owned),
            patient: patient.map(str::to_owned),
        }
    }

    #[test]
    fn recall_precision_latency_and_false_alerts_are_counted() {
        let truth = parse_truth(TRUTH).unwrap();
        let alerts = vec![
            alert(61, AlertKind::CrossSignalMismatch, None, Some("p-1")), // caught, 1 s
            alert(303, AlertKind::Flood, Some("mon-0"), None),            // caught, 3 s
            // the second flood is missed; a flood alert on a quiet device is false
            alert(1000, AlertKind::Flood, Some("mon-0"), None),
            // during the desaturation but outside any attack: a false alert (clinical)
            alert(500, AlertKind::CrossSignalMismatch, None, Some("p-1")),
            // collateral of the flood on mon-0: not false
            alert(305, AlertKind::SequenceGap, Some("mon-0"), None),
            // another run's device: ignored
            alert(100, AlertKind::Flood, Some("elsewhere"), None),
        ];
        let report = score(&truth, &alerts, 10_000);
        let hide = &report
            .rows
            .iter()
            .find(|r| r.attack == "hide_desaturation")
            .unwrap();
        assert_eq!((hide.attacks, hide.detected), (1, 1));
        assert_eq!(hide.latency_p50_s, Some(1.0));
        assert_eq!(
            hide.precision,
            Some(0.5),
            "one of two mismatch alerts explained"
        );
        let flood = &report.rows.iter().find(|r| r.attack == "flood").unwrap();
        assert_eq!((flood.attacks, flood.detected), (2, 1));
        assert!((flood.recall - 0.5).abs() < 1e-9);
        assert_eq!(flood.latency_p95_s, Some(3.0));
        assert_eq!(flood.precision, Some(0.5));
        assert_eq!(report.alerts, 5);
        assert_eq!(report.false_alerts, 2);
        assert_eq!(report.false_alerts_during_clinical_events, 1);
        assert!((report.patient_days - 2.0 / 24.0).abs() < 1e-9);
    }

    /// [`TRUTH`] with a CGM, a fake hypoglycaemia on it from 08:01 to 08:11 whose first forged
    /// reading was sent at 08:05, and `more` (one more record) before the run's end.
    fn cgm_attack_truth(more: &str) -> String {
        format!(
            "{}\n{}\n{}\n{}\n{}",
            TRUTH
                .lines()
                .next()
                .unwrap()
                .replace("\"oxi-1\"]", "\"oxi-1\",\"cgm-1\"]"),
            r#"{"kind":"attack","attack":"fake_hypoglycaemia","patient":0,"patient_id":"p-0","device":"cgm-1","start":60,"end":660,"start_time":"2026-11-29T08:01:00Z","end_time":"2026-11-29T08:11:00Z"}"#,
            r#"{"kind":"first_forged","attack":"fake_hypoglycaemia","device":"cgm-1","start_time":"2026-11-29T08:01:00Z","at":300,"time":"2026-11-29T08:05:00Z"}"#,
            more,
            TRUTH.lines().last().unwrap(),
        )
    }

    #[test]
    fn latency_of_an_alteration_counts_from_its_first_forged_reading() {
        // The CGM's first reading after the attack began came 4 minutes later; the alert 1 s
        // after it. A forged record of another device, or another start, changes nothing.
        let truth = cgm_attack_truth(
            r#"{"kind":"first_forged","attack":"fake_hypoglycaemia","device":"cgm-9","start_time":"2026-11-29T08:01:00Z","at":62,"time":"2026-11-29T08:01:02Z"}"#,
        );
        let truth = parse_truth(&truth).unwrap();
        assert_eq!(truth.attacks[0].first_forged, Some(at(300)));
        let alerts = vec![alert(301, AlertKind::ImpossibleChange, Some("cgm-1"), None)];
        let report = score(&truth, &alerts, 10_000);
        let row = &report.rows[0];
        assert_eq!(
            (row.attack.as_str(), row.detected),
            ("fake_hypoglycaemia", 1)
        );
        assert_eq!(row.latency_p50_s, Some(1.0));
    }

    #[test]
    fn an_alert_on_the_change_back_after_an_alteration_is_the_attacks() {
        // The attack ended at 08:11; the CGM's first true reading came at 08:14 and the jump
        // back from the forged low alerted a second later: the attack's, not a false alert.
        let truth = cgm_attack_truth(
            r#"{"kind":"restored","attack":"fake_hypoglycaemia","device":"cgm-1","start_time":"2026-11-29T08:01:00Z","at":840,"time":"2026-11-29T08:14:00Z"}"#,
        );
        let parsed = parse_truth(&truth).unwrap();
        assert_eq!(parsed.attacks[0].restored, Some(at(840)));
        let change_back = alert(841, AlertKind::ImpossibleChange, Some("cgm-1"), None);
        let report = score(&parsed, std::slice::from_ref(&change_back), 10_000);
        assert_eq!(report.false_alerts, 0);
        // Without the restored line, the same alert is false (it came after end + grace).
        let without: String = truth
            .lines()
            .filter(|l| !l.contains("\"restored\""))
            .collect::<Vec<_>>()
            .join("\n");
        let report = score(&parse_truth(&without).unwrap(), &[change_back], 10_000);
        assert_eq!(report.false_alerts, 1);
    }

    #[test]
    fn a_truth_without_a_complete_run_is_refused() {
        assert!(parse_truth("").is_err());
        let no_end: String = TRUTH.lines().take(3).collect::<Vec<_>>().join("\n");
        assert!(parse_truth(&no_end).is_err());
        assert!(parse_truth("not json").is_err());
    }
}
