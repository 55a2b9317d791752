//! People's access: credentials, sign-in failures, sessions, the care team, consents and
//! break-glass grants.

use rusqlite::{OptionalExtension, TransactionBehavior, params};
use vigil_model::{PatientId, Timestamp, UserId};

use super::{SqliteStore, is_constraint, millis, row_exists, timestamp};
use crate::seal::WrappedKey;
use crate::{
    AccessStore, BreakGlassRecord, ConsentRecord, Credentials, StoreError, UserSessionRecord,
};

fn corrupt(e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(e.to_string())
}

/// The second factor's secret is wrapped like a data key, which is 32 bytes: the secret is
/// [`TOTP_SECRET_LEN`] bytes, padded with zeros.
const TOTP_SECRET_LEN: usize = 20;

fn totp_context(user: &UserId) -> Vec<u8> {
    format!("vigil/totp/v1\0{}", user.as_str()).into_bytes()
}

fn patient(text: String) -> Result<PatientId, StoreError> {
    PatientId::new(text).map_err(corrupt)
}

fn user(text: String) -> Result<UserId, StoreError> {
    UserId::new(text).map_err(corrupt)
}

impl SqliteStore {
    fn require_user(
        &self,
        connection: &rusqlite::Connection,
        id: &UserId,
    ) -> Result<(), StoreError> {
        if row_exists(connection, "users", id.as_str())? {
            Ok(())
        } else {
            Err(StoreError::NoSuchUser(id.clone()))
        }
    }

    fn require_patient(
        &self,
        connection: &rusqlite::Connection,
        id: &PatientId,
    ) -> Result<(), StoreError> {
        if row_exists(connection, "patients", id.as_str())? {
            Ok(())
        } else {
            Err(StoreError::NoSuchPatient(id.clone()))
        }
    }
}

impl AccessStore for SqliteStore {
    fn set_password(&self, id: &UserId, phc: &str) -> Result<(), StoreError> {
        let connection = self.connection();
        let updated = connection.execute(
            "UPDATE users SET password = ?2 WHERE id = ?1",
            params![id.as_str(), phc],
        )?;
        if updated == 0 {
            return Err(StoreError::NoSuchUser(id.clone()));
        }
        Ok(())
    }

    fn set_totp_secret(&self, id: &UserId, secret: Option<&[u8]>) -> Result<(), StoreError> {
        let wrapped = match secret {
            None => None,
            Some(secret) => {
                if secret.len() != TOTP_SECRET_LEN {
                    return Err(StoreError::Corrupt(format!(
                        "a second-factor secret must be {TOTP_SECRET_LEN} bytes"
                    )));
                }
                let mut padded = [0u8; 32];
                padded[..TOTP_SECRET_LEN].copy_from_slice(secret);
                Some(self.sealer.keys().wrap(&padded, &totp_context(id))?)
            }
        };
        let connection = self.connection();
        let updated = connection.execute(
            "UPDATE users SET totp_kek_id = ?2, totp = ?3, totp_step = NULL WHERE id = ?1",
            params![
                id.as_str(),
                wrapped.as_ref().map(|w| i64::from(w.kek_id)),
                wrapped.as_ref().map(|w| w.blob.as_slice())
            ],
        )?;
        if updated == 0 {
            return Err(StoreError::NoSuchUser(id.clone()));
        }
        Ok(())
    }

    fn credentials(&self, id: &UserId) -> Result<Option<Credentials>, StoreError> {
        type Row = (Option<String>, Option<i64>, Option<Vec<u8>>, Option<i64>);
        let row: Option<Row> = self
            .connection()
            .query_row(
                "SELECT password, totp_kek_id, totp, totp_step FROM users WHERE id = ?1",
                [id.as_str()],
                |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?)),
            )
            .optional()?;
        let Some((password, kek_id, totp, totp_step)) = row else {
            return Ok(None);
        };
        let totp_secret = match (kek_id, totp) {
            (Some(kek_id), Some(blob)) => {
                let wrapped = WrappedKey {
                    kek_id: u32::try_from(kek_id).map_err(corrupt)?,
                    blob,
                };
                let padded = self.sealer.keys().unwrap_key(&wrapped, &totp_context(id))?;
                Some(
                    padded
                        .get(..TOTP_SECRET_LEN)
                        .ok_or_else(|| corrupt("second-factor secret too short"))?
                        .to_vec(),
                )
            }
            _ => None,
        };
        Ok(Some(Credentials {
            password,
            totp_secret,
            totp_step: totp_step.map(u64::try_from).transpose().map_err(corrupt)?,
        }))
    }

    fn accept_totp_step(&self, id: &UserId, step: u64) -> Result<bool, StoreError> {
        let step = i64::try_from(step).map_err(corrupt)?;
        // Compare-and-set in one statement: two sign-ins racing with the same code cannot both
        // succeed.
        let updated = self.connection().execute(
            "UPDATE users SET totp_step = ?2 WHERE id = ?1 AND (totp_step IS NULL OR totp_step < ?2)",
            params![id.as_str(), step],
        )?;
        Ok(updated == 1)
    }

    fn set_user_patient(&self, id: &UserId, patient: &PatientId) -> Result<(), StoreError> {
        let connection = self.connection();
        self.require_patient(&connection, patient)?;
        let updated = connection.execute(
            "UPDATE users SET patient_id = ?2 WHERE id = ?1",
            params![id.as_str(), patient.as_str()],
        )?;
        if updated == 0 {
            return Err(StoreError::NoSuchUser(id.clone()));
        }
        Ok(())
    }

    fn user_patient(&self, id: &UserId) -> Result<Option<PatientId>, StoreError> {
        let row: Option<Option<String>> = self
            .connection()
            .query_row(
                "SELECT patient_id FROM users WHERE id = ?1",
                [id.as_str()],
                |row| row.get(0),
            )
            .optional()?;
        row.flatten().map(patient).transpose()
    }

    fn record_sign_in_failure(
        &self,
        id: &UserId,
        at: Timestamp,
        keep_after: Timestamp,
    ) -> Result<Vec<Timestamp>, StoreError> {
        let mut connection = self.connection();
        let tx = connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.execute(
            "DELETE FROM sign_in_failures WHERE user_id = ?1 AND time < ?2",
            params![id.as_str(), millis(keep_after)],
        )?;
        tx.execute(
            "INSERT INTO sign_in_failures (user_id, time) VALUES (?1, ?2)",
            params![id.as_str(), millis(at)],
        )?;
        let times = failures(&tx, id)?;
        tx.commit()?;
        Ok(times)
    }

    fn sign_in_failures(&self, id: &UserId) -> Result<Vec<Timestamp>, StoreError> {
        failures(&self.connection(), id)
    }

    fn clear_sign_in_failures(&self, id: &UserId) -> Result<(), StoreError> {
        self.connection().execute(
            "DELETE FROM sign_in_failures WHERE user_id = ?1",
            [id.as_str()],
        )?;
        Ok(())
    }

    fn add_user_session(&self, session: &UserSessionRecord) -> Result<(), StoreError> {
        let connection = self.connection();
        self.require_user(&connection, &session.user)?;
        connection.execute(
            "INSERT INTO user_sessions (id, user_id, created_at, last_used, expires_at, revoked_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                session.id,
                session.user.as_str(),
                millis(session.created_at),
                millis(session.last_used),
                millis(session.expires_at),
                session.revoked_at.map(millis)
            ],
        )?;
        Ok(())
    }

    fn user_session(&self, id: &str) -> Result<Option<UserSessionRecord>, StoreError> {
        type Row = (String, String, i64, i64, i64, Option<i64>);
        let row: Option<Row> = self
            .connection()
            .query_row(
                "SELECT id, user_id, created_at, last_used, expires_at, revoked_at \
                 FROM user_sessions WHERE id = ?1",
                [id],
                |row| Row::try_from(row),
            )
            .optional()?;
        row.map(
            |(id, user_id, created_at, last_used, expires_at, revoked_at)| {
                Ok(UserSessionRecord {
                    id,
                    user: user(user_id)?,
                    created_at: timestamp(created_at)?,
                    last_used: timestamp(last_used)?,
                    expires_at: timestamp(expires_at)?,
                    revoked_at: revoked_at.map(timestamp).transpose()?,
                })
            },
        )
        .transpose()
    }

    fn touch_user_session(&self, id: &str, at: Timestamp) -> Result<(), StoreError> {
        self.connection().execute(
            "UPDATE user_sessions SET last_used = MAX(last_used, ?2) WHERE id = ?1",
            params![id, millis(at)],
        )?;
        Ok(())
    }

    fn revoke_user_session(&self, id: &str, at: Timestamp) -> Result<bool, StoreError> {
        let updated = self.connection().execute(
            "UPDATE user_sessions SET revoked_at = ?2 WHERE id = ?1 AND revoked_at IS NULL",
            params![id, millis(at)],
        )?;
        Ok(updated == 1)
    }

    fn revoke_sessions_of(&self, user: &UserId, at: Timestamp) -> Result<usize, StoreError> {
        Ok(self.connection().execute(
            "UPDATE user_sessions SET revoked_at = ?2 WHERE user_id = ?1 AND revoked_at IS NULL",
            params![user.as_str(), millis(at)],
        )?)
    }

    fn add_to_care_team(
        &self,
        user: &UserId,
        patient: &PatientId,
        at: Timestamp,
    ) -> Result<bool, StoreError> {
        let mut connection = self.connection();
        self.require_user(&connection, user)?;
        self.require_patient(&connection, patient)?;
        let tx = connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
        if on_care_team(&tx, user, patient)? {
            return Ok(false);
        }
        let inserted = tx.execute(
            "INSERT INTO care_team (user_id, patient_id, added_at) VALUES (?1, ?2, ?3)",
            params![user.as_str(), patient.as_str(), millis(at)],
        );
        match inserted {
            Err(e) if is_constraint(&e) => return Ok(false),
            other => other?,
        };
        tx.commit()?;
        Ok(true)
    }

    fn remove_from_care_team(
        &self,
        user: &UserId,
        patient: &PatientId,
        at: Timestamp,
    ) -> Result<bool, StoreError> {
        let updated = self.connection().execute(
            "UPDATE care_team SET removed_at = ?3 \
             WHERE user_id = ?1 AND patient_id = ?2 AND removed_at IS NULL",
            params![user.as_str(), patient.as_str(), millis(at)],
        )?;
        Ok(updated > 0)
    }

    fn is_on_care_team(&self, user: &UserId, patient: &PatientId) -> Result<bool, StoreError> {
        on_care_team(&self.connection(), user, patient)
    }

    fn care_team_patients(&self, user: &UserId) -> Result<Vec<PatientId>, StoreError> {
        let connection = self.connection();
        let mut statement = connection.prepare_cached(
            "SELECT DISTINCT patient_id FROM care_team \
             WHERE user_id = ?1 AND removed_at IS NULL ORDER BY patient_id",
        )?;
        let rows = statement.query_map([user.as_str()], |row| row.get::<_, String>(0))?;
        rows.map(|row| patient(row?)).collect()
    }

    fn grant_consent(
        &self,
        patient: &PatientId,
        user: &UserId,
        at: Timestamp,
    ) -> Result<bool, StoreError> {
        let mut connection = self.connection();
        self.require_user(&connection, user)?;
        self.require_patient(&connection, patient)?;
        let tx = connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
        if consented(&tx, patient, user)? {
            return Ok(false);
        }
        let inserted = tx.execute(
            "INSERT INTO consents (patient_id, user_id, granted_at) VALUES (?1, ?2, ?3)",
            params![patient.as_str(), user.as_str(), millis(at)],
        );
        match inserted {
            Err(e) if is_constraint(&e) => return Ok(false),
            other => other?,
        };
        tx.commit()?;
        Ok(true)
    }

    fn withdraw_consent(
        &self,
        patient: &PatientId,
        user: &UserId,
        at: Timestamp,
    ) -> Result<bool, StoreError> {
        let updated = self.connection().execute(
            "UPDATE consents SET withdrawn_at = ?3 \
             WHERE patient_id = ?1 AND user_id = ?2 AND withdrawn_at IS NULL",
            params![patient.as_str(), user.as_str(), millis(at)],
        )?;
        Ok(updated > 0)
    }

    fn has_consent(&self, patient: &PatientId, user: &UserId) -> Result<bool, StoreError> {
        consented(&self.connection(), patient, user)
    }

    fn consents(&self, patient: &PatientId) -> Result<Vec<ConsentRecord>, StoreError> {
        let connection = self.connection();
        let mut statement = connection.prepare_cached(
            "SELECT user_id, granted_at, withdrawn_at FROM consents \
             WHERE patient_id = ?1 ORDER BY granted_at, user_id",
        )?;
        let rows = statement.query_map([patient.as_str()], |row| {
            Ok((
                row.get::<_, String>(0)?,
                row.get::<_, i64>(1)?,
                row.get::<_, Option<i64>>(2)?,
            ))
        })?;
        rows.map(|row| {
            let (user_id, granted_at, withdrawn_at) = row?;
            Ok(ConsentRecord {
                patient: patient.clone(),
                user: user(user_id)?,
                granted_at: timestamp(granted_at)?,
                withdrawn_at: withdrawn_at.map(timestamp).transpose()?,
            })
        })
        .collect()
    }

    fn consented_patients(&self, user_id: &UserId) -> Result<Vec<PatientId>, StoreError> {
        let connection = self.connection();
        let mut statement = connection.prepare_cached(
            "SELECT DISTINCT patient_id FROM consents \
             WHERE user_id = ?1 AND withdrawn_at IS NULL ORDER BY patient_id",
        )?;
        let rows = statement.query_map([user_id.as_str()], |row| row.get::<_, String>(0))?;
        rows.map(|row| patient(row?)).collect()
    }

    fn open_break_glass(&self, grant: &BreakGlassRecord) -> Result<u64, StoreError> {
        let connection = self.connection();
        self.require_user(&connection, &grant.user)?;
        self.require_patient(&connection, &grant.patient)?;
        let id: i64 = connection.query_row(
            "INSERT INTO break_glass (user_id, patient_id, reason, opened_at, expires_at) \
             VALUES (?1, ?2, ?3, ?4, ?5) RETURNING id",
            params![
                grant.user.as_str(),
                grant.patient.as_str(),
                grant.reason,
                millis(grant.opened_at),
                millis(grant.expires_at)
            ],
            |row| row.get(0),
        )?;
        u64::try_from(id).map_err(corrupt)
    }

    fn active_break_glass(
        &self,
        user: &UserId,
        patient: &PatientId,
        now: Timestamp,
    ) -> Result<Option<Timestamp>, StoreError> {
        let expires: Option<i64> = self.connection().query_row(
            "SELECT MAX(expires_at) FROM break_glass \
             WHERE user_id = ?1 AND patient_id = ?2 AND expires_at > ?3",
            params![user.as_str(), patient.as_str(), millis(now)],
            |row| row.get(0),
        )?;
        expires.map(timestamp).transpose()
    }
}

fn failures(connection: &rusqlite::Connection, id: &UserId) -> Result<Vec<Timestamp>, StoreError> {
    let mut statement = connection
        .prepare_cached("SELECT time FROM sign_in_failures WHERE user_id = ?1 ORDER BY time")?;
    let rows = statement.query_map([id.as_str()], |row| row.get::<_, i64>(0))?;
    rows.map(|row| timestamp(row?)).collect()
}

fn on_care_team(
    connection: &rusqlite::Connection,
    user: &UserId,
    patient: &PatientId,
) -> Result<bool, StoreError> {
    Ok(connection.query_row(
        "SELECT EXISTS (SELECT 1 FROM care_team \
         WHERE user_id = ?1 AND patient_id = ?2 AND removed_at IS NULL)",
        params![user.as_str(), patient.as_str()],
        |row| row.get(0),
    )?)
}

fn consented(
    connection: &rusqlite::Connection,
    patient: &PatientId,
    user: &UserId,
) -> Result<bool, StoreError> {
    Ok(connection.query_row(
        "SELECT EXISTS (SELECT 1 FROM consents \
         WHERE patient_id = ?1 AND user_id = ?2 AND withdrawn_at IS NULL)",
        params![patient.as_str(), user.as_str()],
        |row| row.get(0),
    )?)
}

/// Re-wraps every second-factor secret not wrapped by the active key-encryption key.
pub(super) fn rewrap_totp_secrets(
    tx: &rusqlite::Transaction<'_>,
    keys: &dyn crate::seal::KeyEncryptionKeys,
) -> Result<usize, StoreError> {
    let active = i64::from(keys.active_id());
    let rows: Vec<(String, i64, Vec<u8>)> = {
        let mut statement = tx.prepare(
            "SELECT id, totp_kek_id, totp FROM users WHERE totp IS NOT NULL AND totp_kek_id != ?1",
        )?;
        let rows =
            statement.query_map([active], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))?;
        rows.collect::<Result<_, _>>()?
    };
    for (id, kek_id, blob) in &rows {
        let context = totp_context(&user(id.clone())?);
        let wrapped = WrappedKey {
            kek_id: u32::try_from(*kek_id).map_err(corrupt)?,
            blob: blob.clone(),
        };
        let padded: [u8; 32] = keys
            .unwrap_key(&wrapped, &context)?
            .try_into()
            .map_err(|_| corrupt("second-factor secret is not 32 bytes"))?;
        let rewrapped = keys.wrap(&padded, &context)?;
        tx.execute(
            "UPDATE users SET totp_kek_id = ?2, totp = ?3 WHERE id = ?1",
            params![id, i64::from(rewrapped.kek_id), rewrapped.blob],
        )?;
    }
    Ok(rows.len())
}
