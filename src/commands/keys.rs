//! `vigil keys rotate`: a new key-encryption key, every data key re-wrapped under it.

use std::process::ExitCode;

use vigil_model::{Action, Outcome, ResourceKind};
use vigil_store::{ClinicalStore, SqliteStore};

use super::{actor, checkpoint, open_hub};
use crate::cli::{KeysCommand, LogArgs};

pub(crate) fn run(log: &LogArgs, command: KeysCommand) -> anyhow::Result<ExitCode> {
    let KeysCommand::Rotate(data) = command;
    let hub = open_hub(log, &data.data_dir)?;
    let mut keyring = vigil_hub::load_keyring(&data.data_dir)?;
    let new_id = keyring.rotate(&data.data_dir)?;
    // A store over the rotated keyring re-wraps; a running hub picks the new key up from the
    // file when it meets a data key wrapped under it.
    let store = SqliteStore::open(&data.data_dir, std::sync::Arc::new(keyring))?;
    let result = store.rewrap_data_keys();
    let (outcome, reason) = match &result {
        Ok(count) => (
            Outcome::Success,
            format!("key-encryption key {new_id} active; {count} data keys re-wrapped"),
        ),
        Err(error) => (Outcome::Failed, error.to_string()),
    };
    hub.registry().auditor().record(&vigil_hub::audit::entry(
        actor(),
        Action::RotateKeys,
        ResourceKind::Key,
        &new_id.to_string(),
        outcome,
        Some(&reason),
    ))?;
    checkpoint(&hub);
    let count = result?;
    println!(
        "Key-encryption key {new_id} is active; {count} patient data keys re-wrapped under it."
    );
    Ok(ExitCode::SUCCESS)
}
