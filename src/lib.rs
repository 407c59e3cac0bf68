//! The Annals server: configuration, storage, fan-out, HTTP and wiring.
#![forbid(unsafe_code)]

pub mod app;
pub mod audit;
pub mod auth;
pub mod bus;
pub mod cli;
pub mod config;
pub mod files;
pub mod http;
pub mod messages;
pub mod notifier;
pub mod platform;
pub mod startup;
pub mod store;
pub mod telemetry;

pub use platform::{Module, Platform, Services};
pub use startup::Application;

/// Every business module of the server. Adding a domain is one line here.
pub fn modules() -> Vec<Box<dyn Module>> {
    vec![
        Box::new(http::identity::IdentityModule),
        Box::new(http::appointments::AppointmentsModule),
        Box::new(http::shop::ShopModule),
        Box::new(http::gym::GymModule),
        Box::new(http::marketing::MarketingModule),
        Box::new(http::customers::CustomersModule),
        Box::new(http::projects::ProjectsModule),
        Box::new(http::audit::AuditModule),
        Box::new(http::notifier::NotifierModule),
    ]
}
