//! Reading a patient's observations page by page (FHIR search), and one by its id.
//!
//! Pages are keyset-based, on (time, row id): a page after another is exact however many rows
//! arrive meanwhile, and costs the same at the end of a day as at its start.

use rusqlite::{Connection, OptionalExtension, params};
use vigil_model::phi::Phi;
use vigil_model::{DeviceId, Observation, PatientId, Quantity};

use super::clinical::{FLAG_IMPLAUSIBLE, Sealer};
use super::{millis, timestamp};
use crate::seal::{DataKey, observation_aad_into};
use crate::{ObservationQuery, StoreError, StoredObservation};

fn corrupt(e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(e.to_string())
}

type Row = (i64, String, String, i64, i64, i64, i64, Vec<u8>);

fn read_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Row> {
    Ok((
        row.get(0)?,
        row.get(1)?,
        row.get(2)?,
        row.get(3)?,
        row.get(4)?,
        row.get(5)?,
        row.get(6)?,
        row.get(7)?,
    ))
}

/// A row's cells, as stored (text and blob borrowed from wherever the row is).
struct Cells<'r> {
    id: i64,
    patient: &'r str,
    device: &'r str,
    code: i64,
    time: i64,
    sequence: i64,
    flags: i64,
    sealed: &'r [u8],
}

/// The identifiers of the rows read so far: a page is one patient's, mostly from one device,
/// so each row's identifiers are checked and built once, not once per row (a tenth of a page's
/// time went to validating the same strings again).
#[derive(Default)]
struct Known {
    patient: Option<PatientId>,
    device: Option<DeviceId>,
}

impl Known {
    fn patient(&mut self, text: &str) -> Result<PatientId, StoreError> {
        match &self.patient {
            Some(known) if known.as_str() == text => Ok(known.clone()),
            _ => {
                let patient = PatientId::new(text).map_err(corrupt)?;
                self.patient = Some(patient.clone());
                Ok(patient)
            }
        }
    }

    fn device(&mut self, text: &str) -> Result<DeviceId, StoreError> {
        match &self.device {
            Some(known) if known.as_str() == text => Ok(known.clone()),
            _ => {
                let device = DeviceId::new(text).map_err(corrupt)?;
                self.device = Some(device.clone());
                Ok(device)
            }
        }
    }
}

/// Opens the rows of one patient's data key, reusing its buffers and the identifiers it built:
/// a page of 10,000 rows read with owned cells and fresh buffers made 60,000 allocations.
struct Opener<'k> {
    key: &'k DataKey,
    aad: Vec<u8>,
    plaintext: Vec<u8>,
    known: Known,
}

impl<'k> Opener<'k> {
    fn new(key: &'k DataKey, known: Known) -> Opener<'k> {
        Opener {
            key,
            aad: Vec::with_capacity(96),
            plaintext: Vec::with_capacity(32),
            known,
        }
    }

    fn open(&mut self, cells: &Cells<'_>) -> Result<StoredObservation, StoreError> {
        let id = cells.id;
        let sequence = u64::try_from(cells.sequence).map_err(corrupt)?;
        let code = u32::try_from(cells.code).map_err(corrupt)?;
        observation_aad_into(
            &mut self.aad,
            cells.patient,
            cells.device,
            sequence,
            code,
            cells.time,
        );
        let bytes = self
            .key
            .open_into(cells.sealed, &self.aad, &mut self.plaintext)?;
        let value = <[u8; 8]>::try_from(bytes)
            .map(f64::from_be_bytes)
            .map_err(|_| corrupt("observation value is not 8 bytes"))?;
        let quantity = Quantity::from_mdc_code(code)
            .ok_or_else(|| corrupt(format!("observation {id} has an unknown quantity code")))?;
        Ok(StoredObservation {
            id,
            observation: Observation {
                device: self.known.device(cells.device)?,
                patient: Some(self.known.patient(cells.patient)?),
                quantity,
                value: Phi::new(value),
                time: timestamp(cells.time)?,
                sequence,
                implausible: cells.flags & FLAG_IMPLAUSIBLE != 0,
            },
        })
    }
}

const COLUMNS: &str = "id, patient_id, device_id, quantity, time, sequence, flags, value";

/// A page's columns: the patient is the query's, so it is not read back.
const PAGE_COLUMNS: &str = "id, device_id, quantity, time, sequence, flags, value";

/// One page of a patient's observations, oldest first. Rows are read in place: text and blobs
/// borrowed from SQLite, the value opened in a reused buffer.
pub(crate) fn page(
    connection: &Connection,
    sealer: &Sealer,
    query: &ObservationQuery,
) -> Result<Vec<StoredObservation>, StoreError> {
    let key = sealer.data_key(connection, &query.patient)?;
    // The quantity codes come from Vigil's own table, never from the request: safe to inline.
    let quantities = if query.quantities.is_empty() {
        String::new()
    } else {
        let codes: Vec<String> = query
            .quantities
            .iter()
            .map(|q| q.spec().mdc.code().to_string())
            .collect();
        format!(" AND quantity IN ({})", codes.join(","))
    };
    let (after_time, after_id) = query
        .after
        .map_or((i64::MIN, i64::MIN), |(time, id)| (millis(time), id));
    let sql = format!(
        "SELECT {PAGE_COLUMNS} FROM observations \
         WHERE patient_id = ?1 AND time >= ?2 AND time < ?3 \
         AND (time > ?4 OR (time = ?4 AND id > ?5)){quantities} \
         ORDER BY time, id LIMIT ?6"
    );
    let mut statement = connection.prepare_cached(&sql)?;
    let limit = i64::try_from(query.limit).unwrap_or(i64::MAX);
    let mut rows = statement.query(params![
        query.patient.as_str(),
        millis(query.from),
        millis(query.to),
        after_time,
        after_id,
        limit
    ])?;
    let patient = query.patient.as_str();
    let mut opener = Opener::new(
        &key,
        Known {
            patient: Some(query.patient.clone()),
            device: None,
        },
    );
    let mut out = Vec::with_capacity(query.limit.min(10_000));
    while let Some(row) = rows.next()? {
        let cells = Cells {
            id: row.get(0)?,
            patient,
            device: row.get_ref(1)?.as_str().map_err(corrupt)?,
            code: row.get(2)?,
            time: row.get(3)?,
            sequence: row.get(4)?,
            flags: row.get(5)?,
            sealed: row.get_ref(6)?.as_blob().map_err(corrupt)?,
        };
        out.push(opener.open(&cells)?);
    }
    Ok(out)
}

/// How many of a patient's observations match, ignoring the page position.
pub(crate) fn count(connection: &Connection, query: &ObservationQuery) -> Result<u64, StoreError> {
    let quantities = if query.quantities.is_empty() {
        String::new()
    } else {
        let codes: Vec<String> = query
            .quantities
            .iter()
            .map(|q| q.spec().mdc.code().to_string())
            .collect();
        format!(" AND quantity IN ({})", codes.join(","))
    };
    let sql = format!(
        "SELECT COUNT(*) FROM observations \
         WHERE patient_id = ?1 AND time >= ?2 AND time < ?3{quantities}"
    );
    let n: i64 = connection.query_row(
        &sql,
        params![query.patient.as_str(), millis(query.from), millis(query.to)],
        |row| row.get(0),
    )?;
    u64::try_from(n).map_err(corrupt)
}

/// One observation by its row id.
pub(crate) fn one(
    connection: &Connection,
    sealer: &Sealer,
    id: i64,
) -> Result<Option<StoredObservation>, StoreError> {
    let row = connection
        .query_row(
            &format!("SELECT {COLUMNS} FROM observations WHERE id = ?1"),
            [id],
            read_row,
        )
        .optional()?;
    let Some((id, patient, device, code, time, sequence, flags, sealed)) = row else {
        return Ok(None);
    };
    let key = sealer.data_key(
        connection,
        &PatientId::new(patient.as_str()).map_err(corrupt)?,
    )?;
    let cells = Cells {
        id,
        patient: &patient,
        device: &device,
        code,
        time,
        sequence,
        flags,
        sealed: &sealed,
    };
    Opener::new(&key, Known::default()).open(&cells).map(Some)
}
