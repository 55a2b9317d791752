//! Attacks played from outside the device: a thief with its certificate and key, a replay of
//! its captured messages, enrolment with a spent or forged token, and the network misbehaviour
//! the device's own connection plays ([`super::device`]).

use std::sync::Arc;
use std::time::Duration;

use vigil_device::{Link, LinkOptions, topics};
use vigil_model::{DeviceId, Timestamp};
use vigil_wire::encode::{PackBuilder, ReadingTime};

use super::device::Handle;
use super::{Shared, Ticket};
use crate::attacks::{AttackKind, PlannedAttack};

/// Starts `attack` against the device of `ticket` (its task is `target`).
pub(super) fn launch(
    shared: Arc<Shared>,
    attack: PlannedAttack,
    ticket: Ticket,
    target: &Handle,
    tickets: &[Ticket],
) {
    // Wall-clock length of the attack (the run may be faster or slower than real time only by
    // its tick and step, which the caller keeps equal for real time).
    let length = Duration::from_secs_f64(attack.step.duration.max(0.1));
    match attack.step.attack {
        AttackKind::Flood | AttackKind::ForeignTopic | AttackKind::MalformedPackets => {
            let others: Vec<DeviceId> = tickets
                .iter()
                .filter(|t| t.device != ticket.device)
                .map(|t| t.device.clone())
                .collect();
            target.misbehave(attack.step.attack, length, others);
        }
        AttackKind::StolenCertificate => {
            let identity = Arc::clone(&target.identity);
            tokio::spawn(async move {
                let Some(identity) = identity.get().cloned() else {
                    return; // never enrolled: nothing to steal
                };
                impersonate(&shared, &identity, length).await;
            });
        }
        AttackKind::Replay => {
            let identity = Arc::clone(&target.identity);
            let captured: Vec<Vec<u8>> = target
                .captured
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .iter()
                .cloned()
                .collect();
            tokio::spawn(async move {
                let Some(identity) = identity.get().cloned() else {
                    return;
                };
                replay(&shared, &identity, &captured).await;
            });
        }
        AttackKind::ReusedToken => {
            tokio::spawn(async move {
                // Spent at the device's own enrolment: the hub must refuse it.
                let _ =
                    vigil_device::enrol(&shared.hub.https, &shared.hub.ca_pem, &ticket.token).await;
            });
        }
        AttackKind::ForgedToken => {
            tokio::spawn(async move {
                let forged = forged_token(&ticket.token);
                let _ = vigil_device::enrol(&shared.hub.https, &shared.hub.ca_pem, &forged).await;
            });
        }
        AttackKind::HideDesaturation
        | AttackKind::FakeHypoglycaemia
        | AttackKind::ImplausibleInjection => {} // the driver alters the device's readings
    }
}

/// The stolen certificate in use from a second place: plausible readings once a second with a
/// sequence of the thief's own, reconnecting whenever the genuine device takes over again.
async fn impersonate(shared: &Shared, identity: &vigil_device::Identity, length: Duration) {
    let until = tokio::time::Instant::now() + length;
    let options = LinkOptions {
        server_name: shared.hub.server_name.clone(),
        ..LinkOptions::default()
    };
    let device = identity.device.clone();
    let mut sequence: u64 = 1 << 40;
    while tokio::time::Instant::now() < until {
        let Ok(mut link) = Link::connect(shared.hub.mqtt, identity, &options).await else {
            tokio::time::sleep(Duration::from_millis(500)).await;
            continue;
        };
        while tokio::time::Instant::now() < until {
            sequence += 1;
            let Some(pack) = plausible_pack(&device, sequence) else {
                return;
            };
            if link
                .publish(&topics::observations(&device), &pack)
                .await
                .is_err()
            {
                // Taken over by the genuine device: come back a little later.
                tokio::time::sleep(Duration::from_secs(2)).await;
                break;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        let _ = link.disconnect().await;
    }
}

/// A normal-looking SpO2 and pulse rate from the thief.
fn plausible_pack(device: &DeviceId, sequence: u64) -> Option<Vec<u8>> {
    let mut pack = PackBuilder::new(device, sequence, Timestamp::now()).ok()?;
    pack.reading(150_456, "%", 97.0, ReadingTime::Offset(0.0))
        .ok()?
        .reading(149_530, "/min", 74.0, ReadingTime::Offset(0.0))
        .ok()?;
    Some(pack.to_json())
}

/// The device's captured messages sent again, byte for byte, with its stolen credentials.
async fn replay(shared: &Shared, identity: &vigil_device::Identity, captured: &[Vec<u8>]) {
    let options = LinkOptions {
        server_name: shared.hub.server_name.clone(),
        ..LinkOptions::default()
    };
    let Ok(mut link) = Link::connect(shared.hub.mqtt, identity, &options).await else {
        return;
    };
    let topic = topics::observations(&identity.device);
    for payload in captured {
        if link.publish(&topic, payload).await.is_err() {
            return;
        }
    }
    let _ = link.disconnect().await;
}

/// A token of the right shape that the hub never issued: the real one's id and a secret of the
/// right length and alphabet that is not its secret (the real one reversed).
fn forged_token(real: &str) -> String {
    let mut parts = real.splitn(3, '.');
    let (Some(version), Some(id), Some(secret)) = (parts.next(), parts.next(), parts.next()) else {
        return "vigil1.0000000000000000.AAAA".to_owned();
    };
    let mut forged: String = secret.chars().rev().collect();
    if forged == secret {
        // A palindrome (never in practice): change one character instead.
        forged = format!(
            "{}{}",
            if secret.starts_with('A') { 'B' } else { 'A' },
            secret.get(1..).unwrap_or("")
        );
    }
    format!("{version}.{id}.{forged}")
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_forged_token_keeps_the_shape_and_changes_the_secret() {
        let real = "vigil1.f010d769120d988d.c2VjcmV0LXNlY3JldA";
        let forged = super::forged_token(real);
        assert_ne!(forged, real);
        assert_eq!(forged.len(), real.len());
        assert!(forged.starts_with("vigil1.f010d769120d988d."));
    }
}
