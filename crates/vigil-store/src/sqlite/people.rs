//! Users and alerts.

use rusqlite::{OptionalExtension, params};
use serde::{Deserialize, Serialize};
use vigil_model::phi::Phi;
use vigil_model::{
    Alert, AlertKind, AlertStatus, DeviceId, Evidence, PatientId, Quantity, Role, Severity, UserId,
};

use super::{SqliteStore, is_constraint, millis, timestamp};
use crate::seal::SealError;
use crate::{AlertStore, StoreError, StoredAlert, UserRecord, UserStore};

fn corrupt(e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(e.to_string())
}

impl UserStore for SqliteStore {
    fn add_user(&self, user: &UserRecord) -> Result<(), StoreError> {
        let connection = self.connection();
        let inserted = connection.execute(
            "INSERT INTO users (id, role, created_at, disabled_at) VALUES (?1, ?2, ?3, ?4)",
            params![
                user.id.as_str(),
                user.role.as_str(),
                millis(user.created_at),
                user.disabled_at.map(millis)
            ],
        );
        match inserted {
            Err(e) if is_constraint(&e) => Err(StoreError::UserExists(user.id.clone())),
            other => other.map(|_| ()).map_err(StoreError::from),
        }
    }

    fn user(&self, id: &UserId) -> Result<Option<UserRecord>, StoreError> {
        let connection = self.connection();
        connection
            .query_row(
                "SELECT id, role, created_at, disabled_at FROM users WHERE id = ?1",
                [id.as_str()],
                user_row,
            )
            .optional()?
            .map(user_record)
            .transpose()
    }

    fn users(&self) -> Result<Vec<UserRecord>, StoreError> {
        let connection = self.connection();
        let mut statement = connection
            .prepare("SELECT id, role, created_at, disabled_at FROM users ORDER BY id")?;
        let rows = statement.query_map([], user_row)?;
        rows.map(|row| user_record(row?)).collect()
    }

    fn disable_user(&self, id: &UserId, now: vigil_model::Timestamp) -> Result<(), StoreError> {
        let connection = self.connection();
        let updated = connection.execute(
            "UPDATE users SET disabled_at = COALESCE(disabled_at, ?2) WHERE id = ?1",
            params![id.as_str(), millis(now)],
        )?;
        if updated == 0 {
            return Err(StoreError::NoSuchUser(id.clone()));
        }
        Ok(())
    }
}

type UserRow = (String, String, i64, Option<i64>);

fn user_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<UserRow> {
    UserRow::try_from(row)
}

fn user_record((id, role, created_at, disabled_at): UserRow) -> Result<UserRecord, StoreError> {
    Ok(UserRecord {
        id: UserId::new(id).map_err(corrupt)?,
        role: role.parse::<Role>().map_err(corrupt)?,
        created_at: timestamp(created_at)?,
        disabled_at: disabled_at.map(timestamp).transpose()?,
    })
}

/// Non-PHI evidence, stored in clear.
#[derive(Serialize, Deserialize)]
struct Fact {
    name: String,
    value: String,
}

/// Clinical evidence, sealed.
#[derive(Serialize, Deserialize)]
struct Clinical {
    quantity: Quantity,
    value: f64,
}

fn name_of<T: Serialize>(value: &T) -> Result<String, StoreError> {
    serde_json::to_value(value)
        .map_err(corrupt)?
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| corrupt("not a name"))
}

fn parse_name<T: for<'de> Deserialize<'de>>(name: &str) -> Result<T, StoreError> {
    serde_json::from_value(serde_json::Value::String(name.to_owned())).map_err(corrupt)
}

fn alert_aad(patient: &str, time: i64, kind: &str) -> Vec<u8> {
    format!("vigil/alert/v1\0{patient}\0{time}\0{kind}").into_bytes()
}

type AlertRow = (
    i64,
    i64,
    String,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    String,
    Option<Vec<u8>>,
    String,
    Option<String>,
    Option<i64>,
);

const ALERT_COLUMNS: &str = "id, time, severity, kind, device_id, patient_id, technique, facts, clinical, status, handled_by, handled_at";

fn alert_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<AlertRow> {
    AlertRow::try_from(row)
}

impl SqliteStore {
    fn stored_alert(
        &self,
        connection: &rusqlite::Connection,
        row: AlertRow,
    ) -> Result<StoredAlert, StoreError> {
        let (id, time, severity, kind, device, patient, technique, facts, clinical, status, by, at) =
            row;
        let facts: Vec<Fact> = serde_json::from_str(&facts).map_err(corrupt)?;
        let mut evidence: Vec<Evidence> = facts
            .into_iter()
            .map(|f| Evidence::Fact {
                name: f.name,
                value: f.value,
            })
            .collect();
        let patient = patient.map(PatientId::new).transpose().map_err(corrupt)?;
        if let (Some(sealed), Some(patient)) = (&clinical, &patient) {
            // Clinical evidence of an erased patient is gone with their key; the alert stays.
            match self.sealer.data_key(connection, patient) {
                Ok(key) => {
                    let json = key.open(sealed, &alert_aad(patient.as_str(), time, &kind))?;
                    let values: Vec<Clinical> = serde_json::from_slice(&json).map_err(corrupt)?;
                    evidence.extend(values.into_iter().map(|c| Evidence::Clinical {
                        quantity: c.quantity,
                        value: Phi::new(c.value),
                    }));
                }
                Err(StoreError::Seal(SealError::Erased)) => {}
                Err(other) => return Err(other),
            }
        }
        Ok(StoredAlert {
            id: u64::try_from(id).map_err(corrupt)?,
            alert: Alert {
                time: timestamp(time)?,
                severity: parse_name::<Severity>(&severity)?,
                kind: parse_name::<AlertKind>(&kind)?,
                device: device.map(DeviceId::new).transpose().map_err(corrupt)?,
                patient,
                evidence,
                attack_technique: technique,
            },
            status: status.parse::<AlertStatus>().map_err(corrupt)?,
            handled: match (by, at) {
                (Some(by), Some(at)) => Some((UserId::new(by).map_err(corrupt)?, timestamp(at)?)),
                _ => None,
            },
        })
    }
}

impl AlertStore for SqliteStore {
    fn add_alert(&self, alert: &Alert) -> Result<u64, StoreError> {
        let kind = name_of(&alert.kind)?;
        let time = alert.time.unix_millis();
        let mut facts = Vec::new();
        let mut clinical = Vec::new();
        for item in &alert.evidence {
            match item {
                Evidence::Fact { name, value } => facts.push(Fact {
                    name: name.clone(),
                    value: value.clone(),
                }),
                Evidence::Clinical { quantity, value } => clinical.push(Clinical {
                    quantity: *quantity,
                    value: *value.expose(),
                }),
            }
        }
        let connection = self.connection();
        let sealed = if clinical.is_empty() {
            None
        } else {
            let Some(patient) = &alert.patient else {
                return Err(StoreError::Corrupt(
                    "clinical evidence needs the alert's patient".into(),
                ));
            };
            let key = self.sealer.data_key(&connection, patient)?;
            let json = serde_json::to_vec(&clinical).map_err(corrupt)?;
            Some(key.seal(&json, &alert_aad(patient.as_str(), time, &kind))?)
        };
        let id: i64 = connection.query_row(
            "INSERT INTO alerts (time, severity, kind, device_id, patient_id, technique, facts, clinical, status) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 'open') RETURNING id",
            params![
                time,
                name_of(&alert.severity)?,
                kind,
                alert.device.as_ref().map(DeviceId::as_str),
                alert.patient.as_ref().map(PatientId::as_str),
                alert.attack_technique,
                serde_json::to_string(&facts).map_err(corrupt)?,
                sealed
            ],
            |row| row.get(0),
        )?;
        u64::try_from(id).map_err(corrupt)
    }

    fn alert(&self, id: u64) -> Result<Option<StoredAlert>, StoreError> {
        let connection = self.connection();
        let row = connection
            .query_row(
                &format!("SELECT {ALERT_COLUMNS} FROM alerts WHERE id = ?1"),
                [i64::try_from(id).unwrap_or(i64::MAX)],
                alert_row,
            )
            .optional()?;
        row.map(|row| self.stored_alert(&connection, row))
            .transpose()
    }

    fn alerts(
        &self,
        status: Option<AlertStatus>,
        limit: usize,
    ) -> Result<Vec<StoredAlert>, StoreError> {
        let connection = self.connection();
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows: Vec<AlertRow> = match status {
            Some(status) => {
                let mut statement = connection.prepare(&format!(
                    "SELECT {ALERT_COLUMNS} FROM alerts WHERE status = ?1 ORDER BY time DESC, id DESC LIMIT ?2"
                ))?;
                let rows = statement.query_map(params![status.as_str(), limit], alert_row)?;
                rows.collect::<Result<_, _>>()?
            }
            None => {
                let mut statement = connection.prepare(&format!(
                    "SELECT {ALERT_COLUMNS} FROM alerts ORDER BY time DESC, id DESC LIMIT ?1"
                ))?;
                let rows = statement.query_map(params![limit], alert_row)?;
                rows.collect::<Result<_, _>>()?
            }
        };
        rows.into_iter()
            .map(|row| self.stored_alert(&connection, row))
            .collect()
    }

    fn alerts_after(&self, after: u64, limit: usize) -> Result<Vec<StoredAlert>, StoreError> {
        let connection = self.connection();
        let after = i64::try_from(after).unwrap_or(i64::MAX);
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let mut rows: Vec<AlertRow> = {
            let mut statement = connection.prepare(&format!(
                "SELECT {ALERT_COLUMNS} FROM alerts WHERE id > ?1 ORDER BY id DESC LIMIT ?2"
            ))?;
            let rows = statement.query_map(params![after, limit], alert_row)?;
            rows.collect::<Result<_, _>>()?
        };
        rows.reverse();
        rows.into_iter()
            .map(|row| self.stored_alert(&connection, row))
            .collect()
    }

    fn last_alert_id(&self) -> Result<u64, StoreError> {
        let id: Option<i64> =
            self.connection()
                .query_row("SELECT max(id) FROM alerts", [], |row| row.get(0))?;
        Ok(id.and_then(|id| u64::try_from(id).ok()).unwrap_or(0))
    }

    fn export_cursor(&self, sink: &str) -> Result<Option<u64>, StoreError> {
        let id: Option<i64> = self
            .connection()
            .query_row(
                "SELECT delivered_through FROM export_cursors WHERE sink = ?1",
                params![sink],
                |row| row.get(0),
            )
            .optional()?;
        Ok(id.and_then(|id| u64::try_from(id).ok()))
    }

    fn set_export_cursor(&self, sink: &str, id: u64) -> Result<(), StoreError> {
        let id = i64::try_from(id).unwrap_or(i64::MAX);
        self.connection().execute(
            "INSERT INTO export_cursors (sink, delivered_through) VALUES (?1, ?2)
             ON CONFLICT (sink) DO UPDATE
             SET delivered_through = max(delivered_through, excluded.delivered_through)",
            params![sink, id],
        )?;
        Ok(())
    }

    fn set_alert_status(
        &self,
        id: u64,
        status: AlertStatus,
        by: &UserId,
        now: vigil_model::Timestamp,
    ) -> Result<(), StoreError> {
        let connection = self.connection();
        let updated = connection.execute(
            "UPDATE alerts SET status = ?2, handled_by = ?3, handled_at = ?4 WHERE id = ?1",
            params![
                i64::try_from(id).unwrap_or(i64::MAX),
                status.as_str(),
                by.as_str(),
                millis(now)
            ],
        )?;
        if updated == 0 {
            return Err(StoreError::NoSuchAlert(id));
        }
        Ok(())
    }
}
