//! Messages queued for devices, and the MQTT sessions that survive a disconnection.
//!
//! A queued message's payload is sealed under the data key of the patient the device serves
//! when it is queued (a command to a pump says something about its patient), bound to its row
//! and the device; a device serving no one has its messages stored as they are (update
//! notices). Erasing the patient therefore erases their device's queued messages too.

use rusqlite::{OptionalExtension, TransactionBehavior, params};
use vigil_model::{DeviceId, PatientId, Timestamp};

use super::{SqliteStore, millis, timestamp};
use crate::{Channel, OutboxStore, QueuedMessage, SessionRecord, StoreError};

/// The authenticated data binding a sealed payload to its row and device.
fn outbox_aad(id: i64, device: &DeviceId) -> Vec<u8> {
    format!("vigil/outbox/v1\0{id}\0{device}").into_bytes()
}

fn corrupt(e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(e.to_string())
}

impl OutboxStore for SqliteStore {
    fn queue_message(
        &self,
        device: &DeviceId,
        channel: Channel,
        payload: &[u8],
        queued_at: Timestamp,
        expires_at: Timestamp,
    ) -> Result<u64, StoreError> {
        let mut connection = self.connection();
        let transaction = connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
        if !super::row_exists(&transaction, "devices", device.as_str())? {
            return Err(StoreError::NoSuchDevice(device.clone()));
        }
        let patient = super::clinical::patient_at(&transaction, device, queued_at)?;
        transaction.execute(
            "INSERT INTO outbox (device_id, channel, patient_id, payload, queued_at, expires_at) \
             VALUES (?1, ?2, ?3, x'', ?4, ?5)",
            params![
                device.as_str(),
                channel.as_str(),
                patient.as_ref().map(PatientId::as_str),
                millis(queued_at),
                millis(expires_at)
            ],
        )?;
        let id = transaction.last_insert_rowid();
        let stored = match &patient {
            Some(patient) => {
                let key = self.sealer.data_key(&transaction, patient)?;
                key.seal(payload, &outbox_aad(id, device))?
            }
            None => payload.to_vec(),
        };
        transaction.execute(
            "UPDATE outbox SET payload = ?2 WHERE id = ?1",
            params![id, stored],
        )?;
        transaction.commit()?;
        u64::try_from(id).map_err(corrupt)
    }

    fn pending_messages(
        &self,
        device: &DeviceId,
        now: Timestamp,
        limit: usize,
    ) -> Result<Vec<QueuedMessage>, StoreError> {
        let connection = self.connection();
        let mut statement = connection.prepare_cached(
            "SELECT id, channel, patient_id, payload, queued_at, expires_at, attempts FROM outbox \
             WHERE device_id = ?1 AND delivered_at IS NULL AND expires_at > ?2 ORDER BY id LIMIT ?3",
        )?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = statement.query_map(params![device.as_str(), millis(now), limit], |row| {
            Ok((
                row.get::<_, i64>(0)?,
                row.get::<_, String>(1)?,
                row.get::<_, Option<String>>(2)?,
                row.get::<_, Vec<u8>>(3)?,
                row.get::<_, i64>(4)?,
                row.get::<_, i64>(5)?,
                row.get::<_, i64>(6)?,
            ))
        })?;
        let mut messages = Vec::new();
        for row in rows {
            let (id, channel, patient, payload, queued_at, expires_at, attempts) = row?;
            let payload = match patient {
                Some(patient) => {
                    let patient = PatientId::new(patient).map_err(corrupt)?;
                    let key = self.sealer.data_key(&connection, &patient)?;
                    key.open(&payload, &outbox_aad(id, device))?
                }
                None => payload,
            };
            messages.push(QueuedMessage {
                id: u64::try_from(id).map_err(corrupt)?,
                device: device.clone(),
                channel: channel.parse().map_err(corrupt)?,
                payload,
                queued_at: timestamp(queued_at)?,
                expires_at: timestamp(expires_at)?,
                attempts: u32::try_from(attempts).map_err(corrupt)?,
            });
        }
        Ok(messages)
    }

    fn note_attempt(&self, id: u64) -> Result<(), StoreError> {
        let id = i64::try_from(id).map_err(corrupt)?;
        self.connection().execute(
            "UPDATE outbox SET attempts = attempts + 1 WHERE id = ?1",
            [id],
        )?;
        Ok(())
    }

    fn mark_delivered(&self, id: u64, at: Timestamp) -> Result<bool, StoreError> {
        let id = i64::try_from(id).map_err(corrupt)?;
        let updated = self.connection().execute(
            "UPDATE outbox SET delivered_at = ?2 WHERE id = ?1 AND delivered_at IS NULL",
            params![id, millis(at)],
        )?;
        Ok(updated == 1)
    }

    fn purge_outbox(&self, now: Timestamp) -> Result<usize, StoreError> {
        // Delivered and expired messages leave no payload behind (secure_delete is on).
        Ok(self.connection().execute(
            "DELETE FROM outbox WHERE delivered_at IS NOT NULL OR expires_at <= ?1",
            [millis(now)],
        )?)
    }

    fn save_session(&self, device: &DeviceId, session: &SessionRecord) -> Result<(), StoreError> {
        let expiry = i64::from(session.expiry_seconds);
        self.connection().execute(
            "INSERT INTO mqtt_sessions (device_id, commands, firmware, expiry_seconds, ended_at) \
             VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (device_id) DO UPDATE SET \
             commands = excluded.commands, firmware = excluded.firmware, \
             expiry_seconds = excluded.expiry_seconds, ended_at = excluded.ended_at",
            params![
                device.as_str(),
                session.commands,
                session.firmware,
                expiry,
                session.ended_at.map(millis)
            ],
        )?;
        Ok(())
    }

    fn session(
        &self,
        device: &DeviceId,
        now: Timestamp,
    ) -> Result<Option<SessionRecord>, StoreError> {
        let connection = self.connection();
        let row: Option<(bool, bool, i64, Option<i64>)> = connection
            .query_row(
                "SELECT commands, firmware, expiry_seconds, ended_at FROM mqtt_sessions \
                 WHERE device_id = ?1",
                [device.as_str()],
                |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?)),
            )
            .optional()?;
        let Some((commands, firmware, expiry, ended_at)) = row else {
            return Ok(None);
        };
        let session = SessionRecord {
            commands,
            firmware,
            expiry_seconds: u32::try_from(expiry).map_err(corrupt)?,
            ended_at: ended_at.map(timestamp).transpose()?,
        };
        Ok((!session.expired(now)).then_some(session))
    }

    fn end_session(&self, device: &DeviceId) -> Result<(), StoreError> {
        self.connection().execute(
            "DELETE FROM mqtt_sessions WHERE device_id = ?1",
            [device.as_str()],
        )?;
        Ok(())
    }
}
