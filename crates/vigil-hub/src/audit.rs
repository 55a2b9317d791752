//! Writing audit entries from anywhere in the hub.
//!
//! Request handlers write through [`Auditor::record`] on a blocking thread, as part of the work
//! they audit. The TLS handshake (inside rustls, where blocking is not allowed) uses
//! [`Auditor::record_later`], which hands the entry to a writer thread through a bounded queue:
//! a flood of refused handshakes cannot grow memory without bound; what the queue cannot take is
//! counted and logged instead.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{SyncSender, TrySendError, sync_channel};

use vigil_model::{Action, Actor, AuditEntry, Outcome, Reason, Resource, ResourceKind, Timestamp};
use vigil_store::{Store, StoreError};

/// Entries waiting for the writer thread, at most.
const QUEUE: usize = 4096;

/// Writes audit entries to the store.
#[derive(Clone)]
pub struct Auditor {
    store: Arc<dyn Store>,
    queue: SyncSender<AuditEntry>,
    dropped: Arc<AtomicU64>,
}

impl std::fmt::Debug for Auditor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Auditor").finish_non_exhaustive()
    }
}

impl Auditor {
    /// An auditor writing to `store`, with its writer thread.
    pub fn new(store: Arc<dyn Store>) -> Auditor {
        let (queue, entries) = sync_channel::<AuditEntry>(QUEUE);
        let writer_store = Arc::clone(&store);
        // The thread ends when every sender is dropped.
        std::thread::Builder::new()
            .name("vigil-audit".into())
            .spawn(move || {
                for entry in entries {
                    if let Err(error) = writer_store.append_audit(&entry) {
                        tracing::error!(%error, "audit entry could not be written");
                    }
                }
            })
            .map_err(|error| tracing::error!(%error, "audit writer thread did not start"))
            .ok();
        Auditor {
            store,
            queue,
            dropped: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Writes an entry now (blocking).
    pub fn record(&self, entry: &AuditEntry) -> Result<u64, StoreError> {
        self.store.append_audit(entry)
    }

    /// Queues an entry for the writer thread (never blocks).
    pub fn record_later(&self, entry: AuditEntry) {
        match self.queue.try_send(entry) {
            Ok(()) => {}
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                let dropped = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
                tracing::warn!(dropped, "audit queue full; entry counted but not written");
            }
        }
    }
}

/// Builds an entry stamped now.
pub fn entry(
    actor: Actor,
    action: Action,
    kind: ResourceKind,
    id: &str,
    outcome: Outcome,
    reason: Option<&str>,
) -> AuditEntry {
    AuditEntry {
        time: Timestamp::now(),
        actor,
        action,
        resource: Resource {
            kind,
            id: id.to_owned(),
        },
        outcome,
        // Reasons are Vigil's own texts; anything longer or stranger is cut, never refused.
        reason: reason.and_then(|r| {
            let mut clean = String::new();
            for c in r.chars().filter(|c| !c.is_control()) {
                if clean.len() + c.len_utf8() > Reason::MAX_LEN {
                    break;
                }
                clean.push(c);
            }
            Reason::new(clean).ok()
        }),
    }
}
