//! `vigil serve`: run the hub until Ctrl-C or SIGTERM.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;
use vigil_hub::Hub;

use crate::cli::LogArgs;

pub(crate) fn run(log: &LogArgs, data_dir: &Path) -> anyhow::Result<ExitCode> {
    let config = super::load_config(log, data_dir)?;
    let hub = Hub::open(data_dir, config)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async {
        let running = hub.start().await?;
        // Scripts and tests read this line to find the port when it was configured as 0.
        println!(
            "vigil hub listening: https={} mqtt={}",
            running.https, running.mqtt
        );
        shutdown_signal().await;
        tracing::info!("shutting down");
        running.stop().await;
        anyhow::Ok(())
    })?;
    Ok(ExitCode::SUCCESS)
}

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut terminate = match signal(SignalKind::terminate()) {
        Ok(terminate) => terminate,
        Err(error) => {
            tracing::warn!(%error, "cannot listen for SIGTERM; stop with Ctrl-C");
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate.recv() => {}
    }
}
