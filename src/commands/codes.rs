//! `vigil codes`: print the clinical vocabulary for people integrating a device.

use std::process::ExitCode;

use serde::Serialize;
use vigil_model::device::DeviceClass;
use vigil_model::mdc::{MDC_SYSTEM, MdcCode};
use vigil_model::quantity::{LOINC_SYSTEM, Quantity, QuantityKind};
use vigil_model::safety::{Approval, HourlyLimit};

use crate::cli::{CodesArgs, CodesFormat};

pub(crate) fn run(args: &CodesArgs) -> anyhow::Result<ExitCode> {
    let text = match (args.devices, args.format) {
        (false, CodesFormat::Table) => quantities_table(),
        (false, CodesFormat::Json) => serde_json::to_string_pretty(&quantities_json())?,
        (true, CodesFormat::Table) => devices_table(),
        (true, CodesFormat::Json) => serde_json::to_string_pretty(&devices_json())?,
    };
    println!("{text}");
    Ok(ExitCode::SUCCESS)
}

/// Formats rows as left-aligned columns separated by two spaces.
fn columns(rows: &[Vec<String>]) -> String {
    let widths: Vec<usize> = (0..rows.first().map_or(0, Vec::len))
        .map(|i| {
            rows.iter()
                .map(|r| r.get(i).map_or(0, |c| c.chars().count()))
                .max()
                .unwrap_or(0)
        })
        .collect();
    rows.iter()
        .map(|row| {
            row.iter()
                .zip(&widths)
                .map(|(cell, width)| format!("{cell:<width$}"))
                .collect::<Vec<_>>()
                .join("  ")
                .trim_end()
                .to_owned()
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn number(value: f64) -> String {
    // Limits are written with the precision they were given; `{}` prints 0.05 as 0.05.
    format!("{value}")
}

fn quantities_table() -> String {
    let mut rows = vec![
        [
            "QUANTITY",
            "MDC REFID",
            "MDC CODE",
            "LOINC",
            "UNIT",
            "ALSO ACCEPTED",
            "POSSIBLE RANGE",
            "MAX CHANGE/MIN",
        ]
        .map(String::from)
        .to_vec(),
    ];
    for quantity in Quantity::ALL {
        let spec = quantity.spec();
        rows.push(vec![
            spec.key.to_owned(),
            spec.mdc.refid.to_owned(),
            spec.mdc.code().to_string(),
            if spec.loinc.is_empty() {
                "-".to_owned()
            } else {
                spec.loinc
                    .iter()
                    .map(|l| l.code)
                    .collect::<Vec<_>>()
                    .join(" ")
            },
            spec.canonical_unit().ucum.to_owned(),
            spec.units
                .iter()
                .skip(1)
                .map(|u| u.unit.ucum)
                .collect::<Vec<_>>()
                .join(" "),
            format!("{}..{}", number(spec.limits.min), number(spec.limits.max)),
            spec.limits
                .max_change_per_minute
                .map_or("step".to_owned(), number),
        ]);
    }
    format!(
        "{}\n\nMDC codes are IEEE 11073-10101 context-free codes (FHIR system {MDC_SYSTEM}); \
         LOINC system {LOINC_SYSTEM}; units are UCUM.\nPOSSIBLE RANGE and MAX CHANGE are limits of \
         what is physically possible, in the canonical unit, not alarm limits; \"step\" means the \
         value may legitimately change at once.\nSources: `vigil codes --format json` lists each \
         entry's sources.",
        columns(&rows)
    )
}

#[derive(Serialize)]
struct QuantityJson {
    key: &'static str,
    name: &'static str,
    kind: QuantityKind,
    mdc: MdcJson,
    mdc_aliases: Vec<MdcJson>,
    loinc: Vec<LoincJson>,
    canonical_unit: &'static str,
    units: Vec<UnitJson>,
    limits: LimitsJson,
    sources: &'static str,
}

#[derive(Serialize)]
struct MdcJson {
    system: &'static str,
    refid: &'static str,
    code: u32,
    partition: u16,
    term: u16,
}

impl From<MdcCode> for MdcJson {
    fn from(mdc: MdcCode) -> Self {
        MdcJson {
            system: MDC_SYSTEM,
            refid: mdc.refid,
            code: mdc.code(),
            partition: mdc.partition,
            term: mdc.term,
        }
    }
}

#[derive(Serialize)]
struct LoincJson {
    system: &'static str,
    code: &'static str,
    display: &'static str,
}

#[derive(Serialize)]
struct UnitJson {
    ucum: &'static str,
    display: &'static str,
    mdc_refid: Option<&'static str>,
    mdc_code: Option<u32>,
    /// canonical = value × scale + offset
    scale: f64,
    offset: f64,
}

#[derive(Serialize)]
struct LimitsJson {
    min: f64,
    max: f64,
    max_change_per_minute: Option<f64>,
}

fn quantities_json() -> Vec<QuantityJson> {
    Quantity::ALL
        .iter()
        .map(|q| {
            let spec = q.spec();
            QuantityJson {
                key: spec.key,
                name: spec.name,
                kind: spec.kind,
                mdc: MdcJson::from(spec.mdc),
                mdc_aliases: spec
                    .mdc_aliases
                    .iter()
                    .copied()
                    .map(MdcJson::from)
                    .collect(),
                loinc: spec
                    .loinc
                    .iter()
                    .map(|l| LoincJson {
                        system: LOINC_SYSTEM,
                        code: l.code,
                        display: l.display,
                    })
                    .collect(),
                canonical_unit: spec.canonical_unit().ucum,
                units: spec
                    .units
                    .iter()
                    .map(|u| UnitJson {
                        ucum: u.unit.ucum,
                        display: u.unit.display,
                        mdc_refid: u.unit.mdc.map(|m| m.refid),
                        mdc_code: u.unit.mdc.map(|m| m.code()),
                        scale: u.conversion.scale,
                        offset: u.conversion.offset,
                    })
                    .collect(),
                limits: LimitsJson {
                    min: spec.limits.min,
                    max: spec.limits.max,
                    max_change_per_minute: spec.limits.max_change_per_minute,
                },
                sources: spec.sources,
            }
        })
        .collect()
}

fn devices_table() -> String {
    let mut out = String::new();
    for class in DeviceClass::ALL {
        let spec = class.spec();
        out.push_str(&format!("{} ({})\n", spec.name, spec.key));
        let reports: Vec<&str> = spec.reports.iter().map(|q| q.spec().key).collect();
        out.push_str(&format!("  reports:  {}\n", reports.join(", ")));
        if spec.commands.is_empty() {
            out.push_str("  commands: none\n");
        }
        let profile = class.safety_profile();
        for command in spec.commands {
            let rule = profile.and_then(|p| p.rule(*command));
            let limits = rule.and_then(|r| r.parameter).map_or(String::new(), |p| {
                format!(
                    " {}..{} {}, {}",
                    number(p.min),
                    number(p.max),
                    p.quantity.spec().canonical_unit().ucum,
                    p.per_hour
                )
            });
            let approval = rule.map_or(String::new(), |r| {
                format!("; second person: {}", r.approval)
            });
            out.push_str(&format!("  command:  {command}{limits}{approval}\n"));
        }
        out.push('\n');
    }
    out.push_str(
        "Limits are in the parameter's canonical unit and are Vigil's defaults; a hospital may \
         only narrow them.",
    );
    out
}

#[derive(Serialize)]
struct DeviceJson {
    key: &'static str,
    name: &'static str,
    reports: Vec<&'static str>,
    commands: Vec<CommandJson>,
}

#[derive(Serialize)]
struct CommandJson {
    key: &'static str,
    parameter: Option<ParameterJson>,
    second_person: ApprovalJson,
}

#[derive(Serialize)]
struct ParameterJson {
    quantity: &'static str,
    unit: &'static str,
    min: f64,
    max: f64,
    max_change_per_hour: Option<f64>,
    max_total_per_hour: Option<f64>,
}

#[derive(Serialize)]
#[serde(rename_all = "snake_case", tag = "when")]
enum ApprovalJson {
    Never,
    Always,
    Above { value: f64, change: f64 },
}

fn devices_json() -> Vec<DeviceJson> {
    DeviceClass::ALL
        .iter()
        .map(|class| {
            let spec = class.spec();
            let profile = class.safety_profile();
            DeviceJson {
                key: spec.key,
                name: spec.name,
                reports: spec.reports.iter().map(|q| q.spec().key).collect(),
                commands: spec
                    .commands
                    .iter()
                    .map(|command| {
                        let rule = profile.and_then(|p| p.rule(*command));
                        CommandJson {
                            key: command.key(),
                            parameter: rule.and_then(|r| r.parameter).map(|p| ParameterJson {
                                quantity: p.quantity.spec().key,
                                unit: p.quantity.spec().canonical_unit().ucum,
                                min: p.min,
                                max: p.max,
                                max_change_per_hour: match p.per_hour {
                                    HourlyLimit::MaxChange(v) => Some(v),
                                    HourlyLimit::MaxTotal(_) => None,
                                },
                                max_total_per_hour: match p.per_hour {
                                    HourlyLimit::MaxTotal(v) => Some(v),
                                    HourlyLimit::MaxChange(_) => None,
                                },
                            }),
                            second_person: match rule.map(|r| r.approval) {
                                Some(Approval::Always) => ApprovalJson::Always,
                                Some(Approval::Above { value, change }) => {
                                    ApprovalJson::Above { value, change }
                                }
                                Some(Approval::NotRequired) | None => ApprovalJson::Never,
                            },
                        }
                    })
                    .collect(),
            }
        })
        .collect()
}
