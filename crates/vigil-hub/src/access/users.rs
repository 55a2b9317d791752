//! Making accounts: an initial password (random, shown once) and, for privileged roles, a
//! second factor enrolled at once. Shared by `vigil user add` and `POST /api/v1/users`.

use vigil_auth::{password, totp::TotpSecret};
use vigil_model::{Action, Actor, Outcome, PatientId, ResourceKind, Role, Timestamp, UserId};
use vigil_store::{Store, StoreError, UserRecord};

use crate::audit::{Auditor, entry};

/// A new account's secrets, to hand to its owner once.
#[derive(Debug)]
pub struct NewUser {
    /// The user.
    pub user: UserId,
    /// The initial password (generated unless one was given).
    pub password: String,
    /// The second factor, when one was enrolled.
    pub totp: Option<TotpSecret>,
}

/// Why an account could not be made.
#[derive(Debug, thiserror::Error)]
pub enum NewUserError {
    /// A patient account must name its patient, and only a patient account may.
    #[error("a patient account needs --patient, and only a patient account may have one")]
    PatientLink,
    /// The given password breaks the policy.
    #[error("password refused: {0}")]
    Policy(String),
    /// Randomness or hashing failed.
    #[error("could not make the account's secrets")]
    Secrets,
    /// The store refused (an existing user, an unknown patient).
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Length of a generated password: 20 characters from a 56-symbol alphabet, about 116 bits.
const GENERATED_LEN: usize = 20;
/// No 0/O, 1/l/I: read aloud or copied by hand without mistakes.
const ALPHABET: &[u8] = b"abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";

/// A random password.
pub fn generate_password() -> Result<String, NewUserError> {
    let mut out = String::with_capacity(GENERATED_LEN);
    let mut byte = [0u8; 1];
    while out.len() < GENERATED_LEN {
        aws_lc_rs::rand::fill(&mut byte).map_err(|_| NewUserError::Secrets)?;
        // Rejection sampling keeps every symbol equally likely.
        let limit = 256 - 256 % ALPHABET.len();
        if usize::from(byte[0]) < limit {
            out.push(char::from(ALPHABET[usize::from(byte[0]) % ALPHABET.len()]));
        }
    }
    Ok(out)
}

/// Makes an account (audited, by `actor`). Privileged roles get a second factor at once.
pub fn create_user(
    store: &dyn Store,
    auditor: &Auditor,
    actor: Actor,
    user: UserId,
    role: Role,
    patient: Option<&PatientId>,
    password_text: Option<String>,
) -> Result<NewUser, NewUserError> {
    if (role == Role::Patient) != patient.is_some() {
        return Err(NewUserError::PatientLink);
    }
    let password_text = match password_text {
        Some(given) => {
            password::check_policy(&given, user.as_str())
                .map_err(|e| NewUserError::Policy(e.to_string()))?;
            given
        }
        None => generate_password()?,
    };
    let phc = password::hash_password(&password_text).map_err(|_| NewUserError::Secrets)?;
    let totp = if role.is_privileged() {
        Some(TotpSecret::generate().map_err(|_| NewUserError::Secrets)?)
    } else {
        None
    };
    if let Some(patient) = patient {
        // Checked before the account exists, so a typo leaves nothing behind.
        if store.patient(patient)?.is_none() {
            return Err(StoreError::NoSuchPatient(patient.clone()).into());
        }
    }
    store.add_user(&UserRecord {
        id: user.clone(),
        role,
        created_at: Timestamp::now(),
        disabled_at: None,
    })?;
    store.set_password(&user, &phc)?;
    if let Some(secret) = &totp {
        store.set_totp_secret(&user, Some(secret.as_bytes()))?;
    }
    if let Some(patient) = patient {
        store.set_user_patient(&user, patient)?;
    }
    auditor.record(&entry(
        actor,
        Action::Create,
        ResourceKind::User,
        user.as_str(),
        Outcome::Success,
        Some(role.as_str()),
    ))?;
    Ok(NewUser {
        user,
        password: password_text,
        totp,
    })
}

/// Enrols (or replaces) a user's second factor; audited.
pub fn enrol_totp(
    store: &dyn Store,
    auditor: &Auditor,
    actor: Actor,
    user: &UserId,
) -> Result<TotpSecret, NewUserError> {
    let secret = TotpSecret::generate().map_err(|_| NewUserError::Secrets)?;
    store.set_totp_secret(user, Some(secret.as_bytes()))?;
    auditor.record(&entry(
        actor,
        Action::Update,
        ResourceKind::User,
        user.as_str(),
        Outcome::Success,
        Some("second factor enrolled"),
    ))?;
    Ok(secret)
}

/// Sets a user's password (an administrator's reset); every session of theirs ends. Audited.
pub fn reset_password(
    store: &dyn Store,
    auditor: &Auditor,
    actor: Actor,
    user: &UserId,
    password_text: Option<String>,
) -> Result<String, NewUserError> {
    let password_text = match password_text {
        Some(given) => {
            password::check_policy(&given, user.as_str())
                .map_err(|e| NewUserError::Policy(e.to_string()))?;
            given
        }
        None => generate_password()?,
    };
    let phc = password::hash_password(&password_text).map_err(|_| NewUserError::Secrets)?;
    store.set_password(user, &phc)?;
    store.clear_sign_in_failures(user)?;
    store.revoke_sessions_of(user, Timestamp::now())?;
    auditor.record(&entry(
        actor,
        Action::Update,
        ResourceKind::User,
        user.as_str(),
        Outcome::Success,
        Some("password reset"),
    ))?;
    Ok(password_text)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn generated_passwords_are_long_unambiguous_and_different() {
        let a = generate_password().unwrap();
        let b = generate_password().unwrap();
        assert_eq!(a.len(), GENERATED_LEN);
        assert_ne!(a, b);
        assert!(a.bytes().all(|c| ALPHABET.contains(&c)));
        assert!(!a.contains(['0', 'O', '1', 'l', 'I']));
    }
}
