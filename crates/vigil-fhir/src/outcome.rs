//! `OperationOutcome`, and the one error type a FHIR handler answers with.
//!
//! Every refusal at `/fhir/r4` is an HTTP status plus an `OperationOutcome` whose issue code
//! comes from <http://hl7.org/fhir/issue-type> (FHIR R4 value set `issue-type`, required
//! binding of `OperationOutcome.issue.code`). [`FhirError::response`] gives both. Diagnostics
//! are written by this crate, never copied from the request, so they cannot carry PHI or
//! reflect an attacker's text back.

use std::fmt;

use serde_json::{Value, json};

use crate::ResourceType;
use crate::search::SearchError;

/// `OperationOutcome.issue.severity` (<http://hl7.org/fhir/issue-severity>).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IssueSeverity {
    /// The action was not possible and the whole request failed.
    Fatal,
    /// The request failed.
    Error,
    /// Worth knowing; the request succeeded.
    Warning,
    /// For information only.
    Information,
}

impl IssueSeverity {
    /// The FHIR code.
    pub fn code(self) -> &'static str {
        match self {
            IssueSeverity::Fatal => "fatal",
            IssueSeverity::Error => "error",
            IssueSeverity::Warning => "warning",
            IssueSeverity::Information => "information",
        }
    }
}

/// The `OperationOutcome.issue.code`s Vigil uses, from <http://hl7.org/fhir/issue-type>.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IssueType {
    /// `invalid`: content invalid against the specification or a profile.
    Invalid,
    /// `value`: a value is wrong (used for search parameter values).
    Value,
    /// `required`: a required element or parameter is missing.
    Required,
    /// `not-supported`: the content or action is not supported.
    NotSupported,
    /// `login`: the user needs to authenticate.
    Login,
    /// `forbidden`: not permitted.
    Forbidden,
    /// `not-found`: the resource does not exist.
    NotFound,
    /// `deleted`: the resource existed and was erased.
    Deleted,
    /// `too-costly`: the request would return or process too much.
    TooCostly,
    /// `throttled`: the client sent too many requests.
    Throttled,
    /// `exception`: an unexpected internal error.
    Exception,
    /// `transient`: temporary; the client may retry.
    Transient,
    /// `informational`: no problem, a message only.
    Informational,
}

impl IssueType {
    /// The FHIR code.
    pub fn code(self) -> &'static str {
        match self {
            IssueType::Invalid => "invalid",
            IssueType::Value => "value",
            IssueType::Required => "required",
            IssueType::NotSupported => "not-supported",
            IssueType::Login => "login",
            IssueType::Forbidden => "forbidden",
            IssueType::NotFound => "not-found",
            IssueType::Deleted => "deleted",
            IssueType::TooCostly => "too-costly",
            IssueType::Throttled => "throttled",
            IssueType::Exception => "exception",
            IssueType::Transient => "transient",
            IssueType::Informational => "informational",
        }
    }
}

/// An `OperationOutcome` with one issue.
pub fn operation_outcome(severity: IssueSeverity, code: IssueType, diagnostics: &str) -> Value {
    json!({
        "resourceType": "OperationOutcome",
        "issue": [{
            "severity": severity.code(),
            "code": code.code(),
            "diagnostics": diagnostics,
        }],
    })
}

/// Everything a FHIR request can fail with, mapped to an HTTP status and an
/// `OperationOutcome` by [`FhirError::response`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum FhirError {
    /// A search parameter was refused (400).
    Search(SearchError),
    /// A resource id in the request path is not a FHIR id (400).
    InvalidId,
    /// No such resource, or none the requester may see (404).
    NotFound(ResourceType),
    /// The resource existed and its data was erased (410).
    Erased(ResourceType),
    /// The resource type is not served at all (404, as FHIR servers answer unknown types).
    UnsupportedResource,
    /// The interaction (e.g. `create`, `history`) is not supported on this resource (405).
    UnsupportedInteraction,
    /// `_format` or `Accept` asks for something other than FHIR JSON (406).
    NotAcceptable,
    /// No or invalid credentials (401).
    Unauthenticated,
    /// Authenticated but not allowed (403).
    Forbidden,
    /// Too many requests (429).
    Throttled,
    /// A stored value cannot be written as FHIR: a non-finite number, or an identifier FHIR
    /// cannot carry (Vigil ids may hold `_`, FHIR ids may not). Names the element (500).
    Unrepresentable(&'static str),
    /// Anything else that went wrong inside the hub (500).
    Internal,
    /// The hub cannot answer now, e.g. the store is busy (503).
    Unavailable,
}

impl FhirError {
    /// The HTTP status code.
    pub fn status(&self) -> u16 {
        match self {
            FhirError::Search(_) | FhirError::InvalidId => 400,
            FhirError::Unauthenticated => 401,
            FhirError::Forbidden => 403,
            FhirError::NotFound(_) | FhirError::UnsupportedResource => 404,
            FhirError::UnsupportedInteraction => 405,
            FhirError::NotAcceptable => 406,
            FhirError::Erased(_) => 410,
            FhirError::Throttled => 429,
            FhirError::Unrepresentable(_) | FhirError::Internal => 500,
            FhirError::Unavailable => 503,
        }
    }

    /// The `OperationOutcome.issue.code`.
    pub fn issue_type(&self) -> IssueType {
        match self {
            FhirError::Search(e) => e.issue_type(),
            FhirError::InvalidId => IssueType::Value,
            FhirError::Unauthenticated => IssueType::Login,
            FhirError::Forbidden => IssueType::Forbidden,
            FhirError::NotFound(_) => IssueType::NotFound,
            FhirError::Erased(_) => IssueType::Deleted,
            FhirError::UnsupportedResource
            | FhirError::UnsupportedInteraction
            | FhirError::NotAcceptable => IssueType::NotSupported,
            FhirError::Throttled => IssueType::Throttled,
            FhirError::Unrepresentable(_) | FhirError::Internal => IssueType::Exception,
            FhirError::Unavailable => IssueType::Transient,
        }
    }

    /// The HTTP status and the `OperationOutcome` body, for the handler.
    pub fn response(&self) -> (u16, Value) {
        let severity = match self.status() {
            500.. => IssueSeverity::Fatal,
            _ => IssueSeverity::Error,
        };
        (
            self.status(),
            operation_outcome(severity, self.issue_type(), &self.to_string()),
        )
    }
}

impl fmt::Display for FhirError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FhirError::Search(e) => e.fmt(f),
            FhirError::InvalidId => f.write_str(
                "the resource id is not a FHIR id (1 to 64 characters from A-Z a-z 0-9 - .)",
            ),
            FhirError::NotFound(r) => write!(f, "{} not found", r.name()),
            FhirError::Erased(r) => write!(f, "the {}'s data has been erased", r.name()),
            FhirError::UnsupportedResource => f.write_str(
                "resource type not supported; this server serves Patient, Device, Observation, \
                 AuditEvent and DetectedIssue",
            ),
            FhirError::UnsupportedInteraction => {
                f.write_str("interaction not supported; this server supports read and search")
            }
            FhirError::NotAcceptable => {
                f.write_str("only FHIR JSON (application/fhir+json) is served")
            }
            FhirError::Unauthenticated => f.write_str("authentication required"),
            FhirError::Forbidden => f.write_str("not permitted"),
            FhirError::Throttled => f.write_str("too many requests; retry later"),
            FhirError::Unrepresentable(what) => {
                write!(f, "a stored {what} cannot be represented in FHIR")
            }
            FhirError::Internal => f.write_str("internal error"),
            FhirError::Unavailable => f.write_str("temporarily unavailable; retry later"),
        }
    }
}

impl std::error::Error for FhirError {}

impl From<SearchError> for FhirError {
    fn from(error: SearchError) -> Self {
        FhirError::Search(error)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn every_error_maps_to_a_status_and_an_outcome() {
        let cases = [
            (FhirError::InvalidId, 400, "value"),
            (FhirError::NotFound(ResourceType::Patient), 404, "not-found"),
            (FhirError::Erased(ResourceType::Patient), 410, "deleted"),
            (FhirError::UnsupportedResource, 404, "not-supported"),
            (FhirError::UnsupportedInteraction, 405, "not-supported"),
            (FhirError::NotAcceptable, 406, "not-supported"),
            (FhirError::Unauthenticated, 401, "login"),
            (FhirError::Forbidden, 403, "forbidden"),
            (FhirError::Throttled, 429, "throttled"),
            (FhirError::Unrepresentable("device id"), 500, "exception"),
            (FhirError::Internal, 500, "exception"),
            (FhirError::Unavailable, 503, "transient"),
        ];
        for (error, status, code) in cases {
            let (got, outcome) = error.response();
            assert_eq!(got, status, "{error}");
            assert_eq!(outcome["resourceType"], "OperationOutcome");
            assert_eq!(outcome["issue"][0]["code"], code, "{error}");
            assert_eq!(outcome["issue"][0]["diagnostics"], error.to_string());
            let severity = if status >= 500 { "fatal" } else { "error" };
            assert_eq!(outcome["issue"][0]["severity"], severity);
        }
    }
}
