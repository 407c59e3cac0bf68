//! The one HTTP error type. Every failure, including axum's own rejections,
//! leaves as `application/problem+json` (RFC 9457); domain errors are mapped
//! to a status here and nowhere else.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::{IntoResponses, ToSchema};

use annals_domain::FieldError;

use crate::app::{AppError, ErrorKind};

pub const PROBLEM_JSON: &str = "application/problem+json";

/// An RFC 9457 problem document.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(examples(json!({
    "type": "/problems/validation",
    "title": "The request is invalid",
    "status": 422,
    "detail": "1 field is invalid",
    "errors": [{"field": "amount", "message": "must be greater than 0"}]
})))]
pub struct Problem {
    /// A URI reference naming the kind of problem.
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    /// Per-field validation errors (only for validation problems).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<ProblemField>,
    /// What a conflict is with (the open lead a new one duplicates).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub existing: Option<crate::app::Existing>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ProblemField {
    /// The field, as a path into the request (`amount`, `items[2].qty`, or a
    /// header or query parameter name).
    pub field: String,
    pub message: String,
}

#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub slug: std::borrow::Cow<'static, str>,
    pub title: &'static str,
    pub detail: String,
    pub errors: Vec<ProblemField>,
    pub existing: Option<Box<crate::app::Existing>>,
    pub retry_after: Option<u64>,
    /// Adds `WWW-Authenticate: Bearer` (401 answers).
    pub www_authenticate: bool,
}

impl ApiError {
    pub fn new(
        status: StatusCode,
        slug: &'static str,
        title: &'static str,
        detail: impl Into<String>,
    ) -> Self {
        Self {
            status,
            slug: slug.into(),
            title,
            detail: detail.into(),
            errors: Vec::new(),
            existing: None,
            retry_after: None,
            www_authenticate: false,
        }
    }

    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "bad-request",
            "The request cannot be read",
            detail,
        )
    }

    /// 422 naming the fields that are wrong.
    pub fn invalid(errors: Vec<FieldError>) -> Self {
        AppError::invalid(errors).into()
    }

    /// 400 naming a query or path parameter: every problem with a parameter
    /// (unreadable, out of range, too long) is 400 on every route; 422 is
    /// for the fields of a body.
    pub fn bad_parameter(name: impl Into<String>, message: impl Into<String>) -> Self {
        let (name, message) = (name.into(), message.into());
        Self::bad_request(format!("parameter {name}: {message}")).naming(name, message)
    }

    pub fn invalid_field(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::invalid(vec![FieldError::new(field, message)])
    }

    /// The same problem, naming the field it is about in `errors`.
    pub fn naming(mut self, field: impl Into<String>, message: impl Into<String>) -> Self {
        self.errors = vec![ProblemField {
            field: field.into(),
            message: message.into(),
        }];
        self
    }

    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not-found", "Not found", detail)
    }

    pub fn conflict(slug: &'static str, detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::CONFLICT,
            slug,
            "Conflict with the current state",
            detail,
        )
    }

    pub fn unavailable(detail: impl Into<String>) -> Self {
        let mut err = Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "Service unavailable",
            detail,
        );
        err.retry_after = Some(1);
        err
    }

    /// 500 with an opaque body; the cause goes to the log, in the request's span.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "Internal server error",
            "the server failed; the cause is in its log",
        )
    }

    pub fn problem(&self) -> Problem {
        Problem {
            kind: format!("/problems/{}", self.slug),
            title: self.title.to_string(),
            status: self.status.as_u16(),
            detail: self.detail.clone(),
            errors: self.errors.clone(),
            existing: self.existing.as_deref().cloned(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::to_vec(&self.problem()).expect("problem serializes");
        let mut response = (self.status, body).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        if let Some(seconds) = self.retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        if self.www_authenticate {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

/// The one place where the application's refusals get their HTTP status.
impl From<AppError> for ApiError {
    fn from(err: AppError) -> Self {
        let (status, title) = match err.kind {
            ErrorKind::Invalid => (StatusCode::UNPROCESSABLE_ENTITY, "The request is invalid"),
            ErrorKind::NotFound => (StatusCode::NOT_FOUND, "Not found"),
            ErrorKind::Conflict | ErrorKind::Busy => {
                (StatusCode::CONFLICT, "Conflict with the current state")
            }
            ErrorKind::Forbidden => (StatusCode::FORBIDDEN, "Forbidden"),
            ErrorKind::VersionMismatch => {
                (StatusCode::PRECONDITION_FAILED, "The resource has changed")
            }
            ErrorKind::Unavailable => (StatusCode::SERVICE_UNAVAILABLE, "Service unavailable"),
            ErrorKind::OutcomeUnknown => (
                StatusCode::SERVICE_UNAVAILABLE,
                "Outcome unknown: retry with the same Idempotency-Key",
            ),
            ErrorKind::Internal => (StatusCode::INTERNAL_SERVER_ERROR, "Internal server error"),
        };
        let mut api = Self::new(status, "", title, err.detail);
        api.slug = err.code.into();
        api.existing = err.existing;
        api.errors = err
            .fields
            .into_iter()
            .map(|f| ProblemField {
                field: f.field,
                message: f.message,
            })
            .collect();
        if matches!(
            err.kind,
            ErrorKind::Busy | ErrorKind::Unavailable | ErrorKind::OutcomeUnknown
        ) {
            api.retry_after = Some(1);
        }
        api
    }
}

impl From<anyhow::Error> for ApiError {
    fn from(err: anyhow::Error) -> Self {
        AppError::from(err).into()
    }
}

/// The problems every route can answer with, for the OpenAPI document.
#[derive(IntoResponses)]
#[allow(dead_code)]
pub enum CommonProblems {
    /// The request cannot be read (malformed JSON, bad header or parameter).
    #[response(status = 400, content_type = "application/problem+json")]
    BadRequest(Problem),
    /// Validation failed; `errors` names each field.
    #[response(status = 422, content_type = "application/problem+json")]
    Invalid(Problem),
    /// The body is too large.
    #[response(status = 413, content_type = "application/problem+json")]
    TooLarge(Problem),
    /// The body is not `application/json`.
    #[response(status = 415, content_type = "application/problem+json")]
    UnsupportedMediaType(Problem),
    /// The database is unavailable and nothing was written
    /// (`/problems/unavailable`), or it did not confirm the commit
    /// (`/problems/outcome-unknown`): retry with the same `Idempotency-Key`
    /// to learn the outcome.
    #[response(status = 503, content_type = "application/problem+json")]
    Unavailable(Problem),
}

/// The extra problems of command routes.
#[derive(IntoResponses)]
#[allow(dead_code)]
pub enum CommandProblems {
    /// The state does not allow the command, concurrent commands kept
    /// winning (`/problems/concurrent-modification`), or the
    /// `Idempotency-Key` was used for another request.
    #[response(status = 409, content_type = "application/problem+json")]
    Conflict(Problem),
    /// `If-Match` names a version that is no longer current.
    #[response(status = 412, content_type = "application/problem+json")]
    VersionMismatch(Problem),
}

/// The extra problems of queries that take `min_position`.
#[derive(IntoResponses)]
#[allow(dead_code)]
pub enum ReadProblems {
    /// `min_position` is beyond the end of the log.
    #[response(status = 409, content_type = "application/problem+json")]
    BeyondTheLog(Problem),
}

/// 401: no valid bearer token where one is needed.
#[derive(IntoResponses)]
#[allow(dead_code)]
pub enum Unauthorized {
    /// Not signed in, or the token is unknown, expired or revoked.
    #[response(status = 401, content_type = "application/problem+json")]
    Unauthorized(Problem),
}

/// 403: signed in, but the roles (or a proof such as the current password)
/// do not allow this.
#[derive(IntoResponses)]
#[allow(dead_code)]
pub enum Forbidden {
    /// Your roles do not allow this (see the permission matrix).
    #[response(status = 403, content_type = "application/problem+json")]
    Forbidden(Problem),
}

/// 404: the thing does not exist, or is not yours to see.
#[derive(IntoResponses)]
#[allow(dead_code)]
pub enum NotFound {
    /// No such resource (or not yours).
    #[response(status = 404, content_type = "application/problem+json")]
    NotFound(Problem),
}
