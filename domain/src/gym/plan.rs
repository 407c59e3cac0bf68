//! A membership plan: how long a paid period lasts, what it costs, and how
//! many freeze days each paid period allows.

use chrono::{Months, NaiveDate};
use cqrs_es::DomainEvent;
use serde::{Deserialize, Serialize};

use crate::values::Money;
use crate::{FieldError, RuleKind, RuleViolation};

/// How long one paid period lasts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PlanLength {
    Days(u32),
    Months(u32),
}

impl PlanLength {
    /// The last day of a period of this length starting on `start`.
    pub fn last_day(self, start: NaiveDate) -> NaiveDate {
        let after = match self {
            PlanLength::Days(days) => start + chrono::Duration::days(i64::from(days)),
            PlanLength::Months(months) => start
                .checked_add_months(Months::new(months))
                .unwrap_or(NaiveDate::MAX),
        };
        after.pred_opt().unwrap_or(after)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlanTerms {
    pub name: String,
    pub length: PlanLength,
    pub price: Money,
    /// Freeze days each paid period adds to the subscription's quota.
    pub freeze_days: u32,
}

impl PlanTerms {
    pub fn check(&self) -> Result<(), Vec<FieldError>> {
        let mut errors = Vec::new();
        if self.name.trim().is_empty() || self.name.chars().count() > 200 {
            errors.push(FieldError::new("name", "must be 1 to 200 characters"));
        }
        match self.length {
            PlanLength::Days(d) if !(1..=3660).contains(&d) => {
                errors.push(FieldError::new("length_days", "must be from 1 to 3660"))
            }
            PlanLength::Months(m) if !(1..=120).contains(&m) => {
                errors.push(FieldError::new("length_months", "must be from 1 to 120"))
            }
            _ => {}
        }
        if self.freeze_days > 365 {
            errors.push(FieldError::new("freeze_days", "must be from 0 to 365"));
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum PlanCommand {
    Create { terms: PlanTerms },
    Deactivate,
    Reactivate,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum PlanEvent {
    Created { terms: PlanTerms },
    Deactivated,
    Reactivated,
}

impl DomainEvent for PlanEvent {
    fn event_type(&self) -> String {
        match self {
            PlanEvent::Created { .. } => "PlanCreated",
            PlanEvent::Deactivated => "PlanDeactivated",
            PlanEvent::Reactivated => "PlanReactivated",
        }
        .into()
    }
    fn event_version(&self) -> String {
        "1".into()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    #[error("the plan exists already")]
    Exists,
    #[error("no such plan")]
    NotFound,
    #[error("invalid plan")]
    Invalid(Vec<FieldError>),
}

impl RuleViolation for PlanError {
    fn kind(&self) -> RuleKind {
        match self {
            PlanError::Exists => RuleKind::Conflict,
            PlanError::NotFound => RuleKind::NotFound,
            PlanError::Invalid(fields) => RuleKind::Invalid(fields.clone()),
        }
    }
    fn code(&self) -> &'static str {
        match self {
            PlanError::Exists => "plan-exists",
            PlanError::NotFound => "not-found",
            PlanError::Invalid(_) => "validation",
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    pub terms: Option<PlanTerms>,
    pub active: bool,
}

pub fn decide(state: &Plan, command: PlanCommand) -> Result<Vec<PlanEvent>, PlanError> {
    match command {
        PlanCommand::Create { terms } => {
            if state.terms.is_some() {
                return Err(PlanError::Exists);
            }
            terms.check().map_err(PlanError::Invalid)?;
            Ok(vec![PlanEvent::Created { terms }])
        }
        PlanCommand::Deactivate => {
            state.terms.as_ref().ok_or(PlanError::NotFound)?;
            Ok(if state.active {
                vec![PlanEvent::Deactivated]
            } else {
                vec![]
            })
        }
        PlanCommand::Reactivate => {
            state.terms.as_ref().ok_or(PlanError::NotFound)?;
            Ok(if state.active {
                vec![]
            } else {
                vec![PlanEvent::Reactivated]
            })
        }
    }
}

pub fn evolve(state: &mut Plan, event: &PlanEvent) {
    match event {
        PlanEvent::Created { terms } => {
            state.terms = Some(terms.clone());
            state.active = true;
        }
        PlanEvent::Deactivated => state.active = false,
        PlanEvent::Reactivated => state.active = true,
    }
}

crate::decider_aggregate!(
    Plan,
    "plan",
    PlanCommand,
    PlanEvent,
    PlanError,
    decide,
    evolve
);
