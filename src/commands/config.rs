//! `vigil config check`: validate the configuration and show the values in force.

use std::path::Path;
use std::process::ExitCode;

use crate::cli::LogArgs;
use crate::logging;

pub(crate) fn check(log: &LogArgs, data_dir: &Path) -> anyhow::Result<ExitCode> {
    let loaded = vigil_config::load(data_dir, std::env::vars())?;
    logging::init(log, loaded.config.log.level, loaded.config.log.format)?;
    for warning in &loaded.warnings {
        tracing::warn!("{warning}");
    }
    println!(
        "{}: configuration is valid",
        data_dir.join(vigil_config::CONFIG_FILE).display()
    );
    for effective in &loaded.effective {
        println!(
            "  {} = {}    # from {}",
            effective.key, effective.value, effective.source
        );
    }
    Ok(ExitCode::SUCCESS)
}
