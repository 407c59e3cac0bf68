//! The application layer's one error type. Every workflow refuses with it;
//! the HTTP layer maps its `kind` to a status in one place
//! (`http::error`). It serializes, because a refusal is an outcome too: a
//! retry with the same `Idempotency-Key` gets the first refusal back.

use serde::{Deserialize, Serialize};

use annals_domain::{FieldError, RuleKind, RuleViolation};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// The input is invalid (names the fields).
    Invalid,
    /// The thing does not exist, or is not the caller's.
    NotFound,
    /// The current state does not allow it.
    Conflict,
    /// The caller may not do this.
    Forbidden,
    /// `If-Match` named a version that is not the current one.
    VersionMismatch,
    /// Other writers kept winning the race for a stream; retry.
    Busy,
    /// The database did not answer; nothing was written.
    Unavailable,
    /// The commit was sent and its answer lost: it may or may not be stored.
    /// A retry with the same `Idempotency-Key` finds out.
    OutcomeUnknown,
    /// A bug; the cause is in the log.
    Internal,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldProblem {
    pub field: String,
    pub message: String,
}

/// What a conflict is with, by id and name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Existing {
    pub id: String,
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{detail}")]
pub struct AppError {
    pub kind: ErrorKind,
    /// A stable name of the broken rule (`slot-taken`).
    pub code: String,
    pub detail: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<FieldProblem>,
    /// The thing that stands in the way (the open lead with that phone).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub existing: Option<Box<Existing>>,
    /// This refusal was recorded for the `Idempotency-Key` by an earlier request.
    #[serde(skip)]
    pub replayed: bool,
}

impl AppError {
    pub fn new(kind: ErrorKind, code: &str, detail: impl Into<String>) -> Self {
        Self {
            kind,
            code: code.to_string(),
            detail: detail.into(),
            fields: Vec::new(),
            existing: None,
            replayed: false,
        }
    }

    pub fn invalid(errors: Vec<FieldError>) -> Self {
        let detail = match errors.as_slice() {
            [one] => format!("{}: {}", one.field, one.message),
            many => format!("{} fields are invalid", many.len()),
        };
        let mut err = Self::new(ErrorKind::Invalid, "validation", detail);
        err.fields = errors
            .into_iter()
            .map(|e| FieldProblem {
                field: e.field,
                message: e.message,
            })
            .collect();
        err
    }

    pub fn invalid_field(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::invalid(vec![FieldError::new(field, message)])
    }

    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(ErrorKind::NotFound, "not-found", detail)
    }

    /// A body naming something that does not exist: 404 naming the field.
    pub fn unknown_reference(field: impl Into<String>, message: impl Into<String>) -> Self {
        let (field, message) = (field.into(), message.into());
        let mut err = Self::not_found(format!("{field}: {message}"));
        err.fields = vec![FieldProblem { field, message }];
        err
    }

    pub fn conflict(code: &str, detail: impl Into<String>) -> Self {
        Self::new(ErrorKind::Conflict, code, detail)
    }

    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self::new(ErrorKind::Forbidden, "forbidden", detail)
    }

    pub fn version_mismatch(expected: i64, actual: i64) -> Self {
        Self::new(
            ErrorKind::VersionMismatch,
            "version-mismatch",
            format!("expected version {expected}, but the current version is {actual}"),
        )
    }

    pub fn unavailable(detail: impl Into<String>) -> Self {
        Self::new(ErrorKind::Unavailable, "unavailable", detail)
    }

    /// Opaque to the caller; the cause goes to the log.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "internal error");
        Self::new(
            ErrorKind::Internal,
            "internal",
            "the server failed; the cause is in its log",
        )
    }

    /// The refusal of an aggregate, by the kind of rule it broke.
    pub fn rejected<E: RuleViolation>(rule: &E) -> Self {
        let detail = rule.to_string();
        match rule.kind() {
            RuleKind::Invalid(fields) => Self::invalid(fields),
            RuleKind::NotFound => Self::not_found(detail),
            RuleKind::Conflict => Self::conflict(rule.code(), detail),
            RuleKind::Forbidden => Self::forbidden(detail),
        }
    }

    /// A refusal that a retry of the same request would meet again, and so
    /// is recorded for its `Idempotency-Key`. Transient failures (a lost
    /// race, an unavailable database, an unknown outcome, a bug) are not.
    pub fn is_final(&self) -> bool {
        matches!(
            self.kind,
            ErrorKind::Invalid
                | ErrorKind::NotFound
                | ErrorKind::Conflict
                | ErrorKind::Forbidden
                | ErrorKind::VersionMismatch
        )
    }
}

impl From<sqlx::Error> for AppError {
    fn from(err: sqlx::Error) -> Self {
        if crate::store::is_unavailable(&err) {
            tracing::warn!(error = %err, "database unavailable");
            Self::unavailable("the database is unavailable")
        } else {
            Self::internal(err)
        }
    }
}

impl From<anyhow::Error> for AppError {
    fn from(err: anyhow::Error) -> Self {
        if let Some(sql) = err.chain().find_map(|c| c.downcast_ref::<sqlx::Error>()) {
            if crate::store::is_unavailable(sql) {
                tracing::warn!(error = %format!("{err:#}"), "database unavailable");
                return Self::unavailable("the database is unavailable");
            }
        }
        Self::internal(format!("{err:#}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_refusals_a_retry_would_meet_again_are_recorded_for_a_key() {
        let refusals = [
            AppError::invalid_field("start", "must be before the end"),
            AppError::not_found("no such appointment"),
            AppError::conflict("slot-taken", "the master is booked at that time"),
            AppError::forbidden("only staff"),
            AppError::version_mismatch(1, 2),
        ];
        assert!(refusals.iter().all(AppError::is_final));
        let transient = [
            AppError::new(ErrorKind::Busy, "concurrent-modification", "retry"),
            AppError::unavailable("down"),
            AppError::new(ErrorKind::OutcomeUnknown, "outcome-unknown", "lost"),
            AppError::internal("bug"),
        ];
        assert!(transient.iter().all(|e| !e.is_final()));
    }

    #[test]
    fn a_recorded_refusal_reads_back_the_same() {
        let refusal = AppError::invalid_field("reason", "must be 1 to 500 characters");
        let text = serde_json::to_string(&refusal).unwrap();
        assert_eq!(serde_json::from_str::<AppError>(&text).unwrap(), refusal);
    }
}
