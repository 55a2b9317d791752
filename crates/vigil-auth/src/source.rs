//! Failed sign-ins per network source: the answer to password spraying.
//!
//! An account's [`lockout`](crate::lockout) stops a guesser trying many passwords on one
//! account. Password spraying tries one common password on many accounts, a few tries each,
//! and never trips it. Counting the failures of each *source* does: a source with too many
//! failed sign-ins within a window is refused for a while, before any password of it is checked
//! (NIST SP 800-63B-4, 3.2.2, rate limiting; OWASP Authentication Cheat Sheet, "Protect against
//! automated attacks").
//!
//! A source is an IPv4 address, or an IPv6 /64: the block one subscriber or one network
//! segment gets, so that rotating through the addresses of one /64 gains nothing. An
//! IPv4-mapped IPv6 address is its IPv4 address.
//!
//! The failures are kept in memory (a restart forgets them, as it ends no account lock), for
//! at most `capacity` sources: when full, the source whose last failure is oldest (and that is
//! not refused now) is forgotten first, so a flood of one-off addresses cannot push out a
//! source being refused.

use std::collections::HashMap;
use std::fmt;
use std::net::IpAddr;

use crate::lockout::LockoutPolicy;

/// Where sign-in attempts come from, as counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Source {
    /// An IPv4 address.
    V4([u8; 4]),
    /// An IPv6 /64 prefix.
    V6([u8; 8]),
}

impl Source {
    /// The source an address counts towards.
    pub fn of(address: IpAddr) -> Source {
        match address {
            IpAddr::V4(v4) => Source::V4(v4.octets()),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => Source::V4(v4.octets()),
                None => {
                    let octets = v6.octets();
                    let mut prefix = [0u8; 8];
                    prefix.copy_from_slice(&octets[..8]);
                    Source::V6(prefix)
                }
            },
        }
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::V4(octets) => write!(f, "{}", std::net::Ipv4Addr::from(*octets)),
            Source::V6(prefix) => {
                let mut octets = [0u8; 16];
                octets[..8].copy_from_slice(prefix);
                write!(f, "{}/64", std::net::Ipv6Addr::from(octets))
            }
        }
    }
}

/// The failed sign-ins of every source seen recently.
pub struct SourceFailures {
    policy: LockoutPolicy,
    capacity: usize,
    /// Per source, the failure times (Unix seconds, oldest first) that can still refuse it, as
    /// the lockout keeps them; the last is the latest.
    entries: HashMap<Source, Vec<i64>>,
}

impl fmt::Debug for SourceFailures {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SourceFailures")
            .field("policy", &self.policy)
            .field("sources", &self.entries.len())
            .finish_non_exhaustive()
    }
}

impl SourceFailures {
    /// Sources refused under `policy` (its `max_failures` of 0 refuses none), at most
    /// `capacity` of them remembered.
    pub fn new(policy: LockoutPolicy, capacity: usize) -> SourceFailures {
        SourceFailures {
            policy,
            capacity: capacity.max(1),
            entries: HashMap::new(),
        }
    }

    /// Until when (Unix seconds, exclusive) `source` is refused at `now_unix`, if it is.
    pub fn refused_until(&self, source: Source, now_unix: i64) -> Option<i64> {
        let failures = self.entries.get(&source)?;
        self.policy.locked_until(failures, now_unix)
    }

    /// Records a failed sign-in of `source` at `now_unix`. Returns until when the source is
    /// refused if this failure is the one that refuses it (once per refusal, for the alert).
    pub fn record(&mut self, source: Source, now_unix: i64) -> Option<i64> {
        if self.policy.max_failures == 0 {
            return None;
        }
        let before = self.refused_until(source, now_unix);
        if !self.entries.contains_key(&source) && self.entries.len() >= self.capacity {
            self.forget_one(now_unix);
        }
        let failures = self.entries.entry(source).or_default();
        *failures = self.policy.record_failure(failures, now_unix);
        let after = self.policy.locked_until(failures, now_unix);
        after.filter(|_| before.is_none())
    }

    /// Sources remembered now.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no source is remembered.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Forgets the source whose last failure is oldest among those not refused now (or, if
    /// every one is refused, the oldest of all).
    fn forget_one(&mut self, now_unix: i64) {
        let policy = &self.policy;
        let oldest = |refused_too: bool| {
            self.entries
                .iter()
                .filter(|(_, f)| refused_too || policy.locked_until(f, now_unix).is_none())
                .min_by_key(|(_, f)| f.last().copied().unwrap_or(i64::MIN))
                .map(|(source, _)| *source)
        };
        if let Some(source) = oldest(false).or_else(|| oldest(true)) {
            self.entries.remove(&source);
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    const T: i64 = 1_790_000_000;

    fn policy(max_failures: u32) -> LockoutPolicy {
        LockoutPolicy {
            max_failures,
            window_secs: 600,
            lock_secs: 900,
        }
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn an_ipv6_source_is_its_64_and_a_mapped_ipv4_is_its_ipv4() {
        assert_eq!(
            Source::of(ip("2001:db8:1:2::7")),
            Source::of(ip("2001:db8:1:2:ffff::1"))
        );
        assert_ne!(
            Source::of(ip("2001:db8:1:2::7")),
            Source::of(ip("2001:db8:1:3::7"))
        );
        assert_eq!(
            Source::of(ip("::ffff:203.0.113.9")),
            Source::of(ip("203.0.113.9"))
        );
        assert_ne!(
            Source::of(ip("203.0.113.9")),
            Source::of(ip("203.0.113.10"))
        );
        assert_eq!(
            Source::of(ip("2001:db8:1:2::7")).to_string(),
            "2001:db8:1:2::/64"
        );
        assert_eq!(Source::of(ip("203.0.113.9")).to_string(), "203.0.113.9");
    }

    #[test]
    fn too_many_failures_within_the_window_refuse_the_source_for_a_while() {
        let mut failures = SourceFailures::new(policy(3), 100);
        let spray = Source::of(ip("198.51.100.4"));
        let other = Source::of(ip("198.51.100.5"));
        assert_eq!(failures.record(spray, T), None);
        assert_eq!(failures.record(spray, T + 10), None);
        assert_eq!(failures.refused_until(spray, T + 10), None);
        // The third within 10 minutes refuses it for 15 minutes from then, once.
        assert_eq!(failures.record(spray, T + 20), Some(T + 20 + 900));
        assert_eq!(failures.refused_until(spray, T + 21), Some(T + 920));
        assert_eq!(failures.record(spray, T + 30), None, "already refused");
        assert_eq!(failures.refused_until(other, T + 30), None);
        // Over after the lock.
        assert_eq!(failures.refused_until(spray, T + 30 + 900), None);
    }

    #[test]
    fn failures_spread_wider_than_the_window_never_refuse() {
        let mut failures = SourceFailures::new(policy(3), 100);
        let source = Source::of(ip("198.51.100.4"));
        for n in 0..20 {
            assert_eq!(failures.record(source, T + n * 301), None);
            assert_eq!(failures.refused_until(source, T + n * 301), None);
        }
    }

    #[test]
    fn a_zero_limit_refuses_nobody() {
        let mut failures = SourceFailures::new(policy(0), 100);
        let source = Source::of(ip("198.51.100.4"));
        for n in 0..50 {
            assert_eq!(failures.record(source, T + n), None);
        }
        assert_eq!(failures.refused_until(source, T + 50), None);
        assert!(failures.is_empty());
    }

    #[test]
    fn memory_is_bounded_and_a_refused_source_is_forgotten_last() {
        let mut failures = SourceFailures::new(policy(3), 4);
        let refused = Source::of(ip("192.0.2.1"));
        for n in 0..3 {
            failures.record(refused, T + n);
        }
        assert!(failures.refused_until(refused, T + 5).is_some());
        // A thousand one-off addresses after it.
        for n in 0..1000u32 {
            let [_, _, a, b] = n.to_be_bytes();
            failures.record(Source::V4([10, 0, a, b]), T + 10);
            assert!(failures.len() <= 4);
        }
        assert!(failures.refused_until(refused, T + 10).is_some());
    }
}
