//! Session lifetime: revocation, idle timeout and an absolute limit, over what the store keeps
//! of a session.
//!
//! A session token ([`crate::token`]) is short-lived and carries the session id; on each
//! request the caller looks the session up, asks [`SessionPolicy::check`], and updates
//! `last_seen`. Signing out, a password change or an administrator revokes the session in the
//! store, which ends every token of it at once.
//!
//! The defaults are the reauthentication limits NIST SP 800-63B sets for AAL3 (§2.3.3 in
//! revision 4): 12 hours overall, 15 minutes of inactivity, the usual timeout of a shared
//! clinical workstation.

/// How long a session may last and sit idle, in seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionPolicy {
    /// A session unused this long has ended.
    pub idle_secs: i64,
    /// A session this old has ended, used or not.
    pub max_lifetime_secs: i64,
}

impl Default for SessionPolicy {
    /// 15 minutes idle, 12 hours overall.
    fn default() -> Self {
        Self {
            idle_secs: 15 * 60,
            max_lifetime_secs: 12 * 60 * 60,
        }
    }
}

/// What the store keeps of a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionState {
    /// When the user signed in (Unix seconds).
    pub started_unix: i64,
    /// The last request of the session (Unix seconds).
    pub last_seen_unix: i64,
    /// Whether the session was revoked.
    pub revoked: bool,
}

/// Why a session is over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SessionError {
    /// The session was revoked (signed out, password changed, or by an administrator).
    #[error("the session has been revoked")]
    Revoked,
    /// The session sat idle too long.
    #[error("the session has timed out after inactivity")]
    IdleTimeout,
    /// The session reached its maximum lifetime.
    #[error("the session has reached its maximum lifetime; sign in again")]
    Expired,
}

impl SessionPolicy {
    /// Whether `session` is still open at `now_unix`.
    pub fn check(&self, session: &SessionState, now_unix: i64) -> Result<(), SessionError> {
        if session.revoked {
            Err(SessionError::Revoked)
        } else if now_unix >= session.started_unix.saturating_add(self.max_lifetime_secs) {
            Err(SessionError::Expired)
        } else if now_unix >= session.last_seen_unix.saturating_add(self.idle_secs) {
            Err(SessionError::IdleTimeout)
        } else {
            Ok(())
        }
    }

    /// The `exp` for a token issued at `now_unix` with lifetime `token_ttl_secs`: never past
    /// the session's own end, so no token outlives its session's maximum lifetime.
    pub fn token_expiry(&self, session: &SessionState, now_unix: i64, token_ttl_secs: i64) -> i64 {
        now_unix
            .saturating_add(token_ttl_secs)
            .min(session.started_unix.saturating_add(self.max_lifetime_secs))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    const T: i64 = 1_790_000_000;

    fn session() -> SessionState {
        SessionState {
            started_unix: T,
            last_seen_unix: T,
            revoked: false,
        }
    }

    #[test]
    fn an_active_session_is_open_until_it_idles() {
        let policy = SessionPolicy::default();
        assert_eq!(policy.check(&session(), T + 899), Ok(()));
        assert_eq!(
            policy.check(&session(), T + 900),
            Err(SessionError::IdleTimeout)
        );
        let used = SessionState {
            last_seen_unix: T + 800,
            ..session()
        };
        assert_eq!(policy.check(&used, T + 1600), Ok(()));
    }

    #[test]
    fn a_session_ends_at_its_maximum_lifetime_however_busy() {
        let policy = SessionPolicy::default();
        let busy = SessionState {
            last_seen_unix: T + 12 * 3600 - 1,
            ..session()
        };
        assert_eq!(policy.check(&busy, T + 12 * 3600 - 1), Ok(()));
        assert_eq!(
            policy.check(&busy, T + 12 * 3600),
            Err(SessionError::Expired)
        );
    }

    #[test]
    fn a_revoked_session_is_over_at_once() {
        let revoked = SessionState {
            revoked: true,
            ..session()
        };
        assert_eq!(
            SessionPolicy::default().check(&revoked, T),
            Err(SessionError::Revoked)
        );
    }

    #[test]
    fn tokens_never_outlive_their_session() {
        let policy = SessionPolicy::default();
        assert_eq!(policy.token_expiry(&session(), T, 600), T + 600);
        let late = T + 12 * 3600 - 100;
        assert_eq!(policy.token_expiry(&session(), late, 600), T + 12 * 3600);
    }
}
