//! The dealer program. A `DealerApplication` is one request (company, tax
//! id, message) and its decision; a `Dealer` is a user's standing in the
//! program (keyed by the user id): which application is in progress, and
//! the discount in force. Applying changes both, and approving changes
//! both and grants the user the `dealer` role, in one commit — so a second
//! application while one is in progress is refused whatever runs at once.

use chrono::NaiveDate;
use cqrs_es::DomainEvent;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::pricing::DealerTerms;
use crate::{FieldError, RuleKind, RuleViolation};

pub const MAX_DISCOUNT: u8 = 50;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApplicationForm {
    pub user_id: Uuid,
    pub company: String,
    pub tax_id: String,
    pub message: String,
}

impl ApplicationForm {
    pub fn check(&self) -> Result<(), Vec<FieldError>> {
        let mut errors = Vec::new();
        for (field, value, max) in [
            ("company", &self.company, 200),
            ("tax_id", &self.tax_id, 50),
        ] {
            if value.trim().is_empty() || value.chars().count() > max {
                errors.push(FieldError::new(
                    field,
                    format!("must be 1 to {max} characters"),
                ));
            }
        }
        if self.message.chars().count() > 2000 {
            errors.push(FieldError::new(
                "message",
                "must be at most 2000 characters",
            ));
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DealerStatus {
    /// Never applied.
    None,
    Pending,
    Approved,
    Rejected,
}

impl DealerStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            DealerStatus::None => "none",
            DealerStatus::Pending => "pending",
            DealerStatus::Approved => "approved",
            DealerStatus::Rejected => "rejected",
        }
    }
}

impl std::fmt::Display for DealerStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

// ---------------------------------------------------------------- application

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum DealerApplicationCommand {
    Submit(ApplicationForm),
    Approve {
        discount_percent: u8,
        by: Uuid,
        by_name: String,
        on: NaiveDate,
    },
    Reject {
        reason: String,
        by: Uuid,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum DealerApplicationEvent {
    Submitted(ApplicationForm),
    Approved {
        discount_percent: u8,
        by: Uuid,
        by_name: String,
        on: NaiveDate,
    },
    Rejected {
        reason: String,
        by: Uuid,
    },
}

impl DomainEvent for DealerApplicationEvent {
    fn event_type(&self) -> String {
        match self {
            DealerApplicationEvent::Submitted(_) => "DealerApplicationSubmitted",
            DealerApplicationEvent::Approved { .. } => "DealerApplicationApproved",
            DealerApplicationEvent::Rejected { .. } => "DealerApplicationRejected",
        }
        .into()
    }
    fn event_version(&self) -> String {
        "1".into()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DealerError {
    #[error("the application exists already")]
    Exists,
    #[error("no such application")]
    NotFound,
    #[error("the application is {current} already")]
    Decided { current: DealerStatus },
    #[error("application {application_id} is in progress: wait for its decision")]
    InProgress { application_id: Uuid },
    #[error("already a dealer (application {application_id})")]
    AlreadyDealer { application_id: Uuid },
    #[error("invalid application")]
    Invalid(Vec<FieldError>),
}

impl RuleViolation for DealerError {
    fn kind(&self) -> RuleKind {
        match self {
            DealerError::NotFound => RuleKind::NotFound,
            DealerError::Invalid(fields) => RuleKind::Invalid(fields.clone()),
            _ => RuleKind::Conflict,
        }
    }
    fn code(&self) -> &'static str {
        match self {
            DealerError::Exists => "application-exists",
            DealerError::NotFound => "not-found",
            DealerError::Decided { .. } => "invalid-transition",
            DealerError::InProgress { .. } => "application-in-progress",
            DealerError::AlreadyDealer { .. } => "already-a-dealer",
            DealerError::Invalid(_) => "validation",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DealerApplication {
    pub form: Option<ApplicationForm>,
    pub status: DealerStatus,
}

impl Default for DealerApplication {
    fn default() -> Self {
        Self {
            form: None,
            status: DealerStatus::None,
        }
    }
}

fn check_discount(discount_percent: u8) -> Result<(), DealerError> {
    if discount_percent > MAX_DISCOUNT {
        return Err(DealerError::Invalid(vec![FieldError::new(
            "discount_percent",
            format!("must be from 0 to {MAX_DISCOUNT}"),
        )]));
    }
    Ok(())
}

pub fn decide_application(
    state: &DealerApplication,
    command: DealerApplicationCommand,
) -> Result<Vec<DealerApplicationEvent>, DealerError> {
    use DealerApplicationEvent as E;
    if let DealerApplicationCommand::Submit(form) = command {
        if state.form.is_some() {
            return Err(DealerError::Exists);
        }
        form.check().map_err(DealerError::Invalid)?;
        return Ok(vec![E::Submitted(form)]);
    }
    state.form.as_ref().ok_or(DealerError::NotFound)?;
    if state.status != DealerStatus::Pending {
        return Err(DealerError::Decided {
            current: state.status,
        });
    }
    match command {
        DealerApplicationCommand::Submit(_) => unreachable!("handled above"),
        DealerApplicationCommand::Approve {
            discount_percent,
            by,
            by_name,
            on,
        } => {
            check_discount(discount_percent)?;
            Ok(vec![E::Approved {
                discount_percent,
                by,
                by_name,
                on,
            }])
        }
        DealerApplicationCommand::Reject { reason, by } => {
            let reason = reason.trim().to_string();
            if reason.is_empty() || reason.chars().count() > 500 {
                return Err(DealerError::Invalid(vec![FieldError::new(
                    "reason",
                    "must be 1 to 500 characters",
                )]));
            }
            Ok(vec![E::Rejected { reason, by }])
        }
    }
}

pub fn evolve_application(state: &mut DealerApplication, event: &DealerApplicationEvent) {
    match event {
        DealerApplicationEvent::Submitted(form) => {
            state.form = Some(form.clone());
            state.status = DealerStatus::Pending;
        }
        DealerApplicationEvent::Approved { .. } => state.status = DealerStatus::Approved,
        DealerApplicationEvent::Rejected { .. } => state.status = DealerStatus::Rejected,
    }
}

crate::decider_aggregate!(
    DealerApplication,
    "dealer_application",
    DealerApplicationCommand,
    DealerApplicationEvent,
    DealerError,
    decide_application,
    evolve_application
);

// ---------------------------------------------------------------- standing

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum DealerCommand {
    File {
        application_id: Uuid,
    },
    Approve {
        application_id: Uuid,
        terms: DealerTerms,
    },
    Reject {
        application_id: Uuid,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum DealerEvent {
    ApplicationFiled { application_id: Uuid },
    DiscountGranted { terms: DealerTerms },
    ApplicationTurnedDown { application_id: Uuid },
}

impl DomainEvent for DealerEvent {
    fn event_type(&self) -> String {
        match self {
            DealerEvent::ApplicationFiled { .. } => "DealerApplicationFiled",
            DealerEvent::DiscountGranted { .. } => "DealerDiscountGranted",
            DealerEvent::ApplicationTurnedDown { .. } => "DealerApplicationTurnedDown",
        }
        .into()
    }
    fn event_version(&self) -> String {
        "1".into()
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Dealer {
    pub status: DealerStatus,
    /// The latest application.
    pub application_id: Option<Uuid>,
    /// The discount in force (approved).
    pub terms: Option<DealerTerms>,
}

impl Default for Dealer {
    fn default() -> Self {
        Self {
            status: DealerStatus::None,
            application_id: None,
            terms: None,
        }
    }
}

pub fn decide_standing(
    state: &Dealer,
    command: DealerCommand,
) -> Result<Vec<DealerEvent>, DealerError> {
    use DealerEvent as E;
    let current = |application_id: Uuid| {
        if state.application_id != Some(application_id) || state.status != DealerStatus::Pending {
            return Err(DealerError::Decided {
                current: state.status,
            });
        }
        Ok(())
    };
    match command {
        DealerCommand::File { application_id } => match (state.status, state.application_id) {
            (DealerStatus::Pending, Some(pending)) => Err(DealerError::InProgress {
                application_id: pending,
            }),
            (DealerStatus::Approved, Some(approved)) => Err(DealerError::AlreadyDealer {
                application_id: approved,
            }),
            _ => Ok(vec![E::ApplicationFiled { application_id }]),
        },
        DealerCommand::Approve {
            application_id,
            terms,
        } => {
            current(application_id)?;
            check_discount(terms.discount_percent)?;
            Ok(vec![E::DiscountGranted { terms }])
        }
        DealerCommand::Reject { application_id } => {
            current(application_id)?;
            Ok(vec![E::ApplicationTurnedDown { application_id }])
        }
    }
}

pub fn evolve_standing(state: &mut Dealer, event: &DealerEvent) {
    match event {
        DealerEvent::ApplicationFiled { application_id } => {
            state.status = DealerStatus::Pending;
            state.application_id = Some(*application_id);
        }
        DealerEvent::DiscountGranted { terms } => {
            state.status = DealerStatus::Approved;
            state.terms = Some(terms.clone());
        }
        DealerEvent::ApplicationTurnedDown { .. } => state.status = DealerStatus::Rejected,
    }
}

crate::decider_aggregate!(
    Dealer,
    "dealer",
    DealerCommand,
    DealerEvent,
    DealerError,
    decide_standing,
    evolve_standing
);
