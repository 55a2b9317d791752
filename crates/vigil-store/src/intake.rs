//! The intake log of ADR 0014: segment files of records, synced in groups, read back on open,
//! recycled once applied. `sqlite/intake_stage.rs` puts it on the ingest path.
//!
//! A record is `[length: u32 LE][position: u64 LE][check: 8 bytes][payload]`, the check being
//! the first 8 bytes of SHA-256 over the length, the position and the payload. Records are
//! numbered from 0 across segments (their *position*); a segment is named after the position of
//! its first record (`00000000000000000042.log`), and its records are read until one is cut
//! short, fails its check or bears another position. What follows is the end of the log in the
//! last segment (a write the crash interrupted, never acknowledged: it is cut off). In any
//! other segment the records must reach exactly the next segment's first position, or opening
//! fails rather than skip acknowledged data.
//!
//! Applied segments are not deleted but kept as spares (`…42.spare`, at most [`SPARES`]) and
//! renamed into the next segment when the current one is full: the records are then written
//! over blocks the file already has, so syncing them changes no file size and waits for no
//! file-system journal commit, and no deletion (with this machine's online discard, 20–180 ms
//! on the appending thread, measured) ever runs. The stale records a spare still holds bear
//! older positions, so they read as the end of the log.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::{DirBuilderExt, FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use aws_lc_rs::digest::{Context, SHA256};

use crate::StoreError;

/// Largest record payload (a job of 512 readings is about 100 KB).
pub const MAX_RECORD: usize = 1 << 20;
/// Bytes before a record's payload: its length, its position and its check.
pub const HEADER: usize = 4 + 8 + CHECK;
/// Applied segments kept for reuse; more are deleted.
pub const SPARES: usize = 2;
const CHECK: usize = 8;
const SUFFIX: &str = ".log";
const SPARE_SUFFIX: &str = ".spare";

/// An open intake log: appends go to its last segment.
#[derive(Debug)]
pub struct IntakeLog {
    dir: PathBuf,
    segments: Vec<u64>,
    spares: Vec<PathBuf>,
    current: File,
    /// Where the next record is written in the current segment.
    offset: u64,
    next: u64,
    segment_limit: u64,
    /// Set when a write or sync failed: the file may hold a partial record, or pages the
    /// kernel dropped (a later sync can succeed without them), so nothing more is appended
    /// until the log is opened again and its tail checked.
    failed: bool,
}

impl IntakeLog {
    /// Opens the log in `dir` (created, 0700, if missing), cuts a torn tail, and hands `replay`
    /// every record at or after position `from`, in order. Segments grow to about
    /// `segment_limit` bytes.
    pub fn open(
        dir: &Path,
        segment_limit: u64,
        from: u64,
        mut replay: impl FnMut(u64, &[u8]) -> Result<(), StoreError>,
    ) -> Result<IntakeLog, StoreError> {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|source| file_error(dir, source))?;
        let (segments, spares) = list(dir)?;
        // A log with no segment yet continues the numbering after what was applied.
        let mut next = segments.first().copied().unwrap_or(from);
        if next > from {
            // Segments are recycled only once applied: records after `from` are missing.
            return Err(StoreError::Corrupt(format!(
                "the intake log begins at record {next}, after record {from} it still owes"
            )));
        }
        let mut offset = 0;
        for (index, &first) in segments.iter().enumerate() {
            if first != next {
                return Err(StoreError::Corrupt(format!(
                    "intake segment {first} follows records up to {next}"
                )));
            }
            let path = segment_path(dir, first);
            let bytes = std::fs::read(&path).map_err(|source| file_error(&path, source))?;
            let (records, valid) = decode(&bytes, first);
            for payload in records {
                if next >= from {
                    replay(next, payload)?;
                }
                next += 1;
            }
            match segments.get(index + 1) {
                // The records must lead exactly to the next segment (checked at its turn).
                Some(&following) if following != next => {
                    return Err(StoreError::Corrupt(format!(
                        "intake segment {first} is damaged at byte {valid}"
                    )));
                }
                Some(_) => {}
                None => {
                    if valid < bytes.len() {
                        cut(&path, valid)?;
                    }
                    offset = u64::try_from(valid).unwrap_or(u64::MAX);
                }
            }
        }
        let mut segments = segments;
        if next < from {
            // The log ends before what the database has applied (its last segments were moved
            // away after damage, or lost): every record left is applied. Numbering goes on
            // after `from`, or a later open would take new records for applied ones.
            for first in segments.drain(..) {
                let path = segment_path(dir, first);
                std::fs::remove_file(&path).map_err(|source| file_error(&path, source))?;
            }
            next = from;
            offset = 0;
        }
        let (segments, current) = match segments.last() {
            Some(&last) => {
                let current = open_for_writing(&segment_path(dir, last))?;
                (segments, current)
            }
            None => (vec![next], create_segment(dir, next)?),
        };
        Ok(IntakeLog {
            dir: dir.to_owned(),
            segments,
            spares,
            current,
            offset,
            next,
            segment_limit,
            failed: false,
        })
    }

    /// Appends `payload` (not yet synced); returns its position.
    pub fn append(&mut self, payload: &[u8]) -> Result<u64, StoreError> {
        self.usable()?;
        if payload.len() > MAX_RECORD {
            return Err(StoreError::Corrupt(format!(
                "an intake record of {} bytes is over the {MAX_RECORD}-byte limit",
                payload.len()
            )));
        }
        if self.offset >= self.segment_limit {
            // The full segment is synced before the next one exists, so that no later record
            // can be durable while an earlier one is not.
            self.sync()?;
            self.current = self.next_segment().inspect_err(|_| self.failed = true)?;
            self.segments.push(self.next);
            self.offset = 0;
        }
        let record = encode(self.next, payload);
        if let Err(source) = self.current.write_all_at(&record, self.offset) {
            self.failed = true;
            return Err(file_error(&self.dir, source));
        }
        self.offset += u64::try_from(record.len()).unwrap_or(u64::MAX);
        let position = self.next;
        self.next += 1;
        Ok(position)
    }

    /// A file for the segment starting at the next position: a spare renamed, or a new one.
    fn next_segment(&mut self) -> Result<File, StoreError> {
        let Some(spare) = self.spares.pop() else {
            return create_segment(&self.dir, self.next);
        };
        let path = segment_path(&self.dir, self.next);
        std::fs::rename(&spare, &path).map_err(|source| file_error(&spare, source))?;
        // The new name must survive a crash as surely as the records written into it.
        sync_dir(&self.dir)?;
        open_for_writing(&path)
    }

    /// Makes every appended record durable.
    pub fn sync(&mut self) -> Result<(), StoreError> {
        self.usable()?;
        self.current.sync_data().map_err(|source| {
            self.failed = true;
            file_error(&self.dir, source)
        })
    }

    fn usable(&self) -> Result<(), StoreError> {
        if self.failed {
            Err(StoreError::Corrupt(
                "the intake log failed to write; it accepts records again once reopened".into(),
            ))
        } else {
            Ok(())
        }
    }

    /// The position the next record will have.
    pub fn next_position(&self) -> u64 {
        self.next
    }

    /// Retires the segments whose every record is before position `applied` (they are in the
    /// database): kept as spares up to [`SPARES`], deleted beyond. The segment being written is
    /// kept. A retirement a crash undoes is harmless: the segment's records are before what
    /// the database has applied.
    pub fn release(&mut self, applied: u64) -> Result<(), StoreError> {
        while self.segments.len() > 1 && self.segments[1] <= applied {
            let first = self.segments.remove(0);
            let path = segment_path(&self.dir, first);
            if self.spares.len() < SPARES {
                let spare = self.dir.join(format!("{first:020}{SPARE_SUFFIX}"));
                std::fs::rename(&path, &spare).map_err(|source| file_error(&path, source))?;
                self.spares.push(spare);
            } else {
                std::fs::remove_file(&path).map_err(|source| file_error(&path, source))?;
            }
        }
        Ok(())
    }
}

/// The records at the start of `bytes`, a segment whose first record has position `first`,
/// that are whole, pass their check and bear the positions that follow; and how many bytes
/// they take. What follows is torn, damaged or stale.
pub fn decode(bytes: &[u8], first: u64) -> (Vec<&[u8]>, usize) {
    let mut records = Vec::new();
    let mut at = 0;
    let mut expected = first;
    while let Some(header) = bytes.get(at..at + HEADER) {
        let mut length = [0; 4];
        length.copy_from_slice(&header[..4]);
        let length = u32::from_le_bytes(length) as usize;
        let mut position = [0; 8];
        position.copy_from_slice(&header[4..12]);
        if length > MAX_RECORD || u64::from_le_bytes(position) != expected {
            break;
        }
        let Some(payload) = bytes.get(at + HEADER..at + HEADER + length) else {
            break;
        };
        if check(&header[..12], payload) != header[12..] {
            break;
        }
        records.push(payload);
        at += HEADER + length;
        expected += 1;
    }
    (records, at)
}

/// How many observations a record's payload holds; refuses a payload that does not decode as
/// the store writes them (for tools and fuzzing: the store decodes its own records on open).
pub fn observations_in(payload: &[u8]) -> Result<usize, StoreError> {
    crate::sqlite::intake_record::decode(payload).map(|rows| rows.len())
}

fn encode(position: u64, payload: &[u8]) -> Vec<u8> {
    let mut record = Vec::with_capacity(HEADER + payload.len());
    record.extend_from_slice(
        &u32::try_from(payload.len())
            .unwrap_or(u32::MAX)
            .to_le_bytes(),
    );
    record.extend_from_slice(&position.to_le_bytes());
    let check = check(&record[..12], payload);
    record.extend_from_slice(&check);
    record.extend_from_slice(payload);
    record
}

fn check(length_and_position: &[u8], payload: &[u8]) -> [u8; CHECK] {
    // Hashed in two parts: no copy of the payload per record.
    let mut context = Context::new(&SHA256);
    context.update(length_and_position);
    context.update(payload);
    let hash = context.finish();
    let mut check = [0; CHECK];
    check.copy_from_slice(&hash.as_ref()[..CHECK]);
    check
}

fn segment_path(dir: &Path, first: u64) -> PathBuf {
    dir.join(format!("{first:020}{SUFFIX}"))
}

/// The segments in `dir`, by first position, and the spare files.
fn list(dir: &Path) -> Result<(Vec<u64>, Vec<PathBuf>), StoreError> {
    let mut segments = Vec::new();
    let mut spares = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|source| file_error(dir, source))? {
        let entry = entry.map_err(|source| file_error(dir, source))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if let Some(first) = name
            .strip_suffix(SUFFIX)
            .and_then(|stem| stem.parse::<u64>().ok())
        {
            segments.push(first);
        } else if name.ends_with(SPARE_SUFFIX) {
            spares.push(entry.path());
        }
    }
    segments.sort_unstable();
    Ok((segments, spares))
}

fn create_segment(dir: &Path, first: u64) -> Result<File, StoreError> {
    let path = segment_path(dir, first);
    let file = OpenOptions::new()
        .create_new(true)
        .write(true)
        .mode(0o600)
        .open(&path)
        .map_err(|source| file_error(&path, source))?;
    // The new name must survive a crash as surely as the records written into it.
    sync_dir(dir)?;
    Ok(file)
}

fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    File::open(dir)
        .and_then(|dir| dir.sync_all())
        .map_err(|source| file_error(dir, source))
}

fn open_for_writing(path: &Path) -> Result<File, StoreError> {
    OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(|source| file_error(path, source))
}

/// Cuts the file at `path` to `length` bytes, durably.
fn cut(path: &Path, length: usize) -> Result<(), StoreError> {
    let file = OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(|source| file_error(path, source))?;
    file.set_len(u64::try_from(length).unwrap_or(u64::MAX))
        .and_then(|()| file.sync_all())
        .map_err(|source| file_error(path, source))
}

pub(crate) fn file_error(path: &Path, source: std::io::Error) -> StoreError {
    StoreError::File {
        path: path.to_owned(),
        source,
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn open(dir: &Path, limit: u64, from: u64) -> (IntakeLog, Vec<(u64, Vec<u8>)>) {
        let mut seen = Vec::new();
        let log = IntakeLog::open(dir, limit, from, |position, payload| {
            seen.push((position, payload.to_vec()));
            Ok(())
        })
        .unwrap();
        (log, seen)
    }

    fn record(n: u64) -> Vec<u8> {
        format!("record {n}").into_bytes()
    }

    /// A new log in `dir` holding records 0 to `count - 1`, synced and closed.
    fn write_records(dir: &Path, limit: u64, count: u64) {
        let (mut log, seen) = open(dir, limit, 0);
        assert!(seen.is_empty());
        for n in 0..count {
            assert_eq!(log.append(&record(n)).unwrap(), n);
        }
        log.sync().unwrap();
    }

    fn segments(dir: &Path) -> Vec<u64> {
        list(dir).unwrap().0
    }

    fn spares(dir: &Path) -> usize {
        list(dir).unwrap().1.len()
    }

    #[test]
    fn appended_records_come_back_in_order_from_any_position() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("intake");
        write_records(&dir, 1 << 20, 5);
        let (log, seen) = open(&dir, 1 << 20, 2);
        assert_eq!(seen, (2..5).map(|n| (n, record(n))).collect::<Vec<_>>());
        assert_eq!(log.next_position(), 5);
        let mode = std::fs::metadata(segment_path(&dir, 0))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn a_torn_tail_is_cut_and_appends_go_on_after_the_last_whole_record() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("intake");
        write_records(&dir, 1 << 20, 3);
        let path = segment_path(&dir, 0);
        let whole = std::fs::read(&path).unwrap().len();
        // Half of a fourth record, as a crash in the middle of its write leaves it.
        let torn = encode(3, &record(3));
        let mut file = OpenOptions::new().append(true).open(&path).unwrap();
        file.write_all(&torn[..torn.len() / 2]).unwrap();
        drop(file);
        let (mut log, seen) = open(&dir, 1 << 20, 0);
        assert_eq!(seen.len(), 3);
        assert_eq!(std::fs::read(&path).unwrap().len(), whole);
        assert_eq!(log.append(b"after").unwrap(), 3);
        log.sync().unwrap();
        drop(log);
        let (_, seen) = open(&dir, 1 << 20, 3);
        assert_eq!(seen, vec![(3, b"after".to_vec())]);
    }

    #[test]
    fn a_tail_whose_check_fails_or_whose_length_is_absurd_is_cut() {
        let mut wrong_position = encode(7, &record(1));
        wrong_position.truncate(HEADER + 3);
        let stale = encode(0, &record(0));
        for damage in [
            b"\x05\0\0\0\x01\0\0\0\0\0\0\0garbagexxxxx".to_vec(),
            vec![0xff; HEADER],
            wrong_position,
            stale,
        ] {
            let tmp = tempfile::tempdir().unwrap();
            let dir = tmp.path().join("intake");
            let (mut log, _) = open(&dir, 1 << 20, 0);
            log.append(&record(0)).unwrap();
            log.sync().unwrap();
            drop(log);
            let path = segment_path(&dir, 0);
            let mut file = OpenOptions::new().append(true).open(&path).unwrap();
            file.write_all(&damage).unwrap();
            drop(file);
            let (log, seen) = open(&dir, 1 << 20, 0);
            assert_eq!(seen, vec![(0, record(0))]);
            assert_eq!(log.next_position(), 1);
        }
    }

    #[test]
    fn damage_before_the_last_segment_refuses_to_open() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("intake");
        // Tiny segments: one record each.
        write_records(&dir, 1, 3);
        assert_eq!(segments(&dir), [0, 1, 2]);
        let path = segment_path(&dir, 1);
        let mut bytes = std::fs::read(&path).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        std::fs::write(&path, bytes).unwrap();
        let opened = IntakeLog::open(&dir, 1, 0, |_, _| Ok(()));
        assert!(matches!(opened, Err(StoreError::Corrupt(_))), "{opened:?}");
        // A missing segment in the middle is damage too.
        std::fs::remove_file(&path).unwrap();
        let opened = IntakeLog::open(&dir, 1, 0, |_, _| Ok(()));
        assert!(matches!(opened, Err(StoreError::Corrupt(_))), "{opened:?}");
    }

    #[test]
    fn released_segments_become_spares_that_the_next_segments_reuse() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("intake");
        // Tiny segments: one record each.
        let (mut log, _) = open(&dir, 1, 0);
        for n in 0..5 {
            log.append(&record(n)).unwrap();
        }
        log.sync().unwrap();
        assert_eq!(segments(&dir), [0, 1, 2, 3, 4]);
        // Records 0 to 2 applied: their segments retire, two kept as spares, one deleted; the
        // one being written always stays.
        log.release(3).unwrap();
        assert_eq!(segments(&dir), [3, 4]);
        assert_eq!(spares(&dir), SPARES);
        log.release(5).unwrap();
        assert_eq!(segments(&dir), [4]);
        assert_eq!(spares(&dir), SPARES);
        // The next segments are the spares renamed, their stale records read as nothing.
        let spare_lengths: Vec<u64> = list(&dir)
            .unwrap()
            .1
            .iter()
            .map(|p| std::fs::metadata(p).unwrap().len())
            .collect();
        assert!(spare_lengths.iter().all(|&len| len > 0));
        log.append(&record(5)).unwrap();
        log.append(&record(6)).unwrap();
        log.sync().unwrap();
        assert_eq!(segments(&dir), [4, 5, 6]);
        assert_eq!(spares(&dir), 0);
        drop(log);
        // Reopened owing record 4 (the database applied 0 to 3).
        let (mut log, seen) = open(&dir, 1, 4);
        assert_eq!(seen, vec![(4, record(4)), (5, record(5)), (6, record(6))]);
        assert_eq!(log.append(&record(7)).unwrap(), 7);
    }

    #[test]
    fn a_recycled_segment_longer_than_its_new_records_ends_at_them() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("intake");
        let (mut log, _) = open(&dir, 1, 0);
        log.append(&[7; 500]).unwrap();
        log.append(b"short").unwrap();
        log.sync().unwrap();
        log.release(1).unwrap();
        assert_eq!(spares(&dir), 1);
        // Record 2 goes into the old 500-byte segment, over the start of its stale record.
        log.append(b"tiny").unwrap();
        log.sync().unwrap();
        assert_eq!(std::fs::metadata(segment_path(&dir, 2)).unwrap().len(), 520);
        drop(log);
        let (log, seen) = open(&dir, 1, 1);
        assert_eq!(seen, vec![(1, b"short".to_vec()), (2, b"tiny".to_vec())]);
        assert_eq!(log.next_position(), 3);
        // The last segment's stale remainder was cut on open.
        assert_eq!(
            std::fs::metadata(segment_path(&dir, 2)).unwrap().len(),
            u64::try_from(HEADER + 4).unwrap()
        );
    }

    #[test]
    fn a_new_log_numbers_its_records_after_what_was_applied() {
        let tmp = tempfile::tempdir().unwrap();
        let (mut log, seen) = open(&tmp.path().join("intake"), 1 << 20, 41);
        assert!(seen.is_empty());
        assert_eq!(log.append(b"next").unwrap(), 41);
    }

    #[test]
    fn a_log_that_begins_after_what_it_still_owes_refuses_to_open() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("intake");
        let (mut log, _) = open(&dir, 1 << 20, 10);
        log.append(b"ten").unwrap();
        log.sync().unwrap();
        drop(log);
        // A database restored from an older copy: it has applied only up to record 4.
        assert!(matches!(
            IntakeLog::open(&dir, 1 << 20, 4, |_, _| Ok(())),
            Err(StoreError::Corrupt(_))
        ));
        assert_eq!(open(&dir, 1 << 20, 10).1.len(), 1);
    }

    #[test]
    fn a_log_that_ends_before_what_was_applied_numbers_on_after_it() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("intake");
        write_records(&dir, 1 << 20, 3);
        // The database applied up to record 9: records 3 to 9 were in segments moved away.
        let (mut log, seen) = open(&dir, 1 << 20, 10);
        assert!(seen.is_empty());
        assert_eq!(log.append(b"ten").unwrap(), 10);
        log.sync().unwrap();
        drop(log);
        assert_eq!(segments(&dir), [10]);
        let (_, seen) = open(&dir, 1 << 20, 10);
        assert_eq!(seen, vec![(10, b"ten".to_vec())]);
    }

    #[test]
    fn an_oversized_record_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let (mut log, _) = open(&tmp.path().join("intake"), 1 << 20, 0);
        assert!(log.append(&vec![0; MAX_RECORD + 1]).is_err());
        assert_eq!(log.append(b"fine").unwrap(), 0);
    }

    #[test]
    fn arbitrary_bytes_decode_without_panic_to_a_valid_prefix() {
        let mut bytes = encode(5, b"one");
        bytes.extend(encode(6, b"two"));
        let whole = bytes.len();
        assert_eq!(decode(&bytes, 4), (vec![], 0));
        for cut in 0..=whole {
            let (records, valid) = decode(&bytes[..cut], 5);
            assert!(valid <= cut);
            assert_eq!(
                records.len(),
                usize::from(cut >= HEADER + 3) + usize::from(cut == whole)
            );
        }
        for seed in 0..200u32 {
            let noise: Vec<u8> = (0..64)
                .map(|i| (seed.wrapping_mul(2_654_435_761).wrapping_add(i * 40_503) >> 13) as u8)
                .collect();
            let (_, valid) = decode(&noise, 0);
            assert!(valid <= noise.len());
        }
    }
}
