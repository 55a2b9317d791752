//! `vigil`: the one command-line program of the Vigil IoMT security platform.

#![forbid(unsafe_code)]

use std::process::ExitCode;

use clap::Parser;

mod cli;
mod commands;
mod logging;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    match commands::run(cli) {
        Ok(code) => code,
        Err(error) => {
            // `{:#}` prints the whole cause chain on one line; errors never carry PHI.
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
