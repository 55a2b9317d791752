//! One module per subcommand; each takes its parsed arguments and does its job.

use std::process::ExitCode;

use vigil_config::{LogFormat, LogLevel};

use crate::cli::{Cli, Command, ConfigCommand};
use crate::logging;

mod codes;
mod config;
mod device;
mod init;
mod serve;

/// Runs the parsed command line.
pub(crate) fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Init(args) => init::run(&cli.log, &args.data_dir),
        Command::Config(ConfigCommand::Check(args)) => config::check(&cli.log, &args.data_dir),
        Command::Serve(args) => serve::run(&cli.log, &args.data_dir),
        Command::Device(command) => device::run(&cli.log, command),
        Command::Codes(args) => {
            logging::init(&cli.log, LogLevel::Warn, LogFormat::Human)?;
            codes::run(&args)
        }
    }
}

/// Loads the configuration of `data_dir` and starts logging from it (flags win).
pub(crate) fn load_config(
    log: &crate::cli::LogArgs,
    data_dir: &std::path::Path,
) -> anyhow::Result<vigil_config::Config> {
    let loaded = vigil_config::load(data_dir, std::env::vars())?;
    logging::init(log, loaded.config.log.level, loaded.config.log.format)?;
    for warning in &loaded.warnings {
        tracing::warn!("{warning}");
    }
    Ok(loaded.config)
}
