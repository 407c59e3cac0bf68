//! Annals domain: aggregates, commands, events and the event envelope.
//! Pure: no IO, no database, no HTTP.
#![forbid(unsafe_code)]

pub mod decider;
pub mod envelope;
pub mod gym;

pub use envelope::{Actor, EventMetadata, StoredEvent};

pub mod rule;
pub use rule::{FieldError, RuleKind, RuleViolation};

pub mod appointment;
pub mod catalog;
pub mod customer;
pub mod files;
pub mod invoice;
pub mod marketing;
pub mod master;
pub mod message;
pub mod notifier_settings;
pub mod projects;
pub mod shop;
pub mod user;
pub mod values;
