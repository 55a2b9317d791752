//! The device registry tables: devices, enrolment tokens, certificates, revocations.

use rusqlite::{OptionalExtension, TransactionBehavior, params};
use vigil_model::{DeviceClass, DeviceId, Timestamp};

use super::{SqliteStore, is_constraint, millis, row_exists, timestamp};
use crate::{
    CertificateRecord, DeviceRecord, DeviceStatus, RegistryStore, RevokedCertificate, StoreError,
    TokenRecord, TokenRefusal,
};

/// id, class, status, created_at, revoked_at.
type DeviceRow = (String, String, String, i64, Option<i64>);

fn device_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<DeviceRow> {
    DeviceRow::try_from(row)
}

fn device_record(
    (id, class, status, created_at, revoked_at): DeviceRow,
) -> Result<DeviceRecord, StoreError> {
    Ok(DeviceRecord {
        id: DeviceId::new(id).map_err(|e| StoreError::Corrupt(e.to_string()))?,
        class: class
            .parse::<DeviceClass>()
            .map_err(|e| StoreError::Corrupt(e.to_string()))?,
        status: status
            .parse::<DeviceStatus>()
            .map_err(StoreError::Corrupt)?,
        created_at: timestamp(created_at)?,
        revoked_at: revoked_at.map(timestamp).transpose()?,
    })
}

const DEVICE_COLUMNS: &str = "id, class, status, created_at, revoked_at";
const CERTIFICATE_COLUMNS: &str = "serial, device_id, fingerprint, not_before, not_after, \
     key_kind, key_bits, issued_at, issued_via, revoked_at, revocation_reason";

type CertificateRow = (
    String,
    String,
    String,
    i64,
    i64,
    String,
    i64,
    i64,
    String,
    Option<i64>,
    Option<String>,
);

fn certificate_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<CertificateRow> {
    CertificateRow::try_from(row)
}

fn certificate_record(row: CertificateRow) -> Result<CertificateRecord, StoreError> {
    let (
        serial,
        device,
        fingerprint,
        not_before,
        not_after,
        key_kind,
        key_bits,
        issued_at,
        issued_via,
        revoked_at,
        revocation_reason,
    ) = row;
    Ok(CertificateRecord {
        serial,
        device: DeviceId::new(device).map_err(|e| StoreError::Corrupt(e.to_string()))?,
        fingerprint,
        not_before: timestamp(not_before)?,
        not_after: timestamp(not_after)?,
        key_kind,
        key_bits: u32::try_from(key_bits).map_err(|e| StoreError::Corrupt(e.to_string()))?,
        issued_at: timestamp(issued_at)?,
        issued_via,
        revoked_at: revoked_at.map(timestamp).transpose()?,
        revocation_reason,
    })
}

impl RegistryStore for SqliteStore {
    fn add_device(&self, device: &DeviceRecord, token: &TokenRecord) -> Result<(), StoreError> {
        let mut connection = self.connection();
        let tx = connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let inserted = tx.execute(
            "INSERT INTO devices (id, class, status, created_at) VALUES (?1, ?2, ?3, ?4)",
            params![
                device.id.as_str(),
                device.class.to_string(),
                device.status.as_str(),
                millis(device.created_at)
            ],
        );
        match inserted {
            Err(e) if is_constraint(&e) => return Err(StoreError::DeviceExists(device.id.clone())),
            other => other?,
        };
        insert_token(&tx, token)?;
        tx.commit()?;
        Ok(())
    }

    fn add_token(&self, token: &TokenRecord) -> Result<(), StoreError> {
        let mut connection = self.connection();
        let tx = connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let status: Option<String> = tx
            .query_row(
                "SELECT status FROM devices WHERE id = ?1",
                [token.device.as_str()],
                |row| row.get(0),
            )
            .optional()?;
        match status.as_deref() {
            None => return Err(StoreError::NoSuchDevice(token.device.clone())),
            Some("revoked") => return Err(StoreError::NoSuchDevice(token.device.clone())),
            Some(_) => {}
        }
        // Earlier unused tokens stop working: only the newest token of a device is live.
        tx.execute(
            "UPDATE enrolment_tokens SET used_at = ?2 WHERE device_id = ?1 AND used_at IS NULL",
            params![token.device.as_str(), millis(token.created_at)],
        )?;
        insert_token(&tx, token)?;
        tx.commit()?;
        Ok(())
    }

    fn device(&self, id: &DeviceId) -> Result<Option<DeviceRecord>, StoreError> {
        let connection = self.connection();
        connection
            .query_row(
                &format!("SELECT {DEVICE_COLUMNS} FROM devices WHERE id = ?1"),
                [id.as_str()],
                device_from_row,
            )
            .optional()?
            .map(device_record)
            .transpose()
    }

    fn devices(&self) -> Result<Vec<DeviceRecord>, StoreError> {
        let connection = self.connection();
        let mut statement =
            connection.prepare(&format!("SELECT {DEVICE_COLUMNS} FROM devices ORDER BY id"))?;
        let rows = statement.query_map([], device_from_row)?;
        rows.map(|row| device_record(row?)).collect()
    }

    fn token_device(&self, token_id: &str) -> Result<Option<DeviceId>, StoreError> {
        let device: Option<String> = self
            .connection()
            .query_row(
                "SELECT device_id FROM enrolment_tokens WHERE id = ?1",
                [token_id],
                |row| row.get(0),
            )
            .optional()?;
        device
            .map(|d| DeviceId::new(d).map_err(|e| StoreError::Corrupt(e.to_string())))
            .transpose()
    }

    fn spend_token(
        &self,
        token_id: &str,
        now: Timestamp,
        secret_matches: &dyn Fn(&[u8]) -> bool,
    ) -> Result<Result<DeviceRecord, TokenRefusal>, StoreError> {
        let mut connection = self.connection();
        let tx = connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let token: Option<(String, Vec<u8>, i64, Option<i64>)> = tx
            .query_row(
                "SELECT device_id, secret_hash, expires_at, used_at FROM enrolment_tokens \
                 WHERE id = ?1",
                [token_id],
                |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?)),
            )
            .optional()?;
        let Some((device_id, secret_hash, expires_at, used_at)) = token else {
            // Spend the same effort as a real comparison, so timing does not tell whether the id
            // exists.
            let _ = secret_matches(&[0u8; 32]);
            return Ok(Err(TokenRefusal::Invalid));
        };
        if !secret_matches(&secret_hash) {
            return Ok(Err(TokenRefusal::Invalid));
        }
        if used_at.is_some() {
            return Ok(Err(TokenRefusal::AlreadyUsed));
        }
        if millis(now) >= expires_at {
            return Ok(Err(TokenRefusal::Expired));
        }
        let device = tx
            .query_row(
                &format!("SELECT {DEVICE_COLUMNS} FROM devices WHERE id = ?1"),
                [&device_id],
                device_from_row,
            )
            .map_err(StoreError::from)
            .and_then(device_record)?;
        if device.status == DeviceStatus::Revoked {
            return Ok(Err(TokenRefusal::DeviceRevoked));
        }
        tx.execute(
            "UPDATE enrolment_tokens SET used_at = ?2 WHERE id = ?1",
            params![token_id, millis(now)],
        )?;
        tx.commit()?;
        Ok(Ok(device))
    }

    fn record_certificate(&self, c: &CertificateRecord) -> Result<(), StoreError> {
        let mut connection = self.connection();
        let tx = connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let inserted = tx.execute(
            &format!(
                "INSERT INTO certificates ({CERTIFICATE_COLUMNS}) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)"
            ),
            params![
                c.serial,
                c.device.as_str(),
                c.fingerprint,
                millis(c.not_before),
                millis(c.not_after),
                c.key_kind,
                i64::from(c.key_bits),
                millis(c.issued_at),
                c.issued_via,
                c.revoked_at.map(millis),
                c.revocation_reason,
            ],
        );
        match inserted {
            Err(e) if is_constraint(&e) => {
                let known = row_exists(&tx, "devices", c.device.as_str())?;
                return Err(if known {
                    StoreError::CertificateExists
                } else {
                    StoreError::NoSuchDevice(c.device.clone())
                });
            }
            other => other?,
        };
        tx.execute(
            "UPDATE devices SET status = 'active' WHERE id = ?1 AND status = 'registered'",
            [c.device.as_str()],
        )?;
        tx.commit()?;
        Ok(())
    }

    fn certificates_of(&self, device: &DeviceId) -> Result<Vec<CertificateRecord>, StoreError> {
        let connection = self.connection();
        let mut statement = connection.prepare(&format!(
            "SELECT {CERTIFICATE_COLUMNS} FROM certificates WHERE device_id = ?1 \
             ORDER BY issued_at, serial"
        ))?;
        let rows = statement.query_map([device.as_str()], certificate_from_row)?;
        rows.map(|row| certificate_record(row?)).collect()
    }

    fn certificate_by_fingerprint(
        &self,
        fingerprint: &str,
    ) -> Result<Option<CertificateRecord>, StoreError> {
        let connection = self.connection();
        connection
            .query_row(
                &format!("SELECT {CERTIFICATE_COLUMNS} FROM certificates WHERE fingerprint = ?1"),
                [fingerprint],
                certificate_from_row,
            )
            .optional()?
            .map(certificate_record)
            .transpose()
    }

    fn revoke_device(
        &self,
        device: &DeviceId,
        reason: &str,
        now: Timestamp,
    ) -> Result<Vec<String>, StoreError> {
        let mut connection = self.connection();
        let tx = connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let updated = tx.execute(
            "UPDATE devices SET status = 'revoked', revoked_at = ?2, revocation_reason = ?3 \
             WHERE id = ?1 AND status != 'revoked'",
            params![device.as_str(), millis(now), reason],
        )?;
        if updated == 0 {
            let exists = row_exists(&tx, "devices", device.as_str())?;
            if !exists {
                return Err(StoreError::NoSuchDevice(device.clone()));
            }
        }
        let serials = {
            let mut statement = tx.prepare(
                "UPDATE certificates SET revoked_at = ?2, revocation_reason = ?3 \
                 WHERE device_id = ?1 AND revoked_at IS NULL RETURNING serial",
            )?;
            let rows = statement
                .query_map(params![device.as_str(), millis(now), reason], |row| {
                    row.get::<_, String>(0)
                })?;
            rows.collect::<Result<Vec<_>, _>>()?
        };
        tx.execute(
            "UPDATE enrolment_tokens SET used_at = ?2 WHERE device_id = ?1 AND used_at IS NULL",
            params![device.as_str(), millis(now)],
        )?;
        tx.commit()?;
        Ok(serials)
    }

    fn revoked_certificates(&self, now: Timestamp) -> Result<Vec<RevokedCertificate>, StoreError> {
        let connection = self.connection();
        let mut statement = connection.prepare(
            "SELECT serial, revoked_at, revocation_reason FROM certificates \
             WHERE revoked_at IS NOT NULL AND not_after > ?1 ORDER BY revoked_at, serial",
        )?;
        let rows = statement.query_map([millis(now)], |row| {
            Ok((
                row.get::<_, String>(0)?,
                row.get::<_, i64>(1)?,
                row.get::<_, Option<String>>(2)?,
            ))
        })?;
        rows.map(|row| {
            let (serial, revoked_at, reason) = row?;
            Ok(RevokedCertificate {
                serial,
                revoked_at: timestamp(revoked_at)?,
                reason: reason.unwrap_or_else(|| "unspecified".to_owned()),
            })
        })
        .collect()
    }

    fn next_crl_number(&self) -> Result<u64, StoreError> {
        let connection = self.connection();
        let value: i64 = connection.query_row(
            "UPDATE counters SET value = value + 1 WHERE name = 'crl_number' RETURNING value",
            [],
            |row| row.get(0),
        )?;
        u64::try_from(value).map_err(|e| StoreError::Corrupt(e.to_string()))
    }
}

fn insert_token(tx: &rusqlite::Transaction<'_>, token: &TokenRecord) -> Result<(), StoreError> {
    tx.execute(
        "INSERT INTO enrolment_tokens (id, device_id, secret_hash, created_at, expires_at) \
         VALUES (?1, ?2, ?3, ?4, ?5)",
        params![
            token.id,
            token.device.as_str(),
            token.secret_hash,
            millis(token.created_at),
            millis(token.expires_at)
        ],
    )?;
    Ok(())
}
