//! Passwords: Argon2id hashing in PHC strings, and the policy a new password must meet.
//!
//! Parameters follow the OWASP Password Storage Cheat Sheet
//! (<https://cheatsheetseries.owasp.org/cheatsheets/Password_Storage_Cheat_Sheet.html>,
//! "Argon2id"): m = 19 MiB, t = 2, p = 1, with a 16-byte random salt and a 32-byte output.
//! aws-lc-rs has no Argon2, so hashing is RustCrypto's `argon2` crate; the salt comes from
//! aws-lc-rs.
//!
//! Passwords are NFKC-normalised before they are checked or hashed, as NIST SP 800-63B-4
//! §3.1.1.2 recommends, so that the same password typed on two keyboards (a composed `é` or
//! an `e` and a combining accent) is the same password.
//!
//! A PHC string read back from the store is not trusted blindly: its algorithm must be
//! Argon2id and its cost parameters within [`MAX_M_COST_KIB`], [`MAX_T_COST`] and
//! [`MAX_P_COST`], so that a damaged or tampered row cannot make a sign-in allocate gigabytes.

use std::borrow::Cow;

use argon2::password_hash::phc::PasswordHash;
use argon2::{
    ARGON2ID_IDENT, Algorithm, Argon2, Params, PasswordHasher as _, PasswordVerifier as _, Version,
};
use icu_normalizer::ComposingNormalizerBorrowed;

/// Argon2 memory cost in KiB: 19 MiB (OWASP Password Storage Cheat Sheet).
pub const M_COST_KIB: u32 = 19 * 1024;
/// Argon2 iterations (OWASP Password Storage Cheat Sheet, with m = 19 MiB).
pub const T_COST: u32 = 2;
/// Argon2 lanes (OWASP Password Storage Cheat Sheet).
pub const P_COST: u32 = 1;
/// Hash output length in bytes.
const OUTPUT_LEN: usize = 32;
/// Salt length in bytes (the PHC string format's recommendation).
const SALT_LEN: usize = 16;

/// The largest memory cost a stored hash may ask for: 128 MiB.
pub const MAX_M_COST_KIB: u32 = 128 * 1024;
/// The most iterations a stored hash may ask for.
pub const MAX_T_COST: u32 = 16;
/// The most lanes a stored hash may ask for.
pub const MAX_P_COST: u32 = 8;
/// The longest PHC string read back (ours are about 100 characters).
const MAX_PHC_LEN: usize = 256;

/// The longest password accepted for hashing or verification, in bytes (before normalisation).
/// The policy's 128 characters fit in 512 bytes of UTF-8; this leaves room and a bound.
pub const MAX_PASSWORD_BYTES: usize = 1024;

/// The fewest characters (Unicode scalar values, after NFKC) a new password may have
/// (NIST SP 800-63B-4 §3.1.1.2 asks for at least 15 for single-factor use, at least 8 with a
/// second factor; Vigil asks for 12 for every role).
pub const MIN_CHARS: usize = 12;
/// The most characters a new password may have (NIST SP 800-63B-4 asks to permit at least 64).
pub const MAX_CHARS: usize = 128;

/// The longest run of digits and symbols around a common word that still counts as weak
/// (`2024!`, `123456`), unless it is itself common (`1234567890`).
const WEAK_AFFIX_CHARS: usize = 6;

/// The shortest user name checked for in a password; shorter names ("al") would refuse
/// passwords for no reason.
const MIN_USER_NAME_CHARS: usize = 3;

/// A PHC string of a random password, hashed with the current parameters. [`verify_dummy`]
/// verifies against it so that an unknown user costs the same time as a known one. A test
/// checks that its parameters are the current ones.
const DUMMY_PHC: &str = concat!(
    "$argon2id$v=19$m=19456,t=2,p=1$9a8G2O2C21gXsW++SFJMXQ",
    "$VJuz/fTldWadTufJORO2e9OFPyMxxPzsKe5tqIhvKgM"
);

/// Common passwords; see the file's header for its source.
const COMMON_PASSWORDS: &str = include_str!("../data/common-passwords.txt");

/// Words specific to this service and its users that belong on a blocklist
/// (NIST SP 800-63B-4 §3.1.1.2, "context-specific words, such as the name of the service").
const CONTEXT_WORDS: &[&str] = &[
    "vigil",
    "hospital",
    "clinic",
    "medical",
    "health",
    "patient",
    "nurse",
    "doctor",
    "physician",
    "changeme",
    "welcome",
];

/// Why a password could not be hashed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PasswordError {
    /// The password is empty.
    #[error("the password is empty")]
    Empty,
    /// The password is longer than [`MAX_PASSWORD_BYTES`].
    #[error("the password is longer than {MAX_PASSWORD_BYTES} bytes")]
    TooLong,
    /// The system random generator failed.
    #[error("the system random generator failed")]
    Random,
    /// Argon2 failed (it does not for the parameters used here).
    #[error("Argon2id hashing failed")]
    Hashing,
}

/// Why a new password is refused. Never carries the password.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PolicyError {
    /// Fewer than [`MIN_CHARS`] characters.
    #[error("the password must have at least {min} characters")]
    TooShort {
        /// The minimum.
        min: usize,
    },
    /// More than [`MAX_CHARS`] characters.
    #[error("the password must have at most {max} characters")]
    TooLong {
        /// The maximum.
        max: usize,
    },
    /// The password contains the user name.
    #[error("the password must not contain the user name")]
    ContainsUserName,
    /// The password is, or is built from, a commonly used password.
    #[error("the password is too common: it is, or is built from, a commonly used password")]
    Common,
}

/// The Argon2id context with Vigil's current parameters.
fn current() -> Result<Argon2<'static>, PasswordError> {
    let params = Params::new(M_COST_KIB, T_COST, P_COST, Some(OUTPUT_LEN))
        .map_err(|_| PasswordError::Hashing)?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}

fn nfkc(text: &str) -> Cow<'_, str> {
    ComposingNormalizerBorrowed::new_nfkc().normalize(text)
}

/// Hashes `password` with Argon2id under the current parameters and a random salt, as a PHC
/// string (`$argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>`). Takes about as long as a sign-in.
pub fn hash_password(password: &str) -> Result<String, PasswordError> {
    if password.is_empty() {
        return Err(PasswordError::Empty);
    }
    if password.len() > MAX_PASSWORD_BYTES {
        return Err(PasswordError::TooLong);
    }
    let mut salt = [0u8; SALT_LEN];
    aws_lc_rs::rand::fill(&mut salt).map_err(|_| PasswordError::Random)?;
    let hash = current()?
        .hash_password_with_salt(nfkc(password).as_bytes(), &salt)
        .map_err(|_| PasswordError::Hashing)?;
    Ok(hash.to_string())
}

/// Whether `password` matches the PHC string `phc`. False for a wrong password, and false for
/// a PHC string that is malformed, not Argon2id, or asks for more than the bounds; those cost
/// the same time as a real check.
pub fn verify_password(password: &str, phc: &str) -> bool {
    match parse_bounded(phc) {
        Some(hash) if password.len() <= MAX_PASSWORD_BYTES => Argon2::default()
            .verify_password(nfkc(password).as_bytes(), &hash)
            .is_ok(),
        _ => {
            verify_dummy(password);
            false
        }
    }
}

/// Spends the time of one [`verify_password`] with the current parameters and discards the
/// result: call it when the user is unknown, so that timing does not tell which user names
/// exist.
pub fn verify_dummy(password: &str) {
    let bounded = password
        .get(..MAX_PASSWORD_BYTES.min(password.len()))
        .unwrap_or("");
    if let Some(hash) = parse_bounded(DUMMY_PHC) {
        let _ignored = Argon2::default().verify_password(nfkc(bounded).as_bytes(), &hash);
    }
}

/// Whether the PHC string was made with parameters weaker than the current ones (or is not a
/// usable Argon2id hash at all): after a successful sign-in the caller rehashes the password.
pub fn needs_rehash(phc: &str) -> bool {
    let Some(hash) = parse_bounded(phc) else {
        return true;
    };
    let Ok(params) = Params::try_from(&hash) else {
        return true;
    };
    hash.version != Some(Version::V0x13.into())
        || params.m_cost() < M_COST_KIB
        || params.t_cost() < T_COST
        || params.output_len().unwrap_or(0) < OUTPUT_LEN
        || hash.salt.is_none_or(|salt| salt.len() < SALT_LEN)
}

/// The PHC string parsed, if it is an Argon2id hash (version 1.3) with a salt, an output and
/// costs within the bounds.
fn parse_bounded(phc: &str) -> Option<PasswordHash> {
    if phc.len() > MAX_PHC_LEN {
        return None;
    }
    let hash = PasswordHash::new(phc).ok()?;
    if hash.algorithm != ARGON2ID_IDENT
        || hash.version != Some(Version::V0x13.into())
        || hash.salt.is_none()
        || hash.hash.is_none()
    {
        return None;
    }
    let params = Params::try_from(&hash).ok()?;
    let within = params.m_cost() <= MAX_M_COST_KIB
        && params.t_cost() <= MAX_T_COST
        && params.p_cost() <= MAX_P_COST;
    within.then_some(hash)
}

/// Checks a new password for `user` against Vigil's policy, in the spirit of NIST SP 800-63B-4
/// §3.1.1.2: at least [`MIN_CHARS`] and at most [`MAX_CHARS`] characters (Unicode scalar
/// values after NFKC; any character allowed), not containing the user name (or, for an e-mail
/// address, its local part), and not a common password nor built from one. No composition
/// rules ("a digit and a symbol"): NIST advises against them.
pub fn check_policy(password: &str, user: &str) -> Result<(), PolicyError> {
    if password.len() > MAX_PASSWORD_BYTES {
        return Err(PolicyError::TooLong { max: MAX_CHARS });
    }
    let normalised = nfkc(password);
    let chars = normalised.chars().count();
    if chars < MIN_CHARS {
        return Err(PolicyError::TooShort { min: MIN_CHARS });
    }
    if chars > MAX_CHARS {
        return Err(PolicyError::TooLong { max: MAX_CHARS });
    }
    let folded = normalised.to_lowercase();
    if contains_user_name(&folded, user) {
        return Err(PolicyError::ContainsUserName);
    }
    if is_common(&folded) {
        return Err(PolicyError::Common);
    }
    Ok(())
}

fn contains_user_name(folded_password: &str, user: &str) -> bool {
    let user = nfkc(user).to_lowercase();
    let local_part = user.split('@').next().unwrap_or_default();
    [user.as_str(), local_part]
        .into_iter()
        .filter(|name| name.chars().count() >= MIN_USER_NAME_CHARS)
        .any(|name| folded_password.contains(name))
}

/// Whether a lower-cased password is common: built from listed words (one listed word or
/// context word, two joined as in `qwertydragon` or `password123456`, one repeated as in
/// `monkeymonkey`), one short unit repeated (`abcabcabcabc`), a run of consecutive characters
/// (`123456789012`), or any of these with weak digits or symbols around it (`Password2024!`,
/// `!!!!monkey!!!!`). An affix is weak when it is short (at most [`WEAK_AFFIX_CHARS`]) or itself
/// common; `fish839201746352` passes, its twelve digits being the strength of it.
fn is_common(folded: &str) -> bool {
    let mut words: Vec<String> = COMMON_PASSWORDS
        .lines()
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .map(str::to_lowercase)
        .chain(CONTEXT_WORDS.iter().map(|word| (*word).to_owned()))
        .collect();
    words.sort_unstable();
    words.dedup();
    let listed = |candidate: &str| {
        words
            .binary_search_by(|w| w.as_str().cmp(candidate))
            .is_ok()
    };
    let built = |text: &str| {
        listed(text)
            || text
                .char_indices()
                .skip(1)
                .any(|(at, _)| listed(&text[..at]) && listed(&text[at..]))
            || is_repetition(text, &listed)
            || (text.chars().count() >= 4 && is_run(text))
    };
    if built(folded) {
        return true;
    }
    let affix = |c: char| c.is_ascii_digit() || c.is_ascii_punctuation();
    let start = folded.len() - folded.trim_start_matches(affix).len();
    let core = folded.trim_matches(affix);
    if core.is_empty() {
        return false;
    }
    let weak = |affix: &str| affix.chars().count() <= WEAK_AFFIX_CHARS || built(affix);
    built(core) && weak(&folded[..start]) && weak(&folded[start + core.len()..])
}

/// Whether `text` is one unit repeated, the unit being at most 4 characters or listed.
fn is_repetition(text: &str, listed: &dyn Fn(&str) -> bool) -> bool {
    let chars: Vec<char> = text.chars().collect();
    (1..=chars.len() / 2).any(|unit| {
        chars.len().is_multiple_of(unit)
            && chars.chunks(unit).all(|chunk| chunk == &chars[..unit])
            && (unit <= 4 || listed(&chars[..unit].iter().collect::<String>()))
    })
}

/// Whether every character follows the previous one in code point order, all ascending or all
/// descending; digits wrap (`…7890123…`).
fn is_run(text: &str) -> bool {
    let step = |a: char, b: char| -> i64 {
        match (a, b) {
            ('9', '0') => 1,
            ('0', '9') => -1,
            _ => i64::from(u32::from(b)) - i64::from(u32::from(a)),
        }
    };
    let chars: Vec<char> = text.chars().collect();
    let steps: Vec<i64> = chars
        .windows(2)
        .map(|pair| step(pair[0], pair[1]))
        .collect();
    steps.iter().all(|s| *s == 1) || steps.iter().all(|s| *s == -1)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn a_hash_verifies_its_password_and_no_other() {
        let phc = hash_password("correct horse battery staple").unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
        assert!(verify_password("correct horse battery staple", &phc));
        assert!(!verify_password("correct horse battery stapler", &phc));
        assert!(!verify_password("", &phc));
        assert!(!needs_rehash(&phc));
    }

    #[test]
    fn salts_are_random() {
        let a = hash_password("the same password twice").unwrap();
        let b = hash_password("the same password twice").unwrap();
        assert_ne!(a, b);
    }

    #[test]
    fn passwords_are_compared_after_nfkc() {
        // "é" composed (U+00E9) and decomposed (U+0065 U+0301) are one password.
        let phc = hash_password("caf\u{e9} au lait, please").unwrap();
        assert!(verify_password("cafe\u{301} au lait, please", &phc));
    }

    #[test]
    fn empty_and_overlong_passwords_are_refused_for_hashing() {
        assert_eq!(hash_password(""), Err(PasswordError::Empty));
        let long = "x".repeat(MAX_PASSWORD_BYTES + 1);
        assert_eq!(hash_password(&long), Err(PasswordError::TooLong));
        // Verification of an overlong password is false, not an error or a panic.
        let phc = hash_password("a reasonable password").unwrap();
        assert!(!verify_password(&long, &phc));
    }

    #[test]
    fn malformed_or_foreign_hashes_never_verify() {
        let phc = hash_password("a reasonable password").unwrap();
        for bad in [
            "",
            "not a hash",
            &phc[..phc.len() - 5],
            // Argon2i, not Argon2id.
            &phc.replacen("argon2id", "argon2i", 1),
            // Version 1.0.
            &phc.replacen("v=19", "v=16", 1),
            // No version at all.
            &phc.replacen("$v=19", "", 1),
        ] {
            assert!(!verify_password("a reasonable password", bad), "{bad}");
            assert!(needs_rehash(bad), "{bad}");
        }
    }

    #[test]
    fn hashes_beyond_the_cost_bounds_are_refused_before_any_work() {
        let phc = hash_password("a reasonable password").unwrap();
        // 4 GiB of memory: refused without allocating it.
        let huge_memory = phc.replacen("m=19456", "m=4194304", 1);
        assert!(!verify_password("a reasonable password", &huge_memory));
        let many_passes = phc.replacen("t=2", "t=1000", 1);
        assert!(!verify_password("a reasonable password", &many_passes));
        let many_lanes = phc.replacen("p=1", "p=64", 1);
        assert!(!verify_password("a reasonable password", &many_lanes));
        let overlong = format!("{phc}{}", "A".repeat(MAX_PHC_LEN));
        assert!(!verify_password("a reasonable password", &overlong));
    }

    #[test]
    fn weaker_parameters_need_a_rehash_and_stronger_ones_do_not() {
        let salt = [7u8; SALT_LEN];
        let weak = Argon2::new(
            Algorithm::Argon2id,
            Version::V0x13,
            Params::new(8 * 1024, 1, 1, Some(OUTPUT_LEN)).unwrap(),
        )
        .hash_password_with_salt(b"a reasonable password", &salt)
        .unwrap()
        .to_string();
        assert!(verify_password("a reasonable password", &weak));
        assert!(needs_rehash(&weak));

        let strong = Argon2::new(
            Algorithm::Argon2id,
            Version::V0x13,
            Params::new(M_COST_KIB, T_COST + 1, P_COST, Some(OUTPUT_LEN)).unwrap(),
        )
        .hash_password_with_salt(b"a reasonable password", &salt)
        .unwrap()
        .to_string();
        assert!(verify_password("a reasonable password", &strong));
        assert!(!needs_rehash(&strong));
    }

    #[test]
    fn the_dummy_hash_costs_what_a_real_one_does() {
        let dummy = parse_bounded(DUMMY_PHC).expect("the dummy hash parses");
        let params = Params::try_from(&dummy).unwrap();
        assert_eq!(
            (params.m_cost(), params.t_cost(), params.p_cost()),
            (M_COST_KIB, T_COST, P_COST),
            "regenerate DUMMY_PHC with hash_password after changing the parameters"
        );
        assert_eq!(params.output_len(), Some(OUTPUT_LEN));
        assert!(!needs_rehash(DUMMY_PHC));
        // It runs on any input without panicking, overlong and multi-byte included.
        verify_dummy("");
        verify_dummy(&"é".repeat(MAX_PASSWORD_BYTES));
    }

    #[test]
    fn length_is_counted_in_characters_after_nfkc() {
        assert_eq!(
            check_policy("short pass", "alice"),
            Err(PolicyError::TooShort { min: 12 })
        );
        // Twelve characters, 24 bytes: long enough.
        assert_eq!(check_policy("éèêëàâäîïôöû", "alice"), Ok(()));
        // Eleven two-byte characters: too short, though 22 bytes.
        assert_eq!(
            check_policy("éèêëéèêëéèê", "alice"),
            Err(PolicyError::TooShort { min: 12 })
        );
        assert_eq!(
            check_policy(&"wq".repeat(65), "alice"),
            Err(PolicyError::TooLong { max: 128 })
        );
        assert_eq!(
            check_policy(&"x".repeat(MAX_PASSWORD_BYTES + 1), "alice"),
            Err(PolicyError::TooLong { max: 128 })
        );
    }

    #[test]
    fn a_password_containing_the_user_name_is_refused() {
        assert_eq!(
            check_policy("xX-Alice.Nurse-Xx-77", "alice.nurse"),
            Err(PolicyError::ContainsUserName)
        );
        // The local part of an e-mail address counts too.
        assert_eq!(
            check_policy("bob.smith rides at dawn", "Bob.Smith@example.org"),
            Err(PolicyError::ContainsUserName)
        );
        // Very short names are not searched for.
        assert_eq!(check_policy("the algebra of tides", "al"), Ok(()));
    }

    #[test]
    fn common_passwords_and_what_is_built_from_them_are_refused() {
        for common in [
            "password1234",
            "Password2024!",
            "!!!!monkey!!!!",
            "qwertydragon",
            "password123456",
            "iloveyousunshine",
            "monkeymonkey",
            "abcabcabcabc",
            "aaaaaaaaaaaa",
            "123456789012",
            "abcdefghijklm",
            "987654321098",
            "vigilvigil2024",
            "hospital12345",
            "password1234567890",
            "monkey!!!!!!!!!!",
        ] {
            assert_eq!(
                check_policy(common, "alice"),
                Err(PolicyError::Common),
                "{common}"
            );
        }
    }

    #[test]
    fn ordinary_long_passwords_pass() {
        for good in [
            "correct horse battery staple",
            "Tr0ub4dor&3-is-not-enough",
            "839201746352",
            "my cat eats kale on tuesdays",
            "passwordless-future-soon", // contains a listed word, but is not built from it alone
            "fish839201746352",         // a listed word, and twelve digits that are not weak
            "x839201746352",
        ] {
            assert_eq!(check_policy(good, "alice"), Ok(()), "{good}");
        }
    }

    #[test]
    fn policy_errors_never_echo_the_password() {
        let secret = "Password2024!";
        let error = check_policy(secret, "alice").unwrap_err();
        assert!(!error.to_string().contains(secret));
        assert!(!format!("{error:?}").contains(secret));
    }

    #[test]
    fn the_embedded_list_is_the_documented_one() {
        let entries: Vec<&str> = COMMON_PASSWORDS
            .lines()
            .filter(|line| !line.is_empty() && !line.starts_with('#'))
            .collect();
        assert_eq!(entries.len(), 1000);
        assert_eq!(entries.first(), Some(&"123456"));
        assert_eq!(entries.get(1), Some(&"password"));
    }
}
