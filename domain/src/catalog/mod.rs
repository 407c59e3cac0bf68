//! The service catalog: categories and the services masters perform.

pub mod category;
pub mod service;

pub use category::{Category, CategoryCommand, CategoryError, CategoryEvent};
pub use service::{Service, ServiceCommand, ServiceError, ServiceEvent, ServiceTerms};
