//! Detection wired into the hub: listeners and ingest describe what happens as
//! [`vigil_detect::Event`]s; one thread runs the detection [`Engine`] over them in order and
//! stores the alerts it raises.
//!
//! Reporting never waits: events go through a bounded queue, and when the queue is full (the
//! engine fell behind) the event is counted and dropped rather than slowing ingest. Detection
//! is a background analyser by design: an alert arrives a few milliseconds after the event,
//! and ingest latency does not depend on how many detectors run.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, OnceLock};

use vigil_detect::rules::{RulesDetector, RulesHandle};
use vigil_detect::{Engine, Event};
use vigil_model::Alert;
use vigil_siem::DispatcherHandle;
use vigil_store::Store;

/// Events waiting for the engine, at most.
const QUEUE: usize = 65_536;

/// Alerts a live subscriber may fall behind before it is told it missed some.
pub const LIVE_BUFFER: usize = 1024;

/// What goes to the detection thread: an event to run the detectors over, or an alert the hub
/// decided on itself (a break-glass access, a locked account), which takes the same way out.
enum Item {
    Event(Event),
    Alert(Alert),
}

/// Where the hub reports events for detection. Cheap to clone.
#[derive(Clone)]
pub struct Detection {
    queue: SyncSender<Item>,
    export: Arc<OnceLock<DispatcherHandle>>,
    live: tokio::sync::broadcast::Sender<(u64, Alert)>,
    dropped: Arc<AtomicU64>,
}

impl std::fmt::Debug for Detection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Detection")
            .field("dropped", &self.dropped.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl Detection {
    /// Starts the engine thread with every built-in detector and the security officer's
    /// rules (`rules`, which the hub may swap while running), storing alerts in `store`. The
    /// thread ends when every `Detection` handle is dropped.
    pub fn start(store: Arc<dyn Store>, rules: RulesHandle) -> Detection {
        let (queue, events) = sync_channel::<Item>(QUEUE);
        let export = Arc::new(OnceLock::new());
        let thread_export = Arc::clone(&export);
        let (live, _) = tokio::sync::broadcast::channel(LIVE_BUFFER);
        let thread_live = live.clone();
        let started = std::thread::Builder::new()
            .name("vigil-detect".into())
            .spawn(move || {
                let mut detectors = vigil_detect::detectors::all();
                detectors.push(Box::new(RulesDetector::new(rules)));
                run(
                    &events,
                    &*store,
                    Engine::new(detectors),
                    &thread_export,
                    &thread_live,
                );
            });
        if let Err(error) = started {
            // Without its thread, reports fail to send and are counted as dropped.
            tracing::error!(%error, "detection thread did not start");
        }
        Detection {
            queue,
            export,
            live,
            dropped: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Reports `event` (never blocks).
    pub fn report(&self, event: Event) {
        self.send(Item::Event(event));
    }

    /// Sends every alert stored from now on to the SIEM sinks too. Once only: a second call
    /// returns the handle back.
    pub fn export_to(&self, handle: DispatcherHandle) -> Result<(), DispatcherHandle> {
        self.export.set(handle)
    }

    /// A live feed of every alert stored from now on, with its id. A subscriber that falls more
    /// than [`LIVE_BUFFER`] alerts behind is told how many it missed.
    pub fn subscribe(&self) -> tokio::sync::broadcast::Receiver<(u64, Alert)> {
        self.live.subscribe()
    }

    /// Raises an alert the hub decided on itself (never blocks).
    pub fn raise(&self, alert: Alert) {
        self.send(Item::Alert(alert));
    }

    fn send(&self, item: Item) {
        match self.queue.try_send(item) {
            Ok(()) => {}
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                let dropped = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
                if dropped.is_power_of_two() {
                    tracing::warn!(dropped, "detection is behind; events dropped");
                }
            }
        }
    }

    /// Events dropped because the engine was behind.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

fn run(
    items: &Receiver<Item>,
    store: &dyn Store,
    mut engine: Engine,
    export: &OnceLock<DispatcherHandle>,
    live: &tokio::sync::broadcast::Sender<(u64, Alert)>,
) {
    for item in items {
        let alerts = match item {
            Item::Event(event) => engine.observe(&event),
            Item::Alert(alert) => vec![alert],
        };
        for alert in alerts {
            tracing::warn!(
                kind = ?alert.kind,
                device = ?alert.device.as_ref().map(|d| d.as_str()),
                "alert raised"
            );
            match store.add_alert(&alert) {
                // Exported with its store id, so a SIEM and the dashboard name it alike.
                Ok(id) => {
                    if let Some(export) = export.get() {
                        export.send(id, &alert);
                    }
                    // No subscriber is not an error.
                    let _ = live.send((id, alert));
                }
                Err(error) => tracing::error!(%error, "alert could not be stored"),
            }
        }
    }
}
