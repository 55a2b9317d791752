//! Signing in and out.
//!
//! A refusal tells the client as little as possible: an unknown user, a wrong password and a
//! locked account all answer "sign-in refused" (the audit log and the security officer learn
//! which). Only after the password is right does the hub say a second-factor code is needed.

use std::net::IpAddr;

use vigil_auth::{Source, password, policy, scope::Scopes, token::Claims, totp};
use vigil_model::{
    Action, Actor, AlertKind, Outcome, ResourceKind, Role, Severity, Timestamp, UserId,
};
use vigil_store::{StoreError, UserRecord, UserSessionRecord};

use super::Access;
use crate::audit::entry;

/// A successful sign-in.
#[derive(Debug, Clone)]
pub struct SignedIn {
    /// The bearer token.
    pub token: String,
    /// The user.
    pub user: UserId,
    /// Their role.
    pub role: Role,
    /// When the session ends regardless of use.
    pub expires_at: Timestamp,
    /// The scopes the token carries.
    pub scope: String,
}

/// Why a sign-in was refused.
#[derive(Debug, thiserror::Error)]
pub enum SignInError {
    /// Unknown user, wrong password, disabled or locked account (not told apart).
    #[error("sign-in refused")]
    Refused,
    /// The password was right; a second-factor code is needed (or was wrong, or reused).
    #[error("a valid second-factor code is required")]
    SecondFactor,
    /// A privileged account without an enrolled second factor may not sign in.
    #[error("this account needs a second factor enrolled by an administrator")]
    SecondFactorNotEnrolled,
    /// The requested scopes do not parse.
    #[error("invalid scope: {0}")]
    Scope(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Signing the token failed.
    #[error("session token could not be signed")]
    Token,
}

impl Access {
    /// Signs `user` in (blocking: Argon2id takes tens of milliseconds; call from a blocking
    /// thread). `scope`, if given, narrows the token below what the role allows.
    pub fn sign_in(
        &self,
        user: &str,
        password_text: &str,
        code: Option<&str>,
        scope: Option<&str>,
        address: IpAddr,
    ) -> Result<SignedIn, SignInError> {
        let store = &self.inner.store;
        let now = Timestamp::now();
        let now_secs = now.unix_millis().div_euclid(1000);
        let refuse =
            |resource: &str, reason: &str| self.audit_refused_login(address, resource, reason);
        let requested = match scope {
            None => None,
            Some(text) => Some(Scopes::parse(text).map_err(|e| SignInError::Scope(e.to_string()))?),
        };
        // A user name that is not one cannot be a user; a password typed in the user field must
        // not reach the audit log, so unknown names are recorded as "unknown".
        let record = match UserId::new(user) {
            Ok(id) => store.user(&id)?,
            Err(_) => None,
        };
        let Some(record) = record.filter(|r| r.disabled_at.is_none()) else {
            password::verify_dummy(password_text);
            refuse("unknown", "unknown or disabled user");
            self.address_failed(address, now_secs);
            return Err(SignInError::Refused);
        };
        let id = record.id.clone();
        let credentials = store.credentials(&id)?.unwrap_or(vigil_store::Credentials {
            password: None,
            totp_secret: None,
            totp_step: None,
        });
        let failures: Vec<i64> = store
            .sign_in_failures(&id)?
            .iter()
            .map(|t| t.unix_millis().div_euclid(1000))
            .collect();
        let lockout = &self.inner.settings.lockout;
        if lockout.locked_until(&failures, now_secs).is_some() {
            password::verify_dummy(password_text);
            refuse(id.as_str(), "account locked");
            self.address_failed(address, now_secs);
            return Err(SignInError::Refused);
        }
        let password_ok = match &credentials.password {
            Some(phc) => password::verify_password(password_text, phc),
            None => {
                password::verify_dummy(password_text);
                false
            }
        };
        if !password_ok {
            self.fail(&id, now, now_secs, address, "wrong password")?;
            return Err(SignInError::Refused);
        }
        match (&credentials.totp_secret, code) {
            (None, _) if record.role.is_privileged() => {
                refuse(id.as_str(), "privileged account without a second factor");
                return Err(SignInError::SecondFactorNotEnrolled);
            }
            (None, _) => {}
            (Some(_), None) => return Err(SignInError::SecondFactor),
            (Some(secret), Some(code)) => {
                let secret =
                    totp::TotpSecret::from_bytes(secret).map_err(|_| SignInError::Token)?;
                let step = match totp::verify(&secret, code, now_secs, credentials.totp_step) {
                    Ok(step) => step,
                    Err(_) => {
                        self.fail(&id, now, now_secs, address, "wrong second-factor code")?;
                        return Err(SignInError::SecondFactor);
                    }
                };
                // The store's compare-and-set settles two sign-ins racing with one code.
                if !store.accept_totp_step(&id, step)? {
                    self.fail(&id, now, now_secs, address, "second-factor code reused")?;
                    return Err(SignInError::SecondFactor);
                }
            }
        }
        store.clear_sign_in_failures(&id)?;
        // A hash made with weaker parameters than today's is upgraded while the password is
        // at hand (the only time it is).
        if let Some(phc) = &credentials.password
            && password::needs_rehash(phc)
            && let Ok(upgraded) = password::hash_password(password_text)
        {
            store.set_password(&id, &upgraded)?;
        }
        self.open_session(&record, requested, now, None)
    }

    /// Opens a session for `record` (signed in by whatever means) and signs its token: the
    /// role's scopes, narrowed to `requested`; audited as the user's Login, with `how` as the
    /// reason when it was not a password.
    pub(super) fn open_session(
        &self,
        record: &UserRecord,
        requested: Option<Scopes>,
        now: Timestamp,
        how: Option<&str>,
    ) -> Result<SignedIn, SignInError> {
        let id = record.id.clone();
        let allowed = policy::role_scopes(record.role);
        let scopes = match requested {
            Some(requested) => allowed.intersect(&requested),
            None => allowed,
        };
        let session_id = random_id()?;
        let expires_at =
            Timestamp::from_unix_millis(now.unix_millis() + self.inner.settings.session_ms)
                .map_err(|_| SignInError::Token)?;
        self.inner.store.add_user_session(&UserSessionRecord {
            id: session_id.clone(),
            user: id.clone(),
            created_at: now,
            last_used: now,
            expires_at,
            revoked_at: None,
        })?;
        let claims = Claims {
            iss: super::ISSUER.to_owned(),
            sub: id.as_str().to_owned(),
            sid: session_id.clone(),
            role: record.role,
            scope: scopes.to_string(),
            iat: now.unix_millis().div_euclid(1000),
            exp: expires_at.unix_millis().div_euclid(1000),
            nbf: None,
            jti: session_id,
        };
        let token = self
            .inner
            .signer
            .sign(&claims)
            .map_err(|_| SignInError::Token)?;
        self.inner.auditor.record_later(entry(
            Actor::User(id.clone()),
            Action::Login,
            ResourceKind::User,
            id.as_str(),
            Outcome::Success,
            how,
        ));
        Ok(SignedIn {
            token,
            user: id,
            role: record.role,
            expires_at,
            scope: claims.scope,
        })
    }

    /// Records a failed sign-in; locks the account (audited, alerted) when it reaches the limit.
    fn fail(
        &self,
        id: &UserId,
        now: Timestamp,
        now_secs: i64,
        address: IpAddr,
        reason: &str,
    ) -> Result<(), SignInError> {
        let lockout = &self.inner.settings.lockout;
        let keep_after =
            Timestamp::from_unix_millis(now.unix_millis() - lockout.window_secs * 1000)
                .unwrap_or(Timestamp::EPOCH);
        let failures: Vec<i64> = self
            .inner
            .store
            .record_sign_in_failure(id, now, keep_after)?
            .iter()
            .map(|t| t.unix_millis().div_euclid(1000))
            .collect();
        self.audit_refused_login(address, id.as_str(), reason);
        self.address_failed(address, now_secs);
        if let Some(until) = lockout.locked_until(&failures, now_secs) {
            tracing::warn!(user = %id, "account locked after repeated failed sign-ins");
            self.inner.auditor.record_later(entry(
                Actor::System,
                Action::Update,
                ResourceKind::User,
                id.as_str(),
                Outcome::Success,
                Some("account locked after repeated failed sign-ins"),
            ));
            self.raise(Access::person_alert(
                AlertKind::AuthFailureBurst,
                Severity::Medium,
                None,
                &[
                    ("user", id.as_str().to_owned()),
                    ("failures", failures.len().to_string()),
                    ("locked_until_unix", until.to_string()),
                    ("last_address", address.to_string()),
                ],
            ));
        }
        Ok(())
    }

    /// Audits a refused sign-in from `address`: `resource` is the account, or "unknown" (a name
    /// that is no account is never written down: it may be a password typed in the wrong field).
    pub(super) fn audit_refused_login(&self, address: IpAddr, resource: &str, reason: &str) {
        self.inner.auditor.record_later(entry(
            Actor::Unauthenticated(address.to_string()),
            Action::Login,
            ResourceKind::User,
            resource,
            Outcome::Denied,
            Some(reason),
        ));
    }

    /// Until when (Unix seconds) sign-ins from `address` are refused, if they are: too many
    /// failed sign-ins came from it, on any accounts ([`vigil_auth::source`]).
    pub fn address_refused_until(&self, address: IpAddr, now_secs: i64) -> Option<i64> {
        self.addresses()
            .refused_until(Source::of(address), now_secs)
    }

    /// Counts a failed sign-in from `address`; the failure that gets the address refused is
    /// audited and alerts the security officer (once per refusal: the attempts refused after it
    /// never reach an account, and are not audited one by one).
    fn address_failed(&self, address: IpAddr, now_secs: i64) {
        let source = Source::of(address);
        let Some(until) = self.addresses().record(source, now_secs) else {
            return;
        };
        tracing::warn!(%source, "sign-ins from one address refused after repeated failures");
        self.inner.auditor.record_later(entry(
            Actor::System,
            Action::Update,
            ResourceKind::User,
            "unknown",
            Outcome::Denied,
            Some(&format!(
                "sign-ins from {source} refused after repeated failures on any accounts"
            )),
        ));
        self.raise(Access::person_alert(
            AlertKind::AuthFailureBurst,
            Severity::High,
            None,
            &[
                ("source", source.to_string()),
                (
                    "failures",
                    self.inner.settings.addresses.max_failures.to_string(),
                ),
                ("refused_until_unix", until.to_string()),
            ],
        ));
    }

    fn addresses(&self) -> std::sync::MutexGuard<'_, vigil_auth::SourceFailures> {
        // Counters only: a panic while holding the lock leaves nothing inconsistent.
        self.inner
            .addresses
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Ends the session a principal signed in with.
    pub fn sign_out(&self, principal: &super::Principal) -> Result<(), StoreError> {
        self.inner
            .store
            .revoke_user_session(&principal.session, Timestamp::now())?;
        self.inner.auditor.record_later(entry(
            Actor::User(principal.user.clone()),
            Action::Logout,
            ResourceKind::User,
            principal.user.as_str(),
            Outcome::Success,
            None,
        ));
        Ok(())
    }
}

/// 128 random bits, hex.
pub(crate) fn random_id() -> Result<String, SignInError> {
    let mut bytes = [0u8; 16];
    aws_lc_rs::rand::fill(&mut bytes).map_err(|_| SignInError::Token)?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}
