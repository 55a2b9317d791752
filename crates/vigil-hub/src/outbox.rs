//! Messages for devices: queued durably in the store until delivered or expired, and handed to
//! the device's MQTT connection as soon as it has one.
//!
//! This is the delivery half of commands and update notices: whoever queues a message (the
//! command interlock, the update service) has already decided it may be sent. Delivery is at
//! least once (QoS 1): a message is delivered when the device acknowledges it, and sent again,
//! marked duplicate, on its next connection if it did not. A message past its expiry is never
//! sent, however long the device was away.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Notify;
use vigil_model::{Action, Actor, DeviceId, Outcome, ResourceKind, Timestamp};
use vigil_store::{Channel, QueuedMessage, Store, StoreError};

use crate::audit::{Auditor, entry};

/// The longest a message may wait for its device.
pub const MAX_MESSAGE_LIFETIME: Duration = Duration::from_secs(7 * 24 * 3600);

/// Queues messages for devices and wakes their connections.
#[derive(Clone)]
pub struct Outbox {
    store: Arc<dyn Store>,
    auditor: Auditor,
    waiting: Arc<Mutex<HashMap<DeviceId, Arc<Notify>>>>,
}

impl std::fmt::Debug for Outbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outbox").finish_non_exhaustive()
    }
}

/// Why a message could not be queued.
#[derive(Debug, thiserror::Error)]
pub enum OutboxError {
    /// The lifetime is zero or longer than [`MAX_MESSAGE_LIFETIME`].
    #[error("a message lives between 1 second and {} seconds", MAX_MESSAGE_LIFETIME.as_secs())]
    Lifetime,
    /// The payload is empty or larger than an MQTT packet the hub sends.
    #[error(
        "a message payload holds 1 to {} bytes",
        crate::mqtt::codec::MAX_OUTBOUND_PAYLOAD
    )]
    Size,
    /// The store failed (or the device is unknown).
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl Outbox {
    /// An outbox over `store`.
    pub fn new(store: Arc<dyn Store>, auditor: Auditor) -> Outbox {
        Outbox {
            store,
            auditor,
            waiting: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    /// Queues `payload` for `device` on `channel`, to be delivered within `lifetime`; its id.
    /// Audited. Blocking: call it from a blocking context.
    pub fn queue(
        &self,
        actor: Actor,
        device: &DeviceId,
        channel: Channel,
        payload: &[u8],
        lifetime: Duration,
    ) -> Result<u64, OutboxError> {
        if lifetime.is_zero() || lifetime > MAX_MESSAGE_LIFETIME {
            return Err(OutboxError::Lifetime);
        }
        if payload.is_empty() || payload.len() > crate::mqtt::codec::MAX_OUTBOUND_PAYLOAD {
            return Err(OutboxError::Size);
        }
        let now = Timestamp::now();
        let expires = Timestamp::from_unix_millis(
            now.unix_millis()
                .saturating_add(i64::try_from(lifetime.as_millis()).unwrap_or(i64::MAX)),
        )
        .map_err(|_| OutboxError::Lifetime)?;
        let id = self
            .store
            .queue_message(device, channel, payload, now, expires)?;
        self.auditor.record(&entry(
            actor,
            Action::Command,
            ResourceKind::Device,
            device.as_str(),
            Outcome::Success,
            Some(&format!("message {id} queued for {}", channel.as_str())),
        ))?;
        self.wake(device);
        Ok(id)
    }

    /// The signal a connection of `device` waits on for new messages.
    pub(crate) fn signal(&self, device: &DeviceId) -> Arc<Notify> {
        let mut waiting = self
            .waiting
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        Arc::clone(waiting.entry(device.clone()).or_default())
    }

    /// Forgets `device`'s signal when its connection ends (unless another holds it).
    pub(crate) fn release(&self, device: &DeviceId) {
        let mut waiting = self
            .waiting
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if waiting
            .get(device)
            .is_some_and(|signal| Arc::strong_count(signal) == 1)
        {
            waiting.remove(device);
        }
    }

    fn wake(&self, device: &DeviceId) {
        let waiting = self
            .waiting
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(signal) = waiting.get(device) {
            signal.notify_one();
        }
    }

    /// The oldest message for `device` on one of `channels` that is due, counting the attempt.
    pub(crate) async fn next_for(
        &self,
        device: &DeviceId,
        channels: &[Channel],
    ) -> Result<Option<QueuedMessage>, StoreError> {
        let store = Arc::clone(&self.store);
        let device = device.clone();
        let channels = channels.to_vec();
        blocking(move || {
            let pending = store.pending_messages(&device, Timestamp::now(), 64)?;
            let next = pending.into_iter().find(|m| channels.contains(&m.channel));
            if let Some(message) = &next {
                store.note_attempt(message.id)?;
            }
            Ok(next)
        })
        .await
    }

    /// Records that `device` acknowledged message `id`.
    pub(crate) async fn delivered(&self, device: &DeviceId, id: u64) -> Result<(), StoreError> {
        let store = Arc::clone(&self.store);
        let auditor = self.auditor.clone();
        let device = device.clone();
        blocking(move || {
            if store.mark_delivered(id, Timestamp::now())? {
                auditor.record_later(entry(
                    Actor::Device(device.clone()),
                    Action::Command,
                    ResourceKind::Device,
                    device.as_str(),
                    Outcome::Success,
                    Some(&format!("message {id} delivered")),
                ));
            }
            Ok(())
        })
        .await
    }

    /// The store, for session state.
    pub(crate) fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }
}

/// Runs store work on the blocking pool.
pub(crate) async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, StoreError> {
    tokio::task::spawn_blocking(work)
        .await
        .unwrap_or_else(|e| Err(StoreError::BatchFailed(format!("worker task failed: {e}"))))
}
