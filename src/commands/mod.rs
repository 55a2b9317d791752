//! One module per subcommand; each takes its parsed arguments and does its job.

use std::process::ExitCode;

use vigil_config::{LogFormat, LogLevel};

use crate::cli::{Cli, Command, ConfigCommand};
use crate::logging;

mod audit;
mod bench;
mod codes;
mod config;
mod demo;
mod device;
mod eval;
mod init;
mod keys;
mod patient;
mod people;
mod serve;
mod sim;
mod ward;

/// Runs the parsed command line.
pub(crate) fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Init(args) => init::run(&cli.log, &args.data_dir),
        Command::Config(ConfigCommand::Check(args)) => config::check(&cli.log, &args.data_dir),
        Command::Serve(args) => serve::run(&cli.log, &args.data_dir),
        Command::Device(command) => device::run(&cli.log, command),
        Command::Patient(command) => patient::run(&cli.log, command),
        Command::User(command) => people::user(&cli.log, command),
        Command::Careteam(command) => people::careteam(&cli.log, command),
        Command::Rules(crate::cli::RulesCommand::Check { file }) => {
            logging::init(&cli.log, LogLevel::Warn, LogFormat::Human)?;
            match vigil_hub::rules::read_rules(&file) {
                Ok(rules) => {
                    let enabled = rules.rules().iter().filter(|r| r.enabled()).count();
                    println!(
                        "{}: {} rules ({enabled} enabled) are valid.",
                        file.display(),
                        rules.len()
                    );
                    for rule in rules.rules() {
                        println!(
                            "  {} ({}){}",
                            rule.id(),
                            rule.severity(),
                            if rule.enabled() { "" } else { ", disabled" }
                        );
                    }
                    Ok(ExitCode::SUCCESS)
                }
                Err(error) => {
                    eprintln!("{error}");
                    Ok(ExitCode::FAILURE)
                }
            }
        }
        Command::Keys(command) => keys::run(&cli.log, command),
        Command::Audit(command) => audit::run(&cli.log, command),
        Command::Bench(command) => bench::run(&cli.log, command),
        Command::Demo(args) => demo::run(&cli.log, args),
        Command::Sim(args) => sim::run(&cli.log, args),
        Command::Eval(args) => eval::run(&cli.log, args),
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

/// Opens the hub of `data_dir` for a command-line operation.
pub(crate) fn open_hub(
    log: &crate::cli::LogArgs,
    data_dir: &std::path::Path,
) -> anyhow::Result<vigil_hub::Hub> {
    let config = load_config(log, data_dir)?;
    Ok(vigil_hub::Hub::open(data_dir, config)?)
}

/// Who acts at the command line: the operating-system user, as `local.<name>`.
pub(crate) fn actor() -> vigil_model::Actor {
    let user = std::env::var("USER").unwrap_or_else(|_| "root".to_owned());
    let clean: String = user
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        .take(50)
        .collect();
    vigil_model::UserId::new(format!("local.{clean}"))
        .map_or(vigil_model::Actor::System, vigil_model::Actor::User)
}

/// Signs a checkpoint after a change, so that the change is covered by a signature at once.
pub(crate) fn checkpoint(hub: &vigil_hub::Hub) {
    if let Err(error) = hub.checkpoint() {
        tracing::warn!(%error, "the change is recorded, but no checkpoint could be signed");
    }
}

/// New patients and devices are served as FHIR resources, whose ids may not hold `_` (FHIR R4
/// `id`: `[A-Za-z0-9\-\.]{1,64}`); Vigil ids may, so new ones are held to FHIR's rule here.
pub(crate) fn fhir_safe_id(flag: &str, id: &str) -> anyhow::Result<()> {
    if id.contains('_') {
        anyhow::bail!(
            "{flag}: use letters, digits, '-' and '.' only ('_' cannot appear in a FHIR resource id)"
        );
    }
    Ok(())
}
