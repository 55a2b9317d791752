//! Vigil's sign-in primitives and access policy: the pure building blocks behind clinician and
//! patient access (issue #8). The hub's HTTPS handlers, the store and the command line call
//! them; nothing here does I/O, reads a clock or keeps global state. Times come in as Unix
//! seconds, randomness from `aws_lc_rs::rand`.
//!
//! - [`password`]: Argon2id PHC strings with OWASP's parameters, verification bounded against
//!   tampered hashes, a dummy verification for unknown users, and the NIST SP 800-63B-4
//!   policy for new passwords (length, user name, an embedded blocklist).
//! - [`totp`]: the RFC 6238 second factor, required of privileged roles
//!   ([`vigil_model::Role::is_privileged`]): codes, a ±1 step window, replay refusal,
//!   enrolment URIs.
//! - [`token`]: session tokens as PASETO v4.public (Ed25519), signed and verified with claims
//!   checked strictly.
//! - [`session`]: idle timeout, maximum lifetime and revocation of a session.
//! - [`lockout`]: locking an account after repeated failures, over the failure times the
//!   store keeps.
//! - [`source`]: refusing a network source after repeated failures on any accounts (password
//!   spraying), in memory and bounded.
//! - [`scope`]: SMART on FHIR v2 scopes: parsing, checking, narrowing.
//! - [`policy`]: the access decision for a role, an operation and the relation to a patient
//!   (care team, consent, break-glass), and the scopes each role's token may carry.
//! - [`oidc`]: signing in through the hospital's OpenID Connect provider: ID token
//!   verification (RS256, ES256, keys from a JWKS document) and PKCE S256.
//!
//! Hand-written where a crate would bring a second crypto provider: PASETO (the PASETO crates
//! bring their own Ed25519 and BLAKE2), JOSE for OpenID Connect (likewise), and TOTP (a few
//! lines over aws-lc-rs's HMAC). Argon2 is
//! RustCrypto's `argon2`, since aws-lc-rs has none.

#![forbid(unsafe_code)]

pub mod lockout;
pub mod oidc;
pub mod password;
pub mod policy;
pub mod scope;
pub mod session;
pub mod source;
pub mod token;
pub mod totp;

pub use lockout::LockoutPolicy;
pub use oidc::{Expected, IdToken, Jwks, OidcError, PkceVerifier, verify_id_token, verify_pkce};
pub use password::{
    PasswordError, PolicyError, check_policy, hash_password, needs_rehash, verify_dummy,
    verify_password,
};
pub use policy::{Basis, Decision, DenyReason, Operation, Relation, decide, role_scopes};
pub use scope::{Context, Interaction, ScopeError, Scopes, SpecialScope};
pub use session::{SessionError, SessionPolicy, SessionState};
pub use source::{Source, SourceFailures};
pub use token::{Claims, TokenError, TokenSigner, TokenVerifier, random_id};
pub use totp::{TotpError, TotpSecret};
