//! Provisioning a simulated ward on a hub, as a clinical engineer would with `vigil patient add`
//! and `vigil device add`: one patient record per virtual patient, one registered device (and
//! its one-time enrolment token) per virtual device, each assigned to its patient. Audited.

use anyhow::Context;
use vigil_hub::Hub;
use vigil_model::phi::Phi;
use vigil_model::{Action, DeviceClass, DeviceId, Outcome, PatientId, ResourceKind, Timestamp};
use vigil_sim::Ward;
use vigil_sim::fleet::Ticket;
use vigil_store::Demographics;

use super::actor;

/// A short, readable name for a device class in device ids.
fn short(class: DeviceClass) -> &'static str {
    match class {
        DeviceClass::BedsideMonitor => "monitor",
        DeviceClass::PulseOximeter => "oximeter",
        DeviceClass::ContinuousGlucoseMonitor => "cgm",
        DeviceClass::InsulinPump => "insulin-pump",
        DeviceClass::InfusionPump => "infusion-pump",
        DeviceClass::PacemakerMonitor => "pacemaker",
        DeviceClass::BloodPressureCuff => "bp-cuff",
        DeviceClass::EcgPatch => "ecg-patch",
        DeviceClass::Thermometer => "thermometer",
        _ => "device",
    }
}

/// Registers `ward`'s patients and devices under ids starting with `prefix`; one ticket per
/// device, in the ward's device order.
pub(crate) fn provision(hub: &Hub, ward: &Ward, prefix: &str) -> anyhow::Result<Vec<Ticket>> {
    let store = hub.store();
    let now = Timestamp::now();
    let mut patients = Vec::with_capacity(ward.patients().len());
    for n in 0..ward.patients().len() {
        let id = PatientId::new(format!("{prefix}patient-{n:03}"))?;
        // Synthetic, and saying so: nobody should mistake a demo record for a person.
        let demographics = Demographics {
            name: Phi::new(format!("Simulated Patient {n:03}")),
            mrn: Phi::new(format!("SIM-{n:06}")),
            birth_date: Phi::new(
                time::Date::from_calendar_date(
                    1940 + i32::try_from(n * 7 % 60).unwrap_or(0),
                    time::Month::March,
                    1,
                )
                .context("birth date")?,
            ),
        };
        store
            .add_patient(&id, &demographics, now)
            .with_context(|| format!("cannot add patient {id}"))?;
        hub.registry().auditor().record(&vigil_hub::audit::entry(
            actor(),
            Action::Create,
            ResourceKind::Patient,
            id.as_str(),
            Outcome::Success,
            Some("simulated patient"),
        ))?;
        patients.push(id);
    }
    let mut tickets = Vec::with_capacity(ward.devices().len());
    for (n, device) in ward.devices().iter().enumerate() {
        let id = DeviceId::new(format!("{prefix}{}-{n:03}", short(device.class())))?;
        let patient = patients
            .get(device.patient())
            .context("a device of a patient the ward does not have")?
            .clone();
        let registration = hub
            .registry()
            .register(actor(), id.clone(), device.class())
            .with_context(|| format!("cannot register device {id}"))?;
        store
            .assign_device(&id, &patient, now)
            .with_context(|| format!("cannot assign device {id}"))?;
        tickets.push(Ticket {
            device: id,
            token: registration.token,
            patient,
        });
    }
    hub.checkpoint()?;
    Ok(tickets)
}

/// A prefix starting with `base` that no simulated ward of `hub` uses yet: `base` itself the
/// first time, `baserunN-` after.
pub(crate) fn free_prefix(hub: &Hub, base: &str) -> anyhow::Result<String> {
    let taken = |prefix: &str| -> anyhow::Result<bool> {
        let first = PatientId::new(format!("{base}{prefix}patient-000"))?;
        Ok(hub.store().patient(&first)?.is_some())
    };
    if !taken("")? {
        return Ok(base.to_owned());
    }
    for run in 2..10_000 {
        let prefix = format!("run{run}-");
        if !taken(&prefix)? {
            return Ok(format!("{base}{prefix}"));
        }
    }
    anyhow::bail!("this data directory holds too many simulated wards already")
}
