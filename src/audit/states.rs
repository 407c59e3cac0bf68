//! Any aggregate's state from its events, for every aggregate type: the
//! domain's own `apply` (its `evolve`), folded over the events recorded up
//! to an instant.

use anyhow::{Context, Result};
use cqrs_es::Aggregate;

use annals_domain as d;
use annals_domain::StoredEvent;

/// Folds events (oldest first) into the aggregate's state, as JSON, in
/// one pass: with `each`, the state before the first event and after every
/// one (`events.len() + 1` states); without, only the final state.
pub type Fold = fn(&[StoredEvent], bool) -> Result<Vec<serde_json::Value>>;

fn fold<A: Aggregate>(events: &[StoredEvent], each: bool) -> Result<Vec<serde_json::Value>> {
    let mut state = A::default();
    let mut states = Vec::with_capacity(if each { events.len() + 1 } else { 1 });
    if each {
        states.push(serde_json::to_value(&state)?);
    }
    for event in events {
        let change: A::Event = serde_json::from_value(event.payload.clone())
            .with_context(|| format!("event at position {} does not parse", event.position))?;
        state.apply(change);
        if each {
            states.push(serde_json::to_value(&state)?);
        }
    }
    if !each {
        states.push(serde_json::to_value(&state)?);
    }
    Ok(states)
}

macro_rules! folds {
    ($($t:ty),* $(,)?) => {
        &[$((<$t as Aggregate>::TYPE, fold::<$t> as Fold)),*]
    };
}

/// Every aggregate type of the domain and how to fold it.
pub const FOLDS: &[(&str, Fold)] = folds![
    d::appointment::Appointment,
    d::appointment::master_day::MasterDay,
    d::catalog::category::Category,
    d::catalog::service::Service,
    d::master::Master,
    d::notifier_settings::NotifierSettings,
    d::user::User,
    d::projects::portal::Feedback,
    d::projects::portal::ClientMessage,
    d::projects::portal::RoadmapProduct,
    d::projects::request::ProjectRequest,
    d::message::ScheduledMessage,
    d::invoice::Invoice,
    d::invoice::InvoiceNumbers,
    d::gym::broadcast::Broadcast,
    d::gym::subscription::Subscription,
    d::gym::training::Group,
    d::gym::training::Training,
    d::gym::plan::Plan,
    d::files::StoredFile,
    d::customer::Customer,
    d::marketing::lead::Lead,
    d::marketing::lead::LeadContact,
    d::marketing::campaign::Campaign,
    d::marketing::contract::Contract,
    d::shop::dealer::DealerApplication,
    d::shop::dealer::Dealer,
    d::shop::order::Order,
    d::shop::product::Product,
    d::shop::category::ProductCategory,
    d::shop::sku::SkuClaim,
    d::shop::cart::Cart,
];

pub fn fold_of(aggregate_type: &str) -> Option<Fold> {
    FOLDS
        .iter()
        .find(|(t, _)| *t == aggregate_type)
        .map(|(_, f)| *f)
}

pub fn types() -> Vec<&'static str> {
    let mut types: Vec<_> = FOLDS.iter().map(|(t, _)| *t).collect();
    types.sort_unstable();
    types
}
