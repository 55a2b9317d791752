//! `vigil patient …`: add and erase patients.

use std::process::ExitCode;

use anyhow::Context;
use vigil_model::phi::Phi;
use vigil_model::{Action, Outcome, PatientId, ResourceKind, Timestamp};
use vigil_store::Demographics;

use super::{actor, checkpoint, open_hub};
use crate::cli::{LogArgs, PatientCommand};

pub(crate) fn run(log: &LogArgs, command: PatientCommand) -> anyhow::Result<ExitCode> {
    match command {
        PatientCommand::Add {
            data,
            id,
            name,
            mrn,
            birth_date,
        } => {
            super::fhir_safe_id("--id", &id)?;
            let id = PatientId::new(id).context("--id")?;
            let format = time::macros::format_description!("[year]-[month]-[day]");
            // The value is PHI: the error says what is wrong, not what was typed.
            let birth_date = time::Date::parse(&birth_date, &format)
                .map_err(|_| anyhow::anyhow!("--birth-date: expected YYYY-MM-DD"))?;
            let demographics = Demographics {
                name: Phi::new(name),
                mrn: Phi::new(mrn),
                birth_date: Phi::new(birth_date),
            };
            let hub = open_hub(log, &data.data_dir)?;
            let result = hub
                .store()
                .add_patient(&id, &demographics, Timestamp::now());
            audit(&hub, Action::Create, &id, &result)?;
            result?;
            println!("Added patient {id}; name, MRN and birth date are sealed.");
        }
        PatientCommand::Erase { data, id } => {
            let id = PatientId::new(id).context("--id")?;
            let hub = open_hub(log, &data.data_dir)?;
            let result = hub.store().erase_patient(&id, Timestamp::now());
            audit(&hub, Action::Erase, &id, &result)?;
            result?;
            println!(
                "Erased patient {id}: their data key is destroyed; their data can no longer be read."
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn audit<T>(
    hub: &vigil_hub::Hub,
    action: Action,
    id: &PatientId,
    result: &Result<T, vigil_store::StoreError>,
) -> anyhow::Result<()> {
    let (outcome, reason) = match result {
        Ok(_) => (Outcome::Success, None),
        Err(error) => (Outcome::Failed, Some(error.to_string())),
    };
    hub.registry().auditor().record(&vigil_hub::audit::entry(
        actor(),
        action,
        ResourceKind::Patient,
        id.as_str(),
        outcome,
        reason.as_deref(),
    ))?;
    checkpoint(hub);
    Ok(())
}
