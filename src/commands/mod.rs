//! One module per subcommand; each takes its parsed arguments and does its job.

use std::process::ExitCode;

use vigil_config::{LogFormat, LogLevel};

use crate::cli::{Cli, Command, ConfigCommand};
use crate::logging;

mod codes;
mod config;
mod init;

/// Runs the parsed command line.
pub(crate) fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Init(args) => {
            logging::init(&cli.log, LogLevel::Info, LogFormat::Human)?;
            init::run(&args.data_dir)
        }
        Command::Config(ConfigCommand::Check(args)) => config::check(&cli.log, &args.data_dir),
        Command::Codes(args) => {
            logging::init(&cli.log, LogLevel::Warn, LogFormat::Human)?;
            codes::run(&args)
        }
    }
}
