//! Reading the next page of a search while the client takes this one.
//!
//! A client paging through a day of vitals asks for page k+1 only once it holds page k, and the
//! hub's largest share of a page (the store's keyset read and the opening of every sealed value)
//! would otherwise start only then, with the client waiting for it. So when a page has a next
//! one, the hub starts reading that one on a blocking thread, and the request for it takes the
//! rows instead of reading them again (docs/performance.md, "Reading a day through FHIR").
//!
//! What stays the request's own: its token and session, its access decision and its audit
//! entry, which all happen as for any other request before the rows are taken. Rows read ahead
//! are handed only to the same session asking the same search at the same cursor, never after
//! [`MAX_AGE`] (a patient erased or a consent withdrawn meanwhile is refused by the request's
//! own decision; the rows are at most that old), and never twice.
//!
//! Bounded: at most [`SLOTS`] pages are held (a page of 10,000 observations is about 1.5 MB of
//! rows); a new one pushes out the oldest, whose reading finishes and is dropped. One request
//! starts at most one read-ahead, so a client that never follows its links costs the hub at
//! most one page more per page it asked for.

use std::collections::VecDeque;
use std::sync::mpsc::{Receiver, sync_channel};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use vigil_model::PatientId;

/// Pages held at once, across every session.
pub const SLOTS: usize = 8;
/// Oldest a page read ahead may be when it is served.
pub const MAX_AGE: Duration = Duration::from_secs(5);

/// Whose page, of which search, at which cursor: a page is served only to a request with the
/// same key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Key {
    session: String,
    patient: PatientId,
    query: String,
}

impl Key {
    /// The key of the page `query` (a search's canonical query string, cursor included) of
    /// `patient` for the session `session`.
    pub fn new(session: &str, patient: &PatientId, query: String) -> Key {
        Key {
            session: session.to_owned(),
            patient: patient.clone(),
            query,
        }
    }
}

struct Slot<T> {
    key: Key,
    started: Instant,
    read: Receiver<T>,
}

/// Pages being read, or read, ahead of their request.
pub struct ReadAhead<T> {
    slots: Arc<Mutex<VecDeque<Slot<T>>>>,
    max_age: Duration,
}

impl<T> Clone for ReadAhead<T> {
    fn clone(&self) -> Self {
        ReadAhead {
            slots: Arc::clone(&self.slots),
            max_age: self.max_age,
        }
    }
}

impl<T: Send + 'static> Default for ReadAhead<T> {
    fn default() -> Self {
        ReadAhead::with_max_age(MAX_AGE)
    }
}

impl<T> std::fmt::Debug for ReadAhead<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReadAhead")
            .field("max_age", &self.max_age)
            .finish_non_exhaustive()
    }
}

impl<T: Send + 'static> ReadAhead<T> {
    /// Pages served up to `max_age` after their reading started.
    pub fn with_max_age(max_age: Duration) -> ReadAhead<T> {
        ReadAhead {
            slots: Arc::new(Mutex::new(VecDeque::with_capacity(SLOTS))),
            max_age,
        }
    }

    /// Starts `read` on a blocking thread for the request `key` will make. Without a tokio
    /// runtime, nothing is read ahead.
    pub fn start(&self, key: Key, read: impl FnOnce() -> T + Send + 'static) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let (done, result) = sync_channel(1);
        {
            let mut slots = self.lock();
            slots.retain(|slot| slot.key != key);
            while slots.len() >= SLOTS {
                slots.pop_front();
            }
            slots.push_back(Slot {
                key,
                started: Instant::now(),
                read: result,
            });
        }
        runtime.spawn_blocking(move || {
            // The slot may have been pushed out meanwhile: then nobody wants the page.
            let _ = done.send(read());
        });
    }

    /// The page read ahead for `key`, waiting for its reading to finish; `None` when there is
    /// none (or it is too old, or its reading failed to run), and the caller reads it itself.
    pub fn take(&self, key: &Key) -> Option<T> {
        let slot = {
            let mut slots = self.lock();
            let max_age = self.max_age;
            slots.retain(|slot| slot.started.elapsed() <= max_age);
            let at = slots.iter().position(|slot| &slot.key == key)?;
            slots.remove(at)?
        };
        slot.read.recv().ok()
    }

    /// Pages held now (read or being read).
    pub fn held(&self) -> usize {
        self.lock().len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<Slot<T>>> {
        // Nothing a panicking holder leaves behind is inconsistent: a queue of slots.
        self.slots.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn key(session: &str, query: &str) -> Key {
        Key::new(session, &PatientId::new("p-1").unwrap(), query.to_owned())
    }

    #[tokio::test]
    async fn a_page_goes_to_the_same_session_search_and_cursor_once() {
        let ahead = ReadAhead::default();
        ahead.start(key("s1", "patient=p-1&_count=2&_cursor=a"), || 7);
        tokio::task::spawn_blocking(move || {
            assert_eq!(
                ahead.take(&key("s2", "patient=p-1&_count=2&_cursor=a")),
                None
            );
            assert_eq!(
                ahead.take(&key("s1", "patient=p-1&_count=2&_cursor=b")),
                None
            );
            let other_patient = Key::new(
                "s1",
                &PatientId::new("p-2").unwrap(),
                "patient=p-1&_count=2&_cursor=a".into(),
            );
            assert_eq!(ahead.take(&other_patient), None);
            assert_eq!(
                ahead.take(&key("s1", "patient=p-1&_count=2&_cursor=a")),
                Some(7)
            );
            assert_eq!(
                ahead.take(&key("s1", "patient=p-1&_count=2&_cursor=a")),
                None
            );
            assert_eq!(ahead.held(), 0);
        })
        .await
        .unwrap();
    }

    #[tokio::test]
    async fn taking_waits_for_a_reading_still_under_way() {
        let ahead = ReadAhead::default();
        let (go, wait) = sync_channel::<()>(0);
        ahead.start(key("s", "q"), move || {
            wait.recv().unwrap();
            42
        });
        let taker = {
            let ahead = ahead.clone();
            tokio::task::spawn_blocking(move || ahead.take(&key("s", "q")))
        };
        go.send(()).unwrap();
        assert_eq!(taker.await.unwrap(), Some(42));
    }

    #[tokio::test]
    async fn an_old_page_is_not_served() {
        let ahead = ReadAhead::with_max_age(Duration::from_millis(20));
        ahead.start(key("s", "q"), || 1);
        tokio::time::sleep(Duration::from_millis(60)).await;
        let taken = tokio::task::spawn_blocking(move || ahead.take(&key("s", "q")));
        assert_eq!(taken.await.unwrap(), None);
    }

    #[tokio::test]
    async fn at_most_slots_pages_are_held_and_the_oldest_goes_first() {
        let ahead = ReadAhead::default();
        for n in 0..SLOTS + 3 {
            ahead.start(key("s", &n.to_string()), move || n);
        }
        assert_eq!(ahead.held(), SLOTS);
        let check = ahead.clone();
        tokio::task::spawn_blocking(move || {
            assert_eq!(check.take(&key("s", "0")), None);
            assert_eq!(check.take(&key("s", "2")), None);
            assert_eq!(check.take(&key("s", "3")), Some(3));
            assert_eq!(
                check.take(&key("s", &(SLOTS + 2).to_string())),
                Some(SLOTS + 2)
            );
        })
        .await
        .unwrap();
    }

    #[tokio::test]
    async fn a_reading_that_panics_leaves_the_caller_to_read_itself() {
        let ahead: ReadAhead<u8> = ReadAhead::default();
        ahead.start(key("s", "q"), || panic!("the store went away"));
        let taken = tokio::task::spawn_blocking(move || ahead.take(&key("s", "q")));
        assert_eq!(taken.await.unwrap(), None);
    }

    #[test]
    fn without_a_runtime_nothing_is_read_ahead() {
        let ahead = ReadAhead::default();
        ahead.start(key("s", "q"), || 1);
        assert_eq!(ahead.held(), 0);
        assert_eq!(ahead.take(&key("s", "q")), None);
    }
}
