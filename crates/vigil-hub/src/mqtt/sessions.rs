//! Which device is connected where. One certificate connected twice is either a device that
//! reconnected before its old connection died, or a stolen certificate in use from a second
//! place: the newer connection takes over (the older one is closed with version 5 reason 0x8E,
//! Session taken over) and an identity-conflict alert is raised either way, for a person to judge.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::oneshot;
use vigil_model::DeviceId;

struct Active {
    id: u64,
    address: SocketAddr,
    take_over: oneshot::Sender<()>,
}

/// The connected devices.
#[derive(Default)]
pub struct Sessions {
    next: AtomicU64,
    active: Mutex<HashMap<DeviceId, Active>>,
}

/// A registered connection: its id, the signal that it was taken over, and the connection it
/// replaced (its address), if any.
pub struct Registration {
    /// This connection's id.
    pub id: u64,
    /// Completes when a newer connection of the same device takes over.
    pub taken_over: oneshot::Receiver<()>,
    /// The address of the connection this one replaced.
    pub replaced: Option<SocketAddr>,
}

impl Sessions {
    /// Registers a connection of `device` from `address`, taking over an older one.
    pub fn register(&self, device: &DeviceId, address: SocketAddr) -> Registration {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let (take_over, taken_over) = oneshot::channel();
        let previous = self
            .active
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(
                device.clone(),
                Active {
                    id,
                    address,
                    take_over,
                },
            );
        let replaced = previous.map(|old| {
            let _ = old.take_over.send(());
            old.address
        });
        Registration {
            id,
            taken_over,
            replaced,
        }
    }

    /// Forgets connection `id` of `device` when it ends (unless a newer one replaced it).
    pub fn unregister(&self, device: &DeviceId, id: u64) {
        let mut active = self
            .active
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if active.get(device).is_some_and(|a| a.id == id) {
            active.remove(device);
        }
    }
}
