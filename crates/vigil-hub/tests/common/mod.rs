//! A hub on free loopback ports in a fresh data directory, for the hub's integration tests.

#![allow(dead_code, clippy::unwrap_used)] // each test file uses a part; a failure is a failed test

use vigil_hub::{Hub, Registry, RunningHub};

/// Initialises a data directory and starts a hub with both listeners on port 0 and the extra
/// `VIGIL_*` settings given.
pub(crate) async fn start_hub(
    settings: &[(&str, &str)],
) -> (tempfile::TempDir, Registry, RunningHub) {
    let dir = tempfile::tempdir().unwrap();
    let mut env = vec![
        (
            "VIGIL_HUB_HTTPS_LISTEN".to_owned(),
            "127.0.0.1:0".to_owned(),
        ),
        ("VIGIL_HUB_MQTT_LISTEN".to_owned(), "127.0.0.1:0".to_owned()),
    ];
    env.extend(
        settings
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
    );
    let config = vigil_config::load_from_str(
        vigil_config::DEFAULT_CONFIG,
        vigil_config::Source::Default,
        env,
    )
    .unwrap()
    .config;
    Hub::initialise(dir.path(), &config).unwrap();
    let hub = Hub::open(dir.path(), config).unwrap();
    let registry = hub.registry().clone();
    let running = hub.start().await.unwrap();
    (dir, registry, running)
}
