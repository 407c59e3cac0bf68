//! A service: what it is, how long it takes, what it costs. Price and
//! duration changes are events, so an appointment keeps the terms that
//! applied when it was booked.

use cqrs_es::DomainEvent;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::values::Money;
use crate::{FieldError, RuleKind, RuleViolation};

pub const DURATION_RANGE: std::ops::RangeInclusive<u32> = 5..=720;
pub const BUFFER_MAX: u32 = 240;

/// Everything that describes a service; all of it is replaced on update.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServiceTerms {
    pub name: String,
    pub description: String,
    pub category_id: Uuid,
    pub duration_minutes: u32,
    pub price: Money,
    pub buffer_before_minutes: u32,
    pub buffer_after_minutes: u32,
    pub image_url: Option<String>,
}

impl ServiceTerms {
    /// The rules every version of a service obeys.
    pub fn check(&self) -> Result<(), Vec<FieldError>> {
        let mut errors = Vec::new();
        if self.name.trim().is_empty() || self.name.chars().count() > 200 {
            errors.push(FieldError::new("name", "must be 1 to 200 characters"));
        }
        if self.description.chars().count() > 5000 {
            errors.push(FieldError::new(
                "description",
                "must be at most 5000 characters",
            ));
        }
        if !DURATION_RANGE.contains(&self.duration_minutes) {
            errors.push(FieldError::new("duration_minutes", "must be from 5 to 720"));
        }
        for (field, value) in [
            ("buffer_before_minutes", self.buffer_before_minutes),
            ("buffer_after_minutes", self.buffer_after_minutes),
        ] {
            if value > BUFFER_MAX {
                errors.push(FieldError::new(
                    field,
                    format!("must be from 0 to {BUFFER_MAX}"),
                ));
            }
        }
        if let Some(url) = &self.image_url {
            if !(url.starts_with("https://") || url.starts_with("http://")) || url.len() > 2000 {
                errors.push(FieldError::new("image_url", "must be an http(s):// URL"));
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ServiceCommand {
    Create {
        terms: ServiceTerms,
    },
    Update {
        terms: ServiceTerms,
    },
    Deactivate,
    /// Back into the catalog.
    Reactivate,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ServiceEvent {
    Created { terms: ServiceTerms },
    Updated { terms: ServiceTerms },
    Deactivated,
    Reactivated,
}

impl DomainEvent for ServiceEvent {
    fn event_type(&self) -> String {
        match self {
            ServiceEvent::Created { .. } => "ServiceCreated",
            ServiceEvent::Updated { .. } => "ServiceUpdated",
            ServiceEvent::Deactivated => "ServiceDeactivated",
            ServiceEvent::Reactivated => "ServiceReactivated",
        }
        .into()
    }
    fn event_version(&self) -> String {
        "1".into()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ServiceError {
    #[error("the service exists already")]
    Exists,
    #[error("no such service")]
    NotFound,
    #[error("the service is deactivated")]
    Inactive,
    #[error("invalid service")]
    Invalid(Vec<FieldError>),
}

impl RuleViolation for ServiceError {
    fn kind(&self) -> RuleKind {
        match self {
            ServiceError::Exists | ServiceError::Inactive => RuleKind::Conflict,
            ServiceError::NotFound => RuleKind::NotFound,
            ServiceError::Invalid(fields) => RuleKind::Invalid(fields.clone()),
        }
    }
    fn code(&self) -> &'static str {
        match self {
            ServiceError::Exists => "service-exists",
            ServiceError::NotFound => "not-found",
            ServiceError::Inactive => "service-inactive",
            ServiceError::Invalid(_) => "validation",
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Service {
    pub terms: Option<ServiceTerms>,
    pub active: bool,
}

pub fn decide(state: &Service, command: ServiceCommand) -> Result<Vec<ServiceEvent>, ServiceError> {
    match command {
        ServiceCommand::Create { terms } => {
            if state.terms.is_some() {
                return Err(ServiceError::Exists);
            }
            terms.check().map_err(ServiceError::Invalid)?;
            Ok(vec![ServiceEvent::Created { terms }])
        }
        ServiceCommand::Update { terms } => {
            let current = state.terms.as_ref().ok_or(ServiceError::NotFound)?;
            terms.check().map_err(ServiceError::Invalid)?;
            if *current == terms {
                return Ok(vec![]);
            }
            Ok(vec![ServiceEvent::Updated { terms }])
        }
        ServiceCommand::Deactivate => {
            state.terms.as_ref().ok_or(ServiceError::NotFound)?;
            Ok(if state.active {
                vec![ServiceEvent::Deactivated]
            } else {
                vec![]
            })
        }
        ServiceCommand::Reactivate => {
            state.terms.as_ref().ok_or(ServiceError::NotFound)?;
            Ok(if state.active {
                vec![]
            } else {
                vec![ServiceEvent::Reactivated]
            })
        }
    }
}

pub fn evolve(state: &mut Service, event: &ServiceEvent) {
    match event {
        ServiceEvent::Created { terms } => {
            state.terms = Some(terms.clone());
            state.active = true;
        }
        ServiceEvent::Updated { terms } => state.terms = Some(terms.clone()),
        ServiceEvent::Deactivated => state.active = false,
        ServiceEvent::Reactivated => state.active = true,
    }
}

crate::decider_aggregate!(
    Service,
    "service",
    ServiceCommand,
    ServiceEvent,
    ServiceError,
    decide,
    evolve
);

#[cfg(test)]
mod tests {
    use super::*;

    fn terms() -> ServiceTerms {
        ServiceTerms {
            name: "Haircut".into(),
            description: "Wash, cut, dry".into(),
            category_id: Uuid::nil(),
            duration_minutes: 45,
            price: Money::parse("price", "25.00", "EUR").unwrap(),
            buffer_before_minutes: 0,
            buffer_after_minutes: 15,
            image_url: None,
        }
    }

    fn given(events: &[ServiceEvent]) -> Service {
        let mut state = Service::default();
        events.iter().for_each(|e| evolve(&mut state, e));
        state
    }

    #[test]
    fn a_price_change_is_an_event_with_the_new_terms() {
        let state = given(&[ServiceEvent::Created { terms: terms() }]);
        let mut dearer = terms();
        dearer.price = Money::parse("price", "30", "EUR").unwrap();
        assert_eq!(
            decide(
                &state,
                ServiceCommand::Update {
                    terms: dearer.clone()
                }
            )
            .unwrap(),
            vec![ServiceEvent::Updated { terms: dearer }]
        );
        assert!(decide(&state, ServiceCommand::Update { terms: terms() })
            .unwrap()
            .is_empty());
    }

    #[test]
    fn invalid_terms_name_every_bad_field() {
        let mut bad = terms();
        bad.duration_minutes = 1;
        bad.buffer_after_minutes = 999;
        bad.name = " ".into();
        let Err(ServiceError::Invalid(fields)) =
            decide(&Service::default(), ServiceCommand::Create { terms: bad })
        else {
            panic!("expected invalid");
        };
        let names: Vec<_> = fields.iter().map(|f| f.field.as_str()).collect();
        assert_eq!(names, ["name", "duration_minutes", "buffer_after_minutes"]);
    }

    #[test]
    fn deactivation_happens_once_and_unknown_services_are_not_found() {
        let state = given(&[ServiceEvent::Created { terms: terms() }]);
        assert_eq!(
            decide(&state, ServiceCommand::Deactivate).unwrap(),
            vec![ServiceEvent::Deactivated]
        );
        let state = given(&[
            ServiceEvent::Created { terms: terms() },
            ServiceEvent::Deactivated,
        ]);
        assert!(decide(&state, ServiceCommand::Deactivate)
            .unwrap()
            .is_empty());
        assert_eq!(
            decide(&Service::default(), ServiceCommand::Deactivate),
            Err(ServiceError::NotFound)
        );
    }

    #[test]
    fn a_deactivated_service_comes_back_once() {
        let off = given(&[
            ServiceEvent::Created { terms: terms() },
            ServiceEvent::Deactivated,
        ]);
        assert_eq!(
            decide(&off, ServiceCommand::Reactivate).unwrap(),
            vec![ServiceEvent::Reactivated]
        );
        let on = given(&[ServiceEvent::Created { terms: terms() }]);
        assert!(decide(&on, ServiceCommand::Reactivate).unwrap().is_empty());
    }
}
