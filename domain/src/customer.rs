//! A customer of the business: one list, whatever made them one (a lead
//! converted with a contract, or staff adding them). Its contracts are
//! kept in order.

use cqrs_es::DomainEvent;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::user::{Email, Phone};
use crate::{FieldError, RuleKind, RuleViolation};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CustomerProfile {
    pub name: String,
    pub email: Option<Email>,
    pub phone: Option<Phone>,
    pub address: Option<String>,
    pub notes: Option<String>,
}

impl CustomerProfile {
    /// The profile after its person's data was erased: the name shows
    /// `[erased]`, everything else is gone.
    pub fn erased() -> Self {
        Self {
            name: crate::user::ERASED.to_string(),
            email: None,
            phone: None,
            address: None,
            notes: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum CustomerCommand {
    /// `lead_id`: the lead it was converted from, if any.
    Create {
        profile: CustomerProfile,
        lead_id: Option<Uuid>,
    },
    AddContract {
        contract_id: Uuid,
    },
    Update {
        profile: CustomerProfile,
    },
    /// The customer's login: a client user.
    LinkUser {
        user_id: Uuid,
    },
    /// Crypto-shredding: the profile reads `[erased]` from now on.
    ErasePersonalData,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum CustomerEvent {
    Created {
        profile: CustomerProfile,
        lead_id: Option<Uuid>,
    },
    ContractAdded {
        contract_id: Uuid,
    },
    Updated {
        profile: CustomerProfile,
    },
    UserLinked {
        user_id: Uuid,
    },
    PersonalDataErased,
}

impl DomainEvent for CustomerEvent {
    fn event_type(&self) -> String {
        match self {
            CustomerEvent::Created { .. } => "CustomerCreated",
            CustomerEvent::ContractAdded { .. } => "CustomerContractAdded",
            CustomerEvent::Updated { .. } => "CustomerUpdated",
            CustomerEvent::UserLinked { .. } => "CustomerUserLinked",
            CustomerEvent::PersonalDataErased => "CustomerPersonalDataErased",
        }
        .into()
    }
    fn event_version(&self) -> String {
        "1".into()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CustomerError {
    #[error("the customer exists already")]
    Exists,
    #[error("no such customer")]
    NotFound,
    #[error("invalid")]
    Invalid(Vec<FieldError>),
}

impl RuleViolation for CustomerError {
    fn kind(&self) -> RuleKind {
        match self {
            CustomerError::Exists => RuleKind::Conflict,
            CustomerError::NotFound => RuleKind::NotFound,
            CustomerError::Invalid(fields) => RuleKind::Invalid(fields.clone()),
        }
    }
    fn code(&self) -> &'static str {
        match self {
            CustomerError::Exists => "exists",
            CustomerError::NotFound => "not-found",
            CustomerError::Invalid(_) => "validation",
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Customer {
    pub profile: Option<CustomerProfile>,
    pub lead_id: Option<Uuid>,
    pub contract_ids: Vec<Uuid>,
    pub user_id: Option<Uuid>,
}

fn checked(mut profile: CustomerProfile) -> Result<CustomerProfile, CustomerError> {
    profile.name = profile.name.trim().to_string();
    let mut errors = Vec::new();
    if profile.name.is_empty() || profile.name.chars().count() > 200 {
        errors.push(FieldError::new("name", "must be 1 to 200 characters"));
    }
    for (field, value, max) in [
        ("address", &mut profile.address, 500),
        ("notes", &mut profile.notes, 5000),
    ] {
        *value = value
            .take()
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty());
        if value.as_ref().is_some_and(|v| v.chars().count() > max) {
            errors.push(FieldError::new(field, format!("at most {max} characters")));
        }
    }
    if errors.is_empty() {
        Ok(profile)
    } else {
        Err(CustomerError::Invalid(errors))
    }
}

pub fn decide(
    state: &Customer,
    command: CustomerCommand,
) -> Result<Vec<CustomerEvent>, CustomerError> {
    match command {
        CustomerCommand::Create { profile, lead_id } => {
            if state.profile.is_some() {
                return Err(CustomerError::Exists);
            }
            let profile = checked(profile)?;
            Ok(vec![CustomerEvent::Created { profile, lead_id }])
        }
        CustomerCommand::Update { profile } => {
            let current = state.profile.as_ref().ok_or(CustomerError::NotFound)?;
            let profile = checked(profile)?;
            Ok(if *current == profile {
                vec![]
            } else {
                vec![CustomerEvent::Updated { profile }]
            })
        }
        CustomerCommand::LinkUser { user_id } => {
            state.profile.as_ref().ok_or(CustomerError::NotFound)?;
            Ok(if state.user_id == Some(user_id) {
                vec![]
            } else {
                vec![CustomerEvent::UserLinked { user_id }]
            })
        }
        // Always recorded, also a second time: the key's destruction beside
        // it may be retried.
        CustomerCommand::ErasePersonalData => {
            state.profile.as_ref().ok_or(CustomerError::NotFound)?;
            Ok(vec![CustomerEvent::PersonalDataErased])
        }
        CustomerCommand::AddContract { contract_id } => {
            state.profile.as_ref().ok_or(CustomerError::NotFound)?;
            Ok(if state.contract_ids.contains(&contract_id) {
                vec![]
            } else {
                vec![CustomerEvent::ContractAdded { contract_id }]
            })
        }
    }
}

pub fn evolve(state: &mut Customer, event: &CustomerEvent) {
    match event {
        CustomerEvent::Created { profile, lead_id } => {
            state.profile = Some(profile.clone());
            state.lead_id = *lead_id;
        }
        CustomerEvent::ContractAdded { contract_id } => state.contract_ids.push(*contract_id),
        CustomerEvent::Updated { profile } => state.profile = Some(profile.clone()),
        CustomerEvent::UserLinked { user_id } => state.user_id = Some(*user_id),
        CustomerEvent::PersonalDataErased => state.profile = Some(CustomerProfile::erased()),
    }
}

crate::decider_aggregate!(
    Customer,
    "customer",
    CustomerCommand,
    CustomerEvent,
    CustomerError,
    decide,
    evolve
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn erasing_a_customer_leaves_the_name_erased_and_no_contact_details_but_keeps_the_links() {
        let lead_id = Uuid::now_v7();
        let user_id = Uuid::now_v7();
        let mut customer = Customer::default();
        for event in [
            CustomerEvent::Created {
                profile: CustomerProfile {
                    name: "Jane Roe".into(),
                    email: Some(Email::parse("email", "jane@example.com").unwrap()),
                    phone: None,
                    address: Some("1 High Street".into()),
                    notes: Some("prefers e-mail".into()),
                },
                lead_id: Some(lead_id),
            },
            CustomerEvent::UserLinked { user_id },
        ] {
            evolve(&mut customer, &event);
        }
        let events = decide(&customer, CustomerCommand::ErasePersonalData).unwrap();
        assert_eq!(events, vec![CustomerEvent::PersonalDataErased]);
        evolve(&mut customer, &events[0]);
        assert_eq!(customer.profile, Some(CustomerProfile::erased()));
        assert_eq!(customer.profile.unwrap().name, crate::user::ERASED);
        assert_eq!(
            (customer.lead_id, customer.user_id),
            (Some(lead_id), Some(user_id))
        );
        assert_eq!(
            decide(&Customer::default(), CustomerCommand::ErasePersonalData),
            Err(CustomerError::NotFound)
        );
    }
}
