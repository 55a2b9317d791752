//! Safety profiles of actuating device classes: the limits that hold every command, whoever
//! sends it.
//!
//! A profile holds one rule per command the class accepts. A rule bounds the parameter
//! absolutely, bounds how much it may move in any rolling hour, and says when a second person
//! must approve. The hub's command interlock evaluates the rule before it signs a command; the
//! device enforces its own hardware limits as well (defence in depth).
//!
//! The numbers below are Vigil's conservative *defaults*, chosen to sit inside the programmable
//! ranges of common devices so that a command within them is always one the device can carry
//! out; a hospital narrows them per ward. Sources:
//! - Insulin basal 0–15 U/h and bolus ≤ 25 U: Tandem t:slim X2 User Guide (basal 0.1–15 U/h,
//!   bolus 0.05–25 U); Medtronic MiniMed 780G System User Guide allows more (basal ≤ 35 U/h,
//!   bolus ≤ 25 U), so the narrower range holds for both.
//! - Infusion 0.1–999 mL/h: BD Alaris Pump Module (8100) Technical Service Manual, rate range
//!   0.1–999 mL/h.
//! - Pacing lower rate 30–120 /min: within the 30–150 /min lower-rate range of Medtronic
//!   pacemakers (Azure / Adapta reference manuals); above 120 /min a "lower" rate is no longer
//!   a bradycardia setting and is refused.
//! - Two-person thresholds follow ISMP's list of high-alert medications (insulin and
//!   intravenous infusions call for independent double checks) and the principle that any
//!   remote reprogramming of an implanted device is approved by a second clinician.

use std::fmt;

use crate::device::{CommandKind, DeviceClass};
use crate::quantity::Quantity;

/// The safety profile of one actuating device class.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SafetyProfile {
    /// The class it holds.
    pub class: DeviceClass,
    /// One rule per accepted command.
    pub rules: &'static [CommandRule],
}

/// The limits on one command.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CommandRule {
    /// The command.
    pub command: CommandKind,
    /// Limits on its parameter, for commands that carry one.
    pub parameter: Option<ParameterLimits>,
    /// When a second person must approve.
    pub approval: Approval,
}

/// Limits on a command parameter, in the canonical unit of its quantity.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ParameterLimits {
    /// The parameter's quantity (its canonical unit is the unit of every number here).
    pub quantity: Quantity,
    /// Lowest value a command may set.
    pub min: f64,
    /// Highest value a command may set.
    pub max: f64,
    /// What may happen within any rolling hour.
    pub per_hour: HourlyLimit,
}

/// The bound over any rolling hour.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum HourlyLimit {
    /// A setting: the sum of the absolute changes made within the hour, this one included.
    MaxChange(f64),
    /// A dose: the sum of the amounts delivered within the hour, this one included.
    MaxTotal(f64),
}

/// When a second person must approve a command.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Approval {
    /// Never: the command is always in the safe direction (suspend, measure).
    NotRequired,
    /// Always.
    Always,
    /// When the new value, or the size of the change, exceeds a threshold.
    Above {
        /// A value above this needs approval.
        value: f64,
        /// A change (setting) or amount (dose) larger than this needs approval.
        change: f64,
    },
}

/// What the profile decides about a proposed command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Within the limits; one person may send it.
    Allowed,
    /// Within the limits, but a second person must approve before it is signed.
    NeedsSecondPerson,
}

/// Why a proposed command is refused. Names limits, never patient values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SafetyViolation {
    /// The device class does not accept this command at all.
    #[error("{class} does not accept {command}")]
    NotAccepted {
        /// The class.
        class: DeviceClass,
        /// The command.
        command: CommandKind,
    },
    /// The command needs a parameter value and none was given, or the value is not a number.
    #[error("{0} needs a finite parameter value")]
    MissingParameter(CommandKind),
    /// The value is outside the absolute bounds.
    #[error("{0} value is outside the safety profile's bounds")]
    OutOfBounds(CommandKind),
    /// The change or the delivered total within the last hour would exceed the hourly bound.
    #[error("{0} would exceed the safety profile's hourly limit")]
    HourlyLimitExceeded(CommandKind),
}

/// A command proposed for a device, in canonical units.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Proposal {
    /// The command.
    pub command: CommandKind,
    /// The new setting or the dose, for commands with a parameter.
    pub value: Option<f64>,
    /// The device's current setting (for settings), if known. Unknown counts as a change from
    /// zero, the most cautious reading.
    pub current: Option<f64>,
    /// What already happened within the last hour: the sum of absolute changes (settings) or of
    /// amounts delivered (doses).
    pub used_this_hour: f64,
}

impl SafetyProfile {
    /// The profile of an actuating class; `None` for classes that only measure.
    pub fn for_class(class: DeviceClass) -> Option<&'static SafetyProfile> {
        PROFILES.iter().find(|p| p.class == class)
    }

    /// The rule for one command, if the class accepts it.
    pub fn rule(&self, command: CommandKind) -> Option<&'static CommandRule> {
        self.rules.iter().find(|r| r.command == command)
    }

    /// Decides whether a proposed command may be sent, and whether it needs a second person.
    pub fn evaluate(&self, proposal: &Proposal) -> Result<Decision, SafetyViolation> {
        let rule = self
            .rule(proposal.command)
            .ok_or(SafetyViolation::NotAccepted {
                class: self.class,
                command: proposal.command,
            })?;
        rule.evaluate(proposal)
    }
}

impl CommandRule {
    /// Evaluates a proposal against this rule.
    pub fn evaluate(&self, proposal: &Proposal) -> Result<Decision, SafetyViolation> {
        let command = self.command;
        let Some(limits) = self.parameter else {
            return Ok(match self.approval {
                Approval::Always => Decision::NeedsSecondPerson,
                Approval::NotRequired | Approval::Above { .. } => Decision::Allowed,
            });
        };
        let value = proposal
            .value
            .filter(|v| v.is_finite())
            .ok_or(SafetyViolation::MissingParameter(command))?;
        if !(limits.min..=limits.max).contains(&value) {
            return Err(SafetyViolation::OutOfBounds(command));
        }
        let step = match limits.per_hour {
            HourlyLimit::MaxChange(_) => {
                (value - proposal.current.filter(|c| c.is_finite()).unwrap_or(0.0)).abs()
            }
            HourlyLimit::MaxTotal(_) => value,
        };
        let bound = match limits.per_hour {
            HourlyLimit::MaxChange(bound) | HourlyLimit::MaxTotal(bound) => bound,
        };
        if proposal.used_this_hour.max(0.0) + step > bound {
            return Err(SafetyViolation::HourlyLimitExceeded(command));
        }
        Ok(match self.approval {
            Approval::NotRequired => Decision::Allowed,
            Approval::Always => Decision::NeedsSecondPerson,
            Approval::Above {
                value: value_threshold,
                change,
            } if value > value_threshold || step > change => Decision::NeedsSecondPerson,
            Approval::Above { .. } => Decision::Allowed,
        })
    }
}

impl fmt::Display for HourlyLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HourlyLimit::MaxChange(v) => write!(f, "change ≤ {v} per hour"),
            HourlyLimit::MaxTotal(v) => write!(f, "total ≤ {v} per hour"),
        }
    }
}

impl fmt::Display for Approval {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Approval::NotRequired => f.write_str("not required"),
            Approval::Always => f.write_str("always"),
            Approval::Above { value, change } => {
                write!(f, "when value > {value} or change > {change}")
            }
        }
    }
}

const PROFILES: &[SafetyProfile] = &[
    SafetyProfile {
        class: DeviceClass::InsulinPump,
        rules: &[
            CommandRule {
                command: CommandKind::SetBasalRate,
                parameter: Some(ParameterLimits {
                    quantity: Quantity::InsulinBasalRate,
                    min: 0.0,
                    max: 15.0,
                    per_hour: HourlyLimit::MaxChange(2.0),
                }),
                // A change of more than 0.5 U/h, or any rate above 5 U/h, is checked twice.
                approval: Approval::Above {
                    value: 5.0,
                    change: 0.5,
                },
            },
            CommandRule {
                command: CommandKind::DeliverBolus,
                parameter: Some(ParameterLimits {
                    quantity: Quantity::InsulinBolus,
                    min: 0.05,
                    max: 25.0,
                    per_hour: HourlyLimit::MaxTotal(25.0),
                }),
                // A bolus above 10 U is checked twice.
                approval: Approval::Above {
                    value: 10.0,
                    change: 10.0,
                },
            },
            CommandRule {
                command: CommandKind::SuspendDelivery,
                parameter: None,
                approval: Approval::NotRequired,
            },
            CommandRule {
                command: CommandKind::ResumeDelivery,
                parameter: None,
                approval: Approval::NotRequired,
            },
        ],
    },
    SafetyProfile {
        class: DeviceClass::InfusionPump,
        rules: &[
            CommandRule {
                command: CommandKind::SetInfusionRate,
                parameter: Some(ParameterLimits {
                    quantity: Quantity::InfusionRate,
                    min: 0.1,
                    max: 999.0,
                    per_hour: HourlyLimit::MaxChange(500.0),
                }),
                // A change of more than 100 mL/h, or a rate above 500 mL/h, is checked twice.
                approval: Approval::Above {
                    value: 500.0,
                    change: 100.0,
                },
            },
            CommandRule {
                command: CommandKind::SuspendDelivery,
                parameter: None,
                approval: Approval::NotRequired,
            },
            CommandRule {
                command: CommandKind::ResumeDelivery,
                parameter: None,
                approval: Approval::NotRequired,
            },
        ],
    },
    SafetyProfile {
        class: DeviceClass::PacemakerMonitor,
        rules: &[
            CommandRule {
                command: CommandKind::SetPacingLowerRate,
                parameter: Some(ParameterLimits {
                    quantity: Quantity::PacingLowerRateLimit,
                    min: 30.0,
                    max: 120.0,
                    per_hour: HourlyLimit::MaxChange(20.0),
                }),
                approval: Approval::Always,
            },
            CommandRule {
                command: CommandKind::RequestInterrogation,
                parameter: None,
                approval: Approval::NotRequired,
            },
        ],
    },
];

#[cfg(test)]
mod tests {
    use super::*;

    fn profile(class: DeviceClass) -> &'static SafetyProfile {
        SafetyProfile::for_class(class).unwrap()
    }

    fn basal(value: f64, current: f64, used: f64) -> Proposal {
        Proposal {
            command: CommandKind::SetBasalRate,
            value: Some(value),
            current: Some(current),
            used_this_hour: used,
        }
    }

    #[test]
    fn every_profile_covers_exactly_the_commands_its_class_accepts() {
        for profile in PROFILES {
            let mut ruled: Vec<_> = profile.rules.iter().map(|r| r.command).collect();
            let mut accepted = profile.class.spec().commands.to_vec();
            ruled.sort();
            accepted.sort();
            assert_eq!(ruled, accepted, "{}", profile.class);
            for rule in profile.rules {
                assert_eq!(
                    rule.parameter.map(|p| p.quantity),
                    rule.command.parameter(),
                    "{}",
                    rule.command
                );
                if let Some(p) = rule.parameter {
                    let limits = p.quantity.spec().limits;
                    assert!(p.min < p.max);
                    assert!(
                        limits.min <= p.min && p.max <= limits.max,
                        "{}: profile bounds must sit inside the quantity's possible range",
                        rule.command
                    );
                }
            }
        }
    }

    #[test]
    fn a_small_basal_change_is_allowed() {
        let insulin = profile(DeviceClass::InsulinPump);
        assert_eq!(
            insulin.evaluate(&basal(1.2, 1.0, 0.0)),
            Ok(Decision::Allowed)
        );
    }

    #[test]
    fn a_larger_basal_change_needs_a_second_person() {
        let insulin = profile(DeviceClass::InsulinPump);
        assert_eq!(
            insulin.evaluate(&basal(2.0, 1.0, 0.0)),
            Ok(Decision::NeedsSecondPerson)
        );
        assert_eq!(
            insulin.evaluate(&basal(5.5, 5.4, 0.0)),
            Ok(Decision::NeedsSecondPerson),
            "a high rate needs approval even for a small step"
        );
    }

    #[test]
    fn a_tenfold_rate_is_refused() {
        let insulin = profile(DeviceClass::InsulinPump);
        assert_eq!(
            insulin.evaluate(&basal(16.0, 1.6, 0.0)),
            Err(SafetyViolation::OutOfBounds(CommandKind::SetBasalRate))
        );
        let infusion = profile(DeviceClass::InfusionPump);
        let proposal = Proposal {
            command: CommandKind::SetInfusionRate,
            value: Some(1250.0),
            current: Some(125.0),
            used_this_hour: 0.0,
        };
        assert_eq!(
            infusion.evaluate(&proposal),
            Err(SafetyViolation::OutOfBounds(CommandKind::SetInfusionRate))
        );
    }

    #[test]
    fn many_small_steps_cannot_add_up_past_the_hourly_bound() {
        let insulin = profile(DeviceClass::InsulinPump);
        assert_eq!(
            insulin.evaluate(&basal(1.4, 1.0, 1.5)),
            Ok(Decision::Allowed)
        );
        assert_eq!(
            insulin.evaluate(&basal(1.6, 1.0, 1.5)),
            Err(SafetyViolation::HourlyLimitExceeded(
                CommandKind::SetBasalRate
            ))
        );
    }

    #[test]
    fn boluses_are_bounded_per_hour_in_total() {
        let insulin = profile(DeviceClass::InsulinPump);
        let bolus = |value, used| Proposal {
            command: CommandKind::DeliverBolus,
            value: Some(value),
            current: None,
            used_this_hour: used,
        };
        assert_eq!(insulin.evaluate(&bolus(4.0, 0.0)), Ok(Decision::Allowed));
        assert_eq!(
            insulin.evaluate(&bolus(12.0, 0.0)),
            Ok(Decision::NeedsSecondPerson)
        );
        assert_eq!(
            insulin.evaluate(&bolus(6.0, 20.0)),
            Err(SafetyViolation::HourlyLimitExceeded(
                CommandKind::DeliverBolus
            ))
        );
    }

    #[test]
    fn an_unknown_current_setting_counts_as_a_change_from_zero() {
        let insulin = profile(DeviceClass::InsulinPump);
        let proposal = Proposal {
            current: None,
            ..basal(1.0, 0.0, 0.0)
        };
        assert_eq!(insulin.evaluate(&proposal), Ok(Decision::NeedsSecondPerson));
    }

    #[test]
    fn pacing_changes_always_need_a_second_person() {
        let pacer = profile(DeviceClass::PacemakerMonitor);
        let proposal = Proposal {
            command: CommandKind::SetPacingLowerRate,
            value: Some(65.0),
            current: Some(60.0),
            used_this_hour: 0.0,
        };
        assert_eq!(pacer.evaluate(&proposal), Ok(Decision::NeedsSecondPerson));
    }

    #[test]
    fn suspending_is_never_blocked() {
        for class in [DeviceClass::InsulinPump, DeviceClass::InfusionPump] {
            let proposal = Proposal {
                command: CommandKind::SuspendDelivery,
                value: None,
                current: None,
                used_this_hour: 1e9,
            };
            assert_eq!(profile(class).evaluate(&proposal), Ok(Decision::Allowed));
        }
    }

    #[test]
    fn refuses_missing_or_non_finite_values_and_foreign_commands() {
        let insulin = profile(DeviceClass::InsulinPump);
        for value in [None, Some(f64::NAN), Some(f64::INFINITY)] {
            let proposal = Proposal {
                value,
                ..basal(0.0, 1.0, 0.0)
            };
            assert_eq!(
                insulin.evaluate(&proposal),
                Err(SafetyViolation::MissingParameter(CommandKind::SetBasalRate))
            );
        }
        let proposal = Proposal {
            command: CommandKind::SetPacingLowerRate,
            ..basal(60.0, 60.0, 0.0)
        };
        assert!(matches!(
            insulin.evaluate(&proposal),
            Err(SafetyViolation::NotAccepted { .. })
        ));
    }

    #[test]
    fn measuring_classes_have_no_profile() {
        assert!(SafetyProfile::for_class(DeviceClass::Thermometer).is_none());
    }
}
