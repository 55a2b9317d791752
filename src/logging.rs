//! Logging with `tracing`: readable lines by default, JSON lines on request, always to stderr so
//! that a command's output on stdout stays clean for pipes.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;
use vigil_config::{LogFormat, LogLevel};

use crate::cli::{LogArgs, LogFormatArg};

/// Starts logging. Command-line flags win over the configuration.
pub(crate) fn init(args: &LogArgs, level: LogLevel, format: LogFormat) -> anyhow::Result<()> {
    let level = args.log_level.as_deref().unwrap_or(level.as_str());
    let filter = EnvFilter::try_new(level)
        .map_err(|e| anyhow::anyhow!("--log-level {level:?} is not a valid filter: {e}"))?;
    let format = match args.log_format {
        Some(LogFormatArg::Human) => LogFormat::Human,
        Some(LogFormatArg::Json) => LogFormat::Json,
        None => format,
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        // Colours only for a person at a terminal, not in a journal or a log file.
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    let result = match format {
        LogFormat::Human => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
    result.map_err(|e| anyhow::anyhow!("cannot start logging: {e}"))
}
