//! Account lockout after repeated sign-in failures, over the failure times the store keeps.
//!
//! NIST SP 800-63B-4 §3.2.2 ("Rate Limiting (Throttling)") requires a verifier to limit
//! consecutive failed attempts on an account (to no more than 100) and lets it lock the
//! account or delay attempts meanwhile. Vigil locks early, because its accounts open patient
//! records: by default 5 failures within 15 minutes lock the account for 15 minutes.
//!
//! The caller keeps a short list of failure times per account (Unix seconds). On a sign-in
//! it asks [`LockoutPolicy::locked_until`] first, and if the account is locked refuses without
//! checking the password and without recording anything; after a wrong password it stores
//! [`LockoutPolicy::record_failure`]'s list; after a successful sign-in it clears the list.

/// How many failures within what time lock an account, and for how long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LockoutPolicy {
    /// Failures within `window_secs` that lock the account; 0 disables lockout.
    pub max_failures: u32,
    /// The window the failures must fall within, in seconds.
    pub window_secs: i64,
    /// How long the account stays locked after the failure that locked it, in seconds.
    pub lock_secs: i64,
}

impl Default for LockoutPolicy {
    /// 5 failures within 15 minutes lock for 15 minutes.
    fn default() -> Self {
        Self {
            max_failures: 5,
            window_secs: 15 * 60,
            lock_secs: 15 * 60,
        }
    }
}

impl LockoutPolicy {
    /// Until when (Unix seconds, exclusive) the account is locked at `now_unix`, or `None`
    /// if it is not. Locked when `max_failures` failures fall within `window_secs` of each
    /// other and the last of them was less than `lock_secs` ago. Failure times in the future
    /// (a clock set back) count as now. The order of `failures` does not matter.
    pub fn locked_until(&self, failures: &[i64], now_unix: i64) -> Option<i64> {
        let sorted = self.sorted(failures, now_unix);
        self.latest_lock(&sorted)
            .map(|(_, until)| until)
            .filter(|until| *until > now_unix)
    }

    /// The failure times worth keeping at `now_unix`, oldest first: those that can still
    /// lock the account or keep it locked. At most twice `max_failures` of them, whatever the
    /// caller passes, and such that [`Self::locked_until`] gives the same answer for them as
    /// for all of `failures`, now and later.
    pub fn retain(&self, failures: &[i64], now_unix: i64) -> Vec<i64> {
        let max = self.max_failures as usize;
        if max == 0 {
            return Vec::new();
        }
        // A failure older than window + lock can neither join a new window nor belong to a
        // lock that has not ended.
        let horizon = now_unix
            .saturating_sub(self.window_secs)
            .saturating_sub(self.lock_secs);
        let sorted: Vec<i64> = self
            .sorted(failures, now_unix)
            .into_iter()
            .filter(|time| *time > horizon)
            .collect();
        // A lock still running is kept whole: it may be older than the last `max` failures
        // if failures were recorded while it ran.
        let running = self
            .latest_lock(&sorted)
            .filter(|(_, until)| *until > now_unix)
            .map_or(sorted.len(), |(first, _)| first);
        let recent = sorted.len().saturating_sub(max);
        let (lock_start, lock_end) = (running, (running + max).min(sorted.len()));
        sorted
            .iter()
            .enumerate()
            .filter(|(index, _)| *index >= recent || (lock_start..lock_end).contains(index))
            .map(|(_, time)| *time)
            .collect()
    }

    /// The list to store after a failure at `now_unix`: `failures` and the new one, retained.
    pub fn record_failure(&self, failures: &[i64], now_unix: i64) -> Vec<i64> {
        let mut all = failures.to_vec();
        all.push(now_unix);
        self.retain(&all, now_unix)
    }

    fn sorted(&self, failures: &[i64], now_unix: i64) -> Vec<i64> {
        let mut sorted: Vec<i64> = failures.iter().map(|time| (*time).min(now_unix)).collect();
        sorted.sort_unstable();
        sorted
    }

    /// The latest window of `max_failures` failures within `window_secs` in `sorted`: the
    /// index of its first failure and the end of the lock it caused.
    fn latest_lock(&self, sorted: &[i64]) -> Option<(usize, i64)> {
        let max = self.max_failures as usize;
        if max == 0 || sorted.len() < max {
            return None;
        }
        (0..=sorted.len() - max).rev().find_map(|first| {
            let last = sorted[first + max - 1];
            (last.saturating_sub(sorted[first]) < self.window_secs)
                .then(|| (first, last.saturating_add(self.lock_secs)))
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const T: i64 = 1_790_000_000;

    #[test]
    fn five_failures_within_fifteen_minutes_lock_for_fifteen_minutes() {
        let policy = LockoutPolicy::default();
        let failures = [T, T + 60, T + 120, T + 180];
        assert_eq!(policy.locked_until(&failures, T + 200), None);
        let failures = [T, T + 60, T + 120, T + 180, T + 240];
        assert_eq!(policy.locked_until(&failures, T + 240), Some(T + 240 + 900));
        assert_eq!(
            policy.locked_until(&failures, T + 240 + 899),
            Some(T + 1140)
        );
        assert_eq!(policy.locked_until(&failures, T + 240 + 900), None);
    }

    #[test]
    fn failures_spread_wider_than_the_window_do_not_lock() {
        let policy = LockoutPolicy::default();
        // Five failures spanning exactly 900 s: not within the window.
        let failures = [T, T + 200, T + 400, T + 600, T + 900];
        assert_eq!(policy.locked_until(&failures, T + 900), None);
        // Spanning 899 s: locked.
        let failures = [T, T + 200, T + 400, T + 600, T + 899];
        assert_eq!(policy.locked_until(&failures, T + 899), Some(T + 899 + 900));
    }

    #[test]
    fn order_does_not_matter_and_future_times_count_as_now() {
        let policy = LockoutPolicy::default();
        let failures = [T + 240, T, T + 180, T + 60, T + 120];
        assert_eq!(policy.locked_until(&failures, T + 240), Some(T + 1140));
        // A failure stamped an hour ahead (clock set back) locks from now, not from then.
        let failures = [T, T + 60, T + 120, T + 180, T + 3600];
        assert_eq!(policy.locked_until(&failures, T + 200), Some(T + 200 + 900));
    }

    #[test]
    fn zero_max_failures_disables_lockout() {
        let policy = LockoutPolicy {
            max_failures: 0,
            ..LockoutPolicy::default()
        };
        assert_eq!(policy.locked_until(&[T; 50], T), None);
        assert!(policy.record_failure(&[T; 50], T).is_empty());
    }

    #[test]
    fn retain_drops_failures_that_no_longer_matter_and_is_bounded() {
        let policy = LockoutPolicy::default();
        let old = [T - 10_000, T - 5_000];
        let kept = policy.record_failure(&old, T);
        assert_eq!(kept, vec![T]);
        let many: Vec<i64> = (0..1000).map(|i| T - 1000 + i).collect();
        let kept = policy.record_failure(&many, T);
        assert!(kept.len() <= 10, "{}", kept.len());
        assert_eq!(
            policy.locked_until(&kept, T),
            policy.locked_until(&[many.clone(), vec![T]].concat(), T)
        );
    }

    #[test]
    fn a_running_lock_survives_failures_recorded_during_it() {
        let policy = LockoutPolicy::default();
        // Locked at T+4 until T+904; then two failures recorded during the lock. The last
        // five (T+2 to T+903) span 901 s and do not lock by themselves, nor do T+1 to T+902.
        let mut failures = vec![T, T + 1, T + 2, T + 3, T + 4];
        for time in [T + 902, T + 903] {
            failures = policy.record_failure(&failures, time);
        }
        assert_eq!(policy.locked_until(&failures, T + 903), Some(T + 904));
    }

    proptest! {
        #[test]
        fn retained_failures_decide_as_all_of_them_would(
            offsets in proptest::collection::vec(0i64..4000, 0..40),
            later in 0i64..3000,
        ) {
            let policy = LockoutPolicy::default();
            let now = T + 4000;
            let failures: Vec<i64> = offsets.iter().map(|o| T + o).collect();
            let kept = policy.retain(&failures, now);
            prop_assert!(kept.len() <= 2 * policy.max_failures as usize);
            prop_assert_eq!(policy.locked_until(&kept, now), policy.locked_until(&failures, now));
            // And after a further failure, later.
            let at = now + later;
            let mut all = failures.clone();
            all.push(at);
            prop_assert_eq!(
                policy.locked_until(&policy.record_failure(&kept, at), at),
                policy.locked_until(&all, at)
            );
        }
    }
}
