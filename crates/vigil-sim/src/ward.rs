//! A ward: patients, their devices and their clinical events, advanced together in simulated
//! time.
//!
//! A driver holds a [`Ward`], calls [`Ward::advance`] as simulated time passes, and collects the
//! readings each device has due ([`Ward::collect_due`] or [`Ward::due_readings`]) to send them
//! wherever it sends them. [`Ward::ground_truth`] lists the clinical events that have begun.
//! Everything is fixed by the seed and the sequence of calls.

use vigil_model::device::{DeviceClass, RELAYS};
use vigil_model::{CommandKind, Quantity};

use crate::devices::{DeviceError, SimReading, VirtualDevice};
use crate::events::{ClinicalEvent, ClinicalEventSchedule, GroundTruth};
use crate::physiology::{PatientProfile, Physiology, Population, TherapyError};
use crate::rng::SimRng;

/// Which devices each patient has.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum DeviceMix {
    /// Devices as a ward would give them: every patient a bedside monitor and a pulse oximeter;
    /// patients with type 1 diabetes a CGM and an insulin pump; patients with a pacemaker its
    /// monitor; and, by chance, an infusion pump (40 %), a thermometer (30 %), a blood pressure
    /// cuff (20 %) and an ECG patch (15 %).
    #[default]
    Clinical,
    /// These devices on every patient.
    Uniform(Vec<DeviceClass>),
    /// Patient `i` gets list `i % len` (an empty outer list means no devices).
    PerPatient(Vec<Vec<DeviceClass>>),
}

/// A scripted event for one patient.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ScriptedEvent {
    /// The patient's index.
    pub patient: usize,
    /// The event.
    pub event: ClinicalEvent,
}

/// How a ward is made.
#[derive(Debug, Clone, PartialEq)]
pub struct WardConfig {
    /// Number of patients.
    pub patients: usize,
    /// Their devices.
    pub devices: DeviceMix,
    /// The mix of patients.
    pub population: Population,
    /// Generated clinical events per patient per day (0 for none).
    pub events_per_patient_day: f64,
    /// Events the caller asks for.
    pub scripted_events: Vec<ScriptedEvent>,
    /// Clock time at simulated time 0, seconds after midnight (circadian rhythms and meals).
    pub start_clock_s: f64,
    /// Whether patients eat the hospital's meals.
    pub meals: bool,
    /// If set, no device reports less often than this, seconds (a demo speeding slow devices up).
    pub max_report_period: Option<f64>,
}

impl Default for WardConfig {
    fn default() -> Self {
        Self {
            patients: 10,
            devices: DeviceMix::Clinical,
            population: Population::default(),
            events_per_patient_day: 1.0,
            scripted_events: Vec::new(),
            start_clock_s: 8.0 * 3600.0,
            meals: true,
            max_report_period: None,
        }
    }
}

/// Why a ward cannot be made.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum WardError {
    /// A scripted event names a patient the ward does not have.
    #[error("scripted event for patient {patient}, but the ward has {patients} patients")]
    NoSuchPatient {
        /// The index given.
        patient: usize,
        /// How many patients there are.
        patients: usize,
    },
    /// The start clock or the event rate is not a finite number ≥ 0.
    #[error("{0} must be a finite number ≥ 0")]
    NotFinite(&'static str),
    /// A device setting was refused.
    #[error(transparent)]
    Device(#[from] DeviceError),
}

/// Why a command is refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CommandError {
    /// No device with this index.
    #[error("no device {0}")]
    NoSuchDevice(usize),
    /// The device's class does not accept the command.
    #[error("a {class} does not accept {command}")]
    NotAccepted {
        /// The class.
        class: DeviceClass,
        /// The command.
        command: CommandKind,
    },
    /// The command needs a value and has none, or the value lies outside the quantity's
    /// absolute limits (what no device can do: the hub's safety profile is narrower).
    #[error("{0} needs a value within the quantity's limits")]
    BadValue(CommandKind),
    /// The patient lacks what the command acts on.
    #[error(transparent)]
    Therapy(#[from] TherapyError),
    /// The device refused.
    #[error(transparent)]
    Device(#[from] DeviceError),
}

/// A reading and the device that made it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DeviceReading {
    /// The device's index in the ward.
    pub device: usize,
    /// The reading.
    pub reading: SimReading,
}

/// Patients, devices and events, advanced together.
#[derive(Debug, Clone)]
pub struct Ward {
    seed: u64,
    time: f64,
    patients: Vec<Physiology>,
    devices: Vec<VirtualDevice>,
    /// For each device, what of its readings a device of the same patient relays, and that
    /// device: an insulin pump relays its patient's CGM glucose ([`RELAYS`]).
    relays: Vec<Option<(Quantity, usize)>>,
    ground_truth: Vec<GroundTruth>,
}

/// For each device, the quantity it measures that a device of its patient relays, and that
/// device: the first of the relaying class ([`RELAYS`]). The relaying device reports the reading
/// at once, as a pump reports any therapy change at once.
fn relays_of(devices: &[VirtualDevice]) -> Vec<Option<(Quantity, usize)>> {
    devices
        .iter()
        .map(|device| {
            let relay = RELAYS.iter().find(|r| r.source == device.class())?;
            let relaying = devices
                .iter()
                .position(|d| d.patient() == device.patient() && d.class() == relay.relaying)?;
            Some((relay.quantity, relaying))
        })
        .collect()
}

fn clinical_devices(profile: &PatientProfile, rng: &mut SimRng) -> Vec<DeviceClass> {
    let mut classes = vec![DeviceClass::BedsideMonitor, DeviceClass::PulseOximeter];
    if profile.diabetes.is_some() {
        classes.extend([
            DeviceClass::ContinuousGlucoseMonitor,
            DeviceClass::InsulinPump,
        ]);
    }
    if profile.pacemaker_lower_rate.is_some() {
        classes.push(DeviceClass::PacemakerMonitor);
    }
    // Four draws whatever they decide.
    for (class, p) in [
        (DeviceClass::InfusionPump, 0.4),
        (DeviceClass::Thermometer, 0.3),
        (DeviceClass::BloodPressureCuff, 0.2),
        (DeviceClass::EcgPatch, 0.15),
    ] {
        if rng.chance(p) {
            classes.push(class);
        }
    }
    classes
}

impl Ward {
    /// A ward at simulated time 0. Patient `i`'s profile, vitals, meals, events and devices each
    /// come from their own stream of `seed`, so that changing one patient's devices or events
    /// changes nothing else.
    pub fn new(seed: u64, config: WardConfig) -> Result<Self, WardError> {
        if !(config.start_clock_s.is_finite() && config.start_clock_s >= 0.0) {
            return Err(WardError::NotFinite("start_clock_s"));
        }
        if !(config.events_per_patient_day.is_finite() && config.events_per_patient_day >= 0.0) {
            return Err(WardError::NotFinite("events_per_patient_day"));
        }
        if let Some(bad) = config
            .scripted_events
            .iter()
            .find(|s| s.patient >= config.patients)
        {
            return Err(WardError::NoSuchPatient {
                patient: bad.patient,
                patients: config.patients,
            });
        }
        let mut patients = Vec::with_capacity(config.patients);
        let mut devices = Vec::new();
        for index in 0..config.patients {
            let label = [index as u64];
            let mut profile_rng = SimRng::derive(seed, "patient.profile", &label);
            let mut profile = PatientProfile::sample(&mut profile_rng, &config.population);
            let mut equipment = SimRng::derive(seed, "patient.equipment", &label);
            let classes = match &config.devices {
                DeviceMix::Clinical => clinical_devices(&profile, &mut equipment),
                DeviceMix::Uniform(classes) => classes.clone(),
                DeviceMix::PerPatient(lists) => match lists.len() {
                    0 => Vec::new(),
                    n => lists.get(index % n).cloned().unwrap_or_default(),
                },
            };
            // A pump or a pacemaker monitor implies the condition it treats.
            if classes.contains(&DeviceClass::InsulinPump) {
                profile = profile.with_type1_diabetes();
            }
            if classes.contains(&DeviceClass::PacemakerMonitor) {
                profile = profile.with_pacemaker();
            }
            let diabetic = profile.diabetes.is_some();
            let events = ClinicalEventSchedule::generated(
                SimRng::derive(seed, "patient.events", &label),
                config.events_per_patient_day,
                diabetic,
            )
            .with_scripted(
                config
                    .scripted_events
                    .iter()
                    .filter(|s| s.patient == index)
                    .map(|s| s.event),
            );
            patients.push(
                Physiology::new(
                    profile,
                    seed,
                    index as u64,
                    config.start_clock_s,
                    config.meals,
                )
                .with_events(events),
            );
            for (position, class) in classes.iter().enumerate() {
                let ordinal = classes
                    .get(..position)
                    .map_or(0, |before| before.iter().filter(|c| *c == class).count());
                let mut device = VirtualDevice::new(*class, index, seed, ordinal as u64);
                if let Some(max) = config.max_report_period {
                    device.cap_periods(max)?;
                }
                devices.push(device);
            }
        }
        let relays = relays_of(&devices);
        Ok(Self {
            seed,
            time: 0.0,
            patients,
            devices,
            relays,
            ground_truth: Vec::new(),
        })
    }

    /// The run's seed.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// Simulated seconds since the run began.
    pub fn now(&self) -> f64 {
        self.time
    }

    /// Advances every patient by `dt` simulated seconds and records the clinical events that
    /// began. A `dt` that is not positive and finite does nothing. Drivers step at their tick
    /// (1 s for a live demo); long test runs may step in larger steps.
    pub fn advance(&mut self, dt: f64) {
        if !(dt.is_finite() && dt > 0.0) {
            return;
        }
        self.time += dt;
        for (index, patient) in self.patients.iter_mut().enumerate() {
            patient.step(dt);
            for event in patient.take_started_events() {
                self.ground_truth.push(event.record(index));
            }
        }
    }

    /// The patients' physiology, by index.
    pub fn patients(&self) -> &[Physiology] {
        &self.patients
    }

    /// One patient's physiology.
    pub fn patient(&self, index: usize) -> Option<&Physiology> {
        self.patients.get(index)
    }

    /// The devices, by index (patient by patient).
    pub fn devices(&self) -> &[VirtualDevice] {
        &self.devices
    }

    /// One device, to change its periods or units.
    pub fn device_mut(&mut self, index: usize) -> Option<&mut VirtualDevice> {
        self.devices.get_mut(index)
    }

    /// The readings device `index` has due now: its own measurements (the readings another
    /// device relays come only through [`Ward::collect_due`]).
    pub fn due_readings(&mut self, index: usize) -> Vec<SimReading> {
        let mut out = Vec::new();
        if let Some(device) = self.devices.get_mut(index)
            && let Some(patient) = self.patients.get(device.patient())
        {
            device.due_readings_into(self.time, patient, &mut out);
        }
        out
    }

    /// Appends every device's due readings to `out`, device by device, with the readings each
    /// relays from another device of its patient ([`RELAYS`]) among its own.
    pub fn collect_due(&mut self, out: &mut Vec<DeviceReading>) {
        let start = out.len();
        let mut buffer = Vec::new();
        let mut relayed = false;
        for (index, device) in self.devices.iter_mut().enumerate() {
            let Some(patient) = self.patients.get(device.patient()) else {
                continue;
            };
            buffer.clear();
            device.due_readings_into(self.time, patient, &mut buffer);
            let relay = self.relays.get(index).copied().flatten();
            for &reading in &buffer {
                out.push(DeviceReading {
                    device: index,
                    reading,
                });
                if let Some((quantity, relay)) = relay
                    && quantity == reading.quantity
                {
                    out.push(DeviceReading {
                        device: relay,
                        reading,
                    });
                    relayed = true;
                }
            }
        }
        if relayed {
            // Stable: every device's readings together, each device's in the order they came.
            if let Some(new) = out.get_mut(start..) {
                new.sort_by_key(|r| r.device);
            }
        }
    }

    /// The clinical events that have begun, in the order they began. A driver that streams them
    /// remembers how many it has seen.
    pub fn ground_truth(&self) -> &[GroundTruth] {
        &self.ground_truth
    }

    /// Carries out `command` on device `index`, as the device would on receiving it (the hub's
    /// interlock has already decided whether it should be sent; the device only refuses what it
    /// cannot do). Insulin and pacing commands change the patient's physiology.
    pub fn command(
        &mut self,
        index: usize,
        command: CommandKind,
        value: Option<f64>,
    ) -> Result<(), CommandError> {
        let device = self
            .devices
            .get_mut(index)
            .ok_or(CommandError::NoSuchDevice(index))?;
        let class = device.class();
        if !class.accepts(command) {
            return Err(CommandError::NotAccepted { class, command });
        }
        if let Some(quantity) = command.parameter() {
            let ok = value.is_some_and(|v| v.is_finite() && quantity.check_range(v).is_ok());
            if !ok {
                return Err(CommandError::BadValue(command));
            }
        }
        let patient = self
            .patients
            .get_mut(device.patient())
            .ok_or(CommandError::NoSuchDevice(index))?;
        let value_or = |q: Quantity| value.ok_or(CommandError::BadValue(command)).map(|v| (q, v));
        match (class, command) {
            (DeviceClass::InsulinPump, CommandKind::SetBasalRate) => {
                let (_, v) = value_or(Quantity::InsulinBasalRate)?;
                patient.set_basal_rate(v)?;
            }
            (DeviceClass::InsulinPump, CommandKind::DeliverBolus) => {
                let (_, v) = value_or(Quantity::InsulinBolus)?;
                patient.deliver_bolus(v)?;
            }
            (DeviceClass::InsulinPump, CommandKind::SuspendDelivery) => {
                patient.set_insulin_suspended(true)?;
            }
            (DeviceClass::InsulinPump, CommandKind::ResumeDelivery) => {
                patient.set_insulin_suspended(false)?;
            }
            (DeviceClass::PacemakerMonitor, CommandKind::SetPacingLowerRate) => {
                let (_, v) = value_or(Quantity::PacingLowerRateLimit)?;
                patient.set_pacing_lower_rate(v)?;
                device.request(crate::devices::Channel::Interrogation);
            }
            _ => device.apply(command, value)?,
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::ClinicalEventKind;

    fn run(ward: &mut Ward, seconds: u32) -> Vec<DeviceReading> {
        let mut out = Vec::new();
        for _ in 0..seconds {
            ward.advance(1.0);
            ward.collect_due(&mut out);
        }
        out
    }

    fn readings_of(out: &[DeviceReading], devices: std::ops::Range<usize>) -> Vec<SimReading> {
        out.iter()
            .filter(|r| devices.contains(&r.device))
            .map(|r| r.reading)
            .collect()
    }

    #[test]
    fn the_clinical_mix_follows_the_patients() {
        let ward = Ward::new(
            3,
            WardConfig {
                patients: 200,
                ..WardConfig::default()
            },
        )
        .unwrap();
        for (index, patient) in ward.patients().iter().enumerate() {
            let classes: Vec<DeviceClass> = ward
                .devices()
                .iter()
                .filter(|d| d.patient() == index)
                .map(VirtualDevice::class)
                .collect();
            assert!(classes.contains(&DeviceClass::BedsideMonitor));
            assert!(classes.contains(&DeviceClass::PulseOximeter));
            let diabetic = patient.profile().diabetes.is_some();
            assert_eq!(classes.contains(&DeviceClass::InsulinPump), diabetic);
            assert_eq!(
                classes.contains(&DeviceClass::ContinuousGlucoseMonitor),
                diabetic
            );
            assert_eq!(
                classes.contains(&DeviceClass::PacemakerMonitor),
                patient.pacing_lower_rate().is_some()
            );
        }
        for class in DeviceClass::ALL {
            assert!(
                ward.devices().iter().any(|d| d.class() == *class),
                "no {class} on a 200-bed ward"
            );
        }
    }

    #[test]
    fn a_pump_relays_each_of_its_patients_cgm_readings_and_no_one_elses() {
        use DeviceClass as D;
        let mut ward = Ward::new(
            5,
            WardConfig {
                patients: 3,
                // Patient 0: CGM and pump; patient 1: a CGM alone; patient 2: a pump alone.
                devices: DeviceMix::PerPatient(vec![
                    vec![D::ContinuousGlucoseMonitor, D::InsulinPump],
                    vec![D::ContinuousGlucoseMonitor],
                    vec![D::InsulinPump],
                ]),
                ..WardConfig::default()
            },
        )
        .unwrap();
        let out = run(&mut ward, 3 * 3600);
        let glucose = |device: usize| -> Vec<SimReading> {
            readings_of(&out, device..device + 1)
                .into_iter()
                .filter(|r| r.quantity == Quantity::GlucoseInterstitial)
                .collect()
        };
        // Devices 0 and 1 are patient 0's, 2 patient 1's CGM, 3 patient 2's pump.
        assert_eq!(glucose(0).len(), 36);
        assert_eq!(
            glucose(1),
            glucose(0),
            "the copy is the reading, time and unit"
        );
        assert_eq!(glucose(2).len(), 36);
        assert!(glucose(3).is_empty(), "a pump with no CGM relays nothing");
        // Each device's readings stay together in one poll (a driver sends them as one pack).
        let mut poll = Vec::new();
        let mut devices_in_order = Vec::new();
        for _ in 0..600 {
            ward.advance(1.0);
            poll.clear();
            ward.collect_due(&mut poll);
            devices_in_order.clear();
            devices_in_order.extend(poll.iter().map(|r| r.device));
            let mut sorted = devices_in_order.clone();
            sorted.sort_unstable();
            assert_eq!(devices_in_order, sorted);
        }
    }

    #[test]
    fn bad_configurations_are_refused() {
        let event = ClinicalEvent::typical(ClinicalEventKind::Fever, 0.0, 60.0).unwrap();
        let config = WardConfig {
            patients: 2,
            scripted_events: vec![ScriptedEvent { patient: 2, event }],
            ..WardConfig::default()
        };
        assert_eq!(
            Ward::new(1, config).unwrap_err(),
            WardError::NoSuchPatient {
                patient: 2,
                patients: 2
            }
        );
        let config = WardConfig {
            events_per_patient_day: f64::NAN,
            ..WardConfig::default()
        };
        assert!(Ward::new(1, config).is_err());
        let config = WardConfig {
            max_report_period: Some(0.0),
            ..WardConfig::default()
        };
        assert!(Ward::new(1, config).is_err());
    }

    #[test]
    fn a_change_to_one_patient_leaves_the_others_alone() {
        let base = WardConfig {
            patients: 3,
            devices: DeviceMix::Uniform(vec![DeviceClass::BedsideMonitor]),
            events_per_patient_day: 6.0,
            max_report_period: Some(30.0),
            ..WardConfig::default()
        };
        let mut plain = Ward::new(9, base.clone()).unwrap();
        let event = ClinicalEvent::typical(ClinicalEventKind::Desaturation, 100.0, 300.0).unwrap();
        let mut changed = Ward::new(
            9,
            WardConfig {
                devices: DeviceMix::PerPatient(vec![
                    vec![DeviceClass::BedsideMonitor],
                    vec![DeviceClass::BedsideMonitor, DeviceClass::EcgPatch],
                    vec![DeviceClass::BedsideMonitor],
                ]),
                scripted_events: vec![ScriptedEvent { patient: 1, event }],
                ..base
            },
        )
        .unwrap();
        let a = run(&mut plain, 1800);
        let b = run(&mut changed, 1800);
        // Patient 0 has device 0 in both wards; patient 2 has device 2 in one, 3 in the other.
        assert_eq!(readings_of(&a, 0..1), readings_of(&b, 0..1));
        assert_eq!(readings_of(&a, 2..3), readings_of(&b, 3..4));
        assert_ne!(readings_of(&a, 1..2), readings_of(&b, 1..2));
    }

    #[test]
    fn commands_reach_the_patient_through_the_device() {
        let mut ward = Ward::new(
            4,
            WardConfig {
                patients: 1,
                devices: DeviceMix::Uniform(vec![
                    DeviceClass::InsulinPump,
                    DeviceClass::InfusionPump,
                    DeviceClass::PacemakerMonitor,
                    DeviceClass::Thermometer,
                ]),
                events_per_patient_day: 0.0,
                meals: false,
                ..WardConfig::default()
            },
        )
        .unwrap();
        let before = ward.patient(0).unwrap().vitals().glucose_mg_dl;
        ward.command(0, CommandKind::DeliverBolus, Some(4.0))
            .unwrap();
        run(&mut ward, 7200);
        let after = ward.patient(0).unwrap().vitals().glucose_mg_dl;
        assert!(before - after > 30.0, "{before} → {after}");

        ward.command(2, CommandKind::SetPacingLowerRate, Some(90.0))
            .unwrap();
        ward.advance(1.0);
        assert!(ward.patient(0).unwrap().vitals().heart_rate >= 90.0);
        let interrogation = ward.due_readings(2);
        assert!(
            interrogation
                .iter()
                .any(|r| r.quantity == Quantity::PacingLowerRateLimit && r.value == 90.0)
        );

        ward.command(1, CommandKind::SetInfusionRate, Some(80.0))
            .unwrap();
        assert_eq!(ward.devices()[1].infusion(), Some((80.0, false)));

        assert_eq!(
            ward.command(3, CommandKind::DeliverBolus, Some(1.0)),
            Err(CommandError::NotAccepted {
                class: DeviceClass::Thermometer,
                command: CommandKind::DeliverBolus
            })
        );
        assert_eq!(
            ward.command(0, CommandKind::DeliverBolus, Some(500.0)),
            Err(CommandError::BadValue(CommandKind::DeliverBolus))
        );
        assert_eq!(
            ward.command(0, CommandKind::SetBasalRate, None),
            Err(CommandError::BadValue(CommandKind::SetBasalRate))
        );
        assert_eq!(
            ward.command(9, CommandKind::SuspendDelivery, None),
            Err(CommandError::NoSuchDevice(9))
        );
        ward.command(0, CommandKind::SuspendDelivery, None).unwrap();
        assert!(ward.patient(0).unwrap().insulin_pump().unwrap().suspended);
    }

    #[test]
    fn scripted_events_become_ground_truth_when_they_begin() {
        let event = ClinicalEvent::new(ClinicalEventKind::Desaturation, 40.0, 60.0, 85.0).unwrap();
        let mut ward = Ward::new(
            1,
            WardConfig {
                patients: 4,
                events_per_patient_day: 0.0,
                scripted_events: vec![ScriptedEvent { patient: 3, event }],
                ..WardConfig::default()
            },
        )
        .unwrap();
        run(&mut ward, 39);
        assert!(ward.ground_truth().is_empty());
        run(&mut ward, 1);
        assert_eq!(ward.ground_truth(), &[event.record(3)]);
        run(&mut ward, 30);
        assert!(ward.patient(3).unwrap().vitals().spo2 < 90.0);
        run(&mut ward, 60);
        assert_eq!(ward.ground_truth().len(), 1);
    }
}
