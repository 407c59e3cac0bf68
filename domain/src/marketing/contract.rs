//! A contract signed with a customer: a service, a document (an uploaded
//! file), the signing date, the validity period and the amount. Recorded
//! once; a replaced document would be a new file, never an edit of one.

use chrono::NaiveDate;
use cqrs_es::DomainEvent;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::values::Money;
use crate::{FieldError, RuleKind, RuleViolation};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContractTerms {
    pub name: String,
    pub service_id: Uuid,
    pub file_id: Uuid,
    pub signed_on: NaiveDate,
    pub valid_from: NaiveDate,
    pub valid_to: NaiveDate,
    pub amount: Money,
}

impl ContractTerms {
    pub fn check(&self) -> Result<(), Vec<FieldError>> {
        let mut errors = Vec::new();
        if self.name.trim().is_empty() || self.name.chars().count() > 200 {
            errors.push(FieldError::new(
                "contract.name",
                "must be 1 to 200 characters",
            ));
        }
        if self.valid_to < self.valid_from {
            errors.push(FieldError::new(
                "contract.valid_to",
                "must not be before valid_from",
            ));
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ContractCommand {
    Record {
        terms: ContractTerms,
        customer_id: Uuid,
        lead_id: Option<Uuid>,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ContractEvent {
    Recorded {
        terms: ContractTerms,
        customer_id: Uuid,
        lead_id: Option<Uuid>,
    },
}

impl DomainEvent for ContractEvent {
    fn event_type(&self) -> String {
        "ContractRecorded".into()
    }
    fn event_version(&self) -> String {
        "1".into()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ContractError {
    #[error("the contract exists already")]
    Exists,
    #[error("invalid")]
    Invalid(Vec<FieldError>),
}

impl RuleViolation for ContractError {
    fn kind(&self) -> RuleKind {
        match self {
            ContractError::Exists => RuleKind::Conflict,
            ContractError::Invalid(fields) => RuleKind::Invalid(fields.clone()),
        }
    }
    fn code(&self) -> &'static str {
        match self {
            ContractError::Exists => "exists",
            ContractError::Invalid(_) => "validation",
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Contract {
    pub terms: Option<ContractTerms>,
    pub customer_id: Option<Uuid>,
    pub lead_id: Option<Uuid>,
}

pub fn decide(
    state: &Contract,
    command: ContractCommand,
) -> Result<Vec<ContractEvent>, ContractError> {
    match command {
        ContractCommand::Record {
            mut terms,
            customer_id,
            lead_id,
        } => {
            if state.terms.is_some() {
                return Err(ContractError::Exists);
            }
            terms.check().map_err(ContractError::Invalid)?;
            terms.name = terms.name.trim().to_string();
            Ok(vec![ContractEvent::Recorded {
                terms,
                customer_id,
                lead_id,
            }])
        }
    }
}

pub fn evolve(state: &mut Contract, event: &ContractEvent) {
    match event {
        ContractEvent::Recorded {
            terms,
            customer_id,
            lead_id,
        } => {
            state.terms = Some(terms.clone());
            state.customer_id = Some(*customer_id);
            state.lead_id = *lead_id;
        }
    }
}

crate::decider_aggregate!(
    Contract,
    "contract",
    ContractCommand,
    ContractEvent,
    ContractError,
    decide,
    evolve
);
