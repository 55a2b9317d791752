//! Patients, device assignments and reading observations; the sealing of all of it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use aws_lc_rs::digest;
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use vigil_model::phi::Phi;
use vigil_model::{DeviceId, Observation, PatientId, Quantity, Timestamp};

use super::committer::PreparedRow;
use super::{SqliteStore, is_constraint, millis, row_exists, timestamp};
use crate::seal::{
    DataKey, KeyEncryptionKeys, SealError, WrappedKey, new_key_material, observation_aad,
    observation_aad_into, patient_field_aad,
};
use crate::{
    Assignment, ClinicalStore, Completion, Demographics, Logged, ObservationQuery, PatientRecord,
    Receipt, StoreError, StoredObservation,
};

/// `flags` bit: the value is outside what is physically possible.
pub(crate) const FLAG_IMPLAUSIBLE: i64 = 1;

/// Patients' data keys: unwrapped on first use, cached, and checked against the database on
/// every use so that an erasure by another process takes effect at once.
pub(crate) struct Sealer {
    keys: Arc<dyn KeyEncryptionKeys>,
    cache: Mutex<HashMap<String, Arc<DataKey>>>,
}

impl Sealer {
    pub(crate) fn new(keys: Arc<dyn KeyEncryptionKeys>) -> Sealer {
        Sealer {
            keys,
            cache: Mutex::new(HashMap::new()),
        }
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<DataKey>>> {
        self.cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The keyring's key-encryption keys.
    pub(crate) fn keys(&self) -> &dyn KeyEncryptionKeys {
        self.keys.as_ref()
    }

    /// A fresh data key for a new patient, and its wrapped form to store.
    fn new_key(&self, patient: &PatientId) -> Result<(DataKey, WrappedKey), StoreError> {
        let material = new_key_material()?;
        let wrapped = self.keys.wrap(&material, patient.as_str().as_bytes())?;
        Ok((DataKey::from_bytes(&material)?, wrapped))
    }

    /// The data key of `patient`.
    pub(crate) fn data_key(
        &self,
        connection: &Connection,
        patient: &PatientId,
    ) -> Result<Arc<DataKey>, StoreError> {
        let row: Option<(Option<i64>, Option<Vec<u8>>)> = connection
            .query_row(
                "SELECT kek_id, wrapped FROM patient_keys WHERE patient_id = ?1",
                [patient.as_str()],
                |row| Ok((row.get(0)?, row.get(1)?)),
            )
            .optional()?;
        let (kek_id, wrapped) = match row {
            None => return Err(StoreError::NoSuchPatient(patient.clone())),
            Some((Some(kek_id), Some(wrapped))) => (kek_id, wrapped),
            Some(_) => {
                self.cache().remove(patient.as_str());
                return Err(StoreError::Seal(SealError::Erased));
            }
        };
        if let Some(key) = self.cache().get(patient.as_str()) {
            return Ok(Arc::clone(key));
        }
        let wrapped = WrappedKey {
            kek_id: u32::try_from(kek_id).map_err(|e| StoreError::Corrupt(e.to_string()))?,
            blob: wrapped,
        };
        let material = self
            .keys
            .unwrap_key(&wrapped, patient.as_str().as_bytes())?;
        let key = Arc::new(DataKey::from_bytes(&material)?);
        self.cache()
            .insert(patient.as_str().to_owned(), Arc::clone(&key));
        Ok(key)
    }

    /// The cached data key of `patient`, without checking the database. Only for sealing new
    /// values: the committer re-checks erasure in the transaction that stores them.
    pub(crate) fn cached(&self, patient: &PatientId) -> Option<Arc<DataKey>> {
        self.cache().get(patient.as_str()).cloned()
    }

    fn forget(&self, patient: &PatientId) {
        self.cache().remove(patient.as_str());
    }
}

/// The hash of an observation row's content: every column that describes the observation
/// except the row id, the value as sealed (so checking needs no key). Lengths are prefixed, so
/// no two rows encode alike.
pub(crate) fn content_hash(
    patient: &str,
    device: &str,
    quantity: i64,
    time: i64,
    sequence: i64,
    flags: i64,
    value: &[u8],
) -> [u8; 32] {
    let mut context = digest::Context::new(&digest::SHA256);
    context.update(b"vigil/observation-content/v1");
    for field in [
        patient.as_bytes(),
        device.as_bytes(),
        &quantity.to_be_bytes(),
        &time.to_be_bytes(),
        &sequence.to_be_bytes(),
        &flags.to_be_bytes(),
        value,
    ] {
        context.update(&u64::try_from(field.len()).unwrap_or(u64::MAX).to_be_bytes());
        context.update(field);
    }
    let mut hash = [0u8; 32];
    hash.copy_from_slice(context.finish().as_ref());
    hash
}

/// The hash of a stored row, as its batch leaf records it: its id and its content hash.
/// The patient `device` served at `at`, if any (inside a caller's transaction or not).
pub(crate) fn patient_at(
    connection: &Connection,
    device: &DeviceId,
    at: Timestamp,
) -> Result<Option<PatientId>, StoreError> {
    let patient: Option<String> = connection
        .query_row(
            "SELECT patient_id FROM device_assignments WHERE device_id = ?1 AND from_time <= ?2 \
             AND (to_time IS NULL OR to_time > ?2) ORDER BY from_time DESC LIMIT 1",
            params![device.as_str(), millis(at)],
            |row| row.get(0),
        )
        .optional()?;
    patient
        .map(|p| PatientId::new(p).map_err(|e| StoreError::Corrupt(e.to_string())))
        .transpose()
}

pub(crate) fn row_hash(id: i64, content: &[u8; 32]) -> [u8; 32] {
    let mut context = digest::Context::new(&digest::SHA256);
    context.update(b"vigil/observation-row/v1");
    context.update(&id.to_be_bytes());
    context.update(content);
    let mut hash = [0u8; 32];
    hash.copy_from_slice(context.finish().as_ref());
    hash
}

fn seal_text(
    key: &DataKey,
    patient: &PatientId,
    field: &str,
    text: &str,
) -> Result<Vec<u8>, StoreError> {
    Ok(key.seal(text.as_bytes(), &patient_field_aad(patient.as_str(), field))?)
}

fn open_text(
    key: &DataKey,
    patient: &PatientId,
    field: &str,
    sealed: &[u8],
) -> Result<String, StoreError> {
    let bytes = key.open(sealed, &patient_field_aad(patient.as_str(), field))?;
    String::from_utf8(bytes)
        .map_err(|_| StoreError::Corrupt(format!("patient {patient} {field} is not text")))
}

/// Checkpoints the write-ahead log into the database and truncates it, retrying while readers
/// hold old snapshots.
fn purge_write_ahead_log(connection: &Connection) -> Result<(), StoreError> {
    for _ in 0..200 {
        let busy: i64 =
            connection.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |row| row.get(0))?;
        if busy == 0 {
            return Ok(());
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    Err(StoreError::PurgeIncomplete)
}

impl SqliteStore {
    /// Seals and hashes observations on the caller's thread, so that callers on every core
    /// share the work and the committer only inserts.
    pub(super) fn prepare(
        &self,
        observations: &[Observation],
    ) -> Result<Vec<PreparedRow>, StoreError> {
        let mut keys: Vec<(&PatientId, Arc<DataKey>)> = Vec::new();
        let mut rows = Vec::with_capacity(observations.len());
        let mut aad = Vec::with_capacity(128);
        for observation in observations {
            let patient = observation
                .patient
                .as_ref()
                .ok_or_else(|| StoreError::NoPatient(observation.device.clone()))?;
            let key = match keys.iter().find(|(p, _)| *p == patient) {
                Some((_, key)) => Arc::clone(key),
                None => {
                    let key = match self.sealer.cached(patient) {
                        Some(key) => key,
                        None => {
                            let connection = self.connection();
                            self.sealer.data_key(&connection, patient).map_err(|e| {
                                StoreError::Refused {
                                    patient: patient.clone(),
                                    reason: e.to_string(),
                                }
                            })?
                        }
                    };
                    keys.push((patient, Arc::clone(&key)));
                    key
                }
            };
            let quantity = observation.quantity.spec().mdc.code();
            let time = observation.time.unix_millis();
            let sequence = i64::try_from(observation.sequence)
                .map_err(|_| StoreError::Corrupt("sequence number beyond 2^63".into()))?;
            let flags = if observation.implausible {
                FLAG_IMPLAUSIBLE
            } else {
                0
            };
            observation_aad_into(
                &mut aad,
                patient.as_str(),
                observation.device.as_str(),
                observation.sequence,
                quantity,
                time,
            );
            let sealed = key.seal(&observation.value.expose().to_be_bytes(), &aad)?;
            let content = content_hash(
                patient.as_str(),
                observation.device.as_str(),
                i64::from(quantity),
                time,
                sequence,
                flags,
                &sealed,
            );
            rows.push(PreparedRow {
                patient: patient.clone(),
                device: observation.device.clone(),
                quantity: i64::from(quantity),
                time,
                sequence,
                flags,
                sealed,
                content,
            });
        }
        Ok(rows)
    }
}

/// created_at, sealed name, sealed MRN, sealed birth date, erased_at.
type PatientRow = (i64, Vec<u8>, Vec<u8>, Vec<u8>, Option<i64>);

impl ClinicalStore for SqliteStore {
    fn add_patient(
        &self,
        id: &PatientId,
        demographics: &Demographics,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let (key, wrapped) = self.sealer.new_key(id)?;
        let birth = demographics.birth_date.expose().to_string();
        let name = seal_text(&key, id, "name", demographics.name.expose())?;
        let mrn = seal_text(&key, id, "mrn", demographics.mrn.expose())?;
        let birth_date = seal_text(&key, id, "birth_date", &birth)?;
        let mut connection = self.connection();
        let tx = connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let inserted = tx.execute(
            "INSERT INTO patients (id, created_at, name, mrn, birth_date) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![id.as_str(), millis(now), name, mrn, birth_date],
        );
        match inserted {
            Err(e) if is_constraint(&e) => return Err(StoreError::PatientExists(id.clone())),
            other => other?,
        };
        tx.execute(
            "INSERT INTO patient_keys (patient_id, kek_id, wrapped) VALUES (?1, ?2, ?3)",
            params![id.as_str(), i64::from(wrapped.kek_id), wrapped.blob],
        )?;
        tx.commit()?;
        Ok(())
    }

    fn patient(&self, id: &PatientId) -> Result<Option<PatientRecord>, StoreError> {
        let connection = self.connection();
        let row: Option<PatientRow> = connection
            .query_row(
                "SELECT created_at, name, mrn, birth_date, erased_at FROM patients WHERE id = ?1",
                [id.as_str()],
                |row| {
                    Ok((
                        row.get(0)?,
                        row.get(1)?,
                        row.get(2)?,
                        row.get(3)?,
                        row.get(4)?,
                    ))
                },
            )
            .optional()?;
        let Some((created_at, name, mrn, birth_date, erased_at)) = row else {
            return Ok(None);
        };
        let demographics = if erased_at.is_some() {
            None
        } else {
            let key = self.sealer.data_key(&connection, id)?;
            let birth = open_text(&key, id, "birth_date", &birth_date)?;
            let format = time::macros::format_description!("[year]-[month]-[day]");
            let birth = time::Date::parse(&birth, &format)
                .map_err(|_| StoreError::Corrupt(format!("patient {id} birth date")))?;
            Some(Demographics {
                name: Phi::new(open_text(&key, id, "name", &name)?),
                mrn: Phi::new(open_text(&key, id, "mrn", &mrn)?),
                birth_date: Phi::new(birth),
            })
        };
        Ok(Some(PatientRecord {
            id: id.clone(),
            created_at: timestamp(created_at)?,
            demographics,
            erased_at: erased_at.map(timestamp).transpose()?,
        }))
    }

    fn assign_device(
        &self,
        device: &DeviceId,
        patient: &PatientId,
        from: Timestamp,
    ) -> Result<(), StoreError> {
        let mut connection = self.connection();
        let tx = connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let known: bool = tx.query_row(
            "SELECT EXISTS (SELECT 1 FROM patients WHERE id = ?1 AND erased_at IS NULL)",
            [patient.as_str()],
            |row| row.get(0),
        )?;
        if !known {
            return Err(StoreError::NoSuchPatient(patient.clone()));
        }
        tx.execute(
            "UPDATE device_assignments SET to_time = ?2 WHERE device_id = ?1 AND to_time IS NULL",
            params![device.as_str(), millis(from)],
        )?;
        let inserted = tx.execute(
            "INSERT INTO device_assignments (device_id, patient_id, from_time) VALUES (?1, ?2, ?3)",
            params![device.as_str(), patient.as_str(), millis(from)],
        );
        match inserted {
            Err(e) if is_constraint(&e) => return Err(StoreError::NoSuchDevice(device.clone())),
            other => other?,
        };
        tx.commit()?;
        Ok(())
    }

    fn patient_of(
        &self,
        device: &DeviceId,
        at: Timestamp,
    ) -> Result<Option<PatientId>, StoreError> {
        patient_at(&self.connection(), device, at)
    }

    fn commit_observations(&self, observations: Vec<Observation>) -> Result<Receipt, StoreError> {
        let rows = self.prepare(&observations)?;
        let (reply, receipt) = std::sync::mpsc::sync_channel(1);
        self.submit_rows(
            rows,
            None,
            Box::new(move |result| {
                let _ = reply.send(result);
            }),
        );
        receipt.recv().map_err(|_| StoreError::CommitterStopped)?
    }

    fn submit_observations(&self, observations: Vec<Observation>, done: Completion) {
        match self.prepare(&observations) {
            Ok(rows) => self.submit_rows(rows, None, done),
            Err(error) => done(Err(error)),
        }
    }

    fn submit_observations_logged(
        &self,
        observations: Vec<Observation>,
        logged: Logged,
        applied: Completion,
    ) {
        match self.prepare(&observations) {
            Ok(rows) => self.submit_rows(rows, Some(logged), applied),
            Err(error) => super::refuse(Some(logged), applied, error),
        }
    }

    fn observations(
        &self,
        patient: &PatientId,
        quantity: Quantity,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<Vec<Observation>, StoreError> {
        self.caught_up()?;
        let connection = self.connection();
        let key = self.sealer.data_key(&connection, patient)?;
        let code = quantity.spec().mdc.code();
        let mut statement = connection.prepare_cached(
            "SELECT device_id, time, sequence, flags, value FROM observations \
             WHERE patient_id = ?1 AND quantity = ?2 AND time >= ?3 AND time < ?4 ORDER BY time, id",
        )?;
        let rows = statement.query_map(
            params![patient.as_str(), i64::from(code), millis(from), millis(to)],
            |row| {
                Ok((
                    row.get::<_, String>(0)?,
                    row.get::<_, i64>(1)?,
                    row.get::<_, i64>(2)?,
                    row.get::<_, i64>(3)?,
                    row.get::<_, Vec<u8>>(4)?,
                ))
            },
        )?;
        rows.map(|row| {
            let (device, time, sequence, flags, sealed) = row?;
            let aad = observation_aad(
                patient.as_str(),
                &device,
                u64::try_from(sequence).unwrap_or(0),
                code,
                time,
            );
            let bytes = key.open(&sealed, &aad)?;
            let value = <[u8; 8]>::try_from(bytes.as_slice())
                .map(f64::from_be_bytes)
                .map_err(|_| StoreError::Corrupt("observation value is not 8 bytes".into()))?;
            Ok(Observation {
                device: DeviceId::new(device).map_err(|e| StoreError::Corrupt(e.to_string()))?,
                patient: Some(patient.clone()),
                quantity,
                value: Phi::new(value),
                time: timestamp(time)?,
                sequence: u64::try_from(sequence)
                    .map_err(|e| StoreError::Corrupt(e.to_string()))?,
                implausible: flags & FLAG_IMPLAUSIBLE != 0,
            })
        })
        .collect()
    }

    fn observation_page(
        &self,
        query: &ObservationQuery,
    ) -> Result<Vec<StoredObservation>, StoreError> {
        self.caught_up()?;
        super::pages::page(&self.connection(), &self.sealer, query)
    }

    fn count_observations(&self, query: &ObservationQuery) -> Result<u64, StoreError> {
        self.caught_up()?;
        super::pages::count(&self.connection(), query)
    }

    fn observation(&self, id: i64) -> Result<Option<StoredObservation>, StoreError> {
        self.caught_up()?;
        super::pages::one(&self.connection(), &self.sealer, id)
    }

    fn assignments_of(&self, patient: &PatientId) -> Result<Vec<Assignment>, StoreError> {
        let connection = self.connection();
        let mut statement = connection.prepare_cached(
            "SELECT device_id, from_time, to_time FROM device_assignments \
             WHERE patient_id = ?1 ORDER BY from_time, device_id",
        )?;
        let rows = statement.query_map([patient.as_str()], |row| {
            Ok((
                row.get::<_, String>(0)?,
                row.get::<_, i64>(1)?,
                row.get::<_, Option<i64>>(2)?,
            ))
        })?;
        rows.map(|row| {
            let (device, from, to) = row?;
            Ok(Assignment {
                device: DeviceId::new(device).map_err(|e| StoreError::Corrupt(e.to_string()))?,
                patient: patient.clone(),
                from: timestamp(from)?,
                to: to.map(timestamp).transpose()?,
            })
        })
        .collect()
    }

    fn erase_patient(&self, id: &PatientId, now: Timestamp) -> Result<(), StoreError> {
        let mut connection = self.connection();
        let tx = connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let updated = tx.execute(
            "UPDATE patients SET erased_at = ?2 WHERE id = ?1 AND erased_at IS NULL",
            params![id.as_str(), millis(now)],
        )?;
        if updated == 0 {
            let exists = row_exists(&tx, "patients", id.as_str())?;
            if !exists {
                return Err(StoreError::NoSuchPatient(id.clone()));
            }
        }
        // secure_delete overwrites the old key bytes in the page.
        tx.execute(
            "UPDATE patient_keys SET kek_id = NULL, wrapped = NULL WHERE patient_id = ?1",
            [id.as_str()],
        )?;
        tx.execute(
            "UPDATE device_assignments SET to_time = ?2 WHERE patient_id = ?1 AND to_time IS NULL",
            params![id.as_str(), millis(now)],
        )?;
        // Their devices' queued messages could no longer be opened: remove them.
        tx.execute("DELETE FROM outbox WHERE patient_id = ?1", [id.as_str()])?;
        tx.commit()?;
        self.sealer.forget(id);
        // The write-ahead log still holds the page as it was, key included, until a checkpoint
        // copies the new page into the database and empties the log.
        purge_write_ahead_log(&connection)
    }

    fn rewrap_data_keys(&self) -> Result<usize, StoreError> {
        let mut connection = self.connection();
        let tx = connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let active = i64::from(self.sealer.keys.active_id());
        let rows: Vec<(String, i64, Vec<u8>)> = {
            let mut statement = tx.prepare(
                "SELECT patient_id, kek_id, wrapped FROM patient_keys \
                 WHERE wrapped IS NOT NULL AND kek_id != ?1",
            )?;
            let rows =
                statement.query_map([active], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))?;
            rows.collect::<Result<_, _>>()?
        };
        for (patient, kek_id, blob) in &rows {
            let wrapped = WrappedKey {
                kek_id: u32::try_from(*kek_id).map_err(|e| StoreError::Corrupt(e.to_string()))?,
                blob: blob.clone(),
            };
            let material = self.sealer.keys.unwrap_key(&wrapped, patient.as_bytes())?;
            let material: [u8; 32] = material
                .try_into()
                .map_err(|_| StoreError::Corrupt("data key is not 32 bytes".into()))?;
            let rewrapped = self.sealer.keys.wrap(&material, patient.as_bytes())?;
            tx.execute(
                "UPDATE patient_keys SET kek_id = ?2, wrapped = ?3 WHERE patient_id = ?1",
                params![patient, i64::from(rewrapped.kek_id), rewrapped.blob],
            )?;
        }
        // Second-factor secrets are wrapped by the same keyring: re-wrapped in the same
        // transaction, so that retiring the old key never strands a user.
        super::access::rewrap_totp_secrets(&tx, self.sealer.keys())?;
        tx.commit()?;
        Ok(rows.len())
    }
}
