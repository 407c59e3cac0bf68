//! A product category (brakes, lighting, accessories, ...).

use cqrs_es::DomainEvent;
use serde::{Deserialize, Serialize};

use crate::catalog::CategoryError;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ProductCategoryCommand {
    Create { name: String },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ProductCategoryEvent {
    Created { name: String },
}

impl DomainEvent for ProductCategoryEvent {
    fn event_type(&self) -> String {
        "ProductCategoryCreated".into()
    }
    fn event_version(&self) -> String {
        "1".into()
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ProductCategory {
    pub name: Option<String>,
}

/// The same rules as a service category's.
pub fn decide(
    state: &ProductCategory,
    command: ProductCategoryCommand,
) -> Result<Vec<ProductCategoryEvent>, CategoryError> {
    match command {
        ProductCategoryCommand::Create { name } => {
            if state.name.is_some() {
                return Err(CategoryError::Exists);
            }
            let name = name.trim().to_string();
            if name.is_empty() || name.chars().count() > 100 {
                return Err(CategoryError::BadName);
            }
            Ok(vec![ProductCategoryEvent::Created { name }])
        }
    }
}

pub fn evolve(state: &mut ProductCategory, event: &ProductCategoryEvent) {
    match event {
        ProductCategoryEvent::Created { name } => state.name = Some(name.clone()),
    }
}

crate::decider_aggregate!(
    ProductCategory,
    "product_category",
    ProductCategoryCommand,
    ProductCategoryEvent,
    CategoryError,
    decide,
    evolve
);
