//! A bound, in bytes, on the observations waiting in the store's queues (the intake thread's
//! and the committer's). The queues are also bounded by count, but a submission may hold one
//! reading or 512, so a count alone lets memory grow with the packs' size: a fleet sending the
//! largest packs could queue a gigabyte. Past the budget a submission is refused with
//! `Overloaded`, as a full queue refuses it, and ingest slows its senders.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::committer::PreparedRow;

/// The bytes the queued submissions hold, and how many they may.
#[derive(Debug)]
pub(crate) struct QueueBudget {
    used: AtomicUsize,
    limit: usize,
}

/// Bytes taken from the budget, given back when dropped (once the submission is done with,
/// whatever became of it).
#[derive(Debug)]
pub(crate) struct Charge {
    budget: Arc<QueueBudget>,
    bytes: usize,
}

impl QueueBudget {
    pub(crate) fn new(limit: usize) -> Arc<QueueBudget> {
        Arc::new(QueueBudget {
            used: AtomicUsize::new(0),
            limit,
        })
    }

    /// Takes `bytes`, or `None` when they do not fit. A submission larger than the whole
    /// budget is taken when nothing else waits, so that it is slowed, never refused for good.
    pub(crate) fn take(self: &Arc<Self>, bytes: usize) -> Option<Charge> {
        self.used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                let fits = used.saturating_add(bytes) <= self.limit;
                (used == 0 || fits).then(|| used.saturating_add(bytes))
            })
            .ok()
            .map(|_| Charge {
                budget: Arc::clone(self),
                bytes,
            })
    }

    /// Bytes taken now.
    #[cfg(test)]
    pub(crate) fn used(&self) -> usize {
        self.used.load(Ordering::Acquire)
    }
}

impl Drop for Charge {
    fn drop(&mut self) {
        self.budget.used.fetch_sub(self.bytes, Ordering::AcqRel);
    }
}

/// What a submission of `rows` (and its intake record, if any) holds in memory while queued.
pub(crate) fn cost(rows: &[PreparedRow], record: Option<&[u8]>) -> usize {
    let rows: usize = rows
        .iter()
        .map(|row| {
            std::mem::size_of::<PreparedRow>()
                + row.sealed.len()
                + row.patient.as_str().len()
                + row.device.as_str().len()
        })
        .sum();
    rows + record.map_or(0, <[u8]>::len)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    #[test]
    fn bytes_are_taken_up_to_the_limit_and_given_back_when_dropped() {
        let budget = QueueBudget::new(100);
        let first = budget.take(60).unwrap();
        assert!(budget.take(50).is_none());
        let second = budget.take(40).unwrap();
        assert_eq!(budget.used(), 100);
        drop(first);
        assert_eq!(budget.used(), 40);
        assert!(budget.take(61).is_none());
        drop(second);
        assert_eq!(budget.used(), 0);
    }

    #[test]
    fn a_submission_larger_than_the_budget_waits_for_an_empty_queue() {
        let budget = QueueBudget::new(100);
        let small = budget.take(1).unwrap();
        assert!(budget.take(500).is_none());
        drop(small);
        let large = budget.take(500).unwrap();
        assert!(budget.take(1).is_none());
        drop(large);
        assert_eq!(budget.used(), 0);
    }
}
