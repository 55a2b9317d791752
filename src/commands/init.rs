//! `vigil init`: create a data directory.

use std::fs::{self, DirBuilder, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, bail};
use vigil_config::{CONFIG_FILE, DEFAULT_CONFIG};

/// Only the hub's own user may enter the data directory: it will hold keys and patient data.
const DATA_DIR_MODE: u32 = 0o700;
/// The configuration holds no secret, but nothing in it is for other users either.
const CONFIG_MODE: u32 = 0o600;

pub(crate) fn run(data_dir: &Path) -> anyhow::Result<ExitCode> {
    let config_path = data_dir.join(CONFIG_FILE);
    if config_path.exists() {
        bail!(
            "{} is already initialised ({} exists); nothing was changed",
            data_dir.display(),
            config_path.display()
        );
    }
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

    tracing::info!(data_dir = %data_dir.display(), "data directory initialised");
    println!("Initialised {}", data_dir.display());
    println!("  configuration: {}", config_path.display());
    println!(
        "Check it with: vigil config check --data-dir {}",
        data_dir.display()
    );
    Ok(ExitCode::SUCCESS)
}
