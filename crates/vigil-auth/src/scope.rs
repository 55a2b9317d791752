//! SMART on FHIR scopes (SMART App Launch 2.x,
//! <https://hl7.org/fhir/smart-app-launch/scopes-and-launch-context.html>).
//!
//! A resource scope is `<context>/<resource type or *>.<permissions>`: the context `patient`
//! (the patient in context), `user` (what the user may see) or `system` (a backend service);
//! the permissions the letters `c` (create), `r` (read), `u` (update), `d` (delete), `s`
//! (search), each at most once and in that order. The SMART v1 forms are read as the
//! specification maps them: `.read` as `.rs`, `.write` as `.cud`, `.*` as `.cruds`. Besides
//! these, Vigil knows `openid`, `fhirUser`, `launch/patient`, `offline_access` and
//! `online_access`, and refuses any other scope.
//!
//! SMART v2 also lets a scope narrow itself with search parameters
//! (`patient/Observation.rs?category=vital-signs`). Vigil does not enforce those yet, so it
//! refuses such a scope ([`ScopeError::QueryNotSupported`]) instead of silently granting the
//! whole resource type.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

/// The longest scope string parsed.
pub const MAX_SCOPE_LEN: usize = 4096;
/// The most scopes in one string.
pub const MAX_SCOPES: usize = 64;
/// The longest resource type name (FHIR R4's longest is 35 characters).
const MAX_RESOURCE_TYPE_LEN: usize = 64;

/// Why a scope string is refused. Positions are 1-based; the text is never echoed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ScopeError {
    /// The string is longer than [`MAX_SCOPE_LEN`].
    #[error("the scope string is longer than {MAX_SCOPE_LEN} bytes")]
    TooLong,
    /// The string has more than [`MAX_SCOPES`] scopes.
    #[error("more than {MAX_SCOPES} scopes")]
    TooMany,
    /// A scope looks like a resource scope but does not follow the grammar.
    #[error("scope {position} is malformed (expected context/ResourceType.cruds)")]
    Malformed {
        /// Which scope, from 1.
        position: usize,
    },
    /// A scope Vigil does not know.
    #[error("scope {position} is not one Vigil supports")]
    Unknown {
        /// Which scope, from 1.
        position: usize,
    },
    /// A resource scope with search parameters, which Vigil does not enforce.
    #[error("scope {position} has search parameters, which Vigil does not support")]
    QueryNotSupported {
        /// Which scope, from 1.
        position: usize,
    },
}

/// Whose data a resource scope reaches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Context {
    /// The patient in context (`patient/`).
    Patient,
    /// Whatever the signed-in user may reach (`user/`).
    User,
    /// A backend service (`system/`).
    System,
}

impl Context {
    /// Every context.
    pub const ALL: [Context; 3] = [Context::Patient, Context::User, Context::System];

    fn as_str(self) -> &'static str {
        match self {
            Context::Patient => "patient",
            Context::User => "user",
            Context::System => "system",
        }
    }
}

/// What a request does to a resource (the FHIR RESTful interactions SMART scopes name).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Interaction {
    /// `c`: create.
    Create,
    /// `r`: read (and vread, history of one instance).
    Read,
    /// `u`: update (and patch).
    Update,
    /// `d`: delete.
    Delete,
    /// `s`: search (and history of a type).
    Search,
}

impl Interaction {
    /// Every interaction, in the scope letters' order.
    pub const ALL: [Interaction; 5] = [
        Interaction::Create,
        Interaction::Read,
        Interaction::Update,
        Interaction::Delete,
        Interaction::Search,
    ];

    const fn bit(self) -> u8 {
        match self {
            Interaction::Create => 1,
            Interaction::Read => 2,
            Interaction::Update => 4,
            Interaction::Delete => 8,
            Interaction::Search => 16,
        }
    }

    const fn letter(self) -> char {
        match self {
            Interaction::Create => 'c',
            Interaction::Read => 'r',
            Interaction::Update => 'u',
            Interaction::Delete => 'd',
            Interaction::Search => 's',
        }
    }
}

/// The scopes that are not resource scopes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SpecialScope {
    /// `openid`: an OpenID Connect ID token.
    OpenId,
    /// `fhirUser`: the user's FHIR resource in the ID token.
    FhirUser,
    /// `launch/patient`: a patient in context.
    LaunchPatient,
    /// `offline_access`: a refresh token that outlives the session.
    OfflineAccess,
    /// `online_access`: a refresh token while the user is online.
    OnlineAccess,
}

impl SpecialScope {
    /// Every special scope, in canonical order.
    pub const ALL: [SpecialScope; 5] = [
        SpecialScope::OpenId,
        SpecialScope::FhirUser,
        SpecialScope::LaunchPatient,
        SpecialScope::OfflineAccess,
        SpecialScope::OnlineAccess,
    ];

    /// The scope as written.
    pub const fn as_str(self) -> &'static str {
        match self {
            SpecialScope::OpenId => "openid",
            SpecialScope::FhirUser => "fhirUser",
            SpecialScope::LaunchPatient => "launch/patient",
            SpecialScope::OfflineAccess => "offline_access",
            SpecialScope::OnlineAccess => "online_access",
        }
    }

    const fn bit(self) -> u8 {
        match self {
            SpecialScope::OpenId => 1,
            SpecialScope::FhirUser => 2,
            SpecialScope::LaunchPatient => 4,
            SpecialScope::OfflineAccess => 8,
            SpecialScope::OnlineAccess => 16,
        }
    }
}

/// A resource type or every type (`*`); `*` sorts first.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Target {
    Any,
    Type(String),
}

/// A set of SMART scopes, kept canonical: one entry per context and resource type, nothing a
/// wildcard of the same context already grants.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scopes {
    special: u8,
    resources: BTreeMap<(Context, Target), u8>,
}

impl Scopes {
    /// No scopes.
    pub fn empty() -> Self {
        Self::default()
    }

    /// Parses a space-separated scope string (RFC 6749 §3.3; repeated spaces are tolerated).
    pub fn parse(text: &str) -> Result<Self, ScopeError> {
        if text.len() > MAX_SCOPE_LEN {
            return Err(ScopeError::TooLong);
        }
        let mut scopes = Scopes::default();
        for (index, token) in text.split(' ').filter(|t| !t.is_empty()).enumerate() {
            if index >= MAX_SCOPES {
                return Err(ScopeError::TooMany);
            }
            scopes.add_token(token, index + 1)?;
        }
        scopes.canonicalise();
        Ok(scopes)
    }

    fn add_token(&mut self, token: &str, position: usize) -> Result<(), ScopeError> {
        if let Some(special) = SpecialScope::ALL.iter().find(|s| s.as_str() == token) {
            self.special |= special.bit();
            return Ok(());
        }
        let Some((prefix, rest)) = token.split_once('/') else {
            return Err(ScopeError::Unknown { position });
        };
        let Some(context) = Context::ALL.into_iter().find(|c| c.as_str() == prefix) else {
            return Err(ScopeError::Unknown { position });
        };
        if rest.contains('?') {
            return Err(ScopeError::QueryNotSupported { position });
        }
        let malformed = ScopeError::Malformed { position };
        let (resource, permissions) = rest.split_once('.').ok_or(malformed)?;
        let target = match resource {
            "*" => Target::Any,
            name if is_resource_type(name) => Target::Type(name.to_owned()),
            _ => return Err(malformed),
        };
        let bits = parse_permissions(permissions).ok_or(malformed)?;
        *self.resources.entry((context, target)).or_insert(0) |= bits;
        Ok(())
    }

    /// Drops what a wildcard of the same context already grants, and empty entries.
    fn canonicalise(&mut self) {
        let wildcards: BTreeMap<Context, u8> = self
            .resources
            .iter()
            .filter(|((_, target), _)| *target == Target::Any)
            .map(|((context, _), bits)| (*context, *bits))
            .collect();
        for ((context, target), bits) in self.resources.iter_mut() {
            if *target != Target::Any {
                *bits &= !wildcards.get(context).copied().unwrap_or(0);
            }
        }
        self.resources.retain(|_, bits| *bits != 0);
    }

    /// Whether these scopes let a request in `context` do `interaction` on `resource_type`.
    /// Contexts do not stand in for each other: a `user/` scope does not answer a question
    /// asked in the `patient` context.
    pub fn permits(&self, context: Context, resource_type: &str, interaction: Interaction) -> bool {
        let granted = |target: Target| {
            self.resources
                .get(&(context, target))
                .is_some_and(|bits| bits & interaction.bit() != 0)
        };
        granted(Target::Any) || granted(Target::Type(resource_type.to_owned()))
    }

    /// Whether `scope` is among these scopes.
    pub fn has(&self, scope: SpecialScope) -> bool {
        self.special & scope.bit() != 0
    }

    /// Whether there are no scopes at all.
    pub fn is_empty(&self) -> bool {
        self.special == 0 && self.resources.is_empty()
    }

    /// The scopes both sets grant: what a request for `self` gets under the ceiling `other`
    /// (for example a role's [`crate::policy::role_scopes`]). `user/*.rs` meeting
    /// `user/Observation.cruds` gives `user/Observation.rs`.
    pub fn intersect(&self, other: &Scopes) -> Scopes {
        let mut resources: BTreeMap<(Context, Target), u8> = BTreeMap::new();
        for ((context, mine), my_bits) in &self.resources {
            for ((their_context, theirs), their_bits) in &other.resources {
                if context != their_context {
                    continue;
                }
                let target = match (mine, theirs) {
                    (Target::Any, other) | (other, Target::Any) => other.clone(),
                    (Target::Type(a), Target::Type(b)) if a == b => mine.clone(),
                    _ => continue,
                };
                *resources.entry((*context, target)).or_insert(0) |= my_bits & their_bits;
            }
        }
        let mut scopes = Scopes {
            special: self.special & other.special,
            resources,
        };
        scopes.canonicalise();
        scopes
    }

    /// Whether everything these scopes grant, `ceiling` grants too.
    pub fn is_within(&self, ceiling: &Scopes) -> bool {
        self.intersect(ceiling) == *self
    }
}

impl FromStr for Scopes {
    type Err = ScopeError;
    fn from_str(text: &str) -> Result<Self, ScopeError> {
        Scopes::parse(text)
    }
}

impl fmt::Display for Scopes {
    /// The canonical string: special scopes first, then resource scopes by context and type
    /// (`*` first), permissions in `cruds` order, separated by single spaces.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        let mut separate = |f: &mut fmt::Formatter<'_>| {
            let result = if first { Ok(()) } else { f.write_str(" ") };
            first = false;
            result
        };
        for special in SpecialScope::ALL.iter().filter(|s| self.has(**s)) {
            separate(f)?;
            f.write_str(special.as_str())?;
        }
        for ((context, target), bits) in &self.resources {
            separate(f)?;
            let target = match target {
                Target::Any => "*",
                Target::Type(name) => name,
            };
            write!(f, "{}/{target}.", context.as_str())?;
            for interaction in Interaction::ALL {
                if bits & interaction.bit() != 0 {
                    write!(f, "{}", interaction.letter())?;
                }
            }
        }
        Ok(())
    }
}

/// A FHIR resource type name: an upper-case ASCII letter, then ASCII letters.
fn is_resource_type(name: &str) -> bool {
    let mut bytes = name.bytes();
    name.len() <= MAX_RESOURCE_TYPE_LEN
        && bytes.next().is_some_and(|b| b.is_ascii_uppercase())
        && bytes.all(|b| b.is_ascii_alphabetic())
}

/// `c?r?u?d?s?` (at least one letter) or a v1 form, as interaction bits.
fn parse_permissions(text: &str) -> Option<u8> {
    let v1 = |interactions: &[Interaction]| interactions.iter().fold(0, |b, i| b | i.bit());
    match text {
        "read" => return Some(v1(&[Interaction::Read, Interaction::Search])),
        "write" => {
            return Some(v1(&[
                Interaction::Create,
                Interaction::Update,
                Interaction::Delete,
            ]));
        }
        "*" => return Some(v1(&Interaction::ALL)),
        "" => return None,
        _ => {}
    }
    let mut bits = 0;
    let mut remaining = Interaction::ALL.iter();
    for letter in text.chars() {
        // Each letter must come after the previous one in `cruds` order.
        let interaction = remaining.find(|i| i.letter() == letter)?;
        bits |= interaction.bit();
    }
    Some(bits)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use Interaction::{Create, Delete, Read, Search, Update};

    fn scopes(text: &str) -> Scopes {
        Scopes::parse(text).unwrap()
    }

    #[test]
    fn v2_resource_scopes_grant_their_letters() {
        let s = scopes("patient/Observation.rs user/Device.cud");
        assert!(s.permits(Context::Patient, "Observation", Read));
        assert!(s.permits(Context::Patient, "Observation", Search));
        assert!(!s.permits(Context::Patient, "Observation", Create));
        assert!(!s.permits(Context::Patient, "Observation", Update));
        assert!(!s.permits(Context::Patient, "Patient", Read));
        assert!(s.permits(Context::User, "Device", Create));
        assert!(s.permits(Context::User, "Device", Update));
        assert!(s.permits(Context::User, "Device", Delete));
        assert!(!s.permits(Context::User, "Device", Read));
    }

    #[test]
    fn contexts_do_not_stand_in_for_each_other() {
        let s = scopes("user/Observation.rs");
        assert!(!s.permits(Context::Patient, "Observation", Read));
        assert!(!s.permits(Context::System, "Observation", Read));
    }

    #[test]
    fn wildcards_cover_every_type() {
        let s = scopes("system/*.r");
        assert!(s.permits(Context::System, "Observation", Read));
        assert!(s.permits(Context::System, "AuditEvent", Read));
        assert!(!s.permits(Context::System, "AuditEvent", Search));
    }

    #[test]
    fn v1_forms_map_as_the_specification_says() {
        assert_eq!(
            scopes("patient/Observation.read"),
            scopes("patient/Observation.rs")
        );
        assert_eq!(
            scopes("patient/Observation.write"),
            scopes("patient/Observation.cud")
        );
        assert_eq!(
            scopes("patient/Observation.*"),
            scopes("patient/Observation.cruds")
        );
        assert_eq!(scopes("user/*.read").to_string(), "user/*.rs");
    }

    #[test]
    fn letters_must_be_in_cruds_order_and_once() {
        for bad in [
            "patient/Observation.sr",
            "patient/Observation.rr",
            "patient/Observation.x",
            "patient/Observation.",
            "patient/Observation.R",
            "patient/Observation.reads",
        ] {
            assert_eq!(
                Scopes::parse(bad),
                Err(ScopeError::Malformed { position: 1 }),
                "{bad}"
            );
        }
        assert_eq!(
            scopes("patient/Observation.cruds").to_string(),
            "patient/Observation.cruds"
        );
        assert_eq!(
            scopes("patient/Observation.cd").to_string(),
            "patient/Observation.cd"
        );
    }

    #[test]
    fn resource_types_must_look_like_fhir_types() {
        for bad in [
            "patient/observation.rs",
            "patient/.rs",
            "patient/Obs3rvation.rs",
            "patient/Observation",
            "patient/Obs-ervation.rs",
            "patient/Observation/x.rs",
        ] {
            assert_eq!(
                Scopes::parse(bad),
                Err(ScopeError::Malformed { position: 1 }),
                "{bad}"
            );
        }
        let long = format!("patient/O{}.rs", "b".repeat(MAX_RESOURCE_TYPE_LEN));
        assert_eq!(
            Scopes::parse(&long),
            Err(ScopeError::Malformed { position: 1 })
        );
    }

    #[test]
    fn query_parameters_are_refused_not_widened() {
        assert_eq!(
            Scopes::parse("openid patient/Observation.rs?category=vital-signs"),
            Err(ScopeError::QueryNotSupported { position: 2 })
        );
    }

    #[test]
    fn special_scopes_are_known_and_others_refused() {
        let s = scopes("openid fhirUser launch/patient offline_access online_access");
        for special in SpecialScope::ALL {
            assert!(s.has(special));
        }
        assert!(!scopes("openid").has(SpecialScope::FhirUser));
        for (text, position) in [
            ("profile", 1),
            ("openid launch", 2),
            ("launch/encounter", 1),
            ("admin/Patient.rs", 1),
            ("OPENID", 1),
            ("openid\tfhirUser", 1),
        ] {
            assert_eq!(
                Scopes::parse(text),
                Err(ScopeError::Unknown { position }),
                "{text}"
            );
        }
    }

    #[test]
    fn input_is_bounded() {
        assert_eq!(
            Scopes::parse(&"openid ".repeat(MAX_SCOPE_LEN / 7 + 1)),
            Err(ScopeError::TooLong)
        );
        assert_eq!(
            Scopes::parse(&"openid ".repeat(MAX_SCOPES + 1)),
            Err(ScopeError::TooMany)
        );
        assert!(Scopes::parse(&"openid ".repeat(MAX_SCOPES)).is_ok());
    }

    #[test]
    fn display_is_canonical() {
        let s = scopes(
            "user/Observation.s  patient/Patient.r openid user/Observation.r \
             user/*.r user/Device.rs fhirUser",
        );
        // Merged, sorted, and Device.r dropped under user/*.r.
        assert_eq!(
            s.to_string(),
            "openid fhirUser patient/Patient.r user/*.r user/Device.s user/Observation.s"
        );
        assert_eq!(scopes(&s.to_string()), s);
        assert_eq!(scopes("").to_string(), "");
        assert!(scopes("  ").is_empty());
    }

    #[test]
    fn errors_do_not_echo_the_input() {
        let error = Scopes::parse("patient/Secret<script>.rs").unwrap_err();
        assert!(!error.to_string().contains("script"));
    }

    #[test]
    fn intersection_narrows_a_request_to_a_ceiling() {
        let ceiling = scopes("openid fhirUser user/Observation.rs user/Patient.rs");
        let request = scopes("openid offline_access user/*.cruds patient/Observation.rs");
        assert_eq!(
            request.intersect(&ceiling).to_string(),
            "openid user/Observation.rs user/Patient.rs"
        );
        // Symmetric.
        assert_eq!(request.intersect(&ceiling), ceiling.intersect(&request));
        let both_wild = scopes("user/*.rs").intersect(&scopes("user/*.r"));
        assert_eq!(both_wild.to_string(), "user/*.r");
        assert!(
            scopes("user/Device.r")
                .intersect(&scopes("user/Patient.r"))
                .is_empty()
        );
    }

    #[test]
    fn within_tells_whether_a_token_exceeds_a_ceiling() {
        let ceiling = scopes("openid user/Observation.rs user/Device.rs");
        assert!(scopes("user/Observation.r").is_within(&ceiling));
        assert!(scopes("openid user/Device.rs").is_within(&ceiling));
        assert!(Scopes::empty().is_within(&ceiling));
        assert!(!scopes("user/Observation.rus").is_within(&ceiling));
        assert!(!scopes("user/*.r").is_within(&ceiling));
        assert!(!scopes("patient/Observation.r").is_within(&ceiling));
        assert!(!scopes("fhirUser").is_within(&ceiling));
        assert!(scopes("user/*.r").is_within(&scopes("user/*.rs")));
        assert!(scopes("user/Patient.r").is_within(&scopes("user/*.rs")));
    }
}
