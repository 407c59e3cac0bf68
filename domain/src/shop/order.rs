//! An order: placed at checkout with its lines priced then, paid (by staff
//! or the payment provider), shipped and delivered or put out for pickup
//! and picked up; cancelled before it leaves, refunded up to what was paid.
//! The lines keep their price provenance: a later price change or a new
//! dealer discount never touches a placed order.

use std::collections::BTreeSet;

use cqrs_es::DomainEvent;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::pricing::PriceRule;
use crate::values::Money;
use crate::{FieldError, RuleKind, RuleViolation};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Customer {
    pub name: String,
    pub phone: String,
    pub email: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Address {
    pub address_lines: Vec<String>,
    pub city: String,
    pub postal_code: String,
    pub country: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Delivery {
    Shipping(Address),
    Pickup,
}

/// One line as priced at checkout.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderLine {
    pub product_id: Uuid,
    pub sku: String,
    pub name: String,
    pub category_id: Uuid,
    pub quantity: u32,
    pub base_price: Decimal,
    pub rule: Option<PriceRule>,
    pub unit_price: Decimal,
    pub line_total: Decimal,
    /// Stock was reserved for it (the product's stock is tracked).
    pub reserved: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Placement {
    /// What people quote: short, unique with overwhelming likelihood.
    pub number: String,
    pub customer: Customer,
    /// The signed-in customer who placed it.
    pub customer_id: Option<Uuid>,
    pub cart_id: String,
    pub delivery: Delivery,
    pub lines: Vec<OrderLine>,
    pub currency: String,
    pub total: Decimal,
    /// Placed at a dealer's prices.
    pub dealer: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Placed,
    Paid,
    Shipped,
    Delivered,
    ReadyForPickup,
    PickedUp,
    Cancelled,
    Refunded,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Placed => "placed",
            Status::Paid => "paid",
            Status::Shipped => "shipped",
            Status::Delivered => "delivered",
            Status::ReadyForPickup => "ready_for_pickup",
            Status::PickedUp => "picked_up",
            Status::Cancelled => "cancelled",
            Status::Refunded => "refunded",
        }
    }

    pub const ALL: [Status; 8] = [
        Status::Placed,
        Status::Paid,
        Status::Shipped,
        Status::Delivered,
        Status::ReadyForPickup,
        Status::PickedUp,
        Status::Cancelled,
        Status::Refunded,
    ];

    pub fn parse(text: &str) -> Option<Status> {
        Status::ALL.into_iter().find(|s| s.as_str() == text)
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum OrderCommand {
    Place(Box<Placement>),
    RecordPayment {
        amount: Money,
        method: String,
        /// The provider's id: a payment it reports twice is recorded once.
        provider_payment_id: Option<String>,
    },
    Ship,
    Deliver,
    MarkReadyForPickup,
    MarkPickedUp,
    Cancel {
        reason: String,
    },
    Refund {
        amount: Money,
        reason: String,
    },
    /// Crypto-shredding of a guest's order: the buyer's name, contact
    /// details and address read `[erased]` from now on.
    ErasePersonalData,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum OrderEvent {
    Placed(Box<Placement>),
    PaymentRecorded {
        amount: Decimal,
        currency: String,
        method: String,
        provider_payment_id: Option<String>,
    },
    /// Payments reached the total.
    Paid {
        paid: Decimal,
    },
    Shipped,
    Delivered,
    ReadyForPickup,
    PickedUp,
    Cancelled {
        reason: String,
    },
    Refunded {
        amount: Decimal,
        currency: String,
        reason: String,
    },
    PersonalDataErased,
}

impl DomainEvent for OrderEvent {
    fn event_type(&self) -> String {
        match self {
            OrderEvent::Placed(_) => "OrderPlaced",
            OrderEvent::PaymentRecorded { .. } => "OrderPaymentRecorded",
            OrderEvent::Paid { .. } => "OrderPaid",
            OrderEvent::Shipped => "OrderShipped",
            OrderEvent::Delivered => "OrderDelivered",
            OrderEvent::ReadyForPickup => "OrderReadyForPickup",
            OrderEvent::PickedUp => "OrderPickedUp",
            OrderEvent::Cancelled { .. } => "OrderCancelled",
            OrderEvent::Refunded { .. } => "OrderRefunded",
            OrderEvent::PersonalDataErased => "OrderPersonalDataErased",
        }
        .into()
    }
    fn event_version(&self) -> String {
        "1".into()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OrderError {
    #[error("the order exists already")]
    Exists,
    #[error("no such order")]
    NotFound,
    #[error("the order is {current}: it cannot be {action}")]
    InvalidTransition {
        current: Status,
        action: &'static str,
    },
    #[error("a {kind} order is not {action}")]
    WrongDelivery {
        kind: &'static str,
        action: &'static str,
    },
    #[error("the order is in {order}, not {given}")]
    WrongCurrency { order: String, given: String },
    #[error("{outstanding} {currency} is outstanding: a payment may not exceed it")]
    Overpayment {
        outstanding: Decimal,
        currency: String,
    },
    #[error("{refundable} {currency} can be refunded (paid less refunded): not more")]
    RefundTooLarge {
        refundable: Decimal,
        currency: String,
    },
    #[error("invalid order")]
    Invalid(Vec<FieldError>),
}

impl RuleViolation for OrderError {
    fn kind(&self) -> RuleKind {
        match self {
            OrderError::NotFound => RuleKind::NotFound,
            OrderError::Invalid(fields) => RuleKind::Invalid(fields.clone()),
            OrderError::WrongCurrency { .. } => {
                RuleKind::Invalid(vec![FieldError::new("currency", self.to_string())])
            }
            _ => RuleKind::Conflict,
        }
    }
    fn code(&self) -> &'static str {
        match self {
            OrderError::Exists => "order-exists",
            OrderError::NotFound => "not-found",
            OrderError::InvalidTransition { .. } => "invalid-transition",
            OrderError::WrongDelivery { .. } => "wrong-delivery",
            OrderError::WrongCurrency { .. } | OrderError::Invalid(_) => "validation",
            OrderError::Overpayment { .. } => "overpayment",
            OrderError::RefundTooLarge { .. } => "refund-exceeds-payments",
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Order {
    pub placement: Option<Placement>,
    pub status: Option<Status>,
    pub paid: Decimal,
    pub refunded: Decimal,
    pub provider_payments: BTreeSet<String>,
}

impl Order {
    /// The products whose stock this order holds.
    pub fn reserved_products(&self) -> Vec<Uuid> {
        self.placement
            .iter()
            .flat_map(|p| p.lines.iter().filter(|l| l.reserved).map(|l| l.product_id))
            .collect()
    }
}

fn positive(field: &str, amount: &Money) -> Result<(), OrderError> {
    if amount.amount <= Decimal::ZERO {
        return Err(OrderError::Invalid(vec![FieldError::new(
            field,
            "must be more than 0",
        )]));
    }
    Ok(())
}

fn reason(text: &str) -> Result<String, OrderError> {
    let text = text.trim();
    if text.is_empty() || text.chars().count() > 500 {
        return Err(OrderError::Invalid(vec![FieldError::new(
            "reason",
            "must be 1 to 500 characters",
        )]));
    }
    Ok(text.to_string())
}

pub fn decide(state: &Order, command: OrderCommand) -> Result<Vec<OrderEvent>, OrderError> {
    use OrderEvent as E;
    let OrderCommand::Place(placement) = command else {
        let placement = state.placement.as_ref().ok_or(OrderError::NotFound)?;
        let current = state.status.unwrap_or(Status::Placed);
        let pickup = placement.delivery == Delivery::Pickup;
        let transition = |from: &[Status], action: &'static str, event: OrderEvent| {
            if from.contains(&current) {
                Ok(vec![event])
            } else {
                Err(OrderError::InvalidTransition { current, action })
            }
        };
        let currency = |given: &Money| {
            if given.currency != placement.currency {
                return Err(OrderError::WrongCurrency {
                    order: placement.currency.clone(),
                    given: given.currency.clone(),
                });
            }
            Ok(())
        };
        return match command {
            OrderCommand::Place(_) => unreachable!("handled above"),
            OrderCommand::RecordPayment {
                amount,
                method,
                provider_payment_id,
            } => {
                if let Some(id) = &provider_payment_id {
                    if state.provider_payments.contains(id) {
                        return Ok(vec![]);
                    }
                }
                if current != Status::Placed {
                    return Err(OrderError::InvalidTransition {
                        current,
                        action: "paid",
                    });
                }
                positive("amount", &amount)?;
                currency(&amount)?;
                let outstanding = placement.total - state.paid;
                if amount.amount > outstanding {
                    return Err(OrderError::Overpayment {
                        outstanding,
                        currency: placement.currency.clone(),
                    });
                }
                let method = method.trim().to_string();
                if method.is_empty() || method.chars().count() > 50 {
                    return Err(OrderError::Invalid(vec![FieldError::new(
                        "method",
                        "must be 1 to 50 characters",
                    )]));
                }
                let mut events = vec![E::PaymentRecorded {
                    amount: amount.amount,
                    currency: amount.currency,
                    method,
                    provider_payment_id,
                }];
                if amount.amount == outstanding {
                    events.push(E::Paid {
                        paid: placement.total,
                    });
                }
                Ok(events)
            }
            OrderCommand::Ship if pickup => Err(OrderError::WrongDelivery {
                kind: "pickup",
                action: "shipped",
            }),
            OrderCommand::Ship => transition(&[Status::Paid], "shipped", E::Shipped),
            OrderCommand::Deliver => transition(&[Status::Shipped], "delivered", E::Delivered),
            OrderCommand::MarkReadyForPickup if !pickup => Err(OrderError::WrongDelivery {
                kind: "shipping",
                action: "put out for pickup",
            }),
            OrderCommand::MarkReadyForPickup => {
                transition(&[Status::Paid], "put out for pickup", E::ReadyForPickup)
            }
            OrderCommand::MarkPickedUp => {
                transition(&[Status::ReadyForPickup], "picked up", E::PickedUp)
            }
            OrderCommand::Cancel { reason: why } => {
                let why = reason(&why)?;
                transition(
                    &[Status::Placed, Status::Paid],
                    "cancelled",
                    E::Cancelled { reason: why },
                )
            }
            OrderCommand::Refund {
                amount,
                reason: why,
            } => {
                positive("amount", &amount)?;
                currency(&amount)?;
                let why = reason(&why)?;
                let refundable = state.paid - state.refunded;
                if refundable <= Decimal::ZERO && current == Status::Placed {
                    return Err(OrderError::InvalidTransition {
                        current,
                        action: "refunded (nothing was paid)",
                    });
                }
                if amount.amount > refundable {
                    return Err(OrderError::RefundTooLarge {
                        refundable,
                        currency: placement.currency.clone(),
                    });
                }
                Ok(vec![E::Refunded {
                    amount: amount.amount,
                    currency: amount.currency,
                    reason: why,
                }])
            }
            // Always recorded, also a second time: the key's destruction
            // beside it may be retried.
            OrderCommand::ErasePersonalData => Ok(vec![E::PersonalDataErased]),
        };
    };
    if state.placement.is_some() {
        return Err(OrderError::Exists);
    }
    Ok(vec![E::Placed(placement)])
}

pub fn evolve(state: &mut Order, event: &OrderEvent) {
    match event {
        OrderEvent::Placed(placement) => {
            state.placement = Some((**placement).clone());
            state.status = Some(Status::Placed);
        }
        OrderEvent::PaymentRecorded {
            amount,
            provider_payment_id,
            ..
        } => {
            state.paid += amount;
            if let Some(id) = provider_payment_id {
                state.provider_payments.insert(id.clone());
            }
        }
        OrderEvent::Paid { .. } => state.status = Some(Status::Paid),
        OrderEvent::Shipped => state.status = Some(Status::Shipped),
        OrderEvent::Delivered => state.status = Some(Status::Delivered),
        OrderEvent::ReadyForPickup => state.status = Some(Status::ReadyForPickup),
        OrderEvent::PickedUp => state.status = Some(Status::PickedUp),
        OrderEvent::Cancelled { .. } => state.status = Some(Status::Cancelled),
        OrderEvent::Refunded { amount, .. } => {
            state.refunded += amount;
            if state.refunded >= state.paid {
                state.status = Some(Status::Refunded);
            }
        }
        OrderEvent::PersonalDataErased => {
            if let Some(placement) = &mut state.placement {
                placement.erase_personal_data();
            }
        }
    }
}

impl Placement {
    /// Every text about the buyer becomes `[erased]`, as the fields sealed
    /// with their key read once it is destroyed; whether it is shipped or
    /// picked up stays.
    pub fn erase_personal_data(&mut self) {
        let erased = || crate::user::ERASED.to_string();
        self.customer = Customer {
            name: erased(),
            phone: erased(),
            email: erased(),
        };
        if let Delivery::Shipping(address) = &mut self.delivery {
            address.address_lines.iter_mut().for_each(|l| *l = erased());
            address.city = erased();
            address.postal_code = erased();
            address.country = erased();
        }
    }
}

crate::decider_aggregate!(
    Order,
    "order",
    OrderCommand,
    OrderEvent,
    OrderError,
    decide,
    evolve
);
