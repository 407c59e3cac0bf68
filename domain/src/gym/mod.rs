//! The fitness studio: membership plans and subscriptions. Each payment
//! renews a subscription; freezes push its end out within a quota; whether
//! a client is active, frozen or inactive is derived for any date from the
//! periods, freezes and cancellation the events record.

pub mod broadcast;
pub mod plan;
pub mod subscription;
pub mod training;

#[cfg(test)]
mod tests;

pub use plan::{Plan, PlanCommand, PlanError, PlanEvent, PlanLength, PlanTerms};
pub use subscription::{
    Standing, Subscription, SubscriptionCommand, SubscriptionError, SubscriptionEvent,
};
