//! Signing in through the hospital's OpenID Connect provider: the hub as a confidential client
//! of the authorization code flow with PKCE (OpenID Connect Core 1.0 §3.1, RFC 7636).
//!
//! [`OidcClient::discover`] reads the provider's discovery document at start (its `issuer`
//! must be the configured one, OpenID Connect Discovery 1.0 §4.3) and its keys.
//! [`OidcClient::begin`] makes the authorization request and remembers its state, nonce and
//! PKCE verifier — in memory, at most [`MAX_PENDING`] of them and [`MAX_PENDING_PER_SOURCE`]
//! from one network address, for [`LOGIN_TTL`], each usable once. [`OidcClient::finish`] takes the browser back: the state must be one it made; the code
//! is exchanged at the token endpoint with the client's secret and the verifier; the ID token
//! is verified by `vigil_auth::oidc` with the nonce; keys are fetched again when a token names
//! one the hub does not know, at most once a minute. [`Access::sign_in_oidc`] then maps the
//! configured claim to a Vigil account, which must exist and be enabled (the provider never
//! creates accounts), and opens the same session as a password sign-in. Administrators and
//! security officers need the provider to assert multi-factor authentication, as Vigil's own
//! sign-in needs their second factor; the lockout rules do not apply (the provider has its
//! own).

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use serde::Deserialize;
use vigil_auth::oidc::{Expected, Jwks, OidcError, PkceVerifier, verify_id_token};
use vigil_auth::source::Source;
use vigil_config::{OidcConfig, UsernameClaim};
use vigil_model::{Action, Actor, Outcome, ResourceKind, Timestamp, UserId};
use vigil_store::StoreError;

use super::Access;
use super::signin::{SignInError, SignedIn, random_id};
use crate::audit::entry;

/// How long a sign-in begun at the provider may take to come back.
pub const LOGIN_TTL: Duration = Duration::from_secs(10 * 60);
/// The most sign-ins waiting for the provider at once; the oldest is forgotten first.
pub const MAX_PENDING: usize = 10_000;
/// The most sign-ins one network address (an IPv4 address, an IPv6 /64) may have waiting; its
/// oldest is forgotten first. `/login` needs no credential, so without this bound one client
/// could push everyone else's sign-ins out of the [`MAX_PENDING`] in a few seconds. Generous
/// for a hospital's NAT address: a sign-in waits only while its user is at the provider.
pub const MAX_PENDING_PER_SOURCE: usize = 64;
/// Keys are fetched again for an unknown key id at most this often.
pub const JWKS_REFRESH_EVERY: Duration = Duration::from_secs(60);
/// The scopes asked of the provider.
pub const SCOPE: &str = "openid profile email";

/// The largest discovery document or token response read.
const MAX_DOCUMENT: usize = 64 * 1024;
/// The largest CA file read.
const MAX_CA_FILE: u64 = 1024 * 1024;
/// Every request to the provider gives up after this long.
const HTTP_TIMEOUT: Duration = Duration::from_secs(10);
/// How old an ID token may be when it arrives: the code was just exchanged.
const ID_TOKEN_MAX_AGE_SECS: i64 = 10 * 60;

/// Why the hub could not set up sign-in through the provider at start.
#[derive(Debug, thiserror::Error)]
pub enum OidcSetupError {
    /// The CA file cannot be read.
    #[error("oidc.ca_file {path}: {source}")]
    CaFile {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The CA file holds no PEM certificate, or is too large.
    #[error("oidc.ca_file {0}: not a PEM file of CA certificates (at most 1 MiB)")]
    CaPem(PathBuf),
    /// The HTTP client could not be built.
    #[error("OIDC: the HTTP client could not be built: {0}")]
    Client(reqwest::Error),
    /// The discovery document or the key set could not be fetched or used.
    #[error("OIDC provider {url}: {problem}")]
    Provider {
        /// What was fetched.
        url: String,
        /// What is wrong.
        problem: String,
    },
}

/// Why a sign-in through the provider could not complete. Never holds what the provider or the
/// browser sent.
#[derive(Debug, thiserror::Error)]
pub enum OidcFlowError {
    /// The state is not one the hub made, has expired, or was used.
    #[error("unknown, expired or already used sign-in state")]
    UnknownState,
    /// The callback names another issuer (RFC 9207): a mix-up.
    #[error("the callback names another issuer")]
    WrongIssuer,
    /// The provider answered the authorization request with an error (its registered code).
    #[error("the provider refused the sign-in: {0}")]
    ProviderRefused(&'static str),
    /// The provider could not be reached, or its token response is not usable.
    #[error("token exchange failed: {0}")]
    TokenExchange(String),
    /// The ID token was refused.
    #[error("ID token refused: {0}")]
    IdToken(#[from] OidcError),
    /// The system random generator failed.
    #[error("the system random generator failed")]
    Random,
}

/// Who the provider says signed in, once the ID token is verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OidcIdentity {
    /// The Vigil user the configured claim names, if it names one that can exist.
    pub user: Option<UserId>,
    /// Whether the provider asserted multi-factor authentication.
    pub mfa: bool,
}

/// Why a verified identity may not sign in. Each is audited as a denied Login.
#[derive(Debug, thiserror::Error)]
pub enum OidcSignInError {
    /// No enabled Vigil account for this identity.
    #[error("no enabled Vigil account for this identity")]
    NoAccount,
    /// A privileged role, without multi-factor authentication at the provider.
    #[error("this role needs multi-factor authentication at the provider")]
    MfaRequired,
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The session could not be opened.
    #[error(transparent)]
    Session(SignInError),
}

/// How the hub authenticates at the token endpoint (OpenID Connect Core 1.0 §9).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ClientAuth {
    /// `client_secret_basic`: HTTP Basic, the default.
    Basic,
    /// `client_secret_post`: in the form.
    Post,
}

/// A sign-in waiting for the provider.
struct Pending {
    nonce: String,
    verifier: PkceVerifier,
    begun: Instant,
    /// Where the browser that began it came from.
    source: Source,
}

/// The sign-ins waiting for the provider: bounded in all and per source, oldest first, each
/// taken once.
#[derive(Default)]
struct PendingLogins {
    by_state: HashMap<String, Pending>,
    /// States in the order they were made (so, by age); may name states already taken.
    order: VecDeque<String>,
    /// Each source's waiting states, oldest first: only sources with one, none taken.
    by_source: HashMap<Source, VecDeque<String>>,
}

impl PendingLogins {
    fn insert(&mut self, state: String, pending: Pending, now: Instant) {
        // The oldest go first: expired ones, names of states already taken, and at the bound
        // the oldest waiting.
        while let Some(oldest) = self.order.front() {
            let waiting = self
                .by_state
                .get(oldest)
                .is_some_and(|p| now.duration_since(p.begun) < LOGIN_TTL);
            if waiting && self.by_state.len() < MAX_PENDING {
                break;
            }
            if let Some(oldest) = self.order.pop_front() {
                self.forget(&oldest);
            }
        }
        // States taken out of the middle leave their names behind in `order`; dropping those
        // whenever they could outnumber the waiting keeps it within twice the bound, in
        // amortised constant time.
        if self.order.len() >= 2 * MAX_PENDING {
            let by_state = &self.by_state;
            self.order.retain(|s| by_state.contains_key(s));
        }
        let own = self.by_source.entry(pending.source).or_default();
        if own.len() >= MAX_PENDING_PER_SOURCE
            && let Some(oldest) = own.pop_front()
        {
            // Its entry in `order` goes stale, as a taken state's does.
            self.by_state.remove(&oldest);
        }
        own.push_back(state.clone());
        self.order.push_back(state.clone());
        self.by_state.insert(state, pending);
    }

    /// The sign-in of `state`, forgotten as it is taken; `None` if unknown, used or expired.
    fn take(&mut self, state: &str, now: Instant) -> Option<Pending> {
        self.forget(state)
            .filter(|p| now.duration_since(p.begun) < LOGIN_TTL)
    }

    /// Removes `state` from the map and from its source's list (the order keeps it, stale).
    fn forget(&mut self, state: &str) -> Option<Pending> {
        let pending = self.by_state.remove(state)?;
        if let Some(own) = self.by_source.get_mut(&pending.source) {
            own.retain(|s| s != state);
            if own.is_empty() {
                self.by_source.remove(&pending.source);
            }
        }
        Some(pending)
    }

    fn len(&self) -> usize {
        self.by_state.len()
    }
}

/// The provider's keys and when the hub last fetched them again.
struct Keys {
    jwks: Jwks,
    refreshed: Option<Instant>,
}

/// The hub as a client of the hospital's OpenID provider. Cheap to clone.
#[derive(Clone)]
pub struct OidcClient {
    inner: Arc<ClientInner>,
}

struct ClientInner {
    http: reqwest::Client,
    issuer: String,
    client_id: String,
    client_secret: vigil_config::Secret,
    redirect_uri: String,
    username_claim: UsernameClaim,
    username_domain: String,
    mfa_acr: String,
    authorization_endpoint: reqwest::Url,
    token_endpoint: reqwest::Url,
    jwks_uri: reqwest::Url,
    auth: ClientAuth,
    keys: Mutex<Keys>,
    pending: Mutex<PendingLogins>,
}

impl std::fmt::Debug for OidcClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OidcClient")
            .field("issuer", &self.inner.issuer)
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
struct Discovery {
    issuer: String,
    authorization_endpoint: String,
    token_endpoint: String,
    jwks_uri: String,
    token_endpoint_auth_methods_supported: Option<Vec<String>>,
    code_challenge_methods_supported: Option<Vec<String>>,
}

#[derive(Deserialize)]
struct TokenResponse {
    id_token: Option<String>,
}

#[derive(Deserialize)]
struct TokenErrorResponse {
    error: String,
}

/// The claims the hub reads besides those `vigil_auth` checks.
#[derive(Deserialize)]
struct MoreClaims {
    #[serde(default)]
    amr: Vec<String>,
    acr: Option<String>,
    email_verified: Option<bool>,
}

impl OidcClient {
    /// Reads the provider's discovery document and keys. A provider that cannot be reached, or
    /// whose documents do not fit the configuration, is an error: the hub does not start.
    pub async fn discover(config: &OidcConfig) -> Result<OidcClient, OidcSetupError> {
        let http = http_client(config)?;
        // OpenID Connect Discovery 1.0 §4: a terminating "/" of the issuer is not doubled.
        let url = format!(
            "{}/.well-known/openid-configuration",
            config.issuer.trim_end_matches('/')
        );
        let provider_error = |url: &str, problem: String| OidcSetupError::Provider {
            url: url.to_owned(),
            problem,
        };
        let body = fetch(&http, &url, MAX_DOCUMENT)
            .await
            .map_err(|problem| provider_error(&url, problem))?;
        let discovery: Discovery = serde_json::from_slice(&body).map_err(|_| {
            provider_error(
                &url,
                "not a discovery document (issuer, authorization_endpoint, token_endpoint, jwks_uri)".into(),
            )
        })?;
        if discovery.issuer != config.issuer {
            return Err(provider_error(
                &url,
                format!(
                    "its issuer is {:?}, not the configured oidc.issuer",
                    discovery.issuer.chars().take(200).collect::<String>()
                ),
            ));
        }
        let loopback_http = config.issuer.starts_with("http://");
        let endpoint = |name: &str, text: &str| {
            endpoint_url(text, loopback_http)
                .ok_or_else(|| provider_error(&url, format!("its {name} is not an https:// URL")))
        };
        let authorization_endpoint =
            endpoint("authorization_endpoint", &discovery.authorization_endpoint)?;
        let token_endpoint = endpoint("token_endpoint", &discovery.token_endpoint)?;
        let jwks_uri = endpoint("jwks_uri", &discovery.jwks_uri)?;
        let auth = match discovery.token_endpoint_auth_methods_supported.as_deref() {
            // The default when the provider does not say (Discovery §3).
            None => ClientAuth::Basic,
            Some(methods) if methods.iter().any(|m| m == "client_secret_basic") => {
                ClientAuth::Basic
            }
            Some(methods) if methods.iter().any(|m| m == "client_secret_post") => ClientAuth::Post,
            Some(_) => {
                return Err(provider_error(
                    &url,
                    "it supports neither client_secret_basic nor client_secret_post".into(),
                ));
            }
        };
        if discovery
            .code_challenge_methods_supported
            .is_some_and(|methods| !methods.iter().any(|m| m == "S256"))
        {
            return Err(provider_error(
                &url,
                "it does not support PKCE with S256".into(),
            ));
        }
        let jwks = fetch_jwks(&http, &jwks_uri)
            .await
            .map_err(|problem| provider_error(jwks_uri.as_str(), problem))?;
        Ok(OidcClient {
            inner: Arc::new(ClientInner {
                http,
                issuer: config.issuer.clone(),
                client_id: config.client_id.clone(),
                client_secret: config.client_secret.clone(),
                redirect_uri: config.redirect_uri.clone(),
                username_claim: config.username_claim,
                username_domain: config.username_domain.clone(),
                mfa_acr: config.mfa_acr.clone(),
                authorization_endpoint,
                token_endpoint,
                jwks_uri,
                auth,
                keys: Mutex::new(Keys {
                    jwks,
                    refreshed: None,
                }),
                pending: Mutex::new(PendingLogins::default()),
            }),
        })
    }

    /// The provider's issuer identifier.
    pub fn issuer(&self) -> &str {
        &self.inner.issuer
    }

    /// Begins a sign-in: the URL of the authorization request to send the browser to, and its
    /// `state` (which the caller binds to the browser, so that only the browser that began a
    /// sign-in can finish it). `address` is the browser's: each address has at most
    /// [`MAX_PENDING_PER_SOURCE`] sign-ins waiting.
    pub fn begin(&self, address: IpAddr) -> Result<(String, String), OidcFlowError> {
        let state = random_id().map_err(|_| OidcFlowError::Random)?;
        let nonce = random_id().map_err(|_| OidcFlowError::Random)?;
        let verifier = PkceVerifier::generate().map_err(|_| OidcFlowError::Random)?;
        let inner = &self.inner;
        let mut url = inner.authorization_endpoint.clone();
        url.query_pairs_mut()
            .append_pair("response_type", "code")
            .append_pair("client_id", &inner.client_id)
            .append_pair("redirect_uri", &inner.redirect_uri)
            .append_pair("scope", SCOPE)
            .append_pair("state", &state)
            .append_pair("nonce", &nonce)
            .append_pair("code_challenge", &verifier.challenge())
            .append_pair("code_challenge_method", "S256");
        let now = Instant::now();
        let pending = Pending {
            nonce,
            verifier,
            begun: now,
            source: Source::of(address),
        };
        inner
            .pending
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(state.clone(), pending, now);
        Ok((url.into(), state))
    }

    /// How many sign-ins are waiting for the provider.
    pub fn pending(&self) -> usize {
        self.inner
            .pending
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    /// Forgets the sign-in of `state` (the provider answered it with an error); whether it was
    /// one the hub made and still waited for.
    pub fn abandon(&self, state: &str) -> bool {
        self.take(state).is_some()
    }

    fn take(&self, state: &str) -> Option<Pending> {
        self.inner
            .pending
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take(state, Instant::now())
    }

    /// Completes a sign-in: `state` must be one this hub made, unused and fresh; `iss`, if the
    /// provider sent it (RFC 9207), must be the issuer. Exchanges `code` and verifies the ID
    /// token.
    pub async fn finish(
        &self,
        code: &str,
        state: &str,
        iss: Option<&str>,
    ) -> Result<OidcIdentity, OidcFlowError> {
        let pending = self.take(state).ok_or(OidcFlowError::UnknownState)?;
        if iss.is_some_and(|iss| iss != self.inner.issuer) {
            return Err(OidcFlowError::WrongIssuer);
        }
        let id_token = self.exchange(code, &pending.verifier).await?;
        self.verify(&id_token, &pending.nonce).await
    }

    /// The token request (RFC 6749 §4.1.3, with RFC 7636's `code_verifier`); the ID token.
    async fn exchange(&self, code: &str, verifier: &PkceVerifier) -> Result<String, OidcFlowError> {
        let inner = &self.inner;
        let mut form = vec![
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", inner.redirect_uri.as_str()),
            ("code_verifier", verifier.as_str()),
        ];
        let mut request = inner.http.post(inner.token_endpoint.clone());
        match inner.auth {
            // RFC 6749 §2.3.1: the id and secret are form-encoded before Basic encoding.
            ClientAuth::Basic => {
                request = request.basic_auth(
                    form_encode(&inner.client_id),
                    Some(form_encode(inner.client_secret.expose())),
                );
            }
            ClientAuth::Post => {
                form.push(("client_id", inner.client_id.as_str()));
                form.push(("client_secret", inner.client_secret.expose()));
            }
        }
        let response = request
            .header(reqwest::header::ACCEPT, "application/json")
            .form(&form)
            .send()
            .await
            .map_err(|error| OidcFlowError::TokenExchange(describe(error)))?;
        let status = response.status();
        let body = read_bounded(response, MAX_DOCUMENT)
            .await
            .map_err(OidcFlowError::TokenExchange)?;
        if !status.is_success() {
            // The error code is a registered word (RFC 6749 §5.2); anything else is not shown.
            let error = serde_json::from_slice::<TokenErrorResponse>(&body)
                .ok()
                .and_then(|e| token_error_code(&e.error))
                .unwrap_or("unreadable error");
            return Err(OidcFlowError::TokenExchange(format!(
                "the token endpoint answered {status}: {error}"
            )));
        }
        serde_json::from_slice::<TokenResponse>(&body)
            .ok()
            .and_then(|r| r.id_token)
            .ok_or_else(|| {
                OidcFlowError::TokenExchange("the token response has no id_token".into())
            })
    }

    /// Verifies the ID token, fetching the keys again once if it names a key the hub does not
    /// know and the last fetch is older than [`JWKS_REFRESH_EVERY`].
    async fn verify(&self, id_token: &str, nonce: &str) -> Result<OidcIdentity, OidcFlowError> {
        let inner = &self.inner;
        let expected = Expected {
            issuer: &inner.issuer,
            client_id: &inner.client_id,
            nonce,
            max_age_secs: ID_TOKEN_MAX_AGE_SECS,
        };
        let now = || Timestamp::now().unix_millis().div_euclid(1000);
        let jwks = self.keys().jwks.clone();
        let verified = match verify_id_token(id_token, &jwks, &expected, now()) {
            Err(OidcError::UnknownKey) if self.may_refresh_keys() => {
                let jwks = fetch_jwks(&inner.http, &inner.jwks_uri)
                    .await
                    .map_err(OidcFlowError::TokenExchange)?;
                tracing::info!(keys = jwks.len(), "OIDC provider keys fetched again");
                self.keys().jwks = jwks.clone();
                verify_id_token(id_token, &jwks, &expected, now())
            }
            other => other,
        }?;
        let more = more_claims(id_token)?;
        let claim = match inner.username_claim {
            UsernameClaim::PreferredUsername => verified.preferred_username.as_deref(),
            // OpenID Connect Core §5.7: an address the provider says it did not verify is not
            // an identity.
            UsernameClaim::Email if more.email_verified == Some(false) => None,
            UsernameClaim::Email => verified.email.as_deref(),
            UsernameClaim::Sub => Some(verified.sub.as_str()),
        };
        Ok(OidcIdentity {
            user: claim.and_then(|text| user_name(text, &inner.username_domain)),
            mfa: asserts_mfa(&more.amr, more.acr.as_deref(), &inner.mfa_acr),
        })
    }

    fn keys(&self) -> std::sync::MutexGuard<'_, Keys> {
        self.inner
            .keys
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether the keys may be fetched again now; if so, the attempt is counted from now, so
    /// that concurrent sign-ins fetch once.
    fn may_refresh_keys(&self) -> bool {
        let mut keys = self.keys();
        let now = Instant::now();
        if keys
            .refreshed
            .is_some_and(|last| now.duration_since(last) < JWKS_REFRESH_EVERY)
        {
            return false;
        }
        keys.refreshed = Some(now);
        true
    }
}

impl Access {
    /// Signs in the person the provider vouched for (blocking: the store). The account must
    /// exist and be enabled; a privileged role needs multi-factor authentication at the
    /// provider. Audited like a password sign-in, with the reason "oidc".
    pub fn sign_in_oidc(
        &self,
        identity: &OidcIdentity,
        address: IpAddr,
    ) -> Result<SignedIn, OidcSignInError> {
        let refuse =
            |resource: &str, reason: &str| self.audit_refused_login(address, resource, reason);
        let record = match &identity.user {
            Some(user) => self.inner.store.user(user)?,
            None => None,
        };
        let record = match record {
            Some(record) if record.disabled_at.is_none() => record,
            Some(record) => {
                refuse(record.id.as_str(), "oidc: disabled user");
                return Err(OidcSignInError::NoAccount);
            }
            // Like a password sign-in: a name that is not an account is not written down.
            None => {
                refuse("unknown", "oidc: no Vigil user for this identity");
                return Err(OidcSignInError::NoAccount);
            }
        };
        if record.role.is_privileged() && !identity.mfa {
            refuse(
                record.id.as_str(),
                "oidc: privileged role without multi-factor authentication",
            );
            return Err(OidcSignInError::MfaRequired);
        }
        self.open_session(&record, None, Timestamp::now(), Some("oidc"))
            .map_err(|error| match error {
                SignInError::Store(error) => OidcSignInError::Store(error),
                other => OidcSignInError::Session(other),
            })
    }

    /// Audits a sign-in through the provider that failed before an identity was known (an
    /// unknown state, a refused ID token).
    pub fn audit_oidc_failure(&self, address: IpAddr, error: &OidcFlowError) {
        self.inner.auditor.record_later(entry(
            Actor::Unauthenticated(address.to_string()),
            Action::Login,
            ResourceKind::User,
            "unknown",
            Outcome::Denied,
            Some(&format!("oidc: {error}")),
        ));
    }
}

/// The Vigil user a claim names: the claim itself, or with `domain` set, the name before
/// `@domain`. `None` when it cannot be a Vigil user name or is in another domain.
fn user_name(claim: &str, domain: &str) -> Option<UserId> {
    let name = match claim.rsplit_once('@') {
        Some((name, at)) if !domain.is_empty() && at.eq_ignore_ascii_case(domain) => name,
        Some(_) => return None,
        None => claim,
    };
    UserId::new(name).ok()
}

/// Whether the provider asserted multi-factor authentication: `amr` says `mfa`, or names
/// methods of two different kinds of factor (something known, had, or been: RFC 8176 §2 and
/// NIST SP 800-63B §4), or `acr` is the value the hospital configured as meaning it. One
/// possession factor alone (`otp`, `hwk`…) is a single factor.
pub fn asserts_mfa(amr: &[String], acr: Option<&str>, mfa_acr: &str) -> bool {
    #[derive(PartialEq)]
    enum Factor {
        Knowledge,
        Possession,
        Inherence,
    }
    // RFC 8176 §2's registered methods, by the kind of factor each one proves.
    let factor = |method: &str| match method {
        "pwd" | "pin" | "kba" => Some(Factor::Knowledge),
        "hwk" | "swk" | "otp" | "sms" | "tel" | "sc" => Some(Factor::Possession),
        "face" | "fpt" | "iris" | "retina" | "vbm" => Some(Factor::Inherence),
        _ => None,
    };
    let mut kinds: Vec<Factor> = Vec::new();
    for kind in amr.iter().filter_map(|m| factor(m)) {
        if !kinds.contains(&kind) {
            kinds.push(kind);
        }
    }
    amr.iter().any(|m| m == "mfa")
        || kinds.len() >= 2
        || (!mfa_acr.is_empty() && acr == Some(mfa_acr))
}

/// `amr`, `acr` and `email_verified` of an ID token `vigil_auth` has verified.
fn more_claims(id_token: &str) -> Result<MoreClaims, OidcError> {
    use base64::Engine as _;
    let payload = id_token.split('.').nth(1).ok_or(OidcError::Malformed)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .map_err(|_| OidcError::Malformed)?;
    serde_json::from_slice(&bytes).map_err(|_| OidcError::Claims)
}

/// `application/x-www-form-urlencoded` of one value, for HTTP Basic client authentication.
fn form_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'*') {
            out.push(char::from(byte));
        } else if byte == b' ' {
            out.push('+');
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// An authorization error's code (RFC 6749 §4.1.2.1, OpenID Connect Core §3.1.2.6), if it is a
/// registered one: only those are repeated.
pub fn authorization_error_code(code: &str) -> &'static str {
    [
        "access_denied",
        "invalid_request",
        "unauthorized_client",
        "unsupported_response_type",
        "invalid_scope",
        "server_error",
        "temporarily_unavailable",
        "interaction_required",
        "login_required",
        "account_selection_required",
        "consent_required",
        "invalid_request_uri",
        "invalid_request_object",
        "request_not_supported",
        "request_uri_not_supported",
        "registration_not_supported",
    ]
    .into_iter()
    .find(|known| *known == code)
    .unwrap_or("unregistered error")
}

/// A token endpoint's error code, if it is one RFC 6749 §5.2 registers.
fn token_error_code(code: &str) -> Option<&'static str> {
    [
        "invalid_request",
        "invalid_client",
        "invalid_grant",
        "unauthorized_client",
        "unsupported_grant_type",
        "invalid_scope",
    ]
    .into_iter()
    .find(|known| *known == code)
}

/// An endpoint of the discovery document: https, or http on a loopback host when the issuer
/// itself is (a development provider).
fn endpoint_url(text: &str, loopback_http: bool) -> Option<reqwest::Url> {
    let url = reqwest::Url::parse(text).ok()?;
    let host = url
        .host_str()?
        .trim_start_matches('[')
        .trim_end_matches(']');
    let loopback = host.eq_ignore_ascii_case("localhost")
        || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback());
    let fits = match url.scheme() {
        "https" => true,
        "http" => loopback_http && loopback,
        _ => false,
    };
    (fits && url.username().is_empty() && url.password().is_none() && url.fragment().is_none())
        .then_some(url)
}

fn http_client(config: &OidcConfig) -> Result<reqwest::Client, OidcSetupError> {
    let mut builder = reqwest::Client::builder()
        // A redirect would carry the client's secret or a code somewhere nobody configured.
        .redirect(reqwest::redirect::Policy::none())
        .https_only(!config.issuer.starts_with("http://"))
        .connect_timeout(HTTP_TIMEOUT)
        .timeout(HTTP_TIMEOUT)
        .user_agent(concat!("vigil/", env!("CARGO_PKG_VERSION")));
    if let Some(path) = &config.ca_file {
        let pem = read_ca_file(path)?;
        let certificates = reqwest::Certificate::from_pem_bundle(&pem)
            .ok()
            .filter(|c| !c.is_empty())
            .ok_or_else(|| OidcSetupError::CaPem(path.clone()))?;
        builder = builder.tls_certs_only(certificates);
    }
    builder.build().map_err(OidcSetupError::Client)
}

fn read_ca_file(path: &std::path::Path) -> Result<Vec<u8>, OidcSetupError> {
    use std::io::Read;
    let read_error = |source| OidcSetupError::CaFile {
        path: path.to_owned(),
        source,
    };
    let mut pem = Vec::new();
    std::fs::File::open(path)
        .map_err(read_error)?
        .take(MAX_CA_FILE + 1)
        .read_to_end(&mut pem)
        .map_err(read_error)?;
    if pem.len() as u64 > MAX_CA_FILE {
        return Err(OidcSetupError::CaPem(path.to_owned()));
    }
    Ok(pem)
}

async fn fetch_jwks(http: &reqwest::Client, url: &reqwest::Url) -> Result<Jwks, String> {
    let body = fetch(http, url.as_str(), vigil_auth::oidc::MAX_JWKS_LEN).await?;
    let jwks = Jwks::from_json(&body).map_err(|error| error.to_string())?;
    if jwks.is_empty() {
        return Err("its key set has no RS256 or ES256 signing key".into());
    }
    Ok(jwks)
}

/// A request's failure with its causes ("error sending request: … Connection refused"),
/// without the URL, which the caller names.
fn describe(error: reqwest::Error) -> String {
    let error = error.without_url();
    let mut text = error.to_string();
    let mut source = std::error::Error::source(&error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// GETs a JSON document of at most `limit` bytes.
async fn fetch(http: &reqwest::Client, url: &str, limit: usize) -> Result<Vec<u8>, String> {
    let response = http
        .get(url)
        .header(reqwest::header::ACCEPT, "application/json")
        .send()
        .await
        .map_err(describe)?;
    if !response.status().is_success() {
        return Err(format!("answered {}", response.status()));
    }
    read_bounded(response, limit).await
}

/// The body, refused beyond `limit` bytes without reading further.
async fn read_bounded(mut response: reqwest::Response, limit: usize) -> Result<Vec<u8>, String> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(describe)? {
        if body.len() + chunk.len() > limit {
            return Err(format!("answered more than {limit} bytes"));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use aws_lc_rs::rand::SystemRandom;
    use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair as _};
    use axum::extract::State;
    use axum::routing::{get, post};
    use base64::Engine as _;
    use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
    use serde_json::json;

    const LOOPBACK: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);

    fn pending(begun: Instant) -> Pending {
        from(LOOPBACK, begun)
    }

    fn from(address: IpAddr, begun: Instant) -> Pending {
        Pending {
            nonce: "n".into(),
            verifier: PkceVerifier::generate().unwrap(),
            begun,
            source: Source::of(address),
        }
    }

    #[test]
    fn pending_sign_ins_are_single_use_and_expire() {
        let start = Instant::now();
        let mut logins = PendingLogins::default();
        logins.insert("a".into(), pending(start), start);
        logins.insert("b".into(), pending(start), start);
        assert!(logins.take("a", start).is_some());
        assert!(logins.take("a", start).is_none(), "taken once");
        assert!(logins.take("never-made", start).is_none());
        assert!(logins.take("b", start + LOGIN_TTL).is_none(), "expired");
        // Expired sign-ins are forgotten as new ones come.
        logins.insert("c".into(), pending(start), start);
        let later = start + LOGIN_TTL + Duration::from_secs(1);
        logins.insert("d".into(), pending(later), later);
        assert_eq!(logins.len(), 1);
        assert_eq!(logins.order.len(), 1);
    }

    #[test]
    fn one_address_flooding_sign_ins_pushes_out_only_its_own() {
        let now = Instant::now();
        let mut logins = PendingLogins::default();
        let nurse: IpAddr = "10.1.2.3".parse().unwrap();
        logins.insert("nurse".into(), from(nurse, now), now);
        let flooder: IpAddr = "2001:db8:0:1::7".parse().unwrap();
        for i in 0..MAX_PENDING + 100 {
            // Rotating through the addresses of one /64 gains nothing.
            let address = IpAddr::V6(std::net::Ipv6Addr::from(
                u128::from_be_bytes(match flooder {
                    IpAddr::V6(v6) => v6.octets(),
                    IpAddr::V4(_) => unreachable!(),
                }) + i as u128,
            ));
            logins.insert(format!("flood-{i}"), from(address, now), now);
        }
        assert_eq!(logins.len(), 1 + MAX_PENDING_PER_SOURCE);
        assert_eq!(logins.by_source.len(), 2);
        assert!(
            logins.take("nurse", now).is_some(),
            "another address's sign-in is kept"
        );
        let last = MAX_PENDING + 99;
        assert!(logins.take(&format!("flood-{last}"), now).is_some());
        assert!(
            logins.take("flood-0", now).is_none(),
            "the flooder's oldest went first"
        );
        // Taken and forgotten sign-ins leave nothing behind per source.
        for i in 0..=last {
            logins.take(&format!("flood-{i}"), now);
        }
        assert!(logins.by_source.is_empty());
        assert_eq!(logins.len(), 0);
    }

    #[test]
    fn pending_sign_ins_are_bounded_oldest_first() {
        let now = Instant::now();
        let mut logins = PendingLogins::default();
        for i in 0..MAX_PENDING + 5 {
            // Many addresses, each under its own bound.
            let address = IpAddr::V4(std::net::Ipv4Addr::from(0x0a00_0000 + i as u32));
            logins.insert(i.to_string(), from(address, now), now);
        }
        assert_eq!(logins.len(), MAX_PENDING);
        assert!(logins.take("4", now).is_none(), "the oldest were evicted");
        assert!(logins.take("5", now).is_some());
        // States taken leave stale entries in the order; they count towards the bound too.
        for i in 6..MAX_PENDING + 5 {
            logins.take(&i.to_string(), now);
        }
        for i in 0..2 * MAX_PENDING {
            let name = format!("again-{i}");
            logins.insert(name.clone(), pending(now), now);
            logins.take(&name, now);
        }
        assert!(
            logins.order.len() < 2 * MAX_PENDING,
            "taken names are dropped"
        );
        logins.insert("new".into(), pending(now), now);
        assert_eq!(
            logins.by_source.len(),
            logins.len(),
            "one waiting per address"
        );
    }

    #[test]
    fn user_names_follow_the_claim_and_the_domain() {
        let name = |claim: &str, domain: &str| user_name(claim, domain).map(|u| u.to_string());
        assert_eq!(name("alice", ""), Some("alice".into()));
        assert_eq!(
            name("dr.house", "hospital.example"),
            Some("dr.house".into())
        );
        assert_eq!(
            name("alice@Hospital.Example", "hospital.example"),
            Some("alice".into())
        );
        // Another domain, or any domain when none is configured, names nobody.
        assert_eq!(name("alice@evil.example", "hospital.example"), None);
        assert_eq!(name("alice@hospital.example", ""), None);
        assert_eq!(name("a@b@hospital.example", "hospital.example"), None);
        // Not a Vigil user name.
        assert_eq!(name("Alice Smith", ""), None);
        assert_eq!(name("", ""), None);
        assert_eq!(name(&"a".repeat(65), ""), None);
    }

    #[test]
    fn multi_factor_is_mfa_or_two_kinds_of_factor_or_the_configured_acr() {
        let amr = |methods: &[&str]| methods.iter().map(|m| (*m).to_owned()).collect::<Vec<_>>();
        for yes in [
            &["mfa"][..],
            &["pwd", "mfa"],
            &["pwd", "otp"],
            &["hwk", "pin"],
            &["hwk", "fpt"],
            &["swk", "face"],
        ] {
            assert!(asserts_mfa(&amr(yes), None, ""), "{yes:?}");
        }
        for no in [
            &[][..],
            &["pwd"],
            &["otp"],
            &["hwk"],
            &["hwk", "user"],
            &["pwd", "pin", "kba"],
            &["otp", "sms"],
            &["mca", "pwd"],
            &["MFA"],
        ] {
            assert!(!asserts_mfa(&amr(no), None, ""), "{no:?}");
        }
        let gold = "urn:hospital:acr:mfa";
        assert!(asserts_mfa(&[], Some(gold), gold));
        assert!(!asserts_mfa(&[], Some("urn:hospital:acr:pwd"), gold));
        // An acr is not trusted unless the hospital says what it means.
        assert!(!asserts_mfa(&[], Some(""), ""));
    }

    #[test]
    fn client_credentials_are_form_encoded_for_basic() {
        assert_eq!(form_encode("vigil-hub"), "vigil-hub");
        assert_eq!(form_encode("a b&c:%/é"), "a+b%26c%3A%25%2F%C3%A9");
    }

    #[test]
    fn endpoints_are_https_unless_the_issuer_is_on_loopback() {
        assert!(endpoint_url("https://login.example/token", false).is_some());
        assert!(endpoint_url("http://login.example/token", false).is_none());
        assert!(endpoint_url("http://login.example/token", true).is_none());
        assert!(endpoint_url("http://127.0.0.1:9/token", true).is_some());
        assert!(endpoint_url("http://[::1]:9/token", true).is_some());
        assert!(endpoint_url("http://localhost:9/token", true).is_some());
        assert!(endpoint_url("http://127.0.0.1:9/token", false).is_none());
        assert!(endpoint_url("https://user:pw@login.example/token", false).is_none());
        assert!(endpoint_url("file:///etc/passwd", true).is_none());
        assert!(endpoint_url("not a url", true).is_none());
    }

    #[test]
    fn registered_error_codes_only_are_repeated() {
        assert_eq!(authorization_error_code("access_denied"), "access_denied");
        assert_eq!(
            authorization_error_code("<script>alert(1)</script>"),
            "unregistered error"
        );
        assert_eq!(token_error_code("invalid_grant"), Some("invalid_grant"));
        assert_eq!(token_error_code("patient John Doe"), None);
    }

    type TokenRequest = (Option<String>, HashMap<String, String>);

    /// A provider on an http loopback port: discovery, keys it can rotate, a token endpoint
    /// that answers with whatever ID token the test prepared.
    struct FakeProvider {
        issuer: String,
        discovery: Mutex<serde_json::Value>,
        keys: Mutex<Vec<serde_json::Value>>,
        jwks_fetches: AtomicUsize,
        next_id_token: Mutex<String>,
        /// The last token request: its Authorization header and form.
        last_request: Mutex<Option<TokenRequest>>,
    }

    async fn fake_provider() -> Arc<FakeProvider> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let issuer = format!("http://{}", listener.local_addr().unwrap());
        let provider = Arc::new(FakeProvider {
            discovery: Mutex::new(json!({
                "issuer": issuer,
                "authorization_endpoint": format!("{issuer}/auth?tenant=staff"),
                "token_endpoint": format!("{issuer}/token"),
                "jwks_uri": format!("{issuer}/jwks"),
                "token_endpoint_auth_methods_supported": ["private_key_jwt", "client_secret_basic"],
                "code_challenge_methods_supported": ["S256"],
            })),
            issuer,
            keys: Mutex::new(Vec::new()),
            jwks_fetches: AtomicUsize::new(0),
            next_id_token: Mutex::new(String::new()),
            last_request: Mutex::new(None),
        });
        async fn discovery(State(p): State<Arc<FakeProvider>>) -> axum::Json<serde_json::Value> {
            axum::Json(p.discovery.lock().unwrap().clone())
        }
        async fn jwks(State(p): State<Arc<FakeProvider>>) -> axum::Json<serde_json::Value> {
            p.jwks_fetches.fetch_add(1, Ordering::SeqCst);
            axum::Json(json!({ "keys": *p.keys.lock().unwrap() }))
        }
        async fn token(
            State(p): State<Arc<FakeProvider>>,
            headers: axum::http::HeaderMap,
            body: String,
        ) -> axum::Json<serde_json::Value> {
            let form = reqwest::Url::parse(&format!("form:?{body}"))
                .unwrap()
                .query_pairs()
                .into_owned()
                .collect();
            let authorization = headers
                .get("authorization")
                .map(|v| v.to_str().unwrap().to_owned());
            *p.last_request.lock().unwrap() = Some((authorization, form));
            axum::Json(json!({
                "access_token": "opaque", "token_type": "Bearer",
                "id_token": *p.next_id_token.lock().unwrap(),
            }))
        }
        let app = axum::Router::new()
            .route("/.well-known/openid-configuration", get(discovery))
            .route("/jwks", get(jwks))
            .route("/token", post(token))
            .with_state(Arc::clone(&provider));
        tokio::spawn(async move { axum::serve(listener, app).await });
        provider
    }

    struct Signer {
        kid: String,
        key: EcdsaKeyPair,
    }

    impl Signer {
        fn new(kid: &str) -> Signer {
            Signer {
                kid: kid.into(),
                key: EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).unwrap(),
            }
        }

        fn jwk(&self) -> serde_json::Value {
            let point = self.key.public_key().as_ref();
            json!({
                "kty": "EC", "crv": "P-256", "kid": self.kid, "use": "sig",
                "x": URL_SAFE_NO_PAD.encode(&point[1..33]),
                "y": URL_SAFE_NO_PAD.encode(&point[33..65]),
            })
        }

        fn sign(&self, claims: &serde_json::Value) -> String {
            let header = json!({ "alg": "ES256", "kid": self.kid, "typ": "JWT" });
            let input = format!(
                "{}.{}",
                URL_SAFE_NO_PAD.encode(header.to_string()),
                URL_SAFE_NO_PAD.encode(claims.to_string())
            );
            let signature = self
                .key
                .sign(&SystemRandom::new(), input.as_bytes())
                .unwrap();
            format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature.as_ref()))
        }
    }

    fn config(issuer: &str) -> OidcConfig {
        OidcConfig {
            issuer: issuer.into(),
            client_id: "vigil-hub".into(),
            client_secret: vigil_config::Secret::new("s3cret: yes".into()),
            redirect_uri: "https://hub.example/api/v1/oidc/callback".into(),
            ..OidcConfig::default()
        }
    }

    /// Begins a sign-in; the state, nonce and challenge of its authorization request.
    fn begin(client: &OidcClient) -> (String, String, String) {
        let url = reqwest::Url::parse(&client.begin(LOOPBACK).unwrap().0).unwrap();
        let query: HashMap<String, String> = url.query_pairs().into_owned().collect();
        assert_eq!(query["tenant"], "staff", "the endpoint's own query is kept");
        assert_eq!(query["client_id"], "vigil-hub");
        assert_eq!(query["code_challenge_method"], "S256");
        (
            query["state"].clone(),
            query["nonce"].clone(),
            query["code_challenge"].clone(),
        )
    }

    fn claims(provider: &FakeProvider, nonce: &str, extra: serde_json::Value) -> serde_json::Value {
        let now = Timestamp::now().unix_millis() / 1000;
        let mut claims = json!({
            "iss": provider.issuer, "sub": "248289761001", "aud": "vigil-hub",
            "iat": now, "exp": now + 300, "nonce": nonce,
            "preferred_username": "alice", "email": "alice@hospital.example",
        });
        for (key, value) in extra.as_object().unwrap() {
            claims[key] = value.clone();
        }
        claims
    }

    #[tokio::test]
    async fn a_sign_in_exchanges_the_code_with_pkce_and_verifies_the_id_token() {
        let provider = fake_provider().await;
        let signer = Signer::new("k1");
        provider.keys.lock().unwrap().push(signer.jwk());
        let client = OidcClient::discover(&config(&provider.issuer))
            .await
            .unwrap();

        let (state, nonce, challenge) = begin(&client);
        *provider.next_id_token.lock().unwrap() =
            signer.sign(&claims(&provider, &nonce, json!({ "amr": ["pwd", "hwk"] })));
        let identity = client
            .finish("the-code", &state, Some(&provider.issuer))
            .await
            .unwrap();
        assert_eq!(identity.user.unwrap().as_str(), "alice");
        assert!(identity.mfa);

        let (authorization, form) = provider.last_request.lock().unwrap().take().unwrap();
        assert_eq!(form["grant_type"], "authorization_code");
        assert_eq!(form["code"], "the-code");
        assert_eq!(
            form["redirect_uri"],
            "https://hub.example/api/v1/oidc/callback"
        );
        assert!(vigil_auth::oidc::verify_pkce(
            &form["code_verifier"],
            &challenge
        ));
        assert!(!form.contains_key("client_secret"), "sent by HTTP Basic");
        let basic = authorization.unwrap();
        let decoded = STANDARD
            .decode(basic.strip_prefix("Basic ").unwrap())
            .unwrap();
        assert_eq!(decoded, b"vigil-hub:s3cret%3A+yes");

        // The state was used.
        assert!(matches!(
            client.finish("the-code", &state, None).await,
            Err(OidcFlowError::UnknownState)
        ));
        assert_eq!(client.pending(), 0);
    }

    #[tokio::test]
    async fn refusals_of_the_callback_and_the_id_token() {
        let provider = fake_provider().await;
        let signer = Signer::new("k1");
        provider.keys.lock().unwrap().push(signer.jwk());
        let client = OidcClient::discover(&config(&provider.issuer))
            .await
            .unwrap();

        assert!(matches!(
            client.finish("code", "never-made", None).await,
            Err(OidcFlowError::UnknownState)
        ));
        // A mix-up (RFC 9207): the answer names another issuer; the state is spent.
        let (state, _, _) = begin(&client);
        assert!(matches!(
            client
                .finish("code", &state, Some("https://evil.example"))
                .await,
            Err(OidcFlowError::WrongIssuer)
        ));
        assert!(!client.abandon(&state));
        // An ID token for another sign-in (its nonce).
        let (state, _, _) = begin(&client);
        *provider.next_id_token.lock().unwrap() =
            signer.sign(&claims(&provider, "another-nonce", json!({})));
        assert!(matches!(
            client.finish("code", &state, None).await,
            Err(OidcFlowError::IdToken(OidcError::NonceMismatch))
        ));
        // A malformed amr is not read as "no MFA": the token is refused.
        let (state, nonce, _) = begin(&client);
        *provider.next_id_token.lock().unwrap() =
            signer.sign(&claims(&provider, &nonce, json!({ "amr": "mfa" })));
        assert!(matches!(
            client.finish("code", &state, None).await,
            Err(OidcFlowError::IdToken(OidcError::Claims))
        ));
        // No ID token in the token response.
        let (state, _, _) = begin(&client);
        *provider.next_id_token.lock().unwrap() = String::new();
        assert!(matches!(
            client.finish("code", &state, None).await,
            Err(OidcFlowError::IdToken(OidcError::Malformed))
        ));
        // The provider's refusal ends the sign-in it answers.
        let (state, _, _) = begin(&client);
        assert!(client.abandon(&state));
        assert!(!client.abandon(&state));
    }

    #[tokio::test]
    async fn keys_are_fetched_again_for_an_unknown_key_at_most_once_a_minute() {
        let provider = fake_provider().await;
        let old = Signer::new("2026-01");
        provider.keys.lock().unwrap().push(old.jwk());
        let client = OidcClient::discover(&config(&provider.issuer))
            .await
            .unwrap();
        assert_eq!(provider.jwks_fetches.load(Ordering::SeqCst), 1);

        // The provider rotates its key: the hub fetches the new one.
        let new = Signer::new("2026-02");
        provider.keys.lock().unwrap().push(new.jwk());
        let (state, nonce, _) = begin(&client);
        *provider.next_id_token.lock().unwrap() = new.sign(&claims(&provider, &nonce, json!({})));
        assert!(client.finish("code", &state, None).await.is_ok());
        assert_eq!(provider.jwks_fetches.load(Ordering::SeqCst), 2);

        // Another unknown key within the minute: refused without asking the provider again.
        let unknown = Signer::new("forged");
        let (state, nonce, _) = begin(&client);
        *provider.next_id_token.lock().unwrap() =
            unknown.sign(&claims(&provider, &nonce, json!({})));
        assert!(matches!(
            client.finish("code", &state, None).await,
            Err(OidcFlowError::IdToken(OidcError::UnknownKey))
        ));
        assert_eq!(provider.jwks_fetches.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn the_configured_claim_names_the_user() {
        let provider = fake_provider().await;
        let signer = Signer::new("k1");
        provider.keys.lock().unwrap().push(signer.jwk());
        let sign_in = |claim, domain: &str, extra| {
            let provider = Arc::clone(&provider);
            let signer = &signer;
            let config = OidcConfig {
                username_claim: claim,
                username_domain: domain.into(),
                ..config(&provider.issuer)
            };
            async move {
                let client = OidcClient::discover(&config).await.unwrap();
                let (state, nonce, _) = begin(&client);
                *provider.next_id_token.lock().unwrap() =
                    signer.sign(&claims(&provider, &nonce, extra));
                let identity = client.finish("code", &state, None).await.unwrap();
                identity.user.map(|u| u.to_string())
            }
        };
        let alice = Some("alice".to_owned());
        assert_eq!(
            sign_in(UsernameClaim::PreferredUsername, "", json!({})).await,
            alice
        );
        assert_eq!(
            sign_in(UsernameClaim::Email, "hospital.example", json!({})).await,
            alice
        );
        assert_eq!(sign_in(UsernameClaim::Email, "", json!({})).await, None);
        assert_eq!(
            sign_in(
                UsernameClaim::Email,
                "hospital.example",
                json!({ "email_verified": false })
            )
            .await,
            None,
            "an unverified address names nobody"
        );
        assert_eq!(
            sign_in(UsernameClaim::Sub, "", json!({})).await,
            Some("248289761001".to_owned())
        );
        assert_eq!(
            sign_in(
                UsernameClaim::PreferredUsername,
                "",
                json!({ "preferred_username": null })
            )
            .await,
            None
        );
    }

    #[tokio::test]
    async fn discovery_refuses_what_does_not_fit() {
        let provider = fake_provider().await;
        provider.keys.lock().unwrap().push(Signer::new("k1").jwk());
        let problem = |change: serde_json::Value| {
            let provider = Arc::clone(&provider);
            async move {
                let original = provider.discovery.lock().unwrap().clone();
                let mut document = original.clone();
                for (key, value) in change.as_object().unwrap() {
                    document[key] = value.clone();
                }
                *provider.discovery.lock().unwrap() = document;
                let result = OidcClient::discover(&config(&provider.issuer)).await;
                *provider.discovery.lock().unwrap() = original;
                result.unwrap_err().to_string()
            }
        };
        let error = problem(json!({ "issuer": "https://evil.example" })).await;
        assert!(error.contains("not the configured oidc.issuer"), "{error}");
        let error = problem(json!({ "token_endpoint": "http://login.example/token" })).await;
        assert!(
            error.contains("token_endpoint is not an https:// URL"),
            "{error}"
        );
        let error = problem(json!({ "code_challenge_methods_supported": ["plain"] })).await;
        assert!(error.contains("PKCE"), "{error}");
        let error =
            problem(json!({ "token_endpoint_auth_methods_supported": ["private_key_jwt"] })).await;
        assert!(error.contains("client_secret_basic"), "{error}");
        let error = problem(json!({ "jwks_uri": null })).await;
        assert!(error.contains("not a discovery document"), "{error}");

        // A key set with no key Vigil can use.
        provider.keys.lock().unwrap().clear();
        let error = OidcClient::discover(&config(&provider.issuer))
            .await
            .unwrap_err();
        assert!(error.to_string().contains("no RS256 or ES256"), "{error}");

        // Nobody listening.
        let port = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            listener.local_addr().unwrap().port()
        };
        let error = OidcClient::discover(&config(&format!("http://127.0.0.1:{port}")))
            .await
            .unwrap_err();
        assert!(matches!(error, OidcSetupError::Provider { .. }), "{error}");

        // A CA file that is not one.
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), "not PEM").unwrap();
        let config = OidcConfig {
            ca_file: Some(file.path().to_owned()),
            ..config(&provider.issuer)
        };
        assert!(matches!(
            OidcClient::discover(&config).await,
            Err(OidcSetupError::CaPem(_))
        ));
    }

    #[tokio::test]
    async fn client_secret_post_when_basic_is_not_offered() {
        let provider = fake_provider().await;
        let signer = Signer::new("k1");
        provider.keys.lock().unwrap().push(signer.jwk());
        provider.discovery.lock().unwrap()["token_endpoint_auth_methods_supported"] =
            json!(["client_secret_post"]);
        let client = OidcClient::discover(&config(&provider.issuer))
            .await
            .unwrap();
        let (state, nonce, _) = begin(&client);
        *provider.next_id_token.lock().unwrap() =
            signer.sign(&claims(&provider, &nonce, json!({})));
        let identity = client.finish("code", &state, None).await.unwrap();
        assert!(!identity.mfa, "no amr: one factor");
        let (authorization, form) = provider.last_request.lock().unwrap().take().unwrap();
        assert_eq!(authorization, None);
        assert_eq!(form["client_id"], "vigil-hub");
        assert_eq!(form["client_secret"], "s3cret: yes");
    }
}
