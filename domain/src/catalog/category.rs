//! A service category (hair, nails, training, ...).

use cqrs_es::DomainEvent;
use serde::{Deserialize, Serialize};

use crate::{FieldError, RuleKind, RuleViolation};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum CategoryCommand {
    Create { name: String },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum CategoryEvent {
    Created { name: String },
}

impl DomainEvent for CategoryEvent {
    fn event_type(&self) -> String {
        match self {
            CategoryEvent::Created { .. } => "ServiceCategoryCreated".into(),
        }
    }
    fn event_version(&self) -> String {
        "1".into()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CategoryError {
    #[error("the category exists already")]
    Exists,
    #[error("name must be 1 to 100 characters")]
    BadName,
}

impl RuleViolation for CategoryError {
    fn kind(&self) -> RuleKind {
        match self {
            CategoryError::Exists => RuleKind::Conflict,
            CategoryError::BadName => {
                RuleKind::Invalid(vec![FieldError::new("name", self.to_string())])
            }
        }
    }
    fn code(&self) -> &'static str {
        match self {
            CategoryError::Exists => "category-exists",
            CategoryError::BadName => "validation",
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Category {
    pub name: Option<String>,
}

pub fn decide(
    state: &Category,
    command: CategoryCommand,
) -> Result<Vec<CategoryEvent>, CategoryError> {
    match command {
        CategoryCommand::Create { name } => {
            if state.name.is_some() {
                return Err(CategoryError::Exists);
            }
            let name = name.trim().to_string();
            if name.is_empty() || name.chars().count() > 100 {
                return Err(CategoryError::BadName);
            }
            Ok(vec![CategoryEvent::Created { name }])
        }
    }
}

pub fn evolve(state: &mut Category, event: &CategoryEvent) {
    match event {
        CategoryEvent::Created { name } => state.name = Some(name.clone()),
    }
}

crate::decider_aggregate!(
    Category,
    "service_category",
    CategoryCommand,
    CategoryEvent,
    CategoryError,
    decide,
    evolve
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_category_is_created_once_with_a_trimmed_name() {
        let created = decide(
            &Category::default(),
            CategoryCommand::Create {
                name: " Hair ".into(),
            },
        )
        .unwrap();
        assert_eq!(
            created,
            vec![CategoryEvent::Created {
                name: "Hair".into()
            }]
        );
        let mut state = Category::default();
        evolve(&mut state, &created[0]);
        assert_eq!(
            decide(
                &state,
                CategoryCommand::Create {
                    name: "Hair".into()
                }
            ),
            Err(CategoryError::Exists)
        );
        assert_eq!(
            decide(
                &Category::default(),
                CategoryCommand::Create { name: " ".into() }
            ),
            Err(CategoryError::BadName)
        );
    }
}
