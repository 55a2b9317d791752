//! RFC 9457 problem documents: every refusal the HTTPS API gives.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// A problem, sent as `application/problem+json`.
#[derive(Debug, Clone)]
pub struct Problem {
    status: StatusCode,
    slug: &'static str,
    title: &'static str,
    detail: String,
    bearer_challenge: bool,
    retry_after: Option<u32>,
}

#[derive(Serialize)]
struct Document<'a> {
    #[serde(rename = "type")]
    kind: String,
    title: &'a str,
    status: u16,
    detail: &'a str,
}

impl Problem {
    /// A problem with a status, a stable slug (its `type` is `urn:vigil:problem:<slug>`), a
    /// title and a detail for this occurrence. Details never hold PHI or secrets.
    pub fn new(
        status: StatusCode,
        slug: &'static str,
        title: &'static str,
        detail: impl Into<String>,
    ) -> Problem {
        Problem {
            status,
            slug,
            title,
            detail: detail.into(),
            bearer_challenge: false,
            retry_after: None,
        }
    }

    /// Adds `Retry-After: <seconds>` (an overloaded hub asks senders to come back).
    pub fn with_retry_after(mut self, seconds: u32) -> Problem {
        self.retry_after = Some(seconds);
        self
    }

    /// Adds `WWW-Authenticate: Bearer` (for refused enrolment tokens, RFC 6750).
    pub fn with_bearer_challenge(mut self) -> Problem {
        self.bearer_challenge = true;
        self
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// An internal error; the detail is logged, not sent.
    pub fn internal(error: &dyn std::fmt::Display) -> Problem {
        tracing::error!(%error, "request failed");
        Problem::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "Internal error",
            "the hub could not complete the request; the error is in its log",
        )
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let document = Document {
            kind: format!("urn:vigil:problem:{}", self.slug),
            title: self.title,
            status: self.status.as_u16(),
            detail: &self.detail,
        };
        let body = serde_json::to_vec(&document).unwrap_or_default();
        let mut response = (self.status, body).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if let Some(seconds) = self.retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        if self.bearer_challenge {
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"vigil-enrolment\""),
            );
        }
        response
    }
}
