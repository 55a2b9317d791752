//! Device classes: what each kind of device may report and which commands it accepts.
//!
//! The hub refuses an observation of a quantity that the sending device's class does not report
//! (a thermometer sending an insulin rate is broken or lying), and a command that its class does
//! not accept. Actuating classes have a [`SafetyProfile`].

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::quantity::Quantity;
use crate::safety::SafetyProfile;

/// The kinds of device Vigil manages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum DeviceClass {
    /// A multi-parameter bedside patient monitor.
    BedsideMonitor,
    /// A pulse oximeter.
    PulseOximeter,
    /// A continuous glucose monitor.
    ContinuousGlucoseMonitor,
    /// An insulin pump.
    InsulinPump,
    /// An infusion pump.
    InfusionPump,
    /// The home monitor (communicator) of an implanted pacemaker or ICD.
    PacemakerMonitor,
    /// An automated non-invasive blood pressure cuff.
    BloodPressureCuff,
    /// A wearable ECG patch.
    EcgPatch,
    /// A clinical thermometer.
    Thermometer,
}

/// The commands a device may accept on its `cmd` topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum CommandKind {
    /// Set the insulin basal rate (parameter: [`Quantity::InsulinBasalRate`]).
    SetBasalRate,
    /// Deliver an insulin bolus (parameter: [`Quantity::InsulinBolus`]).
    DeliverBolus,
    /// Set an infusion pump's rate (parameter: [`Quantity::InfusionRate`]).
    SetInfusionRate,
    /// Set the pacing lower rate limit (parameter: [`Quantity::PacingLowerRateLimit`]).
    SetPacingLowerRate,
    /// Stop delivery (insulin or infusion). Always the safe direction, never blocked.
    SuspendDelivery,
    /// Resume delivery at the programmed settings after a suspend.
    ResumeDelivery,
    /// Start a measurement now (a blood pressure reading).
    StartMeasurement,
    /// Ask a pacemaker monitor to interrogate the implant and upload its data.
    RequestInterrogation,
}

impl CommandKind {
    /// Every command, in a stable order.
    pub const ALL: &'static [CommandKind] = &[
        CommandKind::SetBasalRate,
        CommandKind::DeliverBolus,
        CommandKind::SetInfusionRate,
        CommandKind::SetPacingLowerRate,
        CommandKind::SuspendDelivery,
        CommandKind::ResumeDelivery,
        CommandKind::StartMeasurement,
        CommandKind::RequestInterrogation,
    ];

    /// Stable snake_case name.
    pub fn key(self) -> &'static str {
        match self {
            CommandKind::SetBasalRate => "set_basal_rate",
            CommandKind::DeliverBolus => "deliver_bolus",
            CommandKind::SetInfusionRate => "set_infusion_rate",
            CommandKind::SetPacingLowerRate => "set_pacing_lower_rate",
            CommandKind::SuspendDelivery => "suspend_delivery",
            CommandKind::ResumeDelivery => "resume_delivery",
            CommandKind::StartMeasurement => "start_measurement",
            CommandKind::RequestInterrogation => "request_interrogation",
        }
    }

    /// The quantity the command carries as its parameter, if it has one.
    pub fn parameter(self) -> Option<Quantity> {
        match self {
            CommandKind::SetBasalRate => Some(Quantity::InsulinBasalRate),
            CommandKind::DeliverBolus => Some(Quantity::InsulinBolus),
            CommandKind::SetInfusionRate => Some(Quantity::InfusionRate),
            CommandKind::SetPacingLowerRate => Some(Quantity::PacingLowerRateLimit),
            CommandKind::SuspendDelivery
            | CommandKind::ResumeDelivery
            | CommandKind::StartMeasurement
            | CommandKind::RequestInterrogation => None,
        }
    }
}

impl fmt::Display for CommandKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.key())
    }
}

/// What Vigil knows about a device class.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DeviceClassSpec {
    /// The class.
    pub class: DeviceClass,
    /// Stable snake_case name, as `vigil device add --class` takes it.
    pub key: &'static str,
    /// Name for people.
    pub name: &'static str,
    /// The quantities it may report.
    pub reports: &'static [Quantity],
    /// The commands it accepts.
    pub commands: &'static [CommandKind],
}

use CommandKind as C;
use Quantity as Q;

const SPECS: &[DeviceClassSpec] = &[
    DeviceClassSpec {
        class: DeviceClass::BedsideMonitor,
        key: "bedside_monitor",
        name: "Bedside monitor",
        reports: &[
            Q::HeartRate,
            Q::PulseRate,
            Q::Spo2,
            Q::NibpSystolic,
            Q::NibpDiastolic,
            Q::NibpMean,
            Q::RespirationRate,
            Q::BodyTemperature,
            Q::BatteryLevel,
        ],
        commands: &[C::StartMeasurement],
    },
    DeviceClassSpec {
        class: DeviceClass::PulseOximeter,
        key: "pulse_oximeter",
        name: "Pulse oximeter",
        reports: &[Q::Spo2, Q::PulseRate, Q::BatteryLevel],
        commands: &[],
    },
    DeviceClassSpec {
        class: DeviceClass::ContinuousGlucoseMonitor,
        key: "cgm",
        name: "Continuous glucose monitor",
        reports: &[Q::GlucoseInterstitial, Q::BatteryLevel],
        commands: &[],
    },
    DeviceClassSpec {
        class: DeviceClass::InsulinPump,
        key: "insulin_pump",
        name: "Insulin pump",
        // A closed-loop pump also reports the sensor glucose it doses on, which it receives
        // from the patient's CGM over its own radio: the hub compares the two paths.
        reports: &[
            Q::InsulinBasalRate,
            Q::InsulinBolus,
            Q::GlucoseInterstitial,
            Q::BatteryLevel,
        ],
        commands: &[
            C::SetBasalRate,
            C::DeliverBolus,
            C::SuspendDelivery,
            C::ResumeDelivery,
        ],
    },
    DeviceClassSpec {
        class: DeviceClass::InfusionPump,
        key: "infusion_pump",
        name: "Infusion pump",
        reports: &[Q::InfusionRate, Q::BatteryLevel],
        commands: &[C::SetInfusionRate, C::SuspendDelivery, C::ResumeDelivery],
    },
    DeviceClassSpec {
        class: DeviceClass::PacemakerMonitor,
        key: "pacemaker_monitor",
        name: "Pacemaker/ICD home monitor",
        reports: &[Q::HeartRate, Q::PacingLowerRateLimit, Q::BatteryLevel],
        commands: &[C::SetPacingLowerRate, C::RequestInterrogation],
    },
    DeviceClassSpec {
        class: DeviceClass::BloodPressureCuff,
        key: "bp_cuff",
        name: "Blood pressure cuff",
        reports: &[
            Q::NibpSystolic,
            Q::NibpDiastolic,
            Q::NibpMean,
            Q::BatteryLevel,
        ],
        commands: &[C::StartMeasurement],
    },
    DeviceClassSpec {
        class: DeviceClass::EcgPatch,
        key: "ecg_patch",
        name: "ECG patch",
        reports: &[Q::HeartRate, Q::BatteryLevel],
        commands: &[],
    },
    DeviceClassSpec {
        class: DeviceClass::Thermometer,
        key: "thermometer",
        name: "Thermometer",
        reports: &[Q::BodyTemperature, Q::BatteryLevel],
        commands: &[],
    },
];

/// A reading that one class of device measures and another receives from it over its own
/// radio and reports too, so that the hub gets it by two paths.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Relay {
    /// What is measured.
    pub quantity: Quantity,
    /// The class of the device that measures it.
    pub source: DeviceClass,
    /// The class of the patient's device that receives it from the source and reports it.
    pub relaying: DeviceClass,
}

/// The relays Vigil knows. Closed-loop insulin pumps (Tandem t:slim X2 with Control-IQ,
/// Medtronic MiniMed 780G, Omnipod 5) receive each CGM reading directly from the sensor, dose on
/// it, and report it with their own history, while the CGM's own path brings it too.
pub const RELAYS: &[Relay] = &[Relay {
    quantity: Q::GlucoseInterstitial,
    source: DeviceClass::ContinuousGlucoseMonitor,
    relaying: DeviceClass::InsulinPump,
}];

/// A device class name that Vigil does not know.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown device class; known classes: {known}")]
pub struct UnknownDeviceClass {
    /// The known class keys, comma separated.
    pub known: String,
}

impl DeviceClass {
    /// Every device class, in table order.
    pub const ALL: &'static [DeviceClass] = &[
        DeviceClass::BedsideMonitor,
        DeviceClass::PulseOximeter,
        DeviceClass::ContinuousGlucoseMonitor,
        DeviceClass::InsulinPump,
        DeviceClass::InfusionPump,
        DeviceClass::PacemakerMonitor,
        DeviceClass::BloodPressureCuff,
        DeviceClass::EcgPatch,
        DeviceClass::Thermometer,
    ];

    /// What Vigil knows about this class.
    pub fn spec(self) -> &'static DeviceClassSpec {
        // SPECS lists every class in declaration order; `every_class_has_its_spec` holds that.
        SPECS.get(self as usize).unwrap_or(&SPECS[0])
    }

    /// Whether this class may report `quantity`.
    pub fn reports(self, quantity: Quantity) -> bool {
        self.spec().reports.contains(&quantity)
    }

    /// Whether this class accepts `command`.
    pub fn accepts(self, command: CommandKind) -> bool {
        self.spec().commands.contains(&command)
    }

    /// The safety profile of an actuating class; `None` for classes that only measure.
    pub fn safety_profile(self) -> Option<&'static SafetyProfile> {
        SafetyProfile::for_class(self)
    }
}

impl std::str::FromStr for DeviceClass {
    type Err = UnknownDeviceClass;

    fn from_str(key: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .iter()
            .copied()
            .find(|c| c.spec().key == key)
            .ok_or_else(|| UnknownDeviceClass {
                known: SPECS.iter().map(|s| s.key).collect::<Vec<_>>().join(", "),
            })
    }
}

impl fmt::Display for DeviceClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.spec().key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_ends_of_every_relay_may_report_what_is_relayed() {
        for relay in RELAYS {
            assert!(relay.source.reports(relay.quantity), "{relay:?}");
            assert!(relay.relaying.reports(relay.quantity), "{relay:?}");
            assert_ne!(relay.source, relay.relaying);
        }
    }

    #[test]
    fn every_class_has_its_spec() {
        assert_eq!(SPECS.len(), DeviceClass::ALL.len());
        for (index, class) in DeviceClass::ALL.iter().enumerate() {
            assert_eq!(*class as usize, index, "declaration order is table order");
            assert_eq!(class.spec().class, *class);
            assert_eq!(class.to_string().parse::<DeviceClass>(), Ok(*class));
        }
    }

    #[test]
    fn unknown_class_lists_the_known_ones() {
        let err = "toaster".parse::<DeviceClass>().unwrap_err();
        assert!(err.to_string().contains("insulin_pump"), "{err}");
    }

    #[test]
    fn a_class_is_actuating_exactly_when_it_has_a_parameterised_command_and_a_profile() {
        for class in DeviceClass::ALL {
            let parameterised = class
                .spec()
                .commands
                .iter()
                .any(|c| c.parameter().is_some());
            assert_eq!(
                parameterised,
                class.safety_profile().is_some(),
                "{class}: a class that sets therapy needs a safety profile, and only it"
            );
        }
    }

    #[test]
    fn a_device_reports_the_setting_it_is_commanded() {
        // The hub can only hold a command to the device's limits if it knows the current value.
        for class in DeviceClass::ALL {
            for command in class.spec().commands {
                if let Some(parameter) = command.parameter() {
                    assert!(class.reports(parameter), "{class} {command}");
                }
            }
        }
    }

    #[test]
    fn measuring_devices_accept_no_therapy_command() {
        assert!(!DeviceClass::Thermometer.accepts(CommandKind::SetBasalRate));
        assert!(DeviceClass::InsulinPump.accepts(CommandKind::SetBasalRate));
        assert!(!DeviceClass::InsulinPump.reports(Quantity::Spo2));
    }
}
