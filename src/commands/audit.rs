//! `vigil audit verify` and `vigil audit checkpoint`.

use std::process::ExitCode;

use vigil_hub::checkpoints::{AUDIT_PUB_FILE, read_verifier};

use super::open_hub;
use crate::cli::{AuditCommand, LogArgs};
use crate::logging;

pub(crate) fn run(log: &LogArgs, command: AuditCommand) -> anyhow::Result<ExitCode> {
    match command {
        AuditCommand::Verify { data, key } => {
            // Verification needs no configuration, keyring or hub: only the database and the
            // verifier key, so an auditor can run it on a copy.
            logging::init(
                log,
                vigil_config::LogLevel::Warn,
                vigil_config::LogFormat::Human,
            )?;
            let key_path = key.unwrap_or_else(|| data.data_dir.join(AUDIT_PUB_FILE));
            let verifier = read_verifier(&key_path)?;
            let report = vigil_store::sqlite::verify::verify(&data.data_dir, &verifier)?;
            println!(
                "audit log: {} leaves, {} checkpoints (latest covers {}), {} observation rows",
                report.leaves,
                report.checkpoints,
                report
                    .latest_checkpoint
                    .map_or_else(|| "nothing".to_owned(), |size| format!("{size} leaves")),
                report.rows
            );
            if report.findings.is_empty() {
                let unsigned = report.leaves - report.latest_checkpoint.unwrap_or(0);
                if unsigned > 0 {
                    println!("{unsigned} newest leaves are not yet covered by a checkpoint");
                }
                println!("OK: no alteration found");
                Ok(ExitCode::SUCCESS)
            } else {
                for finding in &report.findings {
                    println!("FINDING: {finding}");
                }
                println!("FAILED: {} findings", report.findings.len());
                Ok(ExitCode::FAILURE)
            }
        }
        AuditCommand::Checkpoint(data) => {
            let hub = open_hub(log, &data.data_dir)?;
            match hub.checkpoint()? {
                Some(size) => println!("Checkpoint signed at tree size {size}."),
                None => println!("The latest checkpoint already covers the whole log."),
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}
