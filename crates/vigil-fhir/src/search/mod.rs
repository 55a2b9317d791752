//! Search parameters of the served resources, from the raw query string.
//!
//! | resource | parameters |
//! | --- | --- |
//! | Observation | `patient`, `subject`, `code`, `date` |
//! | Patient | `_id` |
//! | Device | `patient` |
//! | AuditEvent | `patient`, `date` (recorded) |
//! | DetectedIssue | `patient`, `identified` |
//!
//! and on every type `_count` (1 to 10,000, default 100), `_cursor` (Vigil's keyset paging
//! position, see [`Cursor`]), `_format` and `_pretty` (tolerated: only compact FHIR JSON is
//! served). [`PARAMETERS`] is the table; the CapabilityStatement is written from it.
//!
//! - `patient`/`subject`: `Patient/<id>` or `<id>`; one patient per search (authorisation is
//!   per patient), `subject:Patient` allowed.
//! - `code`: token `[system]|[code]`, comma = OR, repeats = AND; LOINC and MDC systems, or no
//!   system for any; `system|` matches every code of the system; unknown codes match nothing.
//!   LOINC 8867-4 names both heart rate and pulse rate.
//! - `date`: repeatable, prefixes, any precision; see [`date`].
//!
//! Unknown parameters are ignored and listed in [`Search::ignored`] (FHIR's lenient handling:
//! the self link then shows what was applied), or refused when the client asked for
//! `Prefer: handling=strict`. Modifiers other than `subject:Patient` are refused either way:
//! FHIR R4 requires a server to reject a modifier it does not support. Parameters with an
//! empty value are ignored, as FHIR requires.
//!
//! Bounded: at most [`MAX_QUERY_LEN`] bytes, [`MAX_PARAMETERS`] parameters, [`MAX_REPEATS`]
//! repeats of `code`/`date` and [`MAX_VALUES`] comma-separated codes. Errors name the
//! parameter (a known name, or an unknown one cut to 40 printable characters) and never echo a
//! value.

pub mod date;

use std::fmt;

use vigil_model::{PatientId, Quantity, Timestamp};

use crate::outcome::IssueType;
use crate::{ResourceType, codes, is_fhir_id};

pub use date::{DateProblem, TimeRange};

/// Longest query string accepted, in bytes.
pub const MAX_QUERY_LEN: usize = 4096;
/// Most parameters in one query.
pub const MAX_PARAMETERS: usize = 32;
/// Most repeats of one repeatable parameter (`code`, `date`).
pub const MAX_REPEATS: usize = 8;
/// Most comma-separated values in one `code`.
pub const MAX_VALUES: usize = 32;
/// `_count` when none is given.
pub const DEFAULT_COUNT: u32 = 100;
/// Largest `_count`.
pub const MAX_COUNT: u32 = 10_000;
/// The name of Vigil's paging cursor parameter.
pub const CURSOR: &str = "_cursor";

/// The kind of a search parameter (FHIR `SearchParamType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamType {
    /// `reference`.
    Reference,
    /// `token`.
    Token,
    /// `date`.
    Date,
    /// `number`.
    Number,
    /// `special`.
    Special,
}

impl ParamType {
    /// The FHIR code.
    pub fn code(self) -> &'static str {
        match self {
            ParamType::Reference => "reference",
            ParamType::Token => "token",
            ParamType::Date => "date",
            ParamType::Number => "number",
            ParamType::Special => "special",
        }
    }
}

/// What a parameter filters on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Patient,
    Code,
    Date,
    Id,
}

/// One supported search parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParamSpec {
    /// Its name.
    pub name: &'static str,
    /// Its type.
    pub kind: ParamType,
    /// What it does, for the CapabilityStatement.
    pub documentation: &'static str,
    role: Role,
}

const fn param(
    name: &'static str,
    kind: ParamType,
    role: Role,
    documentation: &'static str,
) -> ParamSpec {
    ParamSpec {
        name,
        kind,
        documentation,
        role,
    }
}

const PATIENT: ParamSpec = param(
    "patient",
    ParamType::Reference,
    Role::Patient,
    "Patient/<id> or <id>; one patient per search",
);

/// The resource-specific parameters each served type supports.
pub const PARAMETERS: &[(ResourceType, &[ParamSpec])] = &[
    (
        ResourceType::Patient,
        &[param("_id", ParamType::Token, Role::Id, "the patient's id")],
    ),
    (ResourceType::Device, &[PATIENT]),
    (
        ResourceType::Observation,
        &[
            PATIENT,
            param(
                "subject",
                ParamType::Reference,
                Role::Patient,
                "as patient (subject:Patient allowed)",
            ),
            param(
                "code",
                ParamType::Token,
                Role::Code,
                "[system]|[code], LOINC or IEEE 11073 MDC; comma = or",
            ),
            param(
                "date",
                ParamType::Date,
                Role::Date,
                "effective time; prefixes eq ne gt lt ge le sa eb; repeatable",
            ),
        ],
    ),
    (
        ResourceType::AuditEvent,
        &[
            param(
                "patient",
                ParamType::Reference,
                Role::Patient,
                "events whose entity is this patient",
            ),
            param(
                "date",
                ParamType::Date,
                Role::Date,
                "recorded time; prefixes as for Observation",
            ),
        ],
    ),
    (
        ResourceType::DetectedIssue,
        &[
            PATIENT,
            param(
                "identified",
                ParamType::Date,
                Role::Date,
                "when detected; prefixes as for Observation",
            ),
        ],
    ),
];

/// The parameters every type supports.
pub const COMMON_PARAMETERS: &[ParamSpec] = &[param(
    CURSOR,
    ParamType::Special,
    Role::Id,
    "opaque paging position from a next link; do not build it",
)];

/// The resource-specific parameters of a type.
pub fn parameters(resource: ResourceType) -> &'static [ParamSpec] {
    PARAMETERS
        .iter()
        .find(|(t, _)| *t == resource)
        .map_or(&[], |(_, p)| p)
}

/// Which codes a search selects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CodeFilter {
    /// No `code` parameter: every quantity.
    Any,
    /// Only these quantities (possibly none: a code Vigil does not have matches nothing).
    Only(Vec<Quantity>),
}

impl CodeFilter {
    /// Whether a quantity passes.
    pub fn matches(&self, quantity: Quantity) -> bool {
        match self {
            CodeFilter::Any => true,
            CodeFilter::Only(set) => set.contains(&quantity),
        }
    }
}

/// Where a page ends: the (time, row id) of the last row served. The next page holds the rows
/// strictly after it in (time, row id) order. Written in links as `<millis>-<row>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Cursor {
    /// Time of the last row served.
    pub time: Timestamp,
    /// Store row id of the last row served.
    pub row: u64,
}

impl Cursor {
    /// The parameter value.
    pub fn encode(&self) -> String {
        format!("{}-{}", self.time.unix_millis(), self.row)
    }

    /// Parses a parameter value: two decimal numbers without sign or leading zeros.
    pub fn decode(text: &str) -> Option<Cursor> {
        let (time, row) = text.split_once('-')?;
        let number = |s: &str| {
            let ok = !s.is_empty()
                && s.len() <= 20
                && s.bytes().all(|b| b.is_ascii_digit())
                && (s == "0" || !s.starts_with('0'));
            ok.then(|| s.parse::<u64>().ok()).flatten()
        };
        let millis = i64::try_from(number(time)?).ok()?;
        Some(Cursor {
            time: Timestamp::from_unix_millis(millis).ok()?,
            row: number(row)?,
        })
    }
}

/// A parsed search.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Search {
    /// The type searched.
    pub resource: ResourceType,
    /// `patient`/`subject`.
    pub patient: Option<PatientId>,
    /// `_id` (Patient).
    pub id: Option<String>,
    /// `code`.
    pub codes: CodeFilter,
    /// The intersection of every `date` (or `identified`) value but `ne`.
    pub range: TimeRange,
    /// The ranges `ne` values exclude; filter them after the range query.
    pub excluded: Vec<TimeRange>,
    /// `_count`.
    pub count: u32,
    /// `_cursor`.
    pub cursor: Option<Cursor>,
    /// Names of parameters ignored (lenient handling), cut to 40 printable characters.
    pub ignored: Vec<String>,
    /// The applied parameters as decoded name/value pairs, for the links.
    applied: Vec<(String, String)>,
}

impl Search {
    /// Whether a time passes every `date` condition.
    pub fn time_matches(&self, time: Timestamp) -> bool {
        let t = time.unix_millis();
        self.range.contains(t) && !self.excluded.iter().any(|r| r.contains(t))
    }

    /// The query string of the applied parameters (ignored ones left out) with `_count` and
    /// the given cursor: append it to `<base>/<Type>?` for the `self` and `next` links.
    pub fn link_query(&self, cursor: Option<&Cursor>) -> String {
        let mut query = String::new();
        let mut add = |name: &str, value: &str| {
            if !query.is_empty() {
                query.push('&');
            }
            percent_encode(&mut query, name);
            query.push('=');
            percent_encode(&mut query, value);
        };
        for (name, value) in &self.applied {
            add(name, value);
        }
        add("_count", &self.count.to_string());
        if let Some(cursor) = cursor {
            add(CURSOR, &cursor.encode());
        }
        query
    }
}

/// Why a search was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchError {
    /// The parameter, empty for the query as a whole.
    pub parameter: String,
    /// What is wrong.
    pub problem: Problem,
}

/// What is wrong with a parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Problem {
    /// The query is longer than [`MAX_QUERY_LEN`].
    QueryTooLong,
    /// More than [`MAX_PARAMETERS`] parameters.
    TooManyParameters,
    /// Given more often than allowed.
    TooManyRepeats,
    /// More than [`MAX_VALUES`] comma-separated values.
    TooManyValues,
    /// Bad percent-encoding or not UTF-8.
    Encoding,
    /// Not a parameter of this resource (strict handling only).
    Unknown,
    /// A modifier (`name:modifier`) this server does not support.
    UnsupportedModifier,
    /// Not `Patient/<id>` or a FHIR id.
    InvalidReference,
    /// Not a FHIR id.
    InvalidId,
    /// A token that is not `[system]|[code]`.
    InvalidToken,
    /// `_count` not an integer from 1 to [`MAX_COUNT`].
    InvalidCount,
    /// `_cursor` not one this server wrote.
    InvalidCursor,
    /// A date value that is wrong, and how.
    InvalidDate(DateProblem),
    /// `_format` asks for something other than JSON.
    UnsupportedFormat,
    /// `_pretty` not `true` or `false`.
    InvalidBoolean,
    /// A parameter this search cannot do without (an Observation search names its patient).
    Required,
}

impl SearchError {
    /// A search that lacks a parameter it needs.
    pub fn required(parameter: &str) -> Self {
        Self::new(parameter, Problem::Required)
    }

    fn new(parameter: &str, problem: Problem) -> Self {
        Self {
            parameter: printable(parameter),
            problem,
        }
    }

    /// The `OperationOutcome.issue.code` for this refusal.
    pub fn issue_type(&self) -> IssueType {
        match self.problem {
            Problem::QueryTooLong | Problem::TooManyParameters | Problem::TooManyValues => {
                IssueType::TooCostly
            }
            Problem::Unknown | Problem::UnsupportedModifier | Problem::UnsupportedFormat => {
                IssueType::NotSupported
            }
            Problem::Encoding => IssueType::Invalid,
            Problem::Required => IssueType::Required,
            _ => IssueType::Value,
        }
    }
}

impl fmt::Display for SearchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let why = match self.problem {
            Problem::QueryTooLong => {
                return write!(f, "the query is longer than {MAX_QUERY_LEN} bytes");
            }
            Problem::TooManyParameters => {
                return write!(f, "the query has more than {MAX_PARAMETERS} parameters");
            }
            Problem::TooManyRepeats => "given more often than allowed",
            Problem::TooManyValues => "too many comma-separated values",
            Problem::Encoding => "bad percent-encoding or not UTF-8",
            Problem::Unknown => "not a search parameter of this resource (strict handling)",
            Problem::UnsupportedModifier => "modifier not supported",
            Problem::InvalidReference => "expected Patient/<id> or <id> (A-Z a-z 0-9 - .)",
            Problem::InvalidId => "expected an id (1 to 64 of A-Z a-z 0-9 - .)",
            Problem::InvalidToken => "expected [system]|[code], comma separated",
            Problem::InvalidCount => "expected an integer from 1 to 10000",
            Problem::InvalidCursor => "not a paging cursor from this server",
            Problem::InvalidDate(problem) => problem.text(),
            Problem::UnsupportedFormat => "only json is served",
            Problem::InvalidBoolean => "expected true or false",
            Problem::Required => "required for this search",
        };
        write!(f, "search parameter {}: {why}", self.parameter)
    }
}

impl std::error::Error for SearchError {}

/// Keeps at most 40 printable ASCII characters of a parameter name for messages.
fn printable(name: &str) -> String {
    name.chars()
        .map(|c| if c.is_ascii_graphic() { c } else { '?' })
        .take(40)
        .collect()
}

/// Parses the query string (without `?`) of a search on `resource`. `strict` is the client's
/// `Prefer: handling=strict`.
pub fn parse(resource: ResourceType, query: &str, strict: bool) -> Result<Search, SearchError> {
    if query.len() > MAX_QUERY_LEN {
        return Err(SearchError::new("", Problem::QueryTooLong));
    }
    let mut search = Search {
        resource,
        patient: None,
        id: None,
        codes: CodeFilter::Any,
        range: TimeRange::ALL,
        excluded: Vec::new(),
        count: DEFAULT_COUNT,
        cursor: None,
        ignored: Vec::new(),
        applied: Vec::new(),
    };
    let pairs: Vec<&str> = query.split('&').filter(|p| !p.is_empty()).collect();
    if pairs.len() > MAX_PARAMETERS {
        return Err(SearchError::new("", Problem::TooManyParameters));
    }
    let specs = parameters(resource);
    let mut seen: Vec<(&'static str, usize)> = Vec::new();
    for pair in pairs {
        let (raw_name, raw_value) = pair.split_once('=').unwrap_or((pair, ""));
        let name = decode(raw_name).ok_or_else(|| SearchError::new("", Problem::Encoding))?;
        let (base, modifier) = match name.split_once(':') {
            Some((b, m)) => (b, Some(m)),
            None => (name.as_str(), None),
        };
        let value = decode(raw_value).ok_or_else(|| SearchError::new(base, Problem::Encoding))?;
        let spec = specs.iter().find(|s| s.name == base);
        let known: &'static str = match (spec, base) {
            (Some(s), _) => s.name,
            (None, "_count") => "_count",
            (None, CURSOR) => CURSOR,
            (None, "_format") => "_format",
            (None, "_pretty") => "_pretty",
            (None, _) => {
                if strict {
                    return Err(SearchError::new(base, Problem::Unknown));
                }
                let shown = printable(&name);
                if !search.ignored.contains(&shown) {
                    search.ignored.push(shown);
                }
                continue;
            }
        };
        match modifier {
            None => {}
            Some("Patient") if known == "subject" => {}
            Some(_) => return Err(SearchError::new(known, Problem::UnsupportedModifier)),
        }
        if value.is_empty() {
            continue;
        }
        let repeatable = spec.is_some_and(|s| matches!(s.role, Role::Code | Role::Date));
        let times = match seen.iter_mut().find(|(n, _)| *n == known) {
            Some((_, n)) => {
                *n += 1;
                *n
            }
            None => {
                seen.push((known, 1));
                1
            }
        };
        if times > if repeatable { MAX_REPEATS } else { 1 } {
            return Err(SearchError::new(known, Problem::TooManyRepeats));
        }
        let error = |problem| SearchError::new(known, problem);
        match (spec.map(|s| s.role), known) {
            (Some(Role::Patient), _) => {
                let id = value.strip_prefix("Patient/").unwrap_or(&value);
                let patient = is_fhir_id(id)
                    .then(|| PatientId::new(id).ok())
                    .flatten()
                    .ok_or_else(|| error(Problem::InvalidReference))?;
                if search.patient.as_ref().is_some_and(|p| *p != patient) {
                    // patient=a&subject=b: one patient per search.
                    return Err(error(Problem::TooManyRepeats));
                }
                search.patient = Some(patient);
            }
            (Some(Role::Id), _) => {
                if !is_fhir_id(&value) {
                    return Err(error(Problem::InvalidId));
                }
                search.id = Some(value.clone());
            }
            (Some(Role::Code), _) => {
                let set = codes_of(&value).map_err(error)?;
                search.codes = match search.codes {
                    CodeFilter::Any => CodeFilter::Only(set),
                    CodeFilter::Only(old) => {
                        CodeFilter::Only(old.into_iter().filter(|q| set.contains(q)).collect())
                    }
                };
            }
            (Some(Role::Date), _) => match date::parse(&value) {
                Ok(date::DateCondition::Within(r)) => search.range = search.range.intersect(r),
                Ok(date::DateCondition::Outside(r)) => search.excluded.push(r),
                Err(problem) => return Err(error(Problem::InvalidDate(problem))),
            },
            (None, "_count") => {
                search.count = value
                    .parse::<u32>()
                    .ok()
                    .filter(|n| (1..=MAX_COUNT).contains(n) && !value.starts_with('+'))
                    .ok_or_else(|| error(Problem::InvalidCount))?;
                continue;
            }
            (None, CURSOR) => {
                search.cursor =
                    Some(Cursor::decode(&value).ok_or_else(|| error(Problem::InvalidCursor))?);
                continue;
            }
            (None, "_format") => {
                if !matches!(
                    value.as_str(),
                    "json" | "application/json" | "application/fhir+json"
                ) {
                    return Err(error(Problem::UnsupportedFormat));
                }
                continue;
            }
            (None, _) => {
                if !matches!(value.as_str(), "true" | "false") {
                    return Err(error(Problem::InvalidBoolean));
                }
                continue;
            }
        }
        search.applied.push((name, value));
    }
    Ok(search)
}

/// The quantities one `code` value (comma = or) selects.
fn codes_of(value: &str) -> Result<Vec<Quantity>, Problem> {
    let mut set = Vec::new();
    let mut count = 0;
    for token in split_unescaped(value, ',') {
        count += 1;
        if count > MAX_VALUES {
            return Err(Problem::TooManyValues);
        }
        let token = token
            .replace("\\,", ",")
            .replace("\\|", "|")
            .replace("\\$", "$");
        let (system, code) = match token.split_once('|') {
            Some((s, c)) => (Some(s), c),
            None => (None, token.as_str()),
        };
        if code.contains('|') || (system.is_none() && code.is_empty()) {
            return Err(Problem::InvalidToken);
        }
        for q in Quantity::ALL {
            let spec = q.spec();
            let loinc = spec.loinc.iter().any(|l| code.is_empty() || l.code == code);
            let mdc = code.is_empty()
                || code.parse::<u32>().is_ok_and(|n| {
                    spec.mdc.code() == n || spec.mdc_aliases.iter().any(|a| a.code() == n)
                });
            let hit = match system {
                // `|code`: codes without a system; Vigil has none.
                Some("") => false,
                Some(codes::LOINC) => loinc,
                Some(codes::MDC) => mdc,
                Some(_) => false,
                None => loinc || mdc,
            };
            if hit && !set.contains(q) {
                set.push(*q);
            }
        }
    }
    Ok(set)
}

/// Splits on `sep` where it is not escaped by a backslash (FHIR search escaping).
fn split_unescaped(text: &str, sep: char) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut start = 0;
    let mut escaped = false;
    for (i, c) in text.char_indices() {
        if escaped {
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if c == sep {
            parts.push(&text[start..i]);
            start = i + c.len_utf8();
        }
    }
    parts.push(&text[start..]);
    parts
}

/// Decodes `application/x-www-form-urlencoded` text: `%XX` and `+` as space. `None` on a bad
/// escape or bytes that are not UTF-8.
fn decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = bytes.get(i + 1..i + 3)?;
                if !hex.iter().all(u8::is_ascii_hexdigit) {
                    return None;
                }
                out.push(u8::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()?);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

/// Percent-encodes everything but RFC 3986 unreserved characters.
fn percent_encode(out: &mut String, text: &str) {
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push(char::from(b"0123456789ABCDEF"[usize::from(b >> 4)]));
            out.push(char::from(b"0123456789ABCDEF"[usize::from(b & 0xf)]));
        }
    }
}

#[cfg(test)]
mod tests;
