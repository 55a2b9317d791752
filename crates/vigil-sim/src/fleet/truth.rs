//! The ground truth of a run, as JSON lines: every clinical event and every attack, with the
//! ward indexes, the hub's ids and the wall-clock times, so that `vigil eval` can score alerts
//! against it.
//!
//! ```json
//! {"kind":"run","seed":42,"patients":["patient-000",…],"devices":["monitor-000",…],"start_time":…}
//! {"kind":"clinical_event","event":"desaturation","patient":1,"patient_id":"patient-001",…}
//! {"kind":"attack","attack":"flood","patient":1,"patient_id":"patient-001","device":"monitor-003",…}
//! {"kind":"first_forged","attack":"fake_hypoglycaemia","device":"cgm-004","start_time":…,"at":…,"time":…}
//! {"kind":"restored","attack":"fake_hypoglycaemia","device":"cgm-004","start_time":…,"at":…,"time":…}
//! {"kind":"run_end","end":300.0,"end_time":…}
//! ```

use std::io::Write;

use serde::Serialize;
use serde_json::Value;
use vigil_model::{DeviceClass, PatientId, Timestamp};

use super::{Shared, Ticket};
use crate::attacks::{AttackKind, PlannedAttack};
use crate::events::GroundTruth;

/// Where ground truth is written.
pub struct TruthLog {
    out: Box<dyn Write + Send>,
    /// Records written.
    pub written: usize,
}

impl std::fmt::Debug for TruthLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TruthLog")
            .field("written", &self.written)
            .finish_non_exhaustive()
    }
}

/// The first line of a run: who was in it, and when it began.
#[derive(Debug, Serialize)]
struct RunRecord<'a> {
    kind: &'static str,
    seed: u64,
    patients: Vec<&'a str>,
    devices: Vec<&'a str>,
    start_time: String,
}

/// The last line of a run: when it ended.
#[derive(Debug, Serialize)]
struct RunEndRecord {
    kind: &'static str,
    end: f64,
    end_time: String,
}

/// An attack, as written down.
#[derive(Debug, Serialize)]
struct AttackRecord<'a> {
    kind: &'static str,
    attack: AttackKind,
    patient: usize,
    patient_id: &'a str,
    device: &'a str,
    class: DeviceClass,
    start: f64,
    end: f64,
    start_time: String,
    end_time: String,
}

/// The first forged reading of an alteration attack, or the first true one after it, as written
/// down; the attack is the one of this device and kind that started at `start_time`.
#[derive(Debug, Serialize)]
struct ReadingRecord<'a> {
    kind: &'static str,
    attack: AttackKind,
    device: &'a str,
    start_time: String,
    at: f64,
    time: String,
}

impl TruthLog {
    /// Ground truth written to `out`.
    pub fn new(out: Box<dyn Write + Send>) -> TruthLog {
        TruthLog { out, written: 0 }
    }

    pub(super) fn run_start(
        &mut self,
        seed: u64,
        patients: &[Option<PatientId>],
        tickets: &[super::Ticket],
        shared: &Shared,
    ) -> std::io::Result<()> {
        self.line(&RunRecord {
            kind: "run",
            seed,
            patients: patients.iter().flatten().map(PatientId::as_str).collect(),
            devices: tickets.iter().map(|t| t.device.as_str()).collect(),
            start_time: rfc3339(shared.epoch),
        })
    }

    pub(super) fn run_end(&mut self, end: f64, shared: &Shared) -> std::io::Result<()> {
        self.line(&RunEndRecord {
            kind: "run_end",
            end,
            end_time: rfc3339(shared.at(end)),
        })
    }

    pub(super) fn clinical(
        &mut self,
        record: &GroundTruth,
        patients: &[Option<PatientId>],
        shared: &Shared,
    ) -> std::io::Result<()> {
        let mut value = serde_json::to_value(record).map_err(std::io::Error::other)?;
        if let (Some(event), Value::Object(fields)) = (record.clinical_event(), &mut value) {
            let patient_id = patients
                .get(event.patient)
                .and_then(Option::as_ref)
                .map(|p| p.as_str().to_owned())
                .unwrap_or_default();
            fields.insert("patient_id".into(), Value::String(patient_id));
            fields.insert(
                "start_time".into(),
                Value::String(rfc3339(shared.at(event.start))),
            );
            fields.insert(
                "end_time".into(),
                Value::String(rfc3339(shared.at(event.end))),
            );
        }
        self.line(&value)
    }

    pub(super) fn attack(
        &mut self,
        attack: &PlannedAttack,
        ticket: &Ticket,
        class: DeviceClass,
        shared: &Shared,
    ) -> std::io::Result<()> {
        let record = AttackRecord {
            kind: "attack",
            attack: attack.step.attack,
            patient: attack.step.patient,
            patient_id: ticket.patient.as_str(),
            device: ticket.device.as_str(),
            class,
            start: attack.start(),
            end: attack.end(),
            start_time: rfc3339(shared.at(attack.start())),
            end_time: rfc3339(shared.at(attack.end())),
        };
        self.line(&record)
    }

    /// The first forged reading of an alteration attack, sent at simulated time `now`: before
    /// it there is nothing forged to detect (a CGM reports every 5 minutes).
    pub(super) fn first_forged(
        &mut self,
        attack: &PlannedAttack,
        ticket: &Ticket,
        now: f64,
        shared: &Shared,
    ) -> std::io::Result<()> {
        self.reading("first_forged", attack, ticket, now, shared)
    }

    /// The first true reading of an alteration attack's device after the attack ended, sent at
    /// simulated time `now`: the change back from the forged values is the attack's doing too
    /// (a CGM's comes up to 5 minutes after the end).
    pub(super) fn restored(
        &mut self,
        attack: &PlannedAttack,
        ticket: &Ticket,
        now: f64,
        shared: &Shared,
    ) -> std::io::Result<()> {
        self.reading("restored", attack, ticket, now, shared)
    }

    fn reading(
        &mut self,
        kind: &'static str,
        attack: &PlannedAttack,
        ticket: &Ticket,
        now: f64,
        shared: &Shared,
    ) -> std::io::Result<()> {
        let record = ReadingRecord {
            kind,
            attack: attack.step.attack,
            device: ticket.device.as_str(),
            start_time: rfc3339(shared.at(attack.start())),
            at: now,
            time: rfc3339(shared.at(now)),
        };
        self.line(&record)
    }

    fn line(&mut self, record: &impl Serialize) -> std::io::Result<()> {
        serde_json::to_writer(&mut self.out, record).map_err(std::io::Error::other)?;
        self.out.write_all(b"\n")?;
        self.written += 1;
        Ok(())
    }

    /// Flushes what was written.
    pub fn flush(&mut self) -> std::io::Result<()> {
        self.out.flush()
    }
}

fn rfc3339(t: Timestamp) -> String {
    t.to_string()
}
