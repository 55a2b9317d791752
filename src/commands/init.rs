//! `vigil init`: create a data directory: configuration, hospital CA, hub certificate, database.

use std::fs::{self, DirBuilder, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, bail};
use vigil_config::{CONFIG_FILE, DEFAULT_CONFIG, Source};
use vigil_hub::Hub;

use crate::cli::LogArgs;
use crate::logging;

/// Only the hub's own user may enter the data directory: it holds keys and patient data.
const DATA_DIR_MODE: u32 = 0o700;
/// The configuration holds no secret, but nothing in it is for other users either.
const CONFIG_MODE: u32 = 0o600;

pub(crate) fn run(log: &LogArgs, data_dir: &Path) -> anyhow::Result<ExitCode> {
    let config = prepare(data_dir)?;
    logging::init(log, config.log.level, config.log.format)?;
    create(data_dir, &config)?;
    let config_path = data_dir.join(CONFIG_FILE);
    tracing::info!(data_dir = %data_dir.display(), "data directory initialised");
    let pki = vigil_pki::PkiDir::new(data_dir);
    println!("Initialised {}", data_dir.display());
    println!("  configuration:  {}", config_path.display());
    println!(
        "  hospital CA:    {} (key 0600 beside it)",
        pki.ca_cert_path().display()
    );
    println!("  hub TLS:        {}", pki.hub_cert_path().display());
    println!(
        "Next: vigil serve --data-dir {0}    and    vigil device add --data-dir {0} --id ID --class CLASS",
        data_dir.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// The configuration a new data directory will have (the default, with the environment
/// applied), after checking that `data_dir` is not initialised already.
pub(crate) fn prepare(data_dir: &Path) -> anyhow::Result<vigil_config::Config> {
    let config_path = data_dir.join(CONFIG_FILE);
    if config_path.exists() {
        bail!(
            "{} is already initialised ({} exists); nothing was changed",
            data_dir.display(),
            config_path.display()
        );
    }
    // Validate the default configuration with the environment applied before creating anything,
    // so a bad VIGIL_* variable leaves no half-made directory behind.
    let config = vigil_config::load_from_str(
        DEFAULT_CONFIG,
        Source::File(config_path.clone()),
        std::env::vars(),
    )?
    .config;
    Ok(config)
}

/// Creates the data directory: its configuration file, CA, hub certificate and database.
pub(crate) fn create(data_dir: &Path, config: &vigil_config::Config) -> anyhow::Result<()> {
    let config_path = data_dir.join(CONFIG_FILE);
    DirBuilder::new()
        .recursive(true)
        .mode(DATA_DIR_MODE)
        .create(data_dir)
        .with_context(|| format!("cannot create {}", data_dir.display()))?;
    // An existing empty directory keeps the mode it had; tighten it.
    fs::set_permissions(data_dir, fs::Permissions::from_mode(DATA_DIR_MODE))
        .with_context(|| format!("cannot restrict permissions of {}", data_dir.display()))?;

    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(CONFIG_MODE)
        .open(&config_path)
        .with_context(|| format!("cannot create {}", config_path.display()))?;
    file.write_all(DEFAULT_CONFIG.as_bytes())
        .and_then(|()| file.sync_all())
        .with_context(|| format!("cannot write {}", config_path.display()))?;

    Hub::initialise(data_dir, config)
        .with_context(|| format!("cannot initialise {}", data_dir.display()))?;
    Ok(())
}
