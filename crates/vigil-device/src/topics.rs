//! A device's MQTT topics (DESIGN.md, wire contracts v1).

use vigil_model::DeviceId;

/// Where `device` publishes observation packs.
pub fn observations(device: &DeviceId) -> String {
    format!("vigil/v1/d/{device}/obs")
}

/// Where `device` publishes device events.
pub fn events(device: &DeviceId) -> String {
    format!("vigil/v1/d/{device}/evt")
}

/// Where `device` receives signed commands.
pub fn commands(device: &DeviceId) -> String {
    format!("vigil/v1/d/{device}/cmd")
}

/// Where `device` acknowledges commands.
pub fn command_acks(device: &DeviceId) -> String {
    format!("vigil/v1/d/{device}/cmd/ack")
}

/// Where `device` receives firmware update notices.
pub fn firmware(device: &DeviceId) -> String {
    format!("vigil/v1/d/{device}/fw")
}
