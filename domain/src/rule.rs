//! How a domain error says which kind of rule it broke, so the HTTP layer
//! can map every aggregate's errors to a status in one place.

/// The kind of rule a refused command broke.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RuleKind {
    /// The input itself is invalid (422), naming the fields.
    Invalid(Vec<FieldError>),
    /// The thing does not exist (or is not the caller's) (404).
    NotFound,
    /// The current state does not allow it (409).
    Conflict,
    /// The caller may not do this (403).
    Forbidden,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    /// JSON pointer-ish path of the field, e.g. `price` or `items[2].qty`.
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// Implemented by every aggregate's error enum.
pub trait RuleViolation: std::error::Error {
    fn kind(&self) -> RuleKind;
    /// A stable, machine-readable name of the broken rule (`insufficient_funds`).
    fn code(&self) -> &'static str;
}
