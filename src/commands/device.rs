//! `vigil device …`: register, enrol offline, revoke and list devices.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;
use vigil_model::{Action, DeviceClass, DeviceId, Outcome, PatientId, ResourceKind, Timestamp};
use vigil_pki::RevocationReason;
use vigil_store::Store;

use crate::cli::{DeviceCommand, LogArgs};

use super::{actor, checkpoint, open_hub as open};

fn device_id(text: &str) -> anyhow::Result<DeviceId> {
    DeviceId::new(text).context("--id")
}

pub(crate) fn run(log: &LogArgs, command: DeviceCommand) -> anyhow::Result<ExitCode> {
    match command {
        DeviceCommand::Add { data, id, class } => {
            super::fhir_safe_id("--id", &id)?;
            let id = device_id(&id)?;
            let class: DeviceClass = class.parse().context("--class")?;
            let hub = open(log, &data.data_dir)?;
            let registration = hub.registry().register(actor(), id, class)?;
            checkpoint(&hub);
            println!("Registered {} ({class}).", registration.device);
            println!(
                "One-time enrolment token (valid until {}):",
                registration.expires_at
            );
            println!("{}", registration.token);
            println!("It is shown only now; give it to whoever sets the device up.");
        }
        DeviceCommand::Token { data, id } => {
            let id = device_id(&id)?;
            let hub = open(log, &data.data_dir)?;
            let registration = hub.registry().reissue_token(actor(), id)?;
            checkpoint(&hub);
            println!(
                "New one-time enrolment token for {} (valid until {}):",
                registration.device, registration.expires_at
            );
            println!("{}", registration.token);
        }
        DeviceCommand::Issue { data, id, csr, out } => {
            let id = device_id(&id)?;
            let request = read_bounded(&csr)?;
            let hub = open(log, &data.data_dir)?;
            let chain = hub.registry().issue_offline(actor(), &id, &request);
            checkpoint(&hub);
            let chain = chain?;
            std::fs::write(&out, chain)
                .with_context(|| format!("cannot write {}", out.display()))?;
            println!("Certificate chain for {id} written to {}", out.display());
        }
        DeviceCommand::Revoke { data, id, reason } => {
            let id = device_id(&id)?;
            let reason: RevocationReason = reason.parse().context("--reason")?;
            let hub = open(log, &data.data_dir)?;
            let serials = hub.registry().revoke(actor(), &id, reason);
            checkpoint(&hub);
            let serials = serials?;
            println!(
                "Revoked {id} ({reason}); {} certificate(s) added to the revocation list.",
                serials.len()
            );
            println!("A running hub refuses them from its next handshake.");
        }
        DeviceCommand::Assign { data, id, patient } => {
            let id = device_id(&id)?;
            let patient = PatientId::new(patient).context("--patient")?;
            let hub = open(log, &data.data_dir)?;
            let result = hub.store().assign_device(&id, &patient, Timestamp::now());
            let outcome = if result.is_ok() {
                Outcome::Success
            } else {
                Outcome::Failed
            };
            hub.registry().auditor().record(&vigil_hub::audit::entry(
                actor(),
                Action::Update,
                ResourceKind::Device,
                id.as_str(),
                outcome,
                Some(&format!("assigned to patient {patient}")),
            ))?;
            checkpoint(&hub);
            result?;
            println!("{id} now serves patient {patient}.");
        }
        DeviceCommand::List(data) => {
            let hub = open(log, &data.data_dir)?;
            list(hub.registry().store().as_ref())?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Reads a CSR file, refusing anything larger than a CSR can be.
fn read_bounded(path: &Path) -> anyhow::Result<Vec<u8>> {
    use std::io::Read;
    let file =
        std::fs::File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut bytes = Vec::new();
    let limit = vigil_pki::csr::MAX_CSR_BYTES as u64 + 1;
    file.take(limit)
        .read_to_end(&mut bytes)
        .with_context(|| format!("cannot read {}", path.display()))?;
    Ok(bytes)
}

fn list(store: &dyn Store) -> anyhow::Result<()> {
    let devices = store.devices()?;
    if devices.is_empty() {
        println!("No devices registered.");
        return Ok(());
    }
    println!(
        "{:<24} {:<20} {:<11} {:<5} CURRENT CERTIFICATE",
        "DEVICE", "CLASS", "STATUS", "CERTS"
    );
    for device in devices {
        let certificates = store.certificates_of(&device.id)?;
        let current = certificates
            .iter()
            .rev()
            .find(|c| c.revoked_at.is_none())
            .map_or_else(
                || "-".to_owned(),
                |c| {
                    format!(
                        "serial {} until {} ({} {})",
                        c.serial, c.not_after, c.key_kind, c.key_bits
                    )
                },
            );
        println!(
            "{:<24} {:<20} {:<11} {:<5} {current}",
            device.id.as_str(),
            device.class.to_string(),
            device.status.as_str(),
            certificates.len()
        );
    }
    Ok(())
}
